// SPDX-License-Identifier: Apache-2.0

/// Devices doing DMA at (PASID, virtual address) through their IOMMU.
extension Machine {
    /// A device reads `buf.count` bytes at (pasid, va). Returns the fault that
    /// stopped it, if any (the bytes before it were read).
    public func dmaRead(device: UInt32, pasid: UInt32, va: UInt64, into buf: UnsafeMutableRawBufferPointer,
                        access: DMAAccess = []) throws(SVAError) -> DMAFault? {
        try dma(device: device, pasid: pasid, va: va, count: buf.count, access: access.subtracting(.write)) { frame, off, n in
            buf.baseAddress!.advanced(by: off).copyMemory(from: frame, byteCount: n)
        }
    }

    /// A device writes `buf` at (pasid, va).
    public func dmaWrite(device: UInt32, pasid: UInt32, va: UInt64, from buf: UnsafeRawBufferPointer,
                         access: DMAAccess = []) throws(SVAError) -> DMAFault? {
        try dma(device: device, pasid: pasid, va: va, count: buf.count, access: access.union(.write)) { frame, off, n in
            frame.copyMemory(from: buf.baseAddress!.advanced(by: off), byteCount: n)
        }
    }

    /// Reads `count` bytes, or the fault.
    public func dmaRead(device: UInt32, pasid: UInt32, va: UInt64, count: Int,
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
    public func translateForDevice(device: UInt32, pasid: UInt32, va: UInt64,
                                   access: DMAAccess = []) throws(SVAError) -> Result<UInt64, DMAFault> {
        var phys: UInt64 = 0
        let base = UInt(bitPattern: memoryBase)
        let fault = try dma(device: device, pasid: pasid, va: va, count: 1, access: access) { p, _, _ in
            phys = UInt64(UInt(bitPattern: p) &- base)
        }
        if let fault { return .failure(fault) }
        return .success(phys)
    }

    /// A burst of ATS translation requests under one hold of the locks:
    /// out[i] gets the physical address of vas[i], or UInt64.max if it
    /// faulted. Returns the number of faults.
    public func translateForDevice(device: UInt32, pasid: UInt32, vas: UnsafeBufferPointer<UInt64>,
                                   into out: UnsafeMutableBufferPointer<UInt64>,
                                   access: DMAAccess = []) throws(SVAError) -> Int {
        let iommuIndex = try route(device: device, pasid: pasid)
        guard out.count >= vas.count else { throw .invalidArgument }
        for va in vas where !layout.isCanonical(va) { throw .outOfRange }
        var reports: [UAFReport] = []
        let faults = withIOMMU(iommuIndex) { iommu in
            iommu.state.locked { s in
                core.locked { c in
                    var faults = 0
                    for (i, va) in vas.enumerated() {
                        switch walkOne(&s, &c, iommu: iommu.id, device: device, pasid: pasid, va: va,
                                       access: access, reports: &reports) {
                        case .success(let t): out[i] = t.phys
                        case .failure: out[i] = .max; faults += 1
                        }
                    }
                    return faults
                }
            }
        } ?? 0
        if !reports.isEmpty { deliver(reports) }
        return faults
    }

    /// The IOMMU index of a device, after checking the PASID fits it.
    private func route(device: UInt32, pasid: UInt32) throws(SVAError) -> Int {
        let w = deviceTable.word(at: Int(device))
        guard w != 0 else { throw .noDevice }
        guard pasid > 0, UInt64(pasid) < 1 << (w >> 32) else { throw .invalidArgument }
        return Int(w & 0xffff_ffff) - 1
    }

    /// One walk, with both locks held; an oracle finding becomes a report.
    @inline(__always)
    private func walkOne(_ s: inout IOMMUState, _ c: inout MachineCore, iommu: UInt32, device: UInt32, pasid: UInt32,
                         va: UInt64, access: DMAAccess,
                         reports: inout [UAFReport]) -> Result<(phys: UInt64, size: PageSize), DMAFault> {
        var finding: WalkFinding? = nil
        let result = s.walk(&c, device: device, pasid: pasid, va: va, access: access, finding: &finding)
        if let finding {
            reports.append(c.makeReport(finding, device: device, pasid: pasid, iommu: iommu, va: va))
            c.events.record(.uafReport, site: .none, pfn: finding.frame, desc: finding.found, va: va,
                            aux: finding.escalation ? finding.escalationPhys : 0)
        }
        if c.traceWalks {
            switch result {
            case .success(let t): c.events.record(.dmaWalk, site: .none, pfn: PFN(Int(t.phys >> 12)), va: va, aux: 0)
            case .failure(let f): c.events.record(.dmaWalk, site: .none, va: va, aux: UInt64(f.reason.rawValue))
            }
        }
        return result
    }

    /// Translates page by page under the IOMMU's lock and then the memory
    /// lock (the order every walker uses), copying through `move`. Reports
    /// are delivered after both locks are dropped.
    private func dma(device: UInt32, pasid: UInt32, va: UInt64, count: Int, access: DMAAccess,
                     move: (UnsafeMutableRawPointer, Int, Int) -> Void) throws(SVAError) -> DMAFault? {
        let iommuIndex = try route(device: device, pasid: pasid)
        guard count >= 0, layout.isCanonical(va), layout.isCanonical(va &+ UInt64(max(count, 1)) &- 1)
        else { throw .outOfRange }
        var reports: [UAFReport] = []
        let fault: DMAFault? = withIOMMU(iommuIndex) { iommu in
            iommu.state.locked { s in
                core.locked { c in
                    var off = 0
                    while off < count {
                        let a = va + UInt64(off)
                        let n = min(count - off, pageSize - Int(a & 0xfff))
                        let result = walkOne(&s, &c, iommu: iommu.id, device: device, pasid: pasid, va: a,
                                             access: access, reports: &reports)
                        switch result {
                        case .failure(let f): return f
                        case .success(let t):
                            guard t.phys < c.memoryBytes, UInt64(n) <= c.memoryBytes - t.phys else {
                                return DMAFault(reason: .badAddress, level: 0, address: a)
                            }
                            move(c.memory.bytes + Int(t.phys), off, n)
                        }
                        off += n
                    }
                    return nil
                }
            }
        } ?? nil
        if !reports.isEmpty { deliver(reports) }
        return fault
    }

    /// Read-only access to the simulated memory for benchmarks that compare
    /// the model with plain code walking the same bytes. Frame n starts at
    /// offset n << 12. Do not keep the pointer past the machine's life.
    public func _withUnsafeMemory<R>(_ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawPointer(memoryBase))
    }

    func deliver(_ reports: [UAFReport]) {
        reportLog.locked { log in for r in reports { log.append(r) } }
        if let handler = reportHandler.locked({ $0 }) { for r in reports { handler(r) } }
    }

    // MARK: - Reports

    public func setReportHandler(_ handler: ReportHandler?) { reportHandler.locked { $0 = handler } }

    /// Reports ever made.
    public var reportCount: UInt64 { reportLog.locked { $0.total } }

    /// The reports still in the log, oldest first.
    public var reports: [UAFReport] { reports(from: 0) }

    /// Reports with index >= first still in the log, oldest first.
    public func reports(from first: UInt64, limit: Int = .max) -> [UAFReport] {
        reportLog.locked { log in
            let start = max(first, log.oldest)
            guard start < log.total else { return [] }
            return (start..<log.total).prefix(limit).compactMap { log.report($0) }
        }
    }

    public func report(_ index: UInt64) -> UAFReport? { reportLog.locked { $0.report(index) } }
}
