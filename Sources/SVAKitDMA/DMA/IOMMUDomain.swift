// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The IOMMU domain types Linux gives a device's default domain
/// (IOMMU_DOMAIN_*; docs/KERNEL-MODEL.md §4.1). The raw values are the C
/// ABI's `enum svakit_domain_type`.
public enum DomainType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// IOMMU_DOMAIN_IDENTITY: passthrough, the IOVA is the physical address.
    case identity = 0
    /// IOMMU_DOMAIN_DMA: translated, every unmap invalidated and synced
    /// before it returns (strict).
    case dma = 1
    /// IOMMU_DOMAIN_DMA_FQ: translated, unmaps invalidated in batches by the
    /// flush queue (lazy).
    case dmaFQ = 2

    /// The name sysfs shows in /sys/kernel/iommu_groups/N/type.
    public var description: String {
        switch self {
        case .identity: "identity"
        case .dma: "DMA"
        case .dmaFQ: "DMA-FQ"
        }
    }
}

/// The tag a DMA domain's cache lines carry, beyond the 20-bit PASID space so
/// it never collides with an SVA PASID (VT-d tags lines with a domain id).
/// Driver callbacks see it as the `pasid` of the domain's invalidations.
@inline(__always) package func domainTag(_ id: UInt32) -> UInt32 { 1 << 20 | id }

/// One DMA domain: an IOMMU page table of its own (the IOMMU's format; here
/// the x86-64 4-level layout, whose tables are frames of kind `.iommuTable`
/// so the walk oracle and the audit cover them), the IOMMU it belongs to,
/// and the page sizes it maps with (pgsize_bitmap).
///
/// `map` and `unmap` are the driver's map_pages and unmap_pages, as the
/// IOMMU profile's Linux driver does them (`TableCode`, docs/KERNEL-MODEL.md
/// §4.4b): they change the tables and hand back the tables an unmap
/// unlinked (the gather's freelist). Invalidating the IOTLB for the leaves
/// and freeing those tables is the caller's job (strict or the flush queue),
/// as in Linux; io-pgtable-arm (smmuv3) frees its tables itself, after a
/// walk flush, and hands back none.
package final class IOMMUDomain: @unchecked Sendable {
    // @unchecked: the tables change under `tablesLock`; the rest is immutable.
    package let id: UInt32
    package let type: DomainType
    package let iommu: IOMMU
    package let iommuIndex: Int
    /// Sizes the domain maps with, a bitmask of byte sizes (4K | 2M | 1G by
    /// default; 64K means 64 KiB granules made of 16 4 KiB entries).
    package let pgsizeBitmap: UInt64
    /// The root table; nil for an identity domain, which has none.
    package let root: TableFrame?
    package let frames: FrameMemory
    /// Whose page-table code the domain's map and unmap follow, by the
    /// IOMMU's profile (docs/KERNEL-MODEL.md §4.4b).
    package let tableCode: TableCode

    /// The page-table code of an IOMMU driver in Linux 6.12.118, as far as
    /// map and unmap change tables and free them.
    package enum TableCode {
        /// drivers/iommu/io-pgtable-arm.c (Arm SMMUv3): a block mapped over a
        /// table replaces it (arm_lpae_init_pte: the table is cleared, walk
        /// flushed and freed first); an unmap inside a block splits it
        /// (arm_lpae_split_blk_unmap); an unmap that clears a table entry
        /// walk-flushes its span synchronously and frees the tables at once,
        /// strict or lazy (__arm_lpae_unmap): nothing is left for the
        /// gather's freelist.
        case ioPgtableArm
        /// intel/iommu.c (VT-d), and SVAKit's generic and RISC-V profiles:
        /// an unmap that covers a table's whole span unlinks it onto the
        /// gather's freelist (dma_pte_clear_level), freed after the strict
        /// sync (intel_iommu_tlb_sync) or after the flush queue's flush
        /// (queue_iova); a leaf larger than what is left is unmapped whole.
        case gatherFreelist
        /// amd/io_pgtable.c and io_pgtable_v2.c (AMD): an unmap clears
        /// leaves only (iommu_v1_unmap_pages, iommu_v2_unmap_pages); no table
        /// is freed before the domain is.
        case leavesOnly

        package init(_ profile: IOMMUProfile) {
            switch profile {
            case .smmuv3: self = .ioPgtableArm
            case .amd: self = .leavesOnly
            case .generic, .vtd, .riscv: self = .gatherFreelist
            }
        }
    }

    /// Serialises the writers of this domain's tables. Linux's io-pgtable
    /// takes no lock (callers own disjoint IOVA ranges and races on a shared
    /// table are resolved with cmpxchg); one lock per domain is the simple
    /// equivalent. Walkers never take it.
    /// The value it protects: the domain is dead (being freed): map fails,
    /// unmap finds nothing, so a call racing iommu_domain_free never writes
    /// into tables that are going back to the allocator.
    package let tablesLock = RankedMutex<Bool>(.domainTables, false)

    /// Marks the domain dead (iommu_domain_free's first step).
    package func kill() { tablesLock.locked { $0 = true } }

    /// The IOVA space a domain's tables translate (48-bit, 4-level).
    package static let apertureEnd: UInt64 = 1 << 48

    /// Whether [phys, phys + size) lies in the peer device's MMIO window
    /// (include/svakit.h SVAKIT_MMIO_BASE): mappable for peer-to-peer DMA,
    /// backed by no frame descriptor.
    package static func isMMIO(_ phys: UInt64, _ size: UInt64) -> Bool {
        phys >= SVAKIT_MMIO_BASE && phys - SVAKIT_MMIO_BASE < SVAKIT_MMIO_SIZE
            && size <= SVAKIT_MMIO_SIZE - (phys - SVAKIT_MMIO_BASE)
    }
    /// The domain's table layout: 4 levels, whatever the CPU uses.
    private static let tableLayout = AddressLayout(levels: 4)

    package init(id: UInt32, type: DomainType, iommu: IOMMU, iommuIndex: Int, pgsizeBitmap: UInt64,
         frames: FrameMemory) throws(SVAError) {
        self.id = id
        self.type = type
        self.iommu = iommu
        self.iommuIndex = iommuIndex
        self.pgsizeBitmap = pgsizeBitmap
        self.frames = frames
        tableCode = TableCode(iommu.config.profile)
        root = type == .identity ? nil
            : TableFrame(pfn: try frames.alloc(order: 0, kind: .iommuTable, level: 4, flags: .root, site: .map),
                         level: 4)
    }

    package var tag: UInt32 { domainTag(id) }

    /// The smallest size the domain maps: the granule IOVAs are counted in.
    package var granule: UInt64 { pgsizeBitmap & (~pgsizeBitmap &+ 1) }

    /// The PASID-table entry that attaches a device's requests without
    /// PASID to this domain.
    package var entry: PasidEntry {
        guard let root else {
            return PasidEntry(root: .none, rootGeneration: 0, mm: 0, tag: tag, iommuTables: true,
                              passthrough: true, supervisorRequests: true)
        }
        return PasidEntry(root: root.pfn, rootGeneration: frames.memory.generation(root.pfn), mm: 0, tag: tag,
                          iommuTables: true, supervisorRequests: true)
    }

    private func view() -> PTView {
        PTView(memory: frames.memory, frames: frames, events: frames.events, layout: Self.tableLayout,
               root: root!, tableKind: .iommuTable)
    }

    /// Checks an (iova, size) against the domain: translated, a nonzero
    /// multiple of the granule, aligned, inside the aperture.
    package func checkRange(_ iova: UInt64, _ size: UInt64) throws(SVAError) {
        guard root != nil else { throw .invalidArgument }
        let g = granule
        guard size > 0, size % g == 0, iova % g == 0 else { throw .invalidArgument }
        guard iova < Self.apertureEnd, size <= Self.apertureEnd - iova else { throw .outOfRange }
    }

    /// The largest leaf `map` may use at `iova` for `phys` with `left` bytes
    /// to go (iommu_pgsize): allowed by the bitmap, both addresses aligned.
    private func leafSize(_ iova: UInt64, _ phys: UInt64, _ left: UInt64) -> PageSize {
        for size in [PageSize.size1G, .size2M] where pgsizeBitmap & size.bytes != 0 {
            if (iova | phys) & (size.bytes - 1) == 0 && left >= size.bytes { return size }
        }
        return .size4K
    }

    /// iommu_map: maps [iova, iova + size) to phys with the largest leaves the
    /// bitmap and the alignment allow, allocating tables as needed. On any
    /// failure what it mapped is unmapped again, invalidated and synced (a
    /// device may have walked it) before it returns, and the tables it
    /// allocated stay (as Linux leaves them); nothing else changed.
    /// io-pgtable-arm (`TableCode.ioPgtableArm`) differs: see `mapArm`.
    package func map(iova: UInt64, phys: UInt64, size: UInt64, writable: Bool) throws(SVAError) {
        try checkRange(iova, size)
        guard phys % granule == 0 else { throw .invalidArgument }
        guard phys < frames.bytes && size <= frames.bytes - phys || Self.isMMIO(phys, size) else { throw .outOfRange }
        let prot = PageTableEntry.user | (writable ? PageTableEntry.writable : 0)
        if tableCode == .ioPgtableArm {
            try mapArm(iova: iova, phys: phys, size: size, prot: prot)
        } else {
            try mapGeneric(iova: iova, phys: phys, size: size, prot: prot)
        }
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        // iommu_debug_map: after a successful map, with its phys and size.
        if _slowPath(frames.debug.enabled) { debugMap(iova: iova, phys: phys, size: size) }
        #endif
    }

    private func mapGeneric(iova: UInt64, phys: UInt64, size: UInt64, prot: UInt64) throws(SVAError) {
        let v = view()
        let failure: (SVAError, undone: UInt64)? = tablesLock.locked { dead in
            guard !dead else { return (.noDevice, 0) }
            var done: UInt64 = 0
            do throws(SVAError) {
                while done < size {
                    let s = leafSize(iova + done, phys + done, size - done)
                    guard case .slot(let slot) = try v.walk(iova + done, to: s.level, allocating: ([], .map)),
                          !v.entry(slot).isPresent
                    else { throw .exists }
                    v.setEntry(slot, .leaf(phys + done, level: s.level, prot: prot))
                    done += s.bytes
                }
                return nil
            } catch {
                return (error, done > 0 ? clear(v, iova, done) : 0)
            }
        }
        guard let failure else { return }
        if failure.undone > 0 {
            // With the lock dropped: commands reach drivers with no lock held.
            iommu.invalidateTagRange(tag, start: iova, end: iova + failure.undone - 1, leafOnly: true)
            iommu.fence()
        }
        throw failure.0
    }

    /// How many leaves of `s` iommu_pgsize's count and io-pgtable-arm's
    /// max_entries give one map_pages call at `iova`: the run of leaves of
    /// that size, within the table that holds them.
    private func batch(_ iova: UInt64, _ phys: UInt64, _ left: UInt64, _ s: PageSize) -> Int {
        let tableEnd = (iova | (s.bytes &* 512 &- 1)) &+ 1
        var n = 0
        var off: UInt64 = 0
        while off < left && iova + off != tableEnd && leafSize(iova + off, phys + off, left - off) == s {
            n += 1
            off += s.bytes
        }
        return n
    }

    /// __iommu_map over io-pgtable-arm.c's arm_lpae_map_pages (6.12.118),
    /// one map_pages call per batch (`batch`). arm_lpae_init_pte checks the
    /// batch's entries in order: a table is unmapped first (cleared, its span
    /// walk-flushed with io_pgtable_tlb_flush_walk, the tables freed:
    /// __arm_lpae_unmap with no gather), empty or not; a leaf fails the call
    /// with -EEXIST before anything of the batch is written; otherwise the
    /// batch's leaves are written. A leaf above the batch's level also gives
    /// -EEXIST (__arm_lpae_map). On an error __iommu_map unmaps what the
    /// batches before the failing one mapped (iommu_unmap).
    private func mapArm(iova: UInt64, phys: UInt64, size: UInt64, prot: UInt64) throws(SVAError) {
        let v = view()
        var done: UInt64 = 0
        var failure: SVAError? = nil
        while true {
            var flushes = WalkFlushes()
            var replaced = DetachedTables.none
            let finished: Bool = tablesLock.locked { dead in
                guard !dead else { failure = .noDevice; return true }
                do throws(SVAError) {
                    while done < size {
                        let a = iova + done, p = phys + done
                        let s = leafSize(a, p, size - done)
                        guard case .slot(let first) = try v.walk(a, to: s.level, allocating: ([], .map)) else {
                            throw .exists
                        }
                        let n = batch(a, p, size - done, s)
                        for i in 0..<n {
                            let slot = EntrySlot(holder: first.holder, index: first.index + i)
                            let va = a + UInt64(i) * s.bytes
                            if v.child(of: slot) != nil {
                                v.detachSubtree(slot, va: va, site: .map, into: &replaced)
                                flushes.add(va, s.bytes)
                            } else if v.entry(slot).isPresent {
                                // Tables before it go first (below), then -EEXIST.
                                if flushes.isEmpty { throw .exists }
                                return false
                            }
                        }
                        // The tables go (walk flush, free) before the leaves are written.
                        if !flushes.isEmpty { return false }
                        for i in 0..<n {
                            let slot = EntrySlot(holder: first.holder, index: first.index + i)
                            v.setEntry(slot, .leaf(p + UInt64(i) * s.bytes, level: s.level, prot: prot))
                        }
                        done += UInt64(n) * s.bytes
                    }
                    return true
                } catch {
                    failure = error
                    return true
                }
            }
            if !flushes.isEmpty { flushWalksAndFree(flushes, replaced, site: .map) }
            if finished { break }
        }
        guard let failure else { return }
        if done > 0 { undoArm(iova: iova, size: done) }
        throw failure
    }

    /// __iommu_map's unroll on io-pgtable-arm: iommu_unmap of what the
    /// earlier batches mapped (its walk flushes and frees, then the leaf
    /// invalidation and the sync).
    private func undoArm(iova: UInt64, size: UInt64) {
        var none = IgnoreLeaves()
        var u = unmapWalk(iova: iova, size: size, &none)
        u.flushAndFreeTables(self)
        guard u.bytes > 0 else { return }
        iommu.invalidateTagRange(tag, start: iova, end: iova + u.bytes - 1, leafOnly: true)
        iommu.fence()
    }

    /// io_pgtable_tlb_flush_walk (arm_smmu_tlb_inv_walk: a non-leaf range
    /// invalidation and CMD_SYNC) for each table entry cleared, then the
    /// tables freed (__arm_lpae_free_pgtable): with no lock held.
    fileprivate func flushWalksAndFree(_ flushes: borrowing WalkFlushes, _ tables: consuming DetachedTables,
                                       site: Site) {
        flushes.forEach { start, bytes in
            iommu.invalidateTagRange(tag, start: start, end: start + bytes - 1, leafOnly: false)
            iommu.fence()
        }
        for t in tables.release() { frames.free(t.pfn, site: site) }
    }

    /// What an unmap removed: the bytes (which may exceed the request when
    /// it cut into a larger leaf, as intel/iommu.c and AMD unmap whole
    /// leaves) and the tables it emptied, unlinked and not yet freed.
    package struct Unmapped: ~Copyable {
        package var bytes: UInt64
        package var freed: DetachedTables
        /// The table entries it cleared whose spans io-pgtable-arm walk
        /// flushes before freeing their tables (`TableCode.ioPgtableArm`);
        /// empty otherwise.
        package var walkFlushes = WalkFlushes()
        /// The frames it removed, for the window-aware sanitizer to lower
        /// once the invalidation covering them has finished
        /// (`debugFlushed`); empty in every other mode.
        package var frames = FrameRuns()

        package init(bytes: UInt64, freed: consuming DetachedTables) {
            self.bytes = bytes
            self.freed = freed
        }

        /// Hands over the freed tables (the gather's freelist).
        package consuming func takeTables() -> DetachedTables { freed }

        /// io-pgtable-arm's order inside __arm_lpae_unmap: each cleared
        /// table entry's span walk-flushed (synchronously), then its tables
        /// freed, before the unmap returns; the freelist is left empty.
        package mutating func flushAndFreeTables(_ d: IOMMUDomain) {
            guard !walkFlushes.isEmpty else { return }
            var tables = DetachedTables.none
            swap(&tables, &freed)
            d.flushWalksAndFree(walkFlushes, tables, site: .unmap)
            walkFlushes = WalkFlushes()
        }
    }

    /// iommu_unmap_fast: from `iova` on, entry by entry, as the domain's
    /// `tableCode` does it; it stops at the first hole, returning what it
    /// unmapped. No invalidation of leaves: the caller syncs (strict) or
    /// queues (lazy).
    ///
    /// - `gatherFreelist`: an entry whose whole span lies in what is left of
    ///   the range goes at once (a leaf is cleared; a table is unlinked with
    ///   everything under it, onto the gather's freelist); a leaf larger
    ///   than what is left is cleared whole (more than `size` may be
    ///   unmapped); a table is entered otherwise. A table a smaller unmap
    ///   leaves empty stays.
    /// - `ioPgtableArm`: the same, except that a table goes whole only where
    ///   its span is a page size of the bitmap (iommu_pgsize never asks for
    ///   more), a leaf larger than what is left or not aligned to it is split
    ///   (a table of the next level maps the rest; arm_lpae_split_blk_unmap),
    ///   and the tables it unlinks are walk-flushed and freed before it
    ///   returns (`Unmapped.flushAndFreeTables`).
    /// - `leavesOnly`: tables are entered, never freed; leaves are cleared
    ///   whole.
    package func unmap(iova: UInt64, size: UInt64) throws(SVAError) -> Unmapped {
        try checkRange(iova, size)
        var u: Unmapped
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        if _slowPath(frames.debug.enabled) {
            u = debugUnmap(iova: iova, size: size, frames.debug.mode)
            if tableCode == .ioPgtableArm { u.flushAndFreeTables(self) }
            return u
        }
        #endif
        var none = IgnoreLeaves()
        u = unmapWalk(iova: iova, size: size, &none)
        if tableCode == .ioPgtableArm { u.flushAndFreeTables(self) }
        return u
    }

    /// The walk of `unmap`, telling `sink` of each leaf it removes (a leaf
    /// it clears, and every leaf under a table it detaches whole). Generic
    /// so that with `IgnoreLeaves` the compiler drops the leaf visits: the
    /// sanitizer's key off costs the unmap nothing but the key test.
    package func unmapWalk<Sink: UnmapLeafSink>(iova: UInt64, size: UInt64, _ sink: inout Sink) -> Unmapped {
        let v = view()
        let code = tableCode
        let bitmap = pgsizeBitmap
        return tablesLock.locked { dead in
            var freed = DetachedTables.none
            var flushes = WalkFlushes()
            var done: UInt64 = 0
            if dead { return Unmapped(bytes: 0, freed: freed) }
            walk: while done < size {
                let a = iova + done
                var t = v.root
                while true {
                    let slot = v.slot(in: t, for: a)
                    let span = AddressLayout.span(level: t.level)
                    let whole = a & (span - 1) == 0 && size - done >= span
                        && (code != .ioPgtableArm || bitmap & span != 0 || span < granule)
                    if let child = v.child(of: slot) {
                        if whole && code != .leavesOnly {
                            if Sink.wantsLeaves { forEachLeaf(v, child) { sink.leaf($0, $1) } }
                            v.detachSubtree(slot, va: a, site: .unmap, into: &freed)
                            if code == .ioPgtableArm { flushes.add(a, span) }
                            done += span
                            continue walk
                        }
                        t = child
                        continue
                    }
                    let e = v.entry(slot)
                    guard e.isPresent else { break walk }
                    if code == .ioPgtableArm && !whole {
                        // arm_lpae_split_blk_unmap: the block becomes a table
                        // of the next level mapping it all, entered next.
                        guard let c = try? v.allocTable(level: t.level - 1, kernelHalf: false, flags: [],
                                                        site: .unmap) else { break walk }
                        let sub = span / 512
                        let prot = e.raw & (PageTableEntry.user | PageTableEntry.writable)
                        for i in 0..<512 {
                            v.setEntry(EntrySlot(holder: c, index: i),
                                       .leaf(e.physicalAddress + UInt64(i) * sub, level: c.level, prot: prot))
                        }
                        v.link(slot, to: c, va: a & ~(span - 1), site: .unmap)
                        t = c
                        continue
                    }
                    v.setEntry(slot, .none)
                    if Sink.wantsLeaves { sink.leaf(e.physicalAddress, span) }
                    done = (a & ~(span - 1)) + span - iova
                    continue walk
                }
            }
            var u = Unmapped(bytes: done, freed: freed)
            u.walkFlushes = flushes
            return u
        }
    }

    /// Calls `body(phys, bytes)` for each leaf under `t`.
    private func forEachLeaf(_ v: PTView, _ t: TableFrame, _ body: (UInt64, UInt64) -> Void) {
        for i in 0..<512 {
            let s = EntrySlot(holder: t, index: i)
            if let c = v.child(of: s) {
                forEachLeaf(v, c, body)
            } else if v.entry(s).isPresent {
                body(v.entry(s).physicalAddress, AddressLayout.span(level: t.level))
            }
        }
    }

    /// Clears the leaves `map` wrote over [iova, iova + size) (its undo):
    /// leaves only, tables stay.
    private func clear(_ v: PTView, _ iova: UInt64, _ size: UInt64) -> UInt64 {
        var done: UInt64 = 0
        while done < size {
            let (slot, present) = v.lastSlot(iova + done)
            guard present else { break }
            let leaf = PageSize.forLevel(slot.holder.level)
            v.setEntry(slot, .none)
            done = (iova + done) & ~(leaf.bytes - 1) + leaf.bytes - iova
        }
        return done
    }

    /// iommu_iova_to_phys: the software walk of the domain's tables.
    package func iovaToPhys(_ iova: UInt64) -> UInt64? {
        guard root != nil else { return iova }
        guard iova < Self.apertureEnd else { return nil }
        return tablesLock.locked { dead in dead ? nil : view().translate(iova).physicalAddress }
    }

    /// Unlinks every table under the root (domain teardown), telling `sink`
    /// of each leaf still mapped; the caller frees the tables and the root
    /// once no walk can reach them.
    package func detachAll<Sink: UnmapLeafSink>(_ sink: inout Sink) -> DetachedTables {
        guard let root else { return .none }
        let v = view()
        return tablesLock.locked { _ in
            var all = DetachedTables.none
            // Every entry of the root: a DMA domain's IOVA space has no
            // shared kernel half (IOVAs at and above 1 << 47 are the
            // domain's own, as below).
            for i in 0..<512 {
                let slot = EntrySlot(holder: root, index: i)
                if Sink.wantsLeaves, let child = v.child(of: slot) { forEachLeaf(v, child) { sink.leaf($0, $1) } }
                v.detachSubtree(slot, va: UInt64(i) << 39, site: .unmap, into: &all)
            }
            return all
        }
    }
}

/// The spans of the table entries an io-pgtable-arm map or unmap cleared,
/// each walk-flushed before its tables are freed. Empty (no allocation)
/// on every path that clears no table entry.
package struct WalkFlushes {
    private var spans: [(start: UInt64, bytes: UInt64)] = []

    package var isEmpty: Bool { spans.isEmpty }

    package mutating func add(_ start: UInt64, _ bytes: UInt64) { spans.append((start, bytes)) }

    package func forEach(_ body: (UInt64, UInt64) -> Void) {
        for s in spans { body(s.start, s.bytes) }
    }
}
