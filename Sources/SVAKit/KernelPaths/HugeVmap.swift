// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// Huge vmap over existing tables (vmap_try_huge_pmd / vmap_try_huge_pud in
/// mm/vmalloc.c) and the two x86 functions that free the tables underneath
/// (arch/x86/mm/pgtable.c, docs/KERNEL-MODEL.md §2.7). Each follows the x86
/// order in one place: clear the entry under init_mm's page_table_lock,
/// flush the CPU TLB with no lock held, free through pagetable_free.
extension Machine {
    /// A huge kernel mapping at a caller-chosen address (vmap_range with huge
    /// pages, as ioremap does): a 2 MiB leaf over a PTE table frees it through
    /// pmd_free_pte_page, a 1 GiB leaf over a PMD table through
    /// pud_free_pmd_page. The caller owns the virtual range.
    public func vmapHuge(_ va: UInt64, phys: UInt64, size: PageSize,
                         prot: UInt64 = PageTableEntry.kernelProt) throws(SVAError) {
        guard size != .size4K, prot & ~PageTableEntry.protMask == 0,
              va & (size.bytes - 1) == 0, phys & (size.bytes - 1) == 0
        else { throw .invalidArgument }
        try tables.checkAddress(va, mm: 0)
        guard phys < frames.bytes, size.bytes <= frames.bytes - phys else { throw .outOfRange }
        // The slot for the leaf, with the tables above it; refuse before
        // changing anything.
        let slot = try allocatingTables { () throws(SVAError) -> EntrySlot in
            try tables.withKernel { k throws(SVAError) -> EntrySlot in
                switch try k.walk(va, to: size.level) {
                case .leaf: throw SVAError.exists
                case .slot(let s):
                    if k.entry(s).isPresent && k.child(of: s) == nil { throw SVAError.exists }
                    if let t = k.child(of: s), !k.holdsOnlyEmptyTables(t) { throw SVAError.busy }
                case .hole: break
                }
                guard case .slot(let s) = try k.walk(va, to: size.level, allocating: (.kernel, .vmalloc))
                else { throw SVAError.exists }
                return s
            }
        }
        // vmap_try_huge_p?d: a table there is freed first.
        if size == .size1G { pudFreePmdPage(slot, addr: va) } else { pmdFreePtePage(slot, addr: va) }
        // pmd_set_huge / pud_set_huge. If someone mapped into the range
        // meanwhile (the caller owns it, so this is a caller bug), refuse.
        try tables.withKernel { k throws(SVAError) in
            guard !k.entry(slot).isPresent else { throw SVAError.busy }
            k.setEntry(slot, .leaf(phys, level: size.level, prot: prot))
        }
    }

    /// pmd_free_pte_page(pmd, addr): take the table the PMD entry points to
    /// (page_ptdesc(pmd_page(*pmd)), not the table that holds the entry: the
    /// v6 bug), pmd_clear, flush_tlb_kernel_range(addr, addr + PAGE_SIZE - 1)
    /// ("INVLPG to clear all paging-structure caches"), pagetable_free.
    func pmdFreePtePage(_ pmd: EntrySlot, addr: UInt64) {
        let pte = tables.withKernel { k in k.unlink(pmd, va: addr, site: .pmdFreePtePage) }
        guard !pte.isEmpty else { return }
        flushKernelRange(addr, addr + UInt64(pageSize) - 1, site: .pmdFreePtePage)
        deferred.pagetableFree(pte, site: .pmdFreePtePage)
    }

    /// pud_free_pmd_page(pud, addr): save and clear the 512 PMD entries,
    /// pud_clear, flush, then free each PTE table the saved entries pointed
    /// to, then the PMD table itself.
    func pudFreePmdPage(_ pud: EntrySlot, addr: UInt64) {
        let batch = tables.withKernel { k in
            var batch = DetachedTables.none
            guard let pmd = k.child(of: pud) else { return batch }
            for i in 0..<512 {
                batch.append(contentsOf: k.unlink(EntrySlot(holder: pmd, index: i), va: addr + UInt64(i) << 21,
                                                  site: .pudFreePmdPage))
            }
            batch.append(contentsOf: k.unlink(pud, va: addr, site: .pudFreePmdPage))
            return batch
        }
        guard !batch.isEmpty else { return }
        flushKernelRange(addr, addr + UInt64(pageSize) - 1, site: .pudFreePmdPage)
        deferred.pagetableFree(batch, site: .pudFreePmdPage)
    }
}
