// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import CSVAKitBench
@_spi(Benchmarks) import SVAKit
import SVAKitScenarios

/// Translations per second through the IOMMU model (ATS translation
/// requests, so no data moves): an IOTLB hit, a hit at each paging-structure
/// cache level, a full walk; beside a plain-C 4-level pointer chase over the
/// same tables.
struct WalkBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "walk", abstract: "IOMMU translations: cache hits at each level and full walks.")
    static let benchName = "walk"
    static let burst = 64
    static let translationsRange = burst...(1 << 40)

    @Option(help: "Translations per case (\(range(translationsRange))).") var translations: Int = 2_000_000
    @OptionGroup var output: BenchOutput

    func validate() throws { try check(translations, in: Self.translationsRange, "--translations") }

    struct Config: Encodable {
        var translations: Int
        var cacheEntriesPerLevel: Int
    }

    var benchConfig: Config { Config(translations: translations, cacheEntriesPerLevel: 1) }

    /// A machine whose one IOMMU has 1-entry caches, so a stream of addresses
    /// that differ at `level` misses every cache below it and hits the one above.
    func measure(_ label: String, caching: IOMMUCaching, stride: UInt64,
                 count: Int) throws -> (rate: Double, burst: Double, ref: Double) {
        let m = try Machine(MachineConfig(frames: 1 << 20, eventLogCapacity: 1 << 10))
        let s = try SVASetup(m, iommu: IOMMUConfig(caching: caching, iotlbSets: 1, iotlbWays: 1, pscSets: 1, pscWays: 1))
        let base: UInt64 = 0x10_0000_0000  // 64 GiB, a 512 GiB slot of its own
        let vas = (0..<count).map { base + UInt64($0) * stride }
        for va in Set(vas) { try m.map(va, to: 0x20_0000, prot: PageTableEntry.user, in: s.mm) }
        for va in vas { _ = try m.translateForDevice(device: s.device, pasid: s.bond.pasid, va: va) }
        let rounds = max(1, translations / count)
        var t0 = nowNs()
        for _ in 0..<rounds {
            for va in vas {
                guard case .success = try m.translateForDevice(device: s.device, pasid: s.bond.pasid, va: va) else {
                    fatalError("\(label): translation faulted")
                }
            }
        }
        let rate = Double(rounds * count) / (Double(nowNs() - t0) / 1e9)
        // The same requests in bursts of `count`: one hold of the locks each.
        var out = [UInt64](repeating: 0, count: count)
        t0 = nowNs()
        for _ in 0..<rounds {
            let faults = try vas.withUnsafeBufferPointer { v in
                try out.withUnsafeMutableBufferPointer { o in
                    try m.translateForDevice(device: s.device, pasid: s.bond.pasid, vas: v, into: o)
                }
            }
            precondition(faults == 0, "\(label): burst faulted")
        }
        let burst = Double(rounds * count) / (Double(nowNs() - t0) / 1e9)
        let root = try m.rootTable(of: s.mm).pfn
        t0 = nowNs()
        let sum = vas.withUnsafeBufferPointer { v in
            m._withUnsafeMemory { mem in
                svakit_bench_ref_walk(mem, UInt64(root.rawValue), 4, v.baseAddress, v.count, rounds)
            }
        }
        let ref = Double(rounds * count) / (Double(nowNs() - t0) / 1e9)
        blackHole(sum)
        return (rate, burst, ref)
    }

    func measure(_ progress: Progress) throws -> Metrics {
        let cases: [(String, IOMMUCaching, UInt64)] = [
            ("iotlb_hit", .full, 0),            // the same page: every request hits
            ("pde_hit", .full, 4096),           // same PTE table, new page each time
            ("pdpte_hit", .full, 1 << 21),      // same PMD table, new PTE table
            ("pml4e_hit", .full, 1 << 30),      // same PUD table, new PMD table
            ("full_walk", .none, 4096),
        ]
        var metrics = Metrics()
        var refRate = 0.0
        for (label, caching, stride) in cases {
            progress.update("walk: \(label)")
            let r = try measure(label, caching: caching, stride: stride, count: Self.burst)
            metrics.add("translations_per_sec_\(label)", r.rate, "1/s")
            metrics.add("ns_per_translation_\(label)", 1e9 / r.rate, "ns")
            metrics.add("ns_per_translation_\(label)_burst", 1e9 / r.burst, "ns")
            if label == "full_walk" { refRate = r.ref }
        }
        metrics.add("c_ref_walks_per_sec", refRate, "1/s")
        metrics.add("ns_per_c_ref_walk", 1e9 / refRate, "ns")
        return metrics
    }
}
