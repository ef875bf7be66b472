// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// Devices doing DMA at (PASID, virtual address) through their IOMMU.
extension Machine {
    /// A device reads `buf.count` bytes at (pasid, va). Returns the fault that
    /// stopped it, if any (the bytes before it were read).
    public func dmaRead(device: DeviceID, pasid: PASID, va: UInt64, into buf: UnsafeMutableRawBufferPointer,
                        access: DMAAccess = []) throws(SVAError) -> DMAFault? {
        try dma(device: device.rawValue, pasid: pasid.rawValue, va: va, count: buf.count, access: access.subtracting(.write)) { frame, off, n in
            frames.memory.copyOut(frame, to: buf.baseAddress!.advanced(by: off), count: n)
        }
    }

    /// A device writes `buf` at (pasid, va).
    public func dmaWrite(device: DeviceID, pasid: PASID, va: UInt64, from buf: UnsafeRawBufferPointer,
                         access: DMAAccess = []) throws(SVAError) -> DMAFault? {
        try dma(device: device.rawValue, pasid: pasid.rawValue, va: va, count: buf.count, access: access.union(.write)) { frame, off, n in
            frames.memory.copyIn(buf.baseAddress!.advanced(by: off), to: frame, count: n)
        }
    }

    /// Reads `count` bytes, or the fault.
    public func dmaRead(device: DeviceID, pasid: PASID, va: UInt64, count: Int,
                        access: DMAAccess = []) throws(SVAError) -> Result<[UInt8], DMAFault> {
        guard count >= 0 else { throw .invalidArgument }
        var bytes = [UInt8](repeating: 0, count: count)
        let fault: Result<DMAFault?, SVAError> = bytes.withUnsafeMutableBytes { b in
            Result { () throws(SVAError) in try dmaRead(device: device, pasid: pasid, va: va, into: b, access: access) }
        }
        if let f = try fault.get() { return .failure(f) }
        return .success(bytes)
    }

    /// An ATS translation request: the IOMMU translates (pasid, va) for the
    /// device, filling its caches, without moving data.
    public func translateForDevice(device: DeviceID, pasid: PASID, va: UInt64,
                                   access: DMAAccess = []) throws(SVAError) -> Result<UInt64, DMAFault> {
        var phys: UInt64 = 0
        let base = UInt(bitPattern: frames.memory.bytes)
        let fault = try dma(device: device.rawValue, pasid: pasid.rawValue, va: va, count: 1, access: access) { p, _, _ in
            phys = UInt64(UInt(bitPattern: p) &- base)
        }
        if let fault { return .failure(fault) }
        return .success(phys)
    }

    /// A burst of ATS translation requests: out[i] gets the physical
    /// address of vas[i], or UInt64.max if it faulted. Returns the number of
    /// faults. The IOMMU's lock is held across cache hits only.
    public func translateForDevice(device id: DeviceID, pasid p: PASID, vas: UnsafeBufferPointer<UInt64>,
                                   into out: UnsafeMutableBufferPointer<UInt64>,
                                   access: DMAAccess = []) throws(SVAError) -> Int {
        let device = id.rawValue, pasid = p.rawValue
        let iommuIndex = try core.route(device: device, pasid: pasid)
        guard out.count >= vas.count else { throw .invalidArgument }
        for va in vas where !inRange(va, pasid: pasid) { throw .outOfRange }
        var reports: [UAFReport] = []
        let faults = core.withIOMMU(iommuIndex) { iommu in
            iommu.translate(device: device, pasid: pasid, vas: vas, into: out, access: access) { f, va in
                reports.append(report(f, device: device, pasid: pasid, iommu: iommu.id.rawValue, va: va))
            }
        } ?? 0
        deliver(reports)
        return faults
    }

    /// Routes a device's DMA to its IOMMU, which translates it page by page
    /// and copies through `move` with no lock held
    /// (`IOMMU.deviceAccess`); the oracle's findings become reports,
    /// delivered at the end.
    private func dma(device: UInt32, pasid: UInt32, va: UInt64, count: Int, access: DMAAccess,
                     move: (UnsafeMutableRawPointer, Int, Int) -> Void) throws(SVAError) -> DMAFault? {
        let iommuIndex = try core.route(device: device, pasid: pasid)
        guard count >= 0, UInt64(max(count, 1)) - 1 <= UInt64.max - va, inRange(va, pasid: pasid),
              inRange(va + (UInt64(max(count, 1)) - 1), pasid: pasid)
        else { throw .outOfRange }
        var reports: [UAFReport] = []
        let fault: DMAFault? = core.withIOMMU(iommuIndex) { iommu in
            iommu.deviceAccess(device: device, pasid: pasid, va: va, count: count, access: access,
                               found: { f, a in
                                   reports.append(report(f, device: device, pasid: pasid, iommu: iommu.id.rawValue, va: a))
                               }, move: move)
        } ?? nil
        deliver(reports)
        return fault
    }

    /// A request's address is canonical (a process's virtual address, with
    /// a PASID), or inside a DMA domain's 48-bit aperture (an IOVA, without).
    private func inRange(_ va: UInt64, pasid: UInt32) -> Bool {
        pasid == 0 ? va < IOMMUDomain.apertureEnd : layout.isCanonical(va)
    }

    /// Read-only access to the simulated memory for benchmarks that compare
    /// the model with plain code walking the same bytes. Frame n starts at
    /// offset n << 12. Do not keep the pointer past the machine's life.
    @_spi(Benchmarks) public func _withUnsafeMemory<R>(_ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawPointer(frames.memory.bytes))
    }

    /// Reports made by walks, delivered with no lock held.
    func deliver(_ new: [UAFReport]) {
        guard !new.isEmpty else { return }
        for r in new { events.record(.uafReport, site: .none, pfn: r.frame, va: r.va, aux: r.escalationPhysicalAddress ?? 0) }
        reportSink.deliver(new)
    }

    // MARK: - Reports

    /// Installs (or removes) the handler called for every report, after the
    /// walk, with no engine lock held.
    public func setReportHandler(_ handler: ReportHandler?) { reportSink.setHandler(handler) }

    /// Reports ever made.
    public var reportCount: UInt64 {
        drainedReportSink.total
    }

    /// The reports still in the log, oldest first.
    public var reports: [UAFReport] {
        drainedReportSink.list(from: 0, limit: .max)
    }

    /// Reports with index >= first still in the log, oldest first.
    public func reports(from first: UInt64, limit: Int = .max) -> [UAFReport] {
        drainedReportSink.list(from: first, limit: limit)
    }

    /// Report number `index`, if the log still holds it.
    public func report(_ index: UInt64) -> UAFReport? {
        drainedReportSink.report(index)
    }
}
