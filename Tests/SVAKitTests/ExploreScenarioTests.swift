// SPDX-License-Identifier: Apache-2.0
import Testing
import SVAKit
@_spi(Engine) import SVAKitExplorer
import SVAKitScenarios
@_spi(Engine) import SVAKitBase

/// Explores `p` up to `cap` schedules.
private func explore(_ p: ExploreProgram, cap: Int = 200_000) throws -> ExploreResult {
    try Explorer(limits: ExploreLimits(maxExecutions: cap)).explore { () throws(SVAError) in try p.instance() }
}

/// The witness: the shortest bad schedule, replayed from its id, ends bad
/// again with the same steps.
private func expectWitness(_ p: ExploreProgram, _ r: ExploreResult) throws {
    let bad = try #require(r.shortestBad, "\(p.name): no bad schedule among \(r.executions)")
    let again = try Explorer().replay(Schedule(id: bad.schedule.id)!) { () throws(SVAError) in try p.instance() }
    #expect(again.outcome == bad.outcome)
    #expect(again.steps == bad.steps)
}

/// The counts a search must give, pinned: schedules judged (redundant runs
/// apart), bad ones, and of those escalations and corruptions.
struct Pinned: Sendable, CustomTestStringConvertible {
    var program: ExploreProgram
    var schedules: Int, bad: Int, escalations: Int, corruptions: Int
    var testDescription: String {
        "\(program.name) \(program.race == .dmaWindow ? program.dmaMode.rawValue : program.freeMode.description)"
            + (program.brokenFix.map { " broken: \($0)" } ?? "")
    }
}

private func sva(_ n: ScenarioName, _ m: FreeMode, _ s: Int, _ b: Int, _ e: Int, _ c: Int) -> Pinned {
    Pinned(program: ExploreProgram(.scenario(n), freeMode: m), schedules: s, bad: b, escalations: e, corruptions: c)
}

private func dma(_ m: DMAMode, _ s: Int, _ b: Int, _ e: Int, _ c: Int) -> Pinned {
    Pinned(program: ExploreProgram(.dmaWindow, dmaMode: m), schedules: s, bad: b, escalations: e, corruptions: c)
}

@Suite("Every interleaving of the seed races (docs/TESTING.md)", .enabled(if: SchedulePoints.compiledIn))
struct ExploreScenarioTests {
    /// Complete searches small enough for every test run.
    static let pinned: [Pinned] = [
        sva(.hugeVmap, .immediate, 29, 29, 8, 8),
        sva(.hugeVmap, .linux619, 172, 0, 0, 0),
        sva(.hugeVmap, .complete, 172, 0, 0, 0),
        dma(.strict, 80, 0, 0, 0),
        dma(.lazyQuarantine, 1971, 0, 0, 0),
        Pinned(program: ExploreProgram(.scenario(.hugeVmap), freeMode: .linux619, brokenFix: .workWithoutFence),
               schedules: 33, bad: 7, escalations: 1, corruptions: 1),
    ]

    @Test("complete searches give their pinned counts", arguments: pinned)
    func counts(_ p: Pinned) throws {
        let r = try explore(p.program)
        #expect(r.complete)
        #expect(r.stuck == 0)
        #expect(r.executions - r.redundant == p.schedules)
        #expect(r.bad == p.bad)
        #expect(r.escalations == p.escalations)
        #expect(r.corruptions == p.corruptions)
        if p.bad > 0 { try expectWitness(p.program, r) }
    }

    @Test("the unfixed kernel: a bad schedule in every race, with a witness", arguments: ScenarioName.allCases)
    func unfixed(_ name: ScenarioName) throws {
        let p = ExploreProgram(.scenario(name), freeMode: .immediate)
        let r = try explore(p, cap: 40)
        #expect(r.bad > 0)
        try expectWitness(p, r)
    }

    @Test("linux-6.19's holes: a bad schedule, with a witness",
          arguments: [ExploreProgram.Race.scenario(.setMemoryCollapse), .scenario(.setMemoryCollapseSupervisor),
                      .scenario(.hotRemoveBoot), .hotRemoveHotAdded])
    func holes(_ race: ExploreProgram.Race) throws {
        let p = ExploreProgram(race, freeMode: .linux619)
        let r = try explore(p, cap: 60)
        #expect(r.bad > 0)
        try expectWitness(p, r)
    }

    @Test("each broken fix is found, with a witness", arguments: BrokenFix.allCases)
    func broken(_ fix: BrokenFix) throws {
        let p = ExploreProgram(.scenario(.hugeVmap), freeMode: .linux619, brokenFix: fix)
        let r = try explore(p, cap: 400)
        #expect(r.bad > 0)
        try expectWitness(p, r)
    }

    @Test("the lazy window: the device reaches the reallocated page in some schedules (a witness)")
    func lazyWindow() throws {
        let p = ExploreProgram(.dmaWindow, dmaMode: .lazy)
        let r = try explore(p, cap: 400)
        #expect(r.bad > 0)
        try expectWitness(p, r)
    }

    @Test("Linux's hot-remove order with the frees deferred: the work can run before the clear (a witness)")
    func linuxOrderDeferred() throws {
        var p = ExploreProgram(.hotRemoveHotAdded, freeMode: .complete)
        p.linuxHotRemoveOrder = true
        // The shortest bad schedule `svakit explore hot-remove-hot-added
        // --mode complete --linux-hot-remove-order --max-executions 300`
        // finds (docs/TESTING.md; the search itself is too long for a debug
        // build): the kworker frees the still-linked table before the
        // kernel's clear of the entry that points at it.
        let e = try Explorer().replay(Schedule(id: "a2589cd14b4c10a2")!) { () throws(SVAError) in try p.instance() }
        #expect(e.outcome.escalations > 0 && e.outcome.leaked)
        let steps = e.steps
        let lastClear = try #require(steps.lastIndex { $0.name == "kernel" && $0.point.op == .write })
        #expect(steps[..<lastClear].contains { $0.name == "kworker" })
    }

    @Test("v1's flush-on-kernel-tlb-flush under Linux's hot-remove order: a bad schedule (a witness)")
    func v1HotRemove() throws {
        var p = ExploreProgram(.scenario(.hotRemoveBoot), freeMode: .immediate)
        p.kvaInvalidation = .onFlush
        let r = try explore(p, cap: 60)
        #expect(r.bad > 0)
        try expectWitness(p, r)
    }

    @Test("a schedule id that names an actor the race does not have is refused")
    func badReplay() throws {
        let p = ExploreProgram(.dmaWindow, dmaMode: .strict)
        #expect(throws: ExploreError.self) {
            _ = try Explorer().replay(Schedule(id: "z")!) { () throws(SVAError) in try p.instance() }
        }
    }
}
