// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// The background worker that runs the deferred-free work, with the
/// semantics of a work item on the system workqueue: `schedule()` on a
/// pending item is a no-op (frees coalesce into one batch), `flush()` waits
/// until every run requested before it has finished (flush_work), `stop()`
/// lets the current run finish and joins the thread.
///
/// A storm coalesces: once scheduled, the worker waits until `batchTarget`
/// frames are pending or `maxDelayMicros` have passed, as the flush queue's
/// timer batches IOVAs, so a burst of frees costs one invalidation per
/// batch of hundreds rather than per handful. flush_work cuts the wait short.
///
/// A pthread mutex and condition variable, because the worker sleeps and
/// Synchronization has no condition variable; nothing here is on a hot path.
final class DeferredWorker: @unchecked Sendable {
    // @unchecked: every mutable field below is read and written with
    // `mutex` held; `thread` only by start and stop.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Protected by `mutex`: a run is pending (schedule_work was called).
    private var scheduled = false
    private var running = false
    private var stopping = false
    /// Runs requested and runs finished; flush waits for the second to catch up.
    private var requested: UInt64 = 0
    private var completed: UInt64 = 0
    /// Protected by `mutex`: a flush is waiting, so the run must not wait.
    private var urgent = 0
    private var thread = pthread_t()
    private var started = false
    private let work: () -> Void
    private let pending: () -> Int
    private let batchTarget: Int
    private let maxDelayNs: Int

    /// `work` runs on the worker thread; `pending` says how many frames wait.
    /// Both must stay valid until `stop()`.
    init(batchTarget: Int, maxDelayMicros: Int, pending: @escaping () -> Int, work: @escaping () -> Void) {
        self.work = work
        self.pending = pending
        self.batchTarget = max(1, batchTarget)
        maxDelayNs = max(0, maxDelayMicros) * 1000
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

    func start() {
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
            gather()
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

    /// With `mutex` held: waits, bounded, for the batch to fill. The
    /// pending count is read with the mutex dropped (it takes the list lock).
    private func gather() {
        guard maxDelayNs > 0, batchTarget > 1 else { return }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let end = Int(deadline.tv_sec) * 1_000_000_000 + Int(deadline.tv_nsec) + maxDelayNs
        while urgent == 0 && !stopping {
            pthread_mutex_unlock(mutex)
            let n = pending()
            pthread_mutex_lock(mutex)
            if n >= batchTarget || urgent > 0 || stopping { return }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = end - (Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec))
            if left <= 0 { return }
            // Sleep a slice of what is left; schedule() wakes us early when
            // the batch fills.
            var until = timespec(tv_sec: (end - left + min(left, 100_000)) / 1_000_000_000,
                                 tv_nsec: (end - left + min(left, 100_000)) % 1_000_000_000)
            pthread_cond_timedwait(cond, mutex, &until)
        }
    }

    /// schedule_work(): a no-op while a run is already pending, except that
    /// a full batch wakes a worker that is gathering.
    func schedule(pending: Int) {
        pthread_mutex_lock(mutex)
        if !scheduled {
            scheduled = true
            requested += 1
            pthread_cond_broadcast(cond)
        } else if !running && pending >= batchTarget {
            pthread_cond_broadcast(cond)
        }
        pthread_mutex_unlock(mutex)
    }

    /// flush_work(): waits for every run requested so far, without the
    /// gathering delay.
    func flush() {
        pthread_mutex_lock(mutex)
        urgent += 1
        pthread_cond_broadcast(cond)
        let target = requested
        while completed < target && !stopping { pthread_cond_wait(cond, mutex) }
        urgent -= 1
        pthread_mutex_unlock(mutex)
    }

    /// Finishes the pending run, if any, and joins the thread.
    func stop() {
        guard started else { return }
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        started = false
    }
}
