// SPDX-License-Identifier: Apache-2.0
import CSVAKit

/// Deferred freeing of kernel page-table frames (kernel-notes §2.3-2.6):
/// pagetable_free_kernel() queues, the work invalidates the IOMMUs once per
/// batch through the static-key gate, then frees the whole batch.
extension Machine {
    /// kernel_pgtable_work_func: take the whole list under the lock, drop
    /// the lock, one gated invalidation over the whole kernel range
    /// (PAGE_OFFSET .. TLB_FLUSH_ALL; the slow path fences), then free every
    /// frame. One invalidation per batch, whatever its size.
    public func runDeferredWork() {
        let (head, count) = core.locked { $0.spliceDeferred() }
        guard count > 0 else { return }
        let before = kvaSlowCalls.load(ordering: .relaxed)
        invalidateKernelRange(layout.directMapBase, .max)
        let invalidated = kvaSlowCalls.load(ordering: .relaxed) != before
        core.locked { c in
            if invalidated {
                c.deferred.invalidations += 1
                c.events.record(.kvaInvalidate, site: .pgtableWork, va: layout.directMapBase, aux: .max)
            }
            c.freeDeferred(head)
        }
    }

    /// flush_work(): returns when everything queued before the call is freed.
    public func flushDeferredWork() {
        if let worker = deferredWorker { worker.flush() }
        // Manual mode, or frames queued while the worker's last run was
        // already past its splice: run what is left here.
        while core.locked({ $0.deferredPending }) > 0 { runDeferredWork() }
    }

    public var deferredStats: DeferredStats {
        core.locked { c in
            DeferredStats(pending: c.deferred.count, framesDeferred: c.deferred.framesDeferred,
                          batches: c.deferred.batches, largestBatch: c.deferred.largestBatch,
                          peakPending: c.deferred.peakPending, invalidations: c.deferred.invalidations)
        }
    }

    /// After a path queued frames, with no lock held: schedule the work, or
    /// run it here when the list is past its bound.
    func deferredQueued(_ queued: Int) {
        guard queued > 0 else { return }
        if core.locked({ $0.deferredPending }) > config.maxPending {
            runDeferredWork()
        } else {
            deferredWorker?.schedule()
        }
    }
}
