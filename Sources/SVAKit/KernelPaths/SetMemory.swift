// SPDX-License-Identifier: Apache-2.0

/// set_memory on the direct map (arch/x86/mm/pat/set_memory.c): split a 2 MiB
/// leaf into a PTE table (split_large_page) and, later, collapse the table
/// back into a leaf and free it (cpa_collapse_large_pages,
/// docs/KERNEL-MODEL.md §2.7).
extension Machine {
    /// set_memory_*: sets and clears protections of `pages` direct-map pages,
    /// splitting 2 MiB leaves as needed, then flushes. Checks everything
    /// before changing anything; an allocation failure part-way leaves some
    /// leaves split, which changes no translation.
    public func setMemory(_ va: UInt64, pages: UInt64, set: UInt64 = 0, clear: UInt64 = 0) throws(SVAError) {
        guard pages > 0, va & 0xfff == 0, (set | clear) & ~PageTableEntry.protMask == 0,
              set & clear == 0, layout.isKernel(va) else { throw .invalidArgument }
        guard pages <= frames.bytes >> 12, va >= layout.directMapBase,
              va - layout.directMapBase <= frames.bytes - pages << 12 else { throw .outOfRange }
        // change_page_attr_set_clr: vm_unmap_aliases() before any change
        // (no vmap alias of these pages may stay in a TLB).
        vmUnmapAliases()
        try tables.withKernel { k throws(SVAError) in
            var chunk = va & ~0x1f_ffff
            while chunk < va + pages << 12 {
                _ = try k.directMapSlot(chunk)
                chunk += 1 << 21
            }
            chunk = va & ~0x1f_ffff
            while chunk < va + pages << 12 {
                try k.splitLargePage(try k.directMapSlot(chunk), va: chunk)
                chunk += 1 << 21
            }
            for i in 0..<pages {
                let a = va + i << 12
                let pte = k.slot(in: k.child(of: try k.directMapSlot(a))!, for: a)
                var e = k.entry(pte)
                e.raw = (e.raw & ~clear) | set
                k.setEntry(pte, e)
            }
        }
        flushTLBKernelRange(va, va + pages << 12, site: .setMemorySplit)
    }

    /// cpa_collapse_large_pages for the 2 MiB region of va: when the PTE table
    /// maps 512 contiguous pages with equal protections, set_pmd writes a
    /// 2 MiB leaf over it, flush_tlb_all, and the table goes through
    /// pagetable_free. Returns whether it collapsed.
    @discardableResult
    public func collapseLargePages(_ va: UInt64) throws(SVAError) -> Bool {
        guard layout.isKernel(va) else { throw .invalidArgument }
        let pte = try tables.withKernel { k throws(SVAError) in
            var out = DetachedTables.none
            let s = try k.directMapSlot(va & ~0x1f_ffff)
            guard let t = k.child(of: s), let leaf = k.collapsedLeaf(t) else { return out }
            k.replace(s, with: leaf, va: va & ~0x1f_ffff, site: .setMemoryCollapse, into: &out)
            return out
        }
        if pte.isEmpty { return false }
        flushTLBAll(site: .setMemoryCollapse)
        deferred.pagetableFree(pte, site: .setMemoryCollapse)
        return true
    }
}

extension PTView {
    /// The direct-map PMD slot of `va`, which must lie in mapped memory.
    func directMapSlot(_ va: UInt64) throws(SVAError) -> EntrySlot {
        guard va >= layout.directMapBase, va - layout.directMapBase < frames.bytes else { throw .outOfRange }
        guard let s = lookup(va, level: 2), entry(s).isPresent else { throw .notFound }
        return s
    }

    /// split_large_page: a PTE table that maps the 2 MiB leaf's range with the
    /// same protections. Marked SPLIT; whether it also carries PT_kernel is
    /// what linux-6.19 decides (docs/KERNEL-MODEL.md §2.2): the x86 allocator
    /// there is private and does not mark it.
    func splitLargePage(_ s: EntrySlot, va: UInt64) throws(SVAError) {
        let e = entry(s)
        guard e.isHugeLeaf else { return }
        let t = try allocTable(level: 1, kernelHalf: true, flags: .split, site: .setMemorySplit)
        let prot = e.prot
        for i in 0..<512 {
            memory.storeEntry(t.pfn, i, PageTableEntry.leaf(e.physicalAddress + UInt64(i) << 12, level: 1, prot: prot).raw)
        }
        link(s, to: t, va: va, site: .setMemorySplit)
    }

    /// The 2 MiB leaf a PTE table can collapse into, if it maps 512
    /// contiguous pages with equal protections (A and D aside).
    func collapsedLeaf(_ t: TableFrame) -> PageTableEntry? {
        let first = PageTableEntry(raw: memory.loadEntry(t.pfn, 0))
        let ignore = PageTableEntry.accessed | PageTableEntry.dirty
        guard first.isPresent, first.physicalAddress & 0x1f_ffff == 0 else { return nil }
        for i in 0..<512 {
            let e = PageTableEntry(raw: memory.loadEntry(t.pfn, i))
            guard e.isPresent, e.physicalAddress == first.physicalAddress + UInt64(i) << 12,
                  (e.raw ^ first.raw) & ~(PageTableEntry.pfnMask | ignore) == 0
            else { return nil }
        }
        return .leaf(first.physicalAddress, level: 2, prot: first.prot)
    }
}
