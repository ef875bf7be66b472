// SPDX-License-Identifier: Apache-2.0

/// IOMMUs, devices and the SVA registry: the public face of SVARegistry.
extension Machine {
    @discardableResult
    public func addIOMMU(_ config: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> IOMMU {
        try config.validate()
        return sva.addIOMMU(config, traceWalks: self.config.traceWalks)
    }

    public func iommu(_ id: UInt32) throws(SVAError) -> IOMMU { try sva.iommu(id) }

    /// A device behind `iommu` that emits PASIDs 1 ..< 2^pasidBits.
    public func addDevice(iommu: UInt32, sva isSVA: Bool = true, pasidBits: Int = 20) throws(SVAError) -> UInt32 {
        try sva.addDevice(iommu: iommu, sva: isSVA, pasidBits: pasidBits)
    }

    /// A non-SVA attachment of mm's tables at a PASID the caller picks (as a
    /// VMM does through iommufd). It reaches the gate like an SVA domain.
    public func attachPASID(device: UInt32, pasid: UInt32, mm: UInt32) throws(SVAError) {
        try sva.attach(device: device, pasid: pasid, mm: mm)
    }

    public func detachPASID(device: UInt32, pasid: UInt32) throws(SVAError) {
        try sva.detach(device: device, pasid: pasid)
    }

    /// iommu_sva_bind_device (docs/KERNEL-MODEL.md §1.4).
    public func bindSVA(device: UInt32, mm: UInt32) throws(SVAError) -> SVABond {
        try sva.bind(device: device, mm: mm)
    }

    /// iommu_sva_unbind_device (docs/KERNEL-MODEL.md §1.5).
    public func unbindSVA(_ bond: SVABond) throws(SVAError) { try sva.unbind(handle: bond.id) }

    public func unbindSVA(handle h: UInt32) throws(SVAError) { try sva.unbind(handle: h) }

    public func pasid(of handle: UInt32) throws(SVAError) -> UInt32 { try sva.pasid(ofBond: handle) }

    /// The PASID an mm holds, if it ever bound.
    public func pasid(ofMM mm: UInt32) -> UInt32? { sva.pasid(ofMM: mm) }

    /// Mms on the SVA list (iommu_sva_mms).
    public var svaMMCount: Int { sva.svaMMCount }

    /// Times the key changed state since boot.
    public var svaKeyTransitions: Int { sva.keyTransitions }

    /// The device a bond belongs to (for tests and tools).
    public func device(ofBond handle: UInt32) -> UInt32? { sva.state.locked { $0.bonds[handle]?.device } }

    /// The slow path for the C header's inline gate.
    func invalidateKernelRangeSlow(_ start: UInt64, _ end: UInt64) {
        _ = sva.invalidateKernelRange(start, end)
    }
}
