// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// DMA domains: an IOMMU page table per domain, attached to a device as its
/// default domain (the requests without PASID), mapped and unmapped through
/// the IOMMU API (docs/KERNEL-MODEL.md §4).
extension Machine {
    /// The sizes a domain maps with by default: 4 KiB, 2 MiB and 1 GiB.
    public static let defaultPageSizes: UInt64 = DMADomains.defaultPageSizes

    /// iommu_domain_alloc: a new domain of `type` on `iommu`. `pageSizes` is
    /// its pgsize_bitmap, a mask of the byte sizes 4K, 64K, 2M and 1G whose
    /// smallest is 4K or 64K (the granule its IOVAs are counted in).
    /// Throws `SVAError/noDevice` for an unknown IOMMU and
    /// `SVAError/invalidArgument` for a bad bitmap.
    public func createDomain(iommu: IOMMUID, type: DomainType = .dma,
                             pageSizes: UInt64 = Machine.defaultPageSizes) throws(SVAError) -> DomainID {
        try allocatingTables { () throws(SVAError) in
            DomainID(try domains.create(iommu: iommu.rawValue, type: type, pgsizeBitmap: pageSizes))
        }
    }

    /// The domain's type now (a DMA domain may have been switched to DMA-FQ).
    public func domainType(_ domain: DomainID) throws(SVAError) -> DomainType {
        try domains.currentType(domain.rawValue)
    }

    /// Switches a DMA domain to DMA-FQ at run time, as writing `DMA-FQ` to
    /// /sys/kernel/iommu_groups/N/type does, without tearing it down: later
    /// unmaps go through the flush queue. Only DMA -> DMA-FQ
    /// (`SVAError/invalidArgument` otherwise; a DMA-FQ domain stays so);
    /// refused for a domain an untrusted device uses (`SVAError/wrongAPI`)
    /// and on an IOMMU that cannot defer flushes (`SVAError/notSupported`).
    /// The first lazy domain taints the machine.
    public func switchToLazy(_ domain: DomainID) throws(SVAError) {
        try domains.switchToLazy(domain.rawValue)
    }

    /// iommu_attach_device: `device`'s requests without PASID
    /// (`PASID/noPASID`) go through `domain`. The domain must belong to the
    /// device's IOMMU (`SVAError/invalidArgument`); a device has one
    /// default domain at a time (`SVAError/busy`).
    public func attachDomain(_ domain: DomainID, to device: DeviceID) throws(SVAError) {
        try domains.attach(device: device.rawValue, domain: domain.rawValue)
    }

    /// iommu_detach_device: the device's requests without PASID fault again;
    /// the domain's cache lines are dropped and walks in flight waited for.
    public func detachDomain(from device: DeviceID) throws(SVAError) {
        try domains.detach(device: device.rawValue)
    }

    /// iommu_domain_free: unlinks and frees every table of a domain no
    /// device is attached to (`SVAError/busy` otherwise).
    public func freeDomain(_ domain: DomainID) throws(SVAError) {
        try domains.free(domain.rawValue)
    }

    /// A peer device's MMIO window (a PCI BAR) above any RAM: ``iommuMap(_:iova:phys:size:writable:)``
    /// may map it for peer-to-peer DMA; no frame descriptor backs it, so
    /// the IOMMU_DEBUG_PAGEALLOC sanitizer skips it (include/svakit.h
    /// `SVAKIT_MMIO_BASE`).
    public static let mmioWindow: Range<UInt64> = SVAKIT_MMIO_BASE ..< SVAKIT_MMIO_BASE + SVAKIT_MMIO_SIZE

    /// iommu_map: maps [iova, iova + size) of `domain` to `phys`, with the
    /// largest pages its bitmap and the alignment allow. `size`, `iova` and
    /// `phys` are multiples of the granule. Throws `SVAError/exists` over a
    /// live mapping (and maps nothing), `SVAError/outOfRange` past the
    /// 48-bit aperture or past memory, `SVAError/outOfMemory` when a table
    /// cannot be allocated. `phys` may also lie in ``mmioWindow``.
    public func iommuMap(_ domain: DomainID, iova: UInt64, phys: UInt64, size: UInt64,
                         writable: Bool = true) throws(SVAError) {
        try allocatingTables { () throws(SVAError) in
            try domains.domain(domain.rawValue).map(iova: iova, phys: phys, size: size, writable: writable)
        }
    }

    /// iommu_unmap: clears the mapping of [iova, iova + size), invalidates
    /// the range on the domain's IOMMU (leaf-only when no table was freed)
    /// and syncs, then frees the tables the unmap emptied. Returns the bytes
    /// unmapped, which exceed `size` when the range cut into a larger page.
    /// Throws `SVAError/notFound` when nothing is mapped at `iova`.
    @discardableResult
    public func iommuUnmap(_ domain: DomainID, iova: UInt64, size: UInt64) throws(SVAError) -> UInt64 {
        try domains.unmapStrict(try domains.domain(domain.rawValue), iova: iova, size: size)
    }

    /// iommu_iova_to_phys: the software walk of the domain's tables; nil
    /// when `iova` is not mapped. An identity domain returns `iova`.
    public func iovaToPhys(_ domain: DomainID, iova: UInt64) throws(SVAError) -> UInt64? {
        try domains.domain(domain.rawValue).iovaToPhys(iova)
    }
}
