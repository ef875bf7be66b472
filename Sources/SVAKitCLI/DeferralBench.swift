// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Histogram
import SVAKit
import Synchronization

/// A storm of kernel-table frees (mode complete, the worker thread running):
/// frees per second, invalidations per freed frame, p50/p99 time from the
/// free to the frame's return to the allocator (an HDR histogram, 3
/// significant digits), peak pending frames; with 0, 1 and 1,000 bound mms.
struct DeferralBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "deferral", abstract: "A storm of kernel page-table frees through the deferred work.")
    static let benchName = "deferral"
    static let freesRange = 1...(1 << 32)
    static let boundMMs = [0, 1, 1000]
    static let maxPending = 4096
    /// Freshly allocated PTE tables freed per chunk.
    static let chunk = 1000

    @Option(help: "Kernel-table frees in the storm (\(range(freesRange))).") var frees: Int = 100_000
    @OptionGroup var output: BenchOutput

    func validate() throws { try check(frees, in: Self.freesRange, "--frees") }

    struct Config: Encodable {
        var frees: Int
        var mode = "complete"
        var work = "thread"
        var maxPending = DeferralBench.maxPending
    }

    var benchConfig: Config { Config(frees: frees) }

    /// Free-call timestamps by frame, and latencies, written by the free hook.
    final class Clock: @unchecked Sendable {
        // @unchecked: `freedAt` is written by the freeing thread before the
        // free call and read by the hook after the frame left the deferred
        // list, which the list lock orders; `latencies` only under its Mutex.
        let freedAt: UnsafeMutablePointer<UInt64>
        /// Nanoseconds from 1 ns to a minute.
        let latencies = Mutex(Histogram<UInt64>(highestTrackableValue: 60_000_000_000,
                                                numberOfSignificantValueDigits: .three))
        init(frames: Int) {
            freedAt = .allocate(capacity: frames)
            freedAt.initialize(repeating: 0, count: frames)
        }
        deinit { freedAt.deallocate() }
    }

    func measure(_ progress: Progress) throws -> Metrics {
        var metrics = Metrics()
        for bound in Self.boundMMs {
            let cfg = MachineConfig(frames: 1 << 20, eventLogCapacity: 1 << 10, freeMode: .complete,
                                    workMode: .thread, maxPending: Self.maxPending)
            let m = try Machine(cfg)
            let iommu = try m.addIOMMU()
            let dev = try m.addDevice(iommu: iommu.id)
            for _ in 0..<bound { _ = try m.bindSVA(device: dev, mm: try m.createAddressSpace()) }
            let clock = Clock(frames: cfg.frames)
            m.setTableFreeHook { pfn, _, _ in
                let t = clock.freedAt[pfn.index]
                if t != 0 { let d = nowNs() - t; clock.latencies.withLock { _ = $0.record(d) } }
            }
            var busy: UInt64 = 0
            var done = 0
            while done < frees {
                progress.update("deferral: \(bound) bound mm(s), \(done) of \(frees) frees")
                let n = min(Self.chunk, frees - done)
                let tables = try (0..<n).map { _ in try m.allocKernelTable(level: 1).pfn }
                let t0 = nowNs()
                for p in tables {
                    clock.freedAt[p.index] = nowNs()
                    try m.pagetableFree(p)
                }
                busy += nowNs() - t0
                done += n
            }
            m.flushDeferredWork()
            m.setTableFreeHook(nil)
            let d = DeferredFigures(m)
            let lat = clock.latencies.withLock { $0 }
            func pct(_ p: Double) -> Int { lat.totalCount == 0 ? 0 : Int(lat.valueAtPercentile(p)) }
            let tag = "\(bound)mm"
            metrics.add("frees_per_sec_\(tag)", Double(frees) / (Double(busy) / 1e9), "1/s")
            metrics.add("gate_invalidations_per_freed_frame_\(tag)", Double(d.invalidations) / Double(frees), "1/frame")
            metrics.add("iommu_commands_per_freed_frame_\(tag)", Double(iommu.rangeCommandsReceived) / Double(frees), "1/frame")
            metrics.add("batches_\(tag)", count: d.batches)
            metrics.add("largest_batch_\(tag)", count: d.largestBatch, "frames")
            metrics.add("p50_free_to_allocator_ns_\(tag)", count: pct(50), "ns")
            metrics.add("p99_free_to_allocator_ns_\(tag)", count: pct(99), "ns")
            metrics.add("max_free_to_allocator_ns_\(tag)", count: lat.totalCount == 0 ? 0 : Int(lat.max), "ns")
            metrics.add("peak_pending_\(tag)", count: d.peakPending, "frames")
        }
        return metrics
    }
}
