// SPDX-License-Identifier: Apache-2.0

/// Reading, linking and unlinking tables. Every change of an entry that points
/// at a table goes through `link` or `unlink`, which keep the LINKED mark of
/// the descriptor and log the step.
extension MachineCore {
    func entry(_ slot: EntrySlot) -> PageTableEntry {
        PageTableEntry(raw: memory.entry(slot.holder.pfn, slot.index).pointee)
    }

    func setEntry(_ slot: EntrySlot, _ e: PageTableEntry) {
        memory.entry(slot.holder.pfn, slot.index).pointee = e.raw
    }

    /// The table an entry points to: nil for an empty entry or a leaf.
    func child(of slot: EntrySlot) -> TableFrame? {
        let e = entry(slot)
        guard e.isPresent, slot.holder.level > 1, !e.isHugeLeaf else { return nil }
        return TableFrame(pfn: e.pfn, level: slot.holder.level - 1)
    }

    func slot(in table: TableFrame, for va: UInt64) -> EntrySlot {
        EntrySlot(holder: table, index: AddressLayout.index(va, level: table.level))
    }

    /// A zeroed table for `level`. Tables of the kernel half are kernel tables;
    /// `flags` carries the PT_kernel mark when the allocating path sets it.
    mutating func allocTable(level: Int, kernelHalf: Bool, flags: PtdescFlags,
                             site: Site) throws(SVAError) -> TableFrame {
        let pfn = try allocFrames(order: 0, kind: kernelHalf ? .kernelTable : .userTable,
                                  level: level, flags: flags, site: site)
        return TableFrame(pfn: pfn, level: level)
    }

    /// Points `slot` at `table` (pmd_populate and friends).
    mutating func link(_ slot: EntrySlot, to table: TableFrame, va: UInt64, site: Site) {
        setEntry(slot, .table(table.pfn))
        memory[table.pfn].ptFlags.insert(.linked)
        events.record(.tableLink, site: site, pfn: table.pfn, desc: memory[table.pfn], va: va,
                      aux: UInt64(slot.holder.pfn.rawValue))
    }

    /// Clears the entry in `slot` (pmd_clear / pud_clear) and hands back the
    /// table it pointed to, now detached. The caller flushes, then frees.
    mutating func unlink(_ slot: EntrySlot, va: UInt64, site: Site) -> DetachedTables {
        var out = DetachedTables()
        guard child(of: slot) != nil else { return out }
        replace(slot, with: .none, va: va, site: site, into: &out)
        return out
    }

    /// Writes `new` into a slot that points at a table (a huge leaf replacing
    /// it, as set_pmd does in collapse) and detaches the old table into `out`.
    mutating func replace(_ slot: EntrySlot, with new: PageTableEntry, va: UInt64, site: Site,
                          into out: inout DetachedTables) {
        guard let t = child(of: slot) else { setEntry(slot, new); return }
        let old = entry(slot)
        setEntry(slot, new)
        memory[t.pfn].ptFlags.remove(.linked)
        events.record(.tableUnlink, site: site, pfn: t.pfn, desc: memory[t.pfn], va: va, aux: old.raw)
        out.append(t, va: va)
    }

    /// Walks from `root` to the table at `level` that maps `va`, allocating
    /// missing tables when `allocating` is given. Returns nil when a table is
    /// missing and none may be allocated. Throws `.exists` when a huge leaf
    /// sits above `level`.
    mutating func walk(_ root: TableFrame, to level: Int, va: UInt64,
                       allocating: (flags: PtdescFlags, site: Site)?) throws(SVAError) -> EntrySlot? {
        var table = root
        while table.level > level {
            let s = slot(in: table, for: va)
            if let next = child(of: s) {
                table = next
                continue
            }
            if entry(s).isPresent { throw .exists }  // a huge leaf covers va
            guard let (flags, site) = allocating else { return nil }
            let t = try allocTable(level: table.level - 1, kernelHalf: layout.isKernel(va),
                                   flags: flags, site: site)
            link(s, to: t, va: va, site: site)
            table = t
        }
        return slot(in: table, for: va)
    }

    /// Like `walk` without allocation, for read-only callers.
    func lookup(_ root: TableFrame, to level: Int, va: UInt64) -> EntrySlot? {
        var table = root
        while table.level > level {
            guard let next = child(of: slot(in: table, for: va)) else { return nil }
            table = next
        }
        return slot(in: table, for: va)
    }

    /// The slot holding the leaf that maps `va` at any level, or nil.
    func leafSlot(_ root: TableFrame, va: UInt64) -> EntrySlot? {
        let (s, present) = lastSlot(root, va: va)
        return present ? s : nil
    }

    /// The slot where the walk of `va` ends: a leaf (present) or the first
    /// empty entry (not present).
    func lastSlot(_ root: TableFrame, va: UInt64) -> (EntrySlot, present: Bool) {
        var table = root
        while true {
            let s = slot(in: table, for: va)
            guard entry(s).isPresent else { return (s, false) }
            guard let next = child(of: s) else { return (s, true) }
            table = next
        }
    }

    /// Whether a table maps nothing.
    func isEmpty(_ t: TableFrame) -> Bool {
        let p = memory.entry(t.pfn, 0)
        for i in 0..<512 where p[i] != 0 { return false }
        return true
    }

    /// pagetable_free(): the one release path for page-table frames
    /// (kernel-notes §2.3). Every table has been unlinked (the type says so)
    /// and the caller has flushed the CPU TLB. Tables the fidelity mode
    /// defers go to the deferred list (pagetable_free_kernel); the rest go
    /// back to the allocator now (__pagetable_free). Returns how many were
    /// queued: the caller then schedules the work, with this lock dropped.
    @discardableResult
    mutating func pagetableFree(_ batch: consuming DetachedTables, site: Site) -> Int {
        var queued = 0
        for t in batch.tables {
            if defers(memory[t.pfn]) {
                queueDeferred(t.pfn, site: site)
                queued += 1
            } else {
                release(t.pfn, site: site)
            }
        }
        return queued
    }
}
