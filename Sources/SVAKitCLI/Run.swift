// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import FoundationEssentials
import SVAKit
import SVAKitScenarios
#if canImport(Glibc)
import Glibc
#endif

/// The free modes, by the names the commands take and print.
enum Mode: String, CaseIterable, ExpressibleByArgument {
    case immediate
    case linux619 = "linux-6.19"
    case complete
}

/// A scenario `svakit run` accepts: a seed scenario (a freed kernel page
/// table) or a DMA scenario (a data page after dma_unmap).
enum AnyScenario: ExpressibleByArgument, Equatable {
    case seed(ScenarioName)
    case dma(DMAScenarioName)

    init?(argument: String) {
        if let s = ScenarioName(rawValue: argument) { self = .seed(s) }
        else if let d = DMAScenarioName(rawValue: argument) { self = .dma(d) }
        else { return nil }
    }

    static var allValueStrings: [String] {
        ScenarioName.allCases.map(\.rawValue) + DMAScenarioName.allCases.map(\.rawValue)
    }
}

/// One scenario under one mode, with its reports and, optionally, a Chrome
/// trace (chrome://tracing, ui.perfetto.dev) of frees, queueing,
/// invalidations, walks and reuse.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one scenario under one mode.")

    @Argument(help: "The scenario: a seed scenario or a DMA scenario.") var scenario: AnyScenario
    @Option(help: ArgumentHelp(
        "The mode. Seed scenarios: a free mode, \(Mode.allCases.map(\.rawValue).joined(separator: ", ")) "
            + "(default: complete). DMA scenarios: \(DMAMode.allCases.map(\.rawValue).joined(separator: ", ")) "
            + "where the scenario's table has it (default: lazy).", valueName: "mode"))
    var mode: String?
    @Option(help: ArgumentHelp("Write a Chrome-trace JSON file here. (default: none, no trace written)", valueName: "path"))
    var trace: String?
    @Option(help: ArgumentHelp("The IOMMU's hardware profile (docs/KERNEL-MODEL.md §3.6).", valueName: "profile"))
    var iommu: IOMMUProfile = .generic
    @OptionGroup var machine: MachineOptions

    func validate() throws {
        switch scenario {
        case .seed:
            if let mode, Mode(rawValue: mode) == nil {
                throw ValidationError("--mode for a seed scenario must be one of "
                                      + Mode.allCases.map(\.rawValue).joined(separator: ", ") + " (got \(mode))")
            }
        case .dma(let name):
            let modes = DMAScenario.named(name).modes
            if let mode, !modes.contains(where: { $0.rawValue == mode }) {
                throw ValidationError("--mode for \(name.rawValue) must be one of "
                                      + modes.map(\.rawValue).joined(separator: ", ") + " (got \(mode))")
            }
        }
        if let trace { try checkWritable(trace, option: "--trace") }
    }

    func run() throws {
        let m: Machine, title: String
        let on = iommu == .generic ? "" : " on \(iommu)"
        switch scenario {
        case .seed(let name):
            let (result, machine) = try runScenario(name, mode: mode.flatMap(Mode.init) ?? .complete,
                                                    base: machine.config, traceWalks: true,
                                                    iommu: iommuConfig(iommu))
            let o = result.row
            print("\(o.name) under \(o.mode)\(on): \(o.uafReports) use-after-free report(s), "
                  + "\(o.invalidations) IOMMU invalidation(s), \(o.framesDeferred) frame(s) deferred"
                  + (o.verdict == Verdict.exploited.rawValue ? "; the device read the secret" : ""))
            for r in result.reports { print("\n" + r, terminator: "") }
            (m, title) = (machine, "\(o.name) / \(o.mode)")
        case .dma(let name):
            let (o, reports, machine) = try runDMAScenario(name, mode: mode.flatMap(DMAMode.init) ?? .lazy,
                                                           base: machine.config, traceWalks: true,
                                                           iommu: iommuConfig(iommu))
            print("\(o.name) under \(o.mode)\(on): \(o.verdict) (expected \(o.expected)); \(o.uafReports) "
                  + "use-after-free report(s), \(o.invalidations) IOMMU invalidation(s), \(o.fences) sync(s), "
                  + "\(o.modelledDeviceNs) ns modelled device time"
                  + (o.faulted ? "; the device's access after the unmap faulted" : "")
                  + (o.freeWaitedForFlush ? "; the driver's free waited for the flush" : ""))
            for r in reports { print("\n" + r, terminator: "") }
            (m, title) = (machine, "\(o.name) / \(o.mode)")
        }
        if let trace {
            let file = ChromeTrace(events: m.events(), title: title)
            do {
                try file.json().write(to: URL(fileURLWithPath: trace))
            } catch {
                throw CLIError("--trace \(trace): cannot write it (\(error))")
            }
            print("\ntrace: \(trace) (\(file.traceEvents.count - ChromeTrace.metadataEvents) events; open in ui.perfetto.dev)")
        }
    }
}

/// Fails unless `path` can be written: an existing writable file that is
/// not a directory, or a new name in a writable directory.
func checkWritable(_ path: String, option: String) throws {
    var st = stat()
    if stat(path, &st) == 0 {
        guard st.st_mode & S_IFMT != S_IFDIR else { throw ValidationError("\(option) \(path): is a directory") }
        guard access(path, W_OK) == 0 else { throw ValidationError("\(option) \(path): not writable") }
        return
    }
    let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
    let parent = dir.isEmpty ? "/" : dir
    guard stat(parent, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
        throw ValidationError("\(option) \(path): no directory \(parent)")
    }
    guard access(parent, W_OK | X_OK) == 0 else {
        throw ValidationError("\(option) \(path): directory \(parent) is not writable")
    }
}

/// The Chrome trace event format (one JSON object, keys as the format names
/// them): metadata events naming the process and the three lanes, then one
/// instant event per machine event (1 step = 1 µs in the viewer).
struct ChromeTrace: Codable {
    var traceEvents: [TraceEvent]
    var displayTimeUnit = "ms"

    static let metadataEvents = TraceLane.allCases.count + 1

    init(events: [Event], title: String) {
        traceEvents = TraceLane.allCases.map {
            TraceEvent(name: "thread_name", ph: "M", pid: 1, tid: $0.rawValue, args: .init(name: $0.label))
        }
        traceEvents.append(TraceEvent(name: "process_name", ph: "M", pid: 1, args: .init(name: "svakit: " + title)))
        traceEvents += events.map(TraceEvent.init)
    }

    func json() throws -> Data { try JSONOutput.verbatim(self) + Data("\n".utf8) }
}

enum TraceLane: Int, CaseIterable {
    case cpu = 1, deferredWork, device

    var label: String {
        switch self {
        case .cpu: "CPU: kernel paths"
        case .deferredWork: "deferred work"
        case .device: "IOMMU / device"
        }
    }
}

struct TraceEvent: Codable, Equatable {
    var name: String
    var cat: String?
    var ph: String
    var s: String?
    var ts: Int?
    var pid: Int
    var tid: Int?
    var args: Args

    /// A metadata event's `name`, or an instant event's fields (absent keys are omitted).
    struct Args: Codable, Equatable {
        var name: String?
        var pfn: String?
        var generation: Int?
        var level: Int?
        var site: String?
        var va: String?
        var aux: String?
    }
}
