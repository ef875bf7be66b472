// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// What the walk oracle found wrong with one walk: a frame the walk read or
/// wrote was not what the pointer that led there believed it was.
package struct WalkFinding {
    /// The cache level whose entry led to the frame (2 = PDE cache, ...), or
    /// 0 when a live entry or the PASID entry did.
    package var staleLevel: Int
    package var frame: PFN
    package var expectedLevel: Int
    package var expectedGeneration: UInt32?
    /// What the walker saw: kind, level and generation, read atomically.
    package var foundKind: UInt8
    package var foundLevel: UInt8
    package var foundGeneration: UInt32
    /// The walk went on through the stale frame and produced a translation
    /// to a frame the stale contents chose.
    package var escalation = false
    package var escalationPhys: UInt64 = 0
    /// The walker wrote Accessed/Dirty bits into a frame it reached that way.
    package var corruption = false
    package var corruptedFrame: PFN = .none
}

/// Where a walk starts, decided under the IOMMU's lock.
package struct WalkStart {
    package var table: PFN
    package var level: Int
    package var believedGeneration: UInt32?
    package var staleLevel: Int
    package var userOK: Bool
    package var writeOK: Bool
    /// The walk reads a DMA domain's IOMMU tables, not an mm's CPU tables.
    package var iommuTables = false
    /// The tag its cache fills carry (PasidEntry.tag).
    package var tag: UInt32 = 0
    /// The invalidation sequence when the walk left the lock.
    package var seq: UInt64
    package var epoch: Int
}

/// What a walk wants to put in the caches, applied under the lock only if
/// no invalidation came in between.
///
/// Compact (64 bytes), because a burst carries one from a walk to the next
/// lookup: the tags are derived from the address and the level, so only the
/// payloads are kept.
package struct WalkFills {
    package var va: UInt64 = 0
    /// Next-table payload (pfn | generation << 32) per entry level 2...5.
    package var psc: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Leaf base address for the IOTLB.
    package var leafBase: UInt64 = 0
    /// Bit l - 2 set: a paging-structure entry of level l to fill.
    package var pscMask: UInt8 = 0
    /// Permissions (the U/S, R/W and D bits, packed) per level 2...5.
    package var pscPerms: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
    /// The leaf's level (0: no IOTLB fill) and permissions.
    package var leafLevel: UInt8 = 0
    package var leafPerms: UInt8 = 0
    /// The generation of the frame the leaf maps (its first frame), kept in
    /// the IOTLB line so a hit after that frame was freed is caught.
    package var leafGeneration: UInt32 = 0
    package var faulted = false
    package var accessedDirtyWrites: Int32 = 0

    /// Packs U/S (bit 2), R/W (bit 1) and D (bit 6) of an entry into a byte.
    @inline(__always) package static func pack(_ perms: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: perms & 0x46) }

    package mutating func addPSC(level: Int, next: UInt64, perms: UInt64) {
        switch level {
        case 2: psc.0 = next; pscPerms.0 = Self.pack(perms)
        case 3: psc.1 = next; pscPerms.1 = Self.pack(perms)
        case 4: psc.2 = next; pscPerms.2 = Self.pack(perms)
        default: psc.3 = next; pscPerms.3 = Self.pack(perms)
        }
        pscMask |= 1 << UInt8(level - 2)
    }

    package var isEmpty: Bool { pscMask == 0 && leafLevel == 0 }
}

/// The hardware walker (docs/KERNEL-MODEL.md §3.1): it reads entries with
/// single atomic loads and takes no memory or page-table lock, so it can race
/// a CPU update exactly as a real walker does. It sets A/D bits with a
/// cmpxchg. At each table it checks the frame's identity seqcount-style:
/// generation, kind and level, the entry, the generation again; a frame that
/// is not the table the pointer believed in, or that was freed while the
/// entry was read, is the oracle's finding.
extension IOMMU {
    package func walkMemory(_ start: WalkStart, va: UInt64, access: DMAAccess, fills: inout WalkFills,
                    finding: inout WalkFinding?) -> Result<(phys: UInt64, size: PageSize), DMAFault> {
        let write = access.contains(.write), user = !access.contains(.privileged)
        var table = start.table
        var level = start.level
        var userOK = start.userOK, writeOK = start.writeOK
        var believedGeneration = start.believedGeneration
        var staleLevel = start.staleLevel
        let caching = config.caching
        fills.va = va
        if upperHalfDisabled && !start.iommuTables && va >> 63 != 0 {
            // EPD1: a TTB1 address misses without a walk (nothing of the
            // upper half is ever cached, so every such request comes here).
            fills.faulted = true
            return .failure(DMAFault(reason: .tableDisabled, level: 0, address: va))
        }

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
            let expectedKind = start.iommuTables
                ? kind == FrameKind.iommuTable.rawValue
                : kind == FrameKind.kernelTable.rawValue || kind == FrameKind.userTable.rawValue
            if finding == nil, !expectedKind
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
                    fills.addPSC(level: level, next: UInt64(next.rawValue) | UInt64(gen) << 32, perms: perms)
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
                fills.leafBase = e.physicalAddress & ~(size.bytes - 1)
                fills.leafLevel = UInt8(level)
                fills.leafPerms = WalkFills.pack(perms)
                let target = PFN(Int(fills.leafBase >> 12))
                fills.leafGeneration = memory.contains(target) ? memory.generation(target) : 0
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
    package mutating func beginTranslation(_ pe: PasidEntry, va: UInt64, access: DMAAccess,
                                   rootLevel: Int) -> CacheLookup {
        let step = lookup(pe, va: va, access: access, rootLevel: rootLevel)
        if case .walk = step { enterEpoch() }
        return step
    }

    /// The caches' part of a translation, lock held: an IOTLB hit, or where
    /// the walk in memory starts (the deepest paging-structure cache hit, or
    /// the PASID entry's root). Counts the request.
    package mutating func lookup(_ pe: PasidEntry, va: UInt64, access: DMAAccess,
                         rootLevel: Int) -> CacheLookup {
        counters.walks += 1
        let pasid = pe.tag
        // A DMA domain's tables have 4 levels whatever the CPU's paging.
        let rootLevel = pe.iommuTables ? 4 : rootLevel
        let write = access.contains(.write), user = !access.contains(.privileged)
        if config.caching != .none, let hit = iotlbLookup(pasid: pasid, va: va, write: write, user: user) {
            counters.iotlbHits += 1
            return .hit(hit)
        }
        var start = WalkStart(table: pe.root, level: 0, believedGeneration: pe.rootGeneration, staleLevel: 0,
                              userOK: true, writeOK: true, iommuTables: pe.iommuTables, tag: pasid,
                              seq: invalidationSeq, epoch: epoch)
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
        return .walk(start)
    }

    /// Enters the current walk epoch (lock held); a fence that closes it
    /// waits for the matching `leaveEpoch`.
    @discardableResult
    package mutating func enterEpoch() -> Int {
        if epoch == 0 { inflight.0 += 1 } else { inflight.1 += 1 }
        return epoch
    }

    package mutating func leaveEpoch(_ e: Int) {
        if e == 0 { inflight.0 -= 1 } else { inflight.1 -= 1 }
    }

    /// The walk's last step, under the lock: fill the caches unless an
    /// invalidation came in while it read memory, count, leave the epoch.
    package mutating func endTranslation(_ start: WalkStart, fills: WalkFills) {
        applyFills(start, fills: fills)
        leaveEpoch(start.epoch)
    }

    /// Installs what a walk read, unless an invalidation came in since it
    /// looked up; counts its fault and A/D writes.
    package mutating func applyFills(_ start: WalkStart, fills: WalkFills) {
        let pasid = start.tag
        if fills.faulted { counters.faults += 1 }
        counters.accessedDirtyWrites += Int(fills.accessedDirtyWrites)
        guard start.seq == invalidationSeq && !fills.isEmpty else { return }
        noteLines(pasid)
        let va = fills.va, m = fills.pscMask
        if m & 1 != 0 { pde.insert(pasid: pasid, key: Self.pscKey(va, level: 2), a: fills.psc.0, b: UInt64(fills.pscPerms.0)) }
        if m & 2 != 0 { pdpte.insert(pasid: pasid, key: Self.pscKey(va, level: 3), a: fills.psc.1, b: UInt64(fills.pscPerms.1)) }
        if m & 4 != 0 { pml4e.insert(pasid: pasid, key: Self.pscKey(va, level: 4), a: fills.psc.2, b: UInt64(fills.pscPerms.2)) }
        if m & 8 != 0 { pml5e.insert(pasid: pasid, key: Self.pscKey(va, level: 5), a: fills.psc.3, b: UInt64(fills.pscPerms.3)) }
        if fills.leafLevel != 0 {
            iotlb.insert(pasid: pasid, key: Self.iotlbKey(va, level: Int(fills.leafLevel)), a: fills.leafBase,
                         b: UInt64(fills.leafPerms) | UInt64(fills.leafGeneration) << 32)
        }
    }

    private mutating func iotlbLookup(pasid: UInt32, va: UInt64, write: Bool, user: Bool) -> IOTLBHit? {
        for level in 1...3 {
            guard let (base, line) = iotlb.lookup(pasid: pasid, key: Self.iotlbKey(va, level: level)) else { continue }
            let perms = line & 0xff
            // A write to a line cached clean walks again to set D, as hardware does.
            if write && perms & PageTableEntry.dirty == 0 { return nil }
            if user && perms & PageTableEntry.user == 0 || write && perms & PageTableEntry.writable == 0 {
                return nil
            }
            let size = PageSize.forLevel(level)
            return IOTLBHit(phys: base | (va & (size.bytes - 1)), size: size, base: base,
                            generation: UInt32(truncatingIfNeeded: line >> 32))
        }
        return nil
    }
}

/// An IOTLB hit: the translation, and what the line believed of the frame.
package struct IOTLBHit {
    package var phys: UInt64
    package var size: PageSize
    /// The leaf's base address and its first frame's generation at fill time.
    package var base: UInt64
    package var generation: UInt32

    package var translation: (phys: UInt64, size: PageSize) { (phys, size) }
}

/// What the caches answered: a translation, or where the walk in memory starts.
package enum CacheLookup {
    case hit(IOTLBHit)
    case walk(WalkStart)
}

extension IOMMU {
    /// The data-page half of the oracle, run on an IOTLB hit: the line's
    /// frame was freed since the line was filled (its generation moved) and
    /// the live tables no longer map `va` there. Then the device reached,
    /// through a stale IOTLB entry, memory that is no longer its buffer: the
    /// window lazy invalidation opens (docs/KERNEL-MODEL.md §4.4). A frame
    /// freed while still mapped is a different bug (IOMMU_DEBUG_PAGEALLOC's)
    /// and is not reported here.
    ///
    /// The line keeps the generation of its leaf's first frame only, so a
    /// hit is judged when it reaches that frame: a hit elsewhere in a 2 MiB
    /// or 1 GiB line is not checked (a false negative, never a report about
    /// a frame the access did not touch).
    package func checkHit(_ h: IOTLBHit, _ pe: PasidEntry, va: UInt64, write: Bool) -> WalkFinding? {
        let frame = PFN(Int(h.base >> 12))
        guard h.phys >> 12 == h.base >> 12, memory.contains(frame) else { return nil }
        let g = memory.generation(frame)
        guard g != h.generation, liveLeafBase(pe, va: va) != h.base else { return nil }
        var f = WalkFinding(staleLevel: 1, frame: frame, expectedLevel: 0, expectedGeneration: h.generation,
                            foundKind: memory.kind(frame), foundLevel: memory.level(frame), foundGeneration: g)
        f.escalation = true
        f.escalationPhys = h.phys
        if write {
            f.corruption = true
            f.corruptedFrame = PFN(Int(h.phys >> 12))
        }
        return f
    }

    /// The base of the leaf the live tables map `va` to, read without side
    /// effects (no A/D writes, no fills); nil when nothing maps it.
    package func liveLeafBase(_ pe: PasidEntry, va: UInt64) -> UInt64? {
        guard !pe.passthrough else { return va & ~0xfff }
        var table = pe.root
        var level = pe.iommuTables ? 4 : rootLevel
        while memory.contains(table) {
            let e = PageTableEntry(raw: memory.loadEntry(table, AddressLayout.index(va, level: level)))
            guard e.isPresent else { return nil }
            if level == 1 || (level <= 3 && e.isHugeLeaf) {
                return e.physicalAddress & ~(PageSize.forLevel(level).bytes - 1)
            }
            table = e.pfn
            level -= 1
        }
        return nil
    }
}
