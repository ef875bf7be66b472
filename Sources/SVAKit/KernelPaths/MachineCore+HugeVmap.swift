// SPDX-License-Identifier: Apache-2.0

/// Huge vmap over existing tables: the first half of vmap_try_huge_pmd /
/// vmap_try_huge_pud. What x86 does (kernel-notes §2.7):
///   pmd_free_pte_page: take the table the PMD entry *points to*, pmd_clear,
///     flush_tlb_kernel_range(addr, addr + PAGE_SIZE - 1), free the table;
///   pud_free_pmd_page: save and clear the 512 PMD entries, pud_clear, flush,
///     free each PTE table, then the PMD table itself.
/// The clear happens here under the memory lock; `Machine.vmapHuge` flushes
/// with the lock dropped and calls `finishHugeVmap` to free and set the leaf.
extension MachineCore {
    mutating func prepareHugeVmap(va: UInt64, phys: UInt64, size: PageSize,
                                  prot: UInt64) throws(SVAError) -> DetachedTables {
        guard size != .size4K, prot & ~PageTableEntry.protMask == 0,
              va & (size.bytes - 1) == 0, phys & (size.bytes - 1) == 0
        else { throw .invalidArgument }
        try checkAddress(va, mm: 0)
        guard phys < memoryBytes, size.bytes <= memoryBytes - phys else { throw .outOfRange }
        // Refuse before changing anything.
        if let s = try walkIfPresent(kernelRoot, to: size.level, va: va) {
            if entry(s).isPresent && child(of: s) == nil { throw .exists }
            if let t = child(of: s), !holdsOnlyEmptyTables(t) { throw .busy }
        }
        guard let s = try walk(kernelRoot, to: size.level, va: va,
                               allocating: (.kernel, .vmalloc)) else { throw .invalidArgument }
        guard let t = child(of: s) else { return DetachedTables() }
        var out = DetachedTables()
        if size == .size1G {
            // pud_free_pmd_page: the PTE tables under the PMD table first...
            for i in 0..<512 {
                out.append(contentsOf: unlink(EntrySlot(holder: t, index: i),
                                              va: va + UInt64(i) << 21, site: .pudFreePmdPage))
            }
            // ...then the PMD table, the one the PUD entry points to.
            out.append(contentsOf: unlink(s, va: va, site: .pudFreePmdPage))
        } else {
            out.append(contentsOf: unlink(s, va: va, site: .pmdFreePtePage))
        }
        return out
    }

    /// Frees what `prepareHugeVmap` detached (after the caller's flush) and
    /// sets the huge leaf (pmd_set_huge / pud_set_huge). The caller owns the
    /// range, as vmalloc's callers do; if someone mapped into it meanwhile
    /// anyway, the leaf is not set and `.busy` comes back.
    /// Returns how many tables went to the deferred list, and whether the
    /// leaf was set.
    mutating func finishHugeVmap(_ detached: consuming DetachedTables, va: UInt64, phys: UInt64,
                                 size: PageSize, prot: UInt64) -> (queued: Int, mapped: Bool) {
        let queued = pagetableFree(detached, site: size == .size1G ? .pudFreePmdPage : .pmdFreePtePage)
        guard let s = lookup(kernelRoot, to: size.level, va: va), !entry(s).isPresent else { return (queued, false) }
        setEntry(s, .leaf(phys, level: size.level, prot: prot))
        return (queued, true)
    }

    /// Whether `t` maps nothing: no leaves, and only empty tables below it.
    func holdsOnlyEmptyTables(_ t: TableFrame) -> Bool {
        for i in 0..<512 {
            let s = EntrySlot(holder: t, index: i)
            if let c = child(of: s) {
                if !holdsOnlyEmptyTables(c) { return false }
            } else if entry(s).isPresent {
                return false
            }
        }
        return true
    }
}
