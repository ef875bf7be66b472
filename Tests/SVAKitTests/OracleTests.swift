// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// The walk oracle must have no false positives: a machine that invalidates
/// IOMMUs before freeing tables reports nothing, whatever it is put through.
@Suite struct OracleTests {
    /// Random kernel-table churn, DMA and binds; returns the report count.
    /// Kernel mappings come and go in 16 slots of 2 MiB (and the 1 GiB that
    /// holds them), so tables are created, emptied and freed by huge vmaps
    /// again and again while devices touch the slots.
    func randomRun(seed: UInt64, kva: KVAInvalidation, steps: Int) throws -> UInt64 {
        var rng = SplitMix64(seed: seed)
        let m = try Machine(MachineConfig(frames: 2 * gib, eventLogCapacity: 1 << 12, kvaInvalidation: kva))
        let iommus = try (0..<2).map { _ in try m.addIOMMU(IOMMUConfig(pscSets: 2, pscWays: 2)) }
        let devices = try (0..<4).map { try m.addDevice(iommu: iommus[$0 % 2].id) }
        let mms = try (0..<3).map { _ in try m.createAddressSpace() }
        let region = m.layout.vmallocStart + (16 << 30)
        func slot(_ k: Int) -> UInt64 { region + UInt64(k) << 21 }
        var bonds: [SVABond] = []
        for _ in 0..<steps {
            let k = rng.next(below: 16)
            switch rng.next(below: 10) {
            case 0: bonds.append(try m.bindSVA(device: devices[rng.next(below: 4)], mm: mms[rng.next(below: 3)]))
            case 1 where bonds.count > 2: try m.unbindSVA(bonds.remove(at: rng.next(below: bonds.count)))
            case 2: try? m.map(slot(k) + UInt64(rng.next(below: 512)) << 12, to: 0x1000)
            case 3: try? m.vunmap(slot(k), size: 2 << 20)
            case 4: try? m.vmapHuge(slot(k), phys: 0, size: .size2M)
            case 5 where rng.next(below: 8) == 0:
                try? m.vunmap(region, size: 1 << 30)
                try? m.vmapHuge(region, phys: 0, size: .size1G)
                try? m.vunmap(region, size: 1 << 30)
            case 6:
                let va = try m.directMapAddress(UInt64(rng.next(below: 64)) << 21)
                try m.setMemory(va, pages: 1, clear: PageTableEntry.writable)
                try m.setMemory(va, pages: 1, set: PageTableEntry.writable)
                try m.collapseLargePages(va)
            case 7:
                // An attacker grabs whatever was freed last.
                _ = try plantLeaf(m, va: slot(k), level: 1, target: PFN(0))
            default:
                guard !bonds.isEmpty else { continue }
                let b = bonds[rng.next(below: bonds.count)]
                guard let dev = m.device(of: b) else { continue }
                _ = try m.dmaRead(device: dev, pasid: b.pasid, va: slot(k) + UInt64(rng.next(below: 512)) << 12, count: 8)
            }
        }
        #expect(m.audit() == [])
        return m.reportCount
    }

    @Test func randomChurnWithInvalidationReportsNothing() throws {
        let seed = testSeed("randomChurnWithInvalidationReportsNothing")
        #expect(try randomRun(seed: seed, kva: .onFlush, steps: 3000) == 0)
    }

    @Test func theSameChurnWithoutInvalidationIsCaught() throws {
        // The negative control: the same kind of run on the unfixed kernel
        // reaches freed tables, and the oracle says so.
        let seed = testSeed("theSameChurnWithoutInvalidationIsCaught")
        var total: UInt64 = 0
        var s = seed
        for _ in 0..<4 where total == 0 {
            total += try randomRun(seed: s, kva: .none, steps: 3000)
            s &+= 1
        }
        #expect(total > 0)
    }

    @Test func concurrentBindUnbindInvalidateAndDMA() async throws {
        let seed = testSeed("concurrentBindUnbindInvalidateAndDMA")
        let reports = try await concurrentRun(seed: seed, kva: .onFlush)
        #expect(reports == 0)
    }

    /// Threads churning kernel tables through the free paths, binding and
    /// unbinding, and devices touching kernel addresses, all at once.
    func concurrentRun(seed: UInt64, kva: KVAInvalidation) async throws -> UInt64 {
        let m = try Machine(MachineConfig(frames: 2 * gib, eventLogCapacity: 1 << 12, kvaInvalidation: kva))
        let iommus = try (0..<3).map { _ in try m.addIOMMU(IOMMUConfig()) }
        let devices = try (0..<6).map { try m.addDevice(iommu: iommus[$0 % 3].id) }
        let mms = try (0..<4).map { _ in try m.createAddressSpace() }
        let region = m.layout.vmallocStart + (16 << 30)
        func slot(_ k: Int) -> UInt64 { region + UInt64(k) << 21 }
        let shared = Shared()

        try await withThrowingTaskGroup(of: Void.self) { g in
            for t in 0..<2 {  // churn kernel tables; thread t owns slots t, t+2, t+4, ...
                g.addTask {
                    var rng = SplitMix64(seed: seed &+ UInt64(t))
                    // Every owned slot holds a PTE table most of the time.
                    for k in 0..<4 { try m.map(slot(t + 2 * k), to: 0x1000) }
                    for i in 0..<1500 {
                        let va = slot(t + 2 * rng.next(below: 4))
                        try m.vunmap(va, size: 2 << 20)
                        try m.vmapHuge(va, phys: 0, size: .size2M)   // pmd_free_pte_page
                        try m.vunmap(va, size: 2 << 20)
                        _ = try? plantLeaf(m, va: va, level: 1, target: PFN(0))
                        try m.map(va + UInt64(rng.next(below: 512)) << 12, to: 0x1000)
                        if i % 16 == 0 {
                            let d = try m.directMapAddress(UInt64(t * 128 + rng.next(below: 128)) << 21)
                            try m.setMemory(d, pages: 1, set: PageTableEntry.global)
                            try m.collapseLargePages(d)
                        }
                    }
                }
            }
            g.addTask {  // bind and unbind
                var rng = SplitMix64(seed: seed &+ 7)
                for _ in 0..<600 {
                    let d = devices[rng.next(below: devices.count)], mm = mms[rng.next(below: mms.count)]
                    let b = try m.bindSVA(device: d, mm: mm)
                    shared.bound.locked { $0[b] = d }
                    if !m.svaPresent { shared.keyOffWhileBound.add(1, ordering: .relaxed) }
                    if rng.next(below: 2) == 0, let (victim, _) = shared.bound.locked({ $0.randomElement(using: &rng) }) {
                        try m.unbindSVA(victim)
                        if m.device(of: victim) == nil { shared.bound.locked { $0[victim] = nil } }
                    }
                }
            }
            for t in 0..<2 {  // devices touching kernel addresses, and the gate
                g.addTask {
                    var rng = SplitMix64(seed: seed &+ 100 &+ UInt64(t))
                    for _ in 0..<3000 {
                        let snapshot = shared.bound.locked { Array($0) }
                        if let (b, d) = snapshot.randomElement(using: &rng) {
                            let va = slot(rng.next(below: 8)) + UInt64(rng.next(below: 512)) << 12
                            _ = try? m.dmaRead(device: d, pasid: b.pasid, va: va, count: 8)
                        }
                        if rng.next(below: 8) == 0 { m.invalidateKernelRange(m.layout.vmallocStart, .max) }
                    }
                }
            }
            try await g.waitForAll()
        }
        #expect(shared.keyOffWhileBound.load(ordering: .relaxed) == 0, "the key was off while a bond existed")
        #expect(m.audit() == [])
        if kva != .none, let r = m.reports.first { print(r.text) }
        return m.reportCount
    }
}

/// State the concurrent tasks share.
final class Shared: Sendable {
    // A RankedMutex (a pthread mutex too under -DSVAKIT_TSAN), held only
    // for the dictionary, never across a machine call.
    let bound = RankedMutex<[SVABond: DeviceID]>(.hook, [:])
    let keyOffWhileBound = Atomic<Int>(0)
}

extension SplitMix64: RandomNumberGenerator {}

extension OracleTests {
    @Test func concurrentRunWithoutInvalidationIsCaught() throws {
        // The negative control of the test above, made deterministic: the
        // interleaving the concurrent run can only hit by chance, driven step
        // by step. Each round the device caches the PDE over a vmalloc PTE
        // table, the kernel frees that table without an IOMMU invalidation
        // (huge vmap over it in the unfixed kernel), the frame comes back as
        // data, and the device's next walk resumes from the stale PDE. Every
        // round must be caught, whatever the seed.
        let seed = testSeed("concurrentRunWithoutInvalidationIsCaught")
        var rng = SplitMix64(seed: seed)
        let m = try Machine(MachineConfig(frames: gib, freeMode: .immediate, workMode: .manual))
        try m.addIOMMU()
        let dev = try m.addDevice(iommu: 0)
        let bond = try m.bindSVA(device: dev, mm: try m.createAddressSpace())
        let rounds = 8
        for _ in 0..<rounds {
            let va = try m.vmalloc(4096 * UInt64(1 + rng.next(below: 4)))
            let pte = try m.tableUnder(va, level: 2)
            _ = try m.dmaRead(device: dev, pasid: bond.pasid, va: va, count: 8)
            try m.vfree(va)
            let huge = va & ~0x1f_ffff
            try m.vmapHuge(huge, phys: UInt64(1 + rng.next(below: 64)) << 21, size: .size2M)
            #expect(try m.allocFrames(owner: 0xbad) == pte.pfn, "LIFO hands the freed table out again")
            let before = m.reportCount
            _ = try m.dmaRead(device: dev, pasid: bond.pasid, va: va, count: 8)
            #expect(m.reportCount == before + 1, "the walk through the freed table is caught (seed \(seed))")
            try m.vunmap(huge, size: 2 << 20)
        }
        // Rounds after the first also catch the stale PDE of the round
        // before (nothing ever invalidates it): 2 * rounds - 1 in all.
        #expect(m.reportCount == UInt64(2 * rounds - 1), "seed \(seed)")
        #expect(m.audit().isEmpty)
    }
}

/// The oracle where it is hardest: a freed table that comes back as a table
/// of the same kind and level looks right to a walker; only its generation
/// says it is another table.
@Suite struct OracleReuseTests {
    enum Reuse: CaseIterable { case samePTE, pmdLevel, data, severalTimes }

    @Test(arguments: Reuse.allCases)
    func aFreedPTETableReusedIsReported(_ reuse: Reuse) throws {
        let m = try Machine(MachineConfig(frames: gib, freeMode: .immediate, workMode: .manual))
        let s = try SVASetup(m)
        let va = try m.vmalloc(4096)
        let pte = try m.tableUnder(va, level: 2)
        let gen = try m.descriptor(pte.pfn).generation
        _ = try s.touch(m, va)  // the PDE cache now points at the PTE table
        try m.vfree(va)
        try m.vmapHuge(va & ~0x1f_ffff, phys: 0x20_0000, size: .size2M)  // pmd_free_pte_page, no invalidation
        switch reuse {
        case .samePTE: #expect(try m.allocKernelTable(level: 1).pfn == pte.pfn)
        case .pmdLevel: #expect(try m.allocKernelTable(level: 2).pfn == pte.pfn)
        case .data: #expect(try m.allocFrames(owner: 0xbad) == pte.pfn)
        case .severalTimes:
            for _ in 0..<3 {
                let f = try m.allocFrames()
                #expect(f == pte.pfn)
                try m.freeFrames(f)
            }
            #expect(try m.allocKernelTable(level: 1).pfn == pte.pfn)
        }
        let d = try m.descriptor(pte.pfn)
        #expect(d.generation != gen)
        _ = try s.touch(m, va)
        #expect(m.reportCount == 1, "\(reuse)")
        let r = try #require(m.reports.first)
        #expect(r.frame == pte.pfn)
        #expect(r.staleLevel == 2, "the PDE cache led there")
        #expect(r.expectedGeneration == gen)
        #expect(r.foundGeneration == d.generation)
        #expect(m.audit().isEmpty)
    }
}
