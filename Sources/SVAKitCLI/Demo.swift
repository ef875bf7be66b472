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

    /// `demo --json`: {"scenarios": [{"name", "mode", "uaf_reports", ...}]}.
    struct Report: Codable, Equatable {
        var scenarios: [ScenarioRow]
    }

    /// Every scenario under every mode, each on a fresh machine.
    static func report(_ base: MachineConfig, progress: Progress? = nil) throws -> Report {
        var rows: [ScenarioRow] = []
        for name in ScenarioName.allCases {
            for mode in Mode.allCases {
                progress?.update("demo: \(name.rawValue) under \(mode.rawValue)")
                rows.append(try runScenario(name, mode: mode, base: base).0.row)
            }
        }
        progress?.done()
        return Report(scenarios: rows)
    }

    func run() throws {
        let report = try Demo.report(machine.config, progress: Progress(json: json))
        if json {
            print(try JSONOutput.report(report))
            return
        }
        print("SVAKit \(SVAKit.version): \(machine.memory.gib) GiB, \(machine.memory.levels)-level paging, LIFO reuse;")
        print("one IOMMU with paging-structure caches, one SVA device bound to one process.\n")
        var t = TextTable(header: ["scenario", "mode", "uaf reports", "escalations", "corruptions",
                                   "invalidations", "frames deferred", "largest batch", "verdict"])
        for o in report.scenarios {
            t.rows.append([o.name, o.mode, "\(o.uafReports)", "\(o.escalations)", "\(o.corruptions)",
                           "\(o.invalidations)", "\(o.framesDeferred)", "\(o.largestBatch)", o.verdict])
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
