// SPDX-License-Identifier: Apache-2.0

extension MachineCore {
    /// What a direct-map leaf holds: PAGE_KERNEL_LARGE (RW, global, NX; no US).
    static let directMapProt = PageTableEntry.writable | PageTableEntry.global | PageTableEntry.noExecute

    /// Builds init_mm: its root (a static table in the kernel image on x86,
    /// never freed), one next-level table for each of the 256 kernel-half root
    /// entries (x86 preallocates them, preallocate_vmalloc_pages, so that the
    /// root entries never change and every mm can copy them once), and a 2 MiB
    /// direct map of all memory whose tables come from memblock (BOOTMEM, not
    /// PT_kernel-marked: kernel-notes §2.2, §2.7).
    mutating func boot() throws(SVAError) {
        let rootPfn = try allocFrames(order: 0, kind: .kernelTable, level: layout.rootLevel,
                                      flags: [.root, .bootmem], site: .boot)
        kernelRoot = TableFrame(pfn: rootPfn, level: layout.rootLevel)
        mmRoots = [rootPfn]
        for i in AddressLayout.kernelRootEntries {
            let t = try allocTable(level: layout.rootLevel - 1, kernelHalf: true, flags: .kernel, site: .boot)
            link(EntrySlot(holder: kernelRoot, index: i), to: t,
                 va: kernelAddress(rootIndex: i), site: .boot)
        }
        try mapDirect(from: 0, frames: memory.frameCount, flags: .bootmem, site: .boot)
    }

    /// The sign-extended address of root entry `i`.
    func kernelAddress(rootIndex i: Int) -> UInt64 {
        UInt64(i) << UInt64(12 + 9 * (layout.rootLevel - 1)) | ~0 << UInt64(layout.vaBits - 1)
    }

    /// Maps frames [first, first + count) into the direct map with 2 MiB leaves;
    /// `first` and `count` are 2 MiB aligned.
    mutating func mapDirect(from first: Int, frames count: Int, flags: PtdescFlags,
                            site: Site) throws(SVAError) {
        var pfn = first
        while pfn < first + count {
            let phys = UInt64(pfn) << 12
            let va = layout.directMapBase + phys
            guard let s = try walk(kernelRoot, to: 2, va: va, allocating: (flags, site)) else {
                throw .invalidArgument
            }
            setEntry(s, .leaf(phys, level: 2, prot: Self.directMapProt))
            pfn += 512
        }
    }
}
