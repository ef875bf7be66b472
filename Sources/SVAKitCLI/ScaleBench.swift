// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Dispatch
import SVAKit
import SVAKitScenarios
import Synchronization

/// Walks on several CPUs at once: (1) one walker thread per IOMMU, one and
/// then two at the same time, each through its own IOMMU (full walks in
/// bursts, so the walk in memory is what runs); (2) one walker while another
/// thread runs a kernel-path storm (huge vmap over PTE tables, so every
/// iteration unlinks, flushes, defers and invalidates). Reports throughput
/// and the ratios the engine-layers issue asks for.
struct ScaleBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale", abstract: "Walkers on two CPUs, and a walker beside a kernel-path storm.")
    static let benchName = "scale"
    static let burst = 64
    static let translationsRange = burst...(1 << 40)
    static let stormRange = 1...60_000

    @Option(help: "Translations per walker and phase (\(range(translationsRange))).")
    var translations: Int = 2_000_000
    @Option(help: "How long the kernel-path storm runs, in ms (\(range(stormRange))).")
    var stormMs: Int = 200
    @OptionGroup var output: BenchOutput

    func validate() throws {
        try check(translations, in: Self.translationsRange, "--translations")
        try check(stormMs, in: Self.stormRange, "--storm-ms")
    }

    struct Config: Encodable {
        var translations: Int
        var caching = "none"
        var burst = ScaleBench.burst
        var stormMs: Int
    }

    var benchConfig: Config { Config(translations: translations, stormMs: stormMs) }

    /// A walker: its own IOMMU (caching off: every request walks), device,
    /// bound mm and 64 mapped pages.
    struct Walker: Sendable {
        let setup: SVASetup
        let vas: [UInt64]

        init(_ m: Machine) throws {
            setup = try SVASetup(m, iommu: IOMMUConfig(caching: .none))
            let base: UInt64 = 0x10_0000_0000
            vas = (0..<ScaleBench.burst).map { base + UInt64($0) << 12 }
            for va in vas { try m.map(va, to: 0x20_0000, prot: PageTableEntry.user, in: setup.mm) }
        }

        /// Translations per second over `count` requests in bursts of 64.
        func run(_ m: Machine, count: Int) -> Double {
            var out = [UInt64](repeating: 0, count: vas.count)
            let rounds = max(1, count / vas.count)
            let t0 = nowNs()
            vas.withUnsafeBufferPointer { v in
                out.withUnsafeMutableBufferPointer { o in
                    for _ in 0..<rounds {
                        let f = (try? m.translateForDevice(device: setup.device, pasid: setup.bond.pasid, vas: v, into: o)) ?? 1
                        precondition(f == 0, "a walk faulted")
                    }
                }
            }
            return Double(rounds * vas.count) / (Double(nowNs() - t0) / 1e9)
        }
    }

    func measure(_ progress: Progress) throws -> Metrics {
        progress.update("scale: one walker")
        let m = try Machine(MachineConfig(frames: 1 << 20, eventLogCapacity: 1 << 10, freeMode: .complete))
        let walkers = [try Walker(m), try Walker(m)]
        _ = walkers[0].run(m, count: translations / 4)  // warm up
        let one = walkers[0].run(m, count: translations)
        progress.update("scale: two walkers")
        let results = Mutex<(Double, Double, Int)>((0, 0, 0))
        let count = translations
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = walkers[i].run(m, count: count)
            results.withLock { if i == 0 { $0.0 = r } else { $0.1 = r } }
        }
        let two = results.withLock { $0.0 + $0.1 }

        // A storm on one thread while the other walks.
        progress.update("scale: a walker beside a storm")
        let stormNs = UInt64(stormMs) * 1_000_000
        let stormBase = m.layout.vmallocStart + (64 << 30)
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            if i == 0 {
                let r = walkers[0].run(m, count: count)
                results.withLock { $0.0 = r }
            } else {
                var n = 0
                let t0 = nowNs()
                while nowNs() - t0 < stormNs {
                    let va = stormBase + UInt64(n % 4096) << 21
                    try? m.map(va, to: 0x1000)
                    try? m.unmap(va)
                    try? m.vmapHuge(va, phys: 0x20_0000, size: .size2M)
                    try? m.vunmap(va, size: 2 << 20)
                    n += 1
                }
                results.withLock { $0.2 = n }
            }
        }
        let (storming, _, stormIterations) = results.withLock { $0 }
        m.flushDeferredWork()
        var metrics = Metrics()
        metrics.add("walks_per_sec_1_thread", one, "1/s")
        metrics.add("walks_per_sec_2_threads_2_iommus", two, "1/s")
        metrics.add("scaling_2_threads", two / one, "x")
        metrics.add("walks_per_sec_during_storm", storming, "1/s")
        metrics.add("slowdown_during_storm", one / storming, "x")
        metrics.add("storm_iterations", count: stormIterations)
        metrics.add("storm_tables_deferred", count: DeferredFigures(m).framesDeferred)
        return metrics
    }
}
