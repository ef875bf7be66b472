// SPDX-License-Identifier: Apache-2.0
import CSVAKit
import CSVAKitCore
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// Layers 1 and 2: the simulated RAM with one ptdesc per frame, and the frame
/// allocator. The lowest engine layer: it calls nothing above it, and tells
/// the machine of a freed page table only through the hook it was given,
/// called with no engine lock held.
@_spi(Engine) public final class FrameMemory: @unchecked Sendable {
    // @unchecked: `memory` is immutable pointers; all else is locks.

    @usableFromInline package let memory: PhysicalMemory
    package let events: EventLog

    /// What the allocator's lock protects: the free lists, the virgin-memory
    /// cursor, the counters, and these descriptor fields of every frame:
    /// order, site, owner, alloc_step, lru_next/lru_prev. (The kind, level,
    /// flags and generation are single atomic words, written under this lock
    /// by alloc and free and read by walkers with none.)
    package struct State: Sendable {
        package var allocator: FrameAllocator
        package var counters = Counters()
        /// Ranges whose descriptors offline or online changed since boot: a
        /// reset zeroes the parts above the allocator's virgin cursor (those
        /// below it are restored with every descriptor there).
        package var touchedAboveCursor: [Range<Int>] = []
    }

    package struct Counters: Equatable {
        package var allocs = 0, frees = 0
        package var kernelTables = 0, userTables = 0, dataFrames = 0, iommuTables = 0
        package var offlineFrames = 0
        /// Offline frames in virgin memory (the allocator counts those as its own).
        package var offlineVirgin = 0
    }

    package let zone: RankedMutex<State>

    /// fail_nth for every allocation the engine makes on a call's behalf:
    /// frames here, PASIDs (SVA bind), vmalloc address ranges
    /// (Machine.vmallocRange) and IOVAs (DMADomains.allocIOVA) through the
    /// same countdown.
    package let failNth = FailNth()

    /// Told of every page-table frame that returns to the allocator. Copied
    /// out and called with no lock held.
    package let tableFreeHook = RankedMutex<HookBox<TableFreeHook>?>(.hook, nil)

    /// IOMMU_DEBUG_PAGEALLOC's page_ext and the check alloc and free make.
    package let debug: IOMMUDebugPagealloc

    /// Told of a frame the check found still mapped for DMA when it was
    /// allocated or freed. Copied out and called with no lock held.
    package let leakHook = RankedMutex<HookBox<LeakHook>?>(.hook, nil)

    /// Leaks found while allocating a page table, whose callers hold a
    /// page-table lock (the walk's ptl, a DMA domain's tables lock): kept
    /// here until the machine can report them with no lock held
    /// (`Machine.allocatingTables`). Protected by its lock; the count lets the
    /// drain skip the lock when there is nothing.
    package let pendingLeaks = RankedMutex<[PendingLeak]>(.hook, [])
    package let pendingLeakCount = Atomic<Int>(0)

    /// What boot left, for a reset: the allocator's state and the
    /// descriptors below its virgin cursor (the frames' bytes are in
    /// `memory.dirty`'s boot image). Written once, by `takeBootImage`,
    /// before the machine is shared.
    private var bootState: State?
    private var bootDescriptors: [Ptdesc] = []
    /// The allocations fail_nth had counted at the end of boot (a new
    /// machine's first svakit_fail_nth reports them).
    private var bootAllocationsSeen = 0

    package init(frames: Int, policy: ReusePolicy, events: EventLog, debugMode: IOMMUDebugMode = .off,
         debugKey: UnsafeMutablePointer<Int32>) throws(SVAError) {
        memory = try PhysicalMemory(frames: frames)
        self.events = events
        zone = RankedMutex(.memory, State(allocator: FrameAllocator(frames: frames, policy: policy)))
        do throws(SVAError) {
            debug = try IOMMUDebugPagealloc(mode: debugMode, key: debugKey, memory: memory)
        } catch {
            memory.unmap()
            throw error
        }
    }

    deinit { memory.unmap() }

    /// Frames of simulated memory.
    @inlinable @_spi(Engine) public var frameCount: Int { memory.frameCount }
    /// Bytes of simulated memory.
    @inlinable @_spi(Engine) public var bytes: UInt64 { UInt64(memory.frameCount) << 12 }

    package func checkFrame(_ pfn: UInt64) throws(SVAError) -> PFN {
        guard pfn < UInt64(memory.frameCount) else { throw .outOfRange }
        return PFN(Int(pfn))
    }

    // MARK: - alloc_pages and __free_pages

    /// Allocates 2^order frames and fills their descriptors. Page tables come
    /// back zeroed (as with __GFP_ZERO); data keeps whatever the frame held.
    package func alloc(order: Int, kind: FrameKind, level: Int = 0, flags: PtdescFlags = [],
               site: Site, owner: UInt16 = 0) throws(SVAError) -> PFN {
        guard order >= 0, order <= maxOrder else { throw .invalidArgument }
        let pfn = try zone.locked { s throws(SVAError) in
            if failNth.shouldFail(.frame) { throw InjectableAllocation.frame.error }
            // Offline frames the virgin cursor skipped, even when the take
            // fails, are no longer offline virgin memory.
            defer { s.counters.offlineVirgin -= s.allocator.takeSkippedOffline() }
            let pfn = try s.allocator.take(order: order, memory.descs)
            let step = UInt32(truncatingIfNeeded: events.nextStep)
            for i in 0..<(1 << order) {
                let p = pfn + i
                memory[p].order = i == 0 ? UInt8(order) : 0
                memory[p].site = site.rawValue
                memory[p].owner = owner
                memory[p].alloc_step = step
                memory[p].lru_next = PFN.none.rawValue
                memory[p].lru_prev = PFN.none.rawValue
                memory[p].pt_list_next = PFN.none.rawValue
                memory[p].map_count = 0
                memory.setFlags(p, i == 0 ? flags : flags.union(.tail))
                memory.setLevel(p, level)
                memory.setKind(p, kind)
            }
            s.adjust(kind, by: 1 << order)
            s.counters.allocs += 1
            return pfn
        }
        if kind.isTable { for i in 0..<(1 << order) { memory.zeroTable(pfn + i) } }
        events.record(.frameAlloc, site: site, pfn: pfn, desc: memory.snapshot(pfn))
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        if _slowPath(debug.enabled) {
            // A table's caller holds a page-table lock: the report waits.
            checkUnmapped(pfn, frames: 1 << order, .atAlloc, site: site, deferred: kind.isTable)
        }
        #endif
        return pfn
    }

    /// debug_pagealloc_{map,unmap}_pages' iommu_debug_check_unmapped:
    /// each frame of the block still counted as mapped is a leak of its
    /// own, as __iommu_debug_check_unmapped warns page by page; each goes to
    /// the leak hook (no lock held). Returns whether any was.
    @discardableResult
    package func checkUnmapped(_ pfn: PFN, frames n: Int, _ when: LeakCheck, site: Site, deferred: Bool = false) -> Bool {
        var found = false
        debug.forEachMapped(first: pfn.index, frames: n) { p, count in
            found = true
            debug.leaks.add(1, ordering: .relaxed)
            if deferred {
                pendingLeaks.locked { $0.append(PendingLeak(pfn: p, count: count, when: when, site: site)) }
                pendingLeakCount.add(1, ordering: .releasing)
            } else if let hook = leakHook.locked({ $0 })?.fn {
                LockRank.assertNoneHeld("the leak hook")
                hook(p, count, when, site)
            }
        }
        return found
    }

    /// __free_pages: returns an allocated block. Every frame's kind becomes
    /// free and then its generation changes (the seqcount write a walker's
    /// re-check sees); its allocation history (site, owner, step) stays.
    /// Page tables must reach here through pagetable_free; the hook is
    /// called after, with no lock held.
    package func free(_ pfn: PFN, site: Site) {
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        // Before the frame goes, as free_pages_prepare checks it.
        if _slowPath(debug.enabled) {
            checkUnmapped(pfn, frames: 1 << Int(memory[pfn].order), .atFree, site: site)
        }
        #endif
        let before = zone.locked { s in
            let before = memory.snapshot(pfn)
            let n = 1 << Int(before.order)
            for i in 0..<n {
                let p = pfn + i
                memory.setKind(p, .free)
                memory.setLevel(p, 0)
                memory.setFlags(p, [])
                memory.bumpGeneration(p)
            }
            s.adjust(before.frameKind, by: -n)
            s.counters.frees += 1
            s.allocator.give(pfn, order: Int(before.order), memory.descs)
            return before
        }
        // The event shows what the frame was and the generation it has now.
        var shown = before
        shown.generation = memory.generation(pfn)
        events.record(.frameFree, site: site, pfn: pfn, desc: shown)
        if before.frameKind.isTable, let hook = tableFreeHook.locked({ $0 })?.fn {
            LockRank.assertNoneHeld("the table-free hook")
            hook(pfn, Int(before.level), site)
        }
    }

    /// The descriptor of an allocated block head, or the error that freeing
    /// `pfn` deserves.
    package func allocatedHead(_ pfn: PFN) throws(SVAError) -> Ptdesc {
        guard memory.contains(pfn) else { throw .outOfRange }
        let d = descriptor(pfn)
        switch d.frameKind {
        case .free: throw d.generation > 0 ? .doubleFree : .notAllocated
        case .offline: throw .notAllocated
        default: if d.ptFlags.contains(.tail) { throw .notAllocated }
        }
        return d
    }

    /// Frees a data block on behalf of a caller (svakit_frame_free): only
    /// one the caller allocated (site .api); vmalloc's pages belong to vfree,
    /// which would free them again after they were reused.
    package func freeData(_ pfn: PFN, site: Site) throws(SVAError) {
        let d = try allocatedHead(pfn)
        guard d.frameKind == .data, d.site == Site.api.rawValue else { throw .wrongAPI }
        free(pfn, site: site)
    }

    /// A consistent copy of a descriptor (under the allocator's lock).
    package func descriptor(_ pfn: PFN) -> Ptdesc { zone.locked { _ in memory.snapshot(pfn) } }

    package var counters: Counters { zone.locked { $0.counters } }

    package var freeFrameCount: Int {
        zone.locked { s in s.allocator.freeFrames(offlineAboveCursor: s.counters.offlineVirgin) }
    }

    // MARK: - Boot image and reset

    /// The end of boot: remembers the allocator's state, the descriptors it
    /// has handed out and the bytes boot wrote (`svk_dirty_take_boot_image`),
    /// which a reset returns to. Called once, by the machine's init.
    package func takeBootImage() throws(SVAError) {
        let s = zone.locked { $0 }
        let cursor = s.allocator.virginCursor
        bootState = s
        bootAllocationsSeen = failNth.seenCount
        bootDescriptors = Array(UnsafeBufferPointer(start: memory.descs, count: cursor))
        guard svk_dirty_take_boot_image(memory.dirty, memory.bytes.assumingMemoryBound(to: UInt8.self),
                                        UInt64(cursor)) == 0 else { throw .outOfMemory }
    }

    /// Back to boot, in time proportional to what changed since: the frames
    /// written since get their boot bytes again (zeros, or the boot image's
    /// copy), the descriptors below the allocator's cursor and the ranges
    /// hotplug touched above it get theirs, and the allocator, its counters,
    /// fail_nth, the sanitizer's counts and the hooks are as boot left them.
    /// The machine is quiescent (Machine.reset). Returns the frames restored.
    package func resetToBoot() -> Int {
        guard let boot = bootState else { return 0 }
        let restored = Int(svk_dirty_restore(memory.dirty, memory.bytes.assumingMemoryBound(to: UInt8.self)))
        zone.locked { s in
            let stride = MemoryLayout<Ptdesc>.stride
            let bootCursor = bootDescriptors.count
            bootDescriptors.withUnsafeBufferPointer { memory.descs.update(from: $0.baseAddress!, count: bootCursor) }
            let cursor = s.allocator.virginCursor
            if cursor > bootCursor {
                UnsafeMutableRawPointer(memory.descs + bootCursor).initializeMemory(
                    as: UInt8.self, repeating: 0, count: (cursor - bootCursor) * stride)
            }
            for r in s.touchedAboveCursor where r.upperBound > cursor {
                let lo = max(r.lowerBound, cursor)
                UnsafeMutableRawPointer(memory.descs + lo).initializeMemory(
                    as: UInt8.self, repeating: 0, count: (r.upperBound - lo) * stride)
            }
            s = boot
        }
        failNth.restore(seen: bootAllocationsSeen)
        tableFreeHook.locked { $0 = nil }
        pendingLeaks.locked { $0 = [] }
        pendingLeakCount.store(0, ordering: .relaxed)
        debug.resetToBoot()
        return restored
    }

    // MARK: - Offline and online (memory hot-remove, hot-add)

    /// Takes the free frames of [first, end) off the allocator and marks them
    /// offline; refuses (changing nothing) when one is in use or offline.
    package func offline(_ first: Int, _ end: Int) throws(SVAError) {
        try zone.locked { s throws(SVAError) in
            var i = first
            while i < end {
                switch memory.snapshot(PFN(i)).frameKind {
                case .free: break
                case .offline: throw SVAError.notFound
                default: throw SVAError.busy
                }
                i += s.allocator.isVirgin(PFN(i)) ? 1 : 1 << Int(memory[PFN(i)].order)
            }
            i = first
            while i < end {
                if s.allocator.isVirgin(PFN(i)) { s.counters.offlineVirgin += 1; i += 1; continue }
                let order = Int(memory[PFN(i)].order)
                s.allocator.unlink(PFN(i), order: order, memory.descs)
                i += 1 << order
            }
            for f in first..<end { memory.setKind(PFN(f), .offline) }
            s.counters.offlineFrames += end - first
            s.touchedAboveCursor.append(first..<end)
        }
    }

    /// Whether every frame of [first, end) is offline.
    package func isOffline(_ first: Int, _ end: Int) -> Bool {
        (first..<end).allSatisfy { memory.kind(PFN($0)) == FrameKind.offline.rawValue }
    }

    /// Gives an offline range back to the allocator. The sanitizer's counts
    /// of the range start again at zero, as page_ext does for memory that
    /// comes online.
    package func online(_ first: Int, _ end: Int) {
        debug.reset(first: first, frames: end - first)
        zone.locked { s in
            for f in first..<end { memory.setKind(PFN(f), .free) }
            s.touchedAboveCursor.append(first..<end)
            var f = first
            while f < end {
                if s.allocator.isVirgin(PFN(f)) {
                    s.counters.offlineVirgin -= 1
                    f += 1
                } else {
                    s.allocator.give(PFN(f), order: maxOrder, memory.descs)
                    f += 1 << maxOrder
                }
            }
            s.counters.offlineFrames -= end - first
        }
    }

}

/// fail_nth, like iommufd's: a countdown of the engine's internal
/// allocations (frames, PASIDs, vmalloc address ranges, IOVAs); the one that
/// reaches zero fails, with the errno its real exhaustion returns (-ENOMEM
/// for frames, -ENOSPC for PASIDs and address ranges). Lock-free, because
/// those allocations happen under different engine locks.
package final class FailNth: Sendable {
    private let countdown = Atomic<Int>(0)
    private let seen = Atomic<Int>(0)
    private let failed = Atomic<UInt8>(0)

    /// Called by each allocation before it allocates: true when it must
    /// fail (with `what.error`).
    package func shouldFail(_ what: InjectableAllocation) -> Bool {
        seen.add(1, ordering: .relaxed)
        var c = countdown.load(ordering: .relaxed)
        while c > 0 {
            let (done, now) = countdown.compareExchange(expected: c, desired: c - 1, ordering: .relaxed)
            if done {
                if c == 1 { failed.store(what.rawValue, ordering: .relaxed) }
                return c == 1
            }
            c = now
        }
        return false
    }

    /// Makes the n-th allocation from now fail (0 disarms). Returns the
    /// allocations made since the previous call.
    package func arm(_ n: Int) -> Int {
        failed.store(0, ordering: .relaxed)
        let made = seen.exchange(0, ordering: .relaxed)
        countdown.store(n, ordering: .relaxed)
        return made
    }

    /// Allocations counted since the last arm() (boot's, on a new machine).
    package var seenCount: Int { seen.load(ordering: .relaxed) }

    /// Disarmed, with `n` allocations counted: the state boot left (a reset).
    package func restore(seen n: Int) {
        failed.store(0, ordering: .relaxed)
        countdown.store(0, ordering: .relaxed)
        seen.store(n, ordering: .relaxed)
    }

    /// The allocation made to fail since the last arm(), if one was.
    package var injected: InjectableAllocation? { InjectableAllocation(rawValue: failed.load(ordering: .relaxed)) }
}

/// What fail_nth can make fail, each with the error its exhaustion returns.
public enum InjectableAllocation: UInt8, Sendable {
    /// A frame (alloc_pages): -ENOMEM.
    case frame = 1
    /// A PASID (iommu_alloc_global_pasid, in a bind): -ENOSPC.
    case pasid
    /// A vmalloc address range (alloc_vmap_area): -ENOSPC.
    case vmallocRange
    /// An IOVA range (alloc_iova_fast, in a DMA map): -ENOSPC.
    case iova

    /// The error the allocation's real exhaustion returns.
    public var error: SVAError { self == .frame ? .outOfMemory : .noSpace }
}

extension FrameMemory.State {
    package mutating func adjust(_ kind: FrameKind, by n: Int) {
        switch kind {
        case .kernelTable: counters.kernelTables += n
        case .userTable: counters.userTables += n
        case .iommuTable: counters.iommuTables += n
        case .data: counters.dataFrames += n
        case .offline: counters.offlineFrames += n
        case .free: break
        }
    }
}

/// When the sanitizer's check ran (enum svakit_report_kind's leak kinds).
public enum LeakCheck: UInt32, Sendable {
    /// The frame was being freed.
    case atFree = 1
    /// The frame had just been allocated.
    case atAlloc = 2
    /// `svakit_iommu_debug_check_unmapped` asked.
    case atCheck = 3
}

/// A leak the allocator found with a lock held, waiting to be reported.
package struct PendingLeak: Sendable {
    package var pfn: PFN, count: Int32, when: LeakCheck, site: Site
}

/// Told of a frame the sanitizer found counted as mapped: the frame, its
/// count, when the check ran and the path that allocated or freed it.
package typealias LeakHook = @Sendable (_ pfn: PFN, _ count: Int32, _ when: LeakCheck, _ site: Site) -> Void

/// Told of each page-table frame as it returns to the allocator: its frame,
/// its table level and the path that freed it. Runs with no lock held; set
/// with `Machine/setTableFreeHook(_:)`.
public typealias TableFreeHook = @Sendable (_ pfn: PFN, _ level: Int, _ site: Site) -> Void
