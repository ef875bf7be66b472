// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// IOMMUs and devices (the IOMMU core) and SVA: the public face of IOMMUCore
/// and SVARegistry.
extension Machine {
    /// A new IOMMU with its own caches and PASID table.
    @discardableResult
    public func addIOMMU(_ config: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> IOMMU {
        try config.validate()
        return core.addIOMMU(config, traceWalks: self.config.traceWalks)
    }

    /// The IOMMU with id `id`.
    public func iommu(_ id: IOMMUID) throws(SVAError) -> IOMMU { try core.iommu(id.rawValue) }

    /// A device behind `iommu` that emits PASIDs 1 ..< 2^pasidBits. An
    /// `untrusted` device (dev->untrusted, an external-facing port) always
    /// gets strict DMA invalidation.
    public func addDevice(iommu: IOMMUID, sva isSVA: Bool = true, pasidBits: Int = 20,
                          untrusted: Bool = false) throws(SVAError) -> DeviceID {
        DeviceID(try core.addDevice(iommu: iommu.rawValue, sva: isSVA, pasidBits: pasidBits, untrusted: untrusted))
    }

    /// A non-SVA attachment of mm's tables at a PASID the caller picks (as a
    /// VMM does through iommufd). It reaches the gate like an SVA domain.
    public func attachPASID(device: DeviceID, pasid: PASID, mm: MMID) throws(SVAError) {
        // kpti-root allocates the mm's IOMMU-only root at the first attach.
        try allocatingTables { () throws(SVAError) in
            try sva.attach(device: device.rawValue, pasid: pasid.rawValue, mm: mm.rawValue)
        }
    }

    /// Undoes ``attachPASID(device:pasid:mm:)``: the PASID entry goes, then
    /// the IOMMU is invalidated and fenced.
    public func detachPASID(device: DeviceID, pasid: PASID) throws(SVAError) {
        try sva.detach(device: device.rawValue, pasid: pasid.rawValue)
    }

    /// iommu_sva_bind_device (docs/KERNEL-MODEL.md §1.4).
    public func bindSVA(device: DeviceID, mm: MMID) throws(SVAError) -> SVABond {
        // kpti-root allocates the mm's IOMMU-only root at the first bind.
        try allocatingTables { () throws(SVAError) in try sva.bind(device: device.rawValue, mm: mm.rawValue) }
    }

    /// iommu_sva_unbind_device (docs/KERNEL-MODEL.md §1.5): drops one
    /// reference; the last one detaches the device and frees the domain.
    public func unbindSVA(_ bond: SVABond) throws(SVAError) { try sva.unbind(handle: bond.rawValue) }

    /// iommu_sva_get_pasid: the PASID of a live bond (`SVAError/staleHandle`
    /// once it is released).
    public func pasid(of bond: SVABond) throws(SVAError) -> PASID { PASID(try sva.pasid(ofBond: bond.rawValue)) }

    /// The C ABI's unbind, by handle.
    func unbindSVA(handle: UInt32) throws(SVAError) { try sva.unbind(handle: handle) }

    /// The C ABI's get_pasid, by handle.
    func pasid(ofHandle handle: UInt32) throws(SVAError) -> UInt32 { try sva.pasid(ofBond: handle) }

    /// The PASID an mm holds, if it ever bound.
    public func pasid(ofMM mm: MMID) -> PASID? { sva.pasid(ofMM: mm.rawValue).map(PASID.init(rawValue:)) }

    /// Mms on the SVA list (iommu_sva_mms).
    public var svaMMCount: Int { sva.svaMMCount }

    /// Times the key changed state since boot.
    public var svaKeyTransitions: Int { sva.keyTransitions }

    /// The device a bond belongs to (for tests and tools).
    public func device(of bond: SVABond) -> DeviceID? {
        sva.device(ofBond: bond.rawValue).map(DeviceID.init(rawValue:))
    }

    /// The slow path for the C header's inline gate.
    func invalidateKernelRangeSlow(_ start: UInt64, _ end: UInt64) {
        _ = sva.invalidateKernelRange(start, end)
    }
}
