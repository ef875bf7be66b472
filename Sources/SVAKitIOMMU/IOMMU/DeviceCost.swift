// SPDX-License-Identifier: Apache-2.0
import CSVAKitCore
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// What an IOMMU's commands would cost on the device, in nanoseconds
/// (docs/KERNEL-MODEL.md §4.6): the engine executes a command in host time
/// that has nothing to do with the hardware's, so each IOMMU prices its
/// invalidation commands and syncs with this model and accumulates the sum
/// per IOMMU (``IOMMUCounters/modelledDeviceNs``) and per thread
/// (``ModelledDeviceTime``). The defaults are assumptions, sized so that a
/// strict 4 KiB unmap (one range command and one sync) costs 0.6 µs, the
/// strict unmap dma_map_benchmark measured on an SMMUv3 (docs/KERNEL-MODEL.md §5.5).
public struct IOMMUCostModel: Sendable, Equatable {
    /// A PASID- or domain-selective range invalidation (VT-d PASID-based
    /// IOTLB invalidation descriptor, SMMUv3 CMD_TLBI_NH_VA): 200 ns.
    public var rangeInvalidationNs: UInt64
    /// A PASID-wide or domain-wide invalidation (flush_iotlb_all; VT-d
    /// domain-selective, SMMUv3 CMD_TLBI_NH_ASID): 200 ns.
    public var domainInvalidationNs: UInt64
    /// A global invalidation (every line of the IOMMU): 1 µs.
    public var globalInvalidationNs: UInt64
    /// A sync (VT-d invalidation wait descriptor, SMMUv3 CMD_SYNC): 400 ns.
    public var syncNs: UInt64

    /// A cost model; the defaults are the assumptions above.
    public init(rangeInvalidationNs: UInt64 = 200, domainInvalidationNs: UInt64 = 200,
                globalInvalidationNs: UInt64 = 1000, syncNs: UInt64 = 400) {
        self.rangeInvalidationNs = rangeInvalidationNs
        self.domainInvalidationNs = domainInvalidationNs
        self.globalInvalidationNs = globalInvalidationNs
        self.syncNs = syncNs
    }

    /// Every command free: the engine's counts without modelled time.
    public static let zero = IOMMUCostModel(rangeInvalidationNs: 0, domainInvalidationNs: 0,
                                            globalInvalidationNs: 0, syncNs: 0)
}

/// The modelled device time of the commands the calling thread issued, on
/// every IOMMU (a thread-local in CSVAKitCore, devicetime.c). A command is
/// charged to the thread that issued it: a strict unmap to its caller, a
/// flush-queue flush to the thread that ran it (a full ring's queuer, the
/// timer thread, or the caller of `Machine/flushDMAQueues()`).
public enum ModelledDeviceTime {
    /// Nanoseconds charged to the calling thread since it started or last reset.
    public static var currentThreadNs: UInt64 { svk_device_ns() }

    /// Sets the calling thread's total back to zero.
    public static func resetCurrentThread() { svk_device_ns_reset() }

    /// Charges `ns` to the calling thread (the IOMMU's commands call it).
    @inline(__always)
    package static func charge(_ ns: UInt64) { svk_device_ns_add(ns) }
}
