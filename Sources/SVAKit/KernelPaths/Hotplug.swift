// SPDX-License-Identifier: Apache-2.0

/// Memory hot-remove and hot-add of whole sections (arch/x86/mm/init_64.c:
/// arch_remove_memory -> remove_pagetable, arch_add_memory ->
/// init_memory_mapping). The model requires the range's frames to be free,
/// as offlining would have migrated them.
extension Machine {
    /// Memory hot-remove: frames offline, the direct-map tables the range
    /// empties unlinked (free_pte_table, free_pmd_table), flush_tlb_all,
    /// tables freed. Boot-time tables (BOOTMEM) are unlinked like the
    /// others; how they are freed is pagetable_free's business.
    public func hotRemove(pfn: UInt64, pages: UInt64) throws(SVAError) {
        let (first, end) = try checkSections(pfn: pfn, pages: pages)
        try frames.offline(first, end)
        let detached = tables.withKernel { k in k.removeDirectMap(first, end) }
        events.record(.hotRemove, site: .hotRemove, pfn: PFN(first), va: layout.directMapBase + pfn << 12,
                      aux: UInt64(end - first))
        flushTLBAll(site: .hotRemove)
        deferred.pagetableFree(detached, site: .hotRemove)
    }

    /// Memory hot-add of whole offline sections: the direct map rebuilt with
    /// tables from the page allocator. x86 takes them from alloc_low_pages(),
    /// which after boot is __get_free_pages(): not BOOTMEM and not marked
    /// PT_kernel either (only asm-generic/pgalloc.h marks), so linux-6.19
    /// frees them at once on the next hot-remove.
    public func hotAdd(pfn: UInt64, pages: UInt64) throws(SVAError) {
        let (first, end) = try checkSections(pfn: pfn, pages: pages)
        guard frames.isOffline(first, end) else { throw .busy }
        try tables.withKernel { k throws(SVAError) in try k.mapDirect(from: first, frames: end - first, flags: [], site: .hotAdd) }
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
}

extension PTView {
    /// remove_pagetable over the direct map of [first, end): clears 2 MiB
    /// leaves, unlinks split PTE tables, then PMD tables whose 512 entries
    /// are all clear.
    func removeDirectMap(_ first: Int, _ end: Int) -> DetachedTables {
        var out = DetachedTables.none
        var pmdTables: [(slot: EntrySlot, va: UInt64)] = []
        var a = layout.directMapBase + UInt64(first) << 12
        let stop = layout.directMapBase + UInt64(end) << 12
        while a < stop {
            if let s = lookup(a, level: 2) {
                if entry(s).isHugeLeaf { setEntry(s, .none) } else { out.append(contentsOf: unlink(s, va: a, site: .hotRemove)) }
                if let pud = lookup(a, level: 3), pmdTables.last?.slot != pud { pmdTables.append((pud, a)) }
            }
            a += 1 << 21
        }
        for (pud, va) in pmdTables {
            if let t = child(of: pud), isEmpty(t) { out.append(contentsOf: unlink(pud, va: va, site: .hotRemove)) }
        }
        return out
    }
}
