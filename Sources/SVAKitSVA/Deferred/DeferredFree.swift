// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// Layer 7: pagetable_free and the deferred freeing of kernel page-table
/// frames (mm/pgtable-generic.c, docs/KERNEL-MODEL.md §2.3-2.6):
/// pagetable_free_kernel() queues on the ptdesc's own list link and
/// schedules the work, and the work takes the whole list, invalidates every
/// IOMMU that may walk the kernel half once through the static-key gate,
/// then frees the batch. Under `DeferralSchedule/linux` that is all the
/// freeing caller does; `DeferralSchedule/batched` (beyond Linux) adds the
/// `maxPending` bound. Depends on the SVA registry (the gate) and the frame
/// memory below it.
package final class DeferredFree: @unchecked Sendable {
    // @unchecked: `worker` is set once, before the machine is shared.

    package let frames: FrameMemory
    package let sva: SVARegistry
    package let mode: FreeMode
    /// PAGE_OFFSET: where the work's invalidation starts.
    package let rangeStart: UInt64
    /// When the work runs: Linux's schedule, or batched (beyond Linux).
    package let schedule: DeferralSchedule
    /// Batched only (beyond Linux): queued frames past which the freeing
    /// caller runs the work itself.
    package let maxPending: Int

    /// The list lock (kernel_pgtable_work.lock): the list head and count,
    /// the `pt_list_next` link of every queued frame, and the figures.
    package let workList: RankedMutex<DeferredList>

    /// The worker thread (nil in manual mode).
    package private(set) var worker: DeferredWorker?

    #if SVAKIT_SCHEDULE_POINTS
    /// The explorer's negative control: the work broken on purpose. Set
    /// before any actor runs.
    package var brokenFix: BrokenFix?
    #endif

    package init(frames: FrameMemory, sva: SVARegistry, mode: FreeMode, rangeStart: UInt64,
         schedule: DeferralSchedule, maxPending: Int) {
        self.frames = frames
        self.sva = sva
        self.mode = mode
        self.rangeStart = rangeStart
        self.schedule = schedule
        self.maxPending = maxPending
        workList = RankedMutex(.deferred, DeferredList())
    }

    /// Starts the worker; it holds this object unretained, and `stop()`
    /// joins it before this object can go. `batchTarget` and
    /// `maxDelayMicros` are the batched schedule's (beyond Linux).
    package func startWorker(latencyMicros: Int, batchTarget: Int, maxDelayMicros: Int) {
        let me = Unmanaged.passUnretained(self)
        var gather: DeferredWorker.Gather?
        if schedule == .batched, batchTarget > 1, maxDelayMicros > 0 {
            gather = DeferredWorker.Gather(target: batchTarget, maxDelayNs: maxDelayMicros * 1000)
        }
        let w = DeferredWorker(latencyMicros: latencyMicros, gather: gather,
                               pending: { me._withUnsafeGuaranteedRef { $0.pending } },
                               work: { me._withUnsafeGuaranteedRef { $0.runWork() } })
        worker = w
        w.start()
    }

    /// Stops the worker and frees whatever is left (still behind one
    /// invalidation per batch).
    package func shutdown() {
        worker?.stop()
        while pending > 0 { runWork() }
    }

    /// Back to boot (Machine.reset, quiescent, manual mode): nothing
    /// queued, the figures zero (the queued frames' descriptors are the
    /// frame memory's to restore), no broken fix.
    package func resetToBoot() {
        workList.locked { $0 = DeferredList() }
        #if SVAKIT_SCHEDULE_POINTS
        brokenFix = nil
        #endif
    }

    // MARK: - pagetable_free

    /// pagetable_free(): the one release path for page-table frames. Every
    /// table in the batch has been unlinked (the type says so) and the
    /// caller has flushed the CPU TLB. Tables the fidelity mode defers go to
    /// pagetable_free_kernel; the rest to __pagetable_free at once. Called
    /// with no engine lock held.
    package func pagetableFree(_ batch: consuming DetachedTables, site: Site) {
        var queued = 0
        for t in batch.release() {
            if defers(t.pfn) {
                pagetableFreeKernel(t.pfn, site: site)
                queued += 1
                // Linux frees table by table, and each pagetable_free_kernel
                // ends in schedule_work (5ba2f0a15564).
                if schedule == .linux { scheduleWork() }
            } else {
                __pagetableFree(t.pfn, site: site)
            }
        }
        if queued > 0, schedule == .batched { scheduleWork() }
    }

    /// Whether pagetable_free sends this table to the list under the
    /// machine's fidelity mode (docs/KERNEL-MODEL.md §2.2-2.3, §2.7).
    private func defers(_ p: PFN) -> Bool {
        switch mode {
        case .immediate: false
        // ptdesc_test_kernel(); boot-time tables go free_reserved_pages.
        case .linux619: frames.memory.flags(p).contains(.kernel)
        case .complete: frames.memory.kind(p) == FrameKind.kernelTable.rawValue
        }
    }

    /// pagetable_free_kernel(): list_add on the dedicated link, O(1) under
    /// the list lock.
    private func pagetableFreeKernel(_ p: PFN, site: Site) {
        let memory = frames.memory
        // The descriptor is read for the log before the lock is dropped: the
        // moment it is, the work may splice and free the frame.
        let desc = workList.locked { l in
            memory[p].pt_list_next = l.head.rawValue
            memory.insertFlags(p, .deferred)
            memory.removeFlags(p, .kernel)  // ptdesc_clear_kernel, as pagetable_free does
            l.head = p
            l.count += 1
            l.framesDeferred += 1
            l.peakPending = max(l.peakPending, l.count)
            return memory.snapshot(p)
        }
        frames.events.record(.deferQueue, site: site, pfn: p, desc: desc)
    }

    /// __pagetable_free(): back to the allocator.
    private func __pagetableFree(_ p: PFN, site: Site) {
        frames.free(p, site: site)
    }

    /// schedule_work(). Linux's schedule has no bound: whatever the list
    /// holds, the freeing caller only sets the work pending (manual mode:
    /// not even that; the test's caller is the kworker). Beyond Linux, the
    /// batched schedule runs the work right here when the list is past
    /// `maxPending`.
    private func scheduleWork() {
        switch schedule {
        case .linux:
            if !spawnKworker() { worker?.schedule() }
        case .batched:
            let n = pending
            if n > maxPending {
                runWork()
            } else if !spawnKworker() {
                worker?.schedule(pending: n)
            }
        }
    }

    /// Manual mode under the schedule explorer: schedule_work starts a
    /// kworker actor that runs the work once, at any later point the
    /// explorer chooses. False anywhere else.
    private func spawnKworker() -> Bool {
        guard worker == nil, SchedulePoints.onActor else { return false }
        let me = Unmanaged.passUnretained(self)
        return SchedulePoints.spawn("kworker") { me._withUnsafeGuaranteedRef { $0.runWork() } }
    }

    // MARK: - The primitives' entry (C harnesses with their own arch code)

    /// svakit_pagetable_free_kernel on a frame the caller unlinked.
    package func pagetableFreeKernel(claimed batch: consuming DetachedTables) throws(SVAError) {
        let tables = batch.release()
        let p = tables[0].pfn
        guard frames.memory.kind(p) == FrameKind.kernelTable.rawValue else { throw .wrongAPI }
        if mode == .immediate {
            __pagetableFree(p, site: .arch)
            return
        }
        pagetableFreeKernel(p, site: .arch)
        scheduleWork()
    }

    // MARK: - kernel_pgtable_work_func

    /// Takes the whole list under the lock, drops the lock, makes one gated
    /// invalidation over the whole kernel range (PAGE_OFFSET .. TLB_FLUSH_ALL;
    /// the slow path fences), then frees every frame. One invalidation per
    /// batch, whatever its size.
    package func runWork() {
        let (head, count) = workList.locked { l in l.splice() }
        guard count > 0 else { return }
        frames.events.record(.deferBatch, site: .pgtableWork, pfn: head, aux: UInt64(count))
        // The gate, as Swift calls it: the key's load, then the slow path
        // directly. It says whether it invalidated anything.
        let fence = !isBroken(.workWithoutFence), freeFirst = isBroken(.freeBeforeInvalidation)
        var invalidated = false
        if !freeFirst {
            invalidated = sva.keyIsOn && invalidateAll(fence: fence)
            if invalidated {
                frames.events.record(.kvaInvalidate, site: .pgtableWork, va: rangeStart, aux: .max)
            }
        }
        let memory = frames.memory
        var p = head
        var freed = 0
        while p != .none {
            let next = PFN(memory[p].pt_list_next)
            memory[p].pt_list_next = PFN.none.rawValue
            __pagetableFree(p, site: .pgtableWork)
            freed += 1
            p = next
        }
        if freeFirst {
            invalidated = sva.keyIsOn && invalidateAll(fence: fence)
        }
        workList.locked { l in
            l.freed += freed
            if invalidated { l.invalidations += 1 }
        }
    }

    /// flush_work(): returns when everything queued before the call is freed.
    /// The gate's slow path over the whole kernel range, with or without
    /// its fence (without: only the explorer's broken fix).
    private func invalidateAll(fence: Bool) -> Bool {
        #if SVAKIT_SCHEDULE_POINTS
        if !fence { return sva.invalidateKernelRangeWithoutFence(rangeStart, .max) }
        #endif
        return sva.invalidateKernelRange(rangeStart, .max)
    }

    /// Whether the explorer broke the work this way (never, outside
    /// builds with the schedule points).
    private func isBroken(_ fix: BrokenFix) -> Bool {
        #if SVAKIT_SCHEDULE_POINTS
        brokenFix == fix
        #else
        false
        #endif
    }

    package func flushWork() {
        worker?.flush()
        // Manual mode, or frames queued while the worker's last run was
        // already past its splice: run what is left here.
        while pending > 0 { runWork() }
    }

    package var pending: Int { workList.locked { $0.count } }

    package var stats: DeferredStats {
        workList.locked { l in
            DeferredStats(pending: l.count, framesDeferred: l.framesDeferred, batches: l.batches,
                          largestBatch: l.largestBatch, peakPending: l.peakPending, invalidations: l.invalidations)
        }
    }

    /// The frames on the list now, for the conservation check.
    package func queuedFrames() -> [PFN] {
        let memory = frames.memory
        return workList.locked { l in
            var out: [PFN] = []
            var p = l.head
            while p != .none, out.count <= l.count {
                out.append(p)
                p = PFN(memory[p].pt_list_next)
            }
            return out
        }
    }

    /// (entered, left, pending): every frame that entered the list left it
    /// once, to the allocator, or is still on it.
    package var throughput: (entered: Int, left: Int, pending: Int) {
        workList.locked { l in (l.framesDeferred, l.freed, l.count) }
    }
}

/// The deferred list (kernel_pgtable_work in mm/pgtable-generic.c). Frames
/// are linked through `ptdesc.pt_list_next`, never through the allocator's
/// `lru` link (Jason Gunthorpe's review point, docs/KERNEL-MODEL.md §2.8).
package struct DeferredList {
    package var head: PFN = .none
    package var count = 0
    // Figures.
    package var framesDeferred = 0
    /// Frames the work handed to the allocator.
    package var freed = 0
    package var batches = 0
    package var largestBatch = 0
    package var peakPending = 0
    /// Gated invalidations the work issued (the key was on).
    package var invalidations = 0

    /// list_splice_tail_init onto the work's own list.
    package mutating func splice() -> (head: PFN, count: Int) {
        let taken = (head, count)
        guard count > 0 else { return taken }
        head = .none
        count = 0
        batches += 1
        largestBatch = max(largestBatch, taken.1)
        return taken
    }
}

/// Figures of the deferred freeing (svakit_deferred_stats).
public struct DeferredStats: Sendable, Equatable {
    /// Frames on the deferred list now.
    public var pending: Int
    /// Frames ever queued by `pagetable_free_kernel`.
    public var framesDeferred: Int
    /// Non-empty lists the work took, each freed behind one invalidation.
    public var batches: Int
    /// The most frames one batch held.
    public var largestBatch: Int
    /// The most frames the list ever held at once.
    public var peakPending: Int
    /// Calls of the gate's slow path that the work made (one per batch
    /// while an mm has SVA).
    public var invalidations: Int
}
