// SPDX-License-Identifier: Apache-2.0

/// The IOVA allocator's counters, summed over CPUs and size classes.
struct IOVACounters: Equatable, Sendable {
    /// Ranges the tree handed out (alloc, and allocFast's misses).
    var allocations = 0
    /// Tree allocations that found nothing.
    var failures = 0
    /// Ranges returned to the tree (free, flushes, reclaim).
    var frees = 0
    /// Frees of a pfn in no allocated range.
    var strayFrees = 0
    /// allocFast calls of a cached size class served by the rcache...
    var rcacheHits = 0
    /// ...and not.
    var rcacheMisses = 0
    /// Full magazines pushed to a depot, and taken back by a CPU.
    var depotPushes = 0
    var depotPops = 0
    /// Magazines the delayed reclaim returned to the tree.
    var depotReclaims = 0
    /// Full magazines in the depots now.
    var depotMagazines = 0
    /// allocFast calls that flushed every cache and retried.
    var rcacheFlushes = 0
    /// Magazines allocated (2 per CPU and size class at init, then one per
    /// depot push that found no spare) and freed.
    var magazineAllocations = 0
    var magazineFrees = 0
}

/// Where a cached pfn sits.
enum IOVACacheSlot: Hashable, Sendable {
    case loaded(cpu: Int)
    case prev(cpu: Int)
    case depot
}

/// One cached IOVA: the start of an allocated range that the rcache holds.
struct IOVACachedPfn: Hashable, Sendable {
    var pfn: UInt64
    var sizeClass: Int
    var slot: IOVACacheSlot
}

/// Every IOVA of a domain, for the engine's conservation check: each page
/// is in exactly one free, allocated or reserved range of the tree, and an
/// allocated range is either cached (its start is in `cached`) or held by a
/// caller (`inUse`). Exact when no allocation or free runs concurrently.
struct IOVAAccounting: Sendable {
    var free: [IOVARange] = []
    /// Every allocated range of the tree, cached or not, in address order.
    var allocated: [IOVARange] = []
    var reserved: [IOVARange] = []
    var cached: [IOVACachedPfn] = []
    /// What breaks the invariants; empty when the books balance.
    var problems: [String] = []

    /// The allocated ranges no cache holds: what callers own.
    var inUse: [IOVARange] {
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
    func allocatedRange(containing pfn: UInt64) -> IOVARange? {
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
    var counters: IOVACounters {
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
    func depotSize(sizeClass k: Int) -> Int {
        rcache.depots[k].locked { $0.size }
    }

    /// Every range and every cached pfn, with what breaks the invariants:
    /// the tree's structure and partition of [startPfn, endPfn]; every
    /// cached pfn the start of an allocated range of exactly its size
    /// class's size; no pfn cached twice.
    func accounting() -> IOVAAccounting {
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
