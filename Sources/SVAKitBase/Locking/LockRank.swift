// SPDX-License-Identifier: Apache-2.0
// Not internal: the lock paths below are inlinable into the layers above,
// which must see the per-thread rank word they read.
import CSVAKitCore
import Synchronization
#if SVAKIT_TSAN && canImport(Glibc)
import Glibc
#endif

/// The engine's locks, outermost first. A thread may take a lock only when
/// every lock it already holds has a lower rank; debug builds (what
/// `swift test` runs) trap on any other acquisition, so a test that drives
/// an out-of-order path fails at once instead of deadlocking one day.
///
/// Why this order (docs/ARCHITECTURE.md, "Locks"):
/// - `sva` first (iommu_sva_lock): bind and unbind look up the mm's root
///   (page tables) and attach PASIDs through the core while the SVA
///   bookkeeping is consistent.
/// - `iommuCore` next (group->mutex): a PASID attachment or a default domain
///   changes under it, with the IOMMU's lock taken inside to write the PASID
///   entry. SVA takes it under its own lock; the DMA layer alone.
/// - `addressSpaces` (the mm list) before `pageTable`: an mm is found, then
///   its tables are changed. `domainList` likewise before `domainTables`.
/// - `pageTable` before `vmalloc` and `memory`: a mapping allocates tables;
///   `domainTables` (a DMA domain's tables) before `memory` for the same
///   reason. A CPU mm's and a domain's tables are never locked together.
/// - `flushQueue` before `fence` and `iommu`: a ring's lock is taken alone
///   to queue and to take finished entries; those are released after it
///   (IOVAs: `iovaRcache` ...; parked frames: `quarantine`; freed tables:
///   `memory`).
/// - `fence` before `iommu`: a fence is serialised with other fences of its
///   IOMMU, then takes the IOMMU's lock briefly while it waits for walks.
/// - `iommu` after the page tables: bind reads a root, then installs it.
/// - `deferred` before `memory`: queueing never allocates, but the work's
///   splice may be followed by frees with no lock between them.
/// - `iovaRcache` → `iovaDepot` → `iovaTree`, as iova.c nests them
///   (docs/KERNEL-MODEL.md §4.5): a CPU's magazine swap pushes to or pops
///   from its size class's depot under the CPU lock, and flushing a magazine
///   frees its IOVAs into the tree under the CPU or the depot lock. The IOVA
///   locks call nothing outside the allocator, so they sit above `memory`
///   and need nothing below them; the DMA layer takes them with no other
///   engine lock held, after `deferred` because a deferred-free work item
///   may one day return IOVAs.
/// - `swiotlbArea` after them: a bounce's slot search and release take one
///   area's lock with no other engine lock held and call nothing.
/// - `memory`, then the logs and the hook slots, which call nothing.
@_spi(Engine) public enum LockRank: UInt8, Comparable, CustomStringConvertible {
    case sva = 1
    case iommuCore = 2
    case addressSpaces = 3
    /// The list of DMA domains (`DMADomains`): held only to find or change
    /// it, like the mm list.
    case domainList = 4
    case pageTable = 5
    /// One DMA domain's tables (`IOMMUDomain`): serialises their writers.
    case domainTables = 6
    case vmalloc = 7
    /// One flush-queue ring of a DMA-FQ domain (`FlushQueue`): held to queue
    /// an entry and to take the entries a finished flush covers. A full
    /// ring's domain-wide flush runs with it dropped (queue_iova flushes
    /// under fq->lock; here no engine lock is held while a driver is
    /// called), and the entries are released after it.
    case flushQueue = 8
    case fence = 9
    case iommu = 10
    case deferred = 11
    /// One shard of a DMA domain's live mappings (`DMACookie`): taken alone,
    /// to record a mapping after dma_map and to claim it at dma_unmap.
    case dmaMappings = 12
    /// The machine-wide quarantine (`DMADomains.quarantine`): frames unmapped
    /// lazily whose flush has not finished, and the frees parked behind
    /// them. Taken alone when a flush releases them; frees after it.
    case quarantine = 13
    /// One CPU's `loaded` and `prev` magazines of one size class
    /// (`IOVARcache`). Outermost of the IOVA locks: alloc/free take it first
    /// and may go on to the depot and the tree. Never two at once.
    case iovaRcache = 14
    /// One size class's depot of full magazines, its size and its reclaim
    /// deadline (`IOVARcache`). Taken under a CPU's rcache lock to push or
    /// pop a magazine; may free a magazine's IOVAs into the tree.
    case iovaDepot = 15
    /// The IOVA tree (`IOVADomain`): every range, free, allocated or
    /// reserved, and its counters. Innermost of the IOVA locks: it calls
    /// nothing.
    case iovaTree = 16
    /// One area of the swiotlb bounce pool (`SWIOTLB`): its search index,
    /// used count and slots (io_tlb_area's spinlock). Taken alone, with no
    /// other engine lock held, and nothing is called under it.
    case swiotlbArea = 17
    case memory = 18
    case reports = 19
    case events = 20
    case hook = 21

    /// Whether the explorer schedules around this lock. The report and
    /// event logs and the hook slots guard bookkeeping only and contain no
    /// schedule point, so each of their critical sections runs inside one
    /// step: their order changes no verdict, and modelling them would make
    /// every two actors that log conflict.
    @inlinable public var isScheduled: Bool { self < .reports }

    /// Orders ranks: outermost first.
    @_spi(Engine) public static func < (a: LockRank, b: LockRank) -> Bool { a.rawValue < b.rawValue }

    /// The lock's name in a lock-order report.
    @_spi(Engine) public var description: String {
        switch self {
        case .sva: "iommu_sva_lock"
        case .iommuCore: "IOMMU core"
        case .addressSpaces: "address-space list"
        case .domainList: "DMA domain list"
        case .pageTable: "page_table_lock"
        case .domainTables: "DMA domain tables"
        case .vmalloc: "vmap_area_lock"
        case .flushQueue: "flush queue"
        case .dmaMappings: "DMA mappings"
        case .quarantine: "DMA quarantine"
        case .iommu: "IOMMU"
        case .fence: "IOMMU fence"
        case .deferred: "deferred-free list"
        case .iovaRcache: "IOVA CPU rcache"
        case .iovaDepot: "IOVA depot"
        case .iovaTree: "IOVA tree"
        case .swiotlbArea: "swiotlb area"
        case .memory: "frame allocator"
        case .reports: "report log"
        case .events: "event log"
        case .hook: "hook slot"
        }
    }

    /// Records that this thread takes a lock of `self`; traps when a lock of
    /// the same or a higher rank is already held.
    @inlinable @inline(__always)
    @_spi(Engine) public func acquire() {
        #if DEBUG
        let held = svk_held_ranks()
        let bit: UInt64 = 1 << UInt64(rawValue)
        if held >= bit {
            let highest = LockRank(rawValue: UInt8(63 - held.leadingZeroBitCount)).map { "\($0)" } ?? "?"
            fatalError("lock order violation: taking the \(self) lock while holding the \(highest) lock")
        }
        svk_set_held_ranks(held | bit)
        #endif
    }

    /// Records that this thread released a lock of `self`.
    @inlinable @inline(__always)
    @_spi(Engine) public func release() {
        #if DEBUG
        svk_set_held_ranks(svk_held_ranks() & ~(1 << UInt64(rawValue)))
        #endif
    }

    /// Traps unless the calling thread holds a lock of this rank: what a
    /// `...Locked` helper asserts, as iova.c's private_find_iova asserts
    /// iova_rbtree_lock.
    @inline(__always)
    package func assertHeld() {
        #if DEBUG
        if svk_held_ranks() & (1 << UInt64(rawValue)) == 0 { fatalError("the \(self) lock is not held") }
        #endif
    }

    /// Traps when the calling thread holds any engine lock: hooks, drivers
    /// and report handlers are called only through here.
    @inline(__always)
    package static func assertNoneHeld(_ what: StaticString) {
        #if DEBUG
        let held = svk_held_ranks()
        if held != 0 {
            let highest = LockRank(rawValue: UInt8(63 - held.leadingZeroBitCount)).map { "\($0)" } ?? "?"
            fatalError("\(what) called with the \(highest) lock held")
        }
        #endif
    }
}

/// A Mutex with a rank. Each engine lock is one of these, and says in its
/// declaration what it protects.
///
/// Under `-DSVAKIT_TSAN` a pthread mutex, which ThreadSanitizer intercepts,
/// is taken around the Mutex, so the Mutex is never contended and TSan sees
/// every hand-over (Synchronization's contended path is uninstrumented, and
/// the access to the value begins before any annotation could run:
/// docs/BUILDING.md §7).
@_spi(Engine) public struct RankedMutex<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    // @unchecked: Value is reached only through `locked`, under the Mutex.
    // Inlinable (`locked` with its stored parts): every layer above takes
    // these locks on its hot paths, and an unspecialised generic call across
    // modules per acquisition costs more than the lock itself.
    @usableFromInline package let rank: LockRank
    @usableFromInline let mutex: Mutex<Value>
    #if SVAKIT_TSAN
    @usableFromInline let tsanLock: UnsafeMutablePointer<pthread_mutex_t>
    #endif
    #if SVAKIT_SCHEDULE_POINTS
    /// The lock's identity for the schedule explorer: the address of a byte
    /// it owns (the Mutex itself may move with its owner before it is shared).
    @usableFromInline let scheduleToken: UnsafeMutablePointer<UInt8>
    #endif

    package init(_ rank: LockRank, _ value: consuming sending Value) {
        self.rank = rank
        mutex = Mutex(value)
        #if SVAKIT_TSAN
        tsanLock = .allocate(capacity: 1)
        pthread_mutex_init(tsanLock, nil)
        #endif
        #if SVAKIT_SCHEDULE_POINTS
        scheduleToken = .allocate(capacity: 1)
        #endif
    }

    #if SVAKIT_TSAN || SVAKIT_SCHEDULE_POINTS
    deinit {
        #if SVAKIT_TSAN
        pthread_mutex_destroy(tsanLock)
        tsanLock.deallocate()
        #endif
        #if SVAKIT_SCHEDULE_POINTS
        scheduleToken.deallocate()
        #endif
    }
    #endif

    /// Runs `body` with the value, under the lock, its rank checked in debug builds.
    @inlinable @inline(__always)
    @_spi(Engine) public func locked<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        #if SVAKIT_SCHEDULE_POINTS
        // The explorer's points: before the acquire (the actor is not run
        // while another holds the lock) and before the release (the lock is
        // the holder's until that point is executed).
        let object = ScheduleObject.lock(UInt64(UInt(bitPattern: scheduleToken)))
        let scheduled = rank.isScheduled
        if scheduled { SchedulePoints.point(.acquire, object, UInt64(rank.rawValue)) }
        #endif
        rank.acquire()
        defer { rank.release() }
        #if SVAKIT_TSAN
        pthread_mutex_lock(tsanLock)
        defer { pthread_mutex_unlock(tsanLock) }
        #endif
        #if SVAKIT_SCHEDULE_POINTS
        return try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            defer { if scheduled { SchedulePoints.point(.release, object, UInt64(rank.rawValue)) } }
            return try body(&value)
        }
        #else
        return try mutex.withLock(body)
        #endif
    }
}

/// A hook or handler as a lock's value. Boxed, because a bare function type
/// passed `inout` through the generic lock is reabstracted on every access,
/// each time wrapping the stored closure in one more thunk.
package final class HookBox<F>: @unchecked Sendable {
    // @unchecked: F is a @Sendable function type at every use.
    package let fn: F
    package init(_ fn: F) { self.fn = fn }
}

/// A RankedMutex behind a reference, so locks can sit in an array (per-CPU
/// rings, shards of a table).
@_spi(Engine) public final class LockBox<Value>: @unchecked Sendable {
    // @unchecked: Value is reached only through `locked`.
    @usableFromInline let lock: RankedMutex<Value>

    package init(_ rank: LockRank, _ value: consuming sending Value) { lock = RankedMutex(rank, value) }

    /// Runs `body` with the value under the boxed lock.
    @inlinable @inline(__always)
    @_spi(Engine) public func locked<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try lock.locked(body)
    }
}
