// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The primitives for callers that bring their own arch code (the C ABI's
/// kernel-style harnesses): allocate a kernel table, read and write entries,
/// link and unlink tables, free them through pagetable_free /
/// pagetable_free_kernel. The ready-made paths keep their invariants by
/// construction; here each call checks them, so a harness that gets the
/// order wrong gets an error, not a corrupted machine.
extension Machine {
    /// Allocates a zeroed kernel page table of `level` (1 ..< the root level),
    /// marked PT_kernel and linked nowhere, as `pte_alloc_one_kernel` does for a
    /// PTE table. Throws `SVAError/invalidArgument` for a bad level and
    /// `SVAError/outOfMemory`.
    public func allocKernelTable(level: Int) throws(SVAError) -> TableFrame {
        guard level >= 1, level < layout.rootLevel else { throw .invalidArgument }
        return try allocatingTables { () throws(SVAError) in
            TableFrame(pfn: try frames.alloc(order: 0, kind: .kernelTable, level: level, flags: .kernel, site: .arch),
                       level: level)
        }
    }

    /// A page table frame given by number, with its descriptor.
    private func table(_ pfn: PFN) throws(SVAError) -> (TableFrame, Ptdesc) {
        let p = try frames.checkFrame(UInt64(pfn.rawValue))
        let d = try frames.allocatedHead(p)
        guard d.frameKind.isTable else { throw .wrongAPI }
        return (TableFrame(pfn: p, level: Int(d.level)), d)
    }

    private func checkIndex(_ index: UInt32) throws(SVAError) -> Int {
        guard index < 512 else { throw .invalidArgument }
        return Int(index)
    }

    /// Reads entry `index` of the page table in `pfn`. Throws
    /// `SVAError/outOfRange`, `SVAError/notAllocated` or `SVAError/doubleFree`
    /// unless `pfn` heads an allocated block, `SVAError/wrongAPI` unless it is a
    /// table, and `SVAError/invalidArgument` for an index past 511.
    public func readEntry(table pfn: PFN, index: UInt32) throws(SVAError) -> UInt64 {
        let (t, _) = try table(pfn)
        return frames.memory.loadEntry(t.pfn, try checkIndex(index))
    }

    /// set_pte / pte_clear: leaves and clears only. Refuses what the
    /// hardware would reject: PS where no huge page can be (PML4E, PML5E),
    /// bits 52-62 set (reserved or ignored by the model), a frame past the
    /// end of memory.
    public func writeEntry(table pfn: PFN, index: UInt32, _ value: UInt64) throws(SVAError) {
        let (t, d) = try table(pfn)
        let i = try checkIndex(index)
        guard !d.ptFlags.contains(.deferred) else { throw .wrongAPI }
        let e = PageTableEntry(raw: value)
        if e.isPresent {
            // A leaf: PS at levels 2-3 only (bit 7 of a PTE is PAT, which
            // the model does not implement).
            guard t.level == 1 ? !e.isHugeLeaf : (e.isHugeLeaf && t.level <= 3) else { throw .invalidArgument }
            guard value & 0x7ff0_0000_0000_0000 == 0 else { throw .invalidArgument }
            let size = PageSize.forLevel(t.level).bytes
            guard e.physicalAddress & (size - 1) == 0 else { throw .invalidArgument }
            guard e.physicalAddress < frames.bytes, size <= frames.bytes - e.physicalAddress else { throw .outOfRange }
        }
        try tables.withKernel { k throws(SVAError) in
            let s = EntrySlot(holder: t, index: i)
            guard k.child(of: s) == nil else { throw SVAError.busy }
            k.setEntry(s, e)
        }
    }

    /// `pmd_populate_kernel` and its kin: points entry `index` of `parent` at the
    /// table `child`, one level below and of the same kind (kernel or user).
    /// Throws `SVAError/invalidArgument` for mismatched levels or kinds,
    /// `SVAError/wrongAPI` for a root or queued table or a root's kernel-half
    /// entry, `SVAError/busy` if `child` is linked already, and
    /// `SVAError/exists` if the entry is present.
    public func linkTable(parent: PFN, index: UInt32, child childPFN: PFN) throws(SVAError) {
        let (p, pd) = try table(parent)
        let (c, cd) = try table(childPFN)
        let i = try checkIndex(index)
        guard p.level >= 2, c.level == p.level - 1, pd.kind == cd.kind else { throw .invalidArgument }
        guard !cd.ptFlags.contains(.root), !cd.ptFlags.contains(.deferred), !pd.ptFlags.contains(.deferred)
        else { throw .wrongAPI }
        // A root's kernel half is init_mm's, copied into every mm at creation.
        guard !(pd.ptFlags.contains(.root) && AddressLayout.kernelRootEntries.contains(i)) else { throw .wrongAPI }
        guard !cd.ptFlags.contains(.linked) else { throw .busy }
        try tables.withKernel { k throws(SVAError) in
            let s = EntrySlot(holder: p, index: i)
            guard !k.entry(s).isPresent else { throw SVAError.exists }
            k.link(s, to: c, va: 0, site: .arch)
        }
    }

    /// pmd_clear: clears the entry and returns the table it pointed to, now
    /// the caller's to flush and free.
    public func unlinkTable(parent: PFN, index: UInt32) throws(SVAError) -> TableFrame {
        let (p, pd) = try table(parent)
        let i = try checkIndex(index)
        guard !(pd.ptFlags.contains(.root) && AddressLayout.kernelRootEntries.contains(i)) else { throw .wrongAPI }
        let detached = try tables.withKernel { k throws(SVAError) in
            let s = EntrySlot(holder: p, index: i)
            guard k.child(of: s) != nil else { throw SVAError.notFound }
            return k.unlink(s, va: 0, site: .arch)
        }
        return detached.release()[0]
    }

    /// pagetable_free(): see svakit_pagetable_free.
    public func pagetableFree(_ pfn: PFN) throws(SVAError) {
        deferred.pagetableFree(try frames.claimDetached(UInt64(pfn.rawValue)), site: .arch)
    }

    /// pagetable_free_kernel(): see svakit_pagetable_free_kernel.
    public func pagetableFreeKernel(_ pfn: PFN) throws(SVAError) {
        try deferred.pagetableFreeKernel(claimed: try frames.claimDetached(UInt64(pfn.rawValue)))
    }

    /// Told of every page-table frame that returns to the allocator, with no
    /// lock held (the hook may call back into the machine).
    public func setTableFreeHook(_ hook: TableFreeHook?) {
        frames.tableFreeHook.locked { $0 = hook.map { HookBox($0) } }
    }

    // MARK: - Deferred work

    /// kernel_pgtable_work_func, run here (manual mode, or to drain).
    public func runDeferredWork() { deferred.runWork() }

    /// flush_work(): returns when everything queued before the call is freed.
    public func flushDeferredWork() { deferred.flushWork() }

    /// A snapshot of the deferred freeing's figures (`svakit_deferred_stats`).
    public var deferredStats: DeferredStats { deferred.stats }

    /// Makes the n-th internal allocation from now fail (0 disarms), like
    /// iommufd's fail_nth: frames fail with -ENOMEM, PASIDs, vmalloc
    /// address ranges and IOVAs with -ENOSPC, as when they run out. Returns the
    /// allocations made since the previous call.
    @discardableResult
    public func failNthAllocation(_ n: Int) -> Int { frames.failNth.arm(n) }

    /// The allocation fail_nth made fail since it was last armed, if any.
    public var failNthInjected: InjectableAllocation? { frames.failNth.injected }
}
