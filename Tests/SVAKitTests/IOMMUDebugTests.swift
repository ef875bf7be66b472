// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
@_spi(Testing) @testable import SVAKit

/// IOMMU_DEBUG_PAGEALLOC: the per-frame counts, the allocator's check and
/// its reports, in the three ways of lowering (linux, fast, window-aware).
@Suite struct IOMMUDebugTests {
    struct Rig {
        let m: Machine
        let iommu: IOMMU
        let domain: DomainID
    }

    /// A strict DMA domain on one IOMMU, with the sanitizer in `mode`.
    func rig(_ mode: IOMMUDebugMode, frames: Int = gib) throws -> Rig {
        var cfg = MachineConfig(frames: frames, eventLogCapacity: 1 << 14, workMode: .manual)
        cfg.iommuDebugPagealloc = mode
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU()
        let d = try m.createDomain(iommu: iommu.id, type: .dma)
        return Rig(m: m, iommu: iommu, domain: d)
    }

    static let on: [IOMMUDebugMode] = [.linux, .fast, .windowAware]

    @Test func offByDefaultAndNothingAllocated() throws {
        let m = try machine()
        #expect(!m.iommuDebugEnabled)
        #expect(m.cHandle.pointee.iommu_debug_initialized == 0)
        #expect(throws: SVAError.noDevice) { try m.iommuDebugMapCount(PFN(1)) }
        #expect(throws: SVAError.noDevice) { try m.iommuDebugStats() }
        #expect(try m.iommuDebugCheckUnmapped(PFN(1), count: 1) == 0, "the key is off: nothing checked")
    }

    @Test(arguments: on) func aPageFreedWhileMappedIsReported(mode: IOMMUDebugMode) throws {
        let r = try rig(mode)
        let p = try r.m.allocFrames(owner: 0x77)
        try r.m.iommuMap(r.domain, iova: 0x10_0000, phys: p.physicalAddress, size: 4096)
        #expect(try r.m.iommuDebugMapCount(p) == 1)
        try r.m.freeFrames(p)
        let rep = try #require(r.m.reports(from: 0).last)
        #expect(rep.kind == .leakAtFree && rep.frame == p && rep.mapCount == 1)
        #expect(rep.leakDomain == r.domain && rep.leakIOVA == 0x10_0000)
        #expect(rep.allocOwner == 0x77 && rep.allocSite == .api)
        #expect(rep.mappedStep != nil)
        #expect(rep.text.contains("iommu: Detected page leak!"))
        #expect(try r.m.iommuDebugStats().leaks == 1)
    }

    @Test func theKeyOffSeesNothing() throws {
        let r = try rig(.off)
        let p = try r.m.allocFrames()
        try r.m.iommuMap(r.domain, iova: 0x10_0000, phys: p.physicalAddress, size: 4096)
        try r.m.freeFrames(p)
        #expect(r.m.reports(from: 0).isEmpty, "negative control: without the sanitizer the free passes unseen")
    }

    @Test(arguments: on) func unmapThenFreeIsClean(mode: IOMMUDebugMode) throws {
        let r = try rig(mode)
        let p = try r.m.allocFrames(order: 9)
        try r.m.iommuMap(r.domain, iova: 1 << 30, phys: p.physicalAddress, size: 2 << 20)
        for i in [0, 1, 511] { #expect(try r.m.iommuDebugMapCount(p + i) == 1) }
        try r.m.iommuUnmap(r.domain, iova: 1 << 30, size: 2 << 20)
        for i in [0, 1, 511] { #expect(try r.m.iommuDebugMapCount(p + i) == 0) }
        try r.m.freeFrames(p)
        #expect(r.m.reports(from: 0).isEmpty)
        let s = try r.m.iommuDebugStats()
        #expect(s.raised == 512 && s.lowered == 512 && s.underflows == 0)
    }
}
