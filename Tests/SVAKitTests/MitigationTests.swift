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

/// The mitigations (docs/MITIGATIONS.md): each one's verdict on every seed
/// scenario and IOMMU profile, the negative controls, and the mechanics of
/// the two structural designs (kpti-root's mirrored root, clear-us's
/// supervisor-only kernel half).
@Suite struct MitigationTests {
    /// Scenario machines: 2 GiB (hot-remove-boot takes the last GiB offline).
    static let scenarioBase = MachineConfig(frames: 2 * gib, eventLogCapacity: 1 << 12, workMode: .manual)

    static let cells: [(MatrixProfile, MatrixDesign)] =
        MatrixProfile.all.flatMap { p in MatrixDesign.all.map { (p, $0) } }

    // MARK: - Configuration

    @Test(arguments: Mitigation.allCases)
    func aMitigationSetsTheKnobsItStandsFor(_ mit: Mitigation) throws {
        let c = MachineConfig().with(mit)
        #expect(c.mitigation == mit)
        #expect((c.kvaInvalidation == .onFlush) == (mit == .flushOnKernelTLBFlush))
        #expect((c.freeMode != .immediate) == (mit == .deferredFree))
        #expect((c.pageTableDefence == .kptiRoot) == (mit == .kptiRoot))
        #expect((c.pageTableDefence == .clearUS) == (mit == .clearUS))
        // Through C and back, exactly.
        #expect(try MachineConfig(c.cValue) == c)
        let m = try Machine(MachineConfig(frames: gib).with(mit))
        #expect(m.mitigation == mit)
    }

    @Test func deferredFreeKeepsItsFreeMode() {
        #expect(MachineConfig(freeMode: .complete).with(.deferredFree).freeMode == .complete)
        #expect(MachineConfig().with(.deferredFree).freeMode == .linux619)
        #expect(MachineConfig(freeMode: .complete).with(.kptiRoot).freeMode == .immediate)
    }

    @Test func theCFieldAgreesWithTheKnobsOrIsRefused() throws {
        var c = MachineConfig().cValue
        #expect(c.mitigation == UInt32(SVAKIT_MITIGATION_BY_MODE.rawValue))
        c.free_mode = UInt32(SVAKIT_FREE_COMPLETE.rawValue)
        #expect(try MachineConfig(c).mitigation == .deferredFree, "0: the knobs decide")
        c.mitigation = UInt32(SVAKIT_MITIGATION_DEFERRED_FREE.rawValue)
        #expect(try MachineConfig(c).freeMode == .complete)
        c.mitigation = UInt32(SVAKIT_MITIGATION_KPTI_ROOT.rawValue)
        #expect(throws: SVAError.invalidArgument) { try MachineConfig(c) }   // kpti-root with a deferring mode
        c.free_mode = UInt32(SVAKIT_FREE_IMMEDIATE.rawValue)
        #expect(try MachineConfig(c).pageTableDefence == .kptiRoot)
        c.kva_invalidation = UInt32(SVAKIT_KVA_INV_ON_FLUSH.rawValue)
        #expect(throws: SVAError.invalidArgument) { try MachineConfig(c) }
        c.kva_invalidation = 0
        c.mitigation = 6
        #expect(throws: SVAError.invalidArgument) { try MachineConfig(c) }
        c.mitigation = UInt32(SVAKIT_MITIGATION_DEFERRED_FREE.rawValue)
        #expect(try MachineConfig(c).freeMode == .linux619, "deferred-free from IMMEDIATE picks linux-6.19")
    }

    @Test func aStructuralDefenceRunsAlone() {
        var c = MachineConfig(frames: gib).with(.clearUS)
        c.freeMode = .complete
        #expect(throws: SVAError.invalidArgument) { try Machine(c) }
        c = MachineConfig(frames: gib).with(.kptiRoot)
        c.kvaInvalidation = .onFlush
        #expect(throws: SVAError.invalidArgument) { try Machine(c) }
    }

    // MARK: - Verdicts

    /// Every scenario under every design on every profile gives the verdict
    /// the matrix expects, and leaves an audit-clean machine.
    @Test(arguments: cells)
    func verdicts(_ profile: MatrixProfile, _ design: MatrixDesign) throws {
        for s in ScenarioName.allCases {
            let m = try Machine(design.config(Self.scenarioBase))
            let o = try runScenario(s, on: m, iommu: profile.iommu)
            #expect(o.verdict == design.expected(s, on: profile), "\(profile.name) \(design) \(s.rawValue)")
            #expect(m.audit() == [], "\(profile.name) \(design) \(s.rawValue)")
        }
    }

    /// The matrix runner agrees with the scenarios run one by one.
    @Test func theMatrixHasNoMismatch() throws {
        let mx = try Matrix.run(base: Self.scenarioBase, workload: nil)
        #expect(mx.cells.count == MatrixProfile.all.count * MatrixDesign.all.count * ScenarioName.allCases.count)
        #expect(mx.mismatches.isEmpty, "\(mx.mismatches.map { "\($0.profile) \($0.design) \($0.scenario)" })")
    }

    /// Negative control: the unfixed kernel gives every scenario its unfixed
    /// verdict in every run on every profile that walks the kernel half:
    /// exploited, with the A/D write, except a user request through a split
    /// table's _KERNPG_TABLE entry, which reads the freed frame and faults
    /// at the leaf it planted (no A/D write: the walker sets A on a leaf only
    /// when it translates).
    @Test(arguments: MatrixProfile.all.filter(\.walksKernelHalf))
    func noneIsExploitedEveryTime(_ profile: MatrixProfile) throws {
        for s in ScenarioName.allCases {
            for _ in 0..<4 {
                let m = try Machine(Self.scenarioBase.with(.none))
                let o = try runScenario(s, on: m, iommu: profile.iommu)
                #expect(o.verdict == s.unfixedVerdict, "\(profile.name) \(s.rawValue)")
                #expect((o.corruptions > 0) == (s.unfixedVerdict == .exploited), "\(profile.name) \(s.rawValue)")
                #expect(!o.reports.isEmpty)
            }
        }
    }

    /// clear-us is not a fix: every scenario still has a stale walk through
    /// a freed table, and where the freed table is an upper level the walk
    /// writes A into it before it reaches the leaf it then refuses. A
    /// supervisor request, which U/S does not check, is exploited.
    @Test(arguments: MatrixProfile.all.filter(\.walksKernelHalf))
    func clearUSLeavesTheStaleWalkAndTheADWrite(_ profile: MatrixProfile) throws {
        for s in ScenarioName.allCases {
            let m = try Machine(Self.scenarioBase.with(.clearUS))
            let o = try runScenario(s, on: m, iommu: profile.iommu)
            #expect(!o.reports.isEmpty, "\(profile.name) \(s.rawValue): no stale walk reported")
            #expect(o.verdict != .safe)
            if s.usesSupervisorSVA {
                #expect(o.verdict == .exploited, "\(profile.name): U/S does not stop a supervisor request")
            } else {
                #expect(o.finalFault?.reason == .privilege, "the planted leaf is refused at the leaf")
            }
            if s == .pmdTableReuse {
                #expect(o.corruptions >= 1, "\(profile.name): the A write into the freed PMD frame")
                let r = try #require(o.reports.first)
                #expect(r.corruption)
            }
        }
    }

    /// clear-us writes init_mm's table entries (and so every mm's kernel
    /// half) without U/S; user tables keep it, and a user mapping still works.
    @Test func clearUSClearsUSInTheKernelHalfOnly() throws {
        let m = try Machine(MachineConfig(frames: gib).with(.clearUS))
        let s = try SVASetup(m)
        let kroot = try m.rootTable(of: Machine.initMM)
        let root = try m.rootTable(of: s.mm)
        for i in AddressLayout.kernelRootEntries {
            let e = try m.readWord(kroot.pfn, index: i)
            #expect(e & PageTableEntry.present != 0 && e & PageTableEntry.user == 0)
            #expect(try m.readWord(root.pfn, index: i) == e)
        }
        let va = try m.vmalloc(4096)
        #expect(try m.entrySlot(va, level: 2).map { m.entry($0).raw & PageTableEntry.user } == 0)
        let data = try m.allocFrames()
        try m.writeWord(data, index: 0, 0x1234)
        try m.map(1 << 30, to: data.physicalAddress, prot: PageTableEntry.writable | PageTableEntry.user, in: s.mm)
        let slot = try #require(try m.entrySlot(1 << 30, level: 2, in: s.mm))
        #expect(m.entry(slot).raw & PageTableEntry.user != 0)
        guard case .success(let b) = try s.touch(m, 1 << 30) else { Issue.record("user read faulted"); return }
        #expect(b.first == 0x34)
        // A kernel address: walked, refused at the leaf, upper levels cached.
        guard case .failure(let f) = try s.touch(m, va) else { Issue.record("kernel read succeeded"); return }
        #expect(f.reason == .privilege && f.level == 1)
        #expect(s.iommu.cachedEntries.psc > 0)
        #expect(m.audit() == [])
    }

    // MARK: - kpti-root

    @Test(arguments: [4, 5])
    func kptiRootMirrorsTheUserHalfAndHidesTheKernelHalf(levels: Int) throws {
        let m = try Machine(MachineConfig(frames: gib, pagingLevels: levels).with(.kptiRoot))
        let userTables0 = m.stats.userTables
        let mm0 = try m.createAddressSpace()
        let data = try m.allocFrames()
        try m.writeWord(data, index: 0, 0xfeed)
        let prot = PageTableEntry.writable | PageTableEntry.user
        try m.map(1 << 21, to: data.physicalAddress, prot: prot, in: mm0)   // before the bind
        #expect(try m.iommuRoot(of: mm0) == nil, "made at the first bind, not before")
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id)
        let bond = try m.bindSVA(device: dev, mm: mm0)
        let root = try m.rootTable(of: mm0)
        let shadow = try #require(try m.iommuRoot(of: mm0))
        #expect(shadow.pfn != root.pfn && shadow.level == root.level)
        for i in 0..<512 {
            let want = i < AddressLayout.kernelRootEntries.lowerBound ? try m.readWord(root.pfn, index: i) : 0
            #expect(try m.readWord(shadow.pfn, index: i) == want)
        }
        #expect(try m.descriptor(shadow.pfn).kind == .userTable)
        #expect(m.audit() == [])

        // The mapping made before the bind is visible to the device.
        let read = { (va: UInt64) throws -> Result<[UInt8], DMAFault> in
            try m.dmaRead(device: dev, pasid: bond.pasid, va: va, count: 8)
        }
        guard case .success(let b0) = try read(1 << 21) else { Issue.record("old region not visible"); return }
        #expect(b0.first == 0xed)

        // A new user region in a new top-level slot: one entry mirrored,
        // and the device sees it at once.
        let far = UInt64(3) << UInt64(12 + 9 * (levels - 1))   // root index 3
        let syncs = try m.iommuRootSyncs(of: mm0)
        try m.map(far, to: data.physicalAddress, prot: prot, in: mm0)
        #expect(try m.iommuRootSyncs(of: mm0) == syncs + 1)
        #expect(try m.readWord(shadow.pfn, index: 3) == m.readWord(root.pfn, index: 3))
        #expect(try m.readWord(shadow.pfn, index: 3) != 0)
        guard case .success(let b1) = try read(far) else { Issue.record("new region not visible"); return }
        #expect(b1.first == 0xed)
        #expect(m.audit() == [])

        // The kernel half: nothing to walk, a fault at the root, nothing cached.
        let kva = try m.vmalloc(4096)
        let psc = iommu.cachedEntries.psc
        guard case .failure(let f) = try read(kva) else { Issue.record("kernel read succeeded"); return }
        #expect(f.reason == .notPresent && f.level == levels)
        #expect(iommu.cachedEntries.psc == psc)

        // Teardown frees the extra root; every frame is accounted.
        try m.unbindSVA(bond)
        #expect(try m.iommuRoot(of: mm0) != nil, "kept until the mm goes")
        try m.unmap(1 << 21, in: mm0)
        try m.unmap(far, in: mm0)
        try m.destroyAddressSpace(mm0)
        #expect(try m.descriptor(shadow.pfn).kind == .free)
        #expect(m.stats.userTables == userTables0)
        #expect(m.audit() == [])
    }

    /// A PASID attachment of the mm walks the IOMMU-only root too.
    @Test func kptiRootServesPASIDAttachments() throws {
        let m = try Machine(MachineConfig(frames: gib).with(.kptiRoot))
        let mm = try m.createAddressSpace()
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id)
        try m.attachPASID(device: dev, pasid: PASID(7), mm: mm)
        #expect(try m.iommuRoot(of: mm) != nil)
        let kva = try m.vmalloc(4096)
        guard case .failure(let f) = try m.dmaRead(device: dev, pasid: PASID(7), va: kva, count: 8) else {
            Issue.record("kernel read succeeded"); return
        }
        #expect(f.level == m.layout.rootLevel && f.reason == .notPresent)
        try m.detachPASID(device: dev, pasid: PASID(7))
        try m.destroyAddressSpace(mm)
        #expect(m.audit() == [])
    }

    /// kpti-root under random maps, unmaps, binds, unbinds and mm
    /// teardowns: every device read agrees with the CPU's translation of
    /// the same address (a mirror that missed a top-level entry would fault
    /// where the CPU maps, or map where it does not), and the audit, which
    /// compares each IOMMU-only root with its mm's user half, stays clean.
    @Test func kptiRootMirrorUnderRandomOperations() throws {
        let seed = testSeed("kptiRootMirrorUnderRandomOperations")
        var rng = SplitMix64(seed: seed)
        let m = try Machine(MachineConfig(frames: gib, eventLogCapacity: 1 << 12, workMode: .manual).with(.kptiRoot))
        let iommu = try m.addIOMMU()
        let devs = [try m.addDevice(iommu: iommu.id), try m.addDevice(iommu: iommu.id)]
        var mms = [try m.createAddressSpace(), try m.createAddressSpace()]
        var bonds: [SVABond?] = [nil, nil]
        var mapped: [[UInt64: UInt64]] = [[:], [:]]   // va -> the word the page holds
        let data = try (0..<8).map { i throws(SVAError) -> PFN in
            let f = try m.allocFrames()
            try m.writeWord(f, index: 0, 0xd00d_0000 + UInt64(i))
            return f
        }
        let prot = PageTableEntry.writable | PageTableEntry.user
        for step in 0..<3000 {
            let k = rng.next(below: 2)
            switch rng.next(below: 10) {
            case 0...3:
                let va = UInt64(rng.next(below: 16)) << 39 | UInt64(rng.next(below: 4)) << 30 | UInt64(rng.next(below: 4)) << 12
                guard mapped[k][va] == nil else { continue }
                let d = data[rng.next(below: data.count)]
                try m.map(va, to: d.physicalAddress, prot: prot, in: mms[k])
                mapped[k][va] = 0xd00d_0000 + UInt64(data.firstIndex(of: d)!)
            case 4:
                guard let va = mapped[k].keys.sorted().first(where: { _ in rng.next(below: 3) == 0 }) else { continue }
                try m.unmap(va, in: mms[k])
                mapped[k][va] = nil
            case 5:
                if let b = bonds[k] { try m.unbindSVA(b); bonds[k] = nil } else {
                    bonds[k] = try m.bindSVA(device: devs[k], mm: mms[k])
                }
            case 6 where bonds[k] == nil && rng.next(below: 4) == 0:
                for va in mapped[k].keys { try m.unmap(va, in: mms[k]) }
                try m.destroyAddressSpace(mms[k])
                mms[k] = try m.createAddressSpace()
                mapped[k] = [:]
            default:
                guard let b = bonds[k] else { continue }
                let va = mapped[k].keys.randomElement(using: &rng) ?? UInt64(rng.next(below: 16)) << 39
                let r = try m.dmaRead(device: devs[k], pasid: b.pasid, va: va, count: 8)
                switch (r, try m.translate(va, in: mms[k]).physicalAddress) {
                case (.success(let bytes), .some):
                    let w = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    #expect(w == mapped[k][va], "seed \(seed) step \(step): read \(w) at \(va)")
                case (.failure, nil): break
                case (let r, let p): Issue.record("seed \(seed) step \(step): device \(r), CPU \(String(describing: p)) at \(va)")
                }
            }
            if step % 250 == 0 { #expect(m.audit() == [], "seed \(seed) step \(step)") }
        }
        #expect(m.reportCount == 0)
        #expect(m.audit() == [], "seed \(seed)")
    }

    // MARK: - The knob designs' mechanics

    /// flush-on-kernel-tlb-flush invalidates and fences on every kernel TLB
    /// flush while a device is bound, in the caller, and defers nothing.
    @Test func flushOnKernelTLBFlushGatesEveryFlush() throws {
        let m = try Machine(MachineConfig(frames: gib, workMode: .manual).with(.flushOnKernelTLBFlush))
        let s = try SVASetup(m)
        let c0 = s.iommu.counters
        for _ in 0..<5 { try m.flushTLBKernelRange(m.layout.vmallocStart, m.layout.vmallocStart + 4096) }
        let c1 = s.iommu.counters
        #expect(c1.rangeInvalidations - c0.rangeInvalidations == 5)
        #expect(c1.fences - c0.fences == 5)
        _ = try runScenario(.hugeVmap, on: m, iommu: IOMMUConfig())
        #expect(m.deferredStats.framesDeferred == 0)
    }

    /// deferred-free queues the tables and invalidates once per run of the
    /// work, off the freeing path. Under Linux's schedule (linux-6.19,
    /// mm/pgtable-generic.c: schedule_work with no delay) the kworker runs
    /// before the next freeing call, so each freed table costs one
    /// invalidation; batched (beyond Linux) one per batch of 8 rounds.
    @Test(arguments: [(DeferralSchedule.linux, 32), (.batched, 4)])
    func deferredFreeInvalidatesOncePerRun(schedule: DeferralSchedule, runs: Int) throws {
        let m = try Machine(MachineConfig(frames: 2 * gib, workMode: .manual).with(.deferredFree, freeMode: .complete))
        let cost = try CostWorkload(rounds: 32, batch: 8, userRegions: 2, schedule: schedule)
            .measure(on: m, iommu: IOMMUConfig(), profile: "generic", design: "deferred-free/complete")
        #expect(cost.kernelTableFrees == 32)
        #expect(cost.commandsPerKernelFree == Double(runs) / 32)
        #expect(cost.syncsPerKernelFree == Double(runs) / 32)
        #expect(cost.deviceNsPerKernelFree == Double(runs) * 600 / 32, "200 ns a range command, 400 a sync")
        #expect(cost.freeingPathSyncsPerFree == 0 && cost.freeingPathDeviceNsPerFree == 0,
                "the kworker's run is not the caller's")
        #expect(m.deferredStats.batches == runs && m.deferredStats.largestBatch == 32 / runs)
        #expect(cost.reports == 0)
    }

    /// The cost columns follow from each design: nothing for none and the
    /// structural ones, one sync per kernel TLB flush in the caller for
    /// flush-on-kernel-tlb-flush (three per round: vunmap, pmd_free_pte_page,
    /// vunmap; the round's vfree goes lazy and 16 rounds stay far below
    /// lazy_max_pages, so it flushes nothing), one root frame per SVA mm for kpti-root,
    /// and the user side untouched by all of them.
    @Test func costColumns() throws {
        let w = CostWorkload(rounds: 16, batch: 16, userRegions: 4)
        var perUnmap: Set<Double> = []
        for d in MatrixDesign.all {
            let m = try Machine(d.config(MachineConfig(frames: 2 * gib, workMode: .manual)))
            let c = try w.measure(on: m, iommu: IOMMUConfig(), profile: "generic", design: d.description)
            #expect(c.kernelTableFrees == 16)
            #expect(c.reports == 0, "\(d)")
            perUnmap.insert(c.commandsPerUserUnmap)
            switch d.mitigation {
            case .none, .clearUS:
                #expect(c.commandsPerKernelFree == 0 && c.bytesPerSVAMM == 0)
                #expect(c.gateCallsPerKernelFree == 0 && c.gateLock == nil)
            case .kptiRoot:
                #expect(c.commandsPerKernelFree == 0 && c.bytesPerSVAMM == 4096 && c.rootSyncsPerUserRegion == 1)
                #expect(c.gateCallsPerKernelFree == 0 && c.gateLock == nil)
            case .deferredFree:
                // Linux's schedule: one run of the work, one command, per
                // freed table; each run takes the merged gate's mutex
                // (iommu_sva_lock, e37d5a2d60a3), SVA bound or not.
                #expect(c.commandsPerKernelFree == 1 && c.freeingPathSyncsPerFree == 0)
                #expect(c.gateCallsPerKernelFree == 1 && c.gateLock == "iommu_sva_lock (mutex)")
            case .flushOnKernelTLBFlush:
                #expect(c.freeingPathSyncsPerFree == Double(c.kernelTLBFlushes) / 16)
                #expect(c.freeingPathSyncsPerFree == 3)
                // v2 took spin_lock_irqsave(&iommu_mms_lock) in every kernel
                // TLB flush while the key was on.
                #expect(c.gateCallsPerKernelFree == 3 && c.gateLock == "iommu_mms_lock (spin_lock_irqsave, v2)")
            }
        }
        #expect(perUnmap == [1.0], "no design changes the MMU notifier's commands")
    }
}
