// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// What a DMA domain's map and unmap do to its tables, per IOMMU profile, as
/// each Linux 6.12.118 driver does it (docs/KERNEL-MODEL.md §4.4b), with the
/// other profiles as controls. The differential test against
/// drivers/iommu/io-pgtable-arm.c itself is tests-c/kernel/pgtable/.
@Suite struct IOPgtableTests {
    /// A command the IOMMU's driver saw, with the event step it came at.
    enum Command: Equatable {
        case range(UInt64, UInt64, leaf: Bool, step: UInt64)
        case fence(step: UInt64)
    }

    final class Log: Sendable {
        let commands = Mutex<[Command]>([])
        func withLock<R>(_ body: (inout [Command]) -> R) -> R { commands.withLock { body(&$0) } }
    }

    /// A machine with one IOMMU of `profile`, a strict DMA domain on it and
    /// a driver that logs each command with the event clock.
    func setup(_ profile: IOMMUProfile) throws -> (Machine, IOMMU, DomainID, Log) {
        let m = try machine()
        var c = IOMMUConfig()
        c.profile = profile
        let iommu = try m.addIOMMU(c)
        let d = try m.createDomain(iommu: iommu.id, type: .dma)
        let log = Log()
        iommu.setDriver(IOMMUDriver(
            invalidateRange: { [weak m] _, s, e, leaf in
                let step = m?.events().last?.step ?? 0
                log.withLock { $0.append(.range(s, e, leaf: leaf, step: step)) }
            },
            fence: { [weak m] in
                let step = m?.events().last?.step ?? 0
                log.withLock { $0.append(.fence(step: step)) }
            }))
        return (m, iommu, d, log)
    }

    /// The IOMMU tables freed since `step`: (event step, level).
    func tableFrees(_ m: Machine, since step: UInt64) -> [(UInt64, Int)] {
        m.events(since: step).filter { $0.type == .frameFree && $0.kind == .iommuTable }.map { ($0.step, $0.level) }
    }

    func nextStep(_ m: Machine) -> UInt64 { (m.events().last?.step ?? 0) + 1 }

    // MARK: - (c) a block mapped over a table

    /// arm_lpae_init_pte (io-pgtable-arm.c, 6.12.118): a block over a table
    /// entry unmaps it first (__arm_lpae_unmap with no gather: the entry
    /// cleared, io_pgtable_tlb_flush_walk over its span, the table freed),
    /// then writes the block.
    @Test func ioPgtableArmReplacesAnEmptiedTableWithABlock() throws {
        let (m, _, d, log) = try setup(.smmuv3)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 4096)
        try m.iommuUnmap(d, iova: 0x20_0000, size: 4096)  // the PT table stays, empty
        let tables = m.stats.iommuTables
        let from = nextStep(m)
        log.withLock { $0.removeAll() }
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x40_0000, size: 2 << 20)
        #expect(try m.iovaToPhys(d, iova: 0x20_1234) == 0x40_1234)
        #expect(m.stats.iommuTables == tables - 1, "the PT table was freed")
        let frees = tableFrees(m, since: from)
        #expect(frees.map(\.1) == [1])
        let cmds = log.withLock { $0 }
        guard cmds.count == 2, case .range(0x20_0000, 0x3f_ffff, leaf: false, _) = cmds[0],
              case .fence(let fenced) = cmds[1], let free = frees.first else {
            Issue.record("expected a walk flush of the table's span and a sync, got \(cmds)"); return
        }
        #expect(fenced < free.0, "the sync comes before the free")
        #expect(m.audit() == [])
    }

    /// 6.12's arm_lpae_init_pte does not look inside the table: a block over
    /// a table that still maps pages replaces it too, and those pages are
    /// gone (their translations were dropped by the walk flush).
    @Test func ioPgtableArmReplacesALiveTableToo() throws {
        let (m, _, d, _) = try setup(.smmuv3)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 4096)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x40_0000, size: 2 << 20)
        #expect(try m.iovaToPhys(d, iova: 0x20_0000) == 0x40_0000)
        #expect(m.audit() == [])
    }

    /// A leaf in the way fails the map with -EEXIST; the tables before it in
    /// the same map_pages batch are freed first, nothing of the batch is
    /// written, and what earlier batches mapped is unmapped again.
    @Test func ioPgtableArmFailsAtALeafAfterFreeingTheTablesBeforeIt() throws {
        let (m, _, d, _) = try setup(.smmuv3)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 4096)     // a PT table at 2M
        try m.iommuMap(d, iova: 0x40_0000, phys: 0x60_0000, size: 2 << 20) // a block at 4M
        let tables = m.stats.iommuTables
        // 4K at 0x1f_f000 (one batch), then 2M blocks at 2M and 4M (one batch).
        #expect(throws: SVAError.exists) {
            try m.iommuMap(d, iova: 0x1f_f000, phys: 0x9f_f000, size: 0x40_1000)
        }
        #expect(m.stats.iommuTables == tables,
                "the table at 2M went before the leaf at 4M was seen; the one the first batch allocated stays")
        #expect(try m.iovaToPhys(d, iova: 0x1f_f000) == nil, "the first batch was unmapped again")
        #expect(try m.iovaToPhys(d, iova: 0x20_0000) == nil)
        #expect(try m.iovaToPhys(d, iova: 0x40_0000) == 0x60_0000)
        #expect(m.audit() == [])
    }

    /// VT-d, AMD, RISC-V and generic keep -EEXIST over any table here (the
    /// control; docs/KERNEL-MODEL.md §4.4b says what each driver does).
    @Test(arguments: [IOMMUProfile.generic, .vtd, .amd, .riscv])
    func otherProfilesRefuseABlockOverATable(_ p: IOMMUProfile) throws {
        let (m, _, d, _) = try setup(p)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 4096)
        try m.iommuUnmap(d, iova: 0x20_0000, size: 4096)
        #expect(throws: SVAError.exists) { try m.iommuMap(d, iova: 0x20_0000, phys: 0x40_0000, size: 2 << 20) }
        #expect(m.audit() == [])
    }

    // MARK: - splitting a block

    /// arm_lpae_split_blk_unmap: an unmap inside a block leaves the rest
    /// mapped through a new table of the next level, and unmaps what was
    /// asked only.
    @Test func ioPgtableArmSplitsABlock() throws {
        let (m, _, d, _) = try setup(.smmuv3)
        try m.iommuMap(d, iova: 0x4000_0000, phys: 0, size: 1 << 30)
        let tables = m.stats.iommuTables
        #expect(try m.iommuUnmap(d, iova: 0x4020_1000, size: 4096) == 4096)
        #expect(m.stats.iommuTables == tables + 2, "1G -> a PD of 2M blocks, one of them -> a PT")
        #expect(try m.iovaToPhys(d, iova: 0x4020_1000) == nil)
        #expect(try m.iovaToPhys(d, iova: 0x4020_2000) == 0x20_2000)
        #expect(try m.iovaToPhys(d, iova: 0x7fff_f000) == 0x3fff_f000)
        #expect(m.audit() == [])
    }

    /// arm_lpae_split_blk_unmap returns 0 bytes when it cannot allocate the
    /// table, and iommu_unmap stops: nothing changes (the IOMMU API says
    /// -ENOENT for an unmap of nothing).
    @Test func ioPgtableArmSplitThatCannotAllocateUnmapsNothing() throws {
        let (m, _, d, _) = try setup(.smmuv3)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x40_0000, size: 2 << 20)
        let tables = m.stats.iommuTables
        _ = m.failNthAllocation(1)
        #expect(throws: SVAError.notFound) { try m.iommuUnmap(d, iova: 0x20_1000, size: 4096) }
        _ = m.failNthAllocation(0)
        #expect(try m.iovaToPhys(d, iova: 0x20_1000) == 0x40_1000)
        #expect(m.stats.iommuTables == tables)
        #expect(m.audit() == [])
    }

    /// intel_iommu_unmap unmaps the whole large page (the control).
    @Test func vtdUnmapsTheWholeBlock() throws {
        let (m, _, d, _) = try setup(.vtd)
        try m.iommuMap(d, iova: 0x4000_0000, phys: 0, size: 1 << 30)
        #expect(try m.iommuUnmap(d, iova: 0x4020_1000, size: 4096) > 4096)
        #expect(try m.iovaToPhys(d, iova: 0x4000_0000) == nil)
        #expect(try m.iovaToPhys(d, iova: 0x4020_2000) == nil)
    }

    // MARK: - (d) when emptied tables are freed

    /// __arm_lpae_unmap: a table entry an unmap clears is walk-flushed
    /// (synchronously) and its tables freed before the unmap returns, even
    /// for a lazy unmap: the gather's freelist stays empty, so the flush
    /// queue has no table to hold.
    @Test func ioPgtableArmFreesTablesAtUnmap() throws {
        let (m, _, d, log) = try setup(.smmuv3)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 8192)
        let tables = m.stats.iommuTables
        let from = nextStep(m)
        log.withLock { $0.removeAll() }
        // The domain-level unmap, as a lazy dma_unmap calls it (no sync).
        let u = try m.domains.domain(d.rawValue).unmap(iova: 0x20_0000, size: 2 << 20)
        #expect(u.bytes == 2 << 20)
        let nothingLeft = u.freed.isEmpty
        #expect(nothingLeft, "nothing left for the freelist")
        #expect(m.stats.iommuTables == tables - 1)
        let frees = tableFrees(m, since: from)
        let cmds = log.withLock { $0 }
        guard cmds.count == 2, case .range(0x20_0000, 0x3f_ffff, leaf: false, _) = cmds[0],
              case .fence(let fenced) = cmds[1], frees.count == 1 else {
            Issue.record("expected one walk flush and a sync, got \(cmds)"); return
        }
        #expect(fenced < frees[0].0)
        _ = consume u
        #expect(m.audit() == [])
    }

    /// The same through the DMA API on a lazy (DMA-FQ) default domain: the
    /// table a dma_unmap empties is gone when the unmap returns, before any
    /// flush-queue flush, so the queue's entry holds no table.
    @Test func aLazyDMAUnmapOnSMMUv3FreesTheTableBeforeTheFlush() throws {
        let m = try machine()
        var c = IOMMUConfig()
        c.profile = .smmuv3
        let iommu = try m.addIOMMU(c)
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        let (d, _) = try m.setupDMA(for: dev)
        #expect(try m.domainType(d) == .dmaFQ)
        // 2 MiB at an unaligned physical address: 512 4 KiB leaves in one PT
        // table, at a 2 MiB-aligned IOVA (size-aligned IOVA allocation).
        let a = try m.dmaMapPage(device: dev, phys: 0x1000, size: 2 << 20, direction: .bidirectional)
        #expect(a % (2 << 20) == 0)
        let tables = m.stats.iommuTables
        try m.dmaUnmapPage(device: dev, address: a, size: 2 << 20, direction: .bidirectional)
        #expect(m.stats.iommuTables == tables - 1, "the PT table went at the unmap, before any flush")
        m.flushDMAQueues()
        #expect(m.stats.iommuTables == tables - 1)
        #expect(m.audit() == [])
    }

    /// intel/iommu.c: the tables go on the gather's freelist (domain_unmap),
    /// freed after intel_iommu_tlb_sync or the flush queue's flush; the
    /// domain-level unmap frees nothing (the control; RISC-V and generic
    /// follow it).
    @Test(arguments: [IOMMUProfile.vtd, .generic, .riscv])
    func gatherProfilesLeaveTablesOnTheFreelist(_ p: IOMMUProfile) throws {
        let (m, _, d, _) = try setup(p)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 8192)
        let tables = m.stats.iommuTables
        let u = try m.domains.domain(d.rawValue).unmap(iova: 0x20_0000, size: 2 << 20)
        let onTheFreelist = !u.freed.isEmpty
        #expect(onTheFreelist)
        #expect(m.stats.iommuTables == tables, "not freed before the sync")
        m.domains.putPages(u.takeTables())
        #expect(m.stats.iommuTables == tables - 1)
    }

    /// amd/io_pgtable.c iommu_v1_unmap_pages (and io_pgtable_v2.c) clear
    /// leaves only: the emptied table stays, and the unmap stops at the
    /// first hole like any other.
    @Test func amdUnmapFreesNoTable() throws {
        let (m, iommu, d, _) = try setup(.amd)
        try m.iommuMap(d, iova: 0x20_0000, phys: 0x1000, size: 8192)
        let tables = m.stats.iommuTables
        let before = iommu.counters
        #expect(try m.iommuUnmap(d, iova: 0x20_0000, size: 2 << 20) == 8192)
        #expect(m.stats.iommuTables == tables)
        #expect(iommu.counters.leafRangeInvalidations == before.leafRangeInvalidations + 1)
        #expect(try m.iovaToPhys(d, iova: 0x20_1000) == nil)
        #expect(m.audit() == [])
    }

    // MARK: - the upper half of a domain's IOVA space

    /// A DMA domain has no shared kernel half: freeing it frees the tables
    /// that map IOVAs at and above 1 << 47 too (they leaked, marked linked,
    /// and the machine check failed).
    @Test(arguments: IOMMUProfile.allCases)
    func freeingADomainFreesItsUpperHalfTables(_ p: IOMMUProfile) throws {
        let m = try machine()
        var c = IOMMUConfig()
        c.profile = p
        let iommu = try m.addIOMMU(c)
        let before = m.stats.iommuTables
        let d = try m.createDomain(iommu: iommu.id, type: .dma)
        try m.iommuMap(d, iova: 1 << 47, phys: 0x1000, size: 4096)
        try m.iommuMap(d, iova: (1 << 48) - 4096, phys: 0x2000, size: 4096)
        try m.freeDomain(d)
        #expect(m.stats.iommuTables == before)
        #expect(m.audit() == [])
    }
}
