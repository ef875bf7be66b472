// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// The IOMMU core, as drivers/iommu/iommu.c is: the machine's IOMMUs, the
/// devices behind them, what each device's PASIDs are attached to (the
/// group's pasid_array), its default DMA domain, and the routing of a
/// device's request to its IOMMU. SVA (SVARegistry) and the DMA domains
/// (DMADomains) sit on top of it and never see each other.
///
/// Writers hold `devices` for the bookkeeping and take an IOMMU's lock inside
/// it only to change a PASID entry. Readers on the DMA paths use the
/// published words (`iommuTable`, `deviceTable`) with no lock.
@_spi(Engine) public final class IOMMUCore: @unchecked Sendable {
    // @unchecked: immutable references, a lock and published tables.

    package let memory: PhysicalMemory
    package let events: EventLog
    package let rootLevel: Int

    /// The IOMMU list, the devices (their PASID attachments and default
    /// domains) and the dying DMA domains (group->mutex and the IOMMU
    /// list's lock, as one). Serialises every writer of the published words
    /// and of the IOMMUs' PASID tables. Ranked inside the SVA lock: bind and
    /// unbind attach and remove PASIDs under it.
    package let devices = RankedMutex<CoreState>(.iommuCore, CoreState())
    /// Unmanaged IOMMU references by id.
    @usableFromInline package let iommuTable = PublishedWords(capacity: 8)
    /// Each device's ``DeviceWord``, by device id.
    @usableFromInline package let deviceTable = PublishedWords()

    package init(memory: PhysicalMemory, events: EventLog, rootLevel: Int) {
        self.memory = memory
        self.events = events
        self.rootLevel = rootLevel
    }

    /// Back to boot (Machine.reset, quiescent): no IOMMU, no device.
    package func resetToBoot() {
        devices.locked { $0 = CoreState() }
        iommuTable.removeAll()
        deviceTable.removeAll()
    }

    // MARK: - IOMMUs

    /// iommu_device_register: a new IOMMU with its own caches and PASID table.
    package func addIOMMU(_ config: IOMMUConfig, traceWalks: Bool) -> IOMMU {
        devices.locked { s in
            let iommu = IOMMU(id: UInt32(s.iommus.count), config: config, memory: memory, events: events,
                              rootLevel: rootLevel, traceWalks: traceWalks)
            s.iommus.append(iommu)
            let slot = iommuTable.insert(UInt64(UInt(bitPattern: Unmanaged.passUnretained(iommu).toOpaque())))
            precondition(slot == Int(iommu.id.rawValue))
            return iommu
        }
    }

    /// The IOMMU with id `id` (no lock); `SVAError.noDevice` if none.
    @inlinable
    @_spi(Engine) public func iommu(_ id: UInt32) throws(SVAError) -> IOMMU {
        let w = iommuTable.word(at: Int(id))
        guard w != 0, let p = UnsafeRawPointer(bitPattern: UInt(w)) else { throw .noDevice }
        return Unmanaged<IOMMU>.fromOpaque(p).takeUnretainedValue()
    }

    /// Runs body with the IOMMU of `index`, borrowed without ARC traffic.
    /// Inlinable, as the lookups below: SVA, DMA and the device accesses
    /// call them from the layers above on every request.
    @inlinable @inline(__always)
    @_spi(Engine) public func withIOMMU<R>(_ index: Int, _ body: (IOMMU) -> R) -> R? {
        let w = iommuTable.word(at: index)
        guard w != 0, let p = UnsafeRawPointer(bitPattern: UInt(w)) else { return nil }
        return Unmanaged<IOMMU>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// IOMMUs registered so far (the scan length of the gate's slow path).
    @inlinable
    @_spi(Engine) public var iommuCount: Int { iommuTable.count }

    // MARK: - Devices

    /// iommu_probe_device: a device behind `iommu` that emits PASIDs
    /// 1 ..< 2^pasidBits.
    package func addDevice(iommu: UInt32, sva: Bool, pasidBits: Int, untrusted: Bool = false) throws(SVAError) -> UInt32 {
        guard pasidBits >= 1, pasidBits <= 20 else { throw .invalidArgument }
        return try devices.locked { s throws(SVAError) in
            guard Int(iommu) < s.iommus.count else { throw .noDevice }
            var d = DeviceRecord(iommu: Int(iommu), sva: sva, pasidLimit: 1 << pasidBits)
            d.untrusted = untrusted
            s.devices.append(d)
            // The DMA paths read the device's word without the lock.
            let id = deviceTable.insert(DeviceWord(iommu: Int(iommu), pasidBits: pasidBits,
                                                   untrusted: untrusted, defaultDomain: nil).raw)
            precondition(id == s.devices.count - 1)
            return UInt32(id)
        }
    }

    /// A copy of a device's record.
    package func device(_ id: UInt32) throws(SVAError) -> DeviceRecord {
        try devices.locked { s throws(SVAError) in try s.device(id) }
    }

    /// What the DMA paths know of a device, read with no lock.
    @inlinable
    @_spi(Engine) public func deviceWord(_ device: UInt32) throws(SVAError) -> DeviceWord {
        let w = deviceTable.word(at: Int(device))
        guard w != 0 else { throw .noDevice }
        return DeviceWord(raw: w)
    }

    /// The IOMMU index of a device, after checking the PASID fits it. No lock.
    /// PASID 0 is IOMMU_NO_PASID: a request without PASID, which the
    /// device's default DMA domain translates (and which faults at the
    /// PASID-table step when none is attached).
    @inlinable
    @_spi(Engine) public func route(device: UInt32, pasid: UInt32) throws(SVAError) -> Int {
        let w = try deviceWord(device)
        guard UInt64(pasid) < 1 << w.pasidBits else { throw .overflow }
        return w.iommu
    }

    /// Republishes a device's word after its default domain changed.
    private func publishDeviceLocked(_ s: borrowing CoreState, _ device: UInt32) {
        LockRank.iommuCore.assertHeld()
        let d = s.devices[Int(device)]
        deviceTable.store(DeviceWord(iommu: d.iommu, pasidBits: d.pasidLimit.trailingZeroBitCount,
                                     untrusted: d.untrusted, defaultDomain: d.defaultDomain).raw,
                          at: Int(device))
    }

    // MARK: - PASID attachments (iommu_attach_device_pasid)

    /// iommu_attach_device_pasid: records `attachment` at (device, pasid)
    /// and installs the PASID entry `entry(iommu)` builds. The caller (SVA,
    /// under its lock) has checked the PASID is free and fits the device,
    /// and published whatever must be visible before the entry exists.
    package func attachPASID(device: UInt32, pasid: UInt32, _ attachment: PASIDAttachment,
                     entry: (IOMMU) -> PasidEntry) {
        devices.locked { s in
            let d = s.devices[Int(device)]
            precondition(pasid > 0 && Int(pasid) < d.pasidLimit && d.attachments[pasid] == nil,
                         "the caller checks the PASID is free")
            withIOMMU(d.iommu) { $0.setPASIDEntry(device: device, pasid: pasid, entry($0)) }
            s.devices[Int(device)].attachments[pasid] = attachment
        }
    }

    /// iommu_detach_device_pasid: removes the PASID entry and the record;
    /// returns the IOMMU index. The caller invalidates and fences after it.
    package func removePASID(device: UInt32, pasid: UInt32) -> Int {
        devices.locked { s in
            let d = s.devices[Int(device)]
            withIOMMU(d.iommu) { $0.setPASIDEntry(device: device, pasid: pasid, nil) }
            s.devices[Int(device)].attachments[pasid] = nil
            return d.iommu
        }
    }

    /// Whether any device has a PASID attached to `mm` (an mm that is cannot
    /// be torn down).
    package func isAttached(mm: UInt32) -> Bool {
        devices.locked { s in s.devices.contains { $0.attachments.values.contains { $0.mm == mm } } }
    }

    // MARK: - Default domains (the requests without PASID)

    /// Attaches a DMA domain as `device`'s default domain: its requests
    /// without PASID walk the domain's tables. The domain must belong to
    /// the device's IOMMU; a device has one default domain at a time.
    package func attachDefaultDomain(device: UInt32, iommu: Int, domain: UInt32, entry: PasidEntry) throws(SVAError) {
        try devices.locked { s throws(SVAError) in
            let d = try s.device(device)
            guard !s.dyingDomains.contains(domain) else { throw .noDevice }
            guard d.iommu == iommu else { throw .invalidArgument }
            guard d.defaultDomain == nil else { throw .busy }
            withIOMMU(iommu) { $0.setPASIDEntry(device: device, pasid: 0, entry) }
            s.devices[Int(device)].defaultDomain = domain
            publishDeviceLocked(s, device)
        }
    }

    /// Removes the device's default domain entry and returns the domain;
    /// the caller invalidates and fences.
    package func detachDefaultDomain(device: UInt32) throws(SVAError) -> UInt32 {
        try devices.locked { s throws(SVAError) in
            let d = try s.device(device)
            guard let domain = d.defaultDomain else { throw .notFound }
            withIOMMU(d.iommu) { $0.setPASIDEntry(device: device, pasid: 0, nil) }
            s.devices[Int(device)].defaultDomain = nil
            publishDeviceLocked(s, device)
            return domain
        }
    }

    /// iommu_domain_free's check: refused while a device uses `domain` as
    /// its default domain; otherwise no attach to it succeeds any more.
    package func markDomainDying(_ domain: UInt32) throws(SVAError) {
        try devices.locked { s throws(SVAError) in
            guard !s.devices.contains(where: { $0.defaultDomain == domain }) else { throw .busy }
            s.dyingDomains.insert(domain)
        }
    }

    /// Whether an untrusted device has `domain` as its default domain.
    package func usesUntrusted(domain: UInt32) -> Bool {
        devices.locked { s in s.devices.contains { $0.defaultDomain == domain && $0.untrusted } }
    }


    // MARK: - Kernel-range invalidation over published (PASID, IOMMU) words

    /// A (PASID, IOMMU) pair as one nonzero word, the format of the words
    /// SVA publishes for the gate and `invalidateKernelRange` scans.
    package static func pasidWord(pasid: UInt32, iommu: Int) -> UInt64 {
        1 << 63 | UInt64(iommu) << 20 | UInt64(pasid)
    }

    /// The (PASID, IOMMU index) of a word made by `pasidWord`.
    package static func decodePASIDWord(_ w: UInt64) -> (pasid: UInt32, iommu: Int) {
        (UInt32(w & 0xf_ffff), Int((w >> 20) & 0xffff_ffff))
    }

    /// The gate's slow path over the words SVA published
    /// (SVARegistry.invalidateKernelRange): each IOMMU invalidates
    /// [start, last] for every PASID published on it, one hold of its lock
    /// for all of them, then fences if it invalidated anything. Returns
    /// whether any IOMMU did. No core lock: the IOMMU table and the words
    /// are read as published. Here rather than in SVA so that the loop, the
    /// invalidation and the fence compile in one module.
    package func invalidateKernelRange(_ start: UInt64, _ last: UInt64, pasidsIn words: PublishedWords) -> Bool {
        invalidateKernelRange(start, last, pasidsIn: words, fence: true)
    }

    #if SVAKIT_SCHEDULE_POINTS
    /// The same without the fence: the explorer's broken fix
    /// (`BrokenFix.workWithoutFence`), in builds with the schedule points only.
    package func invalidateKernelRangeWithoutFence(_ start: UInt64, _ last: UInt64,
                                                   pasidsIn words: PublishedWords) -> Bool {
        invalidateKernelRange(start, last, pasidsIn: words, fence: false)
    }
    #endif

    @inline(__always)
    private func invalidateKernelRange(_ start: UInt64, _ last: UInt64, pasidsIn words: PublishedWords,
                                       fence: Bool) -> Bool {
        var any = false
        for index in 0..<iommuCount {
            let n = withIOMMU(index) { iommu in
                iommu.invalidateKernelRange(start: start, end: last) { body in
                    words.forEach { w in
                        let (pasid, i) = Self.decodePASIDWord(w)
                        if i == index { body(pasid) }
                    }
                }
            } ?? 0
            if n > 0 {
                if fence { withIOMMU(index) { $0.fence() } }
                any = true
            }
        }
        return any
    }
}
