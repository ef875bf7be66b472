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
    private var thread = pthread_t()
    private var started = false
    private let work: () -> Void

    /// `work` runs on the worker thread; it must stay valid until `stop()`.
    init(work: @escaping () -> Void) {
        self.work = work
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
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

    /// schedule_work(): a no-op while a run is already pending.
    func schedule() {
        pthread_mutex_lock(mutex)
        if !scheduled {
            scheduled = true
            requested += 1
            pthread_cond_broadcast(cond)
        }
        pthread_mutex_unlock(mutex)
    }

    /// flush_work(): waits for every run requested so far.
    func flush() {
        pthread_mutex_lock(mutex)
        let target = requested
        while completed < target && !stopping { pthread_cond_wait(cond, mutex) }
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
