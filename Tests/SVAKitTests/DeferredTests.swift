// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

func machine(mode: FreeMode, work: WorkMode = .manual, frames: Int = 4 * gib, maxPending: Int = 4096,
             schedule: DeferralSchedule = .linux) throws -> Machine {
    var config = MachineConfig(frames: frames, eventLogCapacity: 1 << 15, freeMode: mode, workMode: work,
                               maxPending: maxPending)
    config.deferralSchedule = schedule
    return try Machine(config)
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

    @Test("batched (beyond Linux): past max_pending the freeing caller runs the work")
    func pastTheBoundTheFreeingCallerRunsTheWork() throws {
        let m = try machine(mode: .complete, maxPending: 4, schedule: .batched)
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

/// When the deferred-free work runs: Linux 6.19's schedule (the default)
/// against the batched one (beyond Linux). Interleavings with the worker
/// thread are driven through the free hook, which holds the worker inside
/// a run; nothing here waits on time.
@Suite struct DeferralScheduleTests {
    /// `n` PTE tables, allocated and unlinked, for `pagetableFree`.
    static func tables(_ m: Machine, _ n: Int) throws -> [PFN] {
        try (0..<n).map { _ in try m.allocKernelTable(level: 1).pfn }
    }

    @Test("linux-6.19: pagetable_free_kernel schedules the work with no delay and no bound (mm/pgtable-generic.c, 5ba2f0a15564)",
          arguments: [FreeMode.linux619, .complete])
    func theFreeingCallerNeverRunsTheWork(mode: FreeMode) throws {
        // max_pending 4, 1,000 frees: the Linux schedule ignores the bound.
        let m = try machine(mode: mode, maxPending: 4)
        let s = try SVASetup(m)
        let before = s.iommu.counters
        for p in try Self.tables(m, 1000) { try m.pagetableFree(p) }
        var d = m.deferredStats
        #expect(d.pending == 1000 && d.peakPending == 1000, "nothing ran the work: the caller only queued")
        #expect(d.batches == 0 && d.invalidations == 0)
        #expect(s.iommu.counters == before, "the freeing caller sent the IOMMU nothing")
        m.runDeferredWork()  // the kworker, here
        d = m.deferredStats
        #expect(d.pending == 0 && d.batches == 1 && d.largestBatch == 1000 && d.invalidations == 1)
        #expect(m.audit() == [])
    }

    @Test("negative control: batched (beyond Linux) bounds the list, the freeing caller invalidates")
    func theBatchedScheduleBoundsTheList() throws {
        let m = try machine(mode: .complete, maxPending: 4, schedule: .batched)
        let s = try SVASetup(m)
        let before = s.iommu.counters.rangeInvalidations
        for p in try Self.tables(m, 1000) {
            try m.pagetableFree(p)
            #expect(m.deferredStats.pending <= 4)
        }
        let d = m.deferredStats
        #expect(d.peakPending == 5 && d.batches == 200 && d.invalidations == 200)
        #expect(s.iommu.counters.rangeInvalidations == before + 200, "the caller ran the work 200 times")
        #expect(m.audit() == [])
    }

    @Test("linux-6.19: a run takes only what was queued while the work was pending (kernel_pgtable_work_func; workqueue.c process_one_work clears PENDING before the call)")
    func aRunCoalescesOnlyWhatWasQueuedWhilePending() throws {
        let m = try machine(mode: .complete, work: .thread, maxPending: 4)
        let s = try SVASetup(m)
        let worker = try #require(m.deferred.worker)
        let inRun = Latch(), release = Latch()
        m.setTableFreeHook { _, _, site in
            guard site == .pgtableWork, !inRun.isOpen else { return }
            inRun.open()   // the first run is past its splice and its invalidation
            release.wait()
        }
        let before = s.iommu.counters.rangeInvalidations
        let all = try Self.tables(m, 41)
        try m.pagetableFree(all[0])
        try #require(inRun.wait(), "the worker never ran")
        // The work is running with PENDING clear: the next free's
        // schedule_work queues a second run; the rest find it pending.
        for p in all.dropFirst() { try m.pagetableFree(p) }
        var d = m.deferredStats
        #expect(d.pending == 40, "the caller neither ran the work nor took the list, past max_pending")
        #expect(d.batches == 1 && d.largestBatch == 1)
        #expect(s.iommu.counters.rangeInvalidations == before + 1)
        release.open()
        worker.flush()   // flush_work: waits for the runs requested, runs nothing itself
        m.setTableFreeHook(nil)
        d = m.deferredStats
        #expect(d.pending == 0, "a schedule_work during the run queued a second run")
        #expect(d.batches == 2 && d.largestBatch == 40, "the second run took all 40 at once")
        #expect(d.invalidations == 2 && s.iommu.counters.rangeInvalidations == before + 2)
        #expect(m.audit() == [])
    }

    @Test("linux-6.19: schedule_work on a pending work returns false and adds no run (kernel/workqueue.c queue_work_on, WORK_STRUCT_PENDING_BIT)")
    func scheduleWorkOnAPendingWorkIsANoOp() {
        let runs = TestMutex(0)
        // A kworker that takes an hour to be scheduled: it is still pending
        // for the whole test, whatever the machine's speed.
        let w = DeferredWorker(latencyMicros: 3_600_000_000, gather: nil, pending: { 0 },
                               work: { runs.withLock { $0 += 1 } })
        w.start()
        #expect(w.schedule())
        for _ in 0..<5 { #expect(!w.schedule()) }
        w.stop()   // teardown runs the pending run without the latency
        #expect(runs.withLock { $0 } == 1)
    }

    @Test("linux-6.19: a schedule_work during a run queues exactly one more run (process_one_work: set_work_pool_and_clear_pending before the function)")
    func aScheduleDuringARunQueuesOneMore() throws {
        let runs = TestMutex(0)
        let inRun = Latch(), release = Latch()
        let w = DeferredWorker(latencyMicros: 0, gather: nil, pending: { 0 }, work: {
            let n = runs.withLock { $0 += 1; return $0 }
            if n == 1 { inRun.open(); release.wait() }
        })
        w.start()
        defer { w.stop() }
        #expect(w.schedule())
        try #require(inRun.wait())
        #expect(w.schedule(), "PENDING was cleared when the run began")
        #expect(!w.schedule() && !w.schedule())
        release.open()
        w.flush()
        #expect(runs.withLock { $0 } == 2)
    }

    @Test("the kworker latency reaches the worker; Linux's schedule does not gather")
    func theConfigurationReachesTheWorker() throws {
        var c = MachineConfig(frames: gib, freeMode: .complete, workMode: .thread)
        c.kworkerLatencyMicros = 250
        let m = try Machine(c)
        let w = try #require(m.deferred.worker)
        #expect(w.latencyNs == 250_000 && w.gather == nil)
        c.deferralSchedule = .batched
        let b = try #require(try Machine(c).deferred.worker)
        #expect(b.gather?.target == 256 && b.gather?.maxDelayNs == 1_000_000)
        c.kworkerLatencyMicros = 1_000_001
        #expect(throws: SVAError.invalidArgument) { try Machine(c) }
        c.kworkerLatencyMicros = -1
        #expect(throws: SVAError.invalidArgument) { try Machine(c) }
    }

    @Test("linux-6.19 against batched: random frees and kworker runs, each figure against a reference")
    func randomFreesAndRunsMatchAReference() throws {
        let seed = testSeed("randomFreesAndRunsMatchAReference")
        var rng = SplitMix64(seed: seed)
        for schedule in DeferralSchedule.allCases {
            let bound = 1 + rng.next(below: 64)
            let m = try machine(mode: .complete, maxPending: bound, schedule: schedule)
            let s = try SVASetup(m)
            let inv0 = s.iommu.counters.rangeInvalidations
            var pending = 0, batches = 0
            for _ in 0..<400 {
                if rng.next(below: 4) == 0 {
                    m.runDeferredWork()
                    if pending > 0 { batches += 1 }
                    pending = 0
                } else {
                    for p in try Self.tables(m, 1 + rng.next(below: 8)) {
                        try m.pagetableFree(p)
                        pending += 1
                        // Beyond Linux only: past the bound the caller runs the work.
                        if schedule == .batched && pending > bound { batches += 1; pending = 0 }
                    }
                }
                let d = m.deferredStats
                #expect(d.pending == pending, "seed \(seed)")
                #expect(d.batches == batches && d.invalidations == batches, "seed \(seed), \(schedule)")
                if schedule == .batched { #expect(d.pending <= bound, "seed \(seed)") }
            }
            #expect(s.iommu.counters.rangeInvalidations == inv0 + batches, "seed \(seed), \(schedule)")
            #expect(m.audit() == [], "seed \(seed)")
        }
    }
}

/// A one-shot gate between the test and the worker thread.
final class Latch: Sendable {
    private let flag = Atomic<Bool>(false)

    var isOpen: Bool { flag.load(ordering: .acquiring) }

    func open() { flag.store(true, ordering: .releasing) }

    /// Waits until open; false (a failed test, not a hang) after a minute.
    @discardableResult
    func wait() -> Bool {
        for _ in 0..<600_000 {
            if isOpen { return true }
            usleep(100)
        }
        Issue.record("the latch never opened")
        return false
    }
}
