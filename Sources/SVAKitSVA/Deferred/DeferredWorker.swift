// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The background worker that runs the deferred-free work, with the
/// semantics of a work item on the system workqueue (kernel/workqueue.c):
/// `schedule()` sets the item pending only if it was not (a no-op
/// otherwise, so frees coalesce), the worker clears pending just before it
/// calls the work function (process_one_work's
/// set_work_pool_and_clear_pending), so a `schedule()` during a run queues
/// one more run, and one thread means the item never runs concurrently
/// with itself. `flush()` waits until every run requested before it has
/// finished (flush_work), `stop()` lets the pending run finish and joins.
///
/// Between the wake-up and clearing pending the worker waits the modelled
/// kworker scheduling latency (0 by default: the host's own wake-up of this
/// thread is the latency). With `DeferralSchedule/batched` (beyond Linux)
/// it then gathers a storm: it waits until `gather.target` frames are
/// pending or `gather.maxDelayNs` have passed, as the flush queue's timer
/// batches IOVAs; flush_work cuts that wait short.
///
/// A pthread mutex and condition variable, because the worker sleeps and
/// Synchronization has no condition variable; nothing here is on a hot path.
package final class DeferredWorker: @unchecked Sendable {
    // @unchecked: every mutable field below is read and written with
    // `mutex` held; `thread` only by start and stop.

    /// Beyond Linux: how the batched schedule gathers a storm.
    package struct Gather {
        /// Pending frames that end the wait (at least 2).
        package var target: Int
        /// The longest wait, in ns (more than 0).
        package var maxDelayNs: Int
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Protected by `mutex`: WORK_STRUCT_PENDING (schedule_work was called
    /// and the worker has not claimed the run yet).
    private var scheduled = false
    private var running = false
    private var stopping = false
    /// Runs requested and runs finished; flush waits for the second to catch up.
    private var requested: UInt64 = 0
    private var completed: UInt64 = 0
    /// Protected by `mutex`: a flush is waiting, so a batched run must not gather.
    private var urgent = 0
    private var thread = pthread_t()
    private var started = false
    private let work: () -> Void
    private let pending: () -> Int
    /// The modelled kworker scheduling latency, in ns.
    package let latencyNs: Int
    /// Beyond Linux: the batched schedule's gathering; nil for Linux's.
    package let gather: Gather?

    /// `work` runs on the worker thread; `pending` says how many frames wait
    /// (read only when gathering). Both must stay valid until `stop()`.
    /// `gather` nil is Linux's schedule.
    package init(latencyMicros: Int, gather: Gather?, pending: @escaping () -> Int, work: @escaping () -> Void) {
        self.work = work
        self.pending = pending
        latencyNs = max(0, latencyMicros) * 1000
        self.gather = gather
        pthread_mutex_init(mutex, nil)
        // Timed waits count on the monotonic clock.
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    package func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let worker = Unmanaged<DeferredWorker>.fromOpaque(arg!).takeRetainedValue()
            worker.loop()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        started = true
    }

    private func loop() {
        pthread_mutex_lock(mutex)
        while true {
            while !scheduled && !stopping { pthread_cond_wait(cond, mutex) }
            if !scheduled && stopping { break }
            waitLatency()
            if gather != nil { waitForBatch() }
            // process_one_work: clear PENDING, then call the function; a
            // schedule() from here on queues another run.
            scheduled = false
            running = true
            let target = requested
            pthread_mutex_unlock(mutex)
            work()
            pthread_mutex_lock(mutex)
            running = false
            completed = max(completed, target)
            pthread_cond_broadcast(cond)
        }
        pthread_mutex_unlock(mutex)
    }

    /// With `mutex` held: the modelled kworker scheduling latency. Only
    /// stopping cuts it short; schedule() and flush() do not hurry it.
    private func waitLatency() {
        guard latencyNs > 0 else { return }
        let end = monotonicNs() + latencyNs
        while !stopping {
            if monotonicNs() >= end { return }
            var until = timespec(tv_sec: end / 1_000_000_000, tv_nsec: end % 1_000_000_000)
            pthread_cond_timedwait(cond, mutex, &until)
        }
    }

    /// With `mutex` held, beyond Linux: waits, bounded, for the batch to
    /// fill. The pending count is read with the mutex dropped (it takes the
    /// list lock).
    private func waitForBatch() {
        guard let gather else { return }
        let end = monotonicNs() + gather.maxDelayNs
        while urgent == 0 && !stopping {
            pthread_mutex_unlock(mutex)
            let n = pending()
            pthread_mutex_lock(mutex)
            if n >= gather.target || urgent > 0 || stopping { return }
            let now = monotonicNs()
            if now >= end { return }
            // Sleep a slice of what is left; schedule() wakes us early when
            // the batch fills.
            let wake = min(end, now + 100_000)
            var until = timespec(tv_sec: wake / 1_000_000_000, tv_nsec: wake % 1_000_000_000)
            pthread_cond_timedwait(cond, mutex, &until)
        }
    }

    /// schedule_work(): sets the work pending and wakes the worker if it was
    /// not pending; returns false (and does nothing) if it was. With the
    /// batched schedule, a full batch (`pending` frames) also wakes a worker
    /// that is gathering.
    @discardableResult
    package func schedule(pending: Int = 0) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if !scheduled {
            scheduled = true
            requested += 1
            pthread_cond_broadcast(cond)
            return true
        }
        if let gather, !running, pending >= gather.target { pthread_cond_broadcast(cond) }
        return false
    }

    /// flush_work(): waits for every run requested so far (with the batched
    /// schedule, without the gathering delay).
    package func flush() {
        pthread_mutex_lock(mutex)
        urgent += 1
        pthread_cond_broadcast(cond)
        let target = requested
        while completed < target && !stopping { pthread_cond_wait(cond, mutex) }
        urgent -= 1
        pthread_mutex_unlock(mutex)
    }

    /// Finishes the pending run, if any (without the latency), and joins the thread.
    package func stop() {
        guard started else { return }
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        started = false
    }

    private func monotonicNs() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int(ts.tv_sec) * 1_000_000_000 + Int(ts.tv_nsec)
    }
}
