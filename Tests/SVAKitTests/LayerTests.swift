// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// What the layered engine adds: explicit PASID attachments reach the gate,
/// SVA grants user access only, the worker gathers a storm, handles die as
/// tombstones, fail_nth, and conservation.
@Suite struct LayerTests {
    /// A machine with one IOMMU and a device attached to an mm's tables at a
    /// PASID it picked (iommufd style, not iommu_sva_bind_device), whose
    /// walks of a kernel address cached the PTE table under it.
    func attachedWalker(mode: FreeMode) throws -> (Machine, IOMMU, DeviceID, UInt64, TableFrame) {
        let m = try Machine(MachineConfig(frames: gib, freeMode: mode, workMode: .manual))
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: 0)
        let mm = try m.createAddressSpace()
        try m.attachPASID(device: dev, pasid: 7, mm: mm)
        let va = try m.vmalloc(4096)
        let pte = try m.tableUnder(va, level: 2)
        // A user request walks the kernel half to the leaf (intermediate
        // entries carry U/S) and faults there, after caching every level.
        _ = try m.dmaRead(device: dev, pasid: 7, va: va, count: 8)
        #expect(iommu.cachedEntries.psc >= 3)
        return (m, iommu, dev, va, pte)
    }

    @Test func anExplicitAttachmentIsOnTheGatesList() throws {
        let (m, iommu, dev, va, pte) = try attachedWalker(mode: .complete)
        #expect(m.svaPresent, "an attachment turns the key on")
        try m.vfree(va)
        try m.vmapHuge(va & ~0x1f_ffff, phys: 0x20_0000, size: .size2M)
        let before = iommu.counters.rangeInvalidations
        m.runDeferredWork()
        #expect(iommu.counters.rangeInvalidations == before + 1, "the work invalidated the attached PASID")
        // The freed PTE table comes back as attacker data: no walk reaches it.
        let reused = try m.allocFrames()
        #expect(reused == pte.pfn)
        _ = try m.dmaRead(device: dev, pasid: 7, va: va, count: 8)
        #expect(m.reportCount == 0)
        try m.detachPASID(device: dev, pasid: 7)
        #expect(!m.svaPresent, "the last detach turns the key off")
        #expect(m.audit().isEmpty)
    }

    @Test func withoutDeferralTheAttachedWalkerReadsTheFreedTable() throws {
        // Negative control: the same steps in the unfixed kernel are caught.
        let (m, _, dev, va, pte) = try attachedWalker(mode: .immediate)
        try m.vfree(va)
        try m.vmapHuge(va & ~0x1f_ffff, phys: 0x20_0000, size: .size2M)
        #expect(try m.allocFrames() == pte.pfn)
        _ = try m.dmaRead(device: dev, pasid: 7, va: va, count: 8)
        #expect(m.reportCount == 1)
        #expect(m.reports.first?.frame == pte.pfn)
    }

    @Test func aBurstOfTranslationsReportsTheFreedTableToo() throws {
        // The same stale walk made by a burst of ATS requests (the path that
        // enters the walk epoch once for many addresses) is reported too.
        let (m, _, dev, va, pte) = try attachedWalker(mode: .immediate)
        try m.vfree(va)
        try m.vmapHuge(va & ~0x1f_ffff, phys: 0x20_0000, size: .size2M)
        #expect(try m.allocFrames() == pte.pfn)
        let vas = [va, va + 0x1000]
        var out = [UInt64](repeating: 0, count: vas.count)
        _ = try vas.withUnsafeBufferPointer { v in
            try out.withUnsafeMutableBufferPointer { o in try m.translateForDevice(device: dev, pasid: 7, vas: v, into: o) }
        }
        #expect(m.reportCount >= 1)
        #expect(m.reports.first?.frame == pte.pfn)
    }

    @Test func initMMCannotBeAttached() throws {
        let m = try machine()
        try m.addIOMMU()
        let dev = try m.addDevice(iommu: 0)
        #expect(throws: SVAError.invalidArgument) { try m.attachPASID(device: dev, pasid: 3, mm: Machine.initMM) }
        #expect(!m.svaPresent)
    }

    @Test("batched (beyond Linux): a storm coalesces into few batches")
    func aStormCoalescesIntoFewBatches() throws {
        var config = MachineConfig(frames: gib, freeMode: .complete, workMode: .thread)
        config.deferralSchedule = .batched
        config.deferBatchTarget = 64
        config.deferMaxDelayMicros = 1_000_000  // only the target ends the wait
        let m = try Machine(config)
        try m.addIOMMU()
        let dev = try m.addDevice(iommu: 0)
        _ = try m.bindSVA(device: dev, mm: try m.createAddressSpace())
        let base = m.layout.vmallocStart + (8 << 30)
        for i in 0..<256 {
            let va = base + UInt64(i) << 21
            try m.map(va, to: 0x1000)
            try m.unmap(va)
            try m.vmapHuge(va, phys: 0x20_0000, size: .size2M)
        }
        m.flushDeferredWork()
        let s = m.deferredStats
        #expect(s.framesDeferred == 256)
        #expect(s.pending == 0)
        // Each run waited for 64 frames, bar the flush's remainder.
        #expect(s.batches <= 256 / 64 + 1, "\(s.batches) batches")
        #expect(s.invalidations == s.batches)
        #expect(m.audit().isEmpty)
    }

    @Test func aDestroyedHandleIsATombstone() throws {
        var cfg = svakit_config()
        svakit_config_default(&cfg)
        cfg.frames = UInt64(gib)
        var h: UnsafeMutablePointer<svakit_machine>?
        #expect(svakit_machine_create(&cfg, &h) == 0)
        svakit_machine_destroy(h)
        var mm: UInt32 = 0
        #expect(svakit_mm_create(h, &mm) == -EBADF)
        #expect(svakit_iommu_sva_present(h) == 0)
        svakit_machine_destroy(h)  // a second destroy is ignored
        // A handle forged with the right magic is refused.
        var forged = svakit_machine(magic: MachineHandle.liveMagic, iommu_sva_present: 0,
                                    owner: UnsafeMutableRawPointer(bitPattern: 0x1000), check: 0,
                                    iommu_debug_initialized: 0)
        #expect(svakit_mm_create(&forged, &mm) == -EBADF)
    }

    @Test(arguments: ScenarioName.allCases)
    func failNthFailsCleanlyAtEveryAllocation(_ scenario: ScenarioName) throws {
        // Sweep N over a seed scenario (in the fixed kernel) until it
        // completes. The N-th internal allocation fails, whatever it is (a
        // frame, the bind's PASID, a vmalloc range): the call fails with the
        // error that allocation's exhaustion returns, and the machine stays
        // consistent and conserving. A failed bind publishes nothing.
        var n = 1
        var kinds = Set<InjectableAllocation>()
        while true {
            // 2 GiB: hot-remove takes the last GiB, which must be free.
            let m = try Machine(MachineConfig(frames: 1 << 19, eventLogCapacity: 1 << 12, freeMode: .complete, workMode: .manual))
            m.failNthAllocation(n)
            do {
                let outcome = try runScenario(scenario, on: m)
                #expect(outcome.reports.isEmpty, "\(scenario) n = \(n)")
                #expect(m.failNthInjected == nil, "\(scenario) n = \(n): an injected failure was swallowed")
                break
            } catch {
                let injected = m.failNthInjected
                #expect(injected != nil && error == injected?.error, "\(scenario) n = \(n): \(error), injected \(String(describing: injected))")
                if let injected { kinds.insert(injected) }
                if injected == .pasid {
                    #expect(!m.svaPresent && m.svaMMCount == 0, "\(scenario) n = \(n): the failed bind published a domain")
                }
            }
            m.failNthAllocation(0)
            m.flushDeferredWork()
            #expect(m.audit().isEmpty, "\(scenario) n = \(n): \(m.audit())")
            n += 1
            if n > 2_000 { Issue.record("\(scenario) never completed"); break }
        }
        #expect(n > 1, "the scenario allocates")
        #expect(kinds.isSuperset(of: [.frame, .pasid]), "\(scenario): injected \(kinds)")
    }

    @Test func failNthFailsTheDMAAPICleanlyAtEveryAllocation() throws {
        // The DMA API's allocations: the default domain's tables at setup,
        // then on each map the IOVA range and the IOMMU table pages (the
        // scatterlist crosses into a second last-level table), and the
        // frames of a coherent buffer. Each injected failure carries its
        // allocation's error and leaves the machine consistent; a map whose
        // IOVA allocation failed keeps no IOVA (the next map gets the
        // address a fresh domain gives).
        func rig() throws -> (Machine, DeviceID) {
            let m = try Machine(MachineConfig(frames: gib, freeMode: .complete, workMode: .manual))
            let iommu = try m.addIOMMU()
            return (m, try m.addDevice(iommu: iommu.id, sva: false))
        }
        let first = try { () throws -> UInt64 in
            let (m, dev) = try rig()
            _ = try m.setupDMA(for: dev)
            return try m.dmaMapPage(device: dev, phys: 0x10_0000, size: 8192, direction: .toDevice)
        }()
        var n = 1
        var kinds = Set<InjectableAllocation>()
        while true {
            let (m, dev) = try rig()
            m.failNthAllocation(n)
            var stage = 0
            do {
                _ = try m.setupDMA(for: dev)
                stage = 1
                let a = try m.dmaMapPage(device: dev, phys: 0x10_0000, size: 8192, direction: .toDevice)
                stage = 2
                let sg = try m.dmaMapSG(device: dev, [(0x20_0000, 4096), (0x40_0000, 0x20_0000)], direction: .fromDevice)
                stage = 3
                let buf = try m.dmaAllocCoherent(device: dev, size: 3 * 4096)
                #expect(m.failNthInjected == nil, "n = \(n): an injected failure was swallowed")
                try m.dmaFreeCoherent(device: dev, size: 3 * 4096, address: buf.address, pfn: buf.pfn)
                try m.dmaUnmapSG(device: dev, sg)
                try m.dmaUnmapPage(device: dev, address: a, size: 8192, direction: .toDevice)
                break
            } catch {
                let injected = m.failNthInjected
                #expect(injected != nil && error == injected?.error,
                        "n = \(n), stage \(stage): \(error), injected \(String(describing: injected))")
                if let injected { kinds.insert(injected) }
                m.failNthAllocation(0)
                if injected == .iova && stage == 1 {
                    #expect(try m.dmaMapPage(device: dev, phys: 0x10_0000, size: 8192, direction: .toDevice) == first,
                            "n = \(n): the failed map kept its IOVA")
                }
            }
            #expect(m.audit().isEmpty, "n = \(n): \(m.audit())")
            n += 1
            if n > 500 { Issue.record("the DMA calls never completed"); break }
        }
        #expect(kinds.isSuperset(of: [.iova, .frame]), "injected \(kinds)")
    }

    @Test func failNthAtABindsPASIDLeavesNothingHalfMade() throws {
        let m = try Machine(MachineConfig(frames: gib, freeMode: .complete, workMode: .manual))
        try m.addIOMMU()
        let dev = try m.addDevice(iommu: 0)
        let mm = try m.createAddressSpace()
        let before = m.stats, places = m.tablePlaces
        m.failNthAllocation(1)
        #expect(throws: SVAError.noSpace) { _ = try m.bindSVA(device: dev, mm: mm) }
        #expect(m.failNthInjected == .pasid, "a bind's first allocation is its PASID")
        #expect(SVAError.noSpace.errno == -ENOSPC)
        // No domain, no key, no PASID entry, no frame.
        #expect(!m.svaPresent)
        #expect(m.svaMMCount == 0)
        if case .success = try m.dmaRead(device: dev, pasid: 1, va: 0x1000, count: 8) {
            Issue.record("PASID 1 translates after the failed bind")
        }
        let after = m.stats
        #expect(after.allocs - after.frees == before.allocs - before.frees)
        #expect(m.tablePlaces == places)
        #expect(m.audit().isEmpty)
        // The PASID did not leak: the next bind gets the lowest, 1.
        m.failNthAllocation(0)
        let bond = try m.bindSVA(device: dev, mm: mm)
        #expect(bond.pasid == 1)
        #expect(m.svaPresent)
        try m.unbindSVA(bond)
        #expect(!m.svaPresent)
        #expect(m.audit().isEmpty)
    }
}

extension LayerTests {
    /// Fan-out at width: hundreds of attachments whose PASIDs spread over the
    /// 20-bit space, SVA bonds beside them, three IOMMUs, devices of several
    /// PASID widths. One kernel-range invalidation must reach every domain
    /// exactly once, and no other PASID.
    @Test func oneKernelInvalidationReachesEveryDomainOnce() throws {
        let seed = testSeed("oneKernelInvalidationReachesEveryDomainOnce")
        var rng = SplitMix64(seed: seed)
        let m = try Machine(MachineConfig(frames: gib, freeMode: .complete, workMode: .manual))
        let seen = TestMutex<[UInt64: Int]>([:])
        var expected = Set<UInt64>()
        for i in 0..<3 {
            let iommu = try m.addIOMMU()
            let id = UInt64(iommu.id.rawValue)
            iommu.setDriver(IOMMUDriver(invalidateRange: { pasid, _, _, _ in
                seen.withLock { $0[id << 32 | UInt64(pasid.rawValue), default: 0] += 1 }
            }))
            _ = i
        }
        // Devices of widths 20, 12 and 6 bits on each IOMMU.
        var devices: [(dev: DeviceID, iommu: UInt64, bits: Int)] = []
        for iommu in 0..<3 { for bits in [20, 12, 6] { devices.append((try m.addDevice(iommu: IOMMUID(UInt32(iommu)), pasidBits: bits), UInt64(iommu), bits)) } }
        // SVA bonds: PASIDs come from the machine-wide allocator.
        for _ in 0..<60 {
            let d = devices[Int(rng.next(below: devices.count))]
            let bond = try m.bindSVA(device: d.dev, mm: try m.createAddressSpace())
            expected.insert(d.iommu << 32 | UInt64(bond.pasid.rawValue))
        }
        // Explicit attachments at PASIDs spread over each device's width.
        var attached = 0
        while attached < 300 {
            let d = devices[Int(rng.next(below: devices.count))]
            let pasid = PASID(UInt32(1 + rng.next(below: (1 << d.bits) - 1)))
            do {
                try m.attachPASID(device: d.dev, pasid: pasid, mm: try m.createAddressSpace())
                expected.insert(d.iommu << 32 | UInt64(pasid.rawValue))
                attached += 1
            } catch SVAError.busy {
                continue
            }
        }
        #expect(m.invalidateKernelRange(m.layout.directMapBase, .max))
        let got = seen.withLock { $0 }
        #expect(Set(got.keys) == expected, "seed \(seed)")
        #expect(got.values.allSatisfy { $0 == 1 }, "each domain exactly once (seed \(seed))")
    }
}
