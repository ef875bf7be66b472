// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// 1 GiB machines unless a test needs more: boot is O(GiB), not O(frames).
let gib = 1 << 18

func machine(frames: Int = gib, levels: Int = 4, reuse: ReusePolicy = .lifo) throws -> Machine {
    try Machine(MachineConfig(frames: frames, pagingLevels: levels, reuse: reuse, eventLogCapacity: 1 << 14))
}

/// A frame a user mapping may point at: the `i`-th from the end of memory,
/// which the tests' allocations never reach, so never a page table
/// (`Machine.map` refuses those in a process mm).
func userFrame(_ m: Machine, _ i: Int = 0) -> UInt64 { UInt64(m.config.frames - 1 - i) << 12 }

/// The seed of a random test: SVAKIT_SEED from the environment to replay a
/// run, otherwise a fresh one. Printed either way.
func testSeed(_ name: String) -> UInt64 {
    let seed: UInt64
    if let s = getenvString("SVAKIT_SEED"), let v = UInt64(s) {
        seed = v
    } else {
        var g = SystemRandomNumberGenerator()
        seed = g.next()
    }
    print("\(name): seed \(seed) (replay with SVAKIT_SEED=\(seed))")
    return seed
}

private func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}

/// Asserts that `body` throws exactly `expected` and leaves the machine as it
/// was: same clock, same counters, and a clean audit.
func expectRefused(_ m: Machine, _ expected: SVAError, sourceLocation: SourceLocation = #_sourceLocation,
                   _ body: () throws -> Void) {
    let before = m.stats
    do {
        try body()
        Issue.record("expected \(expected), the call succeeded", sourceLocation: sourceLocation)
    } catch {
        #expect(error as? SVAError == expected, sourceLocation: sourceLocation)
    }
    let after = m.stats
    #expect(after.step == before.step, "a refused call logged a step", sourceLocation: sourceLocation)
    #expect(after.allocs == before.allocs && after.frees == before.frees, sourceLocation: sourceLocation)
    #expect(after.freeFrames == before.freeFrames, sourceLocation: sourceLocation)
    #expect(m.audit() == [], sourceLocation: sourceLocation)
}

struct MissingTable: Error {}

extension Machine {
    /// The table the entry at `level` for va points to, or a test failure.
    func tableUnder(_ va: UInt64, level: Int, in mm: MMID = .initMM) throws -> TableFrame {
        guard let s = try entrySlot(va, level: level, in: mm), let t = table(pointedToBy: s) else {
            throw MissingTable()
        }
        return t
    }

    /// The index of the first event of `type` about `pfn` after step `since`.
    func firstStep(_ type: EventType, pfn: PFN? = nil, since: UInt64 = 0) -> UInt64? {
        events(since: since).first { $0.type == type && (pfn == nil || $0.pfn == pfn!) }?.step
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A lock for the tests' own shared state, on a pthread mutex so that
/// ThreadSanitizer sees its hand-overs (it does not see Synchronization's
/// Mutex, whose contended path is a bare futex). `withLock` as Mutex's.
final class TestMutex<Value>: @unchecked Sendable {
    // @unchecked: `value` is reached only under `lock`.
    private var value: Value
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value)
    }
}
