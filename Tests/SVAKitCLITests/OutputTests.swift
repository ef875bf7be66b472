// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import FoundationEssentials
import Testing
@testable import SVAKit
import SVAKitScenarios
@testable import SVAKitCLI

/// A number or a string, as a bench's config holds.
enum Scalar: Decodable, Equatable {
    case number(Double), string(String), numbers([Double])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let x = try? c.decode(Double.self) { self = .number(x) }
        else if let a = try? c.decode([Double].self) { self = .numbers(a) }
        else { self = .string(try c.decode(String.self)) }
    }
}

/// `svakit bench NAME --json` as a consumer reads it.
struct DecodedBench: Decodable {
    var bench: String
    var config: [String: Scalar]
    var metrics: [String: Double?]

    /// A metric's value; nil if absent or null.
    func metric(_ name: String) -> Double? { metrics[name] ?? nil }
}

func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    try JSONDecoder().decode(type, from: Data(text.utf8))
}

/// The CLI's JSON (Codable types through the toolchain's encoder) must have
/// the shapes docs/BENCHMARKS.md and the demo promise.
@Suite struct OutputTests {
    @Test func benchReportIsOneObjectOfTheAgreedShape() throws {
        var metrics = Metrics()
        metrics.add("m", 1.5, "ns")
        metrics.add("n", count: 2)
        metrics.add("inf", .infinity, "x")
        struct Config: Encodable { var someOption = 1 }
        let text = try JSONOutput.report(BenchReport(bench: "x", config: Config(), metrics: metrics))
        let r = try decode(DecodedBench.self, text)
        #expect(r.bench == "x")
        #expect(r.config == ["some_option": .number(1)])
        #expect(r.metrics["m"] == 1.5)
        #expect(r.metrics["n"] == 2)
        #expect(r.metrics["inf"] == .some(nil))
        #expect(text.contains("\"n\":2}"))  // a count is an integer
    }

    @Test func tableNumbersHaveFixedDecimals() {
        #expect(formatFixed(12.3456, digits: 2) == "12.35")
        #expect(formatFixed(3, digits: 2) == "3.00")
        #expect(formatFixed(0.05, digits: 2) == "0.05")
        #expect(formatFixed(-1.5, digits: 1) == "-1.5")
        #expect(formatFixed(-0.001, digits: 2) == "0.00")
        #expect(formatFixed(.infinity, digits: 2) == "-")
    }

    @Test func traceIsChromeTraceJSON() throws {
        let (_, m) = try runScenario(.hugeVmap, mode: .immediate, base: MachineConfig(frames: 1 << 20), traceWalks: true)
        let data = try ChromeTrace(events: m.events(), title: "t").json()
        let trace = try JSONDecoder().decode(ChromeTrace.self, from: data)
        #expect(trace.displayTimeUnit == "ms")
        let events = trace.traceEvents
        #expect(events.contains { $0.name == "USE-AFTER-FREE" })
        #expect(events.contains { $0.name == "reuse" })
        #expect(events.contains { $0.name.hasPrefix("walk") })
        #expect(events.filter { $0.ph == "M" }.count == ChromeTrace.metadataEvents)
        #expect(events.filter { $0.ph == "i" }.allSatisfy { $0.ts != nil && $0.tid != nil && $0.args.site != nil })
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"traceEvents\"") && text.contains("\"displayTimeUnit\""))  // keys as the format names them
    }

    @Test func demoJSONHasTheAgreedShapeAndVerdicts() throws {
        let text = try JSONOutput.report(try Demo.report(MachineConfig(frames: 1 << 20)))
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        let report = try d.decode(Demo.Report.self, from: Data(text.utf8))
        #expect(report.scenarios.count == ScenarioName.allCases.count * Mode.allCases.count)
        for key in ["\"uaf_reports\"", "\"frames_deferred\"", "\"largest_batch\"", "\"escalations\"",
                    "\"corruptions\"", "\"invalidations\"", "\"verdict\"", "\"name\"", "\"mode\""] {
            #expect(text.contains(key))
        }
        #expect(Set(report.scenarios.map(\.mode)) == ["immediate", "linux-6.19", "complete"])
        for s in report.scenarios where s.mode == "complete" { #expect(s.uafReports == 0) }
        for s in report.scenarios where s.mode == "immediate" {
            #expect(s.uafReports > 0 && s.verdict == ScenarioName(rawValue: s.name)!.unfixedVerdict.rawValue)
        }
        // The second table: every DMA scenario under each mode of its row,
        // each with the verdict the table expects.
        #expect(text.contains("\"dma_scenarios\"") && text.contains("\"modelled_device_ns\""))
        #expect(report.dmaScenarios.count == DMAScenario.all.reduce(0) { $0 + $1.modes.count })
        for s in report.dmaScenarios { #expect(s.verdict == s.expected, "\(s.name) under \(s.mode)") }
        #expect(report.dmaScenarios.contains { $0.mode == "lazy" && $0.verdict == "CORRUPTED" })
        #expect(report.dmaScenarios.contains { $0.mode == "lazy" && $0.verdict == "LEAKED" })
        #expect(report.debugScenarios.count == DebugScenario.all.count * DebugScenario.modes.count)
        for s in report.dmaScenarios {
            #expect(s.sanitizerLinux == 0, "Linux's sanitizer never sees the lazy window")
            #expect(s.sanitizerWindow == (s.mode == "lazy" ? 2 : 0), "\(s.name) under \(s.mode)")
        }
        for s in report.debugScenarios { #expect(s.outcome == s.expected, "\(s.name) under \(s.mode)") }
        #expect(report.debugScenarios.contains { $0.name == "lazy-free-in-window" && $0.mode == "linux" && $0.outcome == "silent" })
        #expect(report.debugScenarios.contains { $0.name == "lazy-free-in-window" && $0.mode == "window" && $0.leakReports == 1 })
    }
}

/// Options: each benchmark its own, defaults by name, every invalid value
/// refused before anything runs with a message naming the option and range.
@Suite struct OptionTests {
    /// The message and exit code `svakit ARGS` ends with, or nil if it parses.
    func failure(_ args: [String]) -> (message: String, code: Int32)? {
        do {
            _ = try SVAKitCommand.parseAsRoot(args)
            return nil
        } catch {
            return (SVAKitCommand.message(for: error), SVAKitCommand.exitCode(for: error).rawValue)
        }
    }

    @Test(arguments: [
        (["bench", "pagetable", "--gib", "0"], ["--gib", "1...16383"]),
        (["bench", "pagetable", "--gib", "100000"], ["--gib", "1...16383"]),
        (["bench", "pagetable", "--levels", "3"], ["--levels", "4 or 5"]),
        (["demo", "--gib", "0"], ["--gib", "1...16383"]),
        (["demo", "--gib", "1"], ["--gib", "2...16383"]),
        (["demo", "--levels", "3"], ["--levels", "4 or 5"]),
        (["run", "huge-vmap", "--pasid-bits", "21"], ["--pasid-bits", "1...20"]),
        (["bench", "pagetable", "--pages", "0"], ["--pages", "1...16777216"]),
        (["bench", "fanout", "--max-mms", "1048576"], ["--max-mms", "1...1048575"]),
        (["bench", "walk", "--translations", "10"], ["--translations", "64..."]),
        (["bench", "gate", "--iterations", "10"], ["--iterations", "1000..."]),
        (["bench", "deferral", "--frees", "0"], ["--frees", "1..."]),
        (["bench", "bind", "--pairs", "0"], ["--pairs", "1..."]),
        (["bench", "scale", "--storm-ms", "0"], ["--storm-ms", "1...60000"]),
        (["bench", "dma", "--ops", "10"], ["--ops", "64..."]),
        (["bench", "dma", "--rate", "0"], ["--rate", "1...100000"]),
        (["bench", "dma", "--window-ms", "5"], ["--window-ms", "10...60000"]),
    ])
    func invalidValueNamesOptionAndRange(args: [String], expected: [String]) throws {
        let f = try #require(failure(args))
        for s in expected { #expect(f.message.contains(s), "\(f.message)") }
        #expect(f.code != 0)
    }

    @Test func optionsBelongToTheirBenchmark() {
        #expect(failure(["bench", "gate", "--pages", "10"]) != nil)
        #expect(failure(["bench", "walk", "--gib", "1"]) != nil)
        #expect(failure(["bench", "pagetable", "--gib", "1", "--pages", "10", "--json"]) == nil)
        #expect(failure(["bench", "scale", "--translations", "64", "--storm-ms", "10"]) == nil)
    }

    @Test func defaultsShowByName() {
        let help = Run.helpMessage()
        #expect(help.contains("default: complete"))
        #expect(help.contains("linux-6.19"))
    }

    @Test func runTakesDMAScenariosAndTheirModes() throws {
        #expect(failure(["run", "buggy-driver-early-free", "--mode", "lazy+quarantine"]) == nil)
        #expect(failure(["run", "untrusted-device-reads-reallocated-page", "--mode", "untrusted-forced-strict"]) == nil)
        let f = try #require(failure(["run", "buggy-driver-early-free", "--mode", "complete"]))
        #expect(f.message.contains("--mode") && f.message.contains("lazy+quarantine"))
        #expect(failure(["run", "huge-vmap", "--mode", "lazy"]) != nil)
        #expect(failure(["run", "no-such-scenario"]) != nil)
    }

    @Test func traceMustBeWritableBeforeTheScenarioRuns() throws {
        let f = try #require(failure(["run", "huge-vmap", "--trace", "/nonexistent-dir/t.json"]))
        #expect(f.message.contains("--trace"))
        #expect(failure(["run", "huge-vmap", "--trace", "/"]) != nil)
    }
}

/// What CI may assert of the benchmarks: counts, never times.
@Suite struct BenchCountTests {
    func report<B: BenchCommand>(_: B.Type, _ args: [String]) throws -> DecodedBench {
        let b = try B.parse(args + ["--json"])
        return try decode(DecodedBench.self, try JSONOutput.report(try b.report(Progress(json: true))))
    }

    @Test func fanoutSendsOneCommandPerBoundMM() throws {
        let r = try report(FanoutBench.self, ["--max-mms", "100"])
        #expect(r.bench == "fanout")
        #expect(r.config["max_mms"] == .number(100))
        for iommus in [1, 4] {
            for mms in [1, 10, 100] {
                #expect(r.metric("commands_per_call_\(iommus)iommu_\(mms)mm") == Double(mms))
            }
        }
    }

    @Test func scaleStormDefersEveryTable() throws {
        let r = try report(ScaleBench.self, ["--translations", "6400", "--storm-ms", "50"])
        #expect(r.metric("storm_iterations") == r.metric("storm_tables_deferred"))
        #expect((r.metric("storm_iterations") ?? 0) > 0)
    }

    @Test func deferralLatenciesComeFromTheHistogram() throws {
        let r = try report(DeferralBench.self, ["--frees", "2000"])
        for tag in ["0mm", "1mm", "1000mm"] {
            let p50 = try #require(r.metric("p50_free_to_allocator_ns_\(tag)"))
            let p99 = try #require(r.metric("p99_free_to_allocator_ns_\(tag)"))
            let max = try #require(r.metric("max_free_to_allocator_ns_\(tag)"))
            #expect(p50 > 0 && p50 <= p99 && p99 <= max)
        }
        #expect(r.metric("gate_invalidations_per_freed_frame_0mm") == 0)
    }

    /// Counts only: the stream's commands per policy are exact (manual
    /// timers: only full rings and the drain flush), never its times.
    @Test func dmaLazyIssuesFarFewerInvalidationsThanStrict() throws {
        let r = try report(DMABench.self, ["--ops", "2048", "--window-ms", "10", "--rate", "2000"])
        #expect(r.bench == "dma")
        for size in ["4k", "64k"] {
            for t in ["1t", "2t"] {
                let strict = try #require(r.metric("invalidations_\(size)_\(t)_strict"))
                let unmaps = try #require(r.metric("unmaps_\(size)_\(t)_strict"))
                #expect(strict == unmaps, "strict: one command per unmap")
                for lazy in ["lazy_percpu", "lazy_single"] {
                    let n = try #require(r.metric("invalidations_\(size)_\(t)_\(lazy)"))
                    #expect(n >= 1 && n * 100 <= strict, "\(lazy): >= 100x fewer than strict")
                }
                let lazy = try #require(r.metric("invalidations_\(size)_\(t)_lazy_percpu"))
                let quarantine = try #require(r.metric("invalidations_\(size)_\(t)_lazy_quarantine"))
                if t == "1t" { #expect(quarantine == lazy, "one thread: the same flushes") }
                #expect(quarantine <= 2 * (unmaps / 255).rounded(.up) + 1, "no more than the rings force")
                #expect(r.metric("device_ns_threads_match_iommu_\(size)_\(t)_strict") == 1)
            }
        }
        #expect(r.metric("window_lazy_quarantine_stale_on_reallocated_page") == 0)
    }

    @Test func everyBenchPrintsTheAgreedObjectOnSmallSettings() throws {
        #expect(try report(PagetableBench.self, ["--gib", "1", "--pages", "1024"]).metric("metadata_bytes_per_frame") == 32)
        let gate = try report(GateBench.self, ["--iterations", "1000"])
        #expect(gate.metric("ns_gate_key_off") != nil)
        #expect(gate.metric("ns_merged_gate_no_sva") != nil && gate.metric("ns_merged_gate_cost_no_sva") != nil)
        #expect(try report(BindBench.self, ["--pairs", "100"]).metric("key_transitions") == 200)
        #expect(try report(WalkBench.self, ["--translations", "64"]).metrics.count == 17)
    }
}
