// SPDX-License-Identifier: Apache-2.0
import CSVAKit

/// A physical frame number. Frames are 4 KiB; the model addresses up to 2^32
/// of them (16 TiB), so a PFN fits the 32-bit links of the ptdesc.
@frozen
public struct PFN: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The frame number: the physical address >> 12.
    public var rawValue: UInt32

    /// The frame numbered `raw`.
    @inlinable public init(_ raw: UInt32) { rawValue = raw }
    /// The frame numbered `raw`, truncated to 32 bits (no range check: the
    /// machine checks a PFN when it is used and throws ``SVAError/outOfRange``).
    @inlinable public init(_ raw: Int) { rawValue = UInt32(truncatingIfNeeded: raw) }

    /// The end-of-list marker of the ptdesc links.
    public static let none = PFN(SVAKIT_NO_PFN)

    /// The frame number as an `Int`, for indexing.
    @inlinable public var index: Int { Int(rawValue) }
    /// The physical address of the frame's first byte (`rawValue << 12`).
    @inlinable public var physicalAddress: UInt64 { UInt64(rawValue) << 12 }
    /// Orders frames by number.
    @inlinable public static func < (a: PFN, b: PFN) -> Bool { a.rawValue < b.rawValue }
    /// The frame `n` frames after `a`; wraps at 2^32.
    @inlinable public static func + (a: PFN, n: Int) -> PFN { PFN(a.index + n) }
    /// The hexadecimal frame number, e.g. `pfn 0x1a3`.
    public var description: String { "pfn 0x\(String(rawValue, radix: 16))" }
}

/// log2 of the frame size: 12 (`PAGE_SHIFT`).
public let pageShift = 12
/// Bytes per frame: 4096 (`PAGE_SIZE`).
public let pageSize = 4096
/// The largest allocation order, 10: a block is at most 2^10 frames (4 MiB),
/// as `MAX_PAGE_ORDER` on x86.
public let maxOrder = Int(SVAKIT_MAX_ORDER)
/// Frames per memory hotplug section: 2^15 (128 MiB, `PAGES_PER_SECTION` on
/// x86-64). `Machine/hotRemove(pfn:pages:)` works in whole sections.
public let sectionPages = Int(SVAKIT_SECTION_PAGES)

/// What a frame is now (ptdesc.kind).
public enum FrameKind: UInt8, Sendable, CustomStringConvertible {
    /// On the allocator's free lists (or never allocated).
    case free = 0
    /// A kernel page table (init_mm's: the kernel half every mm shares).
    case kernelTable = 1
    /// A page table of a process address space (its root included).
    case userTable = 2
    /// A data frame (`Machine/allocFrames(order:owner:)`, vmalloc backing).
    case data = 3
    /// Hot-removed memory (`Machine/hotRemove(pfn:pages:)`).
    case offline = 4
    /// A table of an IOMMU DMA domain (the IOMMU's own page table).
    case iommuTable = 5

    /// Whether the frame holds a page table (kernel, user or IOMMU).
    public var isTable: Bool { self == .kernelTable || self == .userTable || self == .iommuTable }
    /// Plain words: "free", "kernel page table", "user page table", "data",
    /// "offline" or "IOMMU page table".
    public var description: String {
        switch self {
        case .free: "free"
        case .kernelTable: "kernel page table"
        case .userTable: "user page table"
        case .data: "data"
        case .offline: "offline"
        case .iommuTable: "IOMMU page table"
        }
    }
}

/// Who allocated a frame, or which path freed it (enum svakit_site).
public enum Site: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    /// `none`: no site; `boot`: boot-time tables and direct map; `api`: direct
    /// calls such as `Machine/allocFrames(order:owner:)`; `map`, `unmap`: mapping
    /// and unmapping; `vmalloc`, `vfree`; `pmdFreePtePage`, `pudFreePmdPage`: the
    /// huge-vmap paths that free the table a huge leaf replaces.
    case none = 0, boot, api, map, unmap, vmalloc, vfree, pmdFreePtePage, pudFreePmdPage
    /// `setMemorySplit`: `set_memory` splitting a large leaf; `setMemoryCollapse`:
    /// `cpa_collapse_large_pages`; `hotRemove`, `hotAdd`: memory hotplug;
    /// `mmCreate`, `mmTeardown`: an mm's life; `pgtableWork`: the deferred-free
    /// work; `arch`: the primitives such as `Machine/allocKernelTable(level:)`.
    case setMemorySplit, setMemoryCollapse, hotRemove, hotAdd, mmCreate, mmTeardown, pgtableWork, arch
    /// `vmapPurge`: `__purge_vmap_area_lazy`, the flush vfree left to the
    /// lazy purge.
    case vmapPurge

    /// The kernel function or path, e.g. "pmd_free_pte_page",
    /// "kernel_pgtable_work_func" or "memory hot-remove".
    public var description: String {
        switch self {
        case .none: "none"
        case .boot: "boot"
        case .api: "api"
        case .map: "map"
        case .unmap: "unmap"
        case .vmalloc: "vmalloc"
        case .vfree: "vfree"
        case .pmdFreePtePage: "pmd_free_pte_page"
        case .pudFreePmdPage: "pud_free_pmd_page"
        case .setMemorySplit: "set_memory split"
        case .setMemoryCollapse: "cpa_collapse_large_pages"
        case .hotRemove: "memory hot-remove"
        case .hotAdd: "memory hot-add"
        case .mmCreate: "mm create"
        case .mmTeardown: "mm teardown"
        case .pgtableWork: "kernel_pgtable_work_func"
        case .arch: "arch code"
        case .vmapPurge: "__purge_vmap_area_lazy"
        }
    }
}
