// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// One execution's program: the actors it starts with, and how to judge
/// the state they leave. Built fresh for every execution (a new machine, set
/// up to the point where the race begins), so every run starts equal.
public struct ExploreInstance {
    /// The actors, by name, with their bodies. At most 26 with the ones
    /// spawned later.
    public var actors: [(name: String, body: () -> Void)]
    /// Called on the explorer's thread after every actor has finished.
    public var finish: () -> ExploreOutcome

    /// An instance of `actors`, judged by `finish`.
    public init(actors: [(name: String, body: () -> Void)], finish: @escaping () -> ExploreOutcome) {
        self.actors = actors
        self.finish = finish
    }
}

/// What one execution ended with.
public struct ExploreOutcome: Sendable, Equatable {
    /// The oracle's use-after-free reports.
    public var reports = 0
    /// Reports whose walk translated through the stale frame.
    public var escalations = 0
    /// Reports whose walk wrote A/D bits into the stale frame.
    public var corruptions = 0
    /// The device read the attacker's secret.
    public var leaked = false
    /// A program's own judgement beyond the oracle's (the DMA window: the
    /// device reached a page handed out again), counted as bad.
    public var reachedReallocated = false
    /// The actors could not all finish (a deadlock, or a wait nothing ends).
    public var stuck = false

    /// An outcome.
    public init(reports: Int = 0, escalations: Int = 0, corruptions: Int = 0, leaked: Bool = false,
                reachedReallocated: Bool = false, stuck: Bool = false) {
        self.reports = reports
        self.escalations = escalations
        self.corruptions = corruptions
        self.leaked = leaked
        self.reachedReallocated = reachedReallocated
        self.stuck = stuck
    }

    /// A use-after-free, an escalation, a corruption, a leak, a reallocated
    /// page reached, or a stuck run.
    public var isBad: Bool { reports > 0 || leaked || reachedReallocated || stuck }

    /// "use-after-free (escalation, corruption)", "safe", ...
    public var summary: String {
        guard isBad else { return "safe" }
        var what: [String] = []
        if reports > 0 { what.append("use-after-free") }
        if escalations > 0 { what.append("escalation") }
        if corruptions > 0 { what.append("corruption") }
        if leaked { what.append("secret leaked") }
        if reachedReallocated { what.append("reallocated page reached") }
        if stuck { what.append("stuck") }
        return what.joined(separator: ", ")
    }
}

/// One step of an execution: who executed which point.
public struct ExploreStep: Sendable, Equatable {
    /// The actor's index (its letter in the schedule id).
    public var actor: Int
    /// The actor's name.
    public var name: String
    /// What it did.
    @_spi(Engine) public var point: SchedulePoint
}

/// One execution: its schedule, its steps, its outcome.
public struct ExploreExecution: Sendable {
    /// The schedule (`Schedule.id` replays it).
    public var schedule: Schedule
    /// Every step.
    public var steps: [ExploreStep]
    /// The actors' names, by index.
    public var actors: [String]
    /// How it ended.
    public var outcome: ExploreOutcome
    /// Switches away from an actor that could have gone on.
    public var preemptions: Int
    /// In a stuck execution, each actor left and the point it could not
    /// execute.
    public var blocked: [ExploreStep] = []
    /// The execution ran into schedules already explored (every actor that
    /// could run was in the sleep set) and was finished without search; its
    /// outcome repeats an explored one and is not counted.
    public var redundant = false
}

/// What a search found.
public struct ExploreResult: Sendable {
    /// Executions run (schedules explored), the redundant ones included.
    public var executions = 0
    /// Executions the sleep sets found redundant (not judged).
    public var redundant = 0
    /// Whether the search covered every schedule up to the reduction (no
    /// limit cut it short).
    public var complete = true
    /// Executions that ended bad (`ExploreOutcome.isBad`).
    public var bad = 0
    /// ... with a use-after-free report.
    public var useAfterFree = 0
    /// ... with an escalation.
    public var escalations = 0
    /// ... with a corruption.
    public var corruptions = 0
    /// ... with the secret leaked.
    public var leaked = 0
    /// ... with a reallocated page reached.
    public var reachedReallocated = 0
    /// ... stuck.
    public var stuck = 0
    /// The longest execution, in steps.
    public var maxSteps = 0
    /// The bad execution with the fewest preemptions, then the fewest steps.
    public var shortestBad: ExploreExecution?
    /// The first execution (the schedule the explorer tries first).
    public var first: ExploreExecution?

    /// The share of executions that ended bad.
    public var badShare: Double { executions == 0 ? 0 : Double(bad) / Double(executions) }
}

/// Errors of the search itself.
public enum ExploreError: Error, Equatable {
    /// A replayed prefix did not do what it did before: something outside
    /// the schedule (a thread, a clock, a random source) steers the program.
    case nondeterministic(step: Int, detail: String)
    /// More actors than schedule ids can name.
    case tooManyActors
}

/// The limits of a search.
public struct ExploreLimits: Sendable {
    /// Stop after this many executions (the result is then not complete).
    public var maxExecutions = 200_000
    /// Abandon an execution longer than this (not complete either).
    public var maxSteps = 50_000
    /// Partial-order reduction on (the default), or every interleaving:
    /// the second is exponential and exists to check the first.
    public var reduction = Reduction.dpor

    /// How much of the schedule space a search covers.
    public enum Reduction: String, Sendable, CaseIterable {
        /// Dynamic partial-order reduction: one schedule per order of
        /// conflicting points.
        case dpor
        /// Every interleaving of every step.
        case none
    }

    /// The defaults.
    public init(maxExecutions: Int = 200_000, maxSteps: Int = 50_000, reduction: Reduction = .dpor) {
        self.maxExecutions = maxExecutions
        self.maxSteps = maxSteps
        self.reduction = reduction
    }
}

/// The interleaving explorer: runs a program's actors one step at a time
/// and enumerates their schedules with dynamic partial-order reduction
/// (Flanagan and Godefroid, POPL 2005) and sleep sets (Godefroid, 1996):
/// after each execution it goes back to
/// the latest step where two conflicting points of different actors could
/// have run in the other order, and runs that order, until no such step is
/// left. Two points conflict when they touch the same object (a frame's
/// entries and identity, a lock) and one changes it; schedules that differ
/// only in the order of points that do not conflict end in the same state,
/// so one of them stands for all. Every execution replays from a fresh
/// instance. Needs a build with the schedule points (`SchedulePoints.compiledIn`).
public struct Explorer {
    /// The limits.
    public var limits: ExploreLimits

    /// An explorer with `limits`.
    public init(limits: ExploreLimits = ExploreLimits()) { self.limits = limits }

    /// Explores every schedule of the program `make` builds, up to the
    /// reduction and the limits. `each` sees every execution.
    public func explore<E: Error>(_ make: () throws(E) -> ExploreInstance,
                                  each: (ExploreExecution) -> Void = { _ in }) throws -> ExploreResult {
        try ScheduleRun.onCPU(0) { () throws -> ExploreResult in try search(make, each: each) }
    }

    private func search<E: Error>(_ make: () throws(E) -> ExploreInstance,
                                  each: (ExploreExecution) -> Void) throws -> ExploreResult {
        let search = DPORSearch(maxSteps: limits.maxSteps, reduction: limits.reduction)
        var result = ExploreResult()
        while true {
            let instance = try make()
            let execution = try search.execute(instance)
            result.executions += 1
            result.maxSteps = max(result.maxSteps, execution.steps.count)
            if search.truncated { result.complete = false }
            count(execution, into: &result)
            if result.first == nil { result.first = execution }
            each(execution)
            guard search.nextPrefix() else { break }
            if result.executions >= limits.maxExecutions {
                result.complete = false
                break
            }
        }
        return result
    }

    /// Runs the program once under `schedule` (then, past its end, the
    /// explorer's first choice at each step).
    public func replay<E: Error>(_ schedule: Schedule, _ make: () throws(E) -> ExploreInstance) throws -> ExploreExecution {
        let search = DPORSearch(maxSteps: limits.maxSteps, reduction: limits.reduction)
        search.forced = schedule.steps
        return try ScheduleRun.onCPU(0) { () throws -> ExploreExecution in try search.execute(try make()) }
    }

    private func count(_ e: ExploreExecution, into r: inout ExploreResult) {
        if e.redundant {
            r.redundant += 1
            return
        }
        let o = e.outcome
        guard o.isBad else { return }
        r.bad += 1
        if o.reports > 0 { r.useAfterFree += 1 }
        if o.escalations > 0 { r.escalations += 1 }
        if o.corruptions > 0 { r.corruptions += 1 }
        if o.leaked { r.leaked += 1 }
        if o.reachedReallocated { r.reachedReallocated += 1 }
        if o.stuck { r.stuck += 1 }
        if let best = r.shortestBad,
           (best.preemptions, best.steps.count) <= (e.preemptions, e.steps.count) { return }
        r.shortestBad = e
    }
}

extension ExploreStep: CustomStringConvertible {
    /// What the step did, in words: "write frame 0x1a3 entry 5",
    /// "acquire IOMMU lock", "spin (wait)".
    public var what: String {
        let p = point
        let id = ScheduleObject.id(p.object)
        switch ScheduleObject.space(p.object) {
        case 1:
            let frame = "frame 0x" + String(id, radix: 16)
            switch p.detail {
            case 512: return "\(p.op) \(frame) identity (allocated or freed)"
            case 513: return "\(p.op) \(frame) zeroed"
            default: return "\(p.op) \(frame) entry \(p.detail)"
            }
        case 2:
            let rank = LockRank(rawValue: UInt8(truncatingIfNeeded: p.detail)).map { "\($0)" } ?? "?"
            return "\(p.op) \(rank) lock #\(id)"
        case 3:
            return "\(p.op) (a wait loop's turn)"
        default:
            return "\(p.op)"
        }
    }

    /// "kernel: write frame 0x1a3 entry 5".
    public var description: String { "\(name): \(what)" }
}
