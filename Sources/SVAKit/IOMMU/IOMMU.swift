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

    public var counters: IOMMUCounters { state.locked { $0.counters } }

    /// Whether a driver is attached: lets a command skip fetching the driver
    /// (an Optional of four closures, copied out through a generic path that
    /// doubled the fan-out's cost per mm) when there is none, the common
    /// case. Attach drivers before the IOMMU is in use: a command racing the
    /// attach may not reach the new driver.
    private let hasDriver = Atomic<Bool>(false)

    /// Attaches a driver that receives every command this IOMMU receives.
    public func setDriver(_ driver: IOMMUDriver?) {
        state.locked { s in
            s.driver = driver
            hasDriver.store(driver != nil, ordering: .relaxed)
        }
    }

    /// The attached driver, if any (read after a command, with no lock held
    /// while it runs).
    @inline(__always)
    private var driver: IOMMUDriver? {
        hasDriver.load(ordering: .relaxed) ? state.locked { $0.driver } : nil
    }

    /// Valid (IOTLB, paging-structure) cache lines, for tests.
    public var cachedEntries: (iotlb: Int, psc: Int) { state.locked { $0.cachedEntries } }

    /// PASID-selective range invalidation; `leafOnly` is the VT-d IH / SMMUv3
    /// LEAF hint that lets paging-structure entries stay.
    public func invalidateRange(pasid: UInt32, start: UInt64, end: UInt64, leafOnly: Bool = false) {
        state.locked { $0.invalidateRange(pasid: pasid, start: start, end: end, leafOnly: leafOnly) }
        driver?.invalidateRange?(pasid, start, end, leafOnly)
    }

    public func invalidatePASID(_ pasid: UInt32) {
        state.locked { $0.invalidatePASID(pasid) }
        driver?.invalidatePASID?(pasid)
    }

    public func invalidateAll() {
        state.locked { $0.invalidateAll() }
        driver?.invalidateAll?()
    }

    /// Waits for walks in flight: a walk holds the lock throughout, so
    /// acquiring it once is enough (as an invalidation-wait descriptor or
    /// CMD_SYNC completes after earlier work).
    public func fence() {
        state.locked { $0.counters.fences += 1 }
        driver?.fence?()
    }
}

/// A driver plugged into an IOMMU (struct svakit_iommu_driver_ops): it gets
/// each command after the model has applied it, with no lock held, so it may
/// call back into the machine.
public struct IOMMUDriver: Sendable {
    public var invalidateRange: (@Sendable (_ pasid: UInt32, _ start: UInt64, _ end: UInt64, _ leafOnly: Bool) -> Void)?
    public var invalidatePASID: (@Sendable (_ pasid: UInt32) -> Void)?
    public var invalidateAll: (@Sendable () -> Void)?
    public var fence: (@Sendable () -> Void)?

    public init(invalidateRange: (@Sendable (UInt32, UInt64, UInt64, Bool) -> Void)? = nil,
                invalidatePASID: (@Sendable (UInt32) -> Void)? = nil,
                invalidateAll: (@Sendable () -> Void)? = nil, fence: (@Sendable () -> Void)? = nil) {
        self.invalidateRange = invalidateRange
        self.invalidatePASID = invalidatePASID
        self.invalidateAll = invalidateAll
        self.fence = fence
    }
}
