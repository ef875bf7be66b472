// SPDX-License-Identifier: Apache-2.0

extension MachineCore {
    /// Allocates 2^order frames and fills their descriptors. Page tables come
    /// back zeroed (as with __GFP_ZERO); data keeps whatever the frame held.
    mutating func allocFrames(order: Int, kind: FrameKind, level: Int = 0, flags: PtdescFlags = [],
                              site: Site, owner: UInt16 = 0) throws(SVAError) -> PFN {
        guard order >= 0, order <= maxOrder else { throw .invalidArgument }
        let pfn = try allocator.take(order: order, memory.descs)
        let step = UInt32(truncatingIfNeeded: events.nextStep)
        for i in 0..<(1 << order) {
            let p = pfn + i
            memory[p].kind = kind.rawValue
            memory[p].level = UInt8(level)
            memory[p].order = i == 0 ? UInt8(order) : 0
            memory[p].ptFlags = i == 0 ? flags : flags.union(.tail)
            memory[p].site = site.rawValue
            memory[p].owner = owner
            memory[p].alloc_step = step
            memory[p].lru_next = PFN.none.rawValue
            memory[p].lru_prev = PFN.none.rawValue
            memory[p].pt_list_next = PFN.none.rawValue
            memory[p].map_count = 0
        }
        if kind.isTable { memory.zero(pfn, count: 1 << order) }
        adjustCount(kind, by: 1 << order)
        counters.allocs += 1
        events.record(.frameAlloc, site: site, pfn: pfn, desc: memory[pfn])
        return pfn
    }

    /// Returns an allocated block to the allocator: every frame's generation
    /// changes, its allocation history (site, owner, step) stays readable.
    mutating func release(_ pfn: PFN, site: Site) {
        let before = memory[pfn]
        let n = 1 << Int(before.order)
        for i in 0..<n {
            let p = pfn + i
            memory[p].kind = FrameKind.free.rawValue
            memory[p].level = 0
            memory[p].ptFlags = []
            memory[p].generation &+= 1
        }
        adjustCount(before.frameKind, by: -n)
        counters.frees += 1
        allocator.give(pfn, order: Int(before.order), memory.descs)
        // The event shows what the frame was and the generation it has now.
        var shown = before
        shown.generation = memory[pfn].generation
        events.record(.frameFree, site: site, pfn: pfn, desc: shown)
        if before.frameKind.isTable, let hook = tableFreeHook { hook(pfn, Int(before.level), site) }
    }

    /// The descriptor of an allocated block head, or the error that freeing
    /// `pfn` deserves.
    func allocatedHead(_ pfn: PFN) throws(SVAError) -> Ptdesc {
        guard memory.contains(pfn) else { throw .outOfRange }
        let d = memory[pfn]
        switch d.frameKind {
        case .free: throw d.generation > 0 ? .doubleFree : .notAllocated
        case .offline: throw .notAllocated
        default: if d.ptFlags.contains(.tail) { throw .notAllocated }
        }
        return d
    }

    /// Frees a data block on behalf of a caller (svakit_frame_free).
    mutating func freeData(_ pfn: PFN, site: Site) throws(SVAError) {
        guard try allocatedHead(pfn).frameKind == .data else { throw .wrongAPI }
        release(pfn, site: site)
    }

    mutating func adjustCount(_ kind: FrameKind, by n: Int) {
        switch kind {
        case .kernelTable: counters.kernelTables += n
        case .userTable: counters.userTables += n
        case .data: counters.dataFrames += n
        case .offline: counters.offlineFrames += n
        case .free: break
        }
    }

    var freeFrameCount: Int { allocator.freeFrames(offlineAboveCursor: counters.offlineVirgin) }
}
