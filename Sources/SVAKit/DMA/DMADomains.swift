// SPDX-License-Identifier: Apache-2.0

/// Layer 6, beside the SVA registry: the machine's DMA domains, attaching
/// them to devices as their default domain (the requests without PASID), and
/// the strict unmap. Depends on the SVA registry (which owns the devices and
/// routes a request to its IOMMU), the IOMMUs and the frame memory.
final class DMADomains: Sendable {
    let frames: FrameMemory
    let sva: SVARegistry

    /// The domains by id; nil once freed. Ids are never reused, so a stale
    /// tag can never name a new domain's lines. Held only to find or change
    /// the list, never while another engine lock is taken (it shares the
    /// mm list's rank, and is never nested with it).
    private let list = RankedMutex<[IOMMUDomain?]>(.addressSpaces, [])

    init(frames: FrameMemory, sva: SVARegistry) {
        self.frames = frames
        self.sva = sva
    }

    /// iommu_domain_alloc for `iommu`, of `type`, with `pgsizeBitmap`.
    func create(iommu: UInt32, type: DomainType, pgsizeBitmap: UInt64) throws(SVAError) -> UInt32 {
        let unit = try sva.iommu(iommu)
        try Self.checkBitmap(pgsizeBitmap)
        // The id is taken first so the domain's root is allocated outside
        // the list's lock; a failed allocation leaves a nil slot behind.
        let id = list.locked { l in l.append(nil); return UInt32(l.count - 1) }
        let d = try IOMMUDomain(id: id, type: type, iommu: unit, iommuIndex: Int(iommu),
                                pgsizeBitmap: pgsizeBitmap, frames: frames)
        list.locked { $0[Int(id)] = d }
        return id
    }

    /// A bitmap must hold 4 KiB or 64 KiB as its smallest size, and nothing
    /// but 4K, 64K, 2M and 1G.
    static func checkBitmap(_ b: UInt64) throws(SVAError) {
        let known: UInt64 = 0x1000 | 0x1_0000 | 0x20_0000 | 0x4000_0000
        guard b & ~known == 0, b & (0x1000 | 0x1_0000) != 0 else { throw .invalidArgument }
    }

    func domain(_ id: UInt32) throws(SVAError) -> IOMMUDomain {
        try list.locked { l throws(SVAError) in
            guard Int(id) < l.count, let d = l[Int(id)] else { throw .noDevice }
            return d
        }
    }

    /// Every live domain (for the audit).
    var all: [IOMMUDomain] { list.locked { $0.compactMap { $0 } } }

    /// Attaches `device`'s requests without PASID to domain `id`.
    func attach(device: UInt32, domain id: UInt32) throws(SVAError) {
        let d = try domain(id)
        try sva.attachDefaultDomain(device: device, iommu: d.iommuIndex, domain: id, entry: d.entry)
    }

    /// Detaches the device's default domain, then invalidates the domain's
    /// lines on its IOMMU and fences, so no walk through it is in flight.
    func detach(device: UInt32) throws(SVAError) {
        let id = try sva.detachDefaultDomain(device: device)
        let d = try domain(id)
        d.iommu.invalidateTag(d.tag)
        d.iommu.fence()
    }

    /// iommu_unmap in strict mode: clears the entries, invalidates the range
    /// (leaf-only when no table was freed, as the gather's freelist tells),
    /// syncs, then frees the tables. Returns the bytes unmapped.
    func unmapStrict(_ d: IOMMUDomain, iova: UInt64, size: UInt64) throws(SVAError) -> UInt64 {
        let u = try d.unmap(iova: iova, size: size)
        guard u.bytes > 0 else { throw .notFound }
        d.iommu.invalidateTagRange(d.tag, start: iova, end: iova + u.bytes - 1, leafOnly: u.freed.isEmpty)
        d.iommu.fence()
        let bytes = u.bytes
        putPages(u.takeTables())
        return bytes
    }

    /// iommu_put_pages_list: frees tables nothing can walk any more.
    func putPages(_ tables: consuming DetachedTables) {
        for t in tables.release() { frames.free(t.pfn, site: .unmap) }
    }

    /// iommu_domain_free: refused while a device is attached; otherwise the
    /// tables are unlinked, the domain's lines dropped and fenced, and every
    /// table and the root freed.
    func free(_ id: UInt32) throws(SVAError) {
        let d = try domain(id)
        guard !sva.isDefaultDomainAttached(id) else { throw .busy }
        list.locked { $0[Int(id)] = nil }
        let tables = d.detachAll()
        d.iommu.invalidateTag(d.tag)
        d.iommu.fence()
        putPages(tables)
        if let root = d.root { frames.free(root.pfn, site: .unmap) }
    }
}
