// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
import SVAKitScenarios

/// The main job: every seed scenario under the three free modes on the
/// embedded default machine, as a table (scenario by mode) or one JSON object.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every seed scenario under the three free modes and print the verdicts.")

    @OptionGroup var machine: MachineOptions
    @Flag(help: "Print one JSON object instead of a table.") var json = false

    typealias Row = (name: ScenarioName, mode: FreeMode, outcome: ScenarioOutcome)

    /// Every scenario under every mode, each on a fresh machine.
    static func rows(_ base: MachineConfig) throws -> [Row] {
        var rows: [Row] = []
        for scenario in Scenario.all {
            for mode in FreeMode.allCases {
                var cfg = base
                cfg.freeMode = mode
                cfg.workMode = .manual  // deterministic: the scenario runs the kworker
                rows.append((scenario.name, mode, try scenario.run(on: try Machine(cfg))))
            }
        }
        return rows
    }

    /// {"scenarios": [{"name", "mode", "uaf_reports", "escalations",
    /// "corruptions", "invalidations", "frames_deferred", "largest_batch"}]}
    static func json(_ rows: [Row]) -> JSON {
        JSON.object([("scenarios", .array(rows.map { name, mode, o in
            JSON.object([
                ("name", .string(name.rawValue)), ("mode", .string(mode.description)),
                ("uaf_reports", .int(o.reports.count)), ("escalations", .int(o.escalations)),
                ("corruptions", .int(o.corruptions)), ("invalidations", .int(o.invalidations)),
                ("frames_deferred", .int(o.framesDeferred)), ("largest_batch", .int(o.largestBatch)),
            ])
        }))])
    }

    func run() throws {
        let rows = try Demo.rows(machine.config())
        if json {
            print(Demo.json(rows).text)
            return
        }
        let cfg = machine.config()
        print("SVAKit \(SVAKit.version): \(cfg.memoryBytes >> 30) GiB, \(cfg.pagingLevels)-level paging, LIFO reuse;")
        print("one IOMMU with paging-structure caches, one SVA device bound to one process.\n")
        var t = TextTable(header: ["scenario", "mode", "uaf reports", "escalations", "corruptions",
                                   "invalidations", "frames deferred", "largest batch", "verdict"])
        for (name, mode, o) in rows {
            t.rows.append([name.rawValue, mode.description, "\(o.reports.count)", "\(o.escalations)", "\(o.corruptions)",
                           "\(o.invalidations)", "\(o.framesDeferred)", "\(o.largestBatch)",
                           o.verdict.description])
        }
        print(t.render())
        print("""

        immediate   frees at once with no IOMMU invalidation: the unfixed kernel.
        linux-6.19  defers PT_kernel-marked tables; x86's set_memory split tables and
                    boot-time direct-map tables carry no mark and still free at once.
        complete    defers every kernel table behind one invalidation per batch.
        `svakit run SCENARIO --mode MODE --trace FILE` writes a Perfetto-readable trace.
        """)
    }
}
