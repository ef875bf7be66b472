// SPDX-License-Identifier: Apache-2.0

/// What the walk oracle found wrong with one walk: a frame the walk read or
/// wrote was not what the pointer that led there believed it was.
struct WalkFinding {
    /// The cache level whose entry led to the frame (2 = PDE cache, ...), or
    /// 0 when a live entry or the PASID entry did.
    var staleLevel: Int
    var frame: PFN
    var expectedLevel: Int
    var expectedGeneration: UInt32?
    var found: Ptdesc
    /// The walk went on through the stale frame and produced a translation
    /// to a frame the stale contents chose.
    var escalation = false
    var escalationPhys: UInt64 = 0
    /// The walker wrote Accessed/Dirty bits into a frame it reached that way.
    var corruption = false
    var corruptedFrame: PFN = .none
}

/// The hardware walker (kernel-notes §3.1): IOTLB first, then the deepest
/// paging-structure cache hit, then the PASID table. It fills the caches as
/// it goes, also when the walk then faults at the leaf, and sets A/D bits.
/// The machine's memory lock is held throughout (the caller took it after
/// this IOMMU's lock), so one walk is atomic against CPU table updates.
extension IOMMUState {
    /// Returns the translation or the fault; `finding` (nil on entry) gets
    /// what the oracle saw, if anything.
    mutating func walk(_ c: inout MachineCore, device: UInt32, pasid: UInt32, va: UInt64, access: DMAAccess,
                       finding: inout WalkFinding?) -> Result<(phys: UInt64, size: PageSize), DMAFault> {
        counters.walks += 1
        let write = access.contains(.write), user = !access.contains(.privileged)
        let caching = config.caching

        // The PASID table first, as VT-d's PASID-cache lookup precedes the
        // IOTLB's: a device with nothing attached at this PASID must not hit
        // lines that another device's bond to the same mm left behind.
        guard let pe = pasidTable[device, pasid] else {
            counters.faults += 1
            return .failure(DMAFault(reason: .noPASID, level: 0, address: va))
        }
        if caching != .none, let hit = iotlbLookup(pasid: pasid, va: va, write: write, user: user) {
            counters.iotlbHits += 1
            return hit
        }

        var table = PFN.none
        var level = 0
        var userOK = true, writeOK = true
        // The belief about `table`: the generation a cache entry recorded.
        var believedGeneration: UInt32? = nil
        var staleLevel = 0
        if caching == .full {
            for l in 2...c.layout.rootLevel {
                guard let (a, b) = withPSC(l, { $0.lookup(pasid: pasid, key: Self.pscKey(va, level: l)) }) else { continue }
                counters.countPSCHit(level: l)
                table = PFN(UInt32(truncatingIfNeeded: a))
                believedGeneration = UInt32(truncatingIfNeeded: a >> 32)
                level = l - 1
                staleLevel = l
                userOK = b & PageTableEntry.user != 0
                writeOK = b & PageTableEntry.writable != 0
                break
            }
        }
        if level == 0 {
            counters.fullWalks += 1
            table = pe.root
            level = c.layout.rootLevel
            believedGeneration = pe.rootGeneration
        }

        while true {
            guard c.memory.contains(table) else {
                counters.faults += 1
                return .failure(DMAFault(reason: .badAddress, level: level, address: va))
            }
            // The oracle: is this frame the table the pointer believed in?
            if finding == nil {
                let d = c.memory.descs + table.index
                let kind = d.pointee.kind
                if kind != FrameKind.kernelTable.rawValue && kind != FrameKind.userTable.rawValue
                    || Int(d.pointee.level) != level
                    || (believedGeneration != nil && d.pointee.generation != believedGeneration!) {
                    finding = WalkFinding(staleLevel: staleLevel, frame: table, expectedLevel: level,
                                          expectedGeneration: believedGeneration, found: d.pointee)
                }
            }
            let slot = c.memory.entry(table, AddressLayout.index(va, level: level))
            let e = PageTableEntry(raw: slot.pointee)
            guard e.isPresent else {
                counters.faults += 1
                return .failure(DMAFault(reason: .notPresent, level: level, address: va))
            }
            userOK = userOK && e.raw & PageTableEntry.user != 0
            writeOK = writeOK && e.raw & PageTableEntry.writable != 0
            let isLeaf = level == 1 || (level <= 3 && e.isHugeLeaf)

            if !isLeaf {
                setAccessedDirty(slot, dirty: false, table: table, finding: &finding)
                let next = e.pfn
                if caching == .full {
                    noteLines(pasid)
                    let gen = c.memory.contains(next) ? c.memory.descs[next.index].generation : 0
                    let perms = (userOK ? PageTableEntry.user : 0) | (writeOK ? PageTableEntry.writable : 0)
                    _ = withPSC(level) { psc in
                        psc.insert(pasid: pasid, key: Self.pscKey(va, level: level),
                                   a: UInt64(next.rawValue) | UInt64(gen) << 32, b: perms)
                    }
                }
                table = next
                believedGeneration = nil  // a live entry vouches only for kind and level
                staleLevel = 0
                level -= 1
                continue
            }

            if user && !userOK || write && !writeOK {
                counters.faults += 1
                let reason: DMAFaultReason = user && !userOK ? .privilege : .write
                return .failure(DMAFault(reason: reason, level: level, address: va))
            }
            setAccessedDirty(slot, dirty: write, table: table, finding: &finding)
            let size = PageSize.forLevel(level)
            let phys = e.physicalAddress & ~(size.bytes - 1) | (va & (size.bytes - 1))
            if finding != nil {
                finding!.escalation = true
                finding!.escalationPhys = phys
            }
            if caching != .none {
                noteLines(pasid)
                let perms = (userOK ? PageTableEntry.user : 0) | (writeOK ? PageTableEntry.writable : 0)
                    | (write || e.raw & PageTableEntry.dirty != 0 ? PageTableEntry.dirty : 0)
                iotlb.insert(pasid: pasid, key: Self.iotlbKey(va, level: level), a: e.physicalAddress & ~(size.bytes - 1), b: perms)
            }
            return .success((phys, size))
        }
    }

    /// Sets A (and D) in an entry the walker used, when configured; a write
    /// into a frame the oracle flagged is the corruption half of the bug.
    private mutating func setAccessedDirty(_ slot: UnsafeMutablePointer<UInt64>, dirty: Bool, table: PFN,
                                           finding: inout WalkFinding?) {
        guard config.setsAccessedDirty else { return }
        let bits = PageTableEntry.accessed | (dirty ? PageTableEntry.dirty : 0)
        guard slot.pointee & bits != bits else { return }
        slot.pointee |= bits
        counters.accessedDirtyWrites += 1
        if finding != nil && !finding!.corruption {
            finding!.corruption = true
            finding!.corruptedFrame = table
        }
    }

    private mutating func iotlbLookup(pasid: UInt32, va: UInt64, write: Bool,
                                      user: Bool) -> Result<(phys: UInt64, size: PageSize), DMAFault>? {
        for level in 1...3 {
            guard let (base, perms) = iotlb.lookup(pasid: pasid, key: Self.iotlbKey(va, level: level)) else { continue }
            // A write to a line cached clean walks again to set D, as hardware does.
            if write && perms & PageTableEntry.dirty == 0 { return nil }
            if user && perms & PageTableEntry.user == 0 || write && perms & PageTableEntry.writable == 0 {
                return nil
            }
            let size = PageSize.forLevel(level)
            return .success((base | (va & (size.bytes - 1)), size))
        }
        return nil
    }
}
