// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// Linking and unlinking tables: every change of an entry that points at a
/// table goes through here, which keeps the LINKED mark of the descriptor and
/// logs the step. This file is also the only place that can make a
/// `DetachedTables`, the value `pagetableFree` consumes.
extension PTView {
    /// Points `slot` at `table` (pmd_populate and friends: `_PAGE_TABLE`, U/S
    /// set; set_memory's split passes `_KERNPG_TABLE`). The table was zeroed
    /// by the allocator; the entry's release store publishes it.
    @usableFromInline package func link(_ slot: EntrySlot, to table: TableFrame, va: UInt64, site: Site,
              flags: UInt64 = PageTableEntry.tableFlags) {
        memory.insertFlags(table.pfn, .linked)
        let e = PageTableEntry(raw: table.pfn.physicalAddress | flags)
        setEntry(slot, kernelEntriesWithoutUser ? PageTableEntry(raw: e.raw & ~PageTableEntry.user) : e)
        events.record(.tableLink, site: site, pfn: table.pfn, desc: memory.snapshot(table.pfn), va: va,
                      aux: UInt64(slot.holder.pfn.rawValue))
    }

    /// Clears the entry in `slot` (pmd_clear / pud_clear) and hands back the
    /// table it pointed to, now detached. The caller flushes, then frees.
    package func unlink(_ slot: EntrySlot, va: UInt64, site: Site) -> DetachedTables {
        var out = DetachedTables()
        replace(slot, with: .none, va: va, site: site, into: &out)
        return out
    }

    /// Writes `new` into a slot that points at a table (a huge leaf replacing
    /// it, as set_pmd does in collapse) and detaches the old table into `out`.
    package func replace(_ slot: EntrySlot, with new: PageTableEntry, va: UInt64, site: Site,
                 into out: inout DetachedTables) {
        guard let t = child(of: slot) else { setEntry(slot, new); return }
        let old = entry(slot)
        setEntry(slot, new)
        memory.removeFlags(t.pfn, .linked)
        events.record(.tableUnlink, site: site, pfn: t.pfn, desc: memory.snapshot(t.pfn), va: va, aux: old.raw)
        out.append(t, va: va)
    }

    /// Linux's hot-remove order (free_pte_table, free_pmd_table,
    /// free_pud_table in arch/x86/mm/init_64.c): the table under `slot` is
    /// handed to the free path while the entry still points at it. The one
    /// path that makes a `DetachedTables` of a table still reachable; the
    /// caller frees it, then clears the entry with `clearAfterFree`.
    package func detachStillLinked(_ slot: EntrySlot, va: UInt64) -> DetachedTables {
        var out = DetachedTables()
        guard let t = child(of: slot) else { return out }
        memory.removeFlags(t.pfn, .linked)
        out.append(t, va: va)
        return out
    }

    /// pmd_clear / pud_clear / p4d_clear after `detachStillLinked`'s table
    /// was freed: the entry goes, and the log shows the unlink after the free.
    /// The frame it named may belong to someone else by now, so nothing of
    /// it is touched.
    package func clearAfterFree(_ slot: EntrySlot, va: UInt64, site: Site) {
        let old = entry(slot)
        setEntry(slot, .none)
        events.record(.tableUnlink, site: site, pfn: old.pfn, va: va, aux: old.raw)
    }

    /// Unlinks the table under `slot` and every table below it, bottom up.
    package func detachSubtree(_ slot: EntrySlot, va: UInt64, site: Site, into batch: inout DetachedTables) {
        guard let t = child(of: slot) else { return }
        if t.level > 1 {
            for i in 0..<512 {
                detachSubtree(EntrySlot(holder: t, index: i),
                              va: va | UInt64(i) << UInt64(12 + 9 * (t.level - 1)), site: site, into: &batch)
            }
        }
        batch.append(contentsOf: unlink(slot, va: va, site: site))
    }
}

extension FrameMemory {
    /// The checks pagetable_free makes of a frame a caller names (the C
    /// primitives): a table, not a root, not queued, not linked (the v6 bug:
    /// freeing the table that holds an entry instead of the one it points
    /// to). A caller that unlinked it through `svakit_unlink_table` owns it.
    package func claimDetached(_ pfn: UInt64) throws(SVAError) -> DetachedTables {
        let p = try checkFrame(pfn)
        let d = try allocatedHead(p)
        guard d.frameKind.isTable else { throw .wrongAPI }
        guard !d.ptFlags.contains(.root) else { throw .wrongAPI }
        guard !d.ptFlags.contains(.deferred) else { throw .doubleFree }
        guard !d.ptFlags.contains(.linked) else { throw .busy }
        // A table that still points at tables would orphan them.
        let t = TableFrame(pfn: p, level: Int(d.level))
        if t.level > 1 {
            for i in 0..<512 {
                let e = PageTableEntry(raw: memory.loadEntry(p, i))
                if e.isPresent && !e.isHugeLeaf { throw .busy }
            }
        }
        var out = DetachedTables()
        out.append(TableFrame(pfn: p, level: Int(d.level)), va: 0)
        return out
    }
}

/// Tables that have been unlinked from their parent entries and not freed yet.
///
/// Only the unlink operations in this file make one, by clearing the entry
/// that pointed at each table, and `pagetableFree` consumes it. Being
/// `~Copyable`, a batch cannot be freed twice, and nothing can hand the free
/// path a table that is still linked. Callers flush the CPU TLB between the
/// unlink and the free (docs/KERNEL-MODEL.md §2.6).
package struct DetachedTables: ~Copyable {
    package private(set) var tables: [TableFrame] = []
    /// The first address whose translation went through a detached table.
    package private(set) var va: UInt64 = 0

    fileprivate init() {}

    /// A batch with nothing in it, for paths that had nothing to unlink.
    package static var none: DetachedTables { DetachedTables() }

    fileprivate mutating func append(_ t: TableFrame, va: UInt64) {
        if tables.isEmpty { self.va = va }
        tables.append(t)
    }

    package mutating func append(contentsOf other: consuming DetachedTables) {
        if tables.isEmpty { va = other.va }
        tables.append(contentsOf: other.tables)
    }

    package var isEmpty: Bool { tables.isEmpty }

    /// Gives up the tables without freeing them: the C primitive
    /// svakit_unlink_table hands the table to its caller, who frees it later
    /// through `claimDetached`.
    package consuming func release() -> [TableFrame] { tables }
}
