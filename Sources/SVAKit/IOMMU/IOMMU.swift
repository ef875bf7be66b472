// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// One IOMMU instance: a PASID table, an IOTLB, per-level paging-structure
/// caches and a hardware walker. A machine has any number of them.
public final class IOMMU: Sendable {
    public let id: UInt32
    public let config: IOMMUConfig

    /// Protects the PASID table, the caches and the counters. Lock order:
    /// taken after the SVA registry's lock (bind, unbind) and before the
    /// machine's memory lock (a walk reads memory while holding both). Because
    /// a walk holds it from first lookup to last fill, taking it is also the
    /// fence that completes walks in flight.
    let state: Mutex<IOMMUState>

    init(id: UInt32, config: IOMMUConfig) {
        self.id = id
        self.config = config
        state = Mutex(IOMMUState(config: config))
    }

    public var counters: IOMMUCounters { state.withLock { $0.counters } }

    /// Valid (IOTLB, paging-structure) cache lines, for tests.
    public var cachedEntries: (iotlb: Int, psc: Int) { state.withLock { $0.cachedEntries } }

    /// PASID-selective range invalidation; `leafOnly` is the VT-d IH / SMMUv3
    /// LEAF hint that lets paging-structure entries stay.
    public func invalidateRange(pasid: UInt32, start: UInt64, end: UInt64, leafOnly: Bool = false) {
        state.withLock { $0.invalidateRange(pasid: pasid, start: start, end: end, leafOnly: leafOnly) }
    }

    public func invalidatePASID(_ pasid: UInt32) {
        state.withLock { $0.invalidatePASID(pasid) }
    }

    public func invalidateAll() {
        state.withLock { $0.invalidateAll() }
    }

    /// Waits for walks in flight: a walk holds the lock throughout, so
    /// acquiring it once is enough (as an invalidation-wait descriptor or
    /// CMD_SYNC completes after earlier work).
    public func fence() {
        state.withLock { $0.counters.fences += 1 }
    }
}
