// SPDX-License-Identifier: Apache-2.0
import CSVAKitBench
@_spi(Benchmarks) import SVAKit
import SVAKitScenarios

/// Translations per second through the IOMMU model (ATS translation
/// requests, so no data moves): an IOTLB hit, a hit at each paging-structure
/// cache level, a full walk; beside a plain-C 4-level pointer chase over the
/// same tables.
struct WalkBench {
    let translations: Int

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

    func run() throws -> BenchResult {
        let cases: [(String, IOMMUCaching, UInt64, Int)] = [
            ("iotlb_hit", .full, 0, 64),            // the same page: every request hits
            ("pde_hit", .full, 4096, 64),           // same PTE table, new page each time
            ("pdpte_hit", .full, 1 << 21, 64),      // same PMD table, new PTE table
            ("pml4e_hit", .full, 1 << 30, 64),      // same PUD table, new PMD table
            ("full_walk", .none, 4096, 64),
        ]
        var metrics: [(String, Double, String)] = []
        var refRate = 0.0
        for (label, caching, stride, count) in cases {
            let r = try measure(label, caching: caching, stride: stride, count: count)
            metrics.append(("translations_per_sec_\(label)", r.rate, "1/s"))
            metrics.append(("ns_per_translation_\(label)", 1e9 / r.rate, "ns"))
            if count > 1 { metrics.append(("ns_per_translation_\(label)_burst", 1e9 / r.burst, "ns")) }
            if label == "full_walk" { refRate = r.ref }
        }
        metrics.append(("c_ref_walks_per_sec", refRate, "1/s"))
        metrics.append(("ns_per_c_ref_walk", 1e9 / refRate, "ns"))
        return BenchResult(name: "walk", config: [("translations", .int(translations)), ("cache_entries_per_level", .int(1))],
                           metrics: metrics)
    }
}
