// SPDX-License-Identifier: Apache-2.0
import CSVAKitCore
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// Layer 4: one IOMMU instance: a PASID table, an IOTLB, per-level
/// paging-structure caches and a hardware walker. A machine has any number.
/// It reads the frame memory (as hardware reads RAM) and depends on nothing
/// above it; its driver is called after each command with no lock held.
public final class IOMMU: @unchecked Sendable {
    // @unchecked: `memory` is immutable pointers; the rest are locks and atomics.
    /// The IOMMU's id, as `svakit_iommu_create` returns it.
    public let id: IOMMUID
    /// The configuration it was created with.
    public let config: IOMMUConfig
    package let memory: PhysicalMemory
    package let events: EventLog
    package let rootLevel: Int
    package let traceWalks: Bool
    /// SMMUv3's SVA context descriptor sets TCR.EPD1: a walk of a CPU table
    /// (an SVA or PASID attachment) for an upper-half (TTB1) address faults
    /// before reading any table (docs/KERNEL-MODEL.md §3.6).
    package let upperHalfDisabled: Bool

    /// Protects the PASID table, the caches, the counters, the driver slot
    /// and the walk epochs (IOMMUState). A walk holds it to look up and to
    /// fill, never while it reads memory; commands hold it while they drop
    /// lines. Different IOMMUs never contend.
    package let hardware: RankedMutex<IOMMUState>

    /// Serialises fences of this IOMMU, so that each waits only for the
    /// walks of the epoch it closed (no fence can starve another).
    private let fenceLock = RankedMutex<Void>(.fence, ())

    /// Whether a driver is attached: lets a command skip fetching the driver
    /// when there is none, the common case. Attach drivers before the IOMMU
    /// is in use: a command racing the attach may not reach the new driver.
    private let hasDriver = Atomic<Bool>(false)

    package init(id: UInt32, config: IOMMUConfig, memory: PhysicalMemory, events: EventLog, rootLevel: Int, traceWalks: Bool) {
        self.id = IOMMUID(id)
        self.config = config
        self.memory = memory
        self.events = events
        self.rootLevel = rootLevel
        self.traceWalks = traceWalks
        upperHalfDisabled = config.profile == .smmuv3
        hardware = RankedMutex(.iommu, IOMMUState(config: config))
    }

    /// A snapshot of the command, walk and cache counters.
    public var counters: IOMMUCounters { hardware.locked { $0.counters } }

    /// Valid (IOTLB, paging-structure) cache lines, for tests.
    public var cachedEntries: (iotlb: Int, psc: Int) { hardware.locked { $0.cachedEntries } }

    // MARK: - The driver

    /// Attaches a driver that receives every command this IOMMU receives.
    public func setDriver(_ driver: IOMMUDriver?) {
        hardware.locked { s in
            s.driver = driver
            hasDriver.store(driver != nil, ordering: .relaxed)
        }
    }

    /// The attached driver, if any, fetched after a command and called with
    /// no lock held.
    @inline(__always)
    private var driver: IOMMUDriver? {
        guard hasDriver.load(ordering: .relaxed) else { return nil }
        LockRank.assertNoneHeld("an IOMMU driver")
        return hardware.locked { $0.driver }
    }

    // MARK: - The PASID table

    package func setPASIDEntry(device: UInt32, pasid: UInt32, _ entry: PasidEntry?) {
        hardware.locked { s in
            if config.deviceTLBs {
                if let old = s.pasidTable[device, pasid], !old.passthrough { s.tagDevices[old.tag, default: 1] -= 1 }
                if let entry, !entry.passthrough { s.tagDevices[entry.tag, default: 0] += 1 }
            }
            s.pasidTable[device, pasid] = entry
        }
    }

    // MARK: - Commands

    /// PASID-selective range invalidation; `leafOnly` is the VT-d IH / SMMUv3
    /// LEAF hint that lets paging-structure entries stay.
    /// `end` is inclusive. Unchecked: the public, checked form is
    /// `Machine.invalidateRange(iommu:pasid:start:end:leafOnly:)`.
    package func invalidateRange(pasid: PASID, start: UInt64, end: UInt64, leafOnly: Bool = false) {
        let ns = hardware.locked { $0.invalidateRange(pasid: pasid.rawValue, start: start, end: end, leafOnly: leafOnly) }
        ModelledDeviceTime.charge(ns)
        driver?.invalidateRange?(pasid, start, end, leafOnly)
    }

    /// PASID-selective invalidation: every IOTLB and paging-structure cache
    /// line tagged with `pasid` goes. Unchecked: the public, checked form is
    /// `Machine.invalidatePASID(iommu:pasid:)`.
    package func invalidatePASID(_ pasid: PASID) {
        let ns = hardware.locked { $0.invalidatePASID(pasid.rawValue) }
        ModelledDeviceTime.charge(ns)
        driver?.invalidatePASID?(pasid)
    }

    /// A DMA domain's range invalidation: the lines tagged `tag` (the
    /// domain's) in [start, end]. Drivers see the tag as the PASID.
    package func invalidateTagRange(_ tag: UInt32, start: UInt64, end: UInt64, leafOnly: Bool) {
        let ns = hardware.locked { $0.invalidateRange(pasid: tag, start: start, end: end, leafOnly: leafOnly) }
        ModelledDeviceTime.charge(ns)
        driver?.invalidateRange?(PASID(tag), start, end, leafOnly)
    }

    /// A DMA domain's flush_iotlb_all: every line tagged `tag`.
    package func invalidateTag(_ tag: UInt32) {
        let ns = hardware.locked { $0.invalidatePASID(tag) }
        ModelledDeviceTime.charge(ns)
        driver?.invalidatePASID?(PASID(tag))
    }

    /// Global invalidation: every cached line goes.
    public func invalidateAll() {
        hardware.locked { $0.invalidateAll() }
        ModelledDeviceTime.charge(config.costs.globalInvalidationNs)
        driver?.invalidateAll?()
    }

    /// The range invalidation the kernel-address gate sends to every SVA
    /// domain of this IOMMU, under one hold of the lock: `pasids` yields
    /// them. Returns how many PASIDs it invalidated. The driver gets one
    /// command per PASID afterwards, with the lock dropped.
    package func invalidateKernelRange(start: UInt64, end: UInt64, pasids: ((UInt32) -> Void) -> Void) -> Int {
        let (n, ns) = hardware.locked { s in
            var n = 0, ns: UInt64 = 0
            pasids { p in
                ns &+= s.invalidateRange(pasid: p, start: start, end: end, leafOnly: false)
                n += 1
            }
            return (n, ns)
        }
        ModelledDeviceTime.charge(ns)
        if n > 0, let d = driver, let f = d.invalidateRange { pasids { p in f(PASID(p), start, end, false) } }
        return n
    }

    /// What ``fence()`` costs on the device: the generic model's sync; on a
    /// hardware profile nothing, as each request already ended with its own
    /// completion command (wait descriptor, CMD_SYNC, COMPLETION_WAIT,
    /// IOFENCE.C), which the profile priced.
    private var syncNs: UInt64 { config.profile == .generic ? config.costs.syncNs : 0 }

    /// Waits for walks in flight, as an invalidation-wait descriptor or
    /// CMD_SYNC completes after the walks that started before it: closes the
    /// current walk epoch and waits until it is empty. Walks hold no lock
    /// while they read memory, so this is a wait, not a lock handoff.
    public func fence() {
        fenceLock.locked { _ in
            let closed: Int? = hardware.locked { s in
                s.counters.fences += 1
                s.counters.modelledDeviceNs &+= syncNs
                guard s.inflight.0 + s.inflight.1 > 0 else { return nil }
                let old = s.epoch
                s.epoch ^= 1
                return old
            }
            if let closed {
                // A wait, not a lock handoff: under the explorer, one spin
                // point a turn (the walks it waits for run meanwhile).
                let me = UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()))
                SchedulePoints.spinWhile(ScheduleObject.wait(me)) {
                    hardware.locked({ s in closed == 0 ? s.inflight.0 : s.inflight.1 }) > 0
                }
            }
        }
        ModelledDeviceTime.charge(syncNs)
        driver?.fence?()
    }

    // MARK: - Translation

    /// One translation request of (device, pasid, va): the PASID entry, the
    /// caches, then the walk in memory with the lock dropped, then the fills.
    package func translate(device: UInt32, pasid: UInt32, va: UInt64, access: DMAAccess,
                   finding: inout WalkFinding?) -> Result<(phys: UInt64, size: PageSize), DMAFault> {
        let begun = hardware.locked { s in beginLocked(&s, device: device, pasid: pasid, va: va, access: access) }
        switch begun {
        case .done(let r):
            trace(va, r)
            return r
        case .hit(let t, let pe):
            if let f = checkHit(t, pe, va: va, write: access.contains(.write)) { finding = f }
            trace(va, .success(t.translation))
            return .success(t.translation)
        case .walk(let start):
            let r = walk(start, va: va, access: access, finding: &finding)
            trace(va, r)
            return r
        }
    }

    /// A burst of translation requests, as a device's ATS requests queue
    /// at one IOMMU: the PASID entry is looked up and the walk epoch entered
    /// once for the burst (a fence waits for the whole burst, as for any
    /// request in flight); each walk in memory runs with no lock, and the
    /// fills of one walk go in under the same hold of the lock as the cache
    /// lookups of the requests after it. With caching off the burst takes
    /// the lock twice in all. out[i] gets the physical address of vas[i], or
    /// UInt64.max if it faulted; `found` gets each finding. Returns the
    /// number of faults.
    package func translate(device: UInt32, pasid: UInt32, vas: UnsafeBufferPointer<UInt64>,
                   into out: UnsafeMutableBufferPointer<UInt64>, access: DMAAccess,
                   found: (WalkFinding, UInt64) -> Void) -> Int {
        guard !vas.isEmpty else { return 0 }
        let opened: (PasidEntry, Int)? = hardware.locked { s in
            guard let pe = s.pasidTable[device, pasid] else {
                s.counters.walks += vas.count
                s.counters.faults += vas.count
                return nil
            }
            if access.contains(.privileged) && !pe.supervisorRequests || pe.passthrough {
                // (The DMA API's burst of ATS requests is for SVA and
                // translated domains; a passthrough device needs none.)
                s.counters.walks += vas.count
                s.counters.faults += vas.count
                return nil
            }
            return (pe, s.enterEpoch())
        }
        guard let (pe, epoch) = opened else {
            for i in 0..<vas.count { out[i] = .max }
            return vas.count
        }
        var faults = 0
        var i = 0
        var pending: (start: WalkStart, fills: WalkFills)? = nil
        let caching = config.caching
        let uncached = WalkStart(table: pe.root, level: pe.iommuTables ? 4 : rootLevel,
                                 believedGeneration: pe.rootGeneration,
                                 staleLevel: 0, userOK: true, writeOK: true, iommuTables: pe.iommuTables,
                                 tag: pe.tag, seq: 0, epoch: epoch)
        var uncachedWalks = 0, uncachedFaults = 0, uncachedAD = 0
        let write = access.contains(.write)
        /// Stale hits found under the lock, reported after it (rare: no
        /// allocation unless one is found).
        var staleHits: [(WalkFinding, UInt64)] = []
        while i < vas.count {
            let miss: WalkStart?
            if caching == .none {
                // Nothing to look up or fill: count locally, no lock.
                miss = uncached
                uncachedWalks += 1
            } else {
                miss = hardware.locked { s in
                    if let p = pending { s.applyFills(p.start, fills: p.fills) }
                    while i < vas.count {
                        switch s.lookup(pe, va: vas[i], access: access, rootLevel: rootLevel) {
                        case .hit(let t):
                            out[i] = t.phys
                            if let f = checkHit(t, pe, va: vas[i], write: write) { staleHits.append((f, vas[i])) }
                            if traceWalks { trace(vas[i], .success(t.translation)) }
                            i += 1
                        case .walk(let start):
                            return start
                        }
                    }
                    return nil
                }
                pending = nil
                for (f, va) in staleHits { found(f, va) }
                staleHits.removeAll()
            }
            guard var start = miss else { break }
            start.epoch = epoch
            var fills = WalkFills()
            var finding: WalkFinding? = nil
            let r = walkMemory(start, va: vas[i], access: access, fills: &fills, finding: &finding)
            switch r {
            case .success(let t): out[i] = t.phys
            case .failure: out[i] = .max; faults += 1
            }
            if let finding { found(finding, vas[i]) }
            trace(vas[i], r)
            if caching == .none {
                if fills.faulted { uncachedFaults += 1 }
                uncachedAD += Int(fills.accessedDirtyWrites)
            } else {
                pending = (start, fills)
            }
            i += 1
        }
        hardware.locked { s in
            if let p = pending { s.applyFills(p.start, fills: p.fills) }
            s.counters.walks += uncachedWalks
            s.counters.fullWalks += uncachedWalks
            s.counters.faults += uncachedFaults
            s.counters.accessedDirtyWrites += uncachedAD
            s.leaveEpoch(epoch)
        }
        return faults
    }

    private enum Begun {
        case done(Result<(phys: UInt64, size: PageSize), DMAFault>)
        case hit(IOTLBHit, PasidEntry)
        case walk(WalkStart)
    }

    /// Under the lock: the PASID entry first, as VT-d's PASID-cache lookup
    /// precedes the IOTLB's (a device with nothing attached at this PASID
    /// must not hit lines another device's bond to the same mm left), then
    /// the caches.
    private func beginLocked(_ s: inout IOMMUState, device: UInt32, pasid: UInt32, va: UInt64,
                             access: DMAAccess) -> Begun {
        LockRank.iommu.assertHeld()
        guard let pe = s.pasidTable[device, pasid] else {
            s.counters.walks += 1
            s.counters.faults += 1
            return .done(.failure(DMAFault(reason: .noPASID, level: 0, address: va)))
        }
        if access.contains(.privileged) && !pe.supervisorRequests {
            s.counters.walks += 1
            s.counters.faults += 1
            return .done(.failure(DMAFault(reason: .privilege, level: 0, address: va)))
        }
        if pe.passthrough {
            // IOMMU_DOMAIN_IDENTITY: the address is the physical address.
            s.counters.walks += 1
            return .done(.success((va, .size4K)))
        }
        switch s.beginTranslation(pe, va: va, access: access, rootLevel: rootLevel) {
        case .hit(let t): return .hit(t, pe)
        case .walk(let start): return .walk(start)
        }
    }

    /// The walk in memory with no lock held, then the fills under the lock.
    private func walk(_ start: WalkStart, va: UInt64, access: DMAAccess,
                      finding: inout WalkFinding?) -> Result<(phys: UInt64, size: PageSize), DMAFault> {
        var fills = WalkFills()
        let r = walkMemory(start, va: va, access: access, fills: &fills, finding: &finding)
        hardware.locked { s in s.endTranslation(start, fills: fills) }
        return r
    }

    @inline(__always)
    private func trace(_ va: UInt64, _ r: Result<(phys: UInt64, size: PageSize), DMAFault>) {
        guard traceWalks else { return }
        switch r {
        case .success(let t): events.record(.dmaWalk, site: .none, pfn: PFN(Int(t.phys >> 12)), va: va, aux: 0)
        case .failure(let f): events.record(.dmaWalk, site: .none, va: va, aux: UInt64(f.reason.rawValue))
        }
    }
}

/// A driver plugged into an IOMMU (struct svakit_iommu_driver_ops): it gets
/// each command after the model has applied it, with no lock held, so it may
/// call back into the machine.
public struct IOMMUDriver: Sendable {
    /// A PASID-selective range invalidation; `end` is inclusive.
    public var invalidateRange: (@Sendable (_ pasid: PASID, _ start: UInt64, _ end: UInt64, _ leafOnly: Bool) -> Void)?
    /// A PASID-selective invalidation of everything.
    public var invalidatePASID: (@Sendable (_ pasid: PASID) -> Void)?
    /// A global invalidation.
    public var invalidateAll: (@Sendable () -> Void)?
    /// A fence (invalidation wait, CMD_SYNC).
    public var fence: (@Sendable () -> Void)?

    /// A driver with the given callbacks; a nil callback ignores that command.
    public init(invalidateRange: (@Sendable (PASID, UInt64, UInt64, Bool) -> Void)? = nil,
                invalidatePASID: (@Sendable (PASID) -> Void)? = nil,
                invalidateAll: (@Sendable () -> Void)? = nil, fence: (@Sendable () -> Void)? = nil) {
        self.invalidateRange = invalidateRange
        self.invalidatePASID = invalidatePASID
        self.invalidateAll = invalidateAll
        self.fence = fence
    }
}
