// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The machine's DMA domains, beside SVA on the IOMMU core: attaching them
/// to devices as their default domain (the requests without PASID), and the
/// strict unmap. Depends on the core (which owns the devices and routes a
/// request to its IOMMU), the IOMMUs and the frame memory; never on SVA.
package final class DMADomains: @unchecked Sendable {
    // @unchecked: immutable references, locks and atomics; `timer` is
    // written by start and stop only.
    package let frames: FrameMemory
    package let core: IOMMUCore
    package let events: EventLog
    /// The DMA API's options (MachineConfig's).
    package let policy: DMAPolicy

    /// A domain and, for a translated one, its DMA cookie.
    package struct Slot {
        package let domain: IOMMUDomain
        package let cookie: DMACookie?
    }

    /// The domains by id; nil once freed. Ids are never reused, so a stale
    /// tag can never name a new domain's lines. Held only to find or change
    /// the list, never while another engine lock is taken.
    private let domainSlots = RankedMutex<[Slot?]>(.domainList, [])

    /// The DMA API's lock-free way to a domain's cookie: slot `id` holds the
    /// cookie's address (1 for a domain without one or freed), written under
    /// `domainSlots`. Cookies are kept alive in `retired` after their domain is
    /// freed, because a map racing the detach may still hold the address
    /// (the RCU grace period the kernel would wait for).
    private let cookieTable = PublishedWords()
    private let retired = RankedMutex<[DMACookie]>(.domainList, [])

    /// Frames a lazy unmap covered whose flush is still owed, and the frees
    /// parked behind them.
    package let quarantine = RankedMutex<Quarantine>(.quarantine, Quarantine())

    /// The machine ran a DMA-FQ domain (add_taint, as the seed proposes):
    /// reports made afterwards say isolation was weakened.
    package let tainted = Atomic<Bool>(false)

    /// Every device's DMA mask, bus limit and PCI workaround.
    package let deviceLimits = DMADeviceTable()

    /// The swiotlb bounce pool, once the first untrusted device got a
    /// translated default domain (docs/KERNEL-MODEL.md §4.3b). Held only
    /// to read or install it, with no other engine lock.
    private let bouncePool = RankedMutex<SWIOTLB?>(.domainList, nil)

    /// The pool, if reserved (is_swiotlb_active).
    package var swiotlb: SWIOTLB? { bouncePool.locked { $0 } }

    /// Reserves the pool if it is not yet (swiotlb_init's allocation, made
    /// when a device first needs it). Throws `SVAError/outOfMemory` with
    /// nothing taken when its frames cannot be allocated.
    package func reserveSWIOTLB() throws(SVAError) {
        guard policy.swiotlbSlabs > 0, swiotlb == nil else { return }
        let pool = try SWIOTLB(frames: frames, slabs: policy.swiotlbSlabs, cpus: policy.cpus)
        // Two first untrusted setups may race: the loser gives its frames back.
        let lost = bouncePool.locked { p -> SWIOTLB? in
            if p != nil { return pool }
            p = pool
            return nil
        }
        if let lost { for b in lost.segments { frames.free(b, site: .boot) } }
    }

    /// The flush-queue timers in thread mode.
    package var timer: FlushTimer?

    package init(frames: FrameMemory, core: IOMMUCore, policy: DMAPolicy) {
        self.frames = frames
        self.core = core
        self.events = frames.events
        self.policy = policy
    }

    /// Back to boot (Machine.reset, quiescent, no timer thread): no domain,
    /// no cookie (retired ones too), an empty quarantine, no bounce pool,
    /// every device's limits the defaults, the machine untainted. The
    /// domains' tables and the pool's frames are the frame memory's to
    /// restore; dropping the objects frees only host memory.
    package func resetToBoot() {
        domainSlots.locked { $0 = [] }
        cookieTable.removeAll()
        retired.locked { $0 = [] }
        quarantine.locked { $0 = Quarantine() }
        tainted.store(false, ordering: .relaxed)
        deviceLimits.removeAll()
        bouncePool.locked { $0 = nil }
    }

    /// The sizes a domain maps with by default: 4 KiB, 2 MiB and 1 GiB.
    package static let defaultPageSizes: UInt64 = 0x1000 | 0x20_0000 | 0x4000_0000

    /// iommu_domain_alloc for `iommu`, of `type`, with `pgsizeBitmap`.
    package func create(iommu: UInt32, type: DomainType, pgsizeBitmap: UInt64) throws(SVAError) -> UInt32 {
        let unit = try core.iommu(iommu)
        try Self.checkBitmap(pgsizeBitmap)
        // The id is taken first so the domain's root is allocated outside
        // the list's lock; a failed allocation leaves a nil slot behind.
        // The id and its cookie slot are taken in one hold, so concurrent
        // creates keep slot == id; the slot reads "none" (1) until the
        // domain is ready, and stays so if its root cannot be allocated.
        let id = try domainSlots.locked { l throws(SVAError) in
            guard l.count < 1 << 22 else { throw .noSpace }
            l.append(nil)
            let slot = cookieTable.insert(Self.noCookie)
            precondition(slot == l.count - 1, "cookie slots follow domain ids")
            return UInt32(l.count - 1)
        }
        let d = try IOMMUDomain(id: id, type: type, iommu: unit, iommuIndex: Int(iommu),
                                pgsizeBitmap: pgsizeBitmap, frames: frames)
        let cookie = type == .identity ? nil : DMACookie(
            domain: d, cpus: policy.cpus, hz: policy.hz, singleQueue: unit.config.shadowedFlush, clock: policy.clock,
            releaseTables: { [unowned self] e in self.releaseFlushed(e, from: d) })
        domainSlots.locked { l in
            l[Int(id)] = Slot(domain: d, cookie: cookie)
            cookieTable.store(cookie.map { UInt64(UInt(bitPattern: Unmanaged.passUnretained($0).toOpaque())) }
                              ?? Self.identityCookie, at: Int(id))
        }
        if type == .dmaFQ { noteLazy(d) }
        return id
    }

    /// Cookie-table words that are not addresses: no live domain (being
    /// created, failed or freed), and an identity domain (no cookie).
    package static let noCookie: UInt64 = 1, identityCookie: UInt64 = 2

    /// What the DMA API finds for domain `id`, with no lock.
    package enum CookieLookup {
        case translated(DMACookie)
        case identity
        case gone
    }

    package func lookupCookie(_ id: UInt32) -> CookieLookup {
        let w = cookieTable.word(at: Int(id))
        if w == Self.identityCookie { return .identity }
        guard w > Self.identityCookie, let p = UnsafeRawPointer(bitPattern: UInt(w)) else { return .gone }
        return .translated(Unmanaged<DMACookie>.fromOpaque(p).takeUnretainedValue())
    }

    /// The cookie of domain `id` (nil for an identity, freed or unknown one).
    package func cookie(_ id: UInt32) -> DMACookie? {
        if case .translated(let c) = lookupCookie(id) { return c }
        return nil
    }

    /// Cookies of freed domains: alive for racing readers, drained at shutdown.
    package var retiredCookies: [DMACookie] { retired.locked { $0 } }

    package func slot(_ id: UInt32) throws(SVAError) -> Slot {
        try domainSlots.locked { l throws(SVAError) in
            guard Int(id) < l.count, let s = l[Int(id)] else { throw .noDevice }
            return s
        }
    }

    /// A domain's type now: its cookie says whether the flush queue is on.
    package func currentType(_ id: UInt32) throws(SVAError) -> DomainType {
        let s = try slot(id)
        guard let c = s.cookie else { return s.domain.type }
        return c.fqActive.load(ordering: .acquiring) ? .dmaFQ : .dma
    }

    /// iommu_dma_init_fq on a live DMA domain (the sysfs DMA -> DMA-FQ
    /// switch): the queue exists from creation, so switching turns it on.
    package func switchToLazy(_ id: UInt32) throws(SVAError) {
        let s = try slot(id)
        guard let c = s.cookie else { throw .invalidArgument }
        guard s.domain.iommu.config.deferredFlush else { throw .notSupported }
        guard !core.usesUntrusted(domain: id) else { throw .wrongAPI }
        guard !c.fqActive.exchange(true, ordering: .acquiringAndReleasing) else { return }
        noteLazy(s.domain)
    }

    /// Every live translated domain's cookie.
    package var cookies: [DMACookie] { domainSlots.locked { $0.compactMap { $0?.cookie } } }

    /// A bitmap must hold 4 KiB or 64 KiB as its smallest size, and nothing
    /// but 4K, 64K, 2M and 1G.
    package static func checkBitmap(_ b: UInt64) throws(SVAError) {
        let known: UInt64 = 0x1000 | 0x1_0000 | 0x20_0000 | 0x4000_0000
        guard b & ~known == 0, b & (0x1000 | 0x1_0000) != 0 else { throw .invalidArgument }
    }

    package func domain(_ id: UInt32) throws(SVAError) -> IOMMUDomain { try slot(id).domain }

    /// Every live domain (for the audit).
    package var all: [IOMMUDomain] { domainSlots.locked { $0.compactMap { $0?.domain } } }

    /// Attaches `device`'s requests without PASID to domain `id`.
    package func attach(device: UInt32, domain id: UInt32) throws(SVAError) {
        let d = try domain(id)
        try core.attachDefaultDomain(device: device, iommu: d.iommuIndex, domain: id, entry: d.entry)
    }

    /// Detaches the device's default domain, then invalidates the domain's
    /// lines on its IOMMU and fences, so no walk through it is in flight.
    package func detach(device: UInt32) throws(SVAError) {
        let id = try core.detachDefaultDomain(device: device)
        let d = try domain(id)
        d.iommu.invalidateTag(d.tag)
        d.iommu.fence()
    }

    /// iommu_unmap in strict mode: clears the entries, invalidates the range
    /// (leaf-only when no table was freed, as the gather's freelist tells),
    /// syncs, then frees the tables. Returns the bytes unmapped.
    package func unmapStrict(_ d: IOMMUDomain, iova: UInt64, size: UInt64) throws(SVAError) -> UInt64 {
        let u = try d.unmap(iova: iova, size: size)
        guard u.bytes > 0 else { throw .notFound }
        let bytes = u.bytes
        iotlbSync(d, u, start: iova)
        return bytes
    }

    /// iommu_iotlb_sync after an unmap of [start, start + u.bytes): the
    /// range invalidated (leaf-only when the unmap freed no table, as the
    /// gather's empty freelist tells the driver), the invalidation waited
    /// for, then what only a finished invalidation allows: the
    /// window-aware sanitizer lowers the counts, and the freed tables go
    /// back to the allocator (iommu_put_pages_list).
    package func iotlbSync(_ d: IOMMUDomain, _ u: consuming IOMMUDomain.Unmapped, start: UInt64) {
        if u.bytes > 0 {
            d.iommu.invalidateTagRange(d.tag, start: start, end: start + u.bytes - 1, leafOnly: u.freed.isEmpty)
        }
        d.iommu.fence()
        if !u.frames.isEmpty { d.debugFlushed(u.frames) }
        putPages(u.takeTables())
    }

    /// Whether a domain's teardown lowers the sanitizer's counts of what it
    /// still maps (fast and window-aware modes).
    private var debugExactTeardown: Bool {
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        frames.debug.enabled && frames.debug.mode != .linux
        #else
        false
        #endif
    }

    /// iommu_put_pages_list: frees tables nothing can walk any more.
    package func putPages(_ tables: consuming DetachedTables) {
        for t in tables.release() { frames.free(t.pfn, site: .unmap) }
    }

    /// iommu_domain_free: refused while a device is attached; otherwise the
    /// tables are unlinked, the domain's lines dropped and fenced, and every
    /// table and the root freed.
    package func free(_ id: UInt32) throws(SVAError) {
        let s = try slot(id)
        let d = s.domain
        if let c = s.cookie { guard c.mappings.isEmpty else { throw .busy } }
        // Refused while attached; from here on no attach can succeed (the
        // check and the mark are one hold of the core's lock).
        try core.markDomainDying(id)
        // Map and unmap racing the free find the domain dead under its
        // tables' lock; the DMA API finds no cookie.
        d.kill()
        domainSlots.locked { l in
            l[Int(id)] = nil
            cookieTable.store(Self.noCookie, at: Int(id))
        }
        if let c = s.cookie {  // every queued entry released, the timer's included
            c.fq.timeout(drain: true)
            c.fq.quiesce()
        }
        if let c = s.cookie { retired.locked { $0.append(c) } }
        // The sanitizer's exact modes lower what the domain still mapped once
        // its lines are gone; Linux's (linux mode) does not: those counts
        // stay, and a later free of the pages is reported.
        var leaves = DebugLeaves()
        var none = IgnoreLeaves()
        let tables = debugExactTeardown ? d.detachAll(&leaves) : d.detachAll(&none)
        d.iommu.invalidateTag(d.tag)
        d.iommu.fence()
        if !leaves.removed.isEmpty { d.debugFlushed(leaves.removed) }
        putPages(tables)
        if let root = d.root { frames.free(root.pfn, site: .unmap) }
    }
}
