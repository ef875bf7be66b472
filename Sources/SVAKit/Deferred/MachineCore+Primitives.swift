// SPDX-License-Identifier: Apache-2.0

/// The low-level page-table primitives for callers that bring their own arch
/// code (the C ABI's kernel-style harnesses). The ready-made paths keep their
/// invariants by construction (DetachedTables); here the engine checks them
/// at each call, so a harness that gets the order wrong gets an error, not a
/// corrupted machine.
extension MachineCore {
    /// A page table frame given by number, with its level.
    func table(_ pfn: UInt64) throws(SVAError) -> (TableFrame, Ptdesc) {
        let p = try checkFrame(pfn)
        let d = try allocatedHead(p)
        guard d.frameKind.isTable else { throw .wrongAPI }
        return (TableFrame(pfn: p, level: Int(d.level)), d)
    }

    func checkIndex(_ index: UInt32) throws(SVAError) -> Int {
        guard index < 512 else { throw .invalidArgument }
        return Int(index)
    }

    mutating func allocKernelTable(level: Int) throws(SVAError) -> TableFrame {
        guard level >= 1, level < layout.rootLevel else { throw .invalidArgument }
        return try allocTable(level: level, kernelHalf: true, flags: .kernel, site: .arch)
    }

    func readEntry(_ table: UInt64, _ index: UInt32) throws(SVAError) -> UInt64 {
        let (t, _) = try self.table(table)
        return entry(EntrySlot(holder: t, index: try checkIndex(index))).raw
    }

    /// set_pte / pte_clear: leaves and clears only.
    mutating func writeEntry(_ table: UInt64, _ index: UInt32, _ value: UInt64) throws(SVAError) {
        let (t, _) = try self.table(table)
        let s = EntrySlot(holder: t, index: try checkIndex(index))
        let e = PageTableEntry(raw: value)
        guard !e.isPresent || t.level == 1 || e.isHugeLeaf else { throw .invalidArgument }
        guard child(of: s) == nil else { throw .busy }
        setEntry(s, e)
    }

    mutating func linkTable(parent: UInt64, index: UInt32, child childPFN: UInt64) throws(SVAError) {
        let (p, pd) = try table(parent)
        let (c, cd) = try table(childPFN)
        guard p.level >= 2, c.level == p.level - 1, pd.kind == cd.kind else { throw .invalidArgument }
        guard !cd.ptFlags.contains(.root), !cd.ptFlags.contains(.deferred) else { throw .wrongAPI }
        guard !cd.ptFlags.contains(.linked) else { throw .busy }
        let s = EntrySlot(holder: p, index: try checkIndex(index))
        guard !entry(s).isPresent else { throw .exists }
        link(s, to: c, va: 0, site: .arch)
    }

    /// pmd_clear: returns the table the entry pointed to, now detached.
    mutating func unlinkTable(parent: UInt64, index: UInt32) throws(SVAError) -> DetachedTables {
        let (p, _) = try table(parent)
        let s = EntrySlot(holder: p, index: try checkIndex(index))
        guard child(of: s) != nil else { throw .notFound }
        return unlink(s, va: 0, site: .arch)
    }

    /// The checks pagetable_free makes of a frame a caller names: a table,
    /// not a root, not queued, not linked (the v6 bug: freeing the table that
    /// holds an entry instead of the one it points to).
    func detachedTable(_ pfn: UInt64) throws(SVAError) -> DetachedTables {
        let (t, d) = try table(pfn)
        guard !d.ptFlags.contains(.root) else { throw .wrongAPI }
        guard !d.ptFlags.contains(.deferred) else { throw .doubleFree }
        guard !d.ptFlags.contains(.linked) else { throw .busy }
        var out = DetachedTables()
        out.append(t, va: 0)
        return out
    }

    /// pagetable_free_kernel: queue (or free at once in the immediate mode).
    mutating func pagetableFreeKernel(_ pfn: UInt64) throws(SVAError) -> Int {
        var batch = try detachedTable(pfn)
        guard batch.tables[0].pfn.index < memory.frameCount, memory[batch.tables[0].pfn].frameKind == .kernelTable
        else { throw .wrongAPI }
        if freeMode == .immediate { return pagetableFree(batch.take(), site: .arch) }
        queueDeferred(batch.tables[0].pfn, site: .arch)
        return 1
    }
}

public typealias TableFreeHook = @Sendable (_ pfn: PFN, _ level: Int, _ site: Site) -> Void
