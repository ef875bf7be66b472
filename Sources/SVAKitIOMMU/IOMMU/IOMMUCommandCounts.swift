// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// The hardware commands an IOMMU's profile issued, by kind
/// (``IOMMUCounters/commands``; docs/KERNEL-MODEL.md §3.6). The request
/// counters of ``IOMMUCounters`` count what the kernel asked for; these
/// count what the driver of that IOMMU would have queued for it. A
/// ``IOMMUProfile/generic`` IOMMU counts nothing here.
public struct IOMMUCommandCounts: Sendable, Equatable {
    /// VT-d PASID-based IOTLB invalidation, page-selective-within-PASID
    /// (granularity 3) with IH=0: leaf and paging-structure entries.
    public var vtdPageSelective = 0
    /// The same with IH=1: leaf entries only, paging-structure caches kept.
    public var vtdPageSelectiveIH = 0
    /// VT-d PASID-based IOTLB invalidation, PASID-selective (granularity 2).
    public var vtdPASIDSelective = 0
    /// VT-d invalidation wait descriptors (one per batch of up to 16).
    public var vtdWait = 0
    /// SMMUv3 CMD_TLBI_NH_VA with LEAF=0: the page's leaf and walk-cache entries.
    public var smmuTLBINHVA = 0
    /// SMMUv3 CMD_TLBI_NH_VA with LEAF=1: the page's leaf entries only.
    public var smmuTLBINHVALeaf = 0
    /// SMMUv3 CMD_TLBI_NH_ASID: everything cached for the ASID.
    public var smmuTLBINHASID = 0
    /// SMMUv3 CMD_SYNC.
    public var smmuSync = 0
    /// AMD INVALIDATE_IOMMU_PAGES with PDE=1 and a page or size-encoded
    /// address.
    public var amdInvalidatePages = 0
    /// AMD INVALIDATE_IOMMU_PAGES with PDE=1 and the all-pages address.
    public var amdInvalidateAllPages = 0
    /// AMD COMPLETION_WAIT.
    public var amdCompletionWait = 0
    /// RISC-V IOTINVAL.VMA with AV=1 (an address): that address's leaf entries.
    public var riscvInvalVMAAddress = 0
    /// RISC-V IOTINVAL.VMA with AV=0, PSCV=1: everything of the PSCID.
    public var riscvInvalVMAPSCID = 0
    /// RISC-V IOFENCE.C.
    public var riscvFence = 0
    /// Device-TLB (ATS) invalidations, one per attached device and request,
    /// when ``IOMMUConfig/deviceTLBs`` is on: VT-d PASID-based device-IOTLB
    /// descriptors, SMMUv3 CMD_ATC_INV, AMD INVALIDATE_IOTLB_PAGES, RISC-V
    /// ATS.INVAL.
    public var deviceTLB = 0

    /// All zero.
    public init() {}

    /// Invalidation commands of every kind, syncs and waits not included.
    public var invalidations: Int {
        vtdPageSelective + vtdPageSelectiveIH + vtdPASIDSelective + smmuTLBINHVA + smmuTLBINHVALeaf
            + smmuTLBINHASID + amdInvalidatePages + amdInvalidateAllPages + riscvInvalVMAAddress
            + riscvInvalVMAPSCID + deviceTLB
    }

    /// Completion commands: wait descriptors, CMD_SYNC, COMPLETION_WAIT, IOFENCE.C.
    public var syncs: Int { vtdWait + smmuSync + amdCompletionWait + riscvFence }
}
