// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// Layer 6, beside the SVA registry: the machine's DMA domains, attaching
/// them to devices as their default domain (the requests without PASID), and
/// the strict unmap. Depends on the SVA registry (which owns the devices and
/// routes a request to its IOMMU), the IOMMUs and the frame memory.
final class DMADomains: @unchecked Sendable {
    // @unchecked: immutable references, locks and atomics; `timer` is
    // written by start and stop only.
    let frames: FrameMemory
    let sva: SVARegistry
    let events: EventLog
    /// The DMA API's options (MachineConfig's).
    let policy: DMAPolicy

    /// A domain and, for a translated one, its DMA cookie.
    struct Slot {
        let domain: IOMMUDomain
        let cookie: DMACookie?
    }

    /// The domains by id; nil once freed. Ids are never reused, so a stale
    /// tag can never name a new domain's lines. Held only to find or change
    /// the list, never while another engine lock is taken.
    private let list = RankedMutex<[Slot?]>(.domainList, [])

    /// Frames a lazy unmap covered whose flush is still owed, and the frees
    /// parked behind them.
    let quarantine = RankedMutex<Quarantine>(.quarantine, Quarantine())

    /// The machine ran a DMA-FQ domain (add_taint, as the seed proposes):
    /// reports made afterwards say isolation was weakened.
    let tainted = Atomic<Bool>(false)

    /// The flush-queue timers in thread mode.
    var timer: FlushTimer?

    init(frames: FrameMemory, sva: SVARegistry, policy: DMAPolicy) {
        self.frames = frames
        self.sva = sva
        self.events = frames.events
        self.policy = policy
    }

    /// iommu_domain_alloc for `iommu`, of `type`, with `pgsizeBitmap`.
    func create(iommu: UInt32, type: DomainType, pgsizeBitmap: UInt64) throws(SVAError) -> UInt32 {
        let unit = try sva.iommu(iommu)
        try Self.checkBitmap(pgsizeBitmap)
        // The id is taken first so the domain's root is allocated outside
        // the list's lock; a failed allocation leaves a nil slot behind.
        let id = try list.locked { l throws(SVAError) in
            guard l.count < 1 << 22 else { throw .noSpace }
            l.append(nil)
            return UInt32(l.count - 1)
        }
        let d = try IOMMUDomain(id: id, type: type, iommu: unit, iommuIndex: Int(iommu),
                                pgsizeBitmap: pgsizeBitmap, frames: frames)
        let cookie = type == .identity ? nil : DMACookie(
            domain: d, cpus: policy.cpus, singleQueue: unit.config.shadowedFlush, clock: policy.clock,
            release: { [unowned self] e, cpu in self.release(e, from: d, cpu: cpu) })
        list.locked { $0[Int(id)] = Slot(domain: d, cookie: cookie) }
        if type == .dmaFQ { noteLazy(d) }
        return id
    }

    func slot(_ id: UInt32) throws(SVAError) -> Slot {
        try list.locked { l throws(SVAError) in
            guard Int(id) < l.count, let s = l[Int(id)] else { throw .noDevice }
            return s
        }
    }

    /// Every live translated domain's cookie.
    var cookies: [DMACookie] { list.locked { $0.compactMap { $0?.cookie } } }

    /// A bitmap must hold 4 KiB or 64 KiB as its smallest size, and nothing
    /// but 4K, 64K, 2M and 1G.
    static func checkBitmap(_ b: UInt64) throws(SVAError) {
        let known: UInt64 = 0x1000 | 0x1_0000 | 0x20_0000 | 0x4000_0000
        guard b & ~known == 0, b & (0x1000 | 0x1_0000) != 0 else { throw .invalidArgument }
    }

    func domain(_ id: UInt32) throws(SVAError) -> IOMMUDomain { try slot(id).domain }

    /// Every live domain (for the audit).
    var all: [IOMMUDomain] { list.locked { $0.compactMap { $0?.domain } } }

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
        let s = try slot(id)
        let d = s.domain
        guard !sva.isDefaultDomainAttached(id) else { throw .busy }
        if let c = s.cookie {
            guard c.mappings.isEmpty else { throw .busy }
            c.fq.timeout()  // the teardown's drain: every queued entry released
        }
        list.locked { $0[Int(id)] = nil }
        let tables = d.detachAll()
        d.iommu.invalidateTag(d.tag)
        d.iommu.fence()
        putPages(tables)
        if let root = d.root { frames.free(root.pfn, site: .unmap) }
    }
}
