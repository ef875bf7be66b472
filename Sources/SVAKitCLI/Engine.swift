// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
import SVAKitScenarios

// Where the CLI reads the engine's stats, counters, scenario outcomes and
// events: the library's public types change under it (ids, stats and event
// types), and this file is what has to follow them. The benchmarks' calls
// (map, translate, bind, ...) stay in the benches themselves.

/// The machine a command's options describe.
extension MachineConfig {
    init(gib: Int, levels: Int, pasidBits: Int) {
        self.init(frames: gib << 18, pagingLevels: levels, pasidBits: pasidBits)
    }
}

/// One row of the demo: a scenario under a mode, on a fresh machine.
struct ScenarioRow: Codable, Equatable {
    var name: String
    var mode: String
    var uafReports: Int
    var escalations: Int
    var corruptions: Int
    var invalidations: Int
    var framesDeferred: Int
    var largestBatch: Int
    /// "EXPLOITED" (the device read the planted secret through a freed
    /// table), "use-after-free" or "safe".
    var verdict: String
}

/// A scenario's outcome as the CLI prints it.
struct ScenarioResult {
    var row: ScenarioRow
    /// The kernel-style report text of each use-after-free.
    var reports: [String]
}

extension ScenarioName: ExpressibleByArgument {}

/// `--iommu PROFILE` (generic, vtd, smmuv3, amd, riscv).
extension IOMMUProfile: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }
    /// The default by name, not by its C value.
    public var defaultValueDescription: String { description }
}

/// `--deferral-schedule linux|batched` (batched is beyond Linux).
extension DeferralSchedule: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }
    /// The default by name, not by its C value.
    public var defaultValueDescription: String { description }
}

/// The help of a `--deferral-schedule` option.
let deferralScheduleHelp = ArgumentHelp(
    "When the deferred-free work runs: linux (as Linux 6.19: schedule_work with no delay and no bound) or batched (beyond Linux: gathers up to 256 frames or 1 ms, and the freeing caller runs the work past max_pending).",
    valueName: "schedule")

/// The IOMMU a command's `--iommu` names: the default configuration with
/// that profile.
func iommuConfig(_ profile: IOMMUProfile) -> IOMMUConfig {
    var c = IOMMUConfig()
    c.profile = profile
    return c
}

/// Runs `name` under `mode` on a fresh machine from `base` (deterministic:
/// the scenario runs the kworker itself). Returns the machine for its events.
func runScenario(_ name: ScenarioName, mode: Mode, base: MachineConfig,
                 traceWalks: Bool = false, iommu: IOMMUConfig = IOMMUConfig()) throws -> (ScenarioResult, Machine) {
    var cfg = base
    cfg.freeMode = mode.freeMode
    cfg.workMode = .manual
    cfg.traceWalks = traceWalks
    let m = try Machine(cfg)
    let o = try Scenario.named(name).run(on: m, iommu: iommu)
    let row = ScenarioRow(name: name.rawValue, mode: mode.rawValue, uafReports: o.reports.count,
                          escalations: o.escalations, corruptions: o.corruptions,
                          invalidations: o.invalidations, framesDeferred: o.framesDeferred,
                          largestBatch: o.largestBatch, verdict: o.verdict.rawValue)
    return (ScenarioResult(row: row, reports: o.reports.map(\.text)), m)
}

/// One row of the demo's second table: a DMA scenario under a DMA mode.
struct DMAScenarioRow: Codable, Equatable {
    var name: String
    var mode: String
    var uafReports: Int
    var corruptions: Int
    var secretLeaked: Bool
    var faulted: Bool
    var freeWaitedForFlush: Bool
    var invalidations: Int
    var fences: Int
    var modelledDeviceNs: Int
    /// "CORRUPTED", "LEAKED", "use-after-free", "faulted" or "safe".
    var verdict: String
    /// What the scenario table (SVAKitScenarios) says it must be.
    var expected: String
    /// Page-leak reports of the same run with IOMMU_DEBUG_PAGEALLOC as
    /// Linux has it, and window-aware (nil in a build without it).
    var sanitizerLinux: Int? = nil, sanitizerWindow: Int? = nil
}

extension DMAMode: ExpressibleByArgument {}
extension DMAScenarioName: ExpressibleByArgument {}

/// Runs DMA scenario `name` under `mode` on a fresh machine from `base`
/// (manual work: deterministic). Returns the machine for its events.
func runDMAScenario(_ name: DMAScenarioName, mode: DMAMode, base: MachineConfig,
                    traceWalks: Bool = false, iommu: IOMMUConfig = IOMMUConfig())
    throws -> (DMAScenarioRow, [String], Machine) {
    var cfg = mode.machineConfig(base)
    cfg.traceWalks = traceWalks
    let m = try Machine(cfg)
    let s = DMAScenario.named(name)
    let o = try s.run(on: m, mode: mode, iommu: iommu)
    var row = DMAScenarioRow(name: name.rawValue, mode: mode.rawValue, uafReports: o.reports.count,
                             corruptions: o.corruptions, secretLeaked: o.secretLeaked, faulted: o.finalFault != nil,
                             freeWaitedForFlush: o.freeWaitedForFlush, invalidations: o.invalidations,
                             fences: o.fences, modelledDeviceNs: Int(o.modelledDeviceNs),
                             verdict: o.verdict.rawValue, expected: s.expected[mode]?.rawValue ?? "-")
    if Machine.iommuDebugCompiledIn {
        // Seed 002 meets seed 003: does the sanitizer see this free?
        for debug in [IOMMUDebugMode.linux, .windowAware] {
            var c = mode.machineConfig(base)
            c.iommuDebugPagealloc = debug
            let dm = try Machine(c)
            _ = try s.run(on: dm, mode: mode, iommu: iommu)
            let leaks = dm.reports(from: 0).filter(\.isPageLeak).count
            if debug == .linux { row.sanitizerLinux = leaks } else { row.sanitizerWindow = leaks }
        }
    }
    return (row, o.reports.map(\.text), m)
}

/// One row of the demo's third table: a sanitizer scenario under a mode.
struct DebugScenarioRow: Codable, Equatable {
    var name: String
    /// "linux", "fast" or "window".
    var mode: String
    var leakReports: Int
    var underflows: Int
    var unmappedMore: Int
    var skipped: Int
    /// Counts left non-zero on frames nothing maps (Linux's cut leaf).
    var strayCounts: Int
    /// "2 leaks, 1 underflow" or "silent".
    var outcome: String
    /// What the scenario table (SVAKitScenarios) says it must be.
    var expected: String
}

/// Runs sanitizer scenario `s` under `mode` on a fresh machine from `base`.
func runDebugScenario(_ s: DebugScenario, mode: IOMMUDebugMode, base: MachineConfig) throws -> DebugScenarioRow {
    let m = try Machine(DebugScenario.machineConfig(mode, base: base))
    let o = try s.run(on: m)
    let got = DebugScenario.Expectation(leaks: o.leaks.count, underflows: o.stats.underflows)
    return DebugScenarioRow(name: s.name.rawValue, mode: mode.description, leakReports: o.leaks.count,
                            underflows: o.stats.underflows, unmappedMore: o.stats.unmappedMore,
                            skipped: o.stats.skipped, strayCounts: o.strayCounts, outcome: got.description,
                            expected: s.expected[mode]?.description ?? "-")
}

extension Mode {
    var freeMode: FreeMode {
        switch self {
        case .immediate: .immediate
        case .linux619: .linux619
        case .complete: .complete
        }
    }
}

/// The machine-wide figures the benches report.
struct MachineFigures {
    var metadataBytesPerFrame: Int
    var kernelTables: Int
    var residentBytes: Int

    init(_ m: Machine) {
        let s = m.stats
        metadataBytesPerFrame = Int(s.metadataBytesPerFrame)
        kernelTables = Int(s.kernelTables)
        residentBytes = m.residentBytes
    }
}

/// The deferred-free work's figures.
struct DeferredFigures {
    var framesDeferred: Int
    var batches: Int
    var largestBatch: Int
    var peakPending: Int
    var invalidations: Int

    init(_ m: Machine) {
        let d = m.deferredStats
        framesDeferred = d.framesDeferred
        batches = d.batches
        largestBatch = d.largestBatch
        peakPending = d.peakPending
        invalidations = d.invalidations
    }
}

extension IOMMU {
    /// Invalidation commands of any kind this IOMMU received.
    var commandsReceived: Int { counters.invalidations }
    /// Range invalidation commands (the gate's fan-out sends these).
    var rangeCommandsReceived: Int { counters.rangeInvalidations }
}

extension TraceEvent {
    /// An event of the machine's log as a Chrome-trace instant event: one lane
    /// per actor, the machine's step as the timestamp.
    init(_ e: Event) {
        let lane: TraceLane
        switch e.type {
        case .deferQueue, .deferBatch, .kvaInvalidate: lane = .deferredWork
        case .dmaWalk, .uafReport: lane = .device
        case .frameFree where e.site == .pgtableWork: lane = .deferredWork
        default: lane = .cpu
        }
        let name: String
        switch e.type {
        case nil: name = "event"
        case .frameAlloc: name = e.generation > 0 ? "reuse" : "alloc"
        case .frameFree: name = "free \(e.kind)"
        case .dmaWalk: name = e.aux == 0 ? "walk" : "walk fault"
        case .uafReport: name = "USE-AFTER-FREE"
        case let t?: name = t.description
        }
        self.init(name: name, cat: e.type?.description ?? "?", ph: "i", s: "t", ts: Int(e.step), pid: 1,
                  tid: lane.rawValue,
                  args: .init(pfn: e.pfn == .none ? "-" : hex(UInt64(e.pfn.rawValue)),
                              generation: Int(e.generation), level: Int(e.level),
                              site: e.site.description, va: hex(e.va), aux: hex(e.aux)))
    }
}
