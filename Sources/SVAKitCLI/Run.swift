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

/// One scenario under one mode, with its reports and, optionally, a Chrome
/// trace (chrome://tracing, ui.perfetto.dev) of frees, queueing,
/// invalidations, walks and reuse.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one seed scenario under one free mode.")

    @Argument(help: "The scenario.") var scenario: ScenarioName
    @Option(help: "The free mode.") var mode: Mode = .complete
    @Option(help: ArgumentHelp("Write a Chrome-trace JSON file here.", valueName: "path")) var trace: String?
    @OptionGroup var machine: MachineOptions

    func validate() throws {
        if let trace { try checkWritable(trace, option: "--trace") }
    }

    func run() throws {
        let (result, m) = try runScenario(scenario, mode: mode, base: machine.config, traceWalks: true)
        let o = result.row
        print("\(o.name) under \(o.mode): \(o.uafReports) use-after-free report(s), "
              + "\(o.invalidations) IOMMU invalidation(s), \(o.framesDeferred) frame(s) deferred"
              + (o.verdict == Verdict.exploited.rawValue ? "; the device read the secret" : ""))
        for r in result.reports { print("\n" + r, terminator: "") }
        if let trace {
            let file = ChromeTrace(events: m.events(), title: "\(o.name) / \(o.mode)")
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
