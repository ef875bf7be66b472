// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// set_memory (arch/x86/mm/pat/set_memory.c, docs/KERNEL-MODEL.md §2.7):
/// change_page_attr_set_clr splits large leaves (`__split_large_page`, which
/// links the new table with `_KERNPG_TABLE`: no U/S), cpa_flush flushes, and
/// with CPA_COLLAPSE (set_memory_rox only) cpa_collapse_large_pages puts
/// large leaves back and frees the tables they replace. The model takes
/// direct-map addresses and vmalloc-area addresses (where execmem's ROX
/// mappings and vmap_huge live).
extension Machine {
    /// set_memory_*: sets and clears protections of `pages` pages, splitting
    /// 2 MiB and 1 GiB leaves as needed, then cpa_flush. Checks everything
    /// before changing anything; an allocation failure part-way leaves some
    /// leaves split, which changes no translation. Setting U/S is
    /// `SVAError/invalidArgument`: no set_memory_* makes a kernel page
    /// user-accessible.
    public func setMemory(_ va: UInt64, pages: UInt64, set: UInt64 = 0, clear: UInt64 = 0) throws(SVAError) {
        try allocatingTables { () throws(SVAError) in try changePageAttr(va, pages: pages, set: set, clear: clear) }
        cpaFlush(va, pages: pages)
    }

    /// set_memory_rox: read-only and executable (RW and NX cleared) with
    /// CPA_COLLAPSE, the one caller of cpa_collapse_large_pages in Linux
    /// (execmem's ROX cache, BPF's program packs): after the flush every
    /// 2 MiB region the range touches is collapsed where its PTEs allow.
    /// Returns how many regions collapsed.
    @discardableResult
    public func setMemoryROX(_ va: UInt64, pages: UInt64) throws(SVAError) -> Int {
        try setMemory(va, pages: pages, clear: PageTableEntry.writable | PageTableEntry.noExecute)
        return cpaCollapseLargePages(from: va & ~0x1f_ffff, to: va + pages << 12)
    }

    /// cpa_collapse_large_pages for the one 2 MiB region of `va`
    /// (svakit_cpa_collapse_large_pages, for arch code that calls it itself): when the
    /// PTE table maps 512 contiguous pages with equal flags, set_pmd writes a
    /// 2 MiB leaf over it, flush_tlb_all, and the table goes through
    /// pagetable_free. Returns whether it collapsed.
    @discardableResult
    public func collapseLargePages(_ va: UInt64) throws(SVAError) -> Bool {
        try checkCPARange(va & ~0xfff, pages: 1)
        try tables.withKernel { k throws(SVAError) in
            switch try k.walk(va, to: 2) {
            case .hole: throw SVAError.notFound
            case .slot(let s) where !k.entry(s).isPresent: throw SVAError.notFound
            default: break
            }
        }
        return cpaCollapseLargePages(from: va & ~0x1f_ffff, to: (va & ~0x1f_ffff) + 1) > 0
    }

    /// The checks of every set_memory entry: a canonical kernel address,
    /// page aligned, whose range stays in the direct map of memory or in
    /// the vmalloc area.
    private func checkCPARange(_ va: UInt64, pages: UInt64) throws(SVAError) {
        try tables.checkAddress(va, mm: 0)
        guard pages > 0, va & 0xfff == 0 else { throw .invalidArgument }
        let area: Range<UInt64> = va >= layout.directMapBase && va - layout.directMapBase < frames.bytes
            ? layout.directMapBase..<layout.directMapBase + frames.bytes : vmallocArea
        guard area.contains(va), pages <= (area.upperBound - va) >> 12 else { throw .outOfRange }
    }

    /// change_page_attr_set_clr without the flush.
    private func changePageAttr(_ va: UInt64, pages: UInt64, set: UInt64, clear: UInt64) throws(SVAError) {
        try checkCPARange(va, pages: pages)
        guard (set | clear) & ~PageTableEntry.protMask == 0, set & clear == 0 else { throw .invalidArgument }
        // No set_memory_* sets _PAGE_USER (arch/x86/mm/pat/set_memory.c
        // never names it): a user-accessible kernel page would let a
        // device's user request through an SVA PASID read it, and keep it in
        // the IOTLB past vfree, a state no Linux path makes (fuzzer class
        // 14, tests-c/fuzz/README.md). Clearing U/S stays allowed.
        guard set & PageTableEntry.user == 0 else { throw .invalidArgument }
        // vm_unmap_aliases() before any change (no lazily unmapped vmap
        // alias of these pages may stay in a TLB), as Linux does even when
        // the change then fails.
        vmUnmapAliases()
        let end = va + pages << 12
        try tables.withKernel { k throws(SVAError) in
            // Every page mapped (CPA refuses a zero PTE), before any change.
            var chunk = va & ~0x1f_ffff
            while chunk < end {
                try k.checkMapped(max(chunk, va), min(chunk + (1 << 21), end))
                chunk += 1 << 21
            }
            chunk = va & ~0x1f_ffff
            while chunk < end {
                // should_split_large_page: a large leaf the range covers
                // whole changes in place; only a partly covered one splits.
                if let (s, span) = k.largeLeaf(chunk), s.holder.level > 1,
                   chunk & (span - 1) == 0, va <= chunk, end - chunk >= span {
                    var e = k.entry(s)
                    e.raw = (e.raw & ~clear) | set
                    k.setEntry(s, e)
                    chunk += span
                    continue
                }
                let pte = try k.splitToPTETable(chunk)
                for a in stride(from: max(chunk, va), to: min(chunk + (1 << 21), end), by: 1 << 12) {
                    let s = k.slot(in: pte, for: a)
                    var e = k.entry(s)
                    e.raw = (e.raw & ~clear) | set
                    k.setEntry(s, e)
                }
                chunk += 1 << 21
            }
        }
    }

    /// cpa_flush: per-page flush_tlb_one_kernel up to
    /// tlb_single_page_flush_ceiling (33) pages, flush_tlb_all beyond.
    /// flush_tlb_one_kernel is not flush_tlb_kernel_range: v1-v3's gate never
    /// saw it (docs/KERNEL-MODEL.md §2.7).
    private func cpaFlush(_ va: UInt64, pages: UInt64) {
        if pages > 33 {
            flushTLBAll(site: .setMemorySplit)
        } else {
            for i in 0..<pages { flushTLBOneKernel(va + i << 12, site: .setMemorySplit) }
        }
    }

    /// cpa_collapse_large_pages over the 2 MiB regions in [start, end):
    /// collapse_large_pages on each under pgd_lock (the page_table_lock
    /// here): collapse_pmd_page, and when it collapsed, collapse_pud_page,
    /// which returns at once without direct_gbpages; then, if any collapsed,
    /// flush_tlb_all and pagetable_free of every table replaced.
    private func cpaCollapseLargePages(from start: UInt64, to end: UInt64) -> Int {
        var collapsed = 0
        let gbpages = config.directGbpages
        let freed = tables.withKernel { k in
            var out = DetachedTables.none
            var a = start
            while a < end {
                if let s = k.lookup(a, level: 2), let t = k.child(of: s), let leaf = k.collapsedLeaf(t) {
                    k.replace(s, with: leaf, va: a, site: .setMemoryCollapse, into: &out)
                    collapsed += 1
                    if gbpages, let pud = k.lookup(a, level: 3), let pmd = k.child(of: pud),
                       let big = k.collapsedLeaf(pmd) {
                        k.replace(pud, with: big, va: a & ~(AddressLayout.span(level: 3) - 1),
                                  site: .setMemoryCollapse, into: &out)
                        collapsed += 1
                    }
                }
                a += 1 << 21
            }
            return out
        }
        guard collapsed > 0 else { return 0 }
        flushTLBAll(site: .setMemoryCollapse)
        deferred.pagetableFree(freed, site: .setMemoryCollapse)
        return collapsed
    }
}

extension PTView {
    /// CPA's "called for zero pte": every page of [start, end), inside one
    /// 2 MiB region, must be mapped.
    func checkMapped(_ start: UInt64, _ end: UInt64) throws(SVAError) {
        switch try walk(start, to: 2) {
        case .hole: throw .notFound
        case .leaf: return   // a 1 GiB leaf maps the whole region
        case .slot(let s):
            let e = entry(s)
            guard e.isPresent else { throw .notFound }
            guard let t = child(of: s) else { return }
            for a in stride(from: start, to: end, by: 1 << 12) where !entry(slot(in: t, for: a)).isPresent {
                throw .notFound
            }
        }
    }

    /// The 1 GiB or 2 MiB leaf that maps `va`, with its span, if one does.
    func largeLeaf(_ va: UInt64) -> (EntrySlot, UInt64)? {
        let (s, present) = lastSlot(va)
        guard present, s.holder.level > 1 else { return nil }
        return (s, AddressLayout.span(level: s.holder.level))
    }

    /// The PTE table of the 2 MiB region at `va`, splitting a 1 GiB leaf and
    /// then a 2 MiB leaf on the way (__split_large_page at each level).
    func splitToPTETable(_ va: UInt64) throws(SVAError) -> TableFrame {
        if case .leaf(let s) = try walk(va, to: 2) { try splitLargePage(s, va: va & ~(AddressLayout.span(level: 3) - 1)) }
        guard case .slot(let s) = try walk(va, to: 2) else { throw .notFound }
        try splitLargePage(s, va: va)
        return child(of: s)!
    }

    /// __split_large_page: a table one level down that maps the leaf's range
    /// with the same protections, linked with `_KERNPG_TABLE` (no U/S).
    /// Marked SPLIT; whether it also carries PT_kernel is what linux-6.19
    /// decides (docs/KERNEL-MODEL.md §2.2): split_large_page allocates with
    /// alloc_pages() and does not mark it.
    func splitLargePage(_ s: EntrySlot, va: UInt64) throws(SVAError) {
        let e = entry(s)
        guard e.isHugeLeaf, s.holder.level > 1 else { return }
        let level = s.holder.level - 1
        let t = try allocTable(level: level, kernelHalf: true, flags: .split, site: .setMemorySplit)
        let size = AddressLayout.span(level: level)
        for i in 0..<512 {
            memory.storeEntry(t.pfn, i, PageTableEntry.leaf(e.physicalAddress + UInt64(i) * size, level: level,
                                                            prot: e.prot).raw)
        }
        link(s, to: t, va: va, site: .setMemorySplit, flags: PageTableEntry.kernelTableFlags)
    }

    /// collapse_pmd_page's test (a PTE table) and collapse_pud_page's (a
    /// PMD table of 2 MiB leaves): the leaf one level up the table can
    /// collapse into, if its first entry's frame is aligned to that leaf and
    /// its 512 entries are present leaves, contiguous and with the same
    /// flags (A and D included, as Linux compares pte_flags / pmd_flags
    /// whole).
    func collapsedLeaf(_ t: TableFrame) -> PageTableEntry? {
        guard t.level <= 2 else { return nil }
        let size = AddressLayout.span(level: t.level)
        let first = PageTableEntry(raw: memory.loadEntry(t.pfn, 0))
        guard first.isPresent, t.level == 1 || first.isHugeLeaf,
              first.physicalAddress & (AddressLayout.span(level: t.level + 1) - 1) == 0 else { return nil }
        for i in 1..<512 {
            let e = PageTableEntry(raw: memory.loadEntry(t.pfn, i))
            guard e.isPresent, e.physicalAddress == first.physicalAddress + UInt64(i) * size,
                  (e.raw ^ first.raw) & ~PageTableEntry.pfnMask == 0
            else { return nil }
        }
        return .leaf(first.physicalAddress, level: t.level + 1, prot: first.prot)
    }
}
