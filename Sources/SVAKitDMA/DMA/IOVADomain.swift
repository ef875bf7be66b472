// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// An inclusive range of IOVA page frame numbers, in units of the domain's
/// granule.
package struct IOVARange: Hashable, Sendable, CustomStringConvertible {
    package var lo: UInt64
    package var hi: UInt64
    package var pages: UInt64 { hi - lo + 1 }
    package var description: String { "[\(lo)...\(hi)]" }

    package init(lo: UInt64, hi: UInt64) {
        self.lo = lo
        self.hi = hi
    }
}

/// What a range of the tree is.
package enum IOVARangeKind: UInt8, Sendable {
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
/// Allocation is iova.c's (6.12.118): top-down from a cached node, so
/// the answer is the one Linux gives, which is not always the highest fit
/// (`IOVATree`). Every call takes only IOVA locks and calls nothing
/// outside the allocator (docs/ARCHITECTURE.md, "Locks").
package final class IOVADomain: Sendable {
    /// Bytes per IOVA page (power of two; 4 KiB unless the DMA layer says).
    package let granule: UInt64
    /// log2(granule): an IOVA is `pfn << shift`.
    package let shift: Int
    package let startPfn: UInt64
    package let endPfn: UInt64

    /// The tree lock (iova_rbtree_lock): every range of [startPfn, endPfn]
    /// and the tree's counters.
    package let tree: RankedMutex<IOVATree>

    /// The per-CPU caches and depots, one of each per size class.
    package let rcache: IOVARcache

    /// A domain over [startPfn, endPfn] (inclusive, in granules) with
    /// `cpuCount` simulated CPUs (init_iova_domain and
    /// iova_domain_init_rcaches). `clock` gives monotonic nanoseconds for
    /// the depot work's deadline; it is called with no lock held. A clock
    /// that stands still leaves the depot work to `runDepotWork()`.
    package init(granule: UInt64 = 4096, startPfn: UInt64, endPfn: UInt64, cpuCount: Int,
         clock: @escaping @Sendable () -> UInt64 = monotonicNanoseconds) {
        precondition(granule > 0 && granule <= 1 << 16 && granule & (granule - 1) == 0,
                     "the IOVA granule is a power of two")
        precondition(startPfn <= endPfn && endPfn < UInt64.max, "an IOVA domain is a non-empty range below 2^64-1")
        precondition(cpuCount > 0)
        self.granule = granule
        shift = granule.trailingZeroBitCount
        self.startPfn = startPfn
        self.endPfn = endPfn
        tree = RankedMutex(.iovaTree, IOVATree(start: startPfn, end: endPfn, shift: granule.trailingZeroBitCount))
        rcache = IOVARcache(cpuCount: cpuCount, clock: clock)
    }

    // MARK: - The tree API (alloc_iova, free_iova, find_iova, reserve_iova)

    /// alloc_iova(): `pages` pages, ending at or below `limitPfn`
    /// (inclusive; a limit above `endPfn` is `endPfn`), found as iova.c
    /// finds it (`IOVATree.alloc`); with `sizeAligned` the start is a
    /// multiple of `pages` rounded up to a power of two. Nil when nothing
    /// fits. Bypasses the rcache.
    package func alloc(pages: UInt64, limitPfn: UInt64, sizeAligned: Bool) -> UInt64? {
        tree.locked { $0.alloc(pages: pages, limitPfn: limitPfn, sizeAligned: sizeAligned) }
    }

    /// free_iova(): removes the range containing `pfn`, allocated or
    /// reserved (iova.c does not tell them apart); returns it, or nil when
    /// no range contains `pfn` (Linux then does nothing).
    @discardableResult
    package func free(pfn: UInt64) -> IOVARange? {
        tree.locked { $0.free(pfn: pfn)?.range }
    }

    /// find_iova(): the allocated or reserved range containing `pfn`.
    package func find(pfn: UInt64) -> (range: IOVARange, kind: IOVARangeKind)? {
        tree.locked { t in
            guard let r = t.range(containing: pfn), r.kind != .free else { return nil }
            return r
        }
    }

    /// reserve_iova(): no allocation will return a pfn of [lo, hi]. Ranges
    /// it overlaps grow down to cover it and the rest becomes new reserved
    /// ranges (`IOVATree.reserve`). Returns the range that covers `hi`;
    /// nil, changing nothing, when lo > hi or either is past
    /// `ULLONG_MAX >> shift` (iova.c's "nonsensical pfns").
    @discardableResult
    package func reserve(lo: UInt64, hi: UInt64) -> IOVARange? {
        // The anchor's pfn is never reservable (Linux would stretch the
        // anchor node over it; refused here: a granule-1 domain's only case).
        guard lo <= hi, (lo | hi) <= UInt64.max >> UInt64(shift), hi < IOVATree.anchorPfn else { return nil }
        return tree.locked { $0.reserve(lo: lo, hi: hi) }
    }

    /// The cached nodes (the anchor reads [~0, ~0]) and max32_alloc_size.
    package var treeCache: (node: IOVARange, node32: IOVARange, max32AllocSize: UInt64) {
        tree.locked { $0.cache }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the default clock of depot reclaim.
@Sendable
package func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// The counters of the tree.
package struct IOVATreeCounters: Equatable, Sendable {
    /// Ranges handed out by `alloc`.
    package var allocations = 0
    /// `alloc` calls that found nothing.
    package var failures = 0
    /// Ranges removed by `free`.
    package var frees = 0
    /// `free` calls for a pfn in no range (Linux ignores them).
    package var strayFrees = 0
}

/// The ranges of an IOVA domain as drivers/iommu/iova.c (6.12.118) keeps
/// them: an ordered set of allocated and reserved nodes closed at the top
/// by the anchor at IOVA_ANCHOR (~0), searched backwards from a cached
/// node (`cached_node`, `cached32_node`), with `max32_alloc_size` failing
/// large requests below `dma_32bit_pfn` fast. Free space is the gaps.
///
/// The set is a treap rather than an rbtree: every result iova.c computes
/// (the walk, `iova_find_limit`'s starting point, the successor the cache
/// moves to) depends only on the order of the nodes, not on the tree's
/// shape, so any ordered set gives the same answers. Node indices are
/// stable while a node lives, as the kernel's `struct rb_node *` are, so
/// the cached nodes are indices.
package struct IOVATree {
    package struct Node {
        package var lo: UInt64
        package var hi: UInt64
        package var left: Int
        package var right: Int
        package var priority: UInt64
        /// `.allocated` or `.reserved` (iova.c does not tell them apart;
        /// the kind is kept for the accounting only).
        package var kind: IOVARangeKind
    }

    /// start_pfn: the lowest pfn `alloc` hands out.
    package let start: UInt64
    /// The highest pfn callers' limits reach (the DMA aperture; the
    /// standalone domain's is ~0 - 1): a limit above it is taken as it.
    package let end: UInt64
    /// dma_32bit_pfn: 1 << (32 - iova_shift).
    package let dma32Pfn: UInt64
    /// max32_alloc_size: the size of the last failed allocation (any
    /// limit), reset by a free below dma_32bit_pfn.
    package private(set) var max32AllocSize: UInt64
    /// cached_node and cached32_node: node indices.
    package private(set) var cachedNode: Int
    package private(set) var cached32Node: Int
    /// The anchor node [~0, ~0].
    package let anchor: Int

    private var nodes: ContiguousArray<Node> = []
    private var spare: [Int] = []
    private var root = -1
    /// xorshift state for node priorities.
    private var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    package private(set) var counters = IOVATreeCounters()

    package static let anchorPfn = UInt64.max

    package init(start: UInt64, end: UInt64, shift: Int) {
        self.start = start
        self.end = end
        dma32Pfn = 1 << UInt64(32 - shift)
        max32AllocSize = dma32Pfn
        nodes.reserveCapacity(64)
        let a = 0
        nodes.append(Node(lo: Self.anchorPfn, hi: Self.anchorPfn, left: -1, right: -1, priority: 0,
                          kind: .reserved))
        anchor = a
        root = a
        cachedNode = a
        cached32Node = a
    }

    // MARK: Operations

    /// alloc_iova(iovad, size, limitPfn, sizeAligned), that is
    /// __alloc_and_insert_iova_range(iovad, size, limitPfn + 1, ...):
    /// the start of the new range, or nil.
    package mutating func alloc(pages size: UInt64, limitPfn: UInt64, sizeAligned: Bool) -> UInt64? {
        precondition(size > 0 && size <= 1 << 62, "an IOVA allocation is 1...2^62 pages")
        // SVAKit's domains have an end (the aperture): a limit above it is the end.
        let limit = min(limitPfn, end) &+ 1
        var alignMask = UInt64.max
        // align_mask <<= fls_long(size - 1)
        if sizeAligned { alignMask <<= UInt64(64 - (size - 1).leadingZeroBitCount) }
        var high = limit, low = start
        if limit <= dma32Pfn && size >= max32AllocSize {
            counters.failures += 1
            return nil
        }
        var curr = limit <= dma32Pfn ? cached32Node : cachedNode
        let retryPfn = nodes[curr].hi
        var newPfn: UInt64 = 0
        var hint = curr
        while true {
            // do { ... } while (curr && new_pfn <= curr->pfn_hi && new_pfn >= low_pfn)
            while true {
                high = min(high, nodes[curr].lo)
                newPfn = (high &- size) & alignMask
                hint = curr
                curr = predecessor(curr)
                if !(curr >= 0 && newPfn <= nodes[curr].hi && newPfn >= low) { break }
            }
            if high < size || newPfn < low {
                if low == start && retryPfn < limit {
                    high = limit
                    low = retryPfn &+ 1
                    curr = findLimit(limit)
                    continue
                }
                max32AllocSize = size
                counters.failures += 1
                return nil
            }
            break
        }
        _ = hint
        let t = makeNode(newPfn, newPfn + size - 1, .allocated)
        insert(t)
        // __cached_rbnode_insert_update
        if nodes[t].hi < dma32Pfn { cached32Node = t } else { cachedNode = t }
        counters.allocations += 1
        return newPfn
    }

    /// free_iova(): removes the node containing `pfn` (allocated or
    /// reserved, as iova.c does) and returns it; nil when none does.
    package mutating func free(pfn: UInt64) -> (range: IOVARange, kind: IOVARangeKind)? {
        guard let t = find(pfn), t != anchor else {
            counters.strayFrees += 1
            return nil
        }
        let out = (IOVARange(lo: nodes[t].lo, hi: nodes[t].hi), nodes[t].kind)
        remove(t)
        counters.frees += 1
        return out
    }

    /// remove_iova(): __cached_rbnode_delete_update, then the erase.
    private mutating func remove(_ t: Int) {
        let f = nodes[t]
        let c32 = nodes[cached32Node]
        if t == cached32Node || (f.hi < dma32Pfn && f.lo >= c32.lo) {
            cached32Node = successor(t)
        }
        if f.lo < dma32Pfn { max32AllocSize = dma32Pfn }
        if f.lo >= nodes[cachedNode].lo { cachedNode = successor(t) }
        erase(t)
        recycle(t)
    }

    /// reserve_iova(lo, hi): nodes overlapping the range are extended down
    /// to cover it (__adjust_overlap_range: a node's pfn_lo moves down, the
    /// part above a node continues past it), and what is left above the
    /// last overlapping node becomes a new reserved node. The caller checks
    /// lo <= hi and iova.c's "nonsensical pfns" bound. Returns the range of
    /// the node that ends up covering `hi` (the one iova.c returns).
    package mutating func reserve(lo: UInt64, hi: UInt64) -> IOVARange {
        precondition(lo <= hi && hi < Self.anchorPfn, "reserve_iova of an empty range or the anchor")
        var lo = lo
        // for (node = rb_first(); node; node = rb_next(node)): nodes below the
        // first one whose pfn_hi >= lo cannot overlap, so start there.
        var node = firstEnding(atOrAbove: lo)
        var overlap = false
        while node >= 0 {
            if lo <= nodes[node].hi && hi >= nodes[node].lo {
                if lo < nodes[node].lo { nodes[node].lo = lo }
                if hi > nodes[node].hi { lo = nodes[node].hi + 1 }
                if lo >= nodes[node].lo && hi <= nodes[node].hi {
                    return IOVARange(lo: nodes[node].lo, hi: nodes[node].hi)
                }
                overlap = true
            } else if overlap {
                break
            }
            node = successor(node)
        }
        let t = makeNode(lo, hi, .reserved)
        insert(t)
        return IOVARange(lo: lo, hi: hi)
    }

    /// The node containing `pfn`, whatever its kind (not the anchor).
    package func range(containing pfn: UInt64) -> (range: IOVARange, kind: IOVARangeKind)? {
        guard let t = find(pfn), t != anchor else { return nil }
        return (IOVARange(lo: nodes[t].lo, hi: nodes[t].hi), nodes[t].kind)
    }

    /// Allocated and reserved nodes (the anchor not counted).
    package var nodeCount: Int { nodes.count - spare.count - 1 }

    /// The cached nodes' ranges (the anchor is [~0, ~0]) and max32_alloc_size.
    package var cache: (node: IOVARange, node32: IOVARange, max32AllocSize: UInt64) {
        (IOVARange(lo: nodes[cachedNode].lo, hi: nodes[cachedNode].hi),
         IOVARange(lo: nodes[cached32Node].lo, hi: nodes[cached32Node].hi), max32AllocSize)
    }

    /// Every range in address order (for the audit): the nodes, and the
    /// gaps between them within [start, end] as free ranges.
    package func ranges() -> [(range: IOVARange, kind: IOVARangeKind)] {
        var out: [(range: IOVARange, kind: IOVARangeKind)] = []
        var next = start
        forEach { t in
            guard t != anchor else { return }
            let n = nodes[t]
            if n.lo > next && next <= end {
                out.append((IOVARange(lo: next, hi: min(n.lo - 1, end)), .free))
            }
            out.append((IOVARange(lo: n.lo, hi: n.hi), n.kind))
            next = max(next, n.hi &+ 1)
        }
        if next <= end && next != 0 { out.append((IOVARange(lo: next, hi: end), .free)) }
        return out
    }

    /// What is wrong with the tree's own structure: the treap's heap and
    /// key order, overlapping nodes, the anchor, the cached nodes. Empty
    /// when sound.
    package func structuralProblems() -> [String] {
        var problems: [String] = []
        func walk(_ t: Int, lo: UInt64?, hi: UInt64?) {
            if t < 0 { return }
            let n = nodes[t]
            if let lo, n.lo <= lo { problems.append("node \(n.lo) out of key order") }
            if let hi, n.lo >= hi { problems.append("node \(n.lo) out of key order") }
            for c in [n.left, n.right] where c >= 0 && nodes[c].priority > n.priority {
                problems.append("node \(nodes[c].lo) breaks the heap order")
            }
            walk(n.left, lo: lo, hi: n.lo)
            walk(n.right, lo: n.lo, hi: hi)
        }
        walk(root, lo: nil, hi: nil)
        var prevHi: UInt64?
        var live = Set<Int>()
        forEach { t in
            let n = nodes[t]
            live.insert(t)
            if n.hi < n.lo { problems.append("node [\(n.lo)...\(n.hi)] is empty") }
            if let p = prevHi, n.lo <= p { problems.append("node [\(n.lo)...\(n.hi)] overlaps its predecessor") }
            prevHi = n.hi
        }
        if prevHi != Self.anchorPfn { problems.append("the anchor is not the last node") }
        if !live.contains(cachedNode) { problems.append("cached_node is not in the tree") }
        if !live.contains(cached32Node) { problems.append("cached32_node is not in the tree") }
        return problems
    }

    // MARK: The ordered set

    /// iova_find_limit(): a node to restart the walk from. iova.c returns
    /// the anchor above dma_32bit_pfn; below, some node whose pfn_hi is at
    /// or above the limit, from which the walk reaches the same answer as
    /// from the lowest such node, which this returns.
    private func findLimit(_ limit: UInt64) -> Int {
        if limit > dma32Pfn { return anchor }
        return firstEnding(atOrAbove: limit)
    }

    /// The lowest node whose hi is at or above `pfn` (the anchor at worst).
    private func firstEnding(atOrAbove pfn: UInt64) -> Int {
        var t = root, best = anchor
        while t >= 0 {
            if nodes[t].hi >= pfn { best = t; t = nodes[t].left } else { t = nodes[t].right }
        }
        return best
    }

    /// rb_prev(): the node before `t`, or -1.
    private func predecessor(_ t: Int) -> Int {
        let key = nodes[t].lo
        var x = root, best = -1
        while x >= 0 {
            if nodes[x].lo < key { best = x; x = nodes[x].right } else { x = nodes[x].left }
        }
        return best
    }

    /// rb_next(): the node after `t`, or -1.
    private func successor(_ t: Int) -> Int {
        let key = nodes[t].lo
        var x = root, best = -1
        while x >= 0 {
            if nodes[x].lo > key { best = x; x = nodes[x].left } else { x = nodes[x].right }
        }
        return best
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

    private func forEach(_ body: (Int) -> Void) {
        func visit(_ t: Int) {
            if t < 0 { return }
            visit(nodes[t].left)
            body(t)
            visit(nodes[t].right)
        }
        visit(root)
    }

    private mutating func makeNode(_ lo: UInt64, _ hi: UInt64, _ kind: IOVARangeKind) -> Int {
        seed ^= seed << 13
        seed ^= seed >> 7
        seed ^= seed << 17
        // The anchor has the lowest priority; a node never ties it.
        let n = Node(lo: lo, hi: hi, left: -1, right: -1, priority: seed | 1, kind: kind)
        if let i = spare.popLast() {
            nodes[i] = n
            return i
        }
        nodes.append(n)
        return nodes.count - 1
    }

    private mutating func insert(_ t: Int) {
        let (a, b) = split(root, nodes[t].lo)
        root = merge(merge(a, t), b)
    }

    private mutating func erase(_ t: Int) {
        let lo = nodes[t].lo
        let (a, rest) = split(root, lo)
        let (m, c) = split(rest, lo + 1)
        precondition(m == t && nodes[t].left < 0 && nodes[t].right < 0, "IOVA tree corrupt")
        root = merge(a, c)
    }

    /// (nodes with lo < key, nodes with lo >= key)
    private mutating func split(_ t: Int, _ key: UInt64) -> (Int, Int) {
        if t < 0 { return (-1, -1) }
        if nodes[t].lo < key {
            let (a, b) = split(nodes[t].right, key)
            nodes[t].right = a
            return (t, b)
        }
        let (a, b) = split(nodes[t].left, key)
        nodes[t].left = b
        return (a, t)
    }

    /// Every key in `a` is below every key in `b`.
    private mutating func merge(_ a: Int, _ b: Int) -> Int {
        if a < 0 { return b }
        if b < 0 { return a }
        if nodes[a].priority > nodes[b].priority {
            nodes[a].right = merge(nodes[a].right, b)
            return a
        }
        nodes[b].left = merge(a, nodes[b].left)
        return b
    }

    private mutating func recycle(_ t: Int) {
        nodes[t].left = -1
        nodes[t].right = -1
        spare.append(t)
    }
}

#if canImport(Glibc)
import Glibc
#endif
