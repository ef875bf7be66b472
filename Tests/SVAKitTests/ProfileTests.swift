// SPDX-License-Identifier: Apache-2.0
import CSVAKit
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// One machine and one bound device on an IOMMU of `profile`.
private func bound(_ profile: IOMMUProfile) throws -> (Machine, SVASetup) {
    var c = IOMMUConfig()
    c.profile = profile
    return try boundMachine(c)
}

/// The hardware profiles (docs/KERNEL-MODEL.md §3.6): the commands a request
/// becomes, what each drops, the hints, the thresholds that widen a range,
/// EPD1, and each seed scenario's verdict per profile.
@Suite struct ProfileTests {
    let user: UInt64 = 0x7f00_0000_0000

    /// Maps `pages` user pages from `user` and touches each: every page has
    /// its IOTLB line, and the PML4E, PDPTE and PDE of the range are cached.
    private func warm(_ m: Machine, _ s: SVASetup, pages: Int = 1, at va: UInt64? = nil, map: Bool = true) throws {
        let base = va ?? user
        for i in 0..<pages {
            let p = base + UInt64(i) << 12
            if map { try m.map(p, to: userFrame(m), prot: PageTableEntry.user, in: s.mm) }
            #expect(try s.touch(m, p).isSuccess)
        }
    }

    // MARK: - The drivers' arithmetic

    @Test func vtdMaskRoundingIsTheDriversCalculation() {
        // calculate_psi_aligned_address(): (start, inclusive end) -> (base, mask).
        let cases: [(UInt64, UInt64, UInt64, Int)] = [
            (0x1000, 0x1fff, 0x1000, 0),                        // one page
            (0x2000, 0x3fff, 0x2000, 1),                        // two, aligned
            (0x1000, 0x2fff, 0x0, 2),                           // two, misaligned: widened to 4
            (0x0, 0x2fff, 0x0, 2),                              // three: rounded up to 4
            (0x3000, 0x4fff, 0x0, 3),                           // two across an 8-page boundary: 8
            (0x7f00_0000_1000, 0x7f00_0000_2fff, 0x7f00_0000_0000, 2),
            (0xffff_8880_0000_0000, .max, 0xffff_8000_0000_0000, 35),  // the kernel gate's range
            (0, .max, 0, 52),                                   // MAX_AGAW_PFN_WIDTH
        ]
        for (start, end, base, mask) in cases {
            let r = IOMMUProfileRules.vtdPSI(start: start, end: end)
            #expect(r.address == base && r.mask == mask, "[\(hex(start)), \(hex(end))] -> \(hex(r.address)) mask \(r.mask)")
            let covered = IOMMUProfileRules.vtdRange(address: r.address, mask: r.mask)
            #expect(covered.start <= start && covered.end >= end, "the descriptor covers the request")
        }
    }

    @Test func amdAddressEncodingIsTheDriversCalculation() {
        // build_inv_address(): one page without S; a size-encoded block with
        // S; the all-pages address when bit 51 or above differs.
        let all = IOMMUProfileRules.amdAllPagesAddress & ~0xfff | 1
        let cases: [(UInt64, UInt64, UInt64, UInt64, UInt64)] = [
            (0x1000, 0x1fff, 0x1000, 0x1000, 0x1fff),
            (0x2000, 0x3fff, 0x2001, 0x2000, 0x3fff),
            (0x1000, 0x2fff, 0x1001, 0x0, 0x3fff),             // misaligned: the 16 KiB block
            (0xffff_8880_0000_0000, .max, 0xffff_bfff_ffff_f001, 0xffff_8000_0000_0000, .max),
            (0, .max, all, 0, .max),
        ]
        for (start, end, address, lo, hi) in cases {
            let a = IOMMUProfileRules.amdInvAddress(start: start, end: end)
            #expect(a == address, "[\(hex(start)), \(hex(end))] -> \(hex(a))")
            let r = IOMMUProfileRules.amdRange(a)
            #expect(r.start == lo && r.end == hi, "\(hex(a)) covers [\(hex(r.start)), \(hex(r.end))]")
        }
        #expect(IOMMUProfileRules.amdAllPagesAddress == 0x7fff_ffff_ffff_ffff)
    }

    // MARK: - VT-d

    @Test func vtdIHKeepsThePagingStructureCaches() throws {
        let (m, s) = try bound(.vtd)
        try warm(m, s)
        #expect(s.iommu.cachedEntries == (1, 3))
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff, leafOnly: true)
        #expect(s.iommu.cachedEntries == (0, 3), "IH=1: the leaf goes, the paging-structure entries stay")
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff)
        #expect(s.iommu.cachedEntries == (0, 0), "IH=0: they go too")
        let c = s.iommu.counters.commands
        #expect((c.vtdPageSelectiveIH, c.vtdPageSelective, c.vtdPASIDSelective, c.vtdWait) == (1, 1, 0, 2))
        #expect(c.invalidations == 2 && c.syncs == 2)
        #expect(s.iommu.counters.leafRangeInvalidations == 1 && s.iommu.counters.rangeInvalidations == 1,
                "the request counters still count what the kernel asked for")
    }

    @Test func vtdMaskRoundingDropsTheNeighboursTheRequestDidNotName() throws {
        // [user + 1 page, user + 3 pages) is misaligned: the descriptor covers
        // the 4 pages from `user`, so the line of `user` itself goes too. The
        // generic IOMMU drops exactly the range.
        for profile in [IOMMUProfile.vtd, .generic] {
            let (m, s) = try bound(profile)
            try warm(m, s, pages: 4)
            #expect(s.iommu.cachedEntries.iotlb == 4)
            s.iommu.invalidateRange(pasid: s.bond.pasid, start: user + 0x1000, end: user + 0x2fff, leafOnly: true)
            #expect(s.iommu.cachedEntries.iotlb == (profile == .vtd ? 0 : 2), "\(profile)")
        }
    }

    @Test func vtdTheWholeSpaceIsPASIDSelective() throws {
        let (m, s) = try bound(.vtd)
        try warm(m, s)
        try warm(m, s, at: user + (1 << 39))   // another PML4E
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: 0, end: .max)
        #expect(s.iommu.cachedEntries == (0, 0))
        s.iommu.invalidatePASID(s.bond.pasid)
        let c = s.iommu.counters.commands
        #expect((c.vtdPASIDSelective, c.vtdPageSelective, c.vtdWait) == (2, 0, 2))
        // The kernel gate's range is not the whole space: one page-selective
        // descriptor with mask 35 over the upper half.
        _ = m.invalidateKernelRange(0xffff_8880_0000_0000, .max)
        #expect(s.iommu.counters.commands.vtdPageSelective == 1)
        #expect(s.iommu.counters.commands.vtdWait == 3)
    }

    @Test func vtdBatchesSixteenDescriptorsPerWaitDescriptor() throws {
        // With ATS devices each request adds a device-IOTLB descriptor per
        // device bound to the mm: 1 + 15 = 16 fill one batch (one wait),
        // 1 + 16 = 17 need a second.
        var c = IOMMUConfig()
        c.profile = .vtd
        c.deviceTLBs = true
        let (m, s) = try boundMachine(c)
        var bonds = [s.bond]
        for _ in 0..<14 { bonds.append(try m.bindSVA(device: try m.addDevice(iommu: s.iommu.id), mm: s.mm)) }
        let pasid = s.bond.pasid
        #expect(bonds.allSatisfy { $0.pasid == pasid }, "one PASID per mm")
        s.iommu.invalidateRange(pasid: pasid, start: user, end: user + 0xfff)
        var k = s.iommu.counters.commands
        #expect((k.vtdPageSelective, k.deviceTLB, k.vtdWait) == (1, 15, 1))
        let sixteenth = try m.bindSVA(device: try m.addDevice(iommu: s.iommu.id), mm: s.mm)
        s.iommu.invalidateRange(pasid: pasid, start: user, end: user + 0xfff)
        k = s.iommu.counters.commands
        #expect((k.vtdPageSelective, k.deviceTLB, k.vtdWait) == (2, 15 + 16, 1 + 2))
        let costs = IOMMUCostModel()
        #expect(s.iommu.counters.modelledDeviceNs == (1 + 15) * costs.rangeInvalidationNs + costs.syncNs
                + (1 + 16) * costs.rangeInvalidationNs + 2 * costs.syncNs)
        // An unbind takes its device out of the count.
        try m.unbindSVA(sixteenth)
        let before = s.iommu.counters.commands
        s.iommu.invalidateRange(pasid: pasid, start: user, end: user + 0xfff)
        #expect(s.iommu.counters.commands.deviceTLB - before.deviceTLB == 15)
    }

    @Test func deviceTLBsAddEachProfilesATSCommands() throws {
        // Two ATS devices bound to one mm, one request: what each driver adds.
        for profile in IOMMUProfile.allCases where profile != .generic {
            var c = IOMMUConfig()
            c.profile = profile
            c.deviceTLBs = true
            let (m, s) = try boundMachine(c)
            _ = try m.bindSVA(device: try m.addDevice(iommu: s.iommu.id), mm: s.mm)
            s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff)
            let k = s.iommu.counters.commands
            #expect(k.deviceTLB == 2, "\(profile)")
            switch profile {
            case .vtd: #expect(k.vtdWait == 1)
            case .smmuv3: #expect(k.smmuTLBINHVA == 1 && k.smmuSync == 2, "a second batch for the ATC")
            case .amd: #expect(k.amdInvalidatePages == 2 && k.amdCompletionWait == 2, "one flush per device")
            case .riscv: #expect(k.riscvInvalVMAPSCID == 1 && k.riscvFence == 1)
            case .generic: break
            }
        }
    }

    // MARK: - SMMUv3

    @Test func smmuSendsOneTLBIPerPageBelow512AndTheASIDFrom512() throws {
        let (m, s) = try bound(.smmuv3)
        let far = user + (1 << 30)
        try warm(m, s)
        try warm(m, s, at: far)
        let before = s.iommu.counters.modelledDeviceNs
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: far, end: far + 511 * 4096 - 1)
        var c = s.iommu.counters.commands
        #expect((c.smmuTLBINHVA, c.smmuTLBINHASID, c.smmuSync) == (511, 0, 1))
        #expect(s.iommu.cachedEntries.iotlb == 1, "511 pages: per page, `user` untouched")
        let costs = IOMMUCostModel()
        #expect(s.iommu.counters.modelledDeviceNs - before == 511 * costs.rangeInvalidationNs + costs.syncNs)
        try warm(m, s, at: far, map: false)
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: far, end: far + 512 * 4096 - 1)
        c = s.iommu.counters.commands
        #expect((c.smmuTLBINHVA, c.smmuTLBINHASID, c.smmuSync) == (511, 1, 2))
        #expect(s.iommu.cachedEntries == (0, 0), "512 pages: CMD_TLBI_NH_ASID drops `user` too")
    }

    @Test func smmuLeafKeepsTheWalkCache() throws {
        let (m, s) = try bound(.smmuv3)
        try warm(m, s)
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff, leafOnly: true)
        #expect(s.iommu.cachedEntries == (0, 3), "LEAF=1 leaves the walk cache")
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff)
        #expect(s.iommu.cachedEntries == (0, 0))
        let c = s.iommu.counters.commands
        #expect((c.smmuTLBINHVALeaf, c.smmuTLBINHVA, c.smmuSync) == (1, 1, 2))
    }

    @Test func smmuEPD1FaultsKernelAddressesWithoutAWalk() throws {
        let (m, s) = try bound(.smmuv3)
        let va = try m.vmalloc(4096)
        let walksBefore = s.iommu.counters
        #expect(try s.touch(m, va) == .failure(DMAFault(reason: .tableDisabled, level: 0, address: va)))
        #expect(s.iommu.cachedEntries == (0, 0), "nothing of the kernel half is read, so nothing is cached")
        let c = s.iommu.counters
        #expect(c.accessedDirtyWrites == walksBefore.accessedDirtyWrites, "no A bit set in a kernel table")
        #expect(c.faults == walksBefore.faults + 1)
        // The same access on VT-d walks down to the leaf and leaves the upper
        // levels cached: the bug's precondition.
        let (m2, s2) = try bound(.vtd)
        let va2 = try m2.vmalloc(4096)
        #expect(try s2.touch(m2, va2) == .failure(DMAFault(reason: .privilege, level: 1, address: va2)))
        #expect(s2.iommu.cachedEntries.psc == 3)
        // A user address translates as before, through TTB0.
        try warm(m, s)
        #expect(s.iommu.cachedEntries == (1, 3))
        // A burst of requests is refused the same way.
        let vas: [UInt64] = [va, user]
        var out = [UInt64](repeating: 0, count: 2)
        let faults = try vas.withUnsafeBufferPointer { v in
            try out.withUnsafeMutableBufferPointer { o in
                try m.translateForDevice(device: s.device, pasid: s.bond.pasid, vas: v, into: o)
            }
        }
        #expect(faults == 1 && out == [.max, userFrame(m)])
        #expect(s.iommu.cachedEntries == (1, 3), "the refused kernel address left nothing behind")
    }

    // MARK: - AMD

    @Test func amdDropsPagingStructuresEvenForALeafOnlyRequest() throws {
        let (m, s) = try bound(.amd)
        try warm(m, s)
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff, leafOnly: true)
        #expect(s.iommu.cachedEntries == (0, 0), "PDE=1 whatever the hint")
        try warm(m, s, map: false)
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: 0xffff_8880_0000_0000, end: .max)
        #expect(s.iommu.cachedEntries == (1, 3), "the kernel half's block leaves the user half alone")
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: 0, end: .max)
        #expect(s.iommu.cachedEntries == (0, 0))
        let c = s.iommu.counters.commands
        #expect((c.amdInvalidatePages, c.amdInvalidateAllPages, c.amdCompletionWait) == (2, 1, 3))
    }

    // MARK: - RISC-V

    @Test func riscvAnAddressDropsOnlyLeavesSoNonLeafRequestsTakeThePSCID() throws {
        let (m, s) = try bound(.riscv)
        let far = user + (1 << 30)
        try warm(m, s)
        try warm(m, s, at: far)
        #expect(s.iommu.cachedEntries == (2, 5))
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff, leafOnly: true)
        #expect(s.iommu.cachedEntries == (1, 5), "IOTINVAL.VMA with ADDR: that leaf only")
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff)
        #expect(s.iommu.cachedEntries == (0, 0), "non-leaf entries need AV=0: the whole PSCID")
        var c = s.iommu.counters.commands
        #expect((c.riscvInvalVMAAddress, c.riscvInvalVMAPSCID, c.riscvFence) == (1, 1, 2))
        // A leaf-only range of 2 MiB or more goes without an address too.
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + (2 << 20) - 1, leafOnly: true)
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + (2 << 20) - 4097, leafOnly: true)
        c = s.iommu.counters.commands
        #expect((c.riscvInvalVMAAddress, c.riscvInvalVMAPSCID, c.riscvFence) == (1 + 511, 2, 4))
    }

    // MARK: - Every profile

    @Test(arguments: IOMMUProfile.allCases)
    func everyProfileCountsItsCommandsAndPricesItsSyncOnce(_ profile: IOMMUProfile) throws {
        let (m, s) = try bound(profile)
        try warm(m, s)
        ModelledDeviceTime.resetCurrentThread()
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 0xfff)
        s.iommu.fence()
        let c = s.iommu.counters
        let costs = IOMMUCostModel()
        #expect(s.iommu.cachedEntries == (0, 0), "\(profile): a non-leaf request drops the page's walk")
        #expect(c.rangeInvalidations == 1 && c.fences == 1)
        // One page: one page command and one completion (RISC-V: the PSCID).
        let expected = profile == .riscv ? costs.domainInvalidationNs + costs.syncNs
                                         : costs.rangeInvalidationNs + costs.syncNs
        #expect(c.modelledDeviceNs == expected, "\(profile)")
        #expect(ModelledDeviceTime.currentThreadNs == expected, "charged to the caller once")
        #expect(c.commands.invalidations == (profile == .generic ? 0 : 1))
        #expect(c.commands.syncs == (profile == .generic ? 0 : 1))
    }

    @Test func theProfileRoundTripsThroughTheCConfig() throws {
        for p in IOMMUProfile.allCases {
            var c = IOMMUConfig()
            c.profile = p
            #expect(try IOMMUConfig(c.cValue) == c)
            #expect(IOMMUProfile(name: p.description) == p)
        }
        #expect(IOMMUConfig().cValue.profile == SVAKIT_IOMMU_GENERIC.rawValue)
        #expect(IOMMUProfile.smmuv3.rawValue == SVAKIT_IOMMU_SMMUV3.rawValue)
        #expect(IOMMUProfile.riscv.rawValue == SVAKIT_IOMMU_RISCV.rawValue)
        #expect(DMAFaultReason.tableDisabled.rawValue == SVAKIT_FAULT_TABLE_DISABLED.rawValue)
        var bad = IOMMUConfig().cValue
        bad.profile = 5
        #expect(throws: SVAError.invalidArgument) { _ = try IOMMUConfig(bad) }
        bad = IOMMUConfig().cValue
        bad.reserved2 = 1
        #expect(throws: SVAError.invalidArgument) { _ = try IOMMUConfig(bad) }
    }

    // MARK: - The DMA scenarios per profile

    static let dmaCases: [(DMAScenarioName, DMAMode, IOMMUProfile)] = DMAScenario.all.flatMap { s in
        s.modes.flatMap { mode in IOMMUProfile.allCases.map { (s.name, mode, $0) } }
    }

    /// A data page after dma_unmap does not depend on how the walk caches
    /// are invalidated: a strict unmap's one-page leaf request drops the
    /// IOTLB line on every profile, and a lazy one leaves it on every one.
    @Test(arguments: dmaCases)
    func dmaScenarioVerdictsHoldOnEveryProfile(_ name: DMAScenarioName, _ mode: DMAMode, _ profile: IOMMUProfile) throws {
        let m = try Machine(mode.machineConfig(MachineConfig(frames: gib, eventLogCapacity: 1 << 14)))
        var c = IOMMUConfig()
        c.profile = profile
        let o = try DMAScenario.named(name).run(on: m, mode: mode, iommu: c)
        #expect(o.verdict == DMAScenario.named(name).expected[mode], "\(name.rawValue) under \(mode) on \(profile)")
        #expect(o.modelledDeviceNs == 600, "one request and its completion, as on the generic IOMMU")
    }

    // MARK: - The seed scenarios per profile

    /// Every seed scenario on every profile under the unfixed kernel and the
    /// complete fix. Unfixed: the scenario's unfixed verdict (exploited, or a
    /// use-after-free where a split table's entry lacks U/S) wherever the
    /// walker may walk the kernel half (the kernel never invalidates for a
    /// kernel free, so AMD's PDE=1 and RISC-V's PSCID-wide commands never
    /// run); safe on SMMUv3, whose SVA context descriptor sets EPD1.
    /// Complete: safe everywhere.
    static let verdicts: [(ScenarioName, IOMMUProfile, FreeMode, Verdict)] = ScenarioName.allCases.flatMap { n in
        IOMMUProfile.allCases.flatMap { p in
            [(n, p, FreeMode.immediate, p == .smmuv3 ? Verdict.safe : n.unfixedVerdict), (n, p, .complete, .safe)]
        }
    }

    @Test(arguments: verdicts)
    func seedScenarioVerdictPerProfile(_ name: ScenarioName, _ profile: IOMMUProfile, _ mode: FreeMode,
                                       _ verdict: Verdict) throws {
        let m = try machine(mode: mode)
        var c = IOMMUConfig()
        c.profile = profile
        let o = try Scenario.named(name).run(on: m, iommu: c)
        #expect(o.verdict == verdict, "\(name) on \(profile) under \(mode): \(o.reports.first?.text ?? "no report")")
        #expect(o.secretLeaked == (verdict == .exploited))
        if profile == .smmuv3 {
            #expect(o.finalFault?.reason == .tableDisabled, "the device's last access faulted at TCR, unwalked")
        }
        if mode == .immediate { #expect(o.invalidations == 0, "the unfixed kernel never invalidates") }
        #expect(m.audit() == [])
    }
}
