// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// An x86-64 page-table entry (the same format at every level).
@frozen
public struct PageTableEntry: Hashable, Sendable, CustomStringConvertible {
    /// The 64-bit entry as memory holds it.
    public var raw: UInt64
    /// The entry with bits `raw`.
    @inlinable public init(raw: UInt64) { self.raw = raw }

    /// P, bit 0: the entry is present.
    public static let present = UInt64(SVAKIT_PTE_P)
    /// R/W, bit 1: writes allowed.
    public static let writable = UInt64(SVAKIT_PTE_RW)
    /// U/S, bit 2: user-mode (and SVA device) access allowed.
    public static let user = UInt64(SVAKIT_PTE_US)
    /// A, bit 5: set by the CPU or IOMMU walker on use.
    public static let accessed = UInt64(SVAKIT_PTE_A)
    /// D, bit 6: set on a write through a leaf.
    public static let dirty = UInt64(SVAKIT_PTE_D)
    /// PS, bit 7: a huge leaf at level 2 (2 MiB) or 3 (1 GiB).
    public static let pageSize = UInt64(SVAKIT_PTE_PS)
    /// G, bit 8: global (kernel mappings).
    public static let global = UInt64(SVAKIT_PTE_G)
    /// NX, bit 63: no execute.
    public static let noExecute = UInt64(SVAKIT_PTE_NX)
    /// Bits 12-51: the physical address of the next table or the leaf's page.
    public static let pfnMask = UInt64(SVAKIT_PTE_PFN_MASK)
    /// SVAKIT_PROT_MASK: the bits a caller may pass as protections.
    public static let protMask = writable | user | UInt64(SVAKIT_PTE_PWT) | UInt64(SVAKIT_PTE_PCD) | global | noExecute
    /// PAGE_KERNEL: RW, global, NX, no US.
    public static let kernelProt = writable | global | noExecute

    /// What x86 writes into an entry that points at a lower table: `_PAGE_TABLE`
    /// (P|RW|US|A|D). The user bit is set even in the kernel half; the leaf's
    /// U/S=0 is what denies user requests (docs/KERNEL-MODEL.md §3.1), which is why an
    /// IOMMU walk of a kernel address can fault at the leaf after caching
    /// every upper level.
    public static let tableFlags = present | writable | user | accessed | dirty

    /// `_KERNPG_TABLE` (P|RW|A|D, no U/S): what set_memory's
    /// `__split_large_page()` links a split table with (arch/x86/mm/pat/set_memory.c).
    /// A user request through such an entry cannot complete, whatever lies below.
    public static let kernelTableFlags = present | writable | accessed | dirty

    /// Whether P is set.
    @inlinable public var isPresent: Bool { raw & Self.present != 0 }
    /// Whether PS is set (meaningful above level 1 only).
    @inlinable public var isHugeLeaf: Bool { raw & Self.pageSize != 0 }
    /// The frame the entry points to (truncated to 32 bits).
    @inlinable public var pfn: PFN { PFN(UInt32(truncatingIfNeeded: (raw & Self.pfnMask) >> 12)) }
    /// The address bits (`raw & pfnMask`), in bytes.
    @inlinable public var physicalAddress: UInt64 { raw & Self.pfnMask }
    /// The protection bits (`raw & protMask`).
    @inlinable public var prot: UInt64 { raw & Self.protMask }

    /// The empty entry (`pte_none`): all bits clear.
    public static let none = PageTableEntry(raw: 0)

    /// An entry pointing at the table in `pfn`.
    @inlinable public static func table(_ pfn: PFN) -> PageTableEntry {
        PageTableEntry(raw: pfn.physicalAddress | tableFlags)
    }

    /// A leaf mapping `phys` at `level` (PS is set above level 1).
    @inlinable public static func leaf(_ phys: UInt64, level: Int, prot: UInt64) -> PageTableEntry {
        PageTableEntry(raw: (phys & pfnMask) | prot | present | accessed | dirty
                       | (level > 1 ? pageSize : 0))
    }

    /// "none" for a non-present entry; otherwise the address in hex and the set
    /// flags, e.g. `0x1a3000 RW US A D PS G NX`.
    public var description: String {
        guard isPresent else { return "none" }
        var s = "0x\(String(physicalAddress, radix: 16))"
        if raw & Self.writable != 0 { s += " RW" }
        if raw & Self.user != 0 { s += " US" }
        if raw & Self.accessed != 0 { s += " A" }
        if raw & Self.dirty != 0 { s += " D" }
        if raw & Self.pageSize != 0 { s += " PS" }
        if raw & Self.global != 0 { s += " G" }
        if raw & Self.noExecute != 0 { s += " NX" }
        return s
    }
}

/// The three leaf sizes x86-64 offers.
public enum PageSize: UInt64, Sendable, CaseIterable {
    /// 4 KiB: a PTE.
    case size4K = 0x1000
    /// 2 MiB: a huge PMD leaf.
    case size2M = 0x20_0000
    /// 1 GiB: a huge PUD leaf.
    case size1G = 0x4000_0000

    /// The table level that holds a leaf of this size (1 = PTE table).
    @inlinable public var level: Int {
        switch self {
        case .size4K: 1
        case .size2M: 2
        case .size1G: 3
        }
    }
    /// The size in bytes.
    @inlinable public var bytes: UInt64 { rawValue }
    /// The size in 4 KiB frames.
    @inlinable public var frames: Int { Int(rawValue >> 12) }

    /// The size of `bytes` bytes, or nil unless it is 4 KiB, 2 MiB or 1 GiB.
    public init?(bytes: UInt64) { self.init(rawValue: bytes) }
    /// The leaf size at table `level`: 1 gives 4 KiB, 2 gives 2 MiB, and any
    /// other level 1 GiB (no check).
    @inlinable public static func forLevel(_ level: Int) -> PageSize {
        level == 1 ? .size4K : level == 2 ? .size2M : .size1G
    }
}
