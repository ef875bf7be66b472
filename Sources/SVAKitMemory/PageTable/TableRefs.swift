// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// A page table: a frame and the level of the table it holds (1 = PTE table,
/// 2 = PMD, 3 = PUD, 4 = P4D or PML4, 5 = PML5).
@frozen
public struct TableFrame: Hashable, Sendable, CustomStringConvertible {
    /// The frame that holds the table.
    public let pfn: PFN
    /// The table's level, 1 (PTE) ... 5 (PML5).
    public let level: Int
    /// The table in `pfn`, at `level`.
    @inlinable @_spi(Engine) public init(pfn: PFN, level: Int) { self.pfn = pfn; self.level = level }
    /// The level and frame, e.g. `L2 table at pfn 0x1a3`.
    public var description: String { "L\(level) table at \(pfn)" }
}

/// One entry: *the table that holds it* and its index there. Deliberately a
/// different type from the table the entry points to, which only
/// `PTView.child(of:)` or `unlink(_:)` yield. Confusing the two freed a
/// live PMD table in v6 of the kernel series (`pmd_ptdesc(pmd)` instead of
/// `page_ptdesc(pmd_page(*pmd))`, docs/KERNEL-MODEL.md §2.8).
@frozen
public struct EntrySlot: Hashable, Sendable, CustomStringConvertible {
    /// The table that holds the entry.
    public let holder: TableFrame
    /// The entry's index in the holder, 0 ..< 512.
    public let index: Int
    /// Entry `index` of `holder`.
    @inlinable @_spi(Engine) public init(holder: TableFrame, index: Int) { self.holder = holder; self.index = index }
    /// The index and holder, e.g. `entry 17 of L2 table at pfn 0x1a3`.
    public var description: String { "entry \(index) of \(holder)" }
}
