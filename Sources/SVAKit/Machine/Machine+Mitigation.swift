// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// What the mitigations leave to inspect (docs/MITIGATIONS.md).
extension Machine {
    /// The design this machine runs (``MachineConfig/mitigation``).
    public var mitigation: Mitigation { config.mitigation }

    /// kpti-root: the IOMMU-only root the PASID entries of `mm` point at,
    /// or nil while the mm has none (it is made at the first bind or
    /// attach and freed with the mm). Throws `SVAError/noSuchMM`.
    public func iommuRoot(of mm: MMID) throws(SVAError) -> TableFrame? {
        let space = try tables.space(mm.rawValue)
        return tables.existingIOMMURoot(of: space).map { TableFrame(pfn: $0, level: layout.rootLevel) }
    }

    /// kpti-root: how many top-level user entries of `mm` were mirrored into
    /// its IOMMU-only root since it was made (the design's sync work).
    /// Throws `SVAError/noSuchMM`.
    public func iommuRootSyncs(of mm: MMID) throws(SVAError) -> Int {
        try tables.space(mm.rawValue).iommuRootSyncs.load(ordering: .relaxed)
    }
}
