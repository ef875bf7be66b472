// SPDX-License-Identifier: Apache-2.0
import Testing
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitExplorer
@_spi(Engine) import SVAKitMemory

/// Shared memory of a synthetic program: plain values, touched only by the
/// one actor that runs (the explorer's baton orders every access).
private final class Cells: @unchecked Sendable {
    var v = [Int](repeating: 0, count: 4)
    var seen: [Int] = []
}

/// One operation of a synthetic actor.
private enum Op {
    case read(Int)          // seen.append(v[cell])
    case write(Int, Int)    // v[cell] = value
    case increment(Int)     // read, then write read + 1: two points
    case lock(Int), unlock(Int)
}

private func object(_ cell: Int) -> UInt64 { ScheduleObject.frame(UInt32(100 + cell)) }
private func lockObject(_ l: Int) -> UInt64 { ScheduleObject.lock(UInt64(7 + l)) }

/// A program of actors over `Cells`; its outcome key is every value read
/// (in actor order) and the final memory.
private func program(_ actors: [[Op]], keys: Box<[String]>) -> () -> ExploreInstance {
    {
        let c = Cells()
        let perActor = Box([[Int]](repeating: [], count: actors.count))
        let bodies: [(name: String, body: () -> Void)] = actors.enumerated().map { (i, ops) in
            (name: "t\(i)", body: {
                for op in ops {
                    switch op {
                    case .read(let x):
                        SchedulePoints.point(.read, object(x))
                        perActor.value[i].append(c.v[x])
                    case .write(let x, let value):
                        SchedulePoints.point(.write, object(x))
                        c.v[x] = value
                    case .increment(let x):
                        SchedulePoints.point(.read, object(x))
                        let r = c.v[x]
                        SchedulePoints.point(.write, object(x))
                        c.v[x] = r + 1
                    case .lock(let l): SchedulePoints.point(.acquire, lockObject(l))
                    case .unlock(let l): SchedulePoints.point(.release, lockObject(l))
                    }
                }
            })
        }
        return ExploreInstance(actors: bodies) {
            keys.value.append("\(perActor.value) \(c.v)")
            return ExploreOutcome()
        }
    }
}

private final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ v: T) { value = v }
}

/// Every distinct outcome of `actors` under `reduction`, and the executions run.
private func outcomes(_ actors: [[Op]], _ reduction: ExploreLimits.Reduction) throws -> (Set<String>, ExploreResult) {
    let keys = Box<[String]>([])
    let r = try Explorer(limits: ExploreLimits(reduction: reduction)).explore(program(actors, keys: keys))
    return (Set(keys.value), r)
}

@Suite("The explorer's search (synthetic programs)", .enabled(if: SchedulePoints.compiledIn))
struct ExplorerCoreTests {
    @Test("a lost update: both orders and the interleaving that loses one are found")
    func lostUpdate() throws {
        let actors: [[Op]] = [[.increment(0)], [.increment(0)]]
        let (dpor, r) = try outcomes(actors, .dpor)
        let (all, _) = try outcomes(actors, .none)
        #expect(dpor == all)
        #expect(dpor.contains("[[], []] [1, 0, 0, 0]"))
        #expect(dpor.contains("[[], []] [2, 0, 0, 0]"))
        #expect(r.complete)
    }

    @Test("actors on different objects: one schedule stands for all")
    func independent() throws {
        let actors: [[Op]] = [[.write(0, 1), .read(0), .write(0, 2)], [.write(1, 1), .read(1)], [.write(2, 5)]]
        let (dpor, r) = try outcomes(actors, .dpor)
        let (all, full) = try outcomes(actors, .none)
        #expect(r.executions == 1)
        #expect(full.executions > 50)
        #expect(dpor == all)
    }

    @Test("a lock orders its critical sections: no lost update, fewer schedules than brute force")
    func locked() throws {
        let actors: [[Op]] = [[.lock(0), .increment(0), .unlock(0)], [.lock(0), .increment(0), .unlock(0)]]
        let (dpor, r) = try outcomes(actors, .dpor)
        let (all, full) = try outcomes(actors, .none)
        #expect(dpor == ["[[], []] [2, 0, 0, 0]"])
        #expect(all == dpor)
        // Without sleep sets the reduction runs both orders of each lock's
        // release against the other's acquire: 4 here, not the ideal 2.
        #expect(r.executions == 4)
        #expect(full.executions == 12)
    }

    @Test("two locks taken in opposite orders: the deadlock is found, and reported stuck")
    func deadlock() throws {
        let keys = Box<[String]>([])
        let r = try Explorer().explore(program([[.lock(0), .lock(1), .unlock(1), .unlock(0)],
                                                [.lock(1), .lock(0), .unlock(0), .unlock(1)]], keys: keys))
        #expect(r.stuck >= 1)
        #expect(r.shortestBad?.outcome.stuck == true)
        #expect(r.executions > r.stuck)
    }

    @Test("a spawned actor runs after the step that spawned it; a wait loop ends when its flag is set")
    func spawnAndSpin() throws {
        let keys = Box<[String]>([])
        let r = try Explorer().explore {
            let c = Cells()
            return ExploreInstance(actors: [
                (name: "parent", body: {
                    SchedulePoints.point(.write, object(0))
                    c.v[0] = 1
                    _ = SchedulePoints.spawn("child") {
                        SchedulePoints.point(.read, object(0))
                        c.seen.append(c.v[0])
                        SchedulePoints.point(.write, object(1))
                        c.v[1] = 1
                    }
                }),
                (name: "waiter", body: {
                    SchedulePoints.spinWhile(ScheduleObject.wait(1)) { c.v[1] == 0 }
                    SchedulePoints.point(.read, object(0))
                    c.seen.append(10 + c.v[0])
                }),
            ]) {
                keys.value.append("\(c.seen)")
                return ExploreOutcome()
            }
        }
        #expect(Set(keys.value) == ["[1, 11]"])
        #expect(r.stuck == 0)
        #expect(r.complete)
    }

    @Test("random programs: the reduction finds every outcome brute force finds")
    func randomPrograms() throws {
        var rng = SplitMix64(seed: testSeed("ExplorerCoreTests.randomPrograms"))
        for _ in 0..<60 {
            // Small enough for brute force: at most 3 actors of 2
            // operations, 7 points in all.
            let actorCount = 2 + Int(rng.next() % 2)
            var actors: [[Op]] = []
            for _ in 0..<actorCount {
                var ops: [Op] = []
                for _ in 0..<(1 + Int(rng.next() % 2)) {
                    let cell = Int(rng.next() % 3)
                    switch rng.next() % 4 {
                    case 0: ops.append(.read(cell))
                    case 1: ops.append(.write(cell, Int(rng.next() % 3) + 1))
                    case 2: ops.append(.increment(cell))
                    default: ops += [.lock(0), .increment(cell), .unlock(0)]
                    }
                }
                actors.append(ops)
            }
            let points = actors.joined().reduce(0) { n, op in
                switch op {
                case .increment: n + 2
                default: n + 1
                }
            }
            guard points <= 7 else { continue }
            let (dpor, r) = try outcomes(actors, .dpor)
            let (all, full) = try outcomes(actors, .none)
            #expect(dpor == all, "program \(actors)")
            #expect(r.executions <= full.executions)
        }
    }

    @Test("a schedule id round-trips and replays the same steps")
    func replay() throws {
        let keys = Box<[String]>([])
        let make = program([[.increment(0), .read(1)], [.write(1, 3), .increment(0)]], keys: keys)
        var seen: [ExploreExecution] = []
        _ = try Explorer().explore(make) { seen.append($0) }
        for e in seen {
            let id = e.schedule.id
            #expect(Schedule(id: id) == e.schedule)
            let again = try Explorer().replay(Schedule(id: id)!, make)
            #expect(again.steps == e.steps)
        }
        #expect(Schedule(id: "a0") == nil)
        #expect(Schedule(id: "3a") == nil)
        #expect(Schedule(id: "a-1") == nil)
        #expect(Schedule(id: "a12b3a5")?.steps.count == 20)
    }
}
