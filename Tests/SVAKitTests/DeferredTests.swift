// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
@testable import SVAKit
import SVAKitScenarios

func machine(mode: FreeMode, work: WorkMode = .manual, frames: Int = 4 * gib, maxPending: Int = 4096) throws -> Machine {
    try Machine(MachineConfig(frames: frames, eventLogCapacity: 1 << 15, freeMode: mode, workMode: work,
                              maxPending: maxPending))
}

@Suite struct DeferredTests {
    /// What each mode must report on each seed scenario, from the table the
    /// CLI prints (SVAKitScenarios): the unfixed kernel everywhere,
    /// linux-6.19 exactly its holes (tables x86 allocates without the
    /// PT_kernel mark: set_memory splits, boot-time direct map), complete
    /// nowhere.
    static let expectations: [(ScenarioName, FreeMode, Verdict)] = Scenario.all.flatMap { s in
        FreeMode.allCases.map { mode in (s.name, mode, s.expected[mode]!) }
    }

    @Test func theTableKeepsItsNegativeControls() {
        // The table cannot be weakened into agreeing with a broken engine:
        // the unfixed kernel must stay exploited and the complete fix safe.
        #expect(Scenario.all.map(\.name) == ScenarioName.allCases)
        for s in Scenario.all {
            #expect(s.expected.count == FreeMode.allCases.count)
            #expect(s.expected[.immediate] != .safe, "\(s.name)")
            #expect(s.expected[.complete] == .safe, "\(s.name)")
        }
        // Only the user request through a _KERNPG_TABLE entry (a split
        // table) stops short of the secret.
        #expect(Scenario.all.filter { $0.expected[.immediate] == .useAfterFree }.map(\.name) == [.setMemoryCollapse])
        #expect(Scenario.all.filter { $0.expected[.linux619] != .safe }.map(\.name)
                == [.setMemoryCollapse, .setMemoryCollapseSupervisor, .hotRemoveBoot])
    }

    @Test(arguments: expectations)
    func scenarioReportsExactlyWhatTheModeLeavesOpen(_ name: ScenarioName, _ mode: FreeMode, _ verdict: Verdict) throws {
        let m = try machine(mode: mode)
        let o = try Scenario.named(name).run(on: m)
        let reported = verdict != .safe, exploitable = verdict == .exploited
        #expect(o.verdict == verdict, "\(name) under \(mode): \(o.reports.first?.text ?? "no report")")
        #expect((o.reports.count > 0) == reported)
        #expect(o.secretLeaked == exploitable)
        #expect(o.escalations == (exploitable ? o.reports.count : 0))
        if mode == .complete { #expect(o.framesDeferred > 0) }
        if mode == .immediate { #expect(o.framesDeferred == 0) }
        #expect(m.audit() == [])
    }

    @Test func oneInvalidationPerBatchWhateverItsSize() throws {
        let m = try machine(mode: .complete)
        let s = try SVASetup(m)
        let region = m.layout.vmallocStart + (16 << 30)
        for i in 0..<100 { try m.map(region + UInt64(i) << 21, to: 0x1000) }
        try m.vunmap(region, size: 100 << 21)
        let before = s.iommu.counters.rangeInvalidations
        for i in 0..<100 { try m.vmapHuge(region + UInt64(i) << 21, phys: 0, size: .size2M) }
        #expect(m.deferredStats.pending == 100, "nothing freed before the work runs")
        m.runDeferredWork()
        let d = m.deferredStats
        #expect(d.pending == 0)
        #expect(d.batches == 1 && d.largestBatch == 100)
        #expect(s.iommu.counters.rangeInvalidations == before + 1, "one command for the whole batch")
        #expect(d.invalidations == 1)
    }

    @Test func invalidationComesAfterTheUnlinkAndBeforeEveryFree() throws {
        let m = try machine(mode: .complete)
        _ = try SVASetup(m)
        let base = m.layout.vmallocStart + (8 << 30)
        try m.map(base, to: 0x1000)
        let pte = try m.tableUnder(base, level: 2), pmd = try m.tableUnder(base, level: 3)
        try m.vunmap(base, size: 4096)
        try m.vmapHuge(base, phys: 0, size: .size1G)
        m.runDeferredWork()
        let ev = m.events()
        let inv = try #require(ev.firstIndex { $0.type == .kvaInvalidate })
        for t in [pte, pmd] {
            let unlink = try #require(ev.firstIndex { $0.type == .tableUnlink && $0.pfn == t.pfn })
            let queue = try #require(ev.firstIndex { $0.type == .deferQueue && $0.pfn == t.pfn })
            let free = try #require(ev.firstIndex { $0.type == .frameFree && $0.pfn == t.pfn })
            #expect(unlink < queue && queue < inv && inv < free)
            #expect(ev[queue].site == .pudFreePmdPage)
            #expect(ev[free].site == .pgtableWork)
        }
    }

    @Test func withNoSVABoundTheWorkFreesWithoutInvalidating() throws {
        let m = try machine(mode: .complete)
        let iommu = try m.addIOMMU()
        let va = try m.vmalloc(4096)
        try m.vfree(va)
        m.vmUnmapAliases()
        _ = try m.vmallocHuge(2 << 20)
        m.runDeferredWork()
        #expect(m.deferredStats.batches == 1)
        #expect(m.deferredStats.invalidations == 0)
        #expect(iommu.counters.invalidations == 0)
        #expect(!m.svaPresent, "no mm is bound, so the gate stayed shut")
    }

    @Test func theDeferredListUsesItsOwnLink() throws {
        let m = try machine(mode: .complete)
        let region = m.layout.vmallocStart + (16 << 30)
        for i in 0..<3 { try m.map(region + UInt64(i) << 21, to: 0x1000) }
        let tables = try (0..<3).map { try m.tableUnder(region + UInt64($0) << 21, level: 2) }
        try m.vunmap(region, size: 3 << 21)
        for i in 0..<3 { try m.vmapHuge(region + UInt64(i) << 21, phys: 0, size: .size2M) }
        // Linked newest first through pt_list_next; lru untouched.
        let d = try tables.map { try m.rawDescriptor($0.pfn) }
        #expect(d.allSatisfy { $0.ptFlags.contains(.deferred) && $0.lru_next == PFN.none.rawValue })
        #expect(d[2].pt_list_next == tables[1].pfn.rawValue && d[1].pt_list_next == tables[0].pfn.rawValue)
        #expect(d[0].pt_list_next == PFN.none.rawValue)
        #expect(m.audit() == [])
        m.runDeferredWork()
        #expect(try tables.allSatisfy { try m.descriptor($0.pfn).kind == .free })
    }

    @Test func pastTheBoundTheFreeingCallerRunsTheWork() throws {
        let m = try machine(mode: .complete, maxPending: 4)
        let region = m.layout.vmallocStart + (16 << 30)
        for i in 0..<10 { try m.map(region + UInt64(i) << 21, to: 0x1000) }
        try m.vunmap(region, size: 10 << 21)
        for i in 0..<10 { try m.vmapHuge(region + UInt64(i) << 21, phys: 0, size: .size2M) }
        let d = m.deferredStats
        #expect(d.pending <= 4)
        #expect(d.batches >= 1, "manual mode, yet the overflow ran the work")
        #expect(d.peakPending == 5)
    }

    @Test func theWorkerThreadFreesAndFlushWaits() throws {
        let m = try machine(mode: .complete, work: .thread)
        _ = try SVASetup(m)
        let region = m.layout.vmallocStart + (16 << 30)
        for round in 0..<50 {
            let va = region + UInt64(round % 8) << 21
            try m.map(va, to: 0x1000)
            try m.vunmap(va, size: 2 << 20)
            try m.vmapHuge(va, phys: 0, size: .size2M)
            try m.vunmap(va, size: 2 << 20)
        }
        m.flushDeferredWork()
        let d = m.deferredStats
        #expect(d.pending == 0)
        #expect(d.framesDeferred == 50)
        #expect(d.batches >= 1 && d.batches <= 50)
        #expect(m.audit() == [])
    }

    @Test(arguments: [WorkMode.manual, .thread])
    func shutdownDrainsTheQueue(work: WorkMode) throws {
        let freed = TestMutex<[(PFN, Site)]>([])
        var m: Machine? = try machine(mode: .complete, work: work, maxPending: 1 << 20)
        m!.setTableFreeHook { pfn, _, site in freed.withLock { $0.append((pfn, site)) } }
        let va = try m!.vmalloc(4096)
        let t = try m!.tableUnder(va, level: 2)
        try m!.vfree(va)
        m!.vmUnmapAliases()
        _ = try m!.vmallocHuge(2 << 20)
        if work == .manual { #expect(m!.deferredStats.pending == 1) }
        m = nil  // deinit stops the worker and runs what is left
        #expect(freed.withLock { $0.contains { $0.0 == t.pfn && $0.1 == .pgtableWork } })
    }

    @Test func theV6BugIsRefusedByThePrimitives() throws {
        // Freeing the table that holds the entry (pmd_ptdesc(pmd)) instead of
        // the one it points to: the holder is still linked.
        let m = try machine(mode: .complete)
        let va = try m.vmalloc(4096)
        try m.vfree(va)
        let pmd = try m.tableUnder(va, level: 3)
        expectRefused(m, .busy) { try m.pagetableFree(pmd.pfn) }
        let slot = try #require(try m.entrySlot(va, level: 2))
        let pte = try m.unlinkTable(parent: slot.holder.pfn, index: UInt32(slot.index))
        try m.pagetableFree(pte.pfn)
        #expect(m.deferredStats.pending == 1)
        expectRefused(m, .doubleFree) { try m.pagetableFree(pte.pfn) }
        m.runDeferredWork()
        #expect(m.audit() == [])
    }
}

extension FreeMode: CustomTestStringConvertible {
    public var testDescription: String { description }
}
