// SPDX-License-Identifier: Apache-2.0

/// The kernel paths that free kernel page-table frames, each in the order x86
/// follows (kernel-notes §2.6): clear the entry under the memory lock, flush
/// the CPU TLB with the lock dropped (the hook may reach the IOMMUs), then
/// release through the one `pagetableFree`.
extension Machine {
    /// The vmalloc area, [start, end).
    public var vmallocArea: Range<UInt64> { layout.vmallocStart..<layout.vmallocEnd }

    /// vmalloc with 4 KiB leaves; returns the address.
    public func vmalloc(_ size: UInt64, owner: UInt16 = 0) throws(SVAError) -> UInt64 {
        try core.locked { c throws(SVAError) in try c.vmalloc(size: size, owner: owner) }
    }

    /// vmalloc_huge: 2 MiB leaves over a 2 MiB aligned range. A stale PTE
    /// table under a slot goes through pmd_free_pte_page.
    public func vmallocHuge(_ size: UInt64, owner: UInt16 = 0) throws(SVAError) -> UInt64 {
        guard size > 0, size & 0x1f_ffff == 0 else { throw .invalidArgument }
        let va = try core.locked { c throws(SVAError) in
            try c.vmalloc.reserve(size: size, align: 1 << 21, huge: true)
        }
        var done: UInt64 = 0
        do throws(SVAError) {
            while done < size {
                let block = try core.locked { c throws(SVAError) in
                    try c.allocFrames(order: 9, kind: .data, site: .vmalloc, owner: owner)
                }
                do throws(SVAError) {
                    try vmapHuge(va + done, phys: block.physicalAddress, size: .size2M,
                                 prot: PageTableEntry.kernelProt)
                } catch {
                    core.locked { c in c.release(block, site: .vmalloc) }
                    throw error
                }
                done += 1 << 21
            }
        } catch {
            core.locked { c in
                for b in c.clearLeaves(va: va, size: done, site: .vmalloc) { c.release(b, site: .vmalloc) }
                c.vmalloc.remove(at: va)
            }
            throw error
        }
        return va
    }

    /// vfree: clears the leaves (tables stay), flushes, then frees the data.
    public func vfree(_ va: UInt64) throws(SVAError) {
        let (blocks, size) = try core.locked { c throws(SVAError) in
            guard let area = c.vmalloc.area(at: va) else { throw .notFound }
            let blocks = c.clearLeaves(va: va, size: area.size, site: .vfree)
            c.vmalloc.remove(at: va)
            return (blocks, area.size)
        }
        flushTLBKernelRange(va, va + size, site: .vfree)
        core.locked { c in for b in blocks { c.release(b, site: .vfree) } }
    }

    /// A huge kernel mapping at a caller-chosen address (vmap_range with huge
    /// pages, as ioremap does): a 2 MiB leaf over a PTE table frees it through
    /// pmd_free_pte_page, a 1 GiB leaf over a PMD table through
    /// pud_free_pmd_page. The caller owns the virtual range.
    public func vmapHuge(_ va: UInt64, phys: UInt64, size: PageSize,
                         prot: UInt64 = PageTableEntry.kernelProt) throws(SVAError) {
        var detached = try core.locked { c throws(SVAError) in
            try c.prepareHugeVmap(va: va, phys: phys, size: size, prot: prot)
        }
        if !detached.isEmpty {
            // "INVLPG to clear all paging-structure caches" (x86 pmd_free_pte_page).
            flushTLBKernelRange(va, va + 4095,
                                site: size == .size1G ? .pudFreePmdPage : .pmdFreePtePage)
        }
        let finished = core.locked { c in
            c.finishHugeVmap(detached.take(), va: va, phys: phys, size: size, prot: prot)
        }
        // Queued tables are scheduled even when the leaf could not be set.
        deferredQueued(finished.queued)
        guard finished.mapped else { throw .busy }
    }

    /// vunmap_range: clears the leaves of [va, va + size), then flushes.
    public func vunmap(_ va: UInt64, size: UInt64) throws(SVAError) {
        try core.locked { c throws(SVAError) in
            try c.checkVunmap(va: va, size: size)
            _ = c.clearLeaves(va: va, size: size, site: .unmap)
        }
        flushTLBKernelRange(va, va + size, site: .unmap)
    }

    /// page_offset_base + phys.
    public func directMapAddress(_ phys: UInt64) throws(SVAError) -> UInt64 {
        guard phys < config.memoryBytes else { throw .outOfRange }
        return layout.directMapBase + phys
    }

    /// set_memory_*: sets and clears protections of `pages` direct-map pages,
    /// splitting 2 MiB leaves as needed, then flushes.
    public func setMemory(_ va: UInt64, pages: UInt64, set: UInt64 = 0, clear: UInt64 = 0) throws(SVAError) {
        try core.locked { c throws(SVAError) in try c.setMemory(va: va, pages: pages, set: set, clear: clear) }
        flushTLBKernelRange(va, va + pages << 12, site: .setMemorySplit)
    }

    /// cpa_collapse_large_pages for the 2 MiB region of va: collapses a PTE
    /// table of 512 uniform pages into a leaf, flush_tlb_all, frees the table.
    /// Returns whether it collapsed.
    @discardableResult
    public func collapseLargePages(_ va: UInt64) throws(SVAError) -> Bool {
        var detached = try core.locked { c throws(SVAError) in try c.prepareCollapse(va: va) }
        if detached.isEmpty { return false }
        flushTLBAll(site: .setMemoryCollapse)
        deferredQueued(core.locked { c in c.pagetableFree(detached.take(), site: .setMemoryCollapse) })
        return true
    }

    /// Memory hot-remove of whole sections: frames offline, the direct-map
    /// tables the range empties unlinked, flush_tlb_all, tables freed.
    public func hotRemove(pfn: UInt64, pages: UInt64) throws(SVAError) {
        var detached = try core.locked { c throws(SVAError) in try c.prepareHotRemove(pfn: pfn, pages: pages) }
        flushTLBAll(site: .hotRemove)
        deferredQueued(core.locked { c in c.pagetableFree(detached.take(), site: .hotRemove) })
    }

    /// Memory hot-add of whole offline sections.
    public func hotAdd(pfn: UInt64, pages: UInt64) throws(SVAError) {
        try core.locked { c throws(SVAError) in try c.hotAdd(pfn: pfn, pages: pages) }
    }
}
