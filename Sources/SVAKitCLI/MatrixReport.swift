// SPDX-License-Identifier: Apache-2.0
import SVAKit
import SVAKitScenarios

/// `svakit demo --matrix`: every seed scenario for every IOMMU profile and
/// mitigation (SVAKitScenarios/Matrix.swift), then what each mitigation
/// costs on the same workload. The rows below are where the CLI reads the
/// matrix's types (as Engine.swift does for the rest).
enum MatrixReport {
    /// `demo --matrix --json`: {"cells": [...], "costs": [...], "mismatches": N,
    /// "workload": {...}}.
    struct Report: Codable, Equatable {
        var cells: [Cell]
        var costs: [Cost]
        var mismatches: Int
        var workload: Workload
    }

    /// One scenario under one design on one profile.
    struct Cell: Codable, Equatable {
        var profile: String
        var mitigation: String
        var scenario: String
        var verdict: String
        var expected: String
        var uafReports: Int
        var corruptions: Int
        var invalidations: Int
    }

    /// One design's cost on one profile (``MatrixCost``).
    struct Cost: Codable, Equatable {
        var profile: String
        var mitigation: String
        var kernelTableFrees: Int
        var kernelTlbFlushes: Int
        var commandsPerKernelFree: Double
        var syncsPerKernelFree: Double
        var deviceNsPerKernelFree: Double
        var freeingPathSyncsPerFree: Double
        var freeingPathDeviceNsPerFree: Double
        var bytesPerSvaMm: Int
        var rootSyncsPerUserRegion: Double
        var commandsPerUserUnmap: Double
        var uafReports: Int
        /// Gate calls per kernel free, and the global lock each takes in
        /// the kernel design the row models (none in SVAKit's gate).
        var gateCallsPerKernelFree: Double
        var gateLock: String?
    }

    /// The cost workload's shape.
    struct Workload: Codable, Equatable {
        var rounds: Int
        var batch: Int
        var userRegions: Int
        /// "linux" or "batched" (beyond Linux).
        var schedule: String
    }

    /// Runs the matrix on machines like `base`.
    static func report(_ base: MachineConfig, workload w: CostWorkload = CostWorkload()) throws -> Report {
        let mx = try Matrix.run(base: base, workload: w)
        let cells = mx.cells.map {
            Cell(profile: $0.profile, mitigation: $0.design, scenario: $0.scenario.rawValue,
                 verdict: $0.verdict.rawValue, expected: $0.expected.rawValue, uafReports: $0.reports,
                 corruptions: $0.corruptions, invalidations: $0.invalidations)
        }
        let costs = mx.costs.map {
            Cost(profile: $0.profile, mitigation: $0.design, kernelTableFrees: $0.kernelTableFrees,
                 kernelTlbFlushes: $0.kernelTLBFlushes, commandsPerKernelFree: $0.commandsPerKernelFree,
                 syncsPerKernelFree: $0.syncsPerKernelFree, deviceNsPerKernelFree: $0.deviceNsPerKernelFree,
                 freeingPathSyncsPerFree: $0.freeingPathSyncsPerFree,
                 freeingPathDeviceNsPerFree: $0.freeingPathDeviceNsPerFree, bytesPerSvaMm: $0.bytesPerSVAMM,
                 rootSyncsPerUserRegion: $0.rootSyncsPerUserRegion, commandsPerUserUnmap: $0.commandsPerUserUnmap,
                 uafReports: $0.reports, gateCallsPerKernelFree: $0.gateCallsPerKernelFree, gateLock: $0.gateLock)
        }
        return Report(cells: cells, costs: costs, mismatches: mx.mismatches.count,
                      workload: Workload(rounds: w.rounds, batch: w.batch, userRegions: w.userRegions,
                                         schedule: w.schedule.description))
    }

    /// When the workload ran the deferred work, in words.
    static func workText(_ w: Workload) -> String {
        w.schedule == "batched"
            ? "deferred work every \(w.batch) rounds (batched, beyond Linux)"
            : "deferred work after each kernel call that queued a table (Linux's schedule, kworker latency below the gap)"
    }

    /// The text form: per profile a grid of verdicts (scenario by
    /// mitigation; a cell that differs from the expected verdict is marked
    /// "!= expected"), then the cost table.
    static func text(_ r: Report, gib: Int, levels: Int) -> String {
        var out = "SVAKit \(SVAKit.version): \(gib) GiB, \(levels)-level paging, LIFO reuse; one SVA device bound to one process.\n"
        let designs = MatrixDesign.all.map(\.description)
        var profiles: [String] = []
        for c in r.cells where !profiles.contains(c.profile) { profiles.append(c.profile) }
        for p in profiles {
            out += "\nIOMMU profile \(p): verdict per scenario and mitigation\n"
            var t = TextTable(header: ["scenario"] + designs)
            var scenarios: [String] = []
            for c in r.cells where c.profile == p && !scenarios.contains(c.scenario) { scenarios.append(c.scenario) }
            for s in scenarios {
                t.rows.append([s] + designs.map { d in
                    guard let c = r.cells.first(where: { $0.profile == p && $0.mitigation == d && $0.scenario == s })
                    else { return "-" }
                    let ad = c.corruptions > 0 ? " +A/D" : ""
                    return c.verdict == c.expected ? c.verdict + ad : "\(c.verdict)\(ad) != \(c.expected)"
                })
            }
            out += t.render() + "\n"
        }
        out += """

        +A/D: the IOMMU wrote Accessed/Dirty bits into a freed frame.

        Cost on the same workload (\(r.workload.rounds) kernel rounds of map, device access, vunmap, huge vmap over
        the PTE table, vunmap, 16 KiB vmalloc and vfree: one kernel table freed and three kernel TLB flushes each, the vfree
        being lazy (its range waits on the purge list; no purge within the workload); \(workText(r.workload));
        then \(r.workload.userRegions) user pages, each in a new top-level slot, mapped, touched, unmapped).
        Modelled device time: IOMMUCostModel defaults (200 ns a range command, 400 ns a sync).


        """
        var c = TextTable(header: ["profile", "mitigation", "cmds/free", "syncs/free", "device ns/free",
                                   "caller syncs/free", "caller device ns/free", "bytes/SVA mm",
                                   "root syncs/region", "cmds/user unmap", "gate calls/free", "gate lock in Linux", "uaf"])
        for x in r.costs {
            c.rows.append([x.profile, x.mitigation, formatFixed(x.commandsPerKernelFree, digits: 3),
                           formatFixed(x.syncsPerKernelFree, digits: 3), formatFixed(x.deviceNsPerKernelFree, digits: 1),
                           formatFixed(x.freeingPathSyncsPerFree, digits: 3),
                           formatFixed(x.freeingPathDeviceNsPerFree, digits: 1), "\(x.bytesPerSvaMm)",
                           formatFixed(x.rootSyncsPerUserRegion, digits: 2), formatFixed(x.commandsPerUserUnmap, digits: 2),
                           formatFixed(x.gateCallsPerKernelFree, digits: 3), x.gateLock ?? "-", "\(x.uafReports)"])
        }
        out += c.render()
        out += """


        caller: work done in the caller of the freeing kernel path (non-preemptible in Linux), not in a worker.
        gate lock in Linux: the global lock each gate call takes in the kernel design (merged: the mutex, SVA bound or
        not; v2: the irqsave spinlock while the key is on). SVAKit's gate takes none: a static key, then a lock-free
        list (beyond Linux; `svakit bench gate` prices both forms).
        Host time on the freeing path: `svakit bench mitigation` (docs/BENCHMARKS.md). docs/MITIGATIONS.md reads this table.
        """
        if r.mismatches > 0 { out += "\n\n\(r.mismatches) cell(s) differ from the expected verdict." }
        return out
    }
}
