// SPDX-License-Identifier: Apache-2.0

/// An inclusive range of IOVA page frame numbers, in units of the domain's
/// granule.
struct IOVARange: Hashable, Sendable, CustomStringConvertible {
    var lo: UInt64
    var hi: UInt64
    var pages: UInt64 { hi - lo + 1 }
    var description: String { "[\(lo)...\(hi)]" }
}

/// What a range of the tree is.
enum IOVARangeKind: UInt8, Sendable {
    /// Nobody holds it: `alloc` may hand it out.
    case free
    /// Handed out by `alloc` (or cached by the rcache, which owns it then).
    case allocated
    /// Taken by `reserve` (MSI windows, reserved regions): never handed out.
    case reserved
}

/// The IOVA allocator of one DMA domain (drivers/iommu/iova.c's
/// `iova_domain`, docs/KERNEL-MODEL.md §4.5): the space [startPfn, endPfn]
/// in units of `granule`, a tree of its ranges under one lock, and the
/// per-CPU range cache in front of it (`IOVARcache.swift`).
///
/// Allocation is top-down: the highest fitting range at or below the
/// caller's limit, size-aligned on request. Every call takes only IOVA
/// locks and calls nothing outside the allocator (docs/ARCHITECTURE.md,
/// "Locks").
final class IOVADomain: Sendable {
    /// Bytes per IOVA page (power of two; 4 KiB unless the DMA layer says).
    let granule: UInt64
    /// log2(granule): an IOVA is `pfn << shift`.
    let shift: Int
    let startPfn: UInt64
    let endPfn: UInt64

    /// The tree lock (iova_rbtree_lock): every range of [startPfn, endPfn]
    /// and the tree's counters.
    let tree: RankedMutex<IOVATree>

    /// The per-CPU caches and depots, one of each per size class.
    let rcache: IOVARcache

    /// A domain over [startPfn, endPfn] (inclusive, in granules) with
    /// `cpuCount` simulated CPUs. `clock` gives monotonic nanoseconds for
    /// depot reclaim; it is called with no lock held.
    init(granule: UInt64 = 4096, startPfn: UInt64, endPfn: UInt64, cpuCount: Int,
         clock: @escaping @Sendable () -> UInt64 = monotonicNanoseconds) {
        precondition(granule >= 512 && granule & (granule - 1) == 0, "the IOVA granule is a power of two")
        precondition(startPfn <= endPfn && endPfn < UInt64.max, "an IOVA domain is a non-empty range below 2^64-1")
        precondition(cpuCount > 0)
        self.granule = granule
        shift = granule.trailingZeroBitCount
        self.startPfn = startPfn
        self.endPfn = endPfn
        tree = RankedMutex(.iovaTree, IOVATree(start: startPfn, end: endPfn))
        rcache = IOVARcache(cpuCount: cpuCount, clock: clock)
    }

    // MARK: - The tree API (alloc_iova, free_iova, find_iova, reserve_iova)

    /// alloc_iova(): `pages` pages, ending at or below `limitPfn`
    /// (inclusive), at the highest address that fits; with `sizeAligned`
    /// the start is a multiple of `pages` rounded up to a power of two.
    /// Nil when nothing fits. Bypasses the rcache.
    func alloc(pages: UInt64, limitPfn: UInt64, sizeAligned: Bool) -> UInt64? {
        tree.locked { $0.alloc(pages: pages, limitPfn: limitPfn, sizeAligned: sizeAligned) }
    }

    /// free_iova(): frees the allocated range containing `pfn`; returns it,
    /// or nil when no allocated range contains `pfn`.
    @discardableResult
    func free(pfn: UInt64) -> IOVARange? {
        tree.locked { $0.free(pfn: pfn) }
    }

    /// find_iova(): the allocated or reserved range containing `pfn`.
    func find(pfn: UInt64) -> (range: IOVARange, kind: IOVARangeKind)? {
        tree.locked { t in
            guard let r = t.range(containing: pfn), r.kind != .free else { return nil }
            return r
        }
    }

    /// reserve_iova(): makes every free page of [lo, hi] reserved, so no
    /// allocation will return it; pages already allocated or reserved stay
    /// as they are. False when [lo, hi] lies outside the domain.
    @discardableResult
    func reserve(lo: UInt64, hi: UInt64) -> Bool {
        tree.locked { $0.reserve(lo: lo, hi: hi) }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the default clock of depot reclaim.
@Sendable
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// The tree's counters.
struct IOVATreeCounters: Equatable, Sendable {
    /// Ranges handed out by `alloc`.
    var allocations = 0
    /// `alloc` calls that found nothing.
    var failures = 0
    /// Ranges returned by `free`.
    var frees = 0
    /// `free` calls for a pfn in no allocated range (Linux ignores them).
    var strayFrees = 0
}

/// The ranges of an IOVA domain: a partition of [start, end] into free,
/// allocated and reserved ranges, no two free ranges adjacent. Linux keeps
/// the allocated ranges in an rbtree and searches down from a cached node;
/// this is a treap of every range, keyed by its low pfn and augmented with
/// the longest free range in each subtree, so the highest fitting free
/// range is found in O(log n) expected steps without a cache
/// (docs/KERNEL-MODEL.md §4.5 says where that departs from Linux).
struct IOVATree {
    struct Node {
        var lo: UInt64
        var hi: UInt64
        /// The longest free range in this subtree (pages), 0 for none.
        var maxFree: UInt64
        var left: Int
        var right: Int
        var priority: UInt64
        var kind: IOVARangeKind
    }

    let start: UInt64
    let end: UInt64
    private var nodes: ContiguousArray<Node> = []
    private var spare: [Int] = []
    private var root = -1
    /// xorshift state for node priorities.
    private var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    private(set) var counters = IOVATreeCounters()

    init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end
        root = makeNode(start, end, .free)
    }

    // MARK: Operations

    mutating func alloc(pages: UInt64, limitPfn: UInt64, sizeAligned: Bool) -> UInt64? {
        precondition(pages > 0 && pages <= 1 << 62, "an IOVA allocation is 1...2^62 pages")
        guard limitPfn >= start else { counters.failures += 1; return nil }
        // align_mask <<= fls_long(size - 1)
        let mask: UInt64 = sizeAligned ? ~0 << UInt64(64 - (pages - 1).leadingZeroBitCount) : ~0
        let top = min(limitPfn, end) + 1
        guard let (t, lo) = highestFit(root, below: top, pages: pages, mask: mask) else {
            counters.failures += 1
            return nil
        }
        let f = nodes[t]
        let hi = lo + pages - 1
        let (a, rest) = split(root, f.lo)
        let (m, c) = split(rest, f.hi + 1)
        precondition(m == t && nodes[t].left < 0 && nodes[t].right < 0, "IOVA tree corrupt")
        nodes[t].lo = lo
        nodes[t].hi = hi
        nodes[t].kind = .allocated
        update(t)
        var left = a
        if lo > f.lo { left = merge(left, makeNode(f.lo, lo - 1, .free)) }
        var right = c
        if hi < f.hi { right = merge(makeNode(hi + 1, f.hi, .free), right) }
        root = merge(merge(left, t), right)
        counters.allocations += 1
        return lo
    }

    mutating func free(pfn: UInt64) -> IOVARange? {
        guard let t = find(pfn), nodes[t].kind == .allocated else {
            counters.strayFrees += 1
            return nil
        }
        let freed = IOVARange(lo: nodes[t].lo, hi: nodes[t].hi)
        var lo = freed.lo, hi = freed.hi
        if lo > start, let p = find(lo - 1), nodes[p].kind == .free { lo = nodes[p].lo }
        if hi < end, let s = find(hi + 1), nodes[s].kind == .free { hi = nodes[s].hi }
        let (a, rest) = split(root, lo)
        let (m, c) = split(rest, hi + 1)
        recycle(m)
        root = merge(merge(a, makeNode(lo, hi, .free)), c)
        counters.frees += 1
        return freed
    }

    mutating func reserve(lo: UInt64, hi: UInt64) -> Bool {
        guard lo <= hi, hi >= start, lo <= end else { return false }
        let lo = max(lo, start), hi = min(hi, end)
        let first = nodes[find(lo)!].lo
        let last = nodes[find(hi)!].hi
        let (a, rest) = split(root, first)
        let (m, c) = split(rest, last + 1)
        var old: [(IOVARange, IOVARangeKind)] = []
        collect(m, into: &old)
        recycle(m)
        var mid = -1
        for (r, kind) in old {
            if kind != .free {
                mid = merge(mid, makeNode(r.lo, r.hi, kind))
                continue
            }
            if r.lo < lo { mid = merge(mid, makeNode(r.lo, lo - 1, .free)) }
            mid = merge(mid, makeNode(max(r.lo, lo), min(r.hi, hi), .reserved))
            if r.hi > hi { mid = merge(mid, makeNode(hi + 1, r.hi, .free)) }
        }
        root = merge(merge(a, mid), c)
        return true
    }

    /// The range containing `pfn`, whatever its kind.
    func range(containing pfn: UInt64) -> (range: IOVARange, kind: IOVARangeKind)? {
        guard let t = find(pfn) else { return nil }
        return (IOVARange(lo: nodes[t].lo, hi: nodes[t].hi), nodes[t].kind)
    }

    /// Every range in address order (for the audit).
    func ranges() -> [(range: IOVARange, kind: IOVARangeKind)] {
        var out: [(IOVARange, IOVARangeKind)] = []
        collect(root, into: &out)
        return out.map { (range: $0.0, kind: $0.1) }
    }

    /// What is wrong with the tree's own structure: the treap's heap order,
    /// the augmented lengths, the partition of [start, end], adjacent free
    /// ranges. Empty when sound.
    func structuralProblems() -> [String] {
        var problems: [String] = []
        func walk(_ t: Int, lo: UInt64?, hi: UInt64?) -> UInt64 {
            if t < 0 { return 0 }
            let n = nodes[t]
            if let lo, n.lo <= lo { problems.append("node \(n.lo) out of key order") }
            if let hi, n.lo >= hi { problems.append("node \(n.lo) out of key order") }
            for c in [n.left, n.right] where c >= 0 && nodes[c].priority > n.priority {
                problems.append("node \(nodes[c].lo) breaks the heap order")
            }
            let l = walk(n.left, lo: lo, hi: n.lo), r = walk(n.right, lo: n.lo, hi: hi)
            let own: UInt64 = n.kind == .free ? n.hi - n.lo + 1 : 0
            let m = max(own, l, r)
            if m != n.maxFree { problems.append("node \(n.lo) has maxFree \(n.maxFree), not \(m)") }
            return m
        }
        _ = walk(root, lo: nil, hi: nil)
        var next = start
        var lastKind: IOVARangeKind?
        for (r, kind) in ranges() {
            if r.lo != next { problems.append("range \(r) does not start at \(next)") }
            if r.hi < r.lo { problems.append("range \(r) is empty") }
            if kind == .free && lastKind == .free { problems.append("free range \(r) follows a free range") }
            next = r.hi &+ 1
            lastKind = kind
        }
        if next != end &+ 1 { problems.append("the ranges end at \(next &- 1), not \(end)") }
        return problems
    }

    // MARK: The treap

    /// The free node holding the highest fitting start below `top`
    /// (exclusive), and that start. Visits right before left, so the first
    /// fit is the highest; subtrees with no free range long enough are
    /// skipped, and so is everything right of a node at or above `top`.
    private func highestFit(_ t: Int, below top: UInt64, pages: UInt64, mask: UInt64) -> (Int, UInt64)? {
        guard t >= 0, nodes[t].maxFree >= pages else { return nil }
        let n = nodes[t]
        if n.lo < top {
            if let r = highestFit(n.right, below: top, pages: pages, mask: mask) { return r }
            if n.kind == .free {
                let limit = min(n.hi + 1, top)
                if limit - n.lo >= pages {
                    let lo = (limit - pages) & mask
                    if lo >= n.lo { return (t, lo) }
                }
            }
        }
        return highestFit(n.left, below: top, pages: pages, mask: mask)
    }

    private func find(_ pfn: UInt64) -> Int? {
        var t = root
        while t >= 0 {
            if pfn < nodes[t].lo {
                t = nodes[t].left
            } else if pfn > nodes[t].hi {
                t = nodes[t].right
            } else {
                return t
            }
        }
        return nil
    }

    private mutating func makeNode(_ lo: UInt64, _ hi: UInt64, _ kind: IOVARangeKind) -> Int {
        seed ^= seed << 13
        seed ^= seed >> 7
        seed ^= seed << 17
        let n = Node(lo: lo, hi: hi, maxFree: kind == .free ? hi - lo + 1 : 0,
                     left: -1, right: -1, priority: seed, kind: kind)
        if let i = spare.popLast() {
            nodes[i] = n
            return i
        }
        nodes.append(n)
        return nodes.count - 1
    }

    private mutating func update(_ t: Int) {
        let n = nodes[t]
        var m: UInt64 = n.kind == .free ? n.hi - n.lo + 1 : 0
        if n.left >= 0 { m = max(m, nodes[n.left].maxFree) }
        if n.right >= 0 { m = max(m, nodes[n.right].maxFree) }
        nodes[t].maxFree = m
    }

    /// (nodes with lo < key, nodes with lo >= key)
    private mutating func split(_ t: Int, _ key: UInt64) -> (Int, Int) {
        if t < 0 { return (-1, -1) }
        if nodes[t].lo < key {
            let (a, b) = split(nodes[t].right, key)
            nodes[t].right = a
            update(t)
            return (t, b)
        }
        let (a, b) = split(nodes[t].left, key)
        nodes[t].left = b
        update(t)
        return (a, t)
    }

    /// Every key in `a` is below every key in `b`.
    private mutating func merge(_ a: Int, _ b: Int) -> Int {
        if a < 0 { return b }
        if b < 0 { return a }
        if nodes[a].priority > nodes[b].priority {
            nodes[a].right = merge(nodes[a].right, b)
            update(a)
            return a
        }
        nodes[b].left = merge(a, nodes[b].left)
        update(b)
        return b
    }

    private mutating func recycle(_ t: Int) {
        if t < 0 { return }
        recycle(nodes[t].left)
        recycle(nodes[t].right)
        spare.append(t)
    }

    private func collect(_ t: Int, into out: inout [(IOVARange, IOVARangeKind)]) {
        if t < 0 { return }
        collect(nodes[t].left, into: &out)
        out.append((IOVARange(lo: nodes[t].lo, hi: nodes[t].hi), nodes[t].kind))
        collect(nodes[t].right, into: &out)
    }
}

#if canImport(Glibc)
import Glibc
#endif
