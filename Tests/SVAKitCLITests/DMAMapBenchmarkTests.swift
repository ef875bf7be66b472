// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import FoundationEssentials
import Testing
@testable import SVAKitCLI

/// `svakit dma-map-benchmark`: the kernel tool's options and ranges, its
/// arithmetic and its output lines, and the JSON's keys. No timing is
/// asserted: runs are a few ms, and only counts and relations between
/// figures that hold at any speed are checked.
@Suite struct DMAMapBenchmarkTests {
    func failure(_ args: [String]) -> (message: String, code: Int32)? {
        do {
            _ = try SVAKitCommand.parseAsRoot(["dma-map-benchmark"] + args)
            return nil
        } catch {
            return (SVAKitCommand.message(for: error), SVAKitCommand.exitCode(for: error).rawValue)
        }
    }

    @Test(arguments: [
        (["-t", "0"], ["-t/--threads", "1...1024", "got 0"]),
        (["--threads", "1025"], ["-t/--threads", "1...1024"]),
        (["-s", "0"], ["-s/--seconds", "1...300"]),
        (["-s", "301"], ["-s/--seconds", "1...300"]),
        (["-n", "-2"], ["-n/--node", "-1"]),
        (["-n", "3"], ["-n/--node", "-1", "or 0"]),
        (["-b", "19"], ["-b/--dma-bits", "20...64"]),
        (["-b", "65"], ["-b/--dma-bits", "20...64"]),
        (["-d", "3"], ["-d/--dir", "0...2"]),
        (["-d", "-1"], ["-d/--dir", "0...2"]),
        (["-x", "-1"], ["-x/--xdelay", "0...10000000"]),
        (["-x", "10000001"], ["-x/--xdelay", "0...10000000"]),
        (["-g", "0"], ["-g/--granule", "1...1024"]),
        (["-g", "1025"], ["-g/--granule", "1...1024"]),
        (["--pages", "0"], ["--pages", "1...1048576"]),
        (["--pages", "1048577"], ["--pages", "1...1048576"]),
        (["--milliseconds", "0"], ["--milliseconds", "1...300000"]),
        (["-t", "-4"], ["-t/--threads", "1...1024", "got -4"]),
        (["--pages", "-1"], ["--pages", "1...1048576"]),
        (["-t", "64", "--pages", "262144"], ["-t/--threads x --pages", "4194304"]),
    ])
    func invalidValueNamesOptionAndRange(args: [String], expected: [String]) throws {
        let f = try #require(failure(args))
        for s in expected { #expect(f.message.contains(s), "\(f.message)") }
        #expect(f.code == 64)
    }

    @Test func policyAndSanitizerTakeOnlyTheirNames() {
        #expect(failure(["--policy", "lazy"]) == nil)
        #expect(failure(["--policy", "deferred"]) != nil)
        #expect(failure(["--sanitizer", "off"]) == nil)
        #expect(failure(["--sanitizer", "kasan"]) != nil)
    }

    /// A mode other than off needs the sanitizer compiled in; off always works.
    @Test func sanitizerModesNeedItCompiledIn() {
        for s in ["linux", "fast", "window"] {
            let f = failure(["--sanitizer", s])
            if DMASanitizer.compiledIn {
                #expect(f == nil, "\(s)")
            } else {
                #expect(f?.message.contains("--sanitizer \(s)") == true && f?.message.contains("compiled out") == true)
            }
        }
    }

    @Test func kernelDefaultsAndNodeValues() throws {
        let b = try DMAMapBenchmark.parse([])
        #expect(b.threads == 1 && b.seconds == 20 && b.node == -1 && b.dmaBits == 32)
        #expect(b.dir == 0 && b.xdelay == 0 && b.granule == 1 && b.policy == .strict && b.sanitizer == .off)
        #expect(b.durationMs == 20_000 && b.bufferPages == 1)
        #expect(try DMAMapBenchmark.parse(["-n", "-1"]).node == -1)
        #expect(try DMAMapBenchmark.parse(["-n", "0"]).node == 0)
        let o = try DMAMapBenchmark.parse(["-s", "5", "--milliseconds", "250", "-g", "4", "--pages", "262144"])
        #expect(o.durationMs == 250 && o.bufferPages == 262_144 && o.granule == 4)
    }

    /// alloc_pages_exact's block, and past 1024 pages whole 4 MiB blocks
    /// holding one page more (the buffer starts one page in).
    @Test func bufferBlocks() {
        #expect(DMAMapBenchmark.allocatedPages(1) == 1)
        #expect(DMAMapBenchmark.allocatedPages(3) == 4)
        #expect(DMAMapBenchmark.allocatedPages(256) == 256)
        #expect(DMAMapBenchmark.allocatedPages(1024) == 1024)
        #expect(DMAMapBenchmark.allocatedPages(1025) == 2048)
        #expect(DMAMapBenchmark.allocatedPages(2047) == 2048)
        #expect(DMAMapBenchmark.allocatedPages(2048) == 3072)
        #expect(DMAMapBenchmark.allocatedPages(262_144) == 263_168)
    }

    @Test func intSqrtIsTheFloor() {
        for x: UInt64 in [0, 1, 2, 3, 4, 15, 16, 17, 99, 100, 1 << 40, (1 << 40) - 1, UInt64(UInt32.max) * UInt64(UInt32.max),
                          .max] {
            let r = DMAMapBenchmark.isqrt(x)
            #expect(r <= UInt64(UInt32.max) && r * r <= x, "\(x)")
            let (sq, overflow) = (r + 1).multipliedReportingOverflow(by: r + 1)
            #expect(overflow || sq > x, "\(x)")
        }
        #expect(DMAMapBenchmark.isqrt(.max) == UInt64(UInt32.max))
    }

    /// map_benchmark.c's arithmetic: samples 0, 1, 3 (100 ns units) give
    /// avg 4 / 3 = 1 and stddev isqrt(10 / 3 - 1) = isqrt(2) = 1; unmap 5,
    /// 5, 8 give avg 6, isqrt(114 / 3 - 36) = isqrt(2) = 1.
    @Test func kernelArithmeticIsInteger() {
        let t = DMAMapBenchmark.Totals(run: .init(loops: 3, sumMap100ns: 4, sumSqMap: 10, sumUnmap100ns: 18, sumSqUnmap: 114))
        let k = DMAMapBenchmark.KernelResult(t)
        #expect(k.avgMap100ns == 1 && k.mapStddev == 1 && k.avgUnmap100ns == 6 && k.unmapStddev == 1)
        let z = DMAMapBenchmark.KernelResult(DMAMapBenchmark.Totals())
        #expect(z.avgMap100ns == 0 && z.mapStddev == 0)
    }

    /// The kernel tool's three lines, byte for byte, then the labelled extra lines.
    @Test func textIsTheKernelToolsLines() throws {
        let b = try DMAMapBenchmark.parse(["-t", "4", "-s", "2", "-d", "1", "-g", "256"])
        let t = DMAMapBenchmark.Totals(run: .init(loops: 3, sumMap100ns: 4, sumSqMap: 10, sumUnmap100ns: 18,
                                                  sumSqUnmap: 114, sumMapNs: 450, sumUnmapNs: 1950,
                                                  elapsedNs: 2_000_000_000))
        let lines = b.text(t).split(separator: "\n").map(String.init)
        #expect(lines[0] == "dma mapping benchmark: threads:4 seconds:2 node:-1 dir:TO_DEVICE granule: 256")
        #expect(lines[1] == "average map latency(us):0.1 standard deviation:0.1")
        #expect(lines[2] == "average unmap latency(us):0.6 standard deviation:0.1")
        #expect(lines.count == 6)
        #expect(lines[3...].allSatisfy { $0.hasPrefix("beyond the kernel tool (SVAKit): ") })
        #expect(lines[4].contains("average map latency(ns):150.0 per 4K page:0.59"))
        #expect(lines[5].contains("average unmap latency(ns):650.0 per 4K page:2.54"))
    }

    struct Decoded: Decodable {
        struct Config: Decodable {
            var threads: Int, seconds: Int, durationMs: Int, node: Int, dmaBits: Int, dir: String, xdelayNs: Int
            var granule: Int, pages: Int, policy: String, sanitizer: String, compiledIn: Bool, cpus: Int
        }
        var bench: String
        var config: Config
        var metrics: [String: Double]
    }

    func run(_ args: [String]) throws -> Decoded {
        let b = try DMAMapBenchmark.parse(args)
        let text = try JSONOutput.report(b.report(try b.measure()))
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return try d.decode(Decoded.self, from: Data(text.utf8))
    }

    static let metricKeys: Set<String> = [
        "loops", "avg_map_100ns", "map_stddev", "avg_unmap_100ns", "unmap_stddev", "map_ns", "unmap_ns",
        "map_ns_per_4k_page", "unmap_ns_per_4k_page", "map_unmap_ns_per_4k_page", "elapsed_ms", "sanitizer_warnings",
        "sanitizer_counts_raised", "sanitizer_counts_lowered",
    ]

    /// A short run: the agreed keys, every thread looped, the truncated
    /// 100 ns average never above the exact one, no sanitizer warning.
    @Test(arguments: [["-t", "2", "-g", "4"], ["-t", "3", "-d", "2", "--policy", "lazy"], ["--pages", "2048", "-x", "1000"]])
    func jsonHasTheAgreedKeys(args: [String]) throws {
        let r = try run(args + ["--milliseconds", "30"])
        #expect(r.bench == "dma-map-benchmark")
        #expect(Set(r.metrics.keys) == Self.metricKeys)
        #expect(r.config.durationMs == 30 && r.config.compiledIn == DMASanitizer.compiledIn && r.config.sanitizer == "off")
        let loops = try #require(r.metrics["loops"])
        #expect(loops >= 1)
        let avgMap = try #require(r.metrics["avg_map_100ns"]), mapNs = try #require(r.metrics["map_ns"])
        let avgUnmap = try #require(r.metrics["avg_unmap_100ns"]), unmapNs = try #require(r.metrics["unmap_ns"])
        #expect(avgMap <= mapNs / 100 && avgUnmap <= unmapNs / 100)
        let pages = Double(r.config.pages)
        #expect(r.metrics["map_ns_per_4k_page"] == mapNs / pages)
        #expect(r.metrics["sanitizer_warnings"] == 0)
        if args.contains("-x") { #expect(r.config.xdelayNs == 1000 && pages == 2048) }
        #expect(r.metrics["sanitizer_counts_raised"] == 0 && r.metrics["sanitizer_counts_lowered"] == 0, "key off")
    }

    /// With the key on, every loop's map raised one count per page and its
    /// unmap (window-aware: the flush after it) lowered it again, and the
    /// buffers' frees found nothing still mapped: a sanitizer that missed a
    /// page, counted one twice or kept one would break the equalities.
    @Test(arguments: [["--sanitizer", "linux"], ["--sanitizer", "fast", "-t", "2"],
                      ["--sanitizer", "window", "--policy", "lazy", "-t", "2"], ["--sanitizer", "linux", "--pages", "1100"]])
    func sanitizerCountsEveryPageOnce(args: [String]) throws {
        guard DMASanitizer.compiledIn else { return }
        let r = try run(args + ["-g", "16", "--milliseconds", "30"])
        let loops = try #require(r.metrics["loops"])
        #expect(r.config.sanitizer == args[1] && r.config.compiledIn)
        #expect(r.metrics["sanitizer_counts_raised"] == loops * Double(r.config.pages))
        #expect(r.metrics["sanitizer_counts_lowered"] == r.metrics["sanitizer_counts_raised"])
        #expect(r.metrics["sanitizer_warnings"] == 0)
    }
}

/// `svakit bench dma --cdf`: the window's quantile function per lazy queue,
/// monotone, ending at the exact maximum; absent without --cdf.
@Suite struct DMABenchCDFTests {
    @Test func cdfKeysAreTheQuantileFunction() throws {
        let b = try DMABench.parse(["--ops", "64", "--window-ms", "20", "--cdf", "--json"])
        let r = try decode(DecodedBench.self, try JSONOutput.report(try b.report(Progress(json: true))))
        for kind in ["lazy_percpu", "lazy_single", "lazy_quarantine"] {
            let q = try DMABench.cdfPermilles.map { p throws -> Double in
                let digits = String(p)
                return try #require(r.metric("window_\(kind)_q\(String(repeating: "0", count: 4 - digits.count) + digits)_ns"))
            }
            #expect(zip(q, q.dropFirst()).allSatisfy { $0 <= $1 }, "\(kind)")
            #expect(q.last == r.metric("window_\(kind)_max_ns"))
            #expect(q[DMABench.cdfPermilles.firstIndex(of: 500)!] == r.metric("window_\(kind)_p50_ns"))
        }
        let plain = try DMABench.parse(["--ops", "64", "--window-ms", "10", "--json"])
        let p = try decode(DecodedBench.self, try JSONOutput.report(try plain.report(Progress(json: true))))
        #expect(!p.metrics.keys.contains { $0.contains("_q0") || $0.contains("_q1000") })
    }
}
