// SPDX-License-Identifier: Apache-2.0

/// The result of a software walk.
public enum Translation: Equatable, Sendable {
    /// `va` maps to `phys` through a leaf of `size` at `level`.
    case mapped(phys: UInt64, size: PageSize, entry: PageTableEntry, level: Int)
    /// The entry at `level` is not present.
    case notPresent(level: Int)

    public var physicalAddress: UInt64? {
        if case .mapped(let p, _, _, _) = self { return p }
        return nil
    }
}

extension MachineCore {
    /// Checks an address against the half an mm may map and the paging mode.
    func checkAddress(_ va: UInt64, mm: UInt32) throws(SVAError) {
        guard layout.isCanonical(va) else { throw .outOfRange }
        guard layout.isKernel(va) == (mm == 0) else { throw .invalidArgument }
    }

    /// Tables allocated by mappings in the kernel half carry the PT_kernel mark,
    /// as the generic kernel allocators set it (kernel-notes §2.2).
    func tableFlags(for va: UInt64) -> PtdescFlags { layout.isKernel(va) ? .kernel : [] }

    mutating func map(mm: UInt32, va: UInt64, phys: UInt64, size: PageSize, prot: UInt64,
                      site: Site) throws(SVAError) {
        guard prot & ~PageTableEntry.protMask == 0,
              va & (size.bytes - 1) == 0, phys & (size.bytes - 1) == 0
        else { throw .invalidArgument }
        try checkAddress(va, mm: mm)
        try checkAddress(va &+ size.bytes &- 1, mm: mm)
        guard phys < memoryBytes, size.bytes <= memoryBytes - phys else { throw .outOfRange }
        let root = try root(of: mm)
        // Refuse before allocating anything, so a refused map leaves no tables.
        if let s = try walkIfPresent(root, to: size.level, va: va), entry(s).isPresent {
            throw .exists
        }
        guard let s = try walk(root, to: size.level, va: va,
                               allocating: (tableFlags(for: va), site)) else { throw .invalidArgument }
        setEntry(s, .leaf(phys, level: size.level, prot: prot))
    }

    /// `lookup` that also reports a huge leaf above `level` as `.exists`.
    func walkIfPresent(_ root: TableFrame, to level: Int, va: UInt64) throws(SVAError) -> EntrySlot? {
        var table = root
        while table.level > level {
            let s = slot(in: table, for: va)
            if let next = child(of: s) { table = next; continue }
            if entry(s).isPresent { throw .exists }
            return nil
        }
        return slot(in: table, for: va)
    }

    /// Clears the leaf mapping exactly [va, va + size). Tables stay.
    mutating func unmap(mm: UInt32, va: UInt64, size: PageSize) throws(SVAError) {
        guard va & (size.bytes - 1) == 0 else { throw .invalidArgument }
        try checkAddress(va, mm: mm)
        let root = try root(of: mm)
        let s: EntrySlot?
        do { s = try walkIfPresent(root, to: size.level, va: va) } catch { throw .invalidArgument }
        guard let s, entry(s).isPresent else { throw .notFound }
        // A table pointer where a huge leaf was asked for: the range is mapped
        // by smaller leaves.
        guard size.level == 1 || entry(s).isHugeLeaf else { throw .invalidArgument }
        setEntry(s, .none)
    }

    /// The software walk (what the CPU's page walker does).
    func translate(root: TableFrame, va: UInt64) -> Translation {
        var pfn = root.pfn
        var level = root.level
        while true {
            let e = PageTableEntry(raw: memory.entry(pfn, AddressLayout.index(va, level: level)).pointee)
            guard e.isPresent else { return .notPresent(level: level) }
            if level == 1 || (level <= 3 && e.isHugeLeaf) {
                let size = PageSize.forLevel(level)
                return .mapped(phys: e.physicalAddress | (va & (size.bytes - 1)), size: size,
                               entry: e, level: level)
            }
            pfn = e.pfn
            level -= 1
        }
    }
}
