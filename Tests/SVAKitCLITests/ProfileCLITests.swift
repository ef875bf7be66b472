// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Testing
@testable import SVAKit
import SVAKitScenarios
@testable import SVAKitCLI

/// `--iommu PROFILE` on run and demo, and `svakit bench profiles`: counts,
/// never times.
@Suite struct ProfileCLITests {
    private func parses(_ args: [String]) -> Bool {
        (try? SVAKitCommand.parseAsRoot(args)) != nil
    }

    @Test func runAndDemoTakeAProfile() throws {
        for p in IOMMUProfile.allCases {
            #expect(parses(["run", "huge-vmap", "--iommu", p.description]))
            #expect(parses(["demo", "--iommu", p.description]))
        }
        #expect(!parses(["run", "huge-vmap", "--iommu", "vt-d"]))
        let run = try #require(try SVAKitCommand.parseAsRoot(["run", "huge-vmap", "--iommu", "smmuv3"]) as? Run)
        #expect(run.iommu == .smmuv3)
        #expect(try #require(try SVAKitCommand.parseAsRoot(["run", "huge-vmap"]) as? Run).iommu == .generic)
    }

    @Test func theProfileReachesTheScenarioMachine() throws {
        // The unfixed kernel: SMMUv3 faults the kernel address unwalked
        // (safe), VT-d walks it (exploited).
        let base = MachineConfig(gib: 2, levels: 4, pasidBits: 20)
        let smmu = try runScenario(.hugeVmap, mode: .immediate, base: base, iommu: iommuConfig(.smmuv3)).0.row
        let vtd = try runScenario(.hugeVmap, mode: .immediate, base: base, iommu: iommuConfig(.vtd)).0.row
        #expect(smmu.verdict == Verdict.safe.rawValue)
        #expect(vtd.verdict == Verdict.exploited.rawValue)
    }

    @Test func profilesBenchCountsEachProfilesCommands() throws {
        let b = try ProfileBench.parse(["--requests", "3", "--json"])
        let r = try decode(DecodedBench.self, try JSONOutput.report(try b.report(Progress(json: true))))
        #expect(r.bench == "profiles")
        #expect(r.config["requests"] == .number(3))
        // One page: one command and one completion everywhere, 600 ns.
        for p in IOMMUProfile.allCases {
            #expect(r.metric("commands_\(p)_1p") == 1 && r.metric("syncs_\(p)_1p") == 1)
            #expect(r.metric("device_ns_\(p)_1p") == 600)
        }
        #expect(r.metric("commands_smmuv3_511p") == 511 && r.metric("collateral_smmuv3_511p") == 0)
        #expect(r.metric("device_ns_smmuv3_511p") == Double(511 * 200 + 400))
        #expect(r.metric("commands_smmuv3_512p") == 1 && r.metric("collateral_smmuv3_512p") == 1)
        #expect(r.metric("collateral_riscv_1p") == 1 && r.metric("collateral_riscv_1p_leaf") == 0)
        #expect(r.metric("commands_riscv_16p_leaf") == 16)
        #expect(r.metric("collateral_vtd_kernel_gate") == 0 && r.metric("collateral_amd_kernel_gate") == 0)
    }
}
