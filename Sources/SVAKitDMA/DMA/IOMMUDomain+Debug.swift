// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// IOMMU_DEBUG_PAGEALLOC's hooks on iommu_map and iommu_unmap
/// (iommu-priv.h's wrappers and iommu-debug-pagealloc.c;
/// docs/KERNEL-MODEL.md §5). The callers test the static key first; these
/// are the slow paths.
extension IOMMUDomain {
    /// iommu_debug_map: raises the count of every frame of [phys, phys +
    /// size) after a successful map; a frame that was unmapped takes the
    /// step clock as its "mapped since" (no event, no lock: a map is a hot
    /// path).
    package func debugMap(iova: UInt64, phys: UInt64, size: UInt64) {
        let stamp = frames.events.approximateStep
        if frames.debug.raise(first: Int(phys >> 12), frames: Int(size >> 12), stamp: stamp) > 0 {
            warn(.overflow, at: phys)
        }
    }

    /// `unmap` with the sanitizer on: iommu_debug_unmap_begin (linux mode),
    /// the walk (lowering or gathering what it removes in fast and
    /// window-aware modes), iommu_debug_unmap_end.
    package func debugUnmap(iova: UInt64, size: UInt64, _ mode: IOMMUDebugMode) -> Unmapped {
        if mode == .linux { debugUnmapBegin(iova: iova, size: size) }
        var u: Unmapped
        if mode == .linux {
            var none = IgnoreLeaves()
            u = unmapWalk(iova: iova, size: size, &none)
        } else {
            var sink = DebugLeaves()
            u = unmapWalk(iova: iova, size: size, &sink)
            // fast: lowered now, as Linux lowers (before the invalidation);
            // window-aware: by whoever finishes the covering invalidation.
            if mode == .fast { debugFlushed(sink.removed) } else { u.frames = sink.removed }
        }
        debugUnmapEnd(iova: iova, size: size, unmapped: u.bytes, mode)
        return u
    }

    /// iommu_debug_unmap_begin (linux mode): before the entries go, lowers
    /// each granule's frames through one iova_to_phys walk per granule, as
    /// Linux does (the cost the seed measured).
    package func debugUnmapBegin(iova: UInt64, size: UInt64) {
        forEachGranule(iova, size) { phys in
            if frames.debug.lower(first: Int(phys >> 12), frames: Int(granule >> 12)) > 0 { warn(.underflow, at: phys) }
        }
        if let hook = frames.debug.takeAfterUnmapBegin() { hook() }
    }

    /// iommu_debug_unmap_end: an unmap that removed less than asked left the
    /// tail mapped, so the tail's counts go back up (linux mode); one that
    /// removed more is warned about once per machine (every mode).
    package func debugUnmapEnd(iova: UInt64, size: UInt64, unmapped: UInt64, _ mode: IOMMUDebugMode) {
        if unmapped > size {
            if frames.debug.firstUnmappedMore() { warn(.unmappedMore, at: iova) }
            return
        }
        guard mode == .linux, unmapped < size else { return }
        let stamp = frames.events.approximateStep
        forEachGranule(iova + unmapped, size - unmapped) { phys in
            _ = frames.debug.raise(first: Int(phys >> 12), frames: Int(granule >> 12), stamp: stamp, again: true)
        }
    }

    /// Calls `body` with the physical address of each mapped granule of
    /// [iova, iova + size), each found by its own iova_to_phys walk.
    private func forEachGranule(_ iova: UInt64, _ size: UInt64, _ body: (UInt64) -> Void) {
        var off: UInt64 = 0
        while off < size {
            if let p = iovaToPhys(iova + off) { body(p & ~(granule - 1)) }
            off += granule
        }
    }

    /// Lowers what an unmap's walk removed: at once in fast mode; in
    /// window-aware mode once the invalidation covering it has finished (a
    /// strict unmap's sync, or the flush that released a lazy unmap's
    /// entry), when no device can reach those frames. One pass per run of
    /// frames, so the counters are touched once per run, not per leaf.
    package func debugFlushed(_ removed: FrameRuns) {
        removed.forEach { pfn, n in
            if frames.debug.lower(first: pfn, frames: n) > 0 { warn(.underflow, at: UInt64(pfn) << 12) }
        }
    }

    private func warn(_ what: IOMMUDebugWarning, at address: UInt64) {
        frames.events.record(.iommuDebugWarn, site: .none, va: address, aux: UInt64(what.rawValue), tag: id)
    }
}

/// What the sanitizer warns about (`aux` of an `iommuDebugWarn` event).
package enum IOMMUDebugWarning: UInt8 {
    /// A count at its maximum was not raised (Linux: WARN_ON(ref <= 0)).
    case overflow = 1
    /// A count at zero was not lowered: a double unmap (WARN_ON(ref < 0)).
    case underflow = 2
    /// An unmap removed more than asked (WARN_ON_ONCE(unmapped > size)).
    case unmappedMore = 3
}

/// What `IOMMUDomain.unmapWalk` tells of each leaf it removes.
package protocol UnmapLeafSink {
    /// Whether it wants the leaves at all (a constant per type, so the walk
    /// specialised for a sink that does not has no leaf visits).
    static var wantsLeaves: Bool { get }
    /// A leaf of `bytes` mapping `phys` was removed.
    mutating func leaf(_ phys: UInt64, _ bytes: UInt64)
}

/// The unmap of a machine without the sanitizer (or in linux mode, which
/// lowered before the walk).
package struct IgnoreLeaves: UnmapLeafSink {
    package static var wantsLeaves: Bool { false }
    @inline(__always) package mutating func leaf(_ phys: UInt64, _ bytes: UInt64) {}
}

/// The fast and window-aware sanitizer's view of the walk: the frames it
/// removed, in runs (a contiguous mapping is one run however many leaves).
package struct DebugLeaves: UnmapLeafSink {
    package var removed = FrameRuns()
    package static var wantsLeaves: Bool { true }
    @inline(__always) package mutating func leaf(_ phys: UInt64, _ bytes: UInt64) {
        removed.append(pfn: Int(phys >> 12), frames: Int(bytes >> 12))
    }
}

extension IOMMUDomain {
    /// An IOVA this domain maps `pfn` at, found by scanning its tables (a
    /// report's history only: the cost is the tables' size).
    package func iova(of pfn: PFN) -> UInt64? {
        guard let root else { return nil }
        let v = PTView(memory: frames.memory, frames: frames, events: frames.events, layout: AddressLayout(levels: 4),
                       root: root, tableKind: .iommuTable)
        let target = pfn.physicalAddress
        return tablesLock.locked { dead in dead ? nil : find(v, root, base: 0, target) }
    }

    private func find(_ v: PTView, _ t: TableFrame, base: UInt64, _ target: UInt64) -> UInt64? {
        let span = AddressLayout.span(level: t.level)
        for i in 0..<512 {
            let s = EntrySlot(holder: t, index: i)
            let va = base + UInt64(i) * span
            if let c = v.child(of: s) {
                if let hit = find(v, c, base: va, target) { return hit }
            } else if v.entry(s).isPresent {
                let p = v.entry(s).physicalAddress
                if target >= p && target - p < span { return va + (target - p) }
            }
        }
        return nil
    }
}

extension DMADomains {
    /// A domain that maps `pfn` now, and where.
    package func mapping(of pfn: PFN) -> (UInt32, UInt64)? {
        for d in all { if let iova = d.iova(of: pfn) { return (d.id, iova) } }
        return nil
    }

    /// A lazy unmap whose flush has not finished and whose frames (as the
    /// window-aware sanitizer keeps them) hold `pfn`: its domain, IOVA and
    /// the step when it was queued.
    package func pendingUnmap(of pfn: PFN) -> (domain: UInt32, iova: UInt64, step: UInt64)? {
        for c in cookies {
            if let e = c.fq.waitingEntry(holding: pfn.index) {
                return (c.domain.id, e.iovaPfn * c.domain.granule, e.debugStamp)
            }
        }
        return nil
    }
}
