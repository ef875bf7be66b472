// SPDX-License-Identifier: Apache-2.0
import SVAKit

/// bind+unbind pairs per second: the first-bind path (domain created, key
/// on, then off again) and the path where another mm keeps the key on.
struct BindBench {
    let pairs: Int

    func run() throws -> BenchResult {
        let m = try Machine(MachineConfig(frames: 1 << 18))
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id), other = try m.addDevice(iommu: iommu.id)
        let mm = try m.createAddressSpace(), keeper = try m.createAddressSpace()
        func rate() throws -> Double {
            let t0 = nowNs()
            for _ in 0..<pairs { try m.unbindSVA(try m.bindSVA(device: dev, mm: mm)) }
            return Double(pairs) / (Double(nowNs() - t0) / 1e9)
        }
        let toggling = try rate()
        let transitions = m.svaKeyTransitions
        _ = try m.bindSVA(device: other, mm: keeper)
        let steady = try rate()
        // Rebinding a live bond only raises its count.
        let live = try m.bindSVA(device: dev, mm: mm)
        let t0 = nowNs()
        for _ in 0..<pairs { try m.unbindSVA(try m.bindSVA(device: dev, mm: mm)) }
        let refcount = Double(pairs) / (Double(nowNs() - t0) / 1e9)
        try m.unbindSVA(live)
        return BenchResult(name: "bind", config: [("pairs", .int(pairs))], metrics: [
            ("pairs_per_sec_key_toggling", toggling, "1/s"),
            ("pairs_per_sec_key_held", steady, "1/s"),
            ("pairs_per_sec_refcount_only", refcount, "1/s"),
            ("key_transitions", Double(transitions), "count"),
        ])
    }
}
