// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `svakit dma-map-benchmark`: Linux's dma_map_benchmark (the kernel module
/// kernel/dma/map_benchmark.c and its user tool
/// tools/testing/selftests/dma/dma_map_benchmark.c; docs/BENCHMARKS.md,
/// "IOMMU_DEBUG_PAGEALLOC and dma_map_benchmark") on the engine's DMA API:
/// the same options, ranges and defaults, the same per-iteration order
/// (touch the buffer unless FROM_DEVICE, t0, dma_map, t1, ndelay, t2,
/// dma_unmap, t3), the same integer 100 ns quantisation with sums and sums
/// of squares added with relaxed atomics, and the same three output lines.
///
/// Beyond the kernel tool, and labelled so: most of the engine's latencies
/// are under 100 ns, where the kernel's arithmetic prints 0.0, so it also
/// reports the exact average in ns and per 4 KiB page; `--pages` maps
/// buffers past the tool's 1024 pages (the 1 GiB case); `--milliseconds`
/// runs for less than a second; `--policy` and `--sanitizer` choose the
/// domain's invalidation policy and the IOMMU_DEBUG_PAGEALLOC state.
struct DMAMapBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dma-map-benchmark",
        abstract: "Linux's dma_map_benchmark on the engine: map/unmap latency, 100 ns units as the kernel prints.")
    static let benchName = "dma-map-benchmark"

    // The kernel's limits (include/uapi/linux/map_benchmark.h, map_benchmark.c).
    static let threadsRange = 1...1024          // DMA_MAP_MAX_THREADS
    static let secondsRange = 1...300           // DMA_MAP_MAX_SECONDS
    static let xdelayRange = 0...10_000_000     // DMA_MAP_MAX_TRANS_DELAY (10 ms)
    static let bitsRange = 20...64
    static let dirRange = 0...2
    static let granuleRange = 1...1024
    // Beyond the kernel tool.
    static let millisecondsRange = 1...300_000
    /// Up to 4 GiB per buffer (1 GiB is 262,144 pages).
    static let pagesRange = 1...(1 << 20)
    /// All buffers together: 16 GiB of simulated memory at most.
    static let maxTotalPages = 1 << 22
    /// The kernel tool's names of the directions (`directions[]`).
    static let directionNames = ["BIDIRECTIONAL", "TO_DEVICE", "FROM_DEVICE"]

    /// The domain's invalidation policy (iommu.strict).
    enum Policy: String, CaseIterable, ExpressibleByArgument {
        case strict, lazy
    }

    /// The IOMMU_DEBUG_PAGEALLOC state of the run.
    enum Sanitizer: String, CaseIterable, ExpressibleByArgument {
        /// The key off (iommu.debug_pagealloc=0), or compiled out.
        case off
        /// Linux 7.0's algorithm.
        case linux
        /// The same checks, counts lowered inside the unmap's walk.
        case fast
        /// fast, and a lazily unmapped page counts until its flush is over.
        case window
    }

    @Option(name: [.customShort("t"), .customLong("threads")], parsing: .unconditional,
            help: "Threads, each on its own simulated CPU (\(range(threadsRange))).")
    var threads: Int = 1
    @Option(name: [.customShort("s"), .customLong("seconds")], parsing: .unconditional, help: "Seconds to run (\(range(secondsRange))).")
    var seconds: Int = 20
    @Option(name: [.customShort("n"), .customLong("node")], parsing: .unconditional,
            help: "NUMA node: -1 (NUMA_NO_NODE) or 0, the machine's one node (the module refuses a node that is not possible).")
    var node: Int = -1
    @Option(name: [.customShort("b"), .customLong("dma-bits")], parsing: .unconditional,
            help: "DMA mask bits (\(range(bitsRange))): the device's mask is DMA_BIT_MASK(bits) during the run, as the module sets it.")
    var dmaBits: Int = 32
    @Option(name: [.customShort("d"), .customLong("dir")], parsing: .unconditional,
            help: "Direction: 0 BIDIRECTIONAL, 1 TO_DEVICE, 2 FROM_DEVICE (no buffer touch).")
    var dir: Int = 0
    @Option(name: [.customShort("x"), .customLong("xdelay")], parsing: .unconditional,
            help: "ns spun between map and unmap, the device's transfer (\(range(xdelayRange))).")
    var xdelay: Int = 0
    @Option(name: [.customShort("g"), .customLong("granule")], parsing: .unconditional,
            help: "Pages per buffer (\(range(granuleRange))).")
    var granule: Int = 1
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Beyond the kernel tool: pages per buffer, overriding -g, up to \(pagesRange.upperBound) (262144: 1 GiB). "
            + "Past 1024 the buffer is contiguous frames starting one page into a 4 MiB block, so the IOMMU "
            + "maps it with 4 KiB leaves. (default: -g's pages)", valueName: "pages"))
    var pages: Int?
    @Option(parsing: .unconditional, help: "Beyond the kernel tool: run this many ms instead of -s (\(range(millisecondsRange))). (default: -s's seconds)")
    var milliseconds: Int?
    @Option(help: "Beyond the kernel tool: the DMA domain's policy, strict (DMA) or lazy (DMA-FQ, flush timer on).")
    var policy: Policy = .strict
    @Option(help: ArgumentHelp(
        "Beyond the kernel tool: IOMMU_DEBUG_PAGEALLOC: off (key off, or compiled out), linux (Linux 7.0), "
            + "fast, window.", valueName: "state"))
    var sanitizer: Sanitizer = .off
    @Flag(help: "Print one JSON object {\"bench\", \"config\", \"metrics\"} instead of the kernel tool's lines.")
    var json = false

    /// Pages per buffer: --pages, else -g.
    var bufferPages: Int { pages ?? granule }

    /// How long the threads run, in ms.
    var durationMs: Int { milliseconds ?? seconds * 1000 }

    func validate() throws {
        try check(threads, in: Self.threadsRange, "-t/--threads")
        try check(seconds, in: Self.secondsRange, "-s/--seconds")
        guard node == -1 || node == 0 else {
            throw ValidationError("-n/--node must be -1 (NUMA_NO_NODE) or 0, the machine's one node (got \(node))")
        }
        try check(dmaBits, in: Self.bitsRange, "-b/--dma-bits")
        try check(dir, in: Self.dirRange, "-d/--dir")
        try check(xdelay, in: Self.xdelayRange, "-x/--xdelay")
        try check(granule, in: Self.granuleRange, "-g/--granule")
        if let pages { try check(pages, in: Self.pagesRange, "--pages") }
        if let milliseconds { try check(milliseconds, in: Self.millisecondsRange, "--milliseconds") }
        guard threads * Self.allocatedPages(bufferPages) <= Self.maxTotalPages else {
            throw ValidationError("-t/--threads x --pages must allocate at most \(Self.maxTotalPages) pages "
                                  + "(16 GiB) in all (got \(threads) x \(Self.allocatedPages(bufferPages)))")
        }
        if sanitizer != .off && !DMASanitizer.compiledIn {
            throw ValidationError("--sanitizer \(sanitizer.rawValue) needs IOMMU_DEBUG_PAGEALLOC compiled in "
                                  + "(this build has it compiled out: only --sanitizer off)")
        }
    }

    /// Frames a buffer of `pages` takes (MapBenchmark.allocatedPages).
    static func allocatedPages(_ pages: Int) -> Int { MapBenchmark.allocatedPages(pages) }

    struct Config: Encodable {
        var threads: Int
        var seconds: Int
        var durationMs: Int
        var node: Int
        var dmaBits: Int
        var dir: String
        var xdelayNs: Int
        var granule: Int
        var pages: Int
        var policy: String
        var sanitizer: String
        /// Whether IOMMU_DEBUG_PAGEALLOC is compiled into this build.
        var compiledIn: Bool
        var cpus: Int
    }

    var benchConfig: Config {
        Config(threads: threads, seconds: seconds, durationMs: durationMs, node: node, dmaBits: dmaBits,
               dir: Self.directionNames[dir], xdelayNs: xdelay, granule: granule, pages: bufferPages,
               policy: policy.rawValue, sanitizer: sanitizer.rawValue, compiledIn: DMASanitizer.compiledIn,
               cpus: min(threads, Self.maxCPUs))
    }

    /// The engine's limit on simulated CPUs; threads past it share CPUs.
    static let maxCPUs = 256

    func run() throws {
        let r = try measure()
        print(json ? try JSONOutput.report(report(r)) : text(r))
    }

    // MARK: - The kernel's arithmetic

    /// What a run measured (the library's MapBenchmark.Result: the
    /// module's sums and the exact ones, read through as `t.loops` etc.)
    /// and what the sanitizer counted during it, the buffers' frees
    /// included (warnings: 0 unless a bug).
    @dynamicMemberLookup
    struct Totals: Equatable {
        var run = MapBenchmark.Result()
        var sanitizer = DMASanitizer.Stats()

        subscript<T>(dynamicMember path: KeyPath<MapBenchmark.Result, T>) -> T { run[keyPath: path] }
    }

    /// What the kernel writes back (the library computes it as
    /// map_benchmark.c does: integer, in 100 ns units).
    struct KernelResult: Equatable {
        var avgMap100ns: UInt64, mapStddev: UInt64
        var avgUnmap100ns: UInt64, unmapStddev: UInt64

        init(_ t: Totals) {
            (avgMap100ns, mapStddev, avgUnmap100ns, unmapStddev) = t.run.kernelFigures
        }
    }

    /// int_sqrt64.
    static func isqrt(_ x: UInt64) -> UInt64 { MapBenchmark.intSqrt64(x) }

    /// The tool's "%.1f" of a 100 ns figure / 10.0.
    static func microseconds(_ v100ns: UInt64) -> String { formatFixed(Double(v100ns) / 10.0, digits: 1) }

    // MARK: - Output

    /// The kernel tool's three lines, then the figures beyond it.
    func text(_ t: Totals) -> String {
        let k = KernelResult(t)
        let n = Double(max(t.loops, 1)), p = Double(bufferPages)
        let mapNs = Double(t.sumMapNs) / n, unmapNs = Double(t.sumUnmapNs) / n
        var lines = [
            "dma mapping benchmark: threads:\(threads) seconds:\(durationMs / 1000) node:\(node) "
                + "dir:\(Self.directionNames[dir]) granule: \(bufferPages)",
            "average map latency(us):\(Self.microseconds(k.avgMap100ns)) "
                + "standard deviation:\(Self.microseconds(k.mapStddev))",
            "average unmap latency(us):\(Self.microseconds(k.avgUnmap100ns)) "
                + "standard deviation:\(Self.microseconds(k.unmapStddev))",
        ]
        let build = DMASanitizer.compiledIn ? "compiled in" : "compiled out"
        lines += [
            "beyond the kernel tool (SVAKit): \(t.loops) loops in \(formatFixed(Double(t.elapsedNs) / 1e6, digits: 1)) ms, "
                + "policy \(policy.rawValue), sanitizer \(sanitizer.rawValue) (IOMMU_DEBUG_PAGEALLOC \(build)), "
                + "\(t.sanitizer.warnings) sanitizer warnings (counts raised \(t.sanitizer.raised), "
                + "lowered \(t.sanitizer.lowered))",
            "beyond the kernel tool (SVAKit): average map latency(ns):\(formatFixed(mapNs, digits: 1)) "
                + "per 4K page:\(formatFixed(mapNs / p, digits: 2))",
            "beyond the kernel tool (SVAKit): average unmap latency(ns):\(formatFixed(unmapNs, digits: 1)) "
                + "per 4K page:\(formatFixed(unmapNs / p, digits: 2))",
        ]
        return lines.joined(separator: "\n")
    }

    /// The JSON report: the kernel's figures under their uapi names, then
    /// the exact ones.
    func report(_ t: Totals) -> BenchReport<Config> {
        let k = KernelResult(t)
        var m = Metrics()
        m.add("loops", count: Int(t.loops))
        m.add("avg_map_100ns", count: Int(k.avgMap100ns), "100ns")
        m.add("map_stddev", count: Int(k.mapStddev), "100ns")
        m.add("avg_unmap_100ns", count: Int(k.avgUnmap100ns), "100ns")
        m.add("unmap_stddev", count: Int(k.unmapStddev), "100ns")
        let n = Double(t.loops), p = Double(bufferPages)
        m.add("map_ns", Double(t.sumMapNs) / n, "ns")
        m.add("unmap_ns", Double(t.sumUnmapNs) / n, "ns")
        m.add("map_ns_per_4k_page", Double(t.sumMapNs) / n / p, "ns")
        m.add("unmap_ns_per_4k_page", Double(t.sumUnmapNs) / n / p, "ns")
        m.add("map_unmap_ns_per_4k_page", Double(t.sumMapNs + t.sumUnmapNs) / n / p, "ns")
        m.add("elapsed_ms", Double(t.elapsedNs) / 1e6, "ms")
        m.add("sanitizer_warnings", count: t.sanitizer.warnings)
        m.add("sanitizer_counts_raised", count: t.sanitizer.raised)
        m.add("sanitizer_counts_lowered", count: t.sanitizer.lowered)
        return BenchReport(bench: Self.benchName, config: benchConfig, metrics: m)
    }

    // MARK: - The run

    /// The machine: one IOMMU, one device on a default DMA domain of the
    /// chosen policy, enough frames for every buffer.
    func machine() throws -> (Machine, DeviceID) {
        let frames = max(1 << 18, (threads * Self.allocatedPages(bufferPages) + (1 << 16) + 1023) & ~1023)
        var cfg = MachineConfig(frames: frames, eventLogCapacity: 1 << 10, workMode: .thread)
        cfg.cpus = min(threads, Self.maxCPUs)
        cfg.dmaStrict = policy == .strict
        try DMASanitizer.configure(&cfg, sanitizer)
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU(IOMMUConfig())
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        _ = try m.setupDMA(for: dev)
        return (m, dev)
    }

    /// Runs the library's map_benchmark (the ioctl) and adds what the
    /// sanitizer counted during it.
    func measure() throws -> Totals {
        let (m, dev) = try machine()
        let p = MapBenchmark.Parameters(
            threads: threads, durationNs: UInt64(durationMs) * 1_000_000, node: node, dmaBits: dmaBits,
            direction: DMADirection(rawValue: UInt32(dir))!, transNs: UInt64(xdelay), pages: bufferPages)
        let before = DMASanitizer.stats(m)
        let r: MapBenchmark.Result
        do {
            r = try MapBenchmark.run(m, device: dev, p)
        } catch {
            throw CLIError("dma-map-benchmark: the run failed: \(error)")
        }
        return Totals(run: r, sanitizer: DMASanitizer.stats(m) - before)
    }
}
