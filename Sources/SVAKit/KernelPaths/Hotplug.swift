// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// Memory hot-remove and hot-add of whole sections (arch/x86/mm/init_64.c:
/// arch_remove_memory -> remove_pagetable, arch_add_memory ->
/// init_memory_mapping). The model requires the range's frames to be free,
/// as offlining would have migrated them.
extension Machine {
    /// Memory hot-remove: frames offline, then remove_pagetable over their
    /// direct map (docs/KERNEL-MODEL.md §2.7 "Memory hot-remove").
    ///
    /// In the modes named after Linux (`FreeMode/immediate`,
    /// `FreeMode/linux619` and every design that frees at once) it runs in
    /// Linux's order: leaves cleared; each PTE table's leaves cleared and
    /// flush_tlb_all (remove_pte_table); then free_pte_table /
    /// free_pmd_table / free_pud_table (5-level only) free an emptied table
    /// *before* clearing the entry that points at it, under init_mm's
    /// page_table_lock; one flush_tlb_all at the end. Between a free and its
    /// clear a fresh walk still reaches the freed frame; the kernel window
    /// hook (``setKernelWindowHook(_:)``) runs there. In
    /// `FreeMode/complete` (beyond Linux) each emptied table is unlinked
    /// instead, and the batch is freed after the final flush: clear, flush,
    /// invalidate (the deferred work), free.
    public func hotRemove(pfn: UInt64, pages: UInt64) throws(SVAError) {
        let (first, end) = try checkSections(pfn: pfn, pages: pages)
        let start = layout.directMapBase + UInt64(first) << 12, stop = layout.directMapBase + UInt64(end) << 12
        // remove_pud_table would read a 1 GiB leaf the range only partly
        // covers as a PMD table; refuse before changing anything.
        guard !tables.withKernel({ k in k.cutsHugeLeaf(start, stop) }) else { throw .busy }
        try frames.offline(first, end)
        events.record(.hotRemove, site: .hotRemove, pfn: PFN(first), va: start, aux: UInt64(end - first))
        var batch = DetachedTables.none
        let root = tables.withKernel { k in k.root }
        removeTables(in: root, start, stop, into: &batch)
        flushTLBAll(site: .hotRemove)
        deferred.pagetableFree(batch, site: .hotRemove)
    }

    /// Memory hot-add of whole offline sections: the direct map rebuilt with
    /// tables from the page allocator. x86 takes them from alloc_low_pages(),
    /// which after boot is __get_free_pages(): not BOOTMEM and not marked
    /// PT_kernel either (only asm-generic/pgalloc.h marks), so linux-6.19
    /// frees them at once on the next hot-remove.
    public func hotAdd(pfn: UInt64, pages: UInt64) throws(SVAError) {
        let (first, end) = try checkSections(pfn: pfn, pages: pages)
        guard frames.isOffline(first, end) else { throw .busy }
        try allocatingTables { () throws(SVAError) in
            try tables.withKernel { k throws(SVAError) in
                try k.mapDirect(from: first, frames: end - first, flags: [], site: .hotAdd,
                                gbpages: config.directGbpages)
            }
        }
        frames.online(first, end)
        events.record(.hotAdd, site: .hotAdd, pfn: PFN(first), va: layout.directMapBase + pfn << 12,
                      aux: UInt64(end - first))
    }

    private func checkSections(pfn: UInt64, pages: UInt64) throws(SVAError) -> (Int, Int) {
        let sec = UInt64(sectionPages)
        guard pages > 0, pfn % sec == 0, pages % sec == 0 else { throw .invalidArgument }
        guard pfn < UInt64(frames.frameCount), pages <= UInt64(frames.frameCount) - pfn else { throw .outOfRange }
        return (Int(pfn), Int(pfn + pages))
    }

    /// Whether hot-remove frees a table before clearing its entry, as
    /// remove_pagetable does (every mode but `FreeMode/complete`, unless the
    /// explorer asked for Linux's order there: `hotRemoveInLinuxOrder`).
    var hotRemoveFreesBeforeClear: Bool {
        #if SVAKIT_SCHEDULE_POINTS
        if explorerLinuxHotRemoveOrder.locked({ $0 }) { return true }
        #endif
        return config.freeMode != .complete
    }

    /// remove_p4d_table / remove_pud_table / remove_pmd_table /
    /// remove_pte_table over [start, stop) of `table`, then the free_*_table
    /// of each child they emptied. Each step reads and writes under init_mm's
    /// page_table_lock and frees with no lock held.
    private func removeTables(in table: TableFrame, _ start: UInt64, _ stop: UInt64,
                              into batch: inout DetachedTables) {
        let span = AddressLayout.span(level: table.level)
        var a = start
        while a < stop {
            let next = min((a | (span - 1)) &+ 1, stop)
            let slot = EntrySlot(holder: table, index: AddressLayout.index(a, level: table.level))
            // What the entry holds: nothing, a leaf (cleared when the range
            // covers it whole), or a table to descend into.
            let child: TableFrame? = tables.withKernel { k in
                let e = k.entry(slot)
                guard e.isPresent else { return nil }
                if table.level == 1 || e.isHugeLeaf {
                    if a & (span - 1) == 0 && next & (span - 1) == 0 { k.setEntry(slot, .none) }
                    return nil
                }
                return k.child(of: slot)
            }
            if let child {
                removeTables(in: child, a, next, into: &batch)
                // free_pud_table frees PUD tables under a P4D entry only with
                // 5-level paging (pgtable_l5_enabled()); with 4-level paging
                // the PUD tables hang off the root, whose kernel half every mm
                // shares, and stay.
                if child.level < 3 || (child.level == 3 && layout.levels == 5) {
                    freeTableIfEmpty(slot, child, va: a & ~(span - 1), into: &batch)
                }
            }
            a = next
        }
        // remove_pte_table ends with flush_tlb_all, before free_pte_table.
        if table.level == 1 { flushTLBAll(site: .hotRemove) }
    }

    /// free_pte_table / free_pmd_table / free_pud_table: nothing unless all
    /// 512 entries are none; then, in Linux's order, free_pagetable() and
    /// only then the clear under the page_table_lock (the window between
    /// them is handed to the window hook); in complete, the clear first and
    /// the table into `batch`, freed after the final flush.
    private func freeTableIfEmpty(_ slot: EntrySlot, _ t: TableFrame, va: UInt64, into batch: inout DetachedTables) {
        guard hotRemoveFreesBeforeClear else {
            batch.append(contentsOf: tables.withKernel { k in k.isEmpty(t) ? k.unlink(slot, va: va, site: .hotRemove) : .none })
            return
        }
        let freed = tables.withKernel { k in k.isEmpty(t) ? k.detachStillLinked(slot, va: va) : .none }
        guard !freed.isEmpty else { return }
        deferred.pagetableFree(freed, site: .hotRemove)
        runKernelWindowHook(t.pfn, va: va, site: .hotRemove)
        tables.withKernel { k in k.clearAfterFree(slot, va: va, site: .hotRemove) }
    }
}

extension PTView {
    /// Whether a present 1 GiB or 512 GiB leaf straddles an end of [start, stop).
    func cutsHugeLeaf(_ start: UInt64, _ stop: UInt64) -> Bool {
        for edge in [start, stop] {
            let (s, present) = lastSlot(edge)
            if present, s.holder.level > 2, edge & (AddressLayout.span(level: s.holder.level) - 1) != 0 { return true }
        }
        return false
    }
}
