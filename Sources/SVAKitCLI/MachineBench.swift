// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit

/// Machine creation, reset and destruction (issue 22's targets: the default
/// machine created in <= 1 ms; a reset in time proportional to what was
/// touched since boot).
struct MachineBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "machine", abstract: "Machine creation, reset and destruction.")
    static let benchName = "machine"
    static let roundsRange = 1...1_000_000
    static let pagesRange = 0...(1 << 20)

    @Option(help: "Machines created, and resets, per measurement (\(range(roundsRange))).") var rounds: Int = 200
    @Option(help: "Frames of each machine (the default machine's: 16 GiB).") var frames: Int = MachineConfig().frames
    @Option(help: "4 KiB pages vmalloc'ed between two resets (\(range(pagesRange))).") var pages: Int = 16
    @OptionGroup var output: BenchOutput

    func validate() throws {
        try check(rounds, in: Self.roundsRange, "--rounds")
        try check(pages, in: Self.pagesRange, "--pages")
        try check(frames, in: 1...(1 << 32), "--frames")
    }

    struct Config: Encodable { var rounds: Int, frames: Int, pages: Int }
    var benchConfig: Config { Config(rounds: rounds, frames: frames, pages: pages) }

    func measure(_ progress: Progress) throws -> Metrics {
        var config = MachineConfig(frames: frames)
        config.workMode = .manual  // reset needs a quiescent machine
        progress.update("machine: create and destroy")
        var create: UInt64 = 0, destroy: UInt64 = 0
        for _ in 0..<rounds {
            let t0 = nowNs()
            var m: Machine? = try Machine(config)
            let t1 = nowNs()
            blackHole(m)
            m = nil
            destroy += nowNs() - t1
            create += t1 - t0
        }
        let threaded = MachineConfig(frames: frames)  // the default: the worker thread
        let t2 = nowNs()
        for _ in 0..<rounds { blackHole(try Machine(threaded)) }
        let threadedNs = Double(nowNs() - t2) / Double(rounds)

        progress.update("machine: reset")
        let m = try Machine(config)
        let resident = m.residentBytes
        let idle = nowNs()
        for _ in 0..<rounds { try m.reset() }
        let idleNs = Double(nowNs() - idle) / Double(rounds)
        var restored = 0, used: UInt64 = 0
        let size = UInt64(max(pages, 1)) << 12
        for _ in 0..<rounds {
            if pages > 0 { _ = try m.vmalloc(size) }
            let t = nowNs()
            restored += try m.reset()
            used += nowNs() - t
        }
        var metrics = Metrics()
        metrics.add("create_us", Double(create) / Double(rounds) / 1e3, "us")
        metrics.add("destroy_us", Double(destroy) / Double(rounds) / 1e3, "us")
        metrics.add("create_and_destroy_with_worker_thread_us", threadedNs / 1e3, "us")
        metrics.add("host_bytes_resident_after_boot", count: resident)
        metrics.add("reset_untouched_us", idleNs / 1e3, "us")
        metrics.add("reset_after_work_us", Double(used) / Double(rounds) / 1e3, "us")
        metrics.add("frames_restored_per_reset", count: restored / rounds)
        return metrics
    }
}
