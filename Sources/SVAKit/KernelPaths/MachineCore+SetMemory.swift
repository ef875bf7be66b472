// SPDX-License-Identifier: Apache-2.0

/// set_memory on the direct map (arch/x86/mm/pat/set_memory.c): split a 2 MiB
/// leaf into a PTE table (split_large_page) and, later, collapse the table
/// back into a leaf and free it (cpa_collapse_large_pages, kernel-notes §2.7).
extension MachineCore {
    /// The direct-map PMD slot of `va`, which must lie in mapped memory.
    func directMapSlot(_ va: UInt64) throws(SVAError) -> EntrySlot {
        guard va >= layout.directMapBase, va - layout.directMapBase < memoryBytes else { throw .outOfRange }
        guard let s = lookup(kernelRoot, to: 2, va: va), entry(s).isPresent else { throw .notFound }
        return s
    }

    /// Changes protections of npages direct-map pages from va, splitting
    /// 2 MiB leaves first. Checks everything before changing anything; an
    /// allocation failure part-way leaves some leaves split, which changes no
    /// translation. The caller flushes afterwards.
    mutating func setMemory(va: UInt64, pages: UInt64, set: UInt64, clear: UInt64) throws(SVAError) {
        guard pages > 0, va & 0xfff == 0, (set | clear) & ~PageTableEntry.protMask == 0,
              set & clear == 0 else { throw .invalidArgument }
        guard pages <= memoryBytes >> 12, va >= layout.directMapBase,
              va - layout.directMapBase <= memoryBytes - pages << 12 else { throw .outOfRange }
        var chunk = va & ~0x1f_ffff
        while chunk < va + pages << 12 {
            _ = try directMapSlot(chunk)
            chunk += 1 << 21
        }
        chunk = va & ~0x1f_ffff
        while chunk < va + pages << 12 {
            try split(try directMapSlot(chunk), va: chunk)
            chunk += 1 << 21
        }
        for i in 0..<pages {
            let a = va + i << 12
            let pte = slot(in: child(of: try directMapSlot(a))!, for: a)
            var e = entry(pte)
            e.raw = (e.raw & ~clear) | set
            setEntry(pte, e)
        }
    }

    /// split_large_page: a PTE table that maps the 2 MiB leaf's range with the
    /// same protections. Marked SPLIT; whether it also carries PT_kernel is
    /// what linux-6.19 decides (kernel-notes §2.2): the x86 allocator there
    /// is private and does not mark it.
    mutating func split(_ s: EntrySlot, va: UInt64) throws(SVAError) {
        let e = entry(s)
        guard e.isHugeLeaf else { return }
        let t = try allocTable(level: 1, kernelHalf: true, flags: .split, site: .setMemorySplit)
        let p = memory.entry(t.pfn, 0)
        let prot = e.prot
        for i in 0..<512 {
            p[i] = PageTableEntry.leaf(e.physicalAddress + UInt64(i) << 12, level: 1, prot: prot).raw
        }
        link(s, to: t, va: va, site: .setMemorySplit)
    }

    /// The first half of cpa_collapse_large_pages for the 2 MiB region of va:
    /// when the PTE table maps 512 contiguous pages with equal protections,
    /// the PMD entry becomes a 2 MiB leaf and the table is detached. Returns
    /// an empty batch when the region cannot collapse.
    mutating func prepareCollapse(va: UInt64) throws(SVAError) -> DetachedTables {
        let s = try directMapSlot(va & ~0x1f_ffff)
        guard let t = child(of: s) else { return DetachedTables() }
        let p = memory.entry(t.pfn, 0)
        let first = PageTableEntry(raw: p[0])
        let ignore = PageTableEntry.accessed | PageTableEntry.dirty
        guard first.isPresent, first.physicalAddress & 0x1f_ffff == 0 else { return DetachedTables() }
        for i in 0..<512 {
            let e = PageTableEntry(raw: p[i])
            guard e.isPresent, e.physicalAddress == first.physicalAddress + UInt64(i) << 12,
                  (e.raw ^ first.raw) & ~(PageTableEntry.pfnMask | ignore) == 0
            else { return DetachedTables() }
        }
        var out = DetachedTables()
        replace(s, with: .leaf(first.physicalAddress, level: 2, prot: first.prot),
                va: va & ~0x1f_ffff, site: .setMemoryCollapse, into: &out)
        return out
    }
}
