// SPDX-License-Identifier: Apache-2.0

/// One address space (mm_struct): its root table and its page_table_lock.
final class AddressSpace: Sendable {
    let id: UInt32
    let root: TableFrame
    /// page_table_lock: serialises the CPU-side writers of this mm's tables
    /// (the kernel half for init_mm, the user half for a process mm).
    /// IOMMU walkers never take it.
    let ptl = RankedMutex<Void>(.pageTable, ())

    init(id: UInt32, root: TableFrame) {
        self.id = id
        self.root = root
    }
}

/// Layer 3: the CPU page tables. init_mm and its kernel half (shared by every
/// mm), the process address spaces, and the vmalloc area's range allocator.
/// Depends on the frame memory below; returns detached tables to its callers
/// instead of freeing them.
final class PageTables: Sendable {
    let frames: FrameMemory
    let layout: AddressLayout
    /// init_mm.
    let kernel: AddressSpace

    /// The address spaces by id (0 is init_mm); nil once destroyed. Ids are
    /// never reused. Held only to find or change the list, never while a
    /// page_table_lock is taken.
    private let spaces: RankedMutex<[AddressSpace?]>

    /// vmap_area_lock: the vmalloc area's ranges.
    let vmallocArea: RankedMutex<VmallocSpace>

    /// Boots init_mm: its root (a static table in the kernel image on x86,
    /// never freed), one next-level table for each of the 256 kernel-half root
    /// entries (x86 preallocates them, preallocate_vmalloc_pages, so the root
    /// entries never change and every mm copies them once), and a 2 MiB direct
    /// map of all memory whose tables come from memblock (BOOTMEM, not
    /// PT_kernel-marked: docs/KERNEL-MODEL.md §2.2, §2.7).
    init(frames: FrameMemory, layout: AddressLayout) throws(SVAError) {
        self.frames = frames
        self.layout = layout
        let rootPfn = try frames.alloc(order: 0, kind: .kernelTable, level: layout.rootLevel,
                                       flags: [.root, .bootmem], site: .boot)
        kernel = AddressSpace(id: 0, root: TableFrame(pfn: rootPfn, level: layout.rootLevel))
        spaces = RankedMutex(.addressSpaces, [kernel])
        vmallocArea = RankedMutex(.vmalloc, VmallocSpace(start: layout.vmallocStart, end: layout.vmallocEnd))
        try withKernel { k throws(SVAError) in
            for i in AddressLayout.kernelRootEntries {
                let t = try k.allocTable(level: layout.rootLevel - 1, kernelHalf: true, flags: .kernel, site: .boot)
                k.link(EntrySlot(holder: k.root, index: i), to: t, va: kernelAddress(rootIndex: i), site: .boot)
            }
            try k.mapDirect(from: 0, frames: frames.frameCount, flags: .bootmem, site: .boot)
        }
    }

    var memory: PhysicalMemory { frames.memory }

    /// The sign-extended address of root entry `i`.
    func kernelAddress(rootIndex i: Int) -> UInt64 {
        UInt64(i) << UInt64(12 + 9 * (layout.rootLevel - 1)) | ~0 << UInt64(layout.vaBits - 1)
    }

    // MARK: - Locking

    private func view(_ space: AddressSpace) -> PTView {
        PTView(memory: frames.memory, frames: frames, events: frames.events, layout: layout, root: space.root)
    }

    /// Runs `body` under init_mm's page_table_lock.
    func withKernel<R: ~Copyable, E: Error>(_ body: (PTView) throws(E) -> R) throws(E) -> R {
        let v = view(kernel)
        return try kernel.ptl.locked { _ throws(E) in try body(v) }
    }

    /// Runs `body` under the page_table_lock of `mm` (init_mm for 0).
    func withMM<R: ~Copyable>(_ mm: UInt32, _ body: (PTView) throws(SVAError) -> R) throws(SVAError) -> R {
        let space = try self.space(mm)
        let v = view(space)
        return try space.ptl.locked { _ throws(SVAError) in try body(v) }
    }

    func space(_ mm: UInt32) throws(SVAError) -> AddressSpace {
        try spaces.locked { s throws(SVAError) in
            guard Int(mm) < s.count, let space = s[Int(mm)] else { throw .noSuchMM }
            return space
        }
    }

    func root(of mm: UInt32) throws(SVAError) -> TableFrame { try space(mm).root }

    /// The live address spaces (for audits).
    var allSpaces: [AddressSpace] { spaces.locked { $0.compactMap { $0 } } }

    // MARK: - mm_alloc and mmput

    /// A new mm: a user root whose kernel half copies init_mm's root entries,
    /// which point at the shared kernel tables (pgd_ctor on x86). Those
    /// entries never change after boot, so no lock is needed to copy them.
    func createMM() throws(SVAError) -> UInt32 {
        let root = try frames.alloc(order: 0, kind: .userTable, level: layout.rootLevel, flags: .root, site: .mmCreate)
        for i in AddressLayout.kernelRootEntries {
            memory.storeEntry(root, i, memory.loadEntry(kernel.root.pfn, i))
        }
        return spaces.locked { s in
            let id = UInt32(s.count)
            s.append(AddressSpace(id: id, root: TableFrame(pfn: root, level: layout.rootLevel)))
            return id
        }
    }

    /// Takes an mm off the list and unlinks every table of its user half
    /// (exit_mmap's free_pgtables). Returns them and the root, which the
    /// caller frees (pgd_free) once nothing can walk them.
    func removeMM(_ mm: UInt32) throws(SVAError) -> RemovedMM {
        guard mm != 0 else { throw .wrongAPI }
        let space = try spaces.locked { s throws(SVAError) in
            guard Int(mm) < s.count, let space = s[Int(mm)] else { throw .noSuchMM }
            s[Int(mm)] = nil
            return space
        }
        let v = view(space)
        let batch = space.ptl.locked { _ in
            var batch = DetachedTables.none
            for i in 0..<AddressLayout.kernelRootEntries.lowerBound {
                v.detachSubtree(EntrySlot(holder: space.root, index: i),
                                va: UInt64(i) << UInt64(12 + 9 * (space.root.level - 1)),
                                site: .mmTeardown, into: &batch)
            }
            for i in AddressLayout.kernelRootEntries { memory.storeEntry(space.root.pfn, i, 0) }
            return batch
        }
        return RemovedMM(tables: batch, root: space.root.pfn)
    }

    /// An mm off the list: its user tables unlinked, its root still allocated.
    struct RemovedMM: ~Copyable {
        var tables: DetachedTables
        let root: PFN
    }

    // MARK: - Mappings

    /// Checks an address against the half an mm may map and the paging mode.
    func checkAddress(_ va: UInt64, mm: UInt32) throws(SVAError) {
        guard layout.isCanonical(va) else { throw .outOfRange }
        guard layout.isKernel(va) == (mm == 0) else { throw .invalidArgument }
    }

    /// Maps [va, va + size) to phys with one leaf. Refuses before allocating
    /// anything, so a refused map leaves no tables; tables allocated for a
    /// map that then fails (out of memory part-way) stay, as in Linux.
    func map(mm: UInt32, va: UInt64, phys: UInt64, size: PageSize, prot: UInt64, site: Site) throws(SVAError) {
        guard prot & ~PageTableEntry.protMask == 0, va & (size.bytes - 1) == 0, phys & (size.bytes - 1) == 0
        else { throw .invalidArgument }
        try checkAddress(va, mm: mm)
        try checkAddress(va &+ size.bytes &- 1, mm: mm)
        guard phys < frames.bytes, size.bytes <= frames.bytes - phys else { throw .outOfRange }
        try withMM(mm) { t throws(SVAError) in try t.map(va, phys: phys, size: size, prot: prot, site: site) }
    }

    /// Clears the leaf mapping exactly [va, va + size). Tables stay.
    func unmap(mm: UInt32, va: UInt64, size: PageSize) throws(SVAError) {
        guard va & (size.bytes - 1) == 0 else { throw .invalidArgument }
        try checkAddress(va, mm: mm)
        try withMM(mm) { t throws(SVAError) in
            let s: EntrySlot
            switch try t.walk(va, to: size.level) {
            case .slot(let found): s = found
            case .leaf: throw SVAError.invalidArgument  // a huge leaf above covers more than asked
            case .hole: throw SVAError.notFound
            }
            guard t.entry(s).isPresent else { throw SVAError.notFound }
            // A table pointer where a huge leaf was asked for: the range is
            // mapped by smaller leaves.
            guard size.level == 1 || t.entry(s).isHugeLeaf else { throw SVAError.invalidArgument }
            t.setEntry(s, .none)
        }
    }

    /// The software walk of `va` in `mm`.
    func translate(_ va: UInt64, mm: UInt32) throws(SVAError) -> Translation {
        guard layout.isCanonical(va) else { throw .outOfRange }
        return try withMM(mm) { t in t.translate(va) }
    }
}

extension PTView {
    /// Tables allocated by mappings in the kernel half carry the PT_kernel
    /// mark, as the generic kernel allocators set it (docs/KERNEL-MODEL.md §2.2).
    func tableFlags(for va: UInt64) -> PtdescFlags { layout.isKernel(va) ? .kernel : [] }

    func map(_ va: UInt64, phys: UInt64, size: PageSize, prot: UInt64, site: Site) throws(SVAError) {
        switch try walk(va, to: size.level) {
        case .leaf: throw .exists
        case .slot(let s) where entry(s).isPresent: throw .exists
        case .hole(let s):
            // Refuse up front when the tables it needs cannot all be had,
            // so a failed map leaves no half-built path behind.
            guard frames.freeFrameCount >= s.holder.level - size.level else { throw .outOfMemory }
        default: break
        }
        guard case .slot(let s) = try walk(va, to: size.level, allocating: (tableFlags(for: va), site))
        else { throw .exists }
        setEntry(s, .leaf(phys, level: size.level, prot: prot))
    }

    /// Clears the leaves of [va, va + size) and returns the data blocks they
    /// mapped (their heads). Tables stay.
    func clearLeaves(va: UInt64, size: UInt64) -> [PFN] {
        var blocks: [PFN] = []
        var a = va
        // Counted from va, so a range that ends at the top of the address
        // space (va + size wrapping to 0) needs no overflow.
        while a &- va < size {
            // Step over whatever the entry that ended the walk covers: a
            // cleared leaf, or an empty entry at any level.
            let (s, present) = lastSlot(a)
            if present {
                blocks.append(entry(s).pfn)
                setEntry(s, .none)
            }
            a = (a | (AddressLayout.span(level: s.holder.level) - 1)) &+ 1
            if a == 0 { break }
        }
        return blocks
    }

    /// Maps frames [first, first + count) into the direct map with 2 MiB
    /// leaves; `first` and `count` are 2 MiB aligned.
    func mapDirect(from first: Int, frames count: Int, flags: PtdescFlags, site: Site) throws(SVAError) {
        var pfn = first
        while pfn < first + count {
            let phys = UInt64(pfn) << 12
            guard case .slot(let s) = try walk(layout.directMapBase + phys, to: 2, allocating: (flags, site))
            else { throw .invalidArgument }
            setEntry(s, .leaf(phys, level: 2, prot: PTView.directMapProt))
            pfn += 512
        }
    }

    /// What a direct-map leaf holds: PAGE_KERNEL_LARGE (RW, global, NX; no US).
    static let directMapProt = PageTableEntry.writable | PageTableEntry.global | PageTableEntry.noExecute
}
