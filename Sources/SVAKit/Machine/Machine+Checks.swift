// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The commands whose operands the caller gives as plain numbers, checked
/// here, in the Swift API, before they reach the hardware or the kernel
/// path: what the hardware or the kernel would refuse, they refuse. The C
/// entry points make one call each (swift-system's `_open` / `system_open`
/// shape).
extension Machine {
    /// flush_tlb_kernel_range(start, end): a page-aligned, canonical start in
    /// the kernel half, end at or after it (flush_tlb_all is 0 .. UInt64.max).
    /// Throws `SVAError/outOfRange` for a non-canonical start and
    /// `SVAError/invalidArgument` for the rest, and flushes nothing then.
    public func flushTLBKernelRange(_ start: UInt64, _ end: UInt64, site: Site = .api) throws(SVAError) {
        if !(start == 0 && end == .max) {
            guard layout.isCanonical(start) else { throw .outOfRange }
            guard start & 0xfff == 0, layout.isKernel(start), end >= start else { throw .invalidArgument }
        }
        flushKernelRange(start, end, site: site)
    }

    /// PASID-selective range invalidation on IOMMU `iommu`; `leafOnly` is the
    /// VT-d IH / SMMUv3 LEAF hint that lets paging-structure entries stay.
    /// `end` is inclusive. Throws `SVAError/noDevice` for an unknown IOMMU,
    /// `SVAError/invalidArgument` for a PASID past 20 bits, a start that is
    /// not page-aligned or an end that is not a page's last byte (or before
    /// the start), and `SVAError/outOfRange` for a non-canonical start or
    /// end (UInt64.max is "to the end").
    public func invalidateRange(iommu: IOMMUID, pasid: PASID, start: UInt64, end: UInt64,
                                leafOnly: Bool = false) throws(SVAError) {
        let unit = try self.iommu(iommu)
        try checkCommandRange(pasid: pasid, start: start, end: end)
        unit.invalidateRange(pasid: pasid, start: start, end: end, leafOnly: leafOnly)
    }

    /// PASID-selective invalidation on IOMMU `iommu`: every IOTLB and
    /// paging-structure cache line tagged with `pasid` goes. Throws
    /// `SVAError/noDevice` for an unknown IOMMU and
    /// `SVAError/invalidArgument` for a PASID past 20 bits.
    public func invalidatePASID(iommu: IOMMUID, pasid: PASID) throws(SVAError) {
        let unit = try self.iommu(iommu)
        try checkCommandRange(pasid: pasid, start: 0, end: 0xfff)
        unit.invalidatePASID(pasid)
    }

    /// An IOMMU invalidation's operands: a PASID the 20-bit space holds, a
    /// page-aligned canonical start and an inclusive end at a page's last byte.
    private func checkCommandRange(pasid: PASID, start: UInt64, end: UInt64) throws(SVAError) {
        guard pasid.rawValue < 1 << 20 else { throw .invalidArgument }
        guard layout.isCanonical(start), end == .max || layout.isCanonical(end) else { throw .outOfRange }
        guard start & 0xfff == 0, end & 0xfff == 0xfff, end >= start else { throw .invalidArgument }
    }
}
