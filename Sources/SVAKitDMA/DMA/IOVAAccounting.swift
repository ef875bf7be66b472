// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The IOVA allocator's counters, summed over CPUs and size classes.
package struct IOVACounters: Equatable, Sendable {
    /// Ranges the tree handed out (alloc, and allocFast's misses).
    package var allocations = 0
    /// Tree allocations that found nothing.
    package var failures = 0
    /// Ranges returned to the tree (free, flushes, reclaim).
    package var frees = 0
    /// Frees of a pfn in no allocated range.
    package var strayFrees = 0
    /// allocFast calls of a cached size class served by the rcache...
    package var rcacheHits = 0
    /// ...and not.
    package var rcacheMisses = 0
    /// Full magazines pushed to a depot, and taken back by a CPU.
    package var depotPushes = 0
    package var depotPops = 0
    /// Magazines the delayed reclaim returned to the tree.
    package var depotReclaims = 0
    /// Full magazines in the depots now.
    package var depotMagazines = 0
    /// allocFast calls that flushed every cache and retried.
    package var rcacheFlushes = 0
    /// Magazines allocated (2 per CPU and size class at init, then one per
    /// depot push that found no spare) and freed.
    package var magazineAllocations = 0
    package var magazineFrees = 0
}

/// Where a cached pfn sits.
package enum IOVACacheSlot: Hashable, Sendable {
    case loaded(cpu: Int)
    case prev(cpu: Int)
    case depot
}

/// One cached IOVA: the start of an allocated range that the rcache holds.
package struct IOVACachedPfn: Hashable, Sendable {
    package var pfn: UInt64
    package var sizeClass: Int
    package var slot: IOVACacheSlot
}

/// Every IOVA of a domain, for the engine's conservation check: each page
/// is in exactly one free, allocated or reserved range of the tree, and an
/// allocated range is either cached (its start is in `cached`) or held by a
/// caller (`inUse`). Exact when no allocation or free runs concurrently.
package struct IOVAAccounting: Sendable {
    package var free: [IOVARange] = []
    /// Every allocated range of the tree, cached or not, in address order.
    package var allocated: [IOVARange] = []
    package var reserved: [IOVARange] = []
    package var cached: [IOVACachedPfn] = []
    /// What breaks the invariants; empty when the books balance.
    package var problems: [String] = []

    /// The allocated ranges no cache holds: what callers own.
    package var inUse: [IOVARange] {
        let c = cached.map(\.pfn).sorted()
        return allocated.filter { r in
            // The first cached pfn at or above r.lo.
            var lo = 0, hi = c.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if c[mid] < r.lo { lo = mid + 1 } else { hi = mid }
            }
            return !(lo < c.count && c[lo] <= r.hi)
        }
    }

    /// The allocated range containing `pfn`, if any.
    package func allocatedRange(containing pfn: UInt64) -> IOVARange? {
        var lo = 0, hi = allocated.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if allocated[mid].hi < pfn { lo = mid + 1 } else { hi = mid }
        }
        return lo < allocated.count && allocated[lo].lo <= pfn ? allocated[lo] : nil
    }
}

extension IOVADomain {
    /// The counters, summed (each lock taken on its own).
    package var counters: IOVACounters {
        var out = IOVACounters()
        let t = tree.locked { $0.counters }
        out.allocations = t.allocations
        out.failures = t.failures
        out.frees = t.frees
        out.strayFrees = t.strayFrees
        for i in 0..<(rcache.cpuCount * IOVARcache.sizeClasses) {
            let (h, m) = rcache.cpus[i].locked { c in (c.hits, c.misses) }
            out.rcacheHits += h
            out.rcacheMisses += m
        }
        for k in 0..<IOVARcache.sizeClasses {
            let d = rcache.depots[k].locked { d in
                (d.pushes, d.pops, d.reclaims, d.size, d.magazineAllocations, d.magazineFrees)
            }
            out.depotPushes += d.0
            out.depotPops += d.1
            out.depotReclaims += d.2
            out.depotMagazines += d.3
            out.magazineAllocations += d.4
            out.magazineFrees += d.5
        }
        out.rcacheFlushes = rcache.flushes.load(ordering: .relaxed)
        return out
    }

    /// Full magazines in size class `k`'s depot.
    package func depotSize(sizeClass k: Int) -> Int {
        rcache.depots[k].locked { $0.size }
    }

    /// Every range and every cached pfn, with what breaks the invariants:
    /// the tree's structure and partition of [startPfn, endPfn]; every
    /// cached pfn the start of an allocated range of exactly its size
    /// class's size; no pfn cached twice.
    package func accounting() -> IOVAAccounting {
        var a = IOVAAccounting()
        let (ranges, structural) = tree.locked { t in (t.ranges(), t.structuralProblems()) }
        a.problems = structural
        for (r, kind) in ranges {
            switch kind {
            case .free: a.free.append(r)
            case .allocated: a.allocated.append(r)
            case .reserved: a.reserved.append(r)
            }
        }
        for cpu in 0..<rcache.cpuCount {
            for k in 0..<IOVARcache.sizeClasses {
                let (loaded, prev) = rcache.cpus[cpu * IOVARcache.sizeClasses + k].locked { c in
                    ((0..<c.loaded.count).map { c.loaded[$0] }, (0..<c.prev.count).map { c.prev[$0] })
                }
                a.cached += loaded.map { IOVACachedPfn(pfn: $0, sizeClass: k, slot: .loaded(cpu: cpu)) }
                a.cached += prev.map { IOVACachedPfn(pfn: $0, sizeClass: k, slot: .prev(cpu: cpu)) }
            }
        }
        for k in 0..<IOVARcache.sizeClasses {
            let pfns = rcache.depots[k].locked { $0.cachedPfns() }
            a.cached += pfns.map { IOVACachedPfn(pfn: $0, sizeClass: k, slot: .depot) }
        }
        var seen = Set<UInt64>()
        for c in a.cached {
            if !seen.insert(c.pfn).inserted { a.problems.append("pfn \(c.pfn) is cached twice") }
            guard let r = a.allocatedRange(containing: c.pfn) else {
                a.problems.append("cached pfn \(c.pfn) (\(c.slot)) is in no allocated range")
                continue
            }
            // A cached pfn starts a range of exactly 1 << class pages
            // (iovaAllocationPages), or the next allocFast of that class would
            // get a short range; a reserve_iova over it may since have moved
            // the range's start down (__adjust_overlap_range), never its end.
            if r.hi - c.pfn + 1 != 1 << UInt64(c.sizeClass) {
                a.problems.append("cached pfn \(c.pfn) ends \(r.hi - c.pfn + 1) pages on, not size class \(c.sizeClass)'s")
            }
        }
        return a
    }
}
