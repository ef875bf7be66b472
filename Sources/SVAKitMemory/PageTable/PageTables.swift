// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// One address space (mm_struct): its root table and its page_table_lock.
package final class AddressSpace: Sendable {
    package let id: UInt32
    package let root: TableFrame
    /// page_table_lock: serialises the CPU-side writers of this mm's tables
    /// (the kernel half for init_mm, the user half for a process mm), and
    /// protects the mm's IOMMU-only root (kpti-root; `.none` until the first
    /// bind), whose user half mirrors the root's. IOMMU walkers never take it.
    package let ptl = RankedMutex<PFN>(.pageTable, .none)
    /// Top-level user entries mirrored into the IOMMU-only root (relaxed: a
    /// counter, not a lock).
    package let iommuRootSyncs = Atomic<Int>(0)

    package init(id: UInt32, root: TableFrame) {
        self.id = id
        self.root = root
    }
}

/// Layer 3: the CPU page tables. init_mm and its kernel half (shared by every
/// mm), the process address spaces, and the vmalloc area's range allocator.
/// Depends on the frame memory below; returns detached tables to its callers
/// instead of freeing them.
package final class PageTables: Sendable {
    package let frames: FrameMemory
    package let layout: AddressLayout
    /// clear-us: init_mm's table entries are written without U/S.
    package let kernelEntriesWithoutUser: Bool
    /// init_mm.
    package let kernel: AddressSpace

    /// The address spaces by id (0 is init_mm); nil once destroyed. Ids are
    /// never reused. Held only to find or change the list, never while a
    /// page_table_lock is taken.
    private let spaces: RankedMutex<[AddressSpace?]>

    /// vmap_area_lock: the vmalloc area's ranges.
    package let vmallocArea: RankedMutex<VmallocSpace>

    /// Boots init_mm: its root (a static table in the kernel image on x86,
    /// never freed), one next-level table for each of the 256 kernel-half root
    /// entries (x86 preallocates them, preallocate_vmalloc_pages, so the root
    /// entries never change and every mm copies them once), and a 2 MiB direct
    /// map of all memory whose tables come from memblock (BOOTMEM, not
    /// PT_kernel-marked: docs/KERNEL-MODEL.md §2.2, §2.7).
    package init(frames: FrameMemory, layout: AddressLayout, kernelEntriesWithoutUser: Bool = false,
         gbpages: Bool = false) throws(SVAError) {
        self.frames = frames
        self.layout = layout
        self.kernelEntriesWithoutUser = kernelEntriesWithoutUser
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
            try k.mapDirect(from: 0, frames: frames.frameCount, flags: .bootmem, site: .boot, gbpages: gbpages)
        }
    }

    package var memory: PhysicalMemory { frames.memory }

    /// Back to boot (Machine.reset, quiescent): init_mm alone, with no
    /// IOMMU-only root, and an empty vmalloc area. The tables' bytes and
    /// descriptors are the frame memory's to restore.
    package func resetToBoot() {
        spaces.locked { $0 = [kernel] }
        kernel.ptl.locked { $0 = .none }
        kernel.iommuRootSyncs.store(0, ordering: .relaxed)
        vmallocArea.locked { $0 = VmallocSpace(start: layout.vmallocStart, end: layout.vmallocEnd) }
    }

    /// The sign-extended address of root entry `i`.
    package func kernelAddress(rootIndex i: Int) -> UInt64 {
        UInt64(i) << UInt64(12 + 9 * (layout.rootLevel - 1)) | ~0 << UInt64(layout.vaBits - 1)
    }

    // MARK: - Locking

    /// The view of `space` with `iommuRoot` (the value its ptl protects,
    /// so call it with the lock held) as the mirror of its user half.
    private func view(_ space: AddressSpace, iommuRoot: PFN) -> PTView {
        var v = PTView(memory: frames.memory, frames: frames, events: frames.events, layout: layout, root: space.root)
        v.kernelEntriesWithoutUser = kernelEntriesWithoutUser && space === kernel
        if iommuRoot != .none { v.iommuRoot = IOMMURootMirror(pfn: iommuRoot, space: space) }
        return v
    }

    /// Runs `body` under init_mm's page_table_lock.
    package func withKernel<R: ~Copyable, E: Error>(_ body: (PTView) throws(E) -> R) throws(E) -> R {
        try kernel.ptl.locked { r throws(E) in try body(view(kernel, iommuRoot: r)) }
    }

    /// Runs `body` under the page_table_lock of `mm` (init_mm for 0).
    package func withMM<R: ~Copyable>(_ mm: UInt32, _ body: (PTView) throws(SVAError) -> R) throws(SVAError) -> R {
        let space = try self.space(mm)
        return try space.ptl.locked { r throws(SVAError) in try body(view(space, iommuRoot: r)) }
    }

    /// kpti-root: the IOMMU-only root of `mm`, allocated at its first call
    /// (a user table marked root, accounted like the mm's own root) with a
    /// copy of the mm's user-half top-level entries and an empty kernel
    /// half. From then on every change of those entries is mirrored into it
    /// under the mm's page_table_lock (`PTView.setEntry`). Freed with the mm
    /// (`removeMM` hands it back).
    package func iommuRoot(of mm: UInt32) throws(SVAError) -> TableFrame {
        guard mm != 0 else { throw .invalidArgument }
        let space = try self.space(mm)
        let level = layout.rootLevel
        return try space.ptl.locked { r throws(SVAError) in
            if r == .none {
                let p = try frames.alloc(order: 0, kind: .userTable, level: level, flags: .root, site: .mmCreate)
                for i in 0..<AddressLayout.kernelRootEntries.lowerBound {
                    let e = memory.loadEntry(space.root.pfn, i)
                    if e != 0 { memory.storeEntry(p, i, e) }
                }
                r = p
            }
            return TableFrame(pfn: r, level: level)
        }
    }

    /// The IOMMU-only root of `mm`, if it has one (audits, tests).
    package func existingIOMMURoot(of space: AddressSpace) -> PFN? {
        let r = space.ptl.locked { $0 }
        return r == .none ? nil : r
    }

    package func space(_ mm: UInt32) throws(SVAError) -> AddressSpace {
        try spaces.locked { s throws(SVAError) in
            guard Int(mm) < s.count, let space = s[Int(mm)] else { throw .noSuchMM }
            return space
        }
    }

    package func root(of mm: UInt32) throws(SVAError) -> TableFrame { try space(mm).root }

    /// The live address spaces (for audits).
    package var allSpaces: [AddressSpace] { spaces.locked { $0.compactMap { $0 } } }

    // MARK: - mm_alloc and mmput

    /// A new mm: a user root whose kernel half copies init_mm's root entries,
    /// which point at the shared kernel tables (pgd_ctor on x86). Those
    /// entries never change after boot, so no lock is needed to copy them.
    package func createMM() throws(SVAError) -> UInt32 {
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
    package func removeMM(_ mm: UInt32) throws(SVAError) -> RemovedMM {
        guard mm != 0 else { throw .wrongAPI }
        let space = try spaces.locked { s throws(SVAError) in
            guard Int(mm) < s.count, let space = s[Int(mm)] else { throw .noSuchMM }
            s[Int(mm)] = nil
            return space
        }
        return space.ptl.locked { r in
            let v = view(space, iommuRoot: r)
            var batch = DetachedTables.none
            for i in 0..<AddressLayout.kernelRootEntries.lowerBound {
                v.detachSubtree(EntrySlot(holder: space.root, index: i),
                                va: UInt64(i) << UInt64(12 + 9 * (space.root.level - 1)),
                                site: .mmTeardown, into: &batch)
            }
            for i in AddressLayout.kernelRootEntries { memory.storeEntry(space.root.pfn, i, 0) }
            let iommuRoot = r
            r = .none
            return RemovedMM(tables: batch, root: space.root.pfn, iommuRoot: iommuRoot)
        }
    }

    /// An mm off the list: its user tables unlinked, its root (and its
    /// IOMMU-only root, kpti-root) still allocated.
    package struct RemovedMM: ~Copyable {
        package var tables: DetachedTables
        package let root: PFN
        /// `.none` when the mm never had one.
        package let iommuRoot: PFN

        /// Hands the detached tables to `free` and returns the roots (a
        /// client module cannot take the struct apart itself).
        package consuming func freeTables(_ free: (consuming DetachedTables) -> Void) -> (root: PFN, iommuRoot: PFN) {
            let roots = (root, iommuRoot)
            free(tables)
            return roots
        }
    }

    // MARK: - Mappings

    /// Checks an address against the half an mm may map and the paging mode.
    package func checkAddress(_ va: UInt64, mm: UInt32) throws(SVAError) {
        guard layout.isCanonical(va) else { throw .outOfRange }
        guard layout.isKernel(va) == (mm == 0) else { throw .invalidArgument }
    }

    /// Maps [va, va + size) to phys with one leaf. Refuses before allocating
    /// anything, so a refused map leaves no tables; tables allocated for a
    /// map that then fails (out of memory part-way) stay, as in Linux.
    /// `checkTarget`, the caller's check of what `phys` may be, runs under
    /// the mm's lock once the slot is known to be free.
    package func map(mm: UInt32, va: UInt64, phys: UInt64, size: PageSize, prot: UInt64, site: Site,
             checkTarget: () throws(SVAError) -> Void = {}) throws(SVAError) {
        guard prot & ~PageTableEntry.protMask == 0, va & (size.bytes - 1) == 0, phys & (size.bytes - 1) == 0
        else { throw .invalidArgument }
        try checkAddress(va, mm: mm)
        try checkAddress(va &+ size.bytes &- 1, mm: mm)
        guard phys < frames.bytes, size.bytes <= frames.bytes - phys else { throw .outOfRange }
        try withMM(mm) { t throws(SVAError) in
            try t.map(va, phys: phys, size: size, prot: prot, site: site, checkTarget: checkTarget)
        }
    }

    /// Clears the leaf mapping exactly [va, va + size). Tables stay.
    package func unmap(mm: UInt32, va: UInt64, size: PageSize) throws(SVAError) {
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
    package func translate(_ va: UInt64, mm: UInt32) throws(SVAError) -> Translation {
        guard layout.isCanonical(va) else { throw .outOfRange }
        return try withMM(mm) { t in t.translate(va) }
    }
}

extension PTView {
    /// Tables allocated by mappings in the kernel half carry the PT_kernel
    /// mark, as the generic kernel allocators set it (docs/KERNEL-MODEL.md §2.2).
    package func tableFlags(for va: UInt64) -> PtdescFlags { layout.isKernel(va) ? .kernel : [] }

    package func map(_ va: UInt64, phys: UInt64, size: PageSize, prot: UInt64, site: Site,
             checkTarget: () throws(SVAError) -> Void = {}) throws(SVAError) {
        switch try walk(va, to: size.level) {
        case .leaf: throw .exists
        case .slot(let s) where entry(s).isPresent: throw .exists
        case .hole(let s):
            // Refuse up front when the tables it needs cannot all be had,
            // so a failed map leaves no half-built path behind.
            guard frames.freeFrameCount >= s.holder.level - size.level else { throw .outOfMemory }
        default: break
        }
        try checkTarget()
        guard case .slot(let s) = try walk(va, to: size.level, allocating: (tableFlags(for: va), site))
        else { throw .exists }
        setEntry(s, .leaf(phys, level: size.level, prot: prot))
    }

    /// Clears the leaves of [va, va + size) and returns the data blocks they
    /// mapped (their heads). Tables stay.
    package func clearLeaves(va: UInt64, size: UInt64) -> [PFN] {
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
    /// leaves; `first` and `count` are 2 MiB aligned. With `gbpages`, a GiB
    /// the range covers whole gets one 1 GiB leaf instead, except GiB 0
    /// (init_memory_mapping's page-size mask: 1 GiB only where the whole GiB
    /// is RAM, which a PC's first GiB never is).
    package func mapDirect(from first: Int, frames count: Int, flags: PtdescFlags, site: Site,
                   gbpages: Bool = false) throws(SVAError) {
        let gib = 1 << 18
        var pfn = first
        while pfn < first + count {
            let phys = UInt64(pfn) << 12
            let wholeGiB = gbpages && pfn > 0 && pfn % gib == 0 && pfn + gib <= first + count
            let level = wholeGiB ? 3 : 2
            guard case .slot(let s) = try walk(layout.directMapBase + phys, to: level, allocating: (flags, site))
            else { throw .invalidArgument }
            setEntry(s, .leaf(phys, level: level, prot: PTView.directMapProt))
            pfn += wholeGiB ? gib : 512
            guard !wholeGiB else { continue }
            // The rest of this PMD table's 2 MiB leaves, in the order the
            // walk per leaf wrote them (the walk would find the same table:
            // boot's cost drops from one walk per 2 MiB to one per GiB).
            var i = s.index + 1
            while i < 512 && pfn < first + count
                && !(gbpages && pfn % gib == 0 && pfn + gib <= first + count) {
                setEntry(EntrySlot(holder: s.holder, index: i),
                         .leaf(UInt64(pfn) << 12, level: 2, prot: PTView.directMapProt))
                pfn += 512
                i += 1
            }
        }
    }

    /// What a direct-map leaf holds: PAGE_KERNEL_LARGE (RW, global, NX; no US).
    package static let directMapProt = PageTableEntry.writable | PageTableEntry.global | PageTableEntry.noExecute
}
