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
    /// What the walker saw: kind, level and generation, read atomically.
    var foundKind: UInt8
    var foundLevel: UInt8
    var foundGeneration: UInt32
    /// The walk went on through the stale frame and produced a translation
    /// to a frame the stale contents chose.
    var escalation = false
    var escalationPhys: UInt64 = 0
    /// The walker wrote Accessed/Dirty bits into a frame it reached that way.
    var corruption = false
    var corruptedFrame: PFN = .none
}

/// Where a walk starts, decided under the IOMMU's lock.
struct WalkStart {
    var table: PFN
    var level: Int
    var believedGeneration: UInt32?
    var staleLevel: Int
    var userOK: Bool
    var writeOK: Bool
    /// The invalidation sequence when the walk left the lock.
    var seq: UInt64
    var epoch: Int
}

/// What a walk wants to put in the caches, applied under the lock only if
/// no invalidation came in between.
struct WalkFills {
    typealias Line = (key: UInt64, a: UInt64, b: UInt64)
    /// Paging-structure entries by the level of the entry: PDE, PDPTE, PML4E, PML5E.
    var pde: Line? = nil, pdpte: Line? = nil, pml4e: Line? = nil, pml5e: Line? = nil
    var iotlb: Line? = nil
    var accessedDirtyWrites = 0
    var faulted = false

    mutating func addPSC(level: Int, _ line: Line) {
        switch level {
        case 2: pde = line
        case 3: pdpte = line
        case 4: pml4e = line
        default: pml5e = line
        }
    }

    var isEmpty: Bool { pde == nil && pdpte == nil && pml4e == nil && pml5e == nil && iotlb == nil }
}

/// The hardware walker (docs/KERNEL-MODEL.md §3.1): it reads entries with
/// single atomic loads and takes no memory or page-table lock, so it can race
/// a CPU update exactly as a real walker does. It sets A/D bits with a
/// cmpxchg. At each table it checks the frame's identity seqcount-style:
/// generation, kind and level, the entry, the generation again; a frame that
/// is not the table the pointer believed in, or that was freed while the
/// entry was read, is the oracle's finding.
extension IOMMU {
    func walkMemory(_ start: WalkStart, pasid: UInt32, va: UInt64, access: DMAAccess, fills: inout WalkFills,
                    finding: inout WalkFinding?) -> Result<(phys: UInt64, size: PageSize), DMAFault> {
        let write = access.contains(.write), user = !access.contains(.privileged)
        var table = start.table
        var level = start.level
        var userOK = start.userOK, writeOK = start.writeOK
        var believedGeneration = start.believedGeneration
        var staleLevel = start.staleLevel
        let caching = config.caching

        while true {
            guard memory.contains(table) else {
                fills.faulted = true
                return .failure(DMAFault(reason: .badAddress, level: level, address: va))
            }
            let index = AddressLayout.index(va, level: level)
            // The seqcount read: generation, identity, entry, generation.
            let g1 = memory.generation(table)
            let kind = memory.kind(table), tableLevel = memory.level(table)
            let raw = memory.loadEntry(table, index)
            let g2 = memory.generation(table)
            if finding == nil,
               kind != FrameKind.kernelTable.rawValue && kind != FrameKind.userTable.rawValue
                || Int(tableLevel) != level || g1 != g2
                || (believedGeneration != nil && g1 != believedGeneration!) {
                finding = WalkFinding(staleLevel: staleLevel, frame: table, expectedLevel: level,
                                      expectedGeneration: believedGeneration, foundKind: kind,
                                      foundLevel: tableLevel, foundGeneration: g2)
            }
            let e = PageTableEntry(raw: raw)
            guard e.isPresent else {
                fills.faulted = true
                return .failure(DMAFault(reason: .notPresent, level: level, address: va))
            }
            userOK = userOK && raw & PageTableEntry.user != 0
            writeOK = writeOK && raw & PageTableEntry.writable != 0
            let isLeaf = level == 1 || (level <= 3 && e.isHugeLeaf)

            if !isLeaf {
                setAccessedDirty(table, index, raw, dirty: false, fills: &fills, finding: &finding)
                let next = e.pfn
                if caching == .full {
                    let gen = memory.contains(next) ? memory.generation(next) : 0
                    let perms = (userOK ? PageTableEntry.user : 0) | (writeOK ? PageTableEntry.writable : 0)
                    fills.addPSC(level: level, (IOMMUState.pscKey(va, level: level), UInt64(next.rawValue) | UInt64(gen) << 32, perms))
                }
                table = next
                believedGeneration = nil  // a live entry vouches only for kind and level
                staleLevel = 0
                level -= 1
                continue
            }

            if user && !userOK || write && !writeOK {
                fills.faulted = true
                let reason: DMAFaultReason = user && !userOK ? .privilege : .write
                return .failure(DMAFault(reason: reason, level: level, address: va))
            }
            setAccessedDirty(table, index, raw, dirty: write, fills: &fills, finding: &finding)
            let size = PageSize.forLevel(level)
            let phys = e.physicalAddress & ~(size.bytes - 1) | (va & (size.bytes - 1))
            if finding != nil {
                finding!.escalation = true
                finding!.escalationPhys = phys
            }
            if caching != .none {
                let perms = (userOK ? PageTableEntry.user : 0) | (writeOK ? PageTableEntry.writable : 0)
                    | (write || raw & PageTableEntry.dirty != 0 ? PageTableEntry.dirty : 0)
                fills.iotlb = (IOMMUState.iotlbKey(va, level: level), e.physicalAddress & ~(size.bytes - 1), perms)
            }
            return .success((phys, size))
        }
    }

    /// Sets A (and D) in an entry the walker used, when configured, with a
    /// cmpxchg against the value it read; a write into a frame the oracle
    /// flagged is the corruption half of the bug.
    private func setAccessedDirty(_ table: PFN, _ index: Int, _ raw: UInt64, dirty: Bool,
                                  fills: inout WalkFills, finding: inout WalkFinding?) {
        guard config.setsAccessedDirty else { return }
        let bits = PageTableEntry.accessed | (dirty ? PageTableEntry.dirty : 0)
        guard raw & bits != bits, memory.casEntry(table, index, old: raw, new: raw | bits) else { return }
        fills.accessedDirtyWrites += 1
        if finding != nil && !finding!.corruption {
            finding!.corruption = true
            finding!.corruptedFrame = table
        }
    }
}

extension IOMMUState {
    /// The IOTLB, then the deepest paging-structure cache hit, then the PASID
    /// entry's root: the walk's first step, under the lock. Returns the
    /// translation on an IOTLB hit, or where the walk in memory starts (and
    /// then the walk has entered the current epoch).
    mutating func beginTranslation(_ pe: PasidEntry, pasid: UInt32, va: UInt64, access: DMAAccess,
                                   rootLevel: Int) -> Result<(phys: UInt64, size: PageSize), WalkStartBox> {
        counters.walks += 1
        let write = access.contains(.write), user = !access.contains(.privileged)
        if config.caching != .none, let hit = iotlbLookup(pasid: pasid, va: va, write: write, user: user) {
            counters.iotlbHits += 1
            return .success(hit)
        }
        var start = WalkStart(table: pe.root, level: 0, believedGeneration: pe.rootGeneration, staleLevel: 0,
                              userOK: true, writeOK: true, seq: invalidationSeq, epoch: epoch)
        if config.caching == .full {
            for l in 2...rootLevel {
                guard let (a, b) = withPSC(l, { $0.lookup(pasid: pasid, key: Self.pscKey(va, level: l)) }) else { continue }
                counters.countPSCHit(level: l)
                start.table = PFN(UInt32(truncatingIfNeeded: a))
                start.believedGeneration = UInt32(truncatingIfNeeded: a >> 32)
                start.level = l - 1
                start.staleLevel = l
                start.userOK = b & PageTableEntry.user != 0
                start.writeOK = b & PageTableEntry.writable != 0
                break
            }
        }
        if start.level == 0 {
            counters.fullWalks += 1
            start.level = rootLevel
        }
        if epoch == 0 { inflight.0 += 1 } else { inflight.1 += 1 }
        return .failure(WalkStartBox(start))
    }

    /// The walk's last step, under the lock: fill the caches unless an
    /// invalidation came in while it read memory, count, leave the epoch.
    mutating func endTranslation(_ start: WalkStart, pasid: UInt32, fills: WalkFills) {
        if fills.faulted { counters.faults += 1 }
        counters.accessedDirtyWrites += fills.accessedDirtyWrites
        if start.seq == invalidationSeq && !fills.isEmpty {
            noteLines(pasid)
            if let l = fills.pde { pde.insert(pasid: pasid, key: l.key, a: l.a, b: l.b) }
            if let l = fills.pdpte { pdpte.insert(pasid: pasid, key: l.key, a: l.a, b: l.b) }
            if let l = fills.pml4e { pml4e.insert(pasid: pasid, key: l.key, a: l.a, b: l.b) }
            if let l = fills.pml5e { pml5e.insert(pasid: pasid, key: l.key, a: l.a, b: l.b) }
            if let l = fills.iotlb { iotlb.insert(pasid: pasid, key: l.key, a: l.a, b: l.b) }
        }
        if start.epoch == 0 { inflight.0 -= 1 } else { inflight.1 -= 1 }
    }

    private mutating func iotlbLookup(pasid: UInt32, va: UInt64, write: Bool,
                                      user: Bool) -> (phys: UInt64, size: PageSize)? {
        for level in 1...3 {
            guard let (base, perms) = iotlb.lookup(pasid: pasid, key: Self.iotlbKey(va, level: level)) else { continue }
            // A write to a line cached clean walks again to set D, as hardware does.
            if write && perms & PageTableEntry.dirty == 0 { return nil }
            if user && perms & PageTableEntry.user == 0 || write && perms & PageTableEntry.writable == 0 {
                return nil
            }
            let size = PageSize.forLevel(level)
            return (base | (va & (size.bytes - 1)), size)
        }
        return nil
    }
}

/// A WalkStart as an Error, so `beginTranslation` can return either.
struct WalkStartBox: Error {
    let start: WalkStart
    init(_ s: WalkStart) { start = s }
}
