// SPDX-License-Identifier: Apache-2.0
import CSVAKit

/// An SVA bond (struct iommu_sva): its id is the C handle.
public struct SVABond: Hashable, Sendable {
    public let id: UInt32
    public let pasid: UInt32
}

/// IOMMUs, devices and the SVA registry, with the kernel's semantics
/// (kernel-notes §1.4-1.5). Every writer holds `registry` for its whole
/// operation, then takes an IOMMU's lock and the memory lock in that order.
extension Machine {
    // MARK: - IOMMUs and devices

    @discardableResult
    public func addIOMMU(_ config: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> IOMMU {
        try config.validate()
        return registry.locked { r in
            let iommu = IOMMU(id: UInt32(r.iommuCount), config: config)
            r.iommuCount += 1
            iommuObjects.locked { $0.append(iommu) }
            let slot = iommuTable.insert(UInt64(UInt(bitPattern: Unmanaged.passUnretained(iommu).toOpaque())))
            precondition(slot == Int(iommu.id))
            return iommu
        }
    }

    public func iommu(_ id: UInt32) throws(SVAError) -> IOMMU {
        let w = iommuTable.word(at: Int(id))
        guard w != 0, let p = UnsafeRawPointer(bitPattern: UInt(w)) else { throw .noDevice }
        return Unmanaged<IOMMU>.fromOpaque(p).takeUnretainedValue()
    }

    /// A device behind `iommu` that emits PASIDs 1 ..< 2^pasidBits.
    public func addDevice(iommu: UInt32, sva: Bool = true, pasidBits: Int = 20) throws(SVAError) -> UInt32 {
        guard pasidBits >= 1, pasidBits <= 20 else { throw .invalidArgument }
        return try registry.locked { r throws(SVAError) in
            guard Int(iommu) < r.iommuCount else { throw .noDevice }
            r.devices.append(DeviceRecord(iommu: Int(iommu), sva: sva, pasidLimit: 1 << pasidBits))
            // The DMA path reads (PASID width, IOMMU) here without the lock.
            let id = deviceTable.insert(UInt64(pasidBits) << 32 | (UInt64(iommu) + 1))
            precondition(id == r.devices.count - 1)
            return UInt32(id)
        }
    }

    /// A non-SVA attachment of mm's tables at a PASID the caller picks (as a
    /// VMM does through iommufd). Not on the SVA list.
    public func attachPASID(device: UInt32, pasid: UInt32, mm: UInt32) throws(SVAError) {
        try registry.locked { r throws(SVAError) in
            let d = try r.device(device)
            guard pasid > 0 else { throw .invalidArgument }
            guard Int(pasid) < d.pasidLimit else { throw .overflow }
            guard d.attachments[pasid] == nil else { throw .busy }
            try installPASID(iommu: d.iommu, device: device, pasid: pasid, mm: mm)
            r.devices[Int(device)].attachments[pasid] = .explicit(mm: mm)
        }
    }

    public func detachPASID(device: UInt32, pasid: UInt32) throws(SVAError) {
        try registry.locked { r throws(SVAError) in
            let d = try r.device(device)
            guard case .explicit = d.attachments[pasid] else { throw .notFound }
            removePASID(iommu: d.iommu, device: device, pasid: pasid, flush: true)
            r.devices[Int(device)].attachments[pasid] = nil
        }
    }

    // MARK: - Bind and unbind

    /// iommu_sva_bind_device (kernel-notes §1.4).
    public func bindSVA(device: UInt32, mm: UInt32) throws(SVAError) -> SVABond {
        try registry.locked { r throws(SVAError) in
            let d = try r.device(device)
            guard d.sva else { throw .notSupported }
            guard mm != Machine.initMM else { throw .invalidArgument }
            _ = try rootTable(of: mm)
            // iommu_alloc_mm_data: one PASID for the mm's life.
            let pasid: UInt32
            if let data = r.mmData[mm] {
                guard Int(data.pasid) < d.pasidLimit else { throw .overflow }
                pasid = data.pasid
            } else {
                guard let p = r.pasids.allocate(below: d.pasidLimit) else { throw .noSpace }
                pasid = p
                r.mmData[mm] = MMData(pasid: p)
            }
            // An existing attachment at this device-PASID.
            switch d.attachments[pasid] {
            case .sva(let h, let other) where other == mm:
                r.bonds[h]!.users += 1
                return SVABond(id: h, pasid: pasid)
            case .some:
                throw .busy
            case .none:
                break
            }
            // The domain of (mm, IOMMU), shared by the devices behind it.
            if r.mmData[mm]!.domains[d.iommu] != nil {
                r.mmData[mm]!.domains[d.iommu]!.users += 1
            } else {
                if r.mmData[mm]!.domains.isEmpty {
                    // The mm joins iommu_sva_mms; the first one turns the key on.
                    if r.svaMMCount == 0 {
                        svakit__set_iommu_sva_present(handle, 1)
                        r.keyTransitions += 1
                    }
                    r.svaMMCount += 1
                }
                // Published before the PASID entry exists (see invalidateKVASlow).
                let slot = svaDomains.insert(RegistryState.domainWord(pasid: pasid, iommu: d.iommu))
                r.mmData[mm]!.domains[d.iommu] = SVADomain(users: 1, slot: slot)
            }
            try installPASID(iommu: d.iommu, device: device, pasid: pasid, mm: mm)
            let h = r.nextHandle
            r.nextHandle &+= 1
            r.bonds[h] = Bond(device: device, mm: mm, pasid: pasid, users: 1)
            r.devices[Int(device)].attachments[pasid] = .sva(handle: h, mm: mm)
            return SVABond(id: h, pasid: pasid)
        }
    }

    /// iommu_sva_unbind_device (kernel-notes §1.5).
    public func unbindSVA(_ bond: SVABond) throws(SVAError) { try unbindSVA(handle: bond.id) }

    public func unbindSVA(handle h: UInt32) throws(SVAError) {
        try registry.locked { r throws(SVAError) in
            guard var bond = r.bonds[h] else { throw .staleHandle }
            bond.users -= 1
            guard bond.users == 0 else { r.bonds[h] = bond; return }
            r.bonds[h] = nil
            let d = r.devices[Int(bond.device)]
            r.devices[Int(bond.device)].attachments[bond.pasid] = nil
            var domain = r.mmData[bond.mm]!.domains[d.iommu]!
            domain.users -= 1
            // The PASID entry goes; the caches for it go with the domain's
            // last user (other devices behind the IOMMU share them).
            removePASID(iommu: d.iommu, device: bond.device, pasid: bond.pasid, flush: domain.users == 0)
            if domain.users > 0 { r.mmData[bond.mm]!.domains[d.iommu] = domain; return }
            r.mmData[bond.mm]!.domains[d.iommu] = nil
            svaDomains.remove(slot: domain.slot)
            if r.mmData[bond.mm]!.domains.isEmpty {
                r.svaMMCount -= 1
                if r.svaMMCount == 0 {
                    svakit__set_iommu_sva_present(handle, 0)
                    r.keyTransitions += 1
                }
            }
        }
    }

    public func pasid(of handle: UInt32) throws(SVAError) -> UInt32 {
        try registry.locked { r throws(SVAError) in
            guard let b = r.bonds[handle] else { throw .staleHandle }
            return b.pasid
        }
    }

    /// The PASID an mm holds, if it ever bound.
    public func pasid(ofMM mm: UInt32) -> UInt32? { registry.locked { $0.mmData[mm]?.pasid } }

    /// Mms on the SVA list (iommu_sva_mms).
    public var svaMMCount: Int { registry.locked { $0.svaMMCount } }

    /// Times the key changed state since boot.
    public var svaKeyTransitions: Int { registry.locked { $0.keyTransitions } }

    // MARK: - The PASID table (registry lock held)

    private func installPASID(iommu: Int, device: UInt32, pasid: UInt32, mm: UInt32) throws(SVAError) {
        let root = try rootTable(of: mm)
        let gen = try descriptor(root.pfn).generation
        withIOMMU(iommu) { i in
            i.state.locked { s in
                s.pasidTable[device, pasid] = PasidEntry(root: root.pfn, rootGeneration: gen, mm: mm)
            }
        }
    }

    private func removePASID(iommu: Int, device: UInt32, pasid: UInt32, flush: Bool) {
        withIOMMU(iommu) { i in
            i.state.locked { s in s.pasidTable[device, pasid] = nil }
            if flush { i.invalidatePASID(pasid) }
            i.fence()
        }
    }

    // MARK: - MMU notifier

    /// arch_invalidate_secondary_tlbs for a bound mm: its user mappings in
    /// [start, end) changed, so each IOMMU it is bound to drops them (the
    /// leaf-only hint clear, as the SVA notifiers pass it).
    func mmInvalidateRange(_ mm: UInt32, _ start: UInt64, _ end: UInt64) {
        registry.locked { r in
            guard let data = r.mmData[mm] else { return }
            for index in data.domains.keys {
                withIOMMU(index) { $0.invalidateRange(pasid: data.pasid, start: start, end: end &- 1, leafOnly: false) }
            }
        }
    }
}

extension RegistryState {
    func device(_ id: UInt32) throws(SVAError) -> DeviceRecord {
        guard Int(id) < devices.count else { throw .noDevice }
        return devices[Int(id)]
    }

    /// An mm that a device is still attached to cannot be torn down.
    func checkDetached(_ mm: UInt32) throws(SVAError) {
        for d in devices where d.attachments.values.contains(where: { $0.mm == mm }) { throw .busy }
    }

    /// mm_pasid_drop: the PASID lives until the mm is torn down.
    mutating func dropPASID(of mm: UInt32) {
        if let data = mmData.removeValue(forKey: mm) { pasids.free(data.pasid) }
    }
}
