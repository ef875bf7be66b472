// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The timers of the DMA layer in thread mode: a thread that wakes every
/// millisecond and runs what is due (each DMA-FQ domain's fq_flush_timeout,
/// each IOVA depot's reclaim). A 1 ms tick against a 10 ms timeout: a flush
/// is at most one tick late, which the window figures include.
package final class FlushTimer: @unchecked Sendable {
    // @unchecked: `stopping` is atomic; `thread` is written by start/stop.
    private var thread = pthread_t()
    private let stopping = Atomic<Bool>(false)
    private let tick: () -> Void

    package init(tick: @escaping () -> Void) { self.tick = tick }

    package func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let t = Unmanaged<FlushTimer>.fromOpaque(arg!).takeRetainedValue()
            t.loop()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    private func loop() {
        var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        while !stopping.load(ordering: .acquiring) {
            tick()
            nanosleep(&ts, nil)
        }
    }

    /// Lets the current tick finish and joins the thread.
    package func stop() {
        stopping.store(true, ordering: .releasing)
        pthread_join(thread, nil)
    }
}
