// SPDX-License-Identifier: Apache-2.0

/// Memory hot-remove and hot-add of whole sections (arch/x86/mm/init_64.c:
/// arch_remove_memory -> remove_pagetable, arch_add_memory ->
/// init_memory_mapping). The model requires the range's frames to be free,
/// as offlining would have migrated them.
extension MachineCore {
    func checkSections(pfn: UInt64, pages: UInt64) throws(SVAError) {
        let sec = UInt64(sectionPages)
        guard pages > 0, pfn % sec == 0, pages % sec == 0 else { throw .invalidArgument }
        guard pfn < UInt64(memory.frameCount), pages <= UInt64(memory.frameCount) - pfn else { throw .outOfRange }
    }

    /// Takes the frames offline and unlinks the direct-map tables the range
    /// empties: split PTE tables, then PMD tables whose 512 entries are all
    /// clear (free_pte_table, free_pmd_table). Boot-time tables (BOOTMEM) are
    /// unlinked like the others; how they are freed is the free path's
    /// business. The caller flushes (flush_tlb_all) and then frees.
    mutating func prepareHotRemove(pfn: UInt64, pages: UInt64) throws(SVAError) -> DetachedTables {
        try checkSections(pfn: pfn, pages: pages)
        let first = Int(pfn), end = Int(pfn + pages)
        var i = first
        while i < end {
            let d = memory[PFN(i)]
            switch d.frameKind {
            case .free: break
            case .offline: throw .notFound
            default: throw .busy
            }
            i += allocator.isVirgin(PFN(i)) ? 1 : 1 << Int(d.order)
        }
        // Take the free blocks off the allocator's lists, then mark offline.
        i = first
        while i < end {
            if allocator.isVirgin(PFN(i)) { counters.offlineVirgin += 1; i += 1; continue }
            let order = Int(memory[PFN(i)].order)
            allocator.unlink(PFN(i), order: order, memory.descs)
            i += 1 << order
        }
        for f in first..<end { memory[PFN(f)].kind = FrameKind.offline.rawValue }
        counters.offlineFrames += end - first

        var out = DetachedTables()
        var pmdTables: [(slot: EntrySlot, va: UInt64)] = []
        var a = layout.directMapBase + pfn << 12
        let stop = layout.directMapBase + UInt64(end) << 12
        while a < stop {
            if let s = lookup(kernelRoot, to: 2, va: a) {
                if entry(s).isHugeLeaf { setEntry(s, .none) } else { out.append(contentsOf: unlink(s, va: a, site: .hotRemove)) }
                if let pud = lookup(kernelRoot, to: 3, va: a), pmdTables.last?.slot != pud {
                    pmdTables.append((pud, a))
                }
            }
            a += 1 << 21
        }
        for (pud, va) in pmdTables {
            if let t = child(of: pud), isEmpty(t) {
                out.append(contentsOf: unlink(pud, va: va, site: .hotRemove))
            }
        }
        events.record(.hotRemove, site: .hotRemove, pfn: PFN(first), va: layout.directMapBase + pfn << 12,
                      aux: UInt64(end - first))
        return out
    }

    /// Brings an offline range back: frames free again, direct map rebuilt with
    /// tables from the page allocator. x86 takes them from alloc_low_pages(),
    /// which after boot is __get_free_pages(): not BOOTMEM and not marked
    /// PT_kernel either (only asm-generic/pgalloc.h marks), so linux-6.19
    /// frees them at once on the next hot-remove.
    mutating func hotAdd(pfn: UInt64, pages: UInt64) throws(SVAError) {
        try checkSections(pfn: pfn, pages: pages)
        let first = Int(pfn), end = Int(pfn + pages)
        for f in first..<end where memory[PFN(f)].frameKind != .offline { throw .busy }
        try mapDirect(from: first, frames: end - first, flags: [], site: .hotAdd)
        for f in first..<end { memory[PFN(f)].kind = FrameKind.free.rawValue }
        var f = first
        while f < end {
            if allocator.isVirgin(PFN(f)) {
                counters.offlineVirgin -= 1
                f += 1
            } else {
                allocator.give(PFN(f), order: maxOrder, memory.descs)
                f += 1 << maxOrder
            }
        }
        counters.offlineFrames -= end - first
        events.record(.hotAdd, site: .hotAdd, pfn: PFN(first), va: layout.directMapBase + pfn << 12,
                      aux: UInt64(end - first))
    }
}
