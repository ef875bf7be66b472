// SPDX-License-Identifier: Apache-2.0
import FoundationEssentials
import Testing
@testable import SVAKit
import SVAKitScenarios
@testable import SVAKitCLI

/// `svakit demo --matrix` and `svakit bench mitigation`: their shapes and
/// the counts CI may assert (never times).
@Suite struct MitigationCLITests {
    @Test func matrixJSONHasEveryCellAndNoMismatch() throws {
        let r = try MatrixReport.report(MachineConfig(frames: 1 << 19), workload: CostWorkload(rounds: 16, batch: 8, userRegions: 2))
        let text = try JSONOutput.report(r)
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        let back = try d.decode(MatrixReport.Report.self, from: Data(text.utf8))
        #expect(back == r)
        #expect(r.mismatches == 0)
        #expect(r.cells.count == IOMMUProfile.allCases.count * MatrixDesign.all.count * ScenarioName.allCases.count)
        #expect(r.costs.count == IOMMUProfile.allCases.count * MatrixDesign.all.count)
        for key in ["\"commands_per_kernel_free\"", "\"freeing_path_syncs_per_free\"", "\"bytes_per_sva_mm\"",
                    "\"commands_per_user_unmap\"", "\"expected\"", "\"mitigation\"", "\"profile\""] {
            #expect(text.contains(key))
        }
        // The review's claims, as the matrix shows them.
        for c in r.cells where c.profile == "smmuv3" { #expect(c.verdict == "safe") }
        // A user request through a split table's entry (no U/S) reads the
        // freed frame but cannot complete: use-after-free, not EXPLOITED.
        for c in r.cells where c.profile == "vtd" && c.mitigation == "none" {
            #expect(c.verdict == (c.scenario == "set-memory-collapse" ? "use-after-free" : "EXPLOITED"))
        }
        for c in r.cells where c.profile != "smmuv3" && c.mitigation == "clear-us" { #expect(c.verdict != "safe") }
        for c in r.cells where c.profile != "smmuv3" && c.mitigation == "deferred-free/linux-6.19" {
            #expect((c.verdict != "safe")
                    == ["set-memory-collapse", "set-memory-collapse-supervisor", "hot-remove-boot"].contains(c.scenario))
        }
        let text2 = MatrixReport.text(r, gib: 2, levels: 4)
        #expect(text2.contains("IOMMU profile vtd") && !text2.contains("!="))
        #expect(r.workload.schedule == "linux" && text2.contains("Linux's schedule"))
        // Linux's schedule: the kworker runs before the next freeing call,
        // one command and one sync per freed table (generic, one mm).
        for c in r.costs where c.profile == "generic" && c.mitigation.hasPrefix("deferred-free") {
            #expect(c.commandsPerKernelFree == 1 && c.syncsPerKernelFree == 1 && c.deviceNsPerKernelFree == 600)
            #expect(c.freeingPathSyncsPerFree == 0)
        }
    }

    @Test("demo --matrix --deferral-schedule batched (beyond Linux): 1/8 command per kernel free at batches of 8")
    func matrixBatchedScheduleIsBeyondLinux() throws {
        let r = try MatrixReport.report(MachineConfig(frames: 1 << 19),
                                        workload: CostWorkload(rounds: 16, batch: 8, userRegions: 2, schedule: .batched))
        #expect(r.workload.schedule == "batched" && r.mismatches == 0)
        #expect(MatrixReport.text(r, gib: 2, levels: 4).contains("beyond Linux"))
        for c in r.costs where c.profile == "generic" && c.mitigation.hasPrefix("deferred-free") {
            #expect(c.commandsPerKernelFree == 1.0 / 8 && c.deviceNsPerKernelFree == 600.0 / 8)
        }
        let demo = try Demo.parse(["--matrix", "--deferral-schedule", "batched"])
        #expect(demo.deferralSchedule == .batched)
        #expect(try Demo.parse(["--matrix"]).deferralSchedule == .linux, "Linux's schedule is the default")
    }

    @Test func mitigationBenchCountsSyncsAndBytes() throws {
        let b = try MitigationBench.parse(["--rounds", "16", "--mms", "2", "--json"])
        let r = try b.report(Progress(json: true))
        let m = Dictionary(uniqueKeysWithValues: r.metrics.list.map { ($0.name, $0.value) })
        func count(_ k: String) -> Int? { if case .count(let n)? = m[k] { return n }; return nil }
        func real(_ k: String) -> Double? { if case .real(let x)? = m[k] { return x }; return nil }
        #expect(r.bench == "mitigation")
        #expect(count("kpti_root_bytes_per_sva_mm") == 4096)
        #expect(count("none_bytes_per_sva_mm") == 0)
        #expect(real("none_caller_syncs_per_free") == 0)
        #expect(real("deferred_free_linux_6_19_caller_syncs_per_free") == 0)
        #expect(real("kpti_root_caller_syncs_per_free") == 0)
        // Three kernel TLB flushes a round (vunmap, pmd_free_pte_page,
        // vunmap), each a gate call that fences once; the vfree goes lazy.
        #expect(real("flush_on_kernel_tlb_flush_caller_syncs_per_free") == 3)
        #expect(m.count == 8 * MatrixDesign.all.count)
        // Linux's schedule (the default): the gate's fence is the kworker's.
        #expect(real("deferred_free_complete_caller_syncs_per_free") == 0)
        let perRun: Double = 2 * 200 + 400   // two mms: two range commands and a sync
        #expect(real("deferred_free_complete_device_ns_per_free") == perRun, "one run of the work per freed table")
    }

    @Test func deferralBenchNamesItsSchedule() throws {
        let b = try DeferralBench.parse(["--frees", "2000", "--json"])
        #expect(b.deferralSchedule == .linux && b.kworkerLatencyUs == 0)
        #expect(b.benchConfig.maxPending == nil, "Linux's schedule has no bound")
        let batched = try DeferralBench.parse(["--deferral-schedule", "batched"])
        #expect(batched.benchConfig.deferralSchedule == "batched" && batched.benchConfig.maxPending == 4096)
        #expect(throws: (any Error).self) { try DeferralBench.parse(["--kworker-latency-us", "1000001"]) }
        #expect(throws: (any Error).self) { try DeferralBench.parse(["--deferral-schedule", "lazy"]) }
    }
}
