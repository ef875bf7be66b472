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

@Suite struct ScenarioTests {
    @Test func seed000UnfixedKernelIsExploitable() throws {
        let m = try machine()
        let seen = TestMutex<[UAFReport]>([])
        m.setReportHandler { r in seen.withLock { $0.append(r) } }
        let o = try runHugeVmapScenario(m)
        #expect(o.secretLeaked, "the device read the secret through the stale PDE")
        #expect(o.invalidations == 0)
        let r = try #require(o.reports.first)
        #expect(o.reports.count == 1)
        #expect(r.staleLevel == 2, "the PDE cache entry led there")
        #expect(r.freedBy == .pmdFreePtePage)
        #expect(r.escalation && r.corruption)
        #expect(r.expectedLevel == 1)
        #expect(r.foundKind == .data)
        #expect(r.foundGeneration == (r.expectedGeneration ?? .max) &+ 1)
        #expect(r.reallocOwner == 0xbad)
        let freed = try #require(r.freedStep), realloc = try #require(r.reallocStep)
        #expect(freed < realloc && realloc < r.step)
        #expect(r.text.hasPrefix("BUG: SVAKit: DMA use-after-free in IOMMU page walk"))
        #expect(r.text.contains("PDE cache led to pfn"))
        #expect(r.text.contains("freed by pmd_free_pte_page"))
        #expect(seen.withLock { $0.count } == 1, "the handler heard it")
        #expect(m.reportCount == 1)
    }

    @Test func seed000InvalidationOnTheFlushHookFaultsCleanly() throws {
        let m = try Machine(MachineConfig(frames: gib, kvaInvalidation: .onFlush))
        let o = try runHugeVmapScenario(m)
        #expect(!o.secretLeaked)
        #expect(o.reports.isEmpty)
        #expect(o.finalFault?.reason == .privilege, "the walk starts over and meets the kernel's huge leaf")
        #expect(o.finalFault?.level == 2)
        #expect(o.invalidations >= 1)
    }

    @Test func withoutPagingStructureCachesThereIsNothingStale() throws {
        // QEMU-like hardware: the attack needs the cached PDE.
        let m = try machine()
        let o = try runHugeVmapScenario(m, iommu: IOMMUConfig(caching: .leafOnly))
        #expect(!o.secretLeaked)
        #expect(o.reports.isEmpty)
    }

    @Test func fifoReuseDefusesThisAttackButNotTheBug() throws {
        // With FIFO the attacker does not get the freed table back; the stale
        // PDE still points at a free frame, and the oracle still sees it.
        let m = try machine(reuse: .fifo)
        let o = try runHugeVmapScenario(m)
        #expect(!o.secretLeaked)
        #expect(o.reports.count == 1)
        #expect(o.reports.first?.foundKind == .free)
        #expect(o.reports.first?.escalation == false)
    }

    @Test func reportLogIsBounded() throws {
        let m = try Machine(MachineConfig(frames: gib, reportLogCapacity: 2))
        let s = try SVASetup(m)
        let secret = try makeSecret(m)
        let va = try m.vmalloc(4096)
        _ = try s.touch(m, va)
        try m.vfree(va)
        m.vmUnmapAliases()   // the lazily freed range returns to the allocator
        _ = try m.vmallocHuge(2 << 20)
        _ = try plantLeaf(m, va: va, level: 1, target: secret)
        for _ in 0..<3 {
            // Each touch walks from the stale PDE again (IOTLB dropped in between).
            s.iommu.invalidateRange(pasid: s.bond.pasid, start: va, end: va, leafOnly: true)
            _ = try s.touch(m, va)
        }
        #expect(m.reportCount == 3)
        #expect(m.reports.count == 2)
        #expect(m.report(0) == nil)
        #expect(m.report(2) != nil)
    }
}

extension UAFReport: Equatable {
    public static func == (a: UAFReport, b: UAFReport) -> Bool { a.text == b.text }
}
