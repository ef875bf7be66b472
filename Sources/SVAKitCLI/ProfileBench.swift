// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
import SVAKitScenarios

/// The cost columns of the hardware profiles (docs/KERNEL-MODEL.md §3.6,
/// §4.6): for each profile and each request shape, the hardware commands,
/// the completions and the modelled device time of one request followed by
/// the fence the kernel issues after it, as the SVA notifier and the kernel
/// gate issue them. Deterministic: it counts the model, it does not time the
/// host.
struct ProfileBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles",
        abstract: "Commands and modelled device time per invalidation request, per IOMMU profile.")
    static let benchName = "profiles"

    @Option(help: "Requests per shape; the figures are per request (\(range(1...1_000_000)).")
    var requests: Int = 100
    @OptionGroup var output: BenchOutput

    func validate() throws { try check(requests, in: 1...1_000_000, "--requests") }

    /// The profiles and shapes as comma-separated names (a config holds
    /// numbers and strings).
    struct Config: Encodable {
        var requests: Int
        var profiles: String
        var shapes: String
    }

    /// A request shape: a name, its range from a user base (or the kernel
    /// gate's), and the leaf-only hint.
    struct Shape {
        var name: String
        var pages: UInt64
        var leafOnly: Bool
        var kernelGate = false
    }

    static let shapes: [Shape] = [
        Shape(name: "1p", pages: 1, leafOnly: false),
        Shape(name: "1p_leaf", pages: 1, leafOnly: true),
        Shape(name: "16p", pages: 16, leafOnly: false),
        Shape(name: "16p_leaf", pages: 16, leafOnly: true),
        Shape(name: "511p", pages: 511, leafOnly: false),
        Shape(name: "512p", pages: 512, leafOnly: false),
        Shape(name: "1g", pages: 1 << 18, leafOnly: false),
        Shape(name: "kernel_gate", pages: 0, leafOnly: false, kernelGate: true),
    ]

    var benchConfig: Config {
        Config(requests: requests, profiles: IOMMUProfile.allCases.map(\.description).joined(separator: ","),
               shapes: Self.shapes.map(\.name).joined(separator: ","))
    }

    func measure(_ progress: Progress) throws -> Metrics {
        var metrics = Metrics()
        let user: UInt64 = 0x7f00_0000_0000
        for profile in IOMMUProfile.allCases {
            var c = IOMMUConfig()
            c.profile = profile
            let m = try Machine(MachineConfig(frames: 1 << 18, eventLogCapacity: 1 << 10))
            let s = try SVASetup(m, iommu: c)
            // `far` is outside every request's range: whether its IOTLB line
            // survives a request is the collateral the command's widening costs.
            let far = user + (1 << 31)
            let page = try m.allocFrames().physicalAddress   // a data frame: user maps refuse tables
            try m.map(user, to: page, prot: PageTableEntry.user, in: s.mm)
            try m.map(far, to: page, prot: PageTableEntry.user, in: s.mm)
            for shape in Self.shapes {
                progress.update("profiles: \(profile), \(shape.name)")
                let before = s.iommu.counters
                var collateral = 0, ns: UInt64 = 0
                for _ in 0..<requests {
                    _ = try s.touch(m, user)   // something cached for the request to drop
                    _ = try s.touch(m, far)
                    let pre = s.iommu.counters.modelledDeviceNs
                    if shape.kernelGate {
                        _ = m.invalidateKernelRange(m.layout.directMapBase, .max)
                    } else {
                        try m.invalidateRange(iommu: s.iommu.id, pasid: s.bond.pasid, start: user,
                                              end: user + shape.pages * 4096 - 1, leafOnly: shape.leafOnly)
                        s.iommu.fence()
                    }
                    ns += s.iommu.counters.modelledDeviceNs - pre
                    let hits = s.iommu.counters.iotlbHits
                    _ = try s.touch(m, far)
                    if s.iommu.counters.iotlbHits == hits { collateral += 1 }
                }
                let after = s.iommu.counters
                let n = Double(requests)
                let key = "\(profile)_\(shape.name)"
                let commands = profile == .generic ? after.invalidations - before.invalidations
                    : after.commands.invalidations - before.commands.invalidations
                let syncs = profile == .generic ? after.fences - before.fences
                    : after.commands.syncs - before.commands.syncs
                metrics.add("commands_\(key)", Double(commands) / n, "cmds")
                metrics.add("syncs_\(key)", Double(syncs) / n, "cmds")
                metrics.add("device_ns_\(key)", Double(ns) / n, "ns")
                metrics.add("collateral_\(key)", Double(collateral) / n, "share")
            }
        }
        return metrics
    }
}
