// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import SVAKit
import SVAKitScenarios
@testable import SVAKitCLI

/// The CLI's hand-written JSON (no Foundation in the product) must parse, and
/// the demo's object must have the shape the issue fixes.
@Suite struct OutputTests {
    func parse(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    @Test func quotingSurvivesAParser() throws {
        let tricky = "a\"b\\c\nd\te\u{1}"
        let obj = try parse(JSON.object([("k", .string(tricky)), ("n", .int(-3)), ("x", .double(1.5)),
                                          ("b", .bool(true)), ("a", .array([.int(1)]))]).text) as? [String: Any]
        #expect(obj?["k"] as? String == tricky)
        #expect(obj?["n"] as? Int == -3)
    }

    @Test func traceIsChromeTraceJSON() throws {
        var cfg = MachineConfig(frames: 1 << 20, freeMode: .immediate, workMode: .manual)
        cfg.traceWalks = true
        let m = try Machine(cfg)
        _ = try runScenario(.hugeVmap, on: m)
        let obj = try parse(ChromeTrace.render(m.events(), title: "t")) as? [String: Any]
        let events = try #require(obj?["traceEvents"] as? [[String: Any]])
        #expect(events.contains { $0["name"] as? String == "USE-AFTER-FREE" })
        #expect(events.contains { $0["name"] as? String == "reuse" })
        #expect(events.contains { ($0["name"] as? String)?.hasPrefix("walk") == true })
        #expect(events.allSatisfy { $0["ph"] != nil && $0["pid"] != nil })
    }

    @Test func benchResultIsOneObjectOfTheAgreedShape() throws {
        let r = BenchResult(name: "x", config: [("a", .int(1))], metrics: [("m", 1.5, "ns"), ("n", 2, "count")])
        let obj = try #require(try parse(r.json) as? [String: Any])
        #expect(obj["bench"] as? String == "x")
        #expect((obj["config"] as? [String: Any])?["a"] as? Int == 1)
        #expect((obj["metrics"] as? [String: Any])?["m"] as? Double == 1.5)
    }
}

extension OutputTests {
    @Test func demoJSONHasTheAgreedShapeAndVerdicts() throws {
        let rows = try Demo.rows(MachineConfig(frames: 1 << 20))
        let obj = try #require(try parse(Demo.json(rows).text) as? [String: Any])
        let scenarios = try #require(obj["scenarios"] as? [[String: Any]])
        #expect(scenarios.count == ScenarioName.allCases.count * FreeMode.allCases.count)
        let keys: Set = ["name", "mode", "uaf_reports", "escalations", "corruptions", "invalidations",
                         "frames_deferred", "largest_batch"]
        #expect(scenarios.allSatisfy { Set($0.keys) == keys })
        #expect(Set(scenarios.compactMap { $0["mode"] as? String }) == ["immediate", "linux-6.19", "complete"])
        for s in scenarios where s["mode"] as? String == "complete" { #expect(s["uaf_reports"] as? Int == 0) }
        for s in scenarios where s["mode"] as? String == "immediate" { #expect((s["uaf_reports"] as? Int ?? 0) > 0) }
    }
}

/// What CI may assert of the benchmarks: counts, never times.
@Suite struct BenchCountTests {
    func metric(_ r: BenchResult, _ name: String) -> Double? { r.metrics.first { $0.0 == name }?.1 }

    @Test func fanoutSendsOneCommandPerBoundMM() throws {
        let r = try FanoutBench(maxMMs: 100).run()
        for iommus in [1, 4] {
            for mms in [1, 10, 100] {
                #expect(metric(r, "commands_per_call_\(iommus)iommu_\(mms)mm") == Double(mms))
            }
        }
    }

    @Test func scaleStormDefersEveryTable() throws {
        let r = try ScaleBench(translations: 64 * 100).run()
        #expect(metric(r, "storm_iterations") == metric(r, "storm_tables_deferred"))
        #expect((metric(r, "storm_iterations") ?? 0) > 0)
    }
}
