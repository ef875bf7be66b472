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
    }
}
