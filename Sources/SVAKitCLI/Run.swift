// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
import SVAKitScenarios
#if canImport(Glibc)
import Glibc
#endif

extension ScenarioName: ExpressibleByArgument {}

extension FreeMode: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }
}

/// One scenario under one mode, with its reports and, optionally, a Chrome
/// trace (chrome://tracing, ui.perfetto.dev) of frees, queueing,
/// invalidations, walks and reuse.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one seed scenario under one free mode.")

    @Argument(help: "One of: \(ScenarioName.allCases.map(\.rawValue).joined(separator: ", ")).") var scenario: ScenarioName
    @Option(help: "immediate, linux-6.19 or complete.") var mode: FreeMode = .complete
    @Option(help: "Write a Chrome-trace JSON file here.") var trace: String?
    @OptionGroup var machine: MachineOptions

    func run() throws {
        var cfg = machine.config()
        cfg.freeMode = mode
        cfg.workMode = .manual
        cfg.traceWalks = true
        let m = try Machine(cfg)
        let o = try runScenario(scenario, on: m)
        print("\(scenario.rawValue) under \(mode): \(o.reports.count) use-after-free report(s), "
              + "\(o.invalidations) IOMMU invalidation(s), \(o.framesDeferred) frame(s) deferred"
              + (o.secretLeaked ? "; the device read the secret" : ""))
        for r in o.reports { print("\n" + r.text, terminator: "") }
        if let trace {
            let text = ChromeTrace.render(m.events(), title: "\(scenario.rawValue) / \(mode)")
            guard let f = fopen(trace, "w") else { throw ValidationError("cannot write \(trace)") }
            fputs(text, f)
            fclose(f)
            print("\ntrace: \(trace) (\(m.events().count) events; open in ui.perfetto.dev)")
        }
    }
}

/// The Chrome trace event format: instant events, one lane per actor, the
/// machine's step as the timestamp (1 step = 1 µs in the viewer).
enum ChromeTrace {
    static func lane(_ e: Event) -> (Int, String) {
        switch e.type {
        case .deferQueue, .deferBatch, .kvaInvalidate: return (2, "deferred work")
        case .dmaWalk, .uafReport: return (3, "IOMMU / device")
        case .frameFree where e.site == .pgtableWork: return (2, "deferred work")
        default: return (1, "CPU: kernel paths")
        }
    }

    static func name(_ e: Event) -> String {
        guard let t = e.type else { return "event" }
        switch t {
        case .frameAlloc: return e.generation > 0 ? "reuse" : "alloc"
        case .frameFree: return "free \(e.kind)"
        case .dmaWalk: return e.aux == 0 ? "walk" : "walk fault"
        case .uafReport: return "USE-AFTER-FREE"
        default: return t.description
        }
    }

    static func render(_ events: [Event], title: String) -> String {
        var out: [JSON] = []
        for (tid, label) in [(1, "CPU: kernel paths"), (2, "deferred work"), (3, "IOMMU / device")] {
            out.append(.object([("name", .string("thread_name")), ("ph", .string("M")), ("pid", .int(1)), ("tid", .int(tid)),
                                ("args", .object([("name", .string(label))]))]))
        }
        out.append(.object([("name", .string("process_name")), ("ph", .string("M")), ("pid", .int(1)),
                            ("args", .object([("name", .string("svakit: " + title))]))]))
        for e in events {
            let (tid, _) = lane(e)
            out.append(.object([
                ("name", .string(name(e))), ("cat", .string(e.type?.description ?? "?")), ("ph", .string("i")),
                ("s", .string("t")), ("ts", .int(Int(e.step))), ("pid", .int(1)), ("tid", .int(tid)),
                ("args", .object([("pfn", .string(e.pfn == .none ? "-" : hex(UInt64(e.pfn.rawValue)))),
                                  ("generation", .int(Int(e.generation))), ("level", .int(Int(e.level))),
                                  ("site", .string(e.site.description)), ("va", .string(hex(e.va))),
                                  ("aux", .string(hex(e.aux)))])),
            ]))
        }
        return JSON.object([("traceEvents", .array(out)), ("displayTimeUnit", .string("ms"))]).text + "\n"
    }
}
