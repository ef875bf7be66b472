// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit

/// bind+unbind pairs per second: the first-bind path (domain created, key
/// on, then off again) and the path where another mm keeps the key on.
struct BindBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "bind", abstract: "SVA bind+unbind pairs per second.")
    static let benchName = "bind"
    static let pairsRange = 1...(1 << 36)

    @Option(help: "bind+unbind pairs per case (\(range(pairsRange))).") var pairs: Int = 200_000
    @OptionGroup var output: BenchOutput

    func validate() throws { try check(pairs, in: Self.pairsRange, "--pairs") }

    struct Config: Encodable { var pairs: Int }
    var benchConfig: Config { Config(pairs: pairs) }

    func measure(_ progress: Progress) throws -> Metrics {
        let m = try Machine(MachineConfig(frames: 1 << 18))
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id), other = try m.addDevice(iommu: iommu.id)
        let mm = try m.createAddressSpace(), keeper = try m.createAddressSpace()
        func rate(_ label: String) throws -> Double {
            progress.update("bind: \(label)")
            let t0 = nowNs()
            for _ in 0..<pairs { try m.unbindSVA(try m.bindSVA(device: dev, mm: mm)) }
            return Double(pairs) / (Double(nowNs() - t0) / 1e9)
        }
        let toggling = try rate("key toggling")
        let transitions = m.svaKeyTransitions
        _ = try m.bindSVA(device: other, mm: keeper)
        let steady = try rate("key held")
        // Rebinding a live bond only raises its count.
        let live = try m.bindSVA(device: dev, mm: mm)
        let refcount = try rate("refcount only")
        try m.unbindSVA(live)

        var metrics = Metrics()
        metrics.add("pairs_per_sec_key_toggling", toggling, "1/s")
        metrics.add("pairs_per_sec_key_held", steady, "1/s")
        metrics.add("pairs_per_sec_refcount_only", refcount, "1/s")
        metrics.add("key_transitions", count: Int(transitions))
        return metrics
    }
}
