// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// Everything at once on a machine in `complete` mode with the worker thread:
/// threads freeing kernel tables through every path, devices doing DMA into
/// the same ranges, binds and unbinds, the gate. Zero use-after-free reports
/// allowed. CI runs this suite under ThreadSanitizer as well (scripts/test.sh).
/// SVAKIT_STRESS_ROUNDS scales it (default 200; about 2 s here, under 20 s with TSan).
@Suite struct StressTests {
    var rounds: Int {
        if let s = getenv("SVAKIT_STRESS_ROUNDS"), let n = Int(String(cString: s)), n > 0 { return n }
        return 200
    }

    @Test func everythingAtOnceInCompleteModeReportsNothing() async throws {
        let seed = testSeed("everythingAtOnceInCompleteModeReportsNothing")
        let m = try Machine(MachineConfig(frames: 4 * gib, eventLogCapacity: 1 << 12, freeMode: .complete,
                                          workMode: .thread, maxPending: 64))
        let iommus = try (0..<2).map { _ in try m.addIOMMU() }
        let devices = try (0..<4).map { try m.addDevice(iommu: iommus[$0 % 2].id) }
        let mms = try (0..<3).map { _ in try m.createAddressSpace() }
        let region = m.layout.vmallocStart + (16 << 30)
        let pudRegion = m.layout.vmallocStart + (32 << 30)
        @Sendable func slot(_ k: Int) -> UInt64 { region + UInt64(k) << 21 }
        let shared = Shared()
        let rounds = self.rounds

        try await withThrowingTaskGroup(of: Void.self) { g in
            g.addTask {  // pmd_free_pte_page on slots 0..<8
                var rng = SplitMix64(seed: seed)
                for k in 0..<8 { try m.map(slot(k), to: 0x1000) }
                for _ in 0..<rounds * 4 {
                    let va = slot(rng.next(below: 8))
                    try m.vunmap(va, size: 2 << 20)
                    try m.vmapHuge(va, phys: 0, size: .size2M)
                    try m.vunmap(va, size: 2 << 20)
                    _ = try? plantLeaf(m, va: va, level: 1, target: PFN(0))
                    try m.map(va + UInt64(rng.next(below: 512)) << 12, to: 0x1000)
                }
            }
            g.addTask {  // pud_free_pmd_page and set_memory collapse
                var rng = SplitMix64(seed: seed &+ 1)
                for _ in 0..<rounds {
                    try m.map(pudRegion + UInt64(rng.next(below: 512)) << 21, to: 0x1000)
                    try m.vunmap(pudRegion, size: 1 << 30)
                    try m.vmapHuge(pudRegion, phys: 0, size: .size1G)
                    try m.vunmap(pudRegion, size: 1 << 30)
                    let d = try m.directMapAddress(UInt64(rng.next(below: 256)) << 21)
                    try m.setMemory(d, pages: 1, clear: PageTableEntry.writable)
                    try m.setMemory(d, pages: 1, set: PageTableEntry.writable)
                    try m.collapseLargePages(d)
                }
            }
            g.addTask {  // hot-remove and hot-add of boot-time memory
                let first = UInt64(3 * gib)
                for _ in 0..<max(1, rounds / 20) {
                    try m.hotRemove(pfn: first, pages: UInt64(gib))
                    try m.hotAdd(pfn: first, pages: UInt64(gib))
                }
            }
            g.addTask {  // bind and unbind
                var rng = SplitMix64(seed: seed &+ 2)
                for _ in 0..<rounds * 2 {
                    let b = try m.bindSVA(device: devices[rng.next(below: devices.count)], mm: mms[rng.next(below: mms.count)])
                    let d = m.device(of: b)!
                    shared.bound.locked { $0[b] = d }
                    if rng.next(below: 2) == 0, let (victim, _) = shared.bound.locked({ $0.randomElement(using: &rng) }) {
                        try m.unbindSVA(victim)
                        let gone = (m.device(of: victim) == nil)
                        if gone { shared.bound.locked { $0[victim] = nil } }
                    }
                }
            }
            for t in 0..<2 {  // devices touching every range, and the gate
                g.addTask {
                    var rng = SplitMix64(seed: seed &+ 100 &+ UInt64(t))
                    let hot = try m.directMapAddress(UInt64(3 * gib) << 12)
                    for i in 0..<rounds * 20 {
                        guard let (b, d) = shared.bound.locked({ $0.randomElement(using: &rng) }) else { continue }
                        let va: UInt64
                        switch i % 4 {
                        case 0: va = slot(rng.next(below: 8)) + UInt64(rng.next(below: 512)) << 12
                        case 1: va = pudRegion + UInt64(rng.next(below: 512)) << 21
                        case 2: va = hot + UInt64(rng.next(below: 512)) << 21
                        default: va = try m.directMapAddress(UInt64(rng.next(below: 256)) << 21)
                        }
                        _ = try? m.dmaRead(device: d, pasid: b.pasid, va: va, count: 8)
                        if rng.next(below: 16) == 0 { m.invalidateKernelRange(m.layout.directMapBase, .max) }
                    }
                }
            }
            try await g.waitForAll()
        }
        m.flushDeferredWork()
        #expect(m.reportCount == 0, "\(m.reports.first?.text ?? "")")
        #expect(m.deferredStats.framesDeferred > 0)
        #expect(m.deferredStats.pending == 0)
        #expect(m.audit() == [])
    }
}
