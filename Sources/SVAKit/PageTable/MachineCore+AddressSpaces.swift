// SPDX-License-Identifier: Apache-2.0

extension MachineCore {
    /// A new mm: a user root whose kernel half copies init_mm's root entries,
    /// which point at the shared kernel tables (pgd_ctor on x86).
    mutating func createMM() throws(SVAError) -> UInt32 {
        guard mmRoots.count < Int(UInt32.max) else { throw .noSpace }
        let root = try allocFrames(order: 0, kind: .userTable, level: layout.rootLevel,
                                   flags: .root, site: .mmCreate)
        for i in AddressLayout.kernelRootEntries {
            memory.entry(root, i).pointee = memory.entry(kernelRoot.pfn, i).pointee
        }
        mmRoots.append(root)
        return UInt32(mmRoots.count - 1)
    }

    /// Tears an mm down (exit_mmap + pgd_free): unlinks every table of the user
    /// half, then frees them and the root. User tables free at once: no IOMMU
    /// can hold them once the mm is gone from every PASID (issue: SVA unbind).
    mutating func destroyMM(_ mm: UInt32) throws(SVAError) {
        guard mm != 0 else { throw .wrongAPI }
        let root = try root(of: mm)
        var batch = DetachedTables()
        for i in 0..<AddressLayout.kernelRootEntries.lowerBound {
            detachSubtree(EntrySlot(holder: root, index: i), va: UInt64(i) << UInt64(12 + 9 * (root.level - 1)),
                          site: .mmTeardown, into: &batch)
        }
        pagetableFree(batch, site: .mmTeardown)
        for i in AddressLayout.kernelRootEntries { memory.entry(root.pfn, i).pointee = 0 }
        release(root.pfn, site: .mmTeardown)
        mmRoots[Int(mm)] = .none
    }

    /// Unlinks the table under `slot` and every table below it, bottom up.
    mutating func detachSubtree(_ slot: EntrySlot, va: UInt64, site: Site, into batch: inout DetachedTables) {
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
