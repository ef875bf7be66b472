// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// Returning a machine to its state after boot (svakit_machine_reset): for
/// the fuzzer, which runs thousands of programs a second on one machine per
/// configuration, the schedule explorer and property tests.
extension Machine {
    /// Returns the machine to the state its `init` left it in, with the same
    /// configuration, in time proportional to what changed since: every
    /// frame written since boot gets its boot bytes back (zeros, or the boot
    /// image's copy of the few tables boot wrote), the descriptors the
    /// allocator handed out since and the ranges hotplug touched get theirs,
    /// and every layer drops what was created since: address spaces, the
    /// vmalloc area's ranges, IOMMUs, devices, bonds and PASIDs, DMA domains,
    /// the quarantine, the deferred list, reports, the events after boot's,
    /// the counters, fail_nth, the static key and every hook a caller
    /// installed. The C handle stays the same. Afterwards the machine is
    /// indistinguishable from a new one with the same configuration: each
    /// call returns what it would return there (`ResetTests`, and the
    /// fuzzer's differential replay, `SVAKIT_FUZZ_RESET_CHECK=1`).
    ///
    /// No other call may run on the machine meanwhile (as for `deinit`).
    /// Throws `SVAError/busy` in `WorkMode/thread`: the worker and timer
    /// threads call in at any time, so such a machine is never quiescent;
    /// reset needs `WorkMode/manual`.
    /// Returns the frames whose bytes were restored.
    @discardableResult
    public func reset() throws(SVAError) -> Int {
        guard config.workMode == .manual else { throw .busy }
        // The layers above the frames first: dropping their objects frees
        // only host memory, and nothing they hold may touch a frame after
        // the frames are restored.
        domains.resetToBoot()
        deferred.resetToBoot()
        sva.resetToBoot()
        core.resetToBoot()
        tables.resetToBoot()
        reportSink.resetToBoot()
        flushHook.locked { $0 = nil }
        windowHook.locked { $0 = nil }
        #if SVAKIT_SCHEDULE_POINTS
        explorerLinuxHotRemoveOrder.locked { $0 = false }
        #endif
        tlbFlushes.store(0, ordering: .relaxed)
        let restored = frames.resetToBoot()
        events.resetToBoot()
        return restored
    }

    /// Frames whose bytes changed since boot or the last reset: what the
    /// next `reset()` restores.
    public var framesWrittenSinceReset: Int { frames.memory.dirtyFrames }
}
