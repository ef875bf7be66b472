// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import FoundationEssentials
import SVAKit
import SVAKitExplorer
import SVAKitScenarios

extension BrokenFix: ExpressibleByArgument {}

/// `svakit explore`: every interleaving of a race's actors (docs/TESTING.md,
/// "Every interleaving"). Needs a build with the `ScheduleExplorer` trait.
struct Explore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explore every interleaving of a race (needs the ScheduleExplorer trait).",
        discussion: """
            Runs the race's actors (kernel path, kworker, attacker, device; or the DMA driver, timer, \
            attacker, device) one schedule point at a time and enumerates their schedules with dynamic \
            partial-order reduction. Prints the schedules explored, how many ended in a use-after-free, \
            an escalation, a corruption, and the shortest bad schedule as steps (its id replays it with \
            --replay). Build: swift build -c release --enable-all-traits.
            """)

    @Argument(help: ArgumentHelp("The race: \(ExploreProgram.names.joined(separator: ", ")).", valueName: "race"))
    var race: String
    @Option(help: "The free mode (seed races): immediate, linux-6.19, complete.")
    var mode: Mode = .linux619
    @Option(help: "The DMA mode (dma-window): strict, lazy, lazy+quarantine.")
    var dma: DMAMode = .lazy
    @Option(help: ArgumentHelp("The IOMMU's hardware profile.", valueName: "profile"))
    var iommu: IOMMUProfile = .generic
    @Option(help: ArgumentHelp("Break a fix on purpose (beyond Linux: a negative control): "
                               + BrokenFix.allCases.map(\.rawValue).joined(separator: ", ") + ". (default: none)", valueName: "fix"))
    var broken: BrokenFix?
    @Flag(help: ArgumentHelp("Hot-remove in Linux's order (free, then clear) even in --mode complete, which "
                             + "defers every kernel table (beyond Linux: does deferring the frees close the window?)."))
    var linuxHotRemoveOrder = false
    @Flag(help: ArgumentHelp("v1's design: flush_tlb_kernel_range invalidates the IOMMU (the frees stay at once; "
                             + "use with --mode immediate)."))
    var flushOnKernelFlush = false
    @Option(help: "Stop after this many schedules (the result then says it is not complete).")
    var maxExecutions = 200_000
    @Option(help: ArgumentHelp("Run this one schedule (an id the explorer printed) and print its steps. "
                               + "(default: none, explore them all)",
                               valueName: "id"))
    var replay: String?
    @Option(help: ArgumentHelp("Write the shortest bad schedule (or the replayed one) as a Chrome/Perfetto trace. "
                               + "(default: none, no trace written)",
                               valueName: "path"))
    var perfetto: String?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard ExploreProgram.race(named: race) != nil else {
            throw ValidationError("unknown race \(race); one of \(ExploreProgram.names.joined(separator: ", "))")
        }
        guard ["strict", "lazy", "lazy+quarantine"].contains(dma.rawValue) else {
            throw ValidationError("--dma must be strict, lazy or lazy+quarantine")
        }
        if let replay, Schedule(id: replay) == nil { throw ValidationError("not a schedule id: \(replay)") }
        guard maxExecutions > 0 else { throw ValidationError("--max-executions must be positive") }
    }

    func run() throws {
        guard ExploreRunner.available else {
            throw ValidationError("this svakit was built without schedule points: "
                                  + "swift build -c release --enable-all-traits")
        }
        var cfg = IOMMUConfig()
        cfg.profile = iommu
        var program = ExploreProgram(ExploreProgram.race(named: race)!, freeMode: mode.freeMode, dmaMode: dma,
                                     iommu: cfg, brokenFix: broken)
        program.linuxHotRemoveOrder = linuxHotRemoveOrder
        if flushOnKernelFlush { program.kvaInvalidation = .onFlush }
        let explorer = Explorer(limits: ExploreLimits(maxExecutions: maxExecutions))
        let make = { () throws(SVAError) -> ExploreInstance in try program.instance() }
        if let replay {
            let e = try explorer.replay(Schedule(id: replay)!, make)
            if let perfetto { try ExploreRunner.writeTrace(e, to: perfetto) }
            if json {
                print(try JSONOutput.report(ExploreRunner.ExecutionJSON(e)))
            } else {
                print("\(program.name) [\(ExploreRunner.label(program))] schedule \(e.schedule.id): \(e.outcome.summary)")
                print(ExploreRunner.steps(e))
            }
            return
        }
        let r = try explorer.explore(make)
        if let perfetto, let bad = r.shortestBad { try ExploreRunner.writeTrace(bad, to: perfetto) }
        if json {
            print(try JSONOutput.report(ExploreRunner.ResultJSON(program, r)))
        } else {
            print(ExploreRunner.text(program, r))
        }
    }
}

/// The explorer's output: text, JSON and the Perfetto trace.
enum ExploreRunner {
    static var available: Bool { ExploreProgram.pointsCompiledIn }

    static func label(_ p: ExploreProgram) -> String {
        var parts: [String] = []
        switch p.race {
        case .scenario, .hotRemoveHotAdded: parts.append(p.freeMode.description)
        case .dmaWindow: parts.append(p.dmaMode.rawValue)
        }
        parts.append("\(p.iommu.profile)")
        if let b = p.brokenFix { parts.append("broken: \(b)") }
        if p.linuxHotRemoveOrder { parts.append("Linux's hot-remove order") }
        if p.kvaInvalidation == .onFlush { parts.append("flush-on-kernel-tlb-flush") }
        return parts.joined(separator: ", ")
    }

    static func text(_ p: ExploreProgram, _ r: ExploreResult) -> String {
        var out = "\(p.name) [\(label(p))]: \(r.executions - r.redundant) schedules"
            + (r.complete ? " (every one, up to the reduction)" : " (cut short: not complete)")
            + ", \(r.bad) bad: \(r.useAfterFree) use-after-free, \(r.escalations) escalation, "
            + "\(r.corruptions) corruption, \(r.leaked) secret leaked"
        if r.stuck > 0 { out += ", \(r.stuck) stuck" }
        if r.redundant > 0 { out += " (and \(r.redundant) runs the sleep sets cut as repeats)" }
        if let bad = r.shortestBad {
            out += "\nshortest bad schedule (\(bad.preemptions) preemptions, \(bad.steps.count) steps): "
                + "\(bad.schedule.id)\n  \(bad.outcome.summary)\n" + steps(bad)
        }
        return out
    }

    /// The steps where the running actor changes, with the one before each
    /// switch and the last ones of the execution: what a reader needs to
    /// follow the schedule (the replay prints the same).
    static func steps(_ e: ExploreExecution) -> String {
        var lines: [String] = []
        var last = -1
        for (i, s) in e.steps.enumerated() {
            let switches = s.actor != last
            let beforeSwitch = i + 1 < e.steps.count && e.steps[i + 1].actor != s.actor
            if switches || beforeSwitch || i >= e.steps.count - 3 {
                let n = String(i)
                lines.append(String(repeating: " ", count: max(0, 7 - n.count)) + n + "  " + s.description)
            } else if lines.last.map({ !$0.hasPrefix("  ...") }) ?? true {
                lines.append("  ...")
            }
            last = s.actor
        }
        return lines.joined(separator: "\n")
    }

    /// A Chrome-trace JSON (ui.perfetto.dev opens it): one track per actor,
    /// one slice per step (1 µs each, at its step number).
    static func writeTrace(_ e: ExploreExecution, to path: String) throws {
        var events: [TraceEvent] = e.actors.enumerated().map { i, name in
            TraceEvent(name: "thread_name", ph: "M", ts: 0, dur: nil, pid: 1, tid: i, args: ["name": name])
        }
        for (i, s) in e.steps.enumerated() {
            events.append(TraceEvent(name: s.what, ph: "X", ts: i, dur: 1, pid: 1, tid: s.actor,
                                     args: ["step": String(i), "schedule": e.schedule.id]))
        }
        let data = try JSONOutput.verbatim(Trace(traceEvents: events, displayTimeUnit: "ns"))
        try data.write(to: URL(fileURLWithPath: path))
    }

    struct Trace: Encodable {
        var traceEvents: [TraceEvent]
        var displayTimeUnit: String
    }

    struct TraceEvent: Encodable {
        var name: String
        var ph: String
        var ts: Int
        var dur: Int?
        var pid: Int
        var tid: Int
        var args: [String: String]
    }

    struct ExecutionJSON: Encodable {
        var schedule: String
        var steps: Int
        var preemptions: Int
        var outcome: String
        var trace: [String]

        init(_ e: ExploreExecution) {
            schedule = e.schedule.id
            steps = e.steps.count
            preemptions = e.preemptions
            outcome = e.outcome.summary
            trace = e.steps.map(\.description)
        }
    }

    struct ResultJSON: Encodable {
        var race: String
        var config: String
        var schedules: Int
        var redundant: Int
        var complete: Bool
        var bad: Int
        var useAfterFree: Int
        var escalations: Int
        var corruptions: Int
        var leaked: Int
        var stuck: Int
        var maxSteps: Int
        var shortestBad: String?
        var shortestBadPreemptions: Int?

        init(_ p: ExploreProgram, _ r: ExploreResult) {
            race = p.name
            config = ExploreRunner.label(p)
            schedules = r.executions - r.redundant
            redundant = r.redundant
            complete = r.complete
            bad = r.bad
            useAfterFree = r.useAfterFree
            escalations = r.escalations
            corruptions = r.corruptions
            leaked = r.leaked
            stuck = r.stuck
            maxSteps = r.maxSteps
            shortestBad = r.shortestBad?.schedule.id
            shortestBadPreemptions = r.shortestBad?.preemptions
        }
    }
}
