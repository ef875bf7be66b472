// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// Leak reports drained in one place, on every public path that can
/// allocate a table (issue 20, item 6): a frame freed while a DMA domain
/// still maps it comes back as the first table the path allocates (LIFO),
/// and the handler hears of that leak during the call, not at the next
/// report read or table-allocating call.
@Suite struct LeakDrainTests {
    final class Heard: Sendable {
        let reports = Mutex<[UAFReport]>([])
        var leaksAtAlloc: [UAFReport] { reports.withLock { $0.filter { $0.kind == .leakAtAlloc } } }
    }

    struct Rig {
        let m: Machine
        let leaked: PFN
        let heard: Heard
    }

    /// A machine with the sanitizer on and one frame freed while mapped: the
    /// next frame the allocator hands out. The handler is installed after
    /// the leak at free, so it hears only what comes next.
    func rig(_ config: MachineConfig = MachineConfig(frames: gib, eventLogCapacity: 1 << 14, workMode: .manual),
             prepare: (Machine) throws -> Void = { _ in }) throws -> Rig {
        var cfg = config
        cfg.iommuDebugPagealloc = .fast
        let m = try Machine(cfg)
        try prepare(m)
        let iommu = try m.addIOMMU()
        let d = try m.createDomain(iommu: iommu.id, type: .dma)
        let p = try m.allocFrames()
        try m.iommuMap(d, iova: 0x4000_0000, phys: p.physicalAddress, size: 4096)
        try m.freeFrames(p)                                            // the leak at free
        let heard = Heard()
        m.setReportHandler { r in heard.reports.withLock { $0.append(r) } }
        return Rig(m: m, leaked: p, heard: heard)
    }

    /// What every test checks right after the call, before anything reads
    /// the report log (a read drains too).
    func expectHeardDuringTheCall(_ r: Rig, _ kind: FrameKind, _ comment: Comment) {
        let leaks = r.heard.leaksAtAlloc
        #expect(leaks.count == 1, comment)
        #expect(leaks.first?.frame == r.leaked && leaks.first?.foundKind == kind, comment)
    }

    @Test func createAddressSpace() throws {
        let r = try rig()
        _ = try r.m.createAddressSpace()
        expectHeardDuringTheCall(r, .userTable, "mm_alloc's root")
    }

    @Test func allocKernelTable() throws {
        let r = try rig()
        _ = try r.m.allocKernelTable(level: 1)
        expectHeardDuringTheCall(r, .kernelTable, "pte_alloc_one_kernel")
    }

    @Test func setMemorySplit() throws {
        let r = try rig()
        // A page of the direct map, mapped by a 2 MiB leaf: the split takes a PTE table.
        let va = try r.m.directMapAddress(UInt64(gib / 2) << 12)
        try r.m.setMemory(va, pages: 1, clear: PageTableEntry.writable)
        expectHeardDuringTheCall(r, .kernelTable, "set_memory's split")
    }

    @Test func vmapHuge() throws {
        let r = try rig()
        // Far into the vmalloc area: a PMD table under the existing PUD table.
        let va = r.m.layout.vmallocStart + (1 << 38)
        let block = try r.m.allocFrames(order: 9)
        try r.m.vmapHuge(va, phys: block.physicalAddress, size: .size2M)
        expectHeardDuringTheCall(r, .kernelTable, "vmap_try_huge_pmd's tables")
    }

    @Test func hotAdd() throws {
        // 2 GiB; the upper GiB removed takes its PMD table with it, so
        // adding it back allocates one (the leaked frame).
        let gibFrames = 1 << 18
        let cfg = MachineConfig(frames: 2 * gibFrames, eventLogCapacity: 1 << 14, workMode: .manual)
        let r = try rig(cfg) { m in
            try m.hotRemove(pfn: UInt64(gibFrames), pages: UInt64(gibFrames))
            m.flushDeferredWork()
        }
        try r.m.hotAdd(pfn: UInt64(gibFrames), pages: UInt64(gibFrames))
        expectHeardDuringTheCall(r, .kernelTable, "the direct map's tables for the added memory")
    }

    @Test func createDomain() throws {
        let r = try rig()
        _ = try r.m.createDomain(iommu: IOMMUID(0), type: .dma)
        expectHeardDuringTheCall(r, .iommuTable, "iommu_domain_alloc's root")
    }

    @Test func setupDMA() throws {
        let r = try rig()
        let dev = try r.m.addDevice(iommu: IOMMUID(0), sva: false)
        _ = try r.m.setupDMA(for: dev)
        expectHeardDuringTheCall(r, .iommuTable, "the default domain's root")
    }

    @Test func bindSVAUnderKptiRoot() throws {
        let cfg = MachineConfig(frames: gib, eventLogCapacity: 1 << 14, workMode: .manual).with(.kptiRoot)
        var mm = MMID.initMM
        let r = try rig(cfg) { m in mm = try m.createAddressSpace() }
        let dev = try r.m.addDevice(iommu: IOMMUID(0))
        _ = try r.m.bindSVA(device: dev, mm: mm)
        expectHeardDuringTheCall(r, .userTable, "kpti-root's IOMMU-only root, made at the first bind")
    }

    @Test func attachPASIDUnderKptiRoot() throws {
        let cfg = MachineConfig(frames: gib, eventLogCapacity: 1 << 14, workMode: .manual).with(.kptiRoot)
        var mm = MMID.initMM
        let r = try rig(cfg) { m in mm = try m.createAddressSpace() }
        let dev = try r.m.addDevice(iommu: IOMMUID(0), sva: false)
        try r.m.attachPASID(device: dev, pasid: PASID(5), mm: mm)
        expectHeardDuringTheCall(r, .userTable, "kpti-root's IOMMU-only root, made at the first attach")
    }
}
