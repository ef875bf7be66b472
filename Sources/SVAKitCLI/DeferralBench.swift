// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Histogram
import SVAKit
import Synchronization

/// A storm of kernel-table frees (mode complete, the worker thread running
/// under the chosen deferral schedule): frees per second, frames per
/// invalidation, p50/p99 time from the free to the frame's return to the
/// allocator (an HDR histogram, 3 significant digits), peak pending frames;
/// with 0, 1 and 1,000 bound mms.
struct DeferralBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "deferral", abstract: "A storm of kernel page-table frees through the deferred work.")
    static let benchName = "deferral"
    static let freesRange = 1...(1 << 32)
    static let latencyRange = 0...1_000_000
    static let boundMMs = [0, 1, 1000]
    static let maxPending = 4096
    /// Freshly allocated PTE tables freed per chunk.
    static let chunk = 1000

    @Option(help: "Kernel-table frees in the storm (\(range(freesRange))).") var frees: Int = 100_000
    @Option(help: deferralScheduleHelp) var deferralSchedule: DeferralSchedule = .linux
    @Option(help: "The modelled kworker scheduling latency in µs (\(range(latencyRange))); 0: the host's own wake-up of the worker thread.")
    var kworkerLatencyUs: Int = 0
    @OptionGroup var output: BenchOutput

    func validate() throws {
        try check(frees, in: Self.freesRange, "--frees")
        try check(kworkerLatencyUs, in: Self.latencyRange, "--kworker-latency-us")
    }

    struct Config: Encodable {
        var frees: Int
        var mode = "complete"
        var work = "thread"
        /// "linux" or "batched" (beyond Linux).
        var deferralSchedule: String
        var kworkerLatencyUs: Int
        /// The batched schedule's (beyond Linux); nil under Linux's, which has none.
        var maxPending: Int?
        var batchTarget: Int?
        var maxDelayUs: Int?
    }

    var benchConfig: Config {
        let batched = deferralSchedule == .batched
        let d = MachineConfig()
        return Config(frees: frees, deferralSchedule: deferralSchedule.description, kworkerLatencyUs: kworkerLatencyUs,
                      maxPending: batched ? Self.maxPending : nil, batchTarget: batched ? d.deferBatchTarget : nil,
                      maxDelayUs: batched ? d.deferMaxDelayMicros : nil)
    }

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
            var cfg = MachineConfig(frames: 1 << 20, eventLogCapacity: 1 << 10, freeMode: .complete,
                                    workMode: .thread, maxPending: Self.maxPending)
            cfg.deferralSchedule = deferralSchedule
            cfg.kworkerLatencyMicros = kworkerLatencyUs
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
            metrics.add("frames_per_invalidation_\(tag)", Double(frees) / Double(d.invalidations), "frames")
            metrics.add("frames_per_batch_\(tag)", Double(frees) / Double(d.batches), "frames")
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
