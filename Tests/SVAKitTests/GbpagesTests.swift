// SPDX-License-Identifier: Apache-2.0
import Testing
import SVAKitScenarios
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// The direct map with direct_gbpages (arch/x86/mm/init.c
/// adjust_range_page_size_mask, init_64.c phys_pud_init; set_memory.c's
/// split and collapse_pud_page since 41d88484c71c): 1 GiB leaves where a
/// whole GiB is RAM, and what that changes for hot-remove and set_memory.
@Suite struct GbpagesTests {
    static func machine(gbpages: Bool) throws -> Machine {
        var c = MachineConfig(frames: 4 * gib, eventLogCapacity: 1 << 14, workMode: .manual)
        c.directGbpages = gbpages
        return try Machine(c)
    }

    @Test("boot: a 1 GiB leaf for every whole GiB but the first (init_memory_mapping with direct_gbpages)")
    func bootMapsWholeGiBsWithOneLeaf() throws {
        let m = try Self.machine(gbpages: true), n = try Self.machine(gbpages: false)
        #expect(try m.translate(try m.directMapAddress(5 << 20)).isMapped(size: .size2M), "GiB 0 keeps 2 MiB leaves")
        for g: UInt64 in 1..<4 {
            let va = try m.directMapAddress(g << 30 + 0x1234_5000)
            #expect(try m.translate(va) == .mapped(phys: g << 30 + 0x1234_5000, size: .size1G,
                                                   entry: try m.translate(va).entry!, level: 3))
            #expect(try n.translate(va).isMapped(size: .size2M), "nogbpages: 2 MiB leaves")
        }
        #expect(m.stats.kernelTables == n.stats.kernelTables - 3, "no boot PMD table under GiBs 1-3")
        #expect(m.audit() == [])
    }

    /// remove_pud_table clears a 1 GiB leaf the range covers whole: no
    /// table is freed, so no window opens; a range that cuts the leaf is
    /// refused before anything changes.
    @Test("hot-remove of a whole 1 GiB leaf frees no table (remove_pud_table, init_64.c 6.12)")
    func hotRemoveOfAWholeGiBFreesNothing() throws {
        let m = try Self.machine(gbpages: true)
        let tables = m.stats.kernelTables
        let windows = TestMutex(0)
        m.setKernelWindowHook { _, _, _ in windows.withLock { $0 += 1 } }
        expectRefused(m, .busy) { try m.hotRemove(pfn: UInt64(3 * gib), pages: UInt64(sectionPages)) }
        try m.hotRemove(pfn: UInt64(3 * gib), pages: UInt64(gib))
        #expect(windows.withLock { $0 } == 0)
        #expect(m.stats.kernelTables == tables)
        #expect(try m.translate(try m.directMapAddress(3 << 30)) == .notPresent(level: 3))
        try m.hotAdd(pfn: UInt64(3 * gib), pages: UInt64(gib))
        #expect(try m.translate(try m.directMapAddress(3 << 30)).isMapped(size: .size1G), "hot-add maps it as boot did")
        #expect(m.audit() == [])
    }

    /// __split_large_page at both levels, each table linked with
    /// _KERNPG_TABLE; set_memory_rox over the whole GiB collapses the PTE
    /// table (collapse_pmd_page) and then the PMD table (collapse_pud_page).
    @Test("set_memory splits a 1 GiB leaf twice; set_memory_rox collapses both levels back")
    func splitAndCollapseBothLevels() throws {
        let m = try Self.machine(gbpages: true)
        let base = try m.directMapAddress(2 << 30), va = base + (7 << 21) + (3 << 12)
        try m.setMemory(va, pages: 1, clear: PageTableEntry.writable)
        let pmd = try m.tableUnder(va, level: 3), pte = try m.tableUnder(va, level: 2)
        for t in [pmd, pte] { #expect(try m.descriptor(t.pfn).flags.contains(.split)) }
        let pudEntry = try m.readEntry(table: try m.tableUnder(va, level: 4).pfn, index: UInt32(AddressLayout.index(va, level: 3)))
        let pmdEntry = try m.readEntry(table: pmd.pfn, index: UInt32(AddressLayout.index(va, level: 2)))
        #expect(pudEntry & PageTableEntry.user == 0 && pmdEntry & PageTableEntry.user == 0, "_KERNPG_TABLE")
        #expect(try m.translate(va).isMapped(size: .size4K))
        #expect(try m.translate(va + (1 << 21)).isMapped(size: .size2M), "the other 2 MiB stay large")
        // The whole GiB read-only and executable: the 2 MiB leaves change in
        // place, the PTE table collapses, then the PMD table.
        #expect(try m.setMemoryROX(base, pages: 1 << 18) == 2)
        for t in [pmd, pte] { #expect(try m.descriptor(t.pfn).kind == .free) }
        guard case .mapped(_, .size1G, let e, _) = try m.translate(va) else { Issue.record("not collapsed"); return }
        #expect(e.raw & (PageTableEntry.writable | PageTableEntry.noExecute) == 0)
        #expect(m.audit() == [])
    }

    /// Negative control: without gbpages collapse_pud_page returns at once.
    @Test func withoutGbpagesOnlyThePTETableCollapses() throws {
        let m = try Self.machine(gbpages: false)
        let base = try m.directMapAddress(2 << 30), va = base + (3 << 12)
        try m.setMemory(va, pages: 1, clear: PageTableEntry.writable)
        let pmd = try m.tableUnder(va, level: 3)
        #expect(try m.setMemoryROX(base, pages: 1 << 18) == 1)
        #expect(try m.descriptor(pmd.pfn).kind == .kernelTable, "the boot PMD table stays")
        #expect(try m.translate(va).isMapped(size: .size2M))
        #expect(m.audit() == [])
    }
}

extension Translation {
    func isMapped(size: PageSize) -> Bool {
        if case .mapped(_, let s, _, _) = self { return s == size }
        return false
    }
    var entry: PageTableEntry? {
        if case .mapped(_, _, let e, _) = self { return e }
        return nil
    }
}
