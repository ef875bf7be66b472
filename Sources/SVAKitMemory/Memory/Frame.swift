// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// ptdesc.flags (SVAKIT_PTDESC_*).
public struct PtdescFlags: OptionSet, Sendable {
    /// The `SVAKIT_PTDESC_*` bits as `ptdesc.flags` stores them.
    public var rawValue: UInt8
    /// Flags from their `SVAKIT_PTDESC_*` bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// PT_kernel: the kernel frees this table through pagetable_free_kernel().
    public static let kernel = PtdescFlags(rawValue: UInt8(SVAKIT_PTDESC_KERNEL))
    /// Allocated at boot (PageReserved).
    public static let bootmem = PtdescFlags(rawValue: UInt8(SVAKIT_PTDESC_BOOTMEM))
    /// A non-head frame of a multi-frame block.
    public static let tail = PtdescFlags(rawValue: UInt8(SVAKIT_PTDESC_TAIL))
    /// A live entry points at this table.
    public static let linked = PtdescFlags(rawValue: UInt8(SVAKIT_PTDESC_LINKED))
    /// Queued on the deferred-free list, waiting for the
    /// `kernel_pgtable_work_func` batch to invalidate the IOMMUs and free it.
    public static let deferred = PtdescFlags(rawValue: UInt8(SVAKIT_PTDESC_DEFERRED))
    /// A PTE table that a `set_memory` split allocated (x86 allocates it
    /// without the PT_kernel mark).
    public static let split = PtdescFlags(rawValue: UInt8(SVAKIT_PTDESC_SPLIT))
    /// The root (PGD) of an address space.
    public static let root = PtdescFlags(rawValue: UInt8(SVAKIT_PTDESC_ROOT))
}

/// The page descriptor as memory stores it: the C struct itself, so the
/// layout C sees is the one Swift stores (32 bytes, checked in abi_checks.c
/// and LayoutTests).
@_spi(Engine) public typealias Ptdesc = svakit_ptdesc

extension svakit_ptdesc {
    package var frameKind: FrameKind { FrameKind(rawValue: kind) ?? .free }
    package var ptFlags: PtdescFlags {
        get { PtdescFlags(rawValue: flags) }
        set { flags = newValue.rawValue }
    }
    package var allocSite: Site { Site(rawValue: site) ?? .none }
}

/// What a frame's page descriptor (ptdesc) says about it now: the public,
/// read-only view of `struct svakit_ptdesc` without the allocator's links.
public struct FrameDescriptor: Sendable, Equatable {
    /// What the frame is.
    public var kind: FrameKind
    /// The table level, 1 (PTE) ... 5 (PML5), for a page table; 0 otherwise.
    public var level: Int
    /// The order of the block the frame heads.
    public var order: Int
    /// The PT_kernel mark and the bookkeeping flags.
    public var flags: PtdescFlags
    /// The path that last allocated the frame.
    public var site: Site
    /// The owner tag of a data frame.
    public var owner: UInt16
    /// Changes at every free, so a stale reference can be told from a live one.
    public var generation: UInt32
    /// The event step (low 32 bits) of the last allocation.
    public var allocStep: UInt32

    package init(_ d: Ptdesc) {
        kind = d.frameKind
        level = Int(d.level)
        order = Int(d.order)
        flags = d.ptFlags
        site = d.allocSite
        owner = d.owner
        generation = d.generation
        allocStep = d.alloc_step
    }
}

extension UnsafeMutablePointer where Pointee == svakit_ptdesc {
    /// The descriptor of `pfn` in a descriptor array.
    @inlinable @_spi(Engine) public subscript(_ pfn: PFN) -> Ptdesc {
        unsafeAddress { UnsafePointer(self + pfn.index) }
        nonmutating unsafeMutableAddress { self + pfn.index }
    }
}

extension EventLog {
    /// Records a step about a frame, described by its descriptor after the
    /// step (its level, kind, order and generation).
    @discardableResult
    package func record(_ type: EventType, site: Site, pfn: PFN, desc: Ptdesc, va: UInt64 = 0, aux: UInt64 = 0) -> UInt64 {
        record(type, site: site, pfn: pfn, level: Int(desc.level), kind: FrameKind(rawValue: desc.kind) ?? .free,
               order: Int(desc.order), generation: desc.generation, va: va, aux: aux)
    }
}
