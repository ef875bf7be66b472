// SPDX-License-Identifier: Apache-2.0

/// vmalloc and vfree on the simulated vmalloc area.
extension MachineCore {
    /// vmalloc with 4 KiB leaves: reserve, allocate data frames, map. On
    /// failure everything done so far is undone (tables allocated on the way
    /// stay, as in Linux).
    mutating func vmalloc(size: UInt64, owner: UInt16) throws(SVAError) -> UInt64 {
        guard size > 0, size & 0xfff == 0, size <= vmalloc.end - vmalloc.start else { throw .invalidArgument }
        let va = try vmalloc.reserve(size: size, align: 4096, huge: false)
        var done: UInt64 = 0
        do throws(SVAError) {
            while done < size {
                let pfn = try allocFrames(order: 0, kind: .data, site: .vmalloc, owner: owner)
                do throws(SVAError) {
                    try map(mm: 0, va: va + done, phys: pfn.physicalAddress, size: .size4K,
                            prot: PageTableEntry.kernelProt, site: .vmalloc)
                } catch {
                    release(pfn, site: .vmalloc)
                    throw error
                }
                done += 4096
            }
        } catch {
            _ = clearLeaves(va: va, size: done, site: .vmalloc).map { release($0, site: .vmalloc) }
            vmalloc.remove(at: va)
            throw error
        }
        return va
    }

    /// Clears the leaves of [va, va + size) in the kernel half and returns the
    /// data blocks they mapped (their heads). Tables stay.
    mutating func clearLeaves(va: UInt64, size: UInt64, site: Site) -> [PFN] {
        var blocks: [PFN] = []
        var a = va
        while a < va + size {
            // Step over whatever the entry that ended the walk covers: a
            // cleared leaf, or an empty entry at any level.
            let (s, present) = lastSlot(kernelRoot, va: a)
            if present {
                blocks.append(entry(s).pfn)
                setEntry(s, .none)
            }
            a = (a | (AddressLayout.span(level: s.holder.level) - 1)) &+ 1
            if a == 0 { break }
        }
        return blocks
    }

    /// Checks that [va, va + size) can be vunmapped: 4 KiB aligned, kernel,
    /// and no huge leaf straddling an end.
    func checkVunmap(va: UInt64, size: UInt64) throws(SVAError) {
        guard size > 0, va & 0xfff == 0, size & 0xfff == 0 else { throw .invalidArgument }
        try checkAddress(va, mm: 0)
        try checkAddress(va &+ size &- 1, mm: 0)
        for edge in [va, va + size] {
            if let s = leafSlot(kernelRoot, va: edge), s.holder.level > 1,
               edge & (AddressLayout.span(level: s.holder.level) - 1) != 0 { throw .invalidArgument }
        }
    }
}
