// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
import SVAKitScenarios
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// Memory hot-remove in Linux's order (arch/x86/mm/init_64.c at 6.12.118,
/// unchanged in this respect through 7.0): remove_pte_table clears the PTEs
/// and flushes; free_pte_table / free_pmd_table call free_pagetable() and
/// only then clear the entry under init_mm's page_table_lock;
/// remove_pagetable ends with one flush_tlb_all. `complete` (beyond Linux)
/// clears, flushes, and defers the free behind the IOMMU invalidation.
@Suite struct HotRemoveOrderTests {
    /// A 2 GiB machine whose last GiB is removed: its boot PMD table, and a
    /// set_memory split table inside it.
    struct Setup {
        let m: Machine
        let first: UInt64, va: UInt64
        let pud: TableFrame, pmd: TableFrame, split: TableFrame

        init(_ mode: FreeMode, workMode: WorkMode = .manual) throws {
            m = try Machine(MachineConfig(frames: 2 * gib, eventLogCapacity: 1 << 14, freeMode: mode,
                                          workMode: workMode))
            first = UInt64(gib)
            va = try m.directMapAddress(first << 12)
            pud = try m.tableUnder(va, level: 4)
            pmd = try m.tableUnder(va, level: 3)
            try m.setMemory(va + (6 << 20), pages: 1, clear: PageTableEntry.writable)
            split = try m.tableUnder(va + (6 << 20), level: 2)
        }

        /// The PUD entry that points at the boot PMD table.
        var pudEntry: PageTableEntry {
            get throws { PageTableEntry(raw: try m.readEntry(table: pud.pfn, index: UInt32(AddressLayout.index(va, level: 3)))) }
        }
    }

    @Test("linux order: free_pmd_table frees the table before pud_clear; one flush_tlb_all after (init_64.c, 6.12)",
          arguments: [FreeMode.immediate, .linux619])
    func freesBeforeClear(_ mode: FreeMode) throws {
        let s = try Setup(mode)
        let rec = FlushRecorder(s.m)
        rec.watch([s.pmd.pfn, s.split.pfn])
        // In the window: the frame is free and the entry still names it.
        let seen = TestMutex<[(PFN, FrameKind, PageTableEntry)]>([])
        s.m.setKernelWindowHook { pfn, _, site in
            #expect(site == .hotRemove)
            let e = (try? s.pudEntry) ?? .none
            seen.withLock { $0.append((pfn, (try? s.m.descriptor(pfn))?.kind ?? .offline, e)) }
        }
        try s.m.hotRemove(pfn: s.first, pages: UInt64(gib))
        let windows = seen.withLock { $0 }
        #expect(windows.map(\.0) == [s.split.pfn, s.pmd.pfn], "free_pte_table, then free_pmd_table")
        #expect(windows.allSatisfy { $0.1 == .free }, "freed at once: neither table is PT_kernel-marked")
        #expect(windows.last?.2.pfn == s.pmd.pfn && windows.last?.2.isPresent == true,
                "the PUD entry still points at the freed PMD table")
        #expect(try s.pudEntry == .none)
        // The log: free, then unlink, for each table.
        for t in [s.split, s.pmd] {
            let h = trail(s.m, t).map(\.0)
            let free = h.lastIndex(of: .frameFree), unlink = h.lastIndex(of: .tableUnlink)
            #expect(free != nil && unlink != nil && free! < unlink!, "\(t): \(h)")
        }
        // remove_pte_table flushes with both tables live; the final
        // flush_tlb_all comes after both are freed.
        let flushes = rec.all
        #expect(flushes.count == 2)
        #expect(flushes.first?.watchedKinds == [.kernelTable, .kernelTable])
        #expect(flushes.last?.watchedKinds == [.free, .free])
        #expect(s.m.audit() == [])
    }

    @Test("complete (beyond Linux): clear, flush, then the tables go to the deferred work")
    func completeClearsFirst() throws {
        let s = try Setup(.complete)
        let rec = FlushRecorder(s.m)
        rec.watch([s.pmd.pfn, s.split.pfn])
        let windows = TestMutex(0)
        s.m.setKernelWindowHook { _, _, _ in windows.withLock { $0 += 1 } }
        try s.m.hotRemove(pfn: s.first, pages: UInt64(gib))
        #expect(windows.withLock { $0 } == 0, "no window")
        #expect(try s.pudEntry == .none)
        #expect(rec.all.last?.watchedKinds == [.kernelTable, .kernelTable], "the final flush comes before any free")
        #expect(s.m.deferredStats.pending == 2)
        s.m.runDeferredWork()
        for t in [s.pmd, s.split] {
            let h = trail(s.m, t)
            let types = h.map(\.0)
            let unlink = types.lastIndex(of: .tableUnlink), free = types.lastIndex(of: .frameFree)
            #expect(unlink != nil && free != nil && unlink! < free!, "\(t): \(types)")
            #expect(h.last?.1 == .pgtableWork)
        }
        #expect(s.m.audit() == [])
    }

    /// A device with nothing cached walks in the window: the live PUD entry
    /// leads it into the freed frame. Not a stale cache line: a fresh walk.
    @Test("linux order: a fresh walk in the window reaches the freed table", arguments: [FreeMode.immediate, .linux619])
    func freshWalkInTheWindow(_ mode: FreeMode) throws {
        let s = try Setup(mode)
        let dev = try SVASetup(s.m)
        let before = s.m.reportCount
        s.m.setKernelWindowHook { pfn, _, _ in
            guard pfn == s.pmd.pfn else { return }
            _ = try? dev.touch(s.m, s.va)
        }
        try s.m.hotRemove(pfn: s.first, pages: UInt64(gib))
        let r = s.m.reports(from: before)
        #expect(r.count == 1)
        #expect(r.first?.frame == s.pmd.pfn)
        #expect(r.first?.staleLevel == 0, "reached through a live entry, not a cache")
        #expect(s.m.audit() == [])
    }

    /// Negative control of the above: complete has no window, and the same
    /// device walk after the removal faults cleanly.
    @Test func completeLeavesNoWindowForAFreshWalk() throws {
        let s = try Setup(.complete)
        let dev = try SVASetup(s.m)
        let before = s.m.reportCount
        try s.m.hotRemove(pfn: s.first, pages: UInt64(gib))
        s.m.runDeferredWork()
        guard case .failure = try dev.touch(s.m, s.va) else { Issue.record("mapped after removal"); return }
        #expect(s.m.reports(from: before).isEmpty)
    }

    /// The deferral does not save Linux's order: a PT_kernel-marked table
    /// that free_pte_table queues while its PMD entry still points at it can
    /// be invalidated and freed by the worker (another CPU, at once: the
    /// work is scheduled with no delay) before pmd_clear runs. A device walk
    /// then reaches the freed table through the live entry, after the only
    /// invalidation the deferral makes. Linux 6.19 queues no hot-remove table
    /// on x86 (they come unmarked), so this is what marking them without
    /// reordering would leave (docs/KERNEL-MODEL.md §2.7).
    @Test("linux-6.19 order: the work can run between free_pte_table's queueing and its pmd_clear")
    func deferralRunsBeforeTheClear() throws {
        let s = try Setup(.linux619)
        let dev = try SVASetup(s.m)
        // A marked PTE table (pte_alloc_one_kernel) under the direct map,
        // linked by arch code through the primitives.
        let a = s.va + (10 << 20)
        let holder = try s.m.tableUnder(a, level: 3)
        let index = UInt32(AddressLayout.index(a, level: 2))
        let leaf = try s.m.readEntry(table: holder.pfn, index: index)
        try s.m.writeEntry(table: holder.pfn, index: index, 0)
        try s.m.flushTLBKernelRange(a, a + (2 << 20))
        let pte = try s.m.allocKernelTable(level: 1)
        for i in 0..<512 {
            try s.m.writeEntry(table: pte.pfn, index: UInt32(i),
                               PageTableEntry.leaf((leaf & PageTableEntry.pfnMask) + UInt64(i) << 12, level: 1,
                                                   prot: PageTableEntry.kernelProt).raw)
        }
        try s.m.linkTable(parent: holder.pfn, index: index, child: pte.pfn)
        let before = s.m.reportCount
        let invalidationsBefore = dev.iommu.counters.invalidations
        s.m.setKernelWindowHook { pfn, _, _ in
            guard pfn == pte.pfn else { return }
            #expect(s.m.deferredStats.pending == 1, "queued, still linked")
            s.m.runDeferredWork()   // the kworker, on another CPU
            _ = try? dev.touch(s.m, a)
        }
        try s.m.hotRemove(pfn: s.first, pages: UInt64(gib))
        #expect(dev.iommu.counters.invalidations > invalidationsBefore, "the work invalidated first")
        let r = s.m.reports(from: before)
        #expect(r.count == 1)
        #expect(r.first?.frame == pte.pfn)
        #expect(r.first?.staleLevel == 0)
        #expect(r.first?.freedBy == .pgtableWork)
        #expect(s.m.audit() == [])
    }
}
