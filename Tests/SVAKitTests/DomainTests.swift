// SPDX-License-Identifier: Apache-2.0
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// DMA domains: their own IOMMU tables, a device's requests without PASID,
/// the strict unmap, and the two halves of the oracle on them (a freed IOMMU
/// table reached through a walk cache, a freed data page reached through a
/// stale IOTLB entry).
@Suite struct DomainTests {
    /// A machine with one IOMMU, one device and a DMA domain attached to it.
    func setup(type: DomainType = .dma, pageSizes: UInt64 = Machine.defaultPageSizes)
        throws -> (Machine, IOMMU, DeviceID, DomainID) {
        let m = try machine()
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        let d = try m.createDomain(iommu: iommu.id, type: type, pageSizes: pageSizes)
        try m.attachDomain(d, to: dev)
        return (m, iommu, dev, d)
    }

    func read(_ m: Machine, _ dev: DeviceID, _ iova: UInt64) throws -> Result<[UInt8], DMAFault> {
        try m.dmaRead(device: dev, pasid: .noPASID, va: iova, count: 8)
    }

    func word(_ r: Result<[UInt8], DMAFault>) -> UInt64? {
        guard case .success(let b) = r else { return nil }
        return b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    @Test func aDeviceReadsThroughItsDomainAndFaultsAfterAStrictUnmap() throws {
        let (m, iommu, dev, d) = try setup()
        let buf = try m.allocFrames(owner: 0xd1)
        try m.writeWord(buf, index: 0, 0x1122_3344)
        let tablesBefore = m.stats.iommuTables
        try m.iommuMap(d, iova: 0x20_0000, phys: buf.physicalAddress, size: 4096)
        #expect(m.stats.iommuTables == tablesBefore + 3, "PDPT, PD and PT tables under the root")
        #expect(try m.iovaToPhys(d, iova: 0x20_0008) == buf.physicalAddress + 8)
        #expect(word(try read(m, dev, 0x20_0000)) == 0x1122_3344)
        #expect(word(try read(m, dev, 0x20_0000)) == 0x1122_3344)
        #expect(iommu.counters.iotlbHits == 1)
        let before = iommu.counters
        // A 2 MiB unmap over the PT table's whole span: the table goes with
        // the leaf, so a non-leaf invalidation, then a sync, then the free.
        #expect(try m.iommuUnmap(d, iova: 0x20_0000, size: 2 << 20) == 2 << 20)
        let after = iommu.counters
        #expect(after.rangeInvalidations == before.rangeInvalidations + 1)
        #expect(after.leafRangeInvalidations == before.leafRangeInvalidations)
        #expect(after.fences == before.fences + 1)
        #expect(m.stats.iommuTables == tablesBefore + 2, "the PT table was freed, the PD and PDPT stay")
        guard case .failure(let f) = try read(m, dev, 0x20_0000) else {
            Issue.record("the device still reads after a strict unmap"); return
        }
        #expect(f.reason == .notPresent && f.level == 2)
        #expect(m.reportCount == 0)
        #expect(m.audit() == [])
    }

    @Test func anUnmapThatKeepsItsTablesInvalidatesLeavesOnly() throws {
        let (m, iommu, _, d) = try setup()
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 2 * 4096)
        let tables = m.stats.iommuTables
        let before = iommu.counters
        try m.iommuUnmap(d, iova: 0x20_0000, size: 4096)
        #expect(iommu.counters.leafRangeInvalidations == before.leafRangeInvalidations + 1)
        #expect(iommu.counters.rangeInvalidations == before.rangeInvalidations)
        #expect(try m.iovaToPhys(d, iova: 0x20_1000) == 0x2000)
        #expect(try m.iovaToPhys(d, iova: 0x20_0000) == nil)
        // Emptying the PT table with 4 KiB unmaps leaves it in place (as
        // io-pgtable does): still a leaf-only invalidation.
        try m.iommuUnmap(d, iova: 0x20_1000, size: 4096)
        #expect(iommu.counters.leafRangeInvalidations == before.leafRangeInvalidations + 2)
        #expect(m.stats.iommuTables == tables)
        // An unmap stops at the first hole.
        try m.iommuMap(d, iova: 0x40_0000, phys: 0x1000, size: 4096)
        try m.iommuMap(d, iova: 0x40_2000, phys: 0x1000, size: 4096)
        #expect(try m.iommuUnmap(d, iova: 0x40_0000, size: 3 * 4096) == 4096)
        #expect(try m.iovaToPhys(d, iova: 0x40_2000) == 0x1000)
        #expect(m.audit() == [])
    }

    /// The negative control of the strict unmap, single-threaded: the entries
    /// are cleared but the IOTLB is not invalidated (the first half of a lazy
    /// unmap), the driver frees its buffer, someone else gets the frame. The
    /// device's next read hits the stale IOTLB line and lands in the new
    /// owner's page; the oracle reports it, every run.
    @Test func withoutTheInvalidationAStaleIOTLBEntryReachesAReallocatedPage() throws {
        let (m, _, dev, d) = try setup()
        let buf = try m.allocFrames(owner: 0xd1)
        try m.iommuMap(d, iova: 0x10_0000, phys: buf.physicalAddress, size: 4096)
        _ = try read(m, dev, 0x10_0000)                       // fills the IOTLB
        let domain = try m.domains.domain(d.rawValue)
        let u = try domain.unmap(iova: 0x10_0000, size: 4096)  // no invalidation
        #expect(u.bytes == 4096)
        m.domains.putPages(u.takeTables())                           // (tables: not walked on an IOTLB hit)
        try m.freeFrames(buf)
        let secret = try m.allocFrames(owner: 0x5ec)
        #expect(secret == buf, "LIFO reuse hands the buffer to the next caller")
        try m.writeWord(secret, index: 0, 0x2121_5445_5243_4553)
        #expect(word(try read(m, dev, 0x10_0000)) == 0x2121_5445_5243_4553, "the device read the new owner's data")
        #expect(m.reportCount == 1)
        let r = try #require(m.reports.first)
        #expect(r.isDataPage && r.staleLevel == 1 && r.frame == buf)
        #expect(r.expectedGeneration == 0 && r.foundGeneration == 1)
        #expect(r.reallocOwner == 0x5ec)
        #expect(!r.corruption)
        #expect(r.text.hasPrefix("BUG: SVAKit: DMA use-after-free through a stale IOTLB entry"))
        // A write through the same line corrupts the new owner's page.
        let fault = try withUnsafeBytes(of: UInt64(0xbad)) { b in
            try m.dmaWrite(device: dev, pasid: .noPASID, va: 0x10_0000, from: b)
        }
        #expect(fault == nil)
        #expect(try m.readWord(secret, index: 0) == 0xbad)
        #expect(m.reports.last?.corruption == true)
        #expect(m.audit() == [])
    }

    @Test func aFrameFreedWhileStillMappedIsNotAStaleEntry() throws {
        // The sanitizer's bug, not this oracle's: the live tables still map
        // the frame, so a hit on it is not a stale line.
        let (m, _, dev, d) = try setup()
        let buf = try m.allocFrames()
        try m.iommuMap(d, iova: 0x10_0000, phys: buf.physicalAddress, size: 4096)
        _ = try read(m, dev, 0x10_0000)
        try m.freeFrames(buf)
        _ = try m.allocFrames()
        _ = try read(m, dev, 0x10_0000)
        #expect(m.reportCount == 0)
    }

    /// The table half of the oracle on IOMMU tables: a PTE table the unmap
    /// freed without invalidation is reallocated as data; the device's walk
    /// from the cached PDE reads it.
    @Test func aFreedIOMMUTableReachedThroughTheWalkCacheIsReported() throws {
        let (m, _, dev, d) = try setup()
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 4096)
        try m.iommuMap(d, iova: 0x40_0000, phys: 0x2000, size: 4096)  // keeps the PD table alive
        _ = try read(m, dev, 0x20_0000)                                   // caches the PDE
        let domain = try m.domains.domain(d.rawValue)
        let u = try domain.unmap(iova: 0x20_0000, size: 2 << 20)          // frees the PT, no invalidation
        let freed = u.takeTables().release()
        #expect(freed.count == 1)
        for t in freed { m.frames.free(t.pfn, site: .unmap) }
        let planted = try m.allocFrames(owner: 0xbad)
        #expect(planted == freed.first?.pfn)
        // Entry 1 (iova 0x20_1000, which the IOTLB has not seen) -> 0x5000.
        try m.writeWord(planted, index: 1, 0x5000 | PageTableEntry.present | PageTableEntry.user)
        _ = try read(m, dev, 0x20_1040)
        let r = try #require(m.reports.first)
        #expect(!r.isDataPage && r.staleLevel == 2 && r.expectedLevel == 1 && r.foundKind == .data)
        #expect(r.escalationPhysicalAddress == 0x5040)
        #expect(m.audit() == [])
    }

    @Test func pageSizesFollowTheBitmapAndTheAlignment() throws {
        let (m, _, _, d) = try setup()
        let tables = m.stats.iommuTables
        try m.iommuMap(d, iova: 0x4000_0000, phys: 0x20_0000, size: 2 << 20)
        #expect(m.stats.iommuTables == tables + 2, "one 2 MiB leaf in a PD: no PT")
        #expect(try m.iommuUnmap(d, iova: 0x4000_0000, size: 4096) == 2 << 20, "a cut into a 2 MiB page unmaps it whole")
        let (m4, _, _, d4) = try setup(pageSizes: 0x1000)
        try m4.iommuMap(d4, iova: 0x4000_0000, phys: 0x20_0000, size: 2 << 20)
        #expect(try m4.iovaToPhys(d4, iova: 0x4010_0000) == 0x30_0000)
        #expect(try m4.iommuUnmap(d4, iova: 0x4000_0000, size: 4096) == 4096)
        let (m64, _, _, d64) = try setup(pageSizes: 0x1_0000 | 0x20_0000)
        expectRefused(m64, .invalidArgument) { try m64.iommuMap(d64, iova: 0x1000, phys: 0, size: 0x1_0000) }
        expectRefused(m64, .invalidArgument) { try m64.iommuMap(d64, iova: 0, phys: 0, size: 0x1000) }
        try m64.iommuMap(d64, iova: 0x1_0000, phys: 0x1_0000, size: 0x1_0000)
        #expect(try m64.iommuUnmap(d64, iova: 0x1_0000, size: 0x1_0000) == 0x1_0000)
        for m in [m, m4, m64] { #expect(m.audit() == []) }
    }

    @Test func badInputChangesNothing() throws {
        let (m, _, dev, d) = try setup()
        try m.iommuMap(d, iova: 0x10_0000, phys: 0x1000, size: 4096)
        expectRefused(m, .exists) { try m.iommuMap(d, iova: 0xf_f000, phys: 0x1000, size: 3 * 4096) }
        #expect(try m.iovaToPhys(d, iova: 0xf_f000) == nil, "the part mapped before the clash is undone")
        expectRefused(m, .invalidArgument) { try m.iommuMap(d, iova: 0x10_0800, phys: 0x1000, size: 4096) }
        expectRefused(m, .invalidArgument) { try m.iommuMap(d, iova: 0x20_0000, phys: 0, size: 0) }
        expectRefused(m, .outOfRange) { try m.iommuMap(d, iova: 1 << 48, phys: 0, size: 4096) }
        expectRefused(m, .outOfRange) { try m.iommuMap(d, iova: 0x20_0000, phys: UInt64(gib) << 12, size: 4096) }
        expectRefused(m, .notFound) { try m.iommuUnmap(d, iova: 0x20_0000, size: 4096) }
        expectRefused(m, .noDevice) { try m.iommuMap(DomainID(99), iova: 0, phys: 0, size: 4096) }
        expectRefused(m, .busy) { try m.attachDomain(d, to: dev) }
        expectRefused(m, .busy) { try m.freeDomain(d) }
        expectRefused(m, .noDevice) { _ = try m.createDomain(iommu: IOMMUID(7)) }
        expectRefused(m, .invalidArgument) { _ = try m.createDomain(iommu: 0, pageSizes: 0x20_0000) }
        let other = try m.addIOMMU()
        let foreign = try m.createDomain(iommu: other.id)
        expectRefused(m, .invalidArgument) { try m.attachDomain(foreign, to: dev) }
        // Detach, free: the tables and the root go back.
        try m.detachDomain(from: dev)
        guard case .failure(let f) = try read(m, dev, 0x10_0000) else { Issue.record("read after detach"); return }
        #expect(f.reason == .noPASID)
        let tables = m.stats.iommuTables
        try m.freeDomain(d)
        #expect(m.stats.iommuTables == tables - 4)
        try m.freeDomain(foreign)
        #expect(m.stats.iommuTables == tables - 5)
        expectRefused(m, .noDevice) { try m.freeDomain(d) }
        #expect(m.audit() == [])
    }

    @Test func anIdentityDomainPassesAddressesThrough() throws {
        let (m, iommu, dev, d) = try setup(type: .identity)
        let buf = try m.allocFrames()
        try m.writeWord(buf, index: 1, 42)
        #expect(word(try read(m, dev, buf.physicalAddress + 8)) == 42)
        #expect(iommu.cachedEntries == (0, 0))
        expectRefused(m, .invalidArgument) { try m.iommuMap(d, iova: 0, phys: 0, size: 4096) }
        #expect(try m.iovaToPhys(d, iova: 0x1234) == 0x1234)
    }

    @Test func failNthMapFailsCleanlyAtEveryTableAllocation() throws {
        var n = 1
        while true {
            let (m, _, _, d) = try setup()
            let allocs = m.stats.allocs
            m.failNthAllocation(n)
            do {
                try m.iommuMap(d, iova: 0x7f_0000_0000, phys: 0, size: 3 * 4096)
                #expect(try m.iovaToPhys(d, iova: 0x7f_0000_2000) == 0x2000)
                break
            } catch {
                #expect(error == .outOfMemory)
                #expect(try m.iovaToPhys(d, iova: 0x7f_0000_0000) == nil, "a failed map leaves nothing mapped")
                #expect(m.stats.allocs == allocs + n - 1, "the tables before the failure stay, as Linux leaves them")
                #expect(m.audit() == [])
            }
            n += 1
        }
        #expect(n == 4, "three tables to allocate")
    }
}
