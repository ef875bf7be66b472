// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// The CPU side's view of one address space's tables, valid while its
/// page_table_lock is held (`PageTables.withKernel`, `withMM`): entry reads
/// and writes, and the one software walker every path uses.
///
/// Entries are read and written with single atomic accesses
/// (`PhysicalMemory.loadEntry`/`storeEntry`) because IOMMU walkers read them
/// with no lock; the lock serialises CPU-side writers only.
@_spi(Engine) public struct PTView {
    @usableFromInline package let memory: PhysicalMemory
    // unowned(unsafe): a view is transient and the machine owns both for
    // its life; a view copied per call across modules would otherwise
    // retain and release them each time (the DMA map/unmap path).
    @usableFromInline package unowned(unsafe) let frames: FrameMemory
    @usableFromInline package unowned(unsafe) let events: EventLog
    @usableFromInline package let layout: AddressLayout
    @usableFromInline package let root: TableFrame
    /// The kind of the tables this view allocates: nil for a CPU address
    /// space (kernel or user by the half), `.iommuTable` for a DMA domain.
    @usableFromInline package var tableKind: FrameKind? = nil
    /// clear-us: entries that point at tables are written without U/S
    /// (init_mm's view only).
    @usableFromInline package var kernelEntriesWithoutUser = false
    /// kpti-root: the IOMMU-only root that mirrors this mm's user-half
    /// top-level entries, if the mm has one.
    @usableFromInline package var iommuRoot: IOMMURootMirror? = nil

    // The view and its entry accessors and walk are inlinable: the DMA
    // layer maps and unmaps its IOMMU tables through them on every call,
    // and a copy of the view per call across modules costs retains.
    /// A view of the tables under `root`.
    @inlinable @_spi(Engine) public init(memory: PhysicalMemory, frames: FrameMemory, events: EventLog, layout: AddressLayout,
                 root: TableFrame, tableKind: FrameKind? = nil, kernelEntriesWithoutUser: Bool = false,
                 iommuRoot: IOMMURootMirror? = nil) {
        self.memory = memory
        self.frames = frames
        self.events = events
        self.layout = layout
        self.root = root
        self.tableKind = tableKind
        self.kernelEntriesWithoutUser = kernelEntriesWithoutUser
        self.iommuRoot = iommuRoot
    }

    /// The entry in `slot` now (one atomic load).
    @inlinable @_spi(Engine) public func entry(_ slot: EntrySlot) -> PageTableEntry {
        PageTableEntry(raw: memory.loadEntry(slot.holder.pfn, slot.index))
    }

    /// set_pte / set_pmd for leaves and clears. Pointers to tables change
    /// only through `link` and `unlink` (Unlink.swift). A top-level entry of
    /// the user half is mirrored into the IOMMU-only root (kpti-root) right
    /// after, under the same page_table_lock, as KPTI's pgd setter updates
    /// the user copy: a device sees a new region once the mirror is stored.
    @inlinable @_spi(Engine) public func setEntry(_ slot: EntrySlot, _ e: PageTableEntry) {
        memory.storeEntry(slot.holder.pfn, slot.index, e.raw)
        if iommuRoot != nil { mirrorUserRoot(slot, e) }
    }

    /// kpti-root's half of `setEntry`.
    @usableFromInline package func mirrorUserRoot(_ slot: EntrySlot, _ e: PageTableEntry) {
        if let m = iommuRoot, slot.holder.pfn == root.pfn, slot.index < AddressLayout.kernelRootEntries.lowerBound {
            memory.storeEntry(m.pfn, slot.index, e.raw)
            m.space.iommuRootSyncs.add(1, ordering: .relaxed)
        }
    }

    /// The table an entry points to: nil for an empty entry or a leaf.
    @inlinable @_spi(Engine) public func child(of slot: EntrySlot) -> TableFrame? {
        let e = entry(slot)
        guard e.isPresent, slot.holder.level > 1, !e.isHugeLeaf, memory.contains(e.pfn) else { return nil }
        return TableFrame(pfn: e.pfn, level: slot.holder.level - 1)
    }

    /// The slot of `table` that maps `va`.
    @inlinable @_spi(Engine) public func slot(in table: TableFrame, for va: UInt64) -> EntrySlot {
        EntrySlot(holder: table, index: AddressLayout.index(va, level: table.level))
    }

    // MARK: - The walker

    /// Where a software walk toward `level` stopped.
    @frozen @_spi(Engine) public enum WalkEnd {
        /// The slot for `va` in the table at the level asked for.
        case slot(EntrySlot)
        /// A present huge leaf above that level covers `va`.
        case leaf(EntrySlot)
        /// A non-present entry above that level.
        case hole(EntrySlot)
    }

    /// The one software walk (what the CPU's page walker and every kernel
    /// path do): from the root toward the table of `level` that maps `va`.
    /// With `allocating`, missing tables are allocated and linked on the
    /// way (pte_alloc and friends), so `.hole` never comes back.
    @inlinable @_spi(Engine) public func walk(_ va: UInt64, to level: Int,
              allocating: (flags: PtdescFlags, site: Site)? = nil) throws(SVAError) -> WalkEnd {
        var table = root
        while table.level > level {
            let s = slot(in: table, for: va)
            if let next = child(of: s) {
                table = next
                continue
            }
            if entry(s).isPresent { return .leaf(s) }
            guard let (flags, site) = allocating else { return .hole(s) }
            let t = try allocTable(level: table.level - 1, kernelHalf: layout.isKernel(va), flags: flags, site: site)
            link(s, to: t, va: va, site: site)
            table = t
        }
        return .slot(slot(in: table, for: va))
    }

    /// The slot at `level` for `va`, if every table above it exists.
    package func lookup(_ va: UInt64, level: Int) -> EntrySlot? {
        guard case .slot(let s)? = try? walk(va, to: level) else { return nil }
        return s
    }

    /// The slot where the walk of `va` ends: a leaf (present) or the first
    /// empty entry (not present).
    package func lastSlot(_ va: UInt64) -> (EntrySlot, present: Bool) {
        switch try? walk(va, to: 1) {
        case .slot(let s)?: (s, entry(s).isPresent)
        case .leaf(let s)?: (s, true)
        case .hole(let s)?: (s, false)
        case nil: fatalError("a walk without allocation cannot fail")
        }
    }

    /// The translation of `va`.
    package func translate(_ va: UInt64) -> Translation {
        let (s, present) = lastSlot(va)
        guard present else { return .notPresent(level: s.holder.level) }
        let e = entry(s)
        let size = PageSize.forLevel(s.holder.level)
        return .mapped(phys: e.physicalAddress | (va & (size.bytes - 1)), size: size, entry: e, level: s.holder.level)
    }

    /// A zeroed table for `level`. Tables of the kernel half are kernel tables;
    /// `flags` carries the PT_kernel mark when the allocating path sets it.
    @usableFromInline package func allocTable(level: Int, kernelHalf: Bool, flags: PtdescFlags, site: Site) throws(SVAError) -> TableFrame {
        let pfn = try frames.alloc(order: 0, kind: tableKind ?? (kernelHalf ? .kernelTable : .userTable),
                                   level: level, flags: flags, site: site)
        return TableFrame(pfn: pfn, level: level)
    }

    /// Whether a table maps nothing.
    package func isEmpty(_ t: TableFrame) -> Bool {
        for i in 0..<512 where memory.loadEntry(t.pfn, i) != 0 { return false }
        return true
    }

    /// Whether `t` maps nothing: no leaves, and only empty tables below it.
    package func holdsOnlyEmptyTables(_ t: TableFrame) -> Bool {
        for i in 0..<512 {
            let s = EntrySlot(holder: t, index: i)
            if let c = child(of: s) {
                if !holdsOnlyEmptyTables(c) { return false }
            } else if entry(s).isPresent {
                return false
            }
        }
        return true
    }
}

/// An mm's IOMMU-only root (kpti-root) as a view of that mm mirrors into it.
@_spi(Engine) public struct IOMMURootMirror {
    package let pfn: PFN
    /// The mm, for its count of mirrored entries.
    package let space: AddressSpace
}

/// The result of a software walk.
public enum Translation: Equatable, Sendable {
    /// `va` maps to `phys` through a leaf of `size` at `level`.
    case mapped(phys: UInt64, size: PageSize, entry: PageTableEntry, level: Int)
    /// The entry at `level` is not present.
    case notPresent(level: Int)

    /// The physical address `va` maps to, or nil when it is not mapped.
    public var physicalAddress: UInt64? {
        if case .mapped(let p, _, _, _) = self { return p }
        return nil
    }
}
