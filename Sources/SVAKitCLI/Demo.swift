// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
import SVAKitScenarios

/// The main job: every seed scenario under the three free modes on the
/// embedded default machine, then every DMA scenario under its DMA modes, as
/// two tables (scenario by mode) or one JSON object.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every seed scenario under the three free modes, every DMA scenario under its DMA modes, and print the verdicts.")

    @OptionGroup var machine: MachineOptions
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @Option(help: ArgumentHelp("The IOMMU's hardware profile (docs/KERNEL-MODEL.md §3.6).", valueName: "profile"))
    var iommu: IOMMUProfile = .generic
    @Flag(help: "Run every seed scenario for every IOMMU profile and mitigation, and each mitigation's cost (docs/MITIGATIONS.md).")
    var matrix = false
    @Option(help: deferralScheduleHelp)
    var deferralSchedule: DeferralSchedule = .linux

    /// `demo --json`: {"scenarios": [{"name", "mode", "uaf_reports", ...}],
    /// "dma_scenarios": [{"name", "mode", "verdict", "expected", ...}]}.
    struct Report: Codable, Equatable {
        var scenarios: [ScenarioRow]
        var dmaScenarios: [DMAScenarioRow]
        /// The IOMMU_DEBUG_PAGEALLOC scenarios under linux, fast and window
        /// (empty in a build without the sanitizer).
        var debugScenarios: [DebugScenarioRow] = []
    }

    /// Every scenario under every mode, each on a fresh machine.
    static func report(_ base: MachineConfig, progress: Progress? = nil,
                       iommu: IOMMUConfig = IOMMUConfig()) throws -> Report {
        var rows: [ScenarioRow] = []
        for name in ScenarioName.allCases {
            for mode in Mode.allCases {
                progress?.update("demo: \(name.rawValue) under \(mode.rawValue)")
                rows.append(try runScenario(name, mode: mode, base: base, iommu: iommu).0.row)
            }
        }
        var dma: [DMAScenarioRow] = []
        for s in DMAScenario.all {
            for mode in s.modes {
                progress?.update("demo: \(s.name.rawValue) under \(mode.rawValue)")
                dma.append(try runDMAScenario(s.name, mode: mode, base: base, iommu: iommu).0)
            }
        }
        var debug: [DebugScenarioRow] = []
        if Machine.iommuDebugCompiledIn {
            for s in DebugScenario.all {
                for mode in DebugScenario.modes {
                    progress?.update("demo: \(s.name.rawValue) under sanitizer \(mode)")
                    debug.append(try runDebugScenario(s, mode: mode, base: base))
                }
            }
        }
        progress?.done()
        return Report(scenarios: rows, dmaScenarios: dma, debugScenarios: debug)
    }

    func run() throws {
        if matrix { return try runMatrix() }
        let report = try Demo.report(machine.config, progress: Progress(json: json), iommu: iommuConfig(iommu))
        if json {
            print(try JSONOutput.report(report))
            return
        }
        print("SVAKit \(SVAKit.version): \(machine.memory.gib) GiB, \(machine.memory.levels)-level paging, LIFO reuse;")
        print("one IOMMU with paging-structure caches (profile \(iommu)), one SVA device bound to one process.\n")
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
        """)
        print("\nDMA scenarios: one device without PASID on a DMA default domain, its buffer freed")
        print("right after dma_unmap and taken by a new owner (LIFO), then the device's access again.\n")
        var d = TextTable(header: ["dma scenario", "mode", "uaf reports", "corruptions", "leaked", "faulted",
                                   "free after flush", "invalidations", "syncs", "device ns", "sanitizer linux/window",
                                   "verdict"])
        for o in report.dmaScenarios {
            let sanitizer = o.sanitizerLinux.map { "\($0)/\(o.sanitizerWindow ?? 0)" } ?? "-"
            d.rows.append([o.name, o.mode, "\(o.uafReports)", "\(o.corruptions)", o.secretLeaked ? "yes" : "no",
                           o.faulted ? "yes" : "no", o.freeWaitedForFlush ? "yes" : "no", "\(o.invalidations)",
                           "\(o.fences)", "\(o.modelledDeviceNs)", sanitizer, o.verdict])
        }
        print(d.render())
        print("""

        strict                   each unmap invalidates and syncs before it returns.
        lazy                     DMA-FQ: the IOTLB entry lives until the flush queue's flush.
        lazy+quarantine          lazy, and a free of a frame still covered waits for that flush.
        untrusted-forced-strict  a lazy machine; the untrusted device's domain is forced strict, and its
                                 sub-granule buffers bounce through swiotlb with the padding zeroed.
        untrusted-before-bounce  untrusted-forced-strict on Linux before 82612d66d51d (no bounce): a control,
                                 beyond what any current kernel does.
        device ns: modelled IOMMU time of the commands (IOMMUCostModel defaults).
        sanitizer linux/window: page-leak reports of IOMMU_DEBUG_PAGEALLOC as Linux has it / window-aware
                                 (at the free, and again when the page is handed out before the flush).
        `svakit run SCENARIO --mode MODE --trace FILE` writes a Perfetto-readable trace.
        """)
        guard !report.debugScenarios.isEmpty else {
            print("\nIOMMU_DEBUG_PAGEALLOC: compiled out of this build.")
            return
        }
        print("\nIOMMU_DEBUG_PAGEALLOC: a mapping count per frame, checked when the allocator hands a frame")
        print("out or takes it back (\"iommu: Detected page leak!\"), under three ways of lowering the count.\n")
        var g = TextTable(header: ["sanitizer scenario", "mode", "leak reports", "underflows", "unmapped more",
                                   "skipped", "stray counts", "outcome", "expected"])
        for o in report.debugScenarios {
            g.rows.append([o.name, o.mode, "\(o.leakReports)", "\(o.underflows)", "\(o.unmappedMore)",
                           "\(o.skipped)", "\(o.strayCounts)", o.outcome, o.expected])
        }
        print(g.render())
        print("""

        linux   as Linux 7.0 merged it: lowered before each unmap, one iova_to_phys walk per granule.
        fast    the same checks, lowered inside the unmap's own walk (exact when an unmap cuts a leaf).
        window  fast, and a lazily unmapped page counts until the flush that covers it (seed 003).
        stray counts: frames nothing maps whose count stayed up (what a later free reports).
        """)
    }

    /// `demo --matrix`: exits 1 when a cell differs from its expected verdict.
    private func runMatrix() throws {
        let r = try MatrixReport.report(machine.config, workload: CostWorkload(schedule: deferralSchedule))
        print(json ? try JSONOutput.report(r) : MatrixReport.text(r, gib: machine.memory.gib, levels: machine.memory.levels))
        if r.mismatches > 0 { throw ExitCode(1) }
    }
}
