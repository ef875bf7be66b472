// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The IOVA range cache (drivers/iommu/iova.c, docs/KERNEL-MODEL.md §4.5):
/// per size class of 1, 2, 4 ... 32 pages, each simulated CPU keeps a
/// `loaded` and a `prev` magazine of up to 127 freed pfns, and full
/// magazines overflow into the size class's depot, a list that a delayed
/// reclaim trims back to one magazine per CPU.
///
/// Locks: one per (CPU, size class) — the CPU's rcache lock — and one per
/// size class for its depot, nested CPU → depot → tree as iova.c nests
/// them (`LockRank.iovaRcache`, `.iovaDepot`, `.iovaTree`). So alloc/free
/// on different CPUs share no lock until a magazine goes to or comes from
/// the depot.
///
/// Time: no timer and no thread. A push to the depot schedules reclaim
/// `depotDelayNanos` after the clock reads it; reclaim that is due runs
/// lazily after the next push or pop of that size class, or when the
/// engine calls `IOVADomain.reclaimDepot(now:)`.
package final class IOVARcache: @unchecked Sendable {
    // @unchecked: the magazines are reached only under the lock that owns
    // them (a CPU's rcache lock, or the depot lock for the depot and the
    // spares); the lock arrays are set up in init and torn down in deinit.

    /// IOVA_RANGE_CACHE_MAX_SIZE: sizes of order 0..<6 (1...32 pages) are
    /// cached.
    package static let sizeClasses = 6
    /// IOVA_MAG_SIZE: pfns per magazine (a 1024-byte magazine with its
    /// count word).
    package static let magazineSize = 127
    /// IOVA_DEPOT_DELAY: 100 ms.
    package static let depotDelayNanos: UInt64 = 100_000_000

    package let cpuCount: Int
    /// Monotonic nanoseconds; called with no lock held.
    package let clock: @Sendable () -> UInt64

    /// `cpus[cpu * sizeClasses + class]`: that CPU's magazines of that
    /// size class (iova_cpu_rcache and its lock).
    package let cpus: UnsafeMutablePointer<RankedMutex<IOVACPURcache>>
    /// `depots[class]`: the depot, the spare magazines and the reclaim
    /// deadline of that size class (iova_rcache and its lock).
    package let depots: UnsafeMutablePointer<RankedMutex<IOVADepot>>

    /// alloc_iova_fast() calls that flushed every cache and retried.
    package let flushes = Atomic<Int>(0)

    package init(cpuCount: Int, clock: @escaping @Sendable () -> UInt64) {
        self.cpuCount = cpuCount
        self.clock = clock
        let n = cpuCount * Self.sizeClasses
        cpus = .allocate(capacity: n)
        depots = .allocate(capacity: Self.sizeClasses)
        for k in 0..<Self.sizeClasses {
            // iova_domain_init_rcaches(): two magazines per CPU up front.
            (depots + k).initialize(to: RankedMutex(.iovaDepot,
                                                    IOVADepot(magazineAllocations: 2 * cpuCount, spareLimit: cpuCount)))
        }
        for i in 0..<n {
            (cpus + i).initialize(to: RankedMutex(.iovaRcache,
                                                  IOVACPURcache(loaded: IOVAMagazine(), prev: IOVAMagazine())))
        }
    }

    deinit {
        let n = cpuCount * Self.sizeClasses
        // Each CPU's magazines go with their owners (IOVAMagazine's deinit);
        // the depots' lists hold raw blocks and are freed by hand.
        for k in 0..<Self.sizeClasses {
            depots[k].locked { d in d.deallocateAll() }
        }
        cpus.deinitialize(count: n)
        cpus.deallocate()
        depots.deinitialize(count: Self.sizeClasses)
        depots.deallocate()
    }

    /// The size class of a range of `pages` pages: order_base_2(pages).
    /// Classes at or above `sizeClasses` are not cached.
    @inline(__always)
    package static func sizeClass(_ pages: UInt64) -> Int {
        pages <= 1 ? 0 : 64 - (pages - 1).leadingZeroBitCount
    }
}

/// What the DMA layer allocates for a request of `pages` pages: sizes below
/// 1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1) = 32 pages are rounded up to a power
/// of two, so a freed range drops back into the size class it will be
/// asked for again (docs/KERNEL-MODEL.md §4.5). `allocFast` applies it too.
package func iovaAllocationPages(_ pages: UInt64) -> UInt64 {
    precondition(pages > 0, "an IOVA allocation has at least one page")
    guard pages < 1 << (IOVARcache.sizeClasses - 1), pages > 1 else { return pages }
    return 1 << UInt64(64 - (pages - 1).leadingZeroBitCount)
}

/// A magazine: one 128-word block, word 0 the count (or, in the depot's
/// and the spares' lists, the next block, as iova.c's union does), then up
/// to 127 pfns. A `~Copyable` owner of its block, as swift-collections'
/// RigidArray owns its storage: exactly one CPU rcache, depot list or
/// reclaiming thread holds it at a time, a move costs no allocation and no
/// reference counting, and the block is freed by the deinit of whoever
/// holds it last. In a depot's list it is a raw block (`release()`), owned
/// again when it leaves (`init(adopting:)`).
package struct IOVAMagazine: ~Copyable, @unchecked Sendable {
    // @unchecked: the block is touched only under its holder's lock (a
    // CPU's rcache lock or the depot lock), except a magazine reclaim
    // popped, which only the reclaiming thread holds.
    private let words: UnsafeMutablePointer<UInt64>

    /// iova_magazine_alloc(): an empty magazine.
    package init() {
        words = .allocate(capacity: IOVARcache.magazineSize + 1)
        words.initialize(repeating: 0, count: IOVARcache.magazineSize + 1)
    }

    /// Owns a block a depot list held (`release()`'s result).
    package init(adopting block: UnsafeMutablePointer<UInt64>) { words = block }

    /// iova_magazine_free().
    deinit { words.deallocate() }

    /// Gives the block up to a depot list, which links it through word 0.
    package consuming func release() -> UnsafeMutablePointer<UInt64> {
        let w = words
        discard self
        return w
    }

    package var count: Int {
        @inline(__always) get { Int(words[0]) }
        @inline(__always) nonmutating set { words[0] = UInt64(newValue) }
    }
    package var isEmpty: Bool { @inline(__always) get { words[0] == 0 } }
    package var isFull: Bool { @inline(__always) get { words[0] == UInt64(IOVARcache.magazineSize) } }

    @inline(__always)
    package subscript(i: Int) -> UInt64 { words[1 + i] }

    @inline(__always)
    package func push(_ pfn: UInt64) {
        let n = count
        words[1 + n] = pfn
        count = n + 1
    }

    /// iova_magazine_pop(): the topmost pfn at or below `ceiling`, moving
    /// the last pfn into its slot; nil when none is (the caller falls back
    /// to the tree). The magazine is not empty.
    @inline(__always)
    package func pop(atMost ceiling: UInt64) -> UInt64? {
        var i = count - 1
        while words[1 + i] > ceiling {
            if i == 0 { return nil }
            i -= 1
        }
        let pfn = words[1 + i]
        let last = count - 1
        words[1 + i] = words[1 + last]
        count = last
        return pfn
    }
}

/// A depot list of magazine blocks, linked through word 0.
private func nextBlock(_ w: UnsafeMutablePointer<UInt64>) -> UnsafeMutablePointer<UInt64>? {
    UnsafeMutablePointer(bitPattern: UInt(w[0]))
}

private func link(_ w: UnsafeMutablePointer<UInt64>, to next: UnsafeMutablePointer<UInt64>?) {
    w[0] = UInt64(UInt(bitPattern: next))
}

/// One CPU's magazines of one size class (iova_cpu_rcache), and its hits
/// and misses.
package struct IOVACPURcache: ~Copyable {
    package var loaded: IOVAMagazine
    package var prev: IOVAMagazine
    package var hits = 0
    package var misses = 0
}

/// One size class's depot (iova_rcache): the list of full magazines, the
/// empty magazines kept for the next push, the reclaim deadline, counters.
package struct IOVADepot {
    package enum Reclaim: Equatable {
        /// No reclaim scheduled.
        case idle
        /// A push scheduled it; the deadline is set from the clock read
        /// after the push, with no lock held.
        case pending
        /// Due at this time (nanoseconds).
        case due(UInt64)
    }

    private var head: UnsafeMutablePointer<UInt64>?
    /// depot_size: full magazines in the depot.
    package private(set) var size = 0
    private var spares: UnsafeMutablePointer<UInt64>?
    private var spareCount = 0
    package let spareLimit: Int
    package var reclaim = Reclaim.idle

    package private(set) var pushes = 0
    package private(set) var pops = 0
    package var reclaims = 0
    /// Magazines allocated for this size class (2 per CPU at init, then one
    /// per push that found no spare) and freed (spares beyond the limit).
    package private(set) var magazineAllocations: Int
    package private(set) var magazineFrees = 0

    package init(magazineAllocations: Int, spareLimit: Int) {
        self.magazineAllocations = magazineAllocations
        self.spareLimit = spareLimit
    }

    /// iova_depot_push() of the full magazine `full` holds and
    /// schedule_delayed_work() (a no-op when already scheduled); `full`
    /// holds an empty magazine after it.
    package mutating func push(_ full: inout IOVAMagazine) {
        var empty = takeSpare()
        swap(&empty, &full)
        let block = empty.release()
        link(block, to: head)
        head = block
        size += 1
        pushes += 1
        if reclaim == .idle { reclaim = .pending }
    }

    /// A spare, or a new magazine (iova_magazine_alloc()), empty.
    private mutating func takeSpare() -> IOVAMagazine {
        guard let s = spares else {
            magazineAllocations += 1
            return IOVAMagazine()
        }
        spares = nextBlock(s)
        spareCount -= 1
        let m = IOVAMagazine(adopting: s)
        m.count = 0
        return m
    }

    /// iova_depot_pop(): a full magazine, or nil when the depot is empty.
    package mutating func pop() -> IOVAMagazine? {
        guard let b = head else { return nil }
        head = nextBlock(b)
        let m = IOVAMagazine(adopting: b)
        m.count = IOVARcache.magazineSize
        size -= 1
        pops += 1
        return m
    }

    /// Keeps an empty magazine for the next push (iova.c frees it and
    /// allocates anew; keeping it means steady depot traffic allocates
    /// nothing). Reclaim trims the spares back to `spareLimit`.
    package mutating func putSpare(_ m: consuming IOVAMagazine) {
        let block = m.release()
        link(block, to: spares)
        spares = block
        spareCount += 1
    }

    /// Frees the spares beyond `spareLimit` (one per CPU).
    package mutating func trimSpares() {
        while spareCount > spareLimit, let s = spares {
            spares = nextBlock(s)
            spareCount -= 1
            _ = IOVAMagazine(adopting: s)  // its deinit frees the block
            magazineFrees += 1
        }
    }

    /// The pfns of every magazine in the depot.
    package func cachedPfns() -> [UInt64] {
        var out: [UInt64] = []
        var b = head
        while let block = b {
            // In the list, word 0 is the link; a depot magazine is full.
            for i in 0..<IOVARcache.magazineSize { out.append(block[1 + i]) }
            b = nextBlock(block)
        }
        return out
    }

    /// Frees every block of both lists (the owners' deinits).
    package mutating func deallocateAll() {
        while let b = head { head = nextBlock(b); _ = IOVAMagazine(adopting: b) }
        while let s = spares { spares = nextBlock(s); _ = IOVAMagazine(adopting: s) }
        size = 0
        spareCount = 0
    }
}

// MARK: - alloc_iova_fast / free_iova_fast

extension IOVADomain {
    /// alloc_iova_fast(): `pages` pages (rounded by `iovaAllocationPages`)
    /// ending at or below `limitPfn` (inclusive), size-aligned, from `cpu`'s
    /// rcache when a cached pfn fits, else from the tree. When the tree has
    /// nothing and `flushRcache` is set, every CPU's cached IOVAs and the
    /// depots go back to the tree and the tree is asked once more.
    package func allocFast(pages: UInt64, limitPfn: UInt64, cpu: Int, flushRcache: Bool) -> UInt64? {
        let pages = iovaAllocationPages(pages)
        if let pfn = rcacheGet(pages: pages, limitPfn: limitPfn, cpu: cpu) { return pfn }
        if let pfn = alloc(pages: pages, limitPfn: limitPfn, sizeAligned: true) { return pfn }
        guard flushRcache else { return nil }
        rcache.flushes.add(1, ordering: .relaxed)
        flushCachedIOVAs()
        return alloc(pages: pages, limitPfn: limitPfn, sizeAligned: true)
    }

    /// free_iova_fast(): into `cpu`'s rcache when `pages` is a cached size
    /// class, else (or never: the cache always takes it) back to the tree.
    /// `pages` is what the caller asked `allocFast` for, or that rounded.
    package func freeFast(pfn: UInt64, pages: UInt64, cpu: Int) {
        if rcacheInsert(pfn: pfn, pages: pages, cpu: cpu) { return }
        free(pfn: pfn)
    }

    /// free_cpu_cached_iovas() for every CPU, then
    /// free_global_cached_iovas(): every cached IOVA goes back to the tree.
    package func flushCachedIOVAs() {
        for cpu in 0..<rcache.cpuCount { freeCPUCachedIOVAs(cpu: cpu) }
        for k in 0..<IOVARcache.sizeClasses {
            rcache.depots[k].locked { d in
                while let m = d.pop() {
                    freeMagazine(m)
                    d.putSpare(m)
                }
            }
        }
    }

    /// free_cpu_cached_iovas(): `cpu`'s loaded and prev magazines go back
    /// to the tree.
    package func freeCPUCachedIOVAs(cpu: Int) {
        precondition(cpu >= 0 && cpu < rcache.cpuCount, "no such CPU")
        for k in 0..<IOVARcache.sizeClasses {
            rcache.cpus[cpu * IOVARcache.sizeClasses + k].locked { c in
                freeMagazine(c.loaded)
                freeMagazine(c.prev)
            }
        }
    }

    /// iova_depot_work_func(), for every size class whose reclaim is due at
    /// `now`: while a deadline has passed and the depot holds more
    /// magazines than there are CPUs, one magazine goes back to the tree
    /// and the next deadline is `depotDelayNanos` later; otherwise reclaim
    /// stops until the next push. For the engine's timer.
    package func reclaimDepot(now: UInt64) {
        for k in 0..<IOVARcache.sizeClasses { reclaimDepot(sizeClass: k, now: now) }
    }

    /// Runs each size class's pending depot work once, now, whatever its
    /// deadline (a test's "the work fires here"): iova_depot_work_func,
    /// which returns one magazine to the tree when the depot holds more
    /// than one per CPU and then schedules itself again. Returns how many
    /// works ran.
    @discardableResult
    package func runDepotWork() -> Int {
        var ran = 0
        for k in 0..<IOVARcache.sizeClasses where runDepotWorkNow(sizeClass: k) { ran += 1 }
        return ran
    }

    /// Whether size class `k`'s depot work is pending.
    package func depotWorkPending(sizeClass k: Int) -> Bool {
        rcache.depots[k].locked { $0.reclaim != .idle }
    }

    private func runDepotWorkNow(sizeClass k: Int) -> Bool {
        let cpuCount = rcache.cpuCount
        var ran = false
        let victim = rcache.depots[k].locked { d -> IOVAMagazine? in
            guard d.reclaim != .idle else { return nil }
            ran = true
            d.trimSpares()
            guard d.size > cpuCount, let m = d.pop() else {
                d.reclaim = .idle
                return nil
            }
            // schedule_delayed_work() again: due IOVA_DEPOT_DELAY after the
            // clock is next read.
            d.reclaim = .pending
            d.reclaims += 1
            return m
        }
        if let victim { returnToTree(victim, sizeClass: k) }
        return ran
    }

    // MARK: The rcache

    /// __iova_rcache_get(): loaded, else prev (swapped in), else a full
    /// magazine from the depot replaces the empty loaded one. Only the
    /// loaded magazine is searched, for a pfn whose range ends at or below
    /// `limitPfn`.
    private func rcacheGet(pages: UInt64, limitPfn: UInt64, cpu: Int) -> UInt64? {
        let k = IOVARcache.sizeClass(pages)
        guard k < IOVARcache.sizeClasses else { return nil }
        precondition(cpu >= 0 && cpu < rcache.cpuCount, "no such CPU")
        let rcache = rcache
        // iova_rcache_get(iovad, size, limit_pfn + 1) pops at or below
        // limit_pfn + 1 - size, in unsigned arithmetic: a limit below the
        // size wraps, and then any cached pfn qualifies, as in Linux.
        let ceiling = (limitPfn &+ 1) &- pages
        let (pfn, fromDepot) = rcache.cpus[cpu * IOVARcache.sizeClasses + k].locked { c -> (UInt64?, Bool) in
            var fromDepot = false
            if c.loaded.isEmpty {
                if !c.prev.isEmpty {
                    swap(&c.loaded, &c.prev)
                } else {
                    // The depot's full magazine replaces the empty loaded
                    // one, which becomes a spare.
                    fromDepot = rcache.depots[k].locked { d -> Bool in
                        guard var full = d.pop() else { return false }
                        swap(&full, &c.loaded)
                        d.putSpare(full)
                        return true
                    }
                }
            }
            let pfn = !c.loaded.isEmpty ? c.loaded.pop(atMost: ceiling) : nil
            if pfn == nil { c.misses += 1 } else { c.hits += 1 }
            return (pfn, fromDepot)
        }
        if fromDepot { reclaimDepot(sizeClass: k, now: rcache.clock()) }
        return pfn
    }

    /// __iova_rcache_insert(): into loaded, else into prev (swapped in),
    /// else the full loaded magazine goes to the depot and an empty one
    /// replaces it. False for sizes the cache does not hold.
    private func rcacheInsert(pfn: UInt64, pages: UInt64, cpu: Int) -> Bool {
        let k = IOVARcache.sizeClass(pages)
        guard k < IOVARcache.sizeClasses else { return false }
        precondition(cpu >= 0 && cpu < rcache.cpuCount, "no such CPU")
        let rcache = rcache
        let pushed = rcache.cpus[cpu * IOVARcache.sizeClasses + k].locked { c -> Bool in
            var pushed = false
            if c.loaded.isFull {
                if !c.prev.isFull {
                    swap(&c.loaded, &c.prev)
                } else {
                    rcache.depots[k].locked { d in d.push(&c.loaded) }
                    pushed = true
                }
            }
            c.loaded.push(pfn)
            return pushed
        }
        if pushed { reclaimDepot(sizeClass: k, now: rcache.clock()) }
        return true
    }

    private func reclaimDepot(sizeClass k: Int, now: UInt64) {
        let cpuCount = rcache.cpuCount
        while true {
            let victim = rcache.depots[k].locked { d -> IOVAMagazine? in
                switch d.reclaim {
                case .idle:
                    return nil
                case .pending:
                    d.reclaim = .due(now + IOVARcache.depotDelayNanos)
                    return nil
                case .due(let t):
                    guard now >= t else { return nil }
                    d.trimSpares()
                    guard d.size > cpuCount, let m = d.pop() else {
                        d.reclaim = .idle
                        return nil
                    }
                    // Rescheduled from when the work would have run.
                    d.reclaim = .due(t + IOVARcache.depotDelayNanos)
                    d.reclaims += 1
                    return m
                }
            }
            guard let victim else { return }
            returnToTree(victim, sizeClass: k)
        }
    }

    /// A magazine the depot work popped: its IOVAs go back to the tree with
    /// the depot lock dropped (as the work does), then it is a spare.
    private func returnToTree(_ m: consuming IOVAMagazine, sizeClass k: Int) {
        freeMagazine(m)
        var spare: IOVAMagazine? = consume m
        rcache.depots[k].locked { d in d.putSpare(spare.take()!) }
    }

    /// iova_magazine_free_pfns(): the magazine's IOVAs go back to the tree
    /// under one hold of the tree lock, and the magazine is empty.
    private func freeMagazine(_ m: borrowing IOVAMagazine) {
        tree.locked { t in
            for i in 0..<m.count { _ = t.free(pfn: m[i]) }
        }
        m.count = 0
    }
}
