// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// vmalloc, vfree and vunmap on the simulated vmalloc area (mm/vmalloc.c).
/// The lazy purge that vfree leaves the flush to is in VmapPurge.swift.
extension Machine {
    /// The vmalloc area, [start, end).
    public var vmallocArea: Range<UInt64> { layout.vmallocStart..<layout.vmallocEnd }

    /// vmalloc with 4 KiB leaves: reserve a range, allocate data frames, map
    /// them. On failure what was done goes back through vfree's path (the
    /// range goes lazy, as __vmalloc_area_node's `fail:` calls vfree); tables
    /// allocated on the way stay, as in Linux.
    public func vmalloc(_ size: UInt64, owner: UInt16 = 0) throws(SVAError) -> UInt64 {
        try allocatingTables { () throws(SVAError) in
            try vmallocRange(size, leaf: .size4K, owner: owner) { va, block throws(SVAError) in
                try tables.withKernel { k throws(SVAError) in
                    try k.map(va, phys: block.physicalAddress, size: .size4K, prot: PageTableEntry.kernelProt,
                              site: .vmalloc)
                }
            }
        }
    }

    /// vmalloc_huge: 2 MiB leaves over a 2 MiB aligned range. A stale PTE
    /// table under a slot goes through pmd_free_pte_page.
    public func vmallocHuge(_ size: UInt64, owner: UInt16 = 0) throws(SVAError) -> UInt64 {
        try allocatingTables { () throws(SVAError) in
            try vmallocRange(size, leaf: .size2M, owner: owner) { va, block throws(SVAError) in
                try vmapHuge(va, phys: block.physicalAddress, size: .size2M, prot: PageTableEntry.kernelProt)
            }
        }
    }

    /// __vmalloc_node_range: reserve an area, then for each leaf allocate a
    /// block and map it; record the blocks (vm->pages) for vfree.
    private func vmallocRange(_ size: UInt64, leaf: PageSize, owner: UInt16,
                              map: (UInt64, PFN) throws(SVAError) -> Void) throws(SVAError) -> UInt64 {
        guard size > 0, size & (leaf.bytes - 1) == 0, size <= layout.vmallocEnd - layout.vmallocStart else {
            throw .invalidArgument
        }
        // More pages than the machine has fails at once, as in Linux.
        guard size >> 12 <= UInt64(frames.frameCount) else { throw .outOfMemory }
        let va = try allocVmapArea(size: size, align: leaf.bytes, huge: leaf != .size4K)
        var pages: [PFN] = []
        do throws(SVAError) {
            while UInt64(pages.count) * leaf.bytes < size {
                let block = try frames.alloc(order: leaf.frames.trailingZeroBitCount, kind: .data, site: .vmalloc,
                                             owner: owner)
                do throws(SVAError) {
                    try map(va + UInt64(pages.count) * leaf.bytes, block)
                } catch {
                    frames.free(block, site: .vmalloc)
                    throw error
                }
                pages.append(block)
            }
        } catch {
            // __vmalloc_area_node's fail: vfree(area->addr).
            tables.vmallocArea.locked { $0.setPages(at: va, pages) }
            _ = try? vfree(va)
            throw error
        }
        tables.vmallocArea.locked { $0.setPages(at: va, pages) }
        return va
    }

    /// alloc_vmap_area: first fit; when nothing fits, purge the lazy list
    /// (reclaim_and_purge_vmap_areas) and try once more.
    private func allocVmapArea(size: UInt64, align: UInt64, huge: Bool) throws(SVAError) -> UInt64 {
        // An allocation fail_nth counts (-ENOSPC, as when the area is full).
        if frames.failNth.shouldFail(.vmallocRange) { throw InjectableAllocation.vmallocRange.error }
        do {
            return try tables.vmallocArea.locked { a throws(SVAError) in
                try a.reserve(size: size, align: align, huge: huge)
            }
        } catch {
            guard purgeVmapAreaLazy() else { throw error }
            return try tables.vmallocArea.locked { a throws(SVAError) in
                try a.reserve(size: size, align: align, huge: huge)
            }
        }
    }

    /// vfree, as Linux 6.12 orders it (mm/vmalloc.c): remove_vm_area unlinks
    /// the area, free_unmap_vmap_area clears its leaves **without a flush**
    /// (vunmap_range_noflush; the tables stay) and puts the range on the lazy
    /// list (free_vmap_area_noflush), where it stays reserved; then the data
    /// frames vmalloc allocated (vm->pages, not whatever the entries name by
    /// now) are freed, while a TLB may still hold their leaves. The flush
    /// comes with the purge: when the lazy pages pass ``lazyMaxPages`` the
    /// drain work runs it (here when this call returns), or an allocation
    /// that finds no space, or ``vmUnmapAliases()``.
    public func vfree(_ va: UInt64) throws(SVAError) {
        guard layout.isCanonical(va) else { throw .outOfRange }
        guard va & 0xfff == 0 else { throw .invalidArgument }
        // remove_vm_area → find_unlink_vmap_area.
        let area = try tables.vmallocArea.locked { a throws(SVAError) in
            guard let area = a.unlink(at: va) else { throw .notFound }
            return area
        }
        // free_unmap_vmap_area: vunmap_range_noflush, then
        // free_vmap_area_noflush (no flush_tlb_kernel_range: the model has
        // no debug_pagealloc, the one case that flushes here).
        _ = tables.withKernel { k in k.clearLeaves(va: va, size: area.size) }
        let lazy = tables.vmallocArea.locked { $0.freeLazily(at: va) }
        // vfree: __free_page for each of vm->pages.
        for b in area.pages { frames.free(b, site: .vfree) }
        // schedule_work(&drain_vmap_work) when vmap_lazy_nr > lazy_max_pages().
        if lazy > lazyMaxPages { purgeVmapAreaLazy() }
    }

    /// vunmap_range: clears the leaves of [va, va + size), then flushes at
    /// once (flush_tlb_kernel_range(addr, end)): unlike vfree, nothing goes
    /// lazy. The range is the caller's (ioremap-style, ``vmapHuge(_:phys:size:prot:)``);
    /// the frames it mapped stay the caller's.
    public func vunmap(_ va: UInt64, size: UInt64) throws(SVAError) {
        guard size > 0, va & 0xfff == 0, size & 0xfff == 0 else { throw .invalidArgument }
        guard size - 1 <= UInt64.max - va else { throw .outOfRange }
        try tables.checkAddress(va, mm: 0)
        try tables.checkAddress(va + (size - 1), mm: 0)
        // The end may be the top of the address space (va + size wraps to 0).
        let end = va &+ size
        try tables.withKernel { k throws(SVAError) in
            // No huge leaf may straddle an end.
            for edge in end == 0 ? [va] : [va, end] {
                let (s, present) = k.lastSlot(edge)
                if present, s.holder.level > 1, edge & (AddressLayout.span(level: s.holder.level) - 1) != 0 {
                    throw SVAError.invalidArgument
                }
            }
            _ = k.clearLeaves(va: va, size: size)
        }
        flushKernelRange(va, end == 0 ? .max : end, site: .unmap)
    }

    /// page_offset_base + phys.
    public func directMapAddress(_ phys: UInt64) throws(SVAError) -> UInt64 {
        guard phys < config.memoryBytes else { throw .outOfRange }
        return layout.directMapBase + phys
    }
}
