// SPDX-License-Identifier: Apache-2.0

/// The primitives for callers that bring their own arch code: allocate a
/// kernel table, read and write entries, link and unlink tables, free them
/// through pagetable_free / pagetable_free_kernel. Each checks what the
/// ready-made paths guarantee by construction.
extension Machine {
    public func allocKernelTable(level: Int) throws(SVAError) -> TableFrame {
        try core.locked { c throws(SVAError) in try c.allocKernelTable(level: level) }
    }

    public func readEntry(table: PFN, index: UInt32) throws(SVAError) -> UInt64 {
        try core.locked { c throws(SVAError) in try c.readEntry(UInt64(table.rawValue), index) }
    }

    public func writeEntry(table: PFN, index: UInt32, _ value: UInt64) throws(SVAError) {
        try core.locked { c throws(SVAError) in try c.writeEntry(UInt64(table.rawValue), index, value) }
    }

    public func linkTable(parent: PFN, index: UInt32, child: PFN) throws(SVAError) {
        try core.locked { c throws(SVAError) in
            try c.linkTable(parent: UInt64(parent.rawValue), index: index, child: UInt64(child.rawValue))
        }
    }

    /// Clears the entry and returns the table it pointed to.
    public func unlinkTable(parent: PFN, index: UInt32) throws(SVAError) -> TableFrame {
        try core.locked { c throws(SVAError) in
            var detached = try c.unlinkTable(parent: UInt64(parent.rawValue), index: index)
            let t = detached.tables[0]
            // The caller owns it now; the engine keeps no batch for it.
            _ = detached.take()
            return t
        }
    }

    /// pagetable_free(): see svakit_pagetable_free.
    public func pagetableFree(_ pfn: PFN) throws(SVAError) {
        let queued = try core.locked { c throws(SVAError) in
            c.pagetableFree(try c.detachedTable(UInt64(pfn.rawValue)), site: .arch)
        }
        deferredQueued(queued)
    }

    /// pagetable_free_kernel(): see svakit_pagetable_free_kernel.
    public func pagetableFreeKernel(_ pfn: PFN) throws(SVAError) {
        let queued = try core.locked { c throws(SVAError) in try c.pagetableFreeKernel(UInt64(pfn.rawValue)) }
        deferredQueued(queued)
    }

    /// Told of every page-table frame that returns to the allocator, with
    /// the memory lock held (the hook must not call into the machine).
    public func setTableFreeHook(_ hook: TableFreeHook?) {
        core.locked { $0.tableFreeHook = hook }
    }
}
