// SPDX-License-Identifier: Apache-2.0
import CSVAKit

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
@inline(__always) func domainTag(_ id: UInt32) -> UInt32 { 1 << 20 | id }

/// One DMA domain: an IOMMU page table of its own (the IOMMU's format; here
/// the x86-64 4-level layout, whose tables are frames of kind `.iommuTable`
/// so the walk oracle and the audit cover them), the IOMMU it belongs to,
/// and the page sizes it maps with (pgsize_bitmap).
///
/// `map` and `unmap` are io-pgtable's map_pages and unmap_pages: they change
/// the tables and hand back the tables an unmap emptied (the gather's
/// freelist). Invalidating the IOTLB and freeing those tables is the
/// caller's job (strict or the flush queue), as in Linux.
final class IOMMUDomain: @unchecked Sendable {
    // @unchecked: the tables change under `tablesLock`; the rest is immutable.
    let id: UInt32
    let type: DomainType
    let iommu: IOMMU
    let iommuIndex: Int
    /// Sizes the domain maps with, a bitmask of byte sizes (4K | 2M | 1G by
    /// default; 64K means 64 KiB granules made of 16 4 KiB entries).
    let pgsizeBitmap: UInt64
    /// The root table; nil for an identity domain, which has none.
    let root: TableFrame?
    let frames: FrameMemory

    /// Serialises the writers of this domain's tables. Linux's io-pgtable
    /// takes no lock (callers own disjoint IOVA ranges and races on a shared
    /// table are resolved with cmpxchg); one lock per domain is the simple
    /// equivalent. Walkers never take it.
    /// The value it protects: the domain is dead (being freed): map fails,
    /// unmap finds nothing, so a call racing iommu_domain_free never writes
    /// into tables that are going back to the allocator.
    let tablesLock = RankedMutex<Bool>(.domainTables, false)

    /// Marks the domain dead (iommu_domain_free's first step).
    func kill() { tablesLock.locked { $0 = true } }

    /// The IOVA space a domain's tables translate (48-bit, 4-level).
    static let apertureEnd: UInt64 = 1 << 48

    /// Whether [phys, phys + size) lies in the peer device's MMIO window
    /// (include/svakit.h SVAKIT_MMIO_BASE): mappable for peer-to-peer DMA,
    /// backed by no frame descriptor.
    static func isMMIO(_ phys: UInt64, _ size: UInt64) -> Bool {
        phys >= SVAKIT_MMIO_BASE && phys - SVAKIT_MMIO_BASE < SVAKIT_MMIO_SIZE
            && size <= SVAKIT_MMIO_SIZE - (phys - SVAKIT_MMIO_BASE)
    }
    /// The domain's table layout: 4 levels, whatever the CPU uses.
    private static let tableLayout = AddressLayout(levels: 4)

    init(id: UInt32, type: DomainType, iommu: IOMMU, iommuIndex: Int, pgsizeBitmap: UInt64,
         frames: FrameMemory) throws(SVAError) {
        self.id = id
        self.type = type
        self.iommu = iommu
        self.iommuIndex = iommuIndex
        self.pgsizeBitmap = pgsizeBitmap
        self.frames = frames
        root = type == .identity ? nil
            : TableFrame(pfn: try frames.alloc(order: 0, kind: .iommuTable, level: 4, flags: .root, site: .map),
                         level: 4)
    }

    var tag: UInt32 { domainTag(id) }

    /// The smallest size the domain maps: the granule IOVAs are counted in.
    var granule: UInt64 { pgsizeBitmap & (~pgsizeBitmap &+ 1) }

    /// The PASID-table entry that attaches a device's requests without
    /// PASID to this domain.
    var entry: PasidEntry {
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
    func checkRange(_ iova: UInt64, _ size: UInt64) throws(SVAError) {
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
    func map(iova: UInt64, phys: UInt64, size: UInt64, writable: Bool) throws(SVAError) {
        try checkRange(iova, size)
        guard phys % granule == 0 else { throw .invalidArgument }
        guard phys < frames.bytes && size <= frames.bytes - phys || Self.isMMIO(phys, size) else { throw .outOfRange }
        let v = view()
        let prot = PageTableEntry.user | (writable ? PageTableEntry.writable : 0)
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
        guard let failure else {
            #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
            // iommu_debug_map: after a successful map, with its phys and size.
            if _slowPath(frames.debug.enabled) { debugMap(iova: iova, phys: phys, size: size) }
            #endif
            return
        }
        if failure.undone > 0 {
            // With the lock dropped: commands reach drivers with no lock held.
            iommu.invalidateTagRange(tag, start: iova, end: iova + failure.undone - 1, leafOnly: true)
            iommu.fence()
        }
        throw failure.0
    }

    /// What an unmap removed: the bytes (which may exceed the request when
    /// it cut into a larger leaf, as io-pgtable unmaps whole leaves) and the
    /// tables it emptied, unlinked and not yet freed.
    struct Unmapped: ~Copyable {
        var bytes: UInt64
        var freed: DetachedTables
        /// The frames it removed, for the window-aware sanitizer to lower
        /// once the invalidation covering them has finished
        /// (`debugFlushed`); empty in every other mode.
        var frames = FrameRuns()

        init(bytes: UInt64, freed: consuming DetachedTables) {
            self.bytes = bytes
            self.freed = freed
        }

        /// Hands over the freed tables (the gather's freelist).
        consuming func takeTables() -> DetachedTables { freed }
    }

    /// iommu_unmap_fast, with io-pgtable's semantics: from `iova` on, an
    /// entry whose whole span lies in what is left of the range goes at once
    /// (a leaf is cleared; a table is unlinked with everything under it, the
    /// gather's freelist); a leaf larger than what is left is cleared whole
    /// (so more than `size` may be unmapped); a table is entered otherwise.
    /// It stops at the first hole, returning what it unmapped. A table that
    /// a smaller unmap leaves empty stays, as in Linux. No invalidation: the
    /// caller syncs (strict) or queues (lazy).
    func unmap(iova: UInt64, size: UInt64) throws(SVAError) -> Unmapped {
        try checkRange(iova, size)
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        if _slowPath(frames.debug.enabled) { return debugUnmap(iova: iova, size: size, frames.debug.mode) }
        #endif
        var none = IgnoreLeaves()
        return unmapWalk(iova: iova, size: size, &none)
    }

    /// The walk of `unmap`, telling `sink` of each leaf it removes (a leaf
    /// it clears, and every leaf under a table it detaches whole). Generic
    /// so that with `IgnoreLeaves` the compiler drops the leaf visits: the
    /// sanitizer's key off costs the unmap nothing but the key test.
    func unmapWalk<Sink: UnmapLeafSink>(iova: UInt64, size: UInt64, _ sink: inout Sink) -> Unmapped {
        let v = view()
        return tablesLock.locked { dead in
            var freed = DetachedTables.none
            var done: UInt64 = 0
            if dead { return Unmapped(bytes: 0, freed: freed) }
            walk: while done < size {
                let a = iova + done
                var t = v.root
                while true {
                    let slot = v.slot(in: t, for: a)
                    let span = AddressLayout.span(level: t.level)
                    if let child = v.child(of: slot) {
                        if a & (span - 1) == 0 && size - done >= span {
                            if Sink.wantsLeaves { forEachLeaf(v, child) { sink.leaf($0, $1) } }
                            v.detachSubtree(slot, va: a, site: .unmap, into: &freed)
                            done += span
                            continue walk
                        }
                        t = child
                        continue
                    }
                    let e = v.entry(slot)
                    guard e.isPresent else { break walk }
                    v.setEntry(slot, .none)
                    if Sink.wantsLeaves { sink.leaf(e.physicalAddress, span) }
                    done = (a & ~(span - 1)) + span - iova
                    continue walk
                }
            }
            return Unmapped(bytes: done, freed: freed)
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
    func iovaToPhys(_ iova: UInt64) -> UInt64? {
        guard root != nil else { return iova }
        guard iova < Self.apertureEnd else { return nil }
        return tablesLock.locked { dead in dead ? nil : view().translate(iova).physicalAddress }
    }

    /// Unlinks every table under the root (domain teardown), telling `sink`
    /// of each leaf still mapped; the caller frees the tables and the root
    /// once no walk can reach them.
    func detachAll<Sink: UnmapLeafSink>(_ sink: inout Sink) -> DetachedTables {
        guard let root else { return .none }
        let v = view()
        return tablesLock.locked { _ in
            var all = DetachedTables.none
            for i in 0..<256 {
                let slot = EntrySlot(holder: root, index: i)
                if Sink.wantsLeaves, let child = v.child(of: slot) { forEachLeaf(v, child) { sink.leaf($0, $1) } }
                v.detachSubtree(slot, va: UInt64(i) << 39, site: .unmap, into: &all)
            }
            for i in 0..<512 { v.setEntry(EntrySlot(holder: root, index: i), .none) }
            return all
        }
    }
}
