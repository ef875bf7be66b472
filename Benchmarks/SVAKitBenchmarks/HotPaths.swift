// SPDX-License-Identifier: Apache-2.0
import Benchmark
import SVAKit

/// The engine's hot paths under ordo-one/benchmark. Each sample runs
/// `scalingFactor` (1,000) operations; wall-clock time is shown, but the
/// thresholds in Thresholds/ (checked by scripts/bench-counts.sh) are on heap
/// allocations per sample only, never on times: CI shares a noisy 2-core VM
/// (docs/BENCHMARKS.md). The tolerance is zero: any change of a count fails.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 1000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
    )

    // The control: one heap allocation per operation, so a run that counts
    // none anywhere else shows the counter is live.
    Benchmark("control-one-allocation") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole([i, i &+ 1])
        }
    }

    // The kernel-address invalidation gate with no SVA bound: the static key
    // is off, so the call is a load and a branch.
    Benchmark("gate-key-off") { benchmark, m in
        for i in benchmark.scaledIterations {
            blackHole(m.invalidateKernelRange(UInt64(i) << 12, .max))
        }
    } setup: { () throws -> Machine in
        let m = try Machine(MachineConfig(frames: 1 << 18))
        precondition(!m.svaPresent, "the static key must be off")
        return m
    }

    // An ATS translation request that hits the IOTLB.
    Benchmark("translate-iotlb-hit") { (benchmark: Benchmark, s: DeviceSetup) throws in
        for _ in benchmark.scaledIterations {
            try s.translate()
        }
    } setup: {
        try DeviceSetup(caching: .full)
    }

    // An ATS translation request with caching off: a full 4-level walk.
    Benchmark("translate-full-walk") { (benchmark: Benchmark, s: DeviceSetup) throws in
        for _ in benchmark.scaledIterations {
            try s.translate()
        }
    } setup: {
        try DeviceSetup(caching: .none)
    }

    // Map and unmap one 4 KiB page in the kernel half; its PTE table was
    // allocated in setup and stays (unmap clears only the leaf).
    Benchmark("map-unmap-4k") { (benchmark: Benchmark, m: Machine) throws in
        let va = m.layout.vmallocStart + (64 << 30)
        for _ in benchmark.scaledIterations {
            try m.map(va, to: 0x20_0000)
            try m.unmap(va)
        }
    } setup: { () throws -> Machine in
        let m = try Machine(MachineConfig(frames: 1 << 18))
        let va = m.layout.vmallocStart + (64 << 30)
        try m.map(va, to: 0x20_0000)
        try m.unmap(va)
        return m
    }
}

/// One IOMMU, one device bound to one mm with one user page mapped, and the
/// page already translated once (so the IOTLB holds it when caching is on).
struct DeviceSetup {
    let m: Machine
    let translate: () throws -> Void

    init(caching: IOMMUCaching) throws {
        let m = try Machine(MachineConfig(frames: 1 << 18))
        let iommu = try m.addIOMMU(IOMMUConfig(caching: caching))
        let device = try m.addDevice(iommu: iommu.id)
        let mm = try m.createAddressSpace()
        let bond = try m.bindSVA(device: device, mm: mm)
        let va: UInt64 = 0x10_0000_0000
        try m.map(va, to: 0x20_0000, prot: PageTableEntry.user, in: mm)
        let pasid = bond.pasid
        translate = {
            guard case .success = try m.translateForDevice(device: device, pasid: pasid, va: va) else {
                fatalError("translation faulted")
            }
        }
        try translate()
        self.m = m
    }
}
