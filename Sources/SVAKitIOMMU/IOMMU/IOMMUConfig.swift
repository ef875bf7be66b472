// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// What an IOMMU caches.
public enum IOMMUCaching: UInt32, Sendable {
    /// Nothing: every translation walks from the PASID table (QEMU-like).
    case none = 0
    /// An IOTLB of leaf translations only.
    case leafOnly = 1
    /// IOTLB plus per-level paging-structure caches (PML5E/PML4E, PDPTE,
    /// PDE): what VT-d, SMMUv3 walk caches and AMD-Vi PDE caches do, and
    /// what makes a freed page table reachable (docs/KERNEL-MODEL.md §3).
    case full = 2
}

/// How a full cache set picks its victim.
public enum CacheReplacement: UInt32, Sendable {
    /// Least recently used, first in first out, or uniformly random (from
    /// ``IOMMUConfig/seed``).
    case lru = 0, fifo = 1, random = 2
}

/// How an IOMMU is built: what it caches and the geometry of its caches.
/// `Machine/addIOMMU(_:)` throws `SVAError/invalidArgument` unless every
/// count is 1 ... 65536 and the set counts are powers of two.
public struct IOMMUConfig: Sendable, Equatable {
    /// What the IOMMU caches (default ``IOMMUCaching/full``).
    public var caching: IOMMUCaching
    /// IOTLB geometry: sets (a power of two) x ways.
    public var iotlbSets: Int
    /// IOTLB ways per set.
    public var iotlbWays: Int
    /// Geometry of each paging-structure cache level.
    public var pscSets: Int
    /// Ways per set of each paging-structure cache.
    public var pscWays: Int
    /// The victim choice of every cache of this IOMMU.
    public var replacement: CacheReplacement
    /// Whether the walker sets Accessed (and, for writes, Dirty) bits in the
    /// entries it walks (VT-d first stage, SMMUv3 with HA/HD: docs/KERNEL-MODEL.md §3.5).
    public var setsAccessedDirty: Bool
    /// Seed of the ``CacheReplacement/random`` choices, so a run can be
    /// replayed.
    public var seed: UInt64
    /// IOMMU_CAP_DEFERRED_FLUSH: the driver can batch invalidations, so a
    /// default domain may be lazy (DMA-FQ). Swift-only; default true.
    public var deferredFlush = true
    /// dev->iommu->shadow_on_flush: flushes are shadowed (virtio-iommu,
    /// s390), so DMA-FQ uses one 32768-entry queue with a 1 s timer instead
    /// of per-CPU queues of 256 with 10 ms. Swift-only; default false.
    public var shadowedFlush = false
    /// What each invalidation command and sync would cost on the device
    /// (``IOMMUCostModel``): accumulated in ``IOMMUCounters/modelledDeviceNs``
    /// and ``ModelledDeviceTime``. Swift-only; default the assumptions of
    /// docs/KERNEL-MODEL.md §4.6.
    public var costs = IOMMUCostModel()
    /// Which IOMMU this models (``IOMMUProfile``): its invalidation commands,
    /// what they drop, what its walker may walk. Default ``IOMMUProfile/generic``,
    /// the engine's own model.
    public var profile: IOMMUProfile = .generic
    /// Supervisor SVA, **beyond Linux**: the PASID entries of SVA binds and
    /// PASID attachments enable supervisor requests (VT-d's SRE), so a
    /// device's ``DMAAccess/privileged`` request walks the mm's tables
    /// without the U/S check. Linux dropped this (SVM_FLAG_SUPERVISOR_MODE,
    /// removed by 942fd5435dcc in 6.2; VT-d's PASID supervisor request
    /// support in 6.4); it is here to show what a stale walk becomes when
    /// U/S cannot stop it. Swift-only; default false.
    public var svaSupervisorRequests = false
    /// The devices behind this IOMMU have ATS enabled, so a hardware
    /// profile's request also invalidates each attached device's TLB (VT-d
    /// PASID-based device-IOTLB descriptors, SMMUv3 CMD_ATC_INV, AMD
    /// INVALIDATE_IOTLB_PAGES, RISC-V ATS.INVAL): one command per (device,
    /// PASID) attachment of the request's tag, which on VT-d fills the
    /// batches of 16. Counted in ``IOMMUCommandCounts/deviceTLB``; nothing
    /// is cached in a device TLB. Ignored by ``IOMMUProfile/generic``.
    /// Swift-only; default false.
    public var deviceTLBs = false

    /// A configuration; the defaults are a 64x4 IOTLB and 8x4 paging-structure
    /// caches with LRU replacement, full caching and A/D writes.
    public init(caching: IOMMUCaching = .full, iotlbSets: Int = 64, iotlbWays: Int = 4,
                pscSets: Int = 8, pscWays: Int = 4, replacement: CacheReplacement = .lru,
                setsAccessedDirty: Bool = true, seed: UInt64 = 1) {
        self.caching = caching
        self.iotlbSets = iotlbSets
        self.iotlbWays = iotlbWays
        self.pscSets = pscSets
        self.pscWays = pscWays
        self.replacement = replacement
        self.setsAccessedDirty = setsAccessedDirty
        self.seed = seed
    }

    package func validate() throws(SVAError) {
        for n in [iotlbSets, iotlbWays, pscSets, pscWays] where n < 1 || n > 1 << 16 {
            throw .invalidArgument
        }
        for n in [iotlbSets, pscSets] where n & (n - 1) != 0 { throw .invalidArgument }
    }
}
