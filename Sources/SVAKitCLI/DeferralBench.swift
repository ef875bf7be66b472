// SPDX-License-Identifier: Apache-2.0
import SVAKit
import Synchronization

/// A storm of kernel-table frees (mode complete, the worker thread running):
/// frees per second, invalidations per freed frame, p50/p99 time from the
/// free to the frame's return to the allocator, peak pending frames; with
/// 0, 1 and 1,000 bound mms.
struct DeferralBench {
    let frees: Int

    /// Free-call timestamps by frame, and latencies, written by the free hook.
    final class Clock: @unchecked Sendable {
        // @unchecked: `freedAt` is written by the freeing thread before the
        // free call and read by the hook after the frame left the deferred
        // list, which the list lock orders; `latencies` only under its Mutex.
        let freedAt: UnsafeMutablePointer<UInt64>
        let latencies = Mutex<[UInt64]>([])
        init(frames: Int) {
            freedAt = .allocate(capacity: frames)
            freedAt.initialize(repeating: 0, count: frames)
        }
        deinit { freedAt.deallocate() }
    }

    func run() throws -> BenchResult {
        var metrics: [(String, Double, String)] = []
        for bound in [0, 1, 1000] {
            let cfg = MachineConfig(frames: 1 << 20, eventLogCapacity: 1 << 10, freeMode: .complete, workMode: .thread)
            let m = try Machine(cfg)
            let iommu = try m.addIOMMU()
            let dev = try m.addDevice(iommu: iommu.id)
            for _ in 0..<bound { _ = try m.bindSVA(device: dev, mm: try m.createAddressSpace()) }
            let clock = Clock(frames: cfg.frames)
            clock.latencies.withLock { $0.reserveCapacity(frees) }
            m.setTableFreeHook { pfn, _, _ in
                let t = clock.freedAt[pfn.index]
                if t != 0 { let d = nowNs() - t; clock.latencies.withLock { $0.append(d) } }
            }
            let chunk = 1000
            var busy: UInt64 = 0
            var done = 0
            while done < frees {
                let n = min(chunk, frees - done)
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
            let d = m.deferredStats
            var lat = clock.latencies.withLock { $0 }
            lat.sort()
            func pct(_ q: Double) -> Double { lat.isEmpty ? 0 : Double(lat[min(lat.count - 1, Int(Double(lat.count) * q))]) }
            let tag = "\(bound)mm"
            metrics += [
                ("frees_per_sec_\(tag)", Double(frees) / (Double(busy) / 1e9), "1/s"),
                ("gate_invalidations_per_freed_frame_\(tag)", Double(d.invalidations) / Double(frees), "1/frame"),
                ("iommu_commands_per_freed_frame_\(tag)", Double(iommu.counters.rangeInvalidations) / Double(frees), "1/frame"),
                ("batches_\(tag)", Double(d.batches), "count"),
                ("largest_batch_\(tag)", Double(d.largestBatch), "frames"),
                ("p50_free_to_allocator_ns_\(tag)", pct(0.5), "ns"),
                ("p99_free_to_allocator_ns_\(tag)", pct(0.99), "ns"),
                ("peak_pending_\(tag)", Double(d.peakPending), "frames"),
            ]
        }
        return BenchResult(name: "deferral", config: [("frees", .int(frees)), ("mode", .string("complete")),
                                                      ("work", .string("thread")), ("max_pending", .int(4096))],
                           metrics: metrics)
    }
}
