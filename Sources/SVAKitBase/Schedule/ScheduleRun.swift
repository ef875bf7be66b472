// SPDX-License-Identifier: Apache-2.0
import CSVAKitCore
#if canImport(Glibc)
import Glibc
#endif

/// Decides, at each schedule point, which actor runs next, and hears what
/// each step was. The explorer's search (SVAKitExplorer) is one.
@_spi(Engine) public protocol ScheduleStrategy: AnyObject {
    /// Picks one of `enabled` (actor indices, ascending, never empty) to
    /// execute its pending point; nil abandons the run.
    func choose(_ run: ScheduleRun, enabled: [Int]) -> Int?
    /// Actor `actor` executed `point`: step `run.steps - 1` of the run.
    func executed(_ run: ScheduleRun, actor: Int, point: SchedulePoint)
    /// Actor `parent`, in the step it is executing, started actor `child`.
    func spawned(_ run: ScheduleRun, parent: Int, child: Int)
}

/// One execution under the explorer: a set of actors, each on its own
/// thread, of which exactly one runs at any moment. An actor runs until its
/// next schedule point, then hands the choice to the strategy; the one
/// chosen runs, the others wait on their semaphores. The run is therefore as
/// deterministic as the strategy: the same choices give the same steps.
///
/// Locks are modelled: an actor whose next point acquires a lock another
/// actor holds is not enabled, so the real lock it then takes is free. An
/// actor that spun (`ScheduleOp.spin`) and found its wait not over is not
/// enabled at its next spin until another actor executes a point that is
/// not a spin.
@_spi(Engine) public final class ScheduleRun: @unchecked Sendable {
    // @unchecked: every field is read and written only by the thread that
    // holds the baton (the one running actor, or the thread in `run()` before
    // the first actor starts and after the last one ends). The baton passes
    // through semaphores (sem_post / sem_wait), which order those accesses.

    /// One actor, as the strategy sees it.
    public struct ActorState {
        /// Its name ("kernel", "device", "kworker", ...).
        public let name: String
        /// The point it will execute when chosen.
        public internal(set) var pending: SchedulePoint
        /// Its body returned.
        public internal(set) var finished = false
        /// It spun and nothing has changed since: its next spin waits.
        public internal(set) var spinBlocked = false
    }

    /// The actors, in the order they were added or spawned.
    public private(set) var actors: [ActorState] = []
    /// Steps executed so far.
    public private(set) var steps = 0
    /// The run ended with actors left that could not run (a deadlock, or a
    /// wait nothing could end). Their threads stay parked, and the run keeps
    /// what they reference alive.
    public private(set) var stuck = false
    /// The strategy abandoned the run.
    public private(set) var abandoned = false

    private var lockOwner: [UInt64: Int] = [:]
    private var workers: [ScheduleActor] = []
    private let strategy: ScheduleStrategy
    private let done: UnsafeMutablePointer<sem_t>

    /// An empty run under `strategy`.
    public init(strategy: ScheduleStrategy) {
        self.strategy = strategy
        done = .allocate(capacity: 1)
        sem_init(done, 0, 0)
    }

    deinit {
        sem_destroy(done)
        done.deallocate()
    }

    /// Adds an actor before `run()`.
    public func add(_ name: String, _ body: @escaping () -> Void) {
        append(name, body)
    }

    /// Runs every actor to its end under the strategy; returns when all have
    /// finished, or when none can go on (`stuck`) or the strategy gave up.
    public func run() {
        guard !actors.isEmpty else { return }
        if pass(from: nil) { sem_wait(done) }
        if !stuck && !abandoned { workers.removeAll() }
    }

    /// Runs `body` on the calling thread as simulated CPU `cpu`, then gives
    /// the thread its CPU back: the explorer sets up and judges every
    /// execution on the same CPU, whichever thread calls it.
    public static func onCPU<T, E: Error>(_ cpu: Int, _ body: () throws(E) -> T) throws(E) -> T {
        let saved = svk_current_cpu()
        svk_set_current_cpu(Int64(cpu))
        defer { svk_set_current_cpu(saved) }
        return try body()
    }

    /// Whether actor `i` can execute its pending point now.
    public func isEnabled(_ i: Int) -> Bool {
        let a = actors[i]
        if a.finished || a.spinBlocked && a.pending.op == .spin { return false }
        if a.pending.op == .acquire, let owner = lockOwner[a.pending.object], owner != i { return false }
        return true
    }

    // MARK: - The baton

    @discardableResult
    private func append(_ name: String, _ body: @escaping () -> Void) -> Int {
        let i = actors.count
        actors.append(ActorState(name: name, pending: SchedulePoint(op: .start, object: 0)))
        workers.append(ScheduleActor(run: self, index: i, body: body))
        return i
    }

    /// Hands the baton on from actor `from` (nil: the thread in `run()`):
    /// asks the strategy, executes the chosen actor's point, wakes it.
    /// Returns whether the caller must wait (another actor, or nobody, runs
    /// now); false when the caller was chosen and goes on.
    fileprivate func pass(from: Int?) -> Bool {
        var enabled: [Int] = []
        for i in actors.indices where isEnabled(i) { enabled.append(i) }
        guard !enabled.isEmpty else {
            if !actors.allSatisfy(\.finished) { stuck = true }
            sem_post(done)
            return true
        }
        guard let next = strategy.choose(self, enabled: enabled) else {
            abandoned = true
            sem_post(done)
            return true
        }
        precondition(isEnabled(next), "the strategy chose actor \(next), which cannot run")
        execute(next)
        if next == from { return false }
        workers[next].wake()
        return true
    }

    private func execute(_ i: Int) {
        let p = actors[i].pending
        switch p.op {
        case .acquire: lockOwner[p.object] = i
        case .release: lockOwner[p.object] = nil
        case .spin: actors[i].spinBlocked = true
        default: break
        }
        if p.op != .spin {
            for j in actors.indices where j != i { actors[j].spinBlocked = false }
        }
        steps += 1
        strategy.executed(self, actor: i, point: p)
    }

    fileprivate func ownerOfLock(_ object: UInt64) -> Int? { lockOwner[object] }

    fileprivate func yield(_ i: Int, _ point: SchedulePoint) -> Bool {
        actors[i].pending = point
        return pass(from: i)
    }

    fileprivate func finish(_ i: Int) {
        actors[i].finished = true
        _ = pass(from: i)
    }

    fileprivate func spawn(from parent: Int, _ name: String, _ body: @escaping () -> Void) {
        let child = append(name, body)
        strategy.spawned(self, parent: parent, child: child)
    }
}

/// One actor's thread and semaphore. Its thread is created the first time
/// the actor is chosen, runs the body with the actor as the thread's
/// current one (`svk_sched_current`), and ends after handing the baton on.
@_spi(Engine) public final class ScheduleActor: @unchecked Sendable {
    // @unchecked: the fields change only on the thread holding the baton.
    let run: ScheduleRun
    let index: Int
    private var body: (() -> Void)?
    private let sem: UnsafeMutablePointer<sem_t>
    private var started = false
    /// Points suppressed while a wait loop reads its condition.
    var suppressed = 0

    init(run: ScheduleRun, index: Int, body: @escaping () -> Void) {
        self.run = run
        self.index = index
        self.body = body
        sem = .allocate(capacity: 1)
        sem_init(sem, 0, 0)
    }

    deinit {
        sem_destroy(sem)
        sem.deallocate()
    }

    /// Lets the actor run: starts its thread, or wakes it at its point.
    func wake() {
        guard started else {
            started = true
            let me = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let actor = Unmanaged<ScheduleActor>.fromOpaque(arg!).takeRetainedValue()
                actor.main()
                return nil
            }, me)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            pthread_detach(thread)
            return
        }
        sem_post(sem)
    }

    private func main() {
        svk_sched_set_current(Unmanaged.passUnretained(self).toOpaque())
        // Each actor runs on the simulated CPU of its index, so per-CPU
        // state (the IOVA rcaches) is the same in every execution; a thread
        // left to the round-robin tickets would get a new CPU each time.
        svk_set_current_cpu(Int64(index))
        let body = self.body!
        self.body = nil
        body()
        svk_sched_set_current(nil)
        run.finish(index)
    }

    /// The point `point` on the actor behind `p` (the thread's current one).
    public static func yield(_ p: UnsafeMutableRawPointer, _ point: SchedulePoint) {
        let actor = Unmanaged<ScheduleActor>.fromOpaque(p).takeUnretainedValue()
        guard actor.suppressed == 0 else {
            // A wait loop's condition runs inside the actor's step: it may
            // take a lock only if no other actor is parked holding it, or
            // the real lock would block the one running thread.
            precondition(point.op != .acquire || actor.run.ownerOfLock(point.object).map { $0 == actor.index } ?? true,
                         "a wait loop's condition takes a lock another actor holds across a schedule point")
            return
        }
        if actor.run.yield(actor.index, point) { sem_wait(actor.sem) }
    }

    /// Reads a wait loop's condition with the points inside it suppressed.
    public static func checkSuppressed(_ p: UnsafeMutableRawPointer, _ condition: () -> Bool) -> Bool {
        let actor = Unmanaged<ScheduleActor>.fromOpaque(p).takeUnretainedValue()
        actor.suppressed += 1
        defer { actor.suppressed -= 1 }
        return condition()
    }

    /// Starts a new actor in the run of the actor behind `p`.
    public static func spawn(_ p: UnsafeMutableRawPointer, name: String, _ body: @escaping () -> Void) {
        let actor = Unmanaged<ScheduleActor>.fromOpaque(p).takeUnretainedValue()
        actor.run.spawn(from: actor.index, name, body)
    }
}
