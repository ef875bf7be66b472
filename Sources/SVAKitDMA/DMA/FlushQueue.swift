// SPDX-License-Identifier: Apache-2.0
import Synchronization
import CSVAKitCore
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// One unmap waiting for a flush (struct iova_fq_entry): the IOVA range, the
/// IOMMU tables the unmap freed, and the flush-start count when it was
/// queued. SVAKit adds the data frames the unmap covered, for the quarantine.
package struct FQEntry {
    package var iovaPfn: UInt64
    package var pages: UInt64
    package var freelist: [TableFrame]
    package var counter: UInt64 = 0
    /// When it was queued (monotonic ns): the window is the time to release.
    package var queuedAt: UInt64 = 0
    /// Data frames the unmap covered (the quarantine's part).
    package var frames: [PFN] = []
    /// Frames the window-aware sanitizer still counts until this entry's
    /// flush has finished.
    package var debugFrames = FrameRuns()
    /// The machine's step when it was queued (a report's history).
    package var debugStamp: UInt64 = 0
}

/// A ring of entries (struct iova_fq): a power-of-two size, full when
/// `(tail + 1) & mask == head`, so it holds size - 1.
/// An unmap waiting in a flush queue for the flush that releases its IOVA.
public struct QueuedIOVA: Hashable, Sendable {
    /// The first IOVA (of the granule it starts in) and the length in
    /// bytes (whole granules).
    public var iova: UInt64, size: UInt64
    /// fq_flush_start_cnt when it was queued: a flush that starts later and
    /// finishes releases it.
    public var counter: UInt64
    /// The ring it waits in: its CPU, or 0 for the single queue.
    public var ring: Int
}

package struct FQRing {
    private var entries: [FQEntry?]
    private var head = 0, tail = 0
    package let mask: Int

    package init(size: Int) {
        precondition(size.nonzeroBitCount == 1)
        entries = Array(repeating: nil, count: size)
        mask = size - 1
    }

    package var isFull: Bool { (tail + 1) & mask == head }
    package var count: Int { (tail - head) & mask }

    package mutating func append(_ e: FQEntry) {
        entries[tail] = e
        tail = (tail + 1) & mask
    }

    /// The first waiting entry whose sanitizer frames hold `pfn` (a report's
    /// history).
    package func waiting(holding pfn: Int) -> FQEntry? {
        var i = head
        while i != tail {
            if let e = entries[i], e.debugFrames.contains(pfn) { return e }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Every waiting entry, oldest first.
    package func forEachWaiting(_ body: (FQEntry) -> Void) {
        var i = head
        while i != tail {
            if let e = entries[i] { body(e) }
            i = (i + 1) & mask
        }
    }

    /// fq_ring_free_locked: takes every entry, oldest first, whose counter
    /// is below `finish` (a flush that started after it was queued ended).
    package mutating func takeCovered(finish: UInt64, into out: inout [FQEntry]) {
        while head != tail, let e = entries[head], e.counter < finish {
            out.append(e)
            entries[head] = nil
            head = (head + 1) & mask
        }
    }
}

/// The flush queue of a DMA-FQ domain (docs/KERNEL-MODEL.md §4.2-4.3): per-CPU
/// rings of 256 entries with a 10 ms timer, or one ring of 32768 with a 1 s
/// timer for IOMMUs whose flushes are shadowed; start and finish counters
/// around each domain-wide flush, so an entry is released only after a flush
/// that started after it was queued.
///
/// One departure from dma-iommu.c, for the engine's rule that no lock is
/// held while a driver is called: queue_iova flushes a full ring under
/// fq->lock, here the ring's lock is dropped across the flush and taken
/// again (the counters keep the same guarantee), and covered entries are
/// released after the lock is dropped.
package final class FlushQueue: @unchecked Sendable {
    // @unchecked: the rings are locks; the counters are atomics; the
    // closures are immutable.
    package static let perCPUSize = 256, singleSize = 32768
    /// IOMMU_DMA_FQ_TIMEOUT and IOMMU_DMA_FQ_TIMEOUT_SINGLE, in ms.
    package static let perCPUTimeoutMs: UInt64 = 10, singleTimeoutMs: UInt64 = 1000

    private let rings: [LockBox<FQRing>]

    /// A waiting entry whose sanitizer frames hold `pfn`, from any ring
    /// (each ring's lock in turn; for reports only).
    package func waitingEntry(holding pfn: Int) -> FQEntry? {
        for r in rings { if let e = r.locked({ $0.waiting(holding: pfn) }) { return e } }
        return nil
    }
    /// What waits in the rings now, ring by ring, oldest first (each
    /// ring's lock in turn), for IOVA pages of `granule` bytes.
    package func waitingEntries(granule: UInt64) -> [QueuedIOVA] {
        var out: [QueuedIOVA] = []
        for (i, r) in rings.enumerated() {
            r.locked { ring in
                ring.forEachWaiting { e in
                    out.append(QueuedIOVA(iova: e.iovaPfn * granule, size: e.pages * granule, counter: e.counter,
                                          ring: i))
                }
            }
        }
        return out
    }
    /// fq_flush_start_cnt and fq_flush_finish_cnt.
    package let startCount = Atomic<UInt64>(0)
    package let finishCount = Atomic<UInt64>(0)
    /// fq_timer_on, and when the armed timer fires (monotonic ns).
    private let timerOn = Atomic<Bool>(false)
    /// UInt64.max while the timer is off, so a timer thread that sees
    /// `timerOn` before the arming CPU stored the deadline waits for it.
    package let deadline = Atomic<UInt64>(.max)
    /// The simulated CPU whose queue_iova armed the timer: the timer fires
    /// there (add_timer on the local CPU's base), and the IOVAs its
    /// fq_ring_free releases go to that CPU's rcache (free_iova_fast's
    /// raw_cpu_ptr), whichever ring they came from.
    package let timerCPU = Atomic<Int>(0)
    /// The machine's HZ and the timeout in jiffies:
    /// msecs_to_jiffies(fq_timeout), 3 jiffies (12 ms) for 10 ms at HZ=250.
    package let hz: UInt64, timeoutJiffies: UInt64
    /// The longest the timer waits after it is armed, in ns:
    /// timeoutJiffies whole jiffies (it fires `timeoutJiffies` ticks after
    /// the tick it was armed in, so 8 to 12 ms for 3 jiffies at HZ=250).
    package var timeoutNs: UInt64 { Self.nanoseconds(jiffies: timeoutJiffies, hz: hz) }
    package let single: Bool
    /// The domain-wide flush: flush_iotlb_all, then a sync.
    private let flushAll: () -> Void
    /// Releases a covered entry: its IOVA, its tables, its parked frames.
    private let release: (FQEntry, _ cpu: Int) -> Void
    private let now: () -> UInt64
    /// Flushes issued, and of them those a full ring forced.
    package let flushes = Atomic<Int>(0), fullFlushes = Atomic<Int>(0)
    /// The window: time from each unmap to the release a covering flush
    /// allowed, as a log2 histogram of nanoseconds, and its maximum.
    package let window = WindowHistogram()

    package init(single: Bool, cpus: Int, hz: Int, now: @escaping () -> UInt64, flushAll: @escaping () -> Void,
         release: @escaping (FQEntry, Int) -> Void) {
        self.single = single
        self.hz = UInt64(hz)
        timeoutJiffies = Self.msecsToJiffies(single ? Self.singleTimeoutMs : Self.perCPUTimeoutMs, hz: UInt64(hz))
        let size = single ? Self.singleSize : Self.perCPUSize
        rings = (0..<(single ? 1 : max(1, cpus))).map { _ in LockBox(.flushQueue, FQRing(size: size)) }
        self.now = now
        self.flushAll = flushAll
        self.release = release
    }

    /// fq_flush_iotlb: start, flush the domain, finish. With `drain`, then
    /// waits until every flush that started before this one has finished
    /// too, so that `finish` covers every entry queued before this flush
    /// started (the counters alone release such an entry only once all older
    /// flushes in flight on other CPUs are done): a caller that flushes to
    /// drain (teardown, flushDMAQueues) finds them released on return. A
    /// drain started inside another flush (from a driver callback) does not
    /// wait: the outer flush cannot finish before it returns.
    package func flush(drain: Bool = false) {
        let ticket = startCount.add(1, ordering: .sequentiallyConsistent).newValue
        svk_flush_depth_add(1)
        flushAll()
        svk_flush_depth_add(-1)
        finishCount.add(1, ordering: .sequentiallyConsistent)
        flushes.add(1, ordering: .relaxed)
        guard drain, svk_flush_depth() == 0 else { return }
        let me = UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()))
        SchedulePoints.spinWhile(ScheduleObject.wait(me)) { finishCount.load(ordering: .sequentiallyConsistent) < ticket }
    }

    /// queue_iova: frees what a finished flush covers, flushes when the ring
    /// is full, queues `e` with the current start count, arms the timer.
    package func queue(_ e: FQEntry, cpu: Int) {
        let ring = rings[single ? 0 : cpu % rings.count]
        var entry = e
        var covered: [FQEntry] = []
        while true {
            // The entries were cleared before this: the counter read below
            // orders after the clear (queue_iova's smp_mb).
            let queued: Bool = ring.locked { r in
                takeLocked(&r, into: &covered)
                guard !r.isFull else { return false }
                entry.counter = startCount.load(ordering: .sequentiallyConsistent)
                r.append(entry)
                return true
            }
            if queued { break }
            fullFlushes.add(1, ordering: .relaxed)
            flush()
        }
        releaseAll(covered, cpu)
        if !timerOn.load(ordering: .relaxed) && !timerOn.exchange(true, ordering: .acquiringAndReleasing) {
            // mod_timer(&fq_timer, jiffies + msecs_to_jiffies(fq_timeout)).
            timerCPU.store(cpu, ordering: .relaxed)
            deadline.store(Self.expiry(armedAt: now(), jiffies: timeoutJiffies, hz: hz), ordering: .releasing)
        }
    }

    /// msecs_to_jiffies: ms rounded up to whole jiffies at `hz`.
    package static func msecsToJiffies(_ ms: UInt64, hz: UInt64) -> UInt64 { (ms * hz + 999) / 1000 }

    /// The jiffies count at `t` ns: the ticks elapsed since the clock's 0.
    package static func jiffies(at t: UInt64, hz: UInt64) -> UInt64 {
        let (hi, lo) = t.multipliedFullWidth(by: hz)
        return UInt64(1_000_000_000).dividingFullWidth((hi, lo)).quotient
    }

    /// `n` jiffies in ns, rounded up.
    package static func nanoseconds(jiffies n: UInt64, hz: UInt64) -> UInt64 {
        let (hi, lo) = n.multipliedFullWidth(by: 1_000_000_000)
        let (q, r) = hz.dividingFullWidth((hi, lo))
        return r == 0 ? q : q + 1
    }

    /// When a timer armed at `t` for `n` jiffies fires: the first ns at
    /// which jiffies reaches jiffies(t) + n (a timer runs at the tick that
    /// makes `jiffies >= expires`).
    package static func expiry(armedAt t: UInt64, jiffies n: UInt64, hz: UInt64) -> UInt64 {
        nanoseconds(jiffies: jiffies(at: t, hz: hz) + n, hz: hz)
    }

    /// Whether the armed timer is due at `t`.
    package func isDue(at t: UInt64) -> Bool {
        timerOn.load(ordering: .acquiring) && t >= deadline.load(ordering: .acquiring)
    }

    /// fq_flush_timeout: disarm, flush the whole domain, release what every
    /// ring's flushed entries. The timer runs on `timerCPU`, so every
    /// released IOVA goes to that CPU's rcache. With `drain` (teardown,
    /// flushDMAQueues: a call, not the timer; beyond Linux), each ring's
    /// entries go back to its own CPU's rcache instead, and every entry
    /// queued before the call is released on return.
    package func timeout(drain: Bool = false) {
        deadline.store(.max, ordering: .relaxed)
        timerOn.store(false, ordering: .releasing)
        flush(drain: drain)
        let runner = timerCPU.load(ordering: .relaxed)
        for (cpu, ring) in rings.enumerated() {
            var covered: [FQEntry] = []
            ring.locked { r in takeLocked(&r, into: &covered) }
            releaseAll(covered, drain ? cpu : runner)
        }
    }

    /// Entries taken off a ring whose release has not finished: a drain
    /// waits for them (`quiesce`), so that a flush the timer thread took
    /// them for is over, counts and parked frees included, when it returns.
    private let inFlight = Atomic<Int>(0)

    /// fq_ring_free_locked's take, counted in flight before the ring's lock
    /// is dropped (so whoever next sees the ring empty sees them in flight).
    private func takeLocked(_ r: inout FQRing, into covered: inout [FQEntry]) {
        LockRank.flushQueue.assertHeld()
        let before = covered.count
        r.takeCovered(finish: finishCount.load(ordering: .sequentiallyConsistent), into: &covered)
        if covered.count > before { inFlight.add(covered.count - before, ordering: .relaxed) }
    }

    /// Releases what a take took. Counts as being inside a flush, so a drain
    /// a callback starts from here does not wait for itself.
    private func releaseAll(_ covered: [FQEntry], _ cpu: Int) {
        guard !covered.isEmpty else { return }
        svk_flush_depth_add(1)
        let t = now()
        for c in covered {
            window.record(t &- c.queuedAt)
            release(c, cpu)
        }
        svk_flush_depth_add(-1)
        inFlight.subtract(covered.count, ordering: .releasing)
    }

    /// Waits until no entry taken off a ring is still being released (by the
    /// timer thread or another CPU's full ring); not from inside a flush or
    /// a release, which could be the one waited for.
    package func quiesce() {
        guard svk_flush_depth() == 0 else { return }
        let me = UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque()))
        SchedulePoints.spinWhile(ScheduleObject.wait(me)) { inFlight.load(ordering: .acquiring) > 0 }
    }

    /// Entries still queued, over every ring.
    package var pendingEntries: Int { rings.reduce(0) { n, r in n + r.locked { $0.count } } }
}

/// A lock-free histogram of nanoseconds: log2 octaves, each split into 8
/// linear sub-buckets (values below 8 have a bucket each). Percentiles come
/// back as the bucket's upper bound, so they are conservative by at most
/// 12.5 %; the maximum is exact. Recording is a few atomic adds, no
/// allocation.
package final class WindowHistogram: @unchecked Sendable {
    // @unchecked: the buckets are atomics in memory this object owns.
    package static let bucketCount = 62 * 8
    private let buckets: UnsafeMutablePointer<Atomic<Int>> = {
        let p = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: WindowHistogram.bucketCount)
        for i in 0..<WindowHistogram.bucketCount { (p + i).initialize(to: Atomic(0)) }
        return p
    }()
    package let maximum = Atomic<UInt64>(0)
    package let count = Atomic<Int>(0)

    /// An empty histogram.
    package init() {}

    deinit {
        buckets.deinitialize(count: Self.bucketCount)
        buckets.deallocate()
    }

    /// The bucket of `v`: v itself below 8, else 8 per octave.
    package static func bucket(_ v: UInt64) -> Int {
        guard v >= 8 else { return Int(v) }
        let e = 63 - v.leadingZeroBitCount
        return (e - 2) * 8 + Int((v >> UInt64(e - 3)) & 7)
    }

    /// The largest value bucket `b` holds.
    package static func upperBound(_ b: Int) -> UInt64 {
        guard b >= 8 else { return UInt64(b) }
        let e = UInt64(b / 8 + 2), m = UInt64(b % 8)
        return ((9 + m) << (e - 3)) &- 1
    }

    package func record(_ ns: UInt64) {
        buckets[Self.bucket(ns)].add(1, ordering: .relaxed)
        count.add(1, ordering: .relaxed)
        var m = maximum.load(ordering: .relaxed)
        while ns > m {
            let (done, now) = maximum.compareExchange(expected: m, desired: ns, ordering: .relaxed)
            if done { break }
            m = now
        }
    }

    /// The upper bound of the bucket holding the percentile `permille`/1000,
    /// never above the maximum (integer arithmetic, no floating point).
    package func percentile(permille: Int) -> UInt64 {
        let n = count.load(ordering: .relaxed)
        guard n > 0 else { return 0 }
        let rank = (n * permille + 999) / 1000
        var seen = 0
        for b in 0..<Self.bucketCount {
            seen += buckets[b].load(ordering: .relaxed)
            if seen >= max(rank, 1) { return min(Self.upperBound(b), maximum.load(ordering: .relaxed)) }
        }
        return maximum.load(ordering: .relaxed)
    }
}
