// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The lazy purge of freed vmap areas (mm/vmalloc.c, Linux 6.12,
/// docs/KERNEL-MODEL.md §2.9): vfree leaves its range unflushed on the lazy
/// list; a purge takes the whole list, flushes the union of its ranges once,
/// and only then returns the ranges to the allocator.
extension Machine {
    /// lazy_max_pages(): fls(num_online_cpus()) * (32 MiB / PAGE_SIZE), with
    /// every one of ``MachineConfig/cpus`` online. vfree purges once more
    /// pages than this are lazily freed (8192 for one CPU, 24576 for four).
    public var lazyMaxPages: UInt64 {
        UInt64(Int.bitWidth - config.cpus.leadingZeroBitCount) * ((32 << 20) >> 12)
    }

    /// vmap_lazy_nr: pages (guard pages included) vfree has unmapped and
    /// not yet flushed; their ranges are not reusable until a purge.
    public var vmapLazyPages: UInt64 { tables.vmallocArea.locked { $0.lazyPages } }

    /// vm_unmap_aliases(): purges the lazy list now, so no vmap alias of a
    /// freed page survives in a TLB (one flush over the union of the lazily
    /// freed ranges; none when the list is empty). Linux callers include
    /// change_page_attr_set_clr (``setMemory(_:pages:set:clear:)`` calls it
    /// first). The model has no per-CPU vmap blocks, so this is
    /// __purge_vmap_area_lazy(ULONG_MAX, 0) alone.
    public func vmUnmapAliases() {
        purgeVmapAreaLazy()
    }

    /// __purge_vmap_area_lazy(ULONG_MAX, 0): take every lazily freed area,
    /// one flush_tlb_kernel_range over [lowest start, highest end), then
    /// return the areas to the allocator and lower vmap_lazy_nr. Returns
    /// whether it purged any area.
    ///
    /// Linux serialises purges with vmap_purge_lock (a mutex held across
    /// the flush). The model holds no lock across the flush (the flush calls
    /// the IOMMU gate and the hook): a concurrent purge takes only what is on
    /// the list when it starts, and one that finds the list empty returns
    /// without waiting for a purge in flight, whose areas stay reserved until
    /// its flush is done (docs/ARCHITECTURE.md).
    @discardableResult
    func purgeVmapAreaLazy() -> Bool {
        guard let claim = tables.vmallocArea.locked({ $0.claimLazy(start: .max, end: 0) }) else { return false }
        flushKernelRange(claim.start, claim.end, site: .vmapPurge)
        tables.vmallocArea.locked { $0.returnPurged(claim) }
        return true
    }
}
