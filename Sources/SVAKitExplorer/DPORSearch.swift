// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// The search's state across executions: the stack of choice points of
/// the current execution with their backtrack and done sets (FG05's
/// `backtrack(s)` and `done(s)`), the transitions with their vector clocks,
/// and the prefix the next execution replays. The strategy of each run.
final class DPORSearch: ScheduleStrategy {
    /// One state of the execution: who could run, who the search chose, and
    /// who it must still try there.
    struct Node {
        var enabled: [Int]
        var chosen: Int
        var backtrack: Set<Int>
        var done: Set<Int>
        /// The sleep set on arrival (Godefroid's sleep sets): actors whose
        /// next point was explored from an earlier state and commutes with
        /// every step since; choosing one here would only repeat a schedule.
        var sleep: Set<Int>
        /// Each actor's next point at this state.
        var pending: [SchedulePoint]
    }

    /// One executed step and its vector clock: clock[a] is one past the
    /// index of the latest step of actor `a` that happens before it.
    struct Transition {
        var actor: Int
        var point: SchedulePoint
        var clock: [Int]
    }

    private var nodes: [Node] = []
    private var transitions: [Transition] = []
    /// Per object and actor: the latest step of that actor that touched the
    /// object, and the latest that changed it (-1: none). An actor's steps
    /// are ordered by its clock, so for the clocks and the races only each
    /// actor's latest conflicting step matters: if it happens before a
    /// point, all of that actor's earlier ones do.
    private var objectSlot: [UInt64: Int] = [:]
    private var lastAny: [[Int]] = []
    private var lastChange: [[Int]] = []
    /// Per actor: the clock of its latest step (or of its spawn).
    private var actorClock: [[Int]] = []
    /// The execution's steps, for its report.
    private var steps: [ExploreStep] = []
    private var localIDs: [UInt64: Int] = [:]
    private var names: [String] = []
    private var preemptions = 0
    private var lastActor = -1
    private var failure: ExploreError?
    private let maxSteps: Int
    private let reduction: ExploreLimits.Reduction
    /// A schedule to follow before choosing (replay).
    var forced: [Int] = []
    /// The last execution was cut at `maxSteps`.
    private(set) var truncated = false
    /// The last execution reached a state where every enabled actor was
    /// asleep: it only repeats schedules already explored, and is finished
    /// with no further search (its outcome is not counted).
    private(set) var sleepBlocked = false

    init(maxSteps: Int, reduction: ExploreLimits.Reduction) {
        self.maxSteps = maxSteps
        self.reduction = reduction
    }

    /// Runs `instance` once: the prefix the search kept, then its first
    /// choice at each new state (the actor that ran last, if it still can,
    /// else the lowest).
    func execute(_ instance: ExploreInstance) throws -> ExploreExecution {
        guard instance.actors.count <= 26 else { throw ExploreError.tooManyActors }
        transitions.removeAll(keepingCapacity: true)
        objectSlot.removeAll(keepingCapacity: true)
        lastAny.removeAll(keepingCapacity: true)
        lastChange.removeAll(keepingCapacity: true)
        actorClock = []
        steps = []
        localIDs = [:]
        names = []
        preemptions = 0
        lastActor = -1
        failure = nil
        truncated = false
        sleepBlocked = false
        let run = ScheduleRun(strategy: self)
        for a in instance.actors {
            run.add(a.name, a.body)
            names.append(a.name)
            actorClock.append([])
        }
        run.run()
        if let failure { throw failure }
        // A stuck run's parked actors may hold the machine's locks: it is
        // not judged (and its instance is kept alive by their threads).
        var outcome = run.abandoned || run.stuck ? ExploreOutcome() : instance.finish()
        var blocked: [ExploreStep] = []
        if run.stuck {
            outcome.stuck = true
            for (i, a) in run.actors.enumerated() where !a.finished {
                blocked.append(ExploreStep(actor: i, name: a.name, point: a.pending))
            }
        }
        return ExploreExecution(schedule: Schedule(steps.map(\.actor)), steps: steps, actors: names,
                                outcome: outcome, preemptions: preemptions, blocked: blocked,
                                redundant: sleepBlocked)
    }

    /// Moves to the next execution: the deepest state with an actor still to
    /// try becomes the end of the prefix, with that actor chosen. False when
    /// none is left (the search is over).
    func nextPrefix() -> Bool {
        while let last = nodes.last {
            let left = last.backtrack.subtracting(last.done)
            if let pick = left.min() {
                nodes[nodes.count - 1].done.insert(pick)
                nodes[nodes.count - 1].chosen = pick
                return true
            }
            nodes.removeLast()
        }
        return false
    }

    // MARK: - ScheduleStrategy

    func choose(_ run: ScheduleRun, enabled: [Int]) -> Int? {
        let depth = run.steps
        if depth >= maxSteps {
            truncated = true
            return nil
        }
        if !forced.isEmpty {
            // Replay of a given schedule: no search state is kept.
            let c = depth < forced.count ? forced[depth] : (enabled.contains(lastActor) ? lastActor : enabled[0])
            guard enabled.contains(c) else {
                failure = .nondeterministic(step: depth, detail: "actor \(c) cannot run there")
                return nil
            }
            note(run, chosen: c, enabled: enabled)
            return c
        }
        if reduction == .dpor && !sleepBlocked { backtrackPoints(run, depth: depth) }
        let c: Int
        if depth < nodes.count {
            c = nodes[depth].chosen
            guard nodes[depth].enabled == enabled, enabled.contains(c) else {
                failure = .nondeterministic(
                    step: depth, detail: "enabled \(enabled), before \(nodes[depth].enabled), chosen \(c)")
                return nil
            }
        } else {
            let pending = run.actors.map(\.pending)
            var sleep: Set<Int> = []
            if reduction == .dpor, !sleepBlocked, let parent = nodes.last {
                let p = parent.pending[parent.chosen]
                for q in parent.sleep.union(parent.done) where q != parent.chosen
                    && Self.independent(parent.pending[q], p) {
                    sleep.insert(q)
                }
            }
            let awake = enabled.filter { !sleep.contains($0) }
            if awake.isEmpty { sleepBlocked = true }
            let from = awake.isEmpty ? enabled : awake
            c = from.contains(lastActor) ? lastActor : from[0]
            let all = reduction == .none ? Set(enabled) : [c]
            nodes.append(Node(enabled: enabled, chosen: c, backtrack: all, done: [c], sleep: sleep, pending: pending))
        }
        note(run, chosen: c, enabled: enabled)
        return c
    }

    /// Whether two next points commute: neither conflicts with the other,
    /// and neither is a wait loop's turn (which any step may end).
    static func independent(_ a: SchedulePoint, _ b: SchedulePoint) -> Bool {
        a.op != .spin && b.op != .spin && !a.conflicts(with: b)
    }

    func executed(_ run: ScheduleRun, actor: Int, point: SchedulePoint) {
        let d = run.steps - 1
        let n = run.actors.count
        var clock = actorClock[actor]
        if clock.count < n { clock += Array(repeating: 0, count: n - clock.count) }
        var slot = -1
        if point.object != 0 {
            if let k = objectSlot[point.object] {
                slot = k
                let changes = point.op.changes
                for a in 0..<lastAny[k].count where a != actor {
                    let j = changes ? lastAny[k][a] : lastChange[k][a]
                    guard j >= 0 else { continue }
                    let c = transitions[j].clock
                    for x in c.indices where c[x] > clock[x] { clock[x] = c[x] }
                }
            } else {
                slot = lastAny.count
                objectSlot[point.object] = slot
                lastAny.append([])
                lastChange.append([])
            }
        }
        clock[actor] = d + 1
        actorClock[actor] = clock
        precondition(d == transitions.count)
        transitions.append(Transition(actor: actor, point: point, clock: clock))
        if slot >= 0 {
            if lastAny[slot].count < n {
                lastAny[slot] += Array(repeating: -1, count: n - lastAny[slot].count)
                lastChange[slot] += Array(repeating: -1, count: n - lastChange[slot].count)
            }
            lastAny[slot][actor] = d
            if point.op.changes { lastChange[slot][actor] = d }
        }
        // A lock's or a wait's id is an address, which differs from one
        // instance to the next: the recorded step names it by the order in
        // which this execution first met it, so replays compare equal.
        var shown = point
        let space = ScheduleObject.space(point.object)
        if space == 2 || space == 3 {
            let local = localIDs[point.object] ?? localIDs.count
            localIDs[point.object] = local
            shown.object = space == 2 ? ScheduleObject.lock(UInt64(local)) : ScheduleObject.wait(UInt64(local))
        }
        steps.append(ExploreStep(actor: actor, name: run.actors[actor].name, point: shown))
    }

    func spawned(_ run: ScheduleRun, parent: Int, child: Int) {
        names.append(run.actors[child].name)
        // The spawn is part of the parent's current step: everything before
        // that step happens before the child's first.
        actorClock.append(transitions[run.steps - 1].clock)
    }

    // MARK: - The reduction

    /// FG05's update at the state before step `depth`: for each actor's next
    /// point, the latest earlier step of another actor that conflicts with
    /// it and does not happen before it (by the vector clocks) is a race; at the state before that
    /// step the actor (or, if it could not run there, every actor that
    /// could) must be tried.
    private func backtrackPoints(_ run: ScheduleRun, depth: Int) {
        for q in run.actors.indices where !run.actors[q].finished {
            let next = run.actors[q].pending
            guard next.op != .start, next.op != .spin else { continue }
            guard next.object != 0, let k = objectSlot[next.object] else { continue }
            let known = actorClock[q]
            let changes = next.op.changes
            var race = -1
            for a in 0..<lastAny[k].count where a != q {
                let i = changes ? lastAny[k][a] : lastChange[k][a]
                guard i > race else { continue }
                if a < known.count && known[a] >= i + 1 { continue }  // happens before q
                race = i
            }
            guard race >= 0 else { continue }
            if nodes[race].enabled.contains(q) {
                nodes[race].backtrack.insert(q)
            } else {
                nodes[race].backtrack.formUnion(nodes[race].enabled)
            }
        }
    }

    private func note(_ run: ScheduleRun, chosen: Int, enabled: [Int]) {
        if lastActor >= 0 && chosen != lastActor && enabled.contains(lastActor) { preemptions += 1 }
        lastActor = chosen
    }
}
