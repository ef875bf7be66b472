// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSVAKit
import CSVAKitCore
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// IOMMU_DEBUG_PAGEALLOC's page_ext (docs/KERNEL-MODEL.md §5): one 4-byte
/// mapping count per frame, allocated only when the machine boots with the
/// sanitizer on, and the counters of what it saw. The memory layer owns it
/// because the page allocator checks it; the DMA layer raises and lowers it.
///
/// Every caller tests the static key first (`enabled`, the header's
/// `svakit_iommu_debug_pagealloc_enabled` on the handle), as the kernel's
/// inline wrappers test `iommu_debug_initialized`; with the sanitizer
/// compiled out (`SVAKIT_IOMMU_DEBUG_PAGEALLOC` undefined) the calls are not
/// compiled at all.
///
/// Counts are per 4 KiB frame: a map raises every frame it covers, an unmap
/// lowers every frame it removes. Linux counts one page per granule of the
/// domain's smallest page size; with a 4 KiB granule the two agree, and
/// with a 64 KiB one SVAKit also sees the frames past each granule's first.
/// Frames with no descriptor (the MMIO window, anything past memory) and
/// offline frames are skipped, as `page_ext_from_phys()` returns NULL for
/// them.
///
/// No lock: the counts are relaxed atomics, as in Linux, and the check is
/// racy by design (a map right after it goes unseen until the frame's next
/// allocation or free), never falsely positive.
package final class IOMMUDebugPagealloc: @unchecked Sendable {
    // @unchecked: immutable pointers; the counts and counters are atomics.

    package let mode: IOMMUDebugMode
    /// The static key iommu_debug_initialized, in the word the machine
    /// gives it (the C handle's, which the header's inline gate reads).
    private let key: UnsafeMutablePointer<Int32>
    /// One entry per frame, nil when the sanitizer is off: the count
    /// (Linux's 4-byte `struct iommu_debug_metadata`) and, beyond Linux, the
    /// step at which it last left zero (the report's "mapped since").
    private let refs: UnsafeMutablePointer<Int32>?

    /// Bytes of page_ext per frame.
    package static let entryBytes = 8
    private let memory: PhysicalMemory

    /// The counters `svakit_iommu_debug_stats` reports.
    package let raised = Atomic<Int>(0), lowered = Atomic<Int>(0), reraised = Atomic<Int>(0)
    package let skipped = Atomic<Int>(0), overflows = Atomic<Int>(0), underflows = Atomic<Int>(0)
    package let unmappedMore = Atomic<Int>(0), leaks = Atomic<Int>(0)

    package init(mode: IOMMUDebugMode, key: UnsafeMutablePointer<Int32>,
         memory: PhysicalMemory) throws(SVAError) {
        self.mode = mode
        self.key = key
        self.memory = memory
        guard mode != .off else {
            refs = nil
            return
        }
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        let bytes = memory.frameCount * Self.entryBytes
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard p != UnsafeMutableRawPointer(bitPattern: -1), let p else { throw .outOfMemory }
        refs = p.bindMemory(to: Int32.self, capacity: 2 * memory.frameCount)
        // iommu_debug_init(): on at boot, never off again.
        svk_store_key(key, 1)
        #else
        throw .notSupported
        #endif
    }

    deinit {
        if let refs { munmap(UnsafeMutableRawPointer(refs), memory.frameCount * Self.entryBytes) }
    }

    /// The static key, as the header's inline gate reads it.
    @inline(__always) package var enabled: Bool {
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        svk_load_key(key) != 0
        #else
        false
        #endif
    }

    /// The count of frame `pfn` (page_ext entry word 0; the caller has
    /// checked that a descriptor backs it).
    @inline(__always) private func countCell(_ pfn: Int) -> UnsafeMutablePointer<Int32> { refs! + 2 &* pfn }

    /// The "mapped since" stamp of frame `pfn` (word 1).
    @inline(__always) private func stampCell(_ pfn: Int) -> UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(refs! + 2 &* pfn + 1).assumingMemoryBound(to: UInt32.self)
    }

    /// Calls `body(first, count)` for the parts of [first, first + n) that
    /// have descriptors: not past memory (the MMIO window, holes), not in an
    /// offline section (hot-remove takes whole sections, so one kind test a
    /// section decides it, as page_ext_from_phys' pfn_to_online_page does).
    /// Returns the frames skipped.
    @inline(__always)
    private func forEachBacked(_ first: Int, _ n: Int, _ body: (Int, Int) -> Void) -> Int {
        var f = first, skipped = 0
        let end = first + n
        while f < end {
            let sectionEnd = min(end, (f / sectionPages + 1) * sectionPages)
            if f >= memory.frameCount {
                return skipped + (end - f)
            }
            let stop = min(sectionEnd, memory.frameCount)
            if memory.kind(PFN(f)) == FrameKind.offline.rawValue {
                skipped += stop - f
            } else {
                body(f, stop - f)
            }
            f = stop
        }
        return skipped
    }

    /// iommu_debug_map's inc for `frames` frames from `first`: after a map.
    /// A frame going from 0 to 1 takes `stamp` (the machine's step) as its
    /// "mapped since". The raises are counted in `raised`, or with
    /// `again` (the tail of a short unmap, linux mode) in `reraised` only.
    /// Returns the raises refused at the maximum (the caller warns).
    package func raise(first: Int, frames n: Int, stamp: UInt64, again: Bool = false) -> Int {
        guard refs != nil else { return 0 }
        var over = 0
        let s = UInt32(truncatingIfNeeded: stamp)
        let skip = forEachBacked(first, n) { f, k in
            for p in f ..< f + k {
                switch svk_ref_raise(countCell(p)) {
                case 0: svk_store32_relaxed(stampCell(p), s)
                case Int32.max: over += 1
                default: break
                }
            }
        }
        if again {
            reraised.add(n - skip - over, ordering: .relaxed)
        } else {
            raised.add(n - skip - over, ordering: .relaxed)
        }
        if skip > 0 { skipped.add(skip, ordering: .relaxed) }
        if over > 0 { overflows.add(over, ordering: .relaxed) }
        return over
    }

    /// iommu_debug_unmap's dec for `frames` frames from `first`. Returns
    /// the lowers refused at zero (the caller warns).
    package func lower(first: Int, frames n: Int) -> Int {
        guard refs != nil else { return 0 }
        var under = 0
        let skip = forEachBacked(first, n) { f, k in
            for p in f ..< f + k where svk_ref_lower(countCell(p)) <= 0 { under += 1 }
        }
        lowered.add(n - skip - under, ordering: .relaxed)
        if skip > 0 { skipped.add(skip, ordering: .relaxed) }
        if under > 0 { underflows.add(under, ordering: .relaxed) }
        return under
    }

    /// Zeroes the counts and stamps of [first, first + n) (memory coming
    /// online gets a fresh page_ext).
    package func reset(first: Int, frames n: Int) {
        guard refs != nil else { return }
        for f in first ..< min(first + n, memory.frameCount) {
            svk_ref_store(countCell(f), 0)
            svk_store32_relaxed(stampCell(f), 0)
        }
    }

    /// Back to boot (Machine.reset): every count and stamp zero, the
    /// counters zero, the test hook gone, WARN_ON_ONCE armed again. The
    /// host drops the page_ext pages the counts touched (their cost).
    package func resetToBoot() {
        if let refs {
            _ = madvise(UnsafeMutableRawPointer(refs), memory.frameCount * Self.entryBytes, MADV_DONTNEED)
        }
        raised.store(0, ordering: .relaxed)
        lowered.store(0, ordering: .relaxed)
        reraised.store(0, ordering: .relaxed)
        skipped.store(0, ordering: .relaxed)
        overflows.store(0, ordering: .relaxed)
        underflows.store(0, ordering: .relaxed)
        unmappedMore.store(0, ordering: .relaxed)
        leaks.store(0, ordering: .relaxed)
        afterUnmapBegin.locked { $0 = nil }
        afterUnmapBeginArmed.store(false, ordering: .relaxed)
        warnedUnmappedMore.store(false, ordering: .relaxed)
    }

    /// A frame's count; 0 for a frame without one.
    package func count(_ pfn: Int) -> Int32 {
        guard refs != nil, pfn >= 0, pfn < memory.frameCount else { return 0 }
        return svk_ref_load(countCell(pfn))
    }

    /// The step (low 32 bits) at which the frame's count last left zero.
    package func mappedSince(_ pfn: Int) -> UInt32? {
        guard refs != nil, pfn >= 0, pfn < memory.frameCount, count(pfn) != 0 else { return nil }
        return svk_load32_relaxed(stampCell(pfn))
    }

    /// __iommu_debug_check_unmapped's loop: `body` with each frame of
    /// [first, first + n) still counted, and its count, in order. (The
    /// caller reports each.)
    package func forEachMapped(first: Int, frames n: Int, _ body: (PFN, Int32) -> Void) {
        guard refs != nil else { return }
        for f in first ..< min(first + n, memory.frameCount) {
            let c = svk_ref_load(countCell(f))
            if c != 0 { body(PFN(f), c) }
        }
    }

    /// Tests only: called once, after the next linux-mode unmap_begin, with
    /// no lock held (to drive a second unmap into the gap deterministically).
    package let afterUnmapBegin = RankedMutex<HookBox<@Sendable () -> Void>?>(.hook, nil)

    /// Whether `afterUnmapBegin` holds a hook (so unmaps skip its lock).
    package let afterUnmapBeginArmed = Atomic<Bool>(false)

    package func takeAfterUnmapBegin() -> (@Sendable () -> Void)? {
        guard afterUnmapBeginArmed.exchange(false, ordering: .acquiring) else { return nil }
        return afterUnmapBegin.locked { (h: inout HookBox<@Sendable () -> Void>?) -> (@Sendable () -> Void)? in
            let fn = h?.fn
            h = nil
            return fn
        }
    }

    /// WARN_ON_ONCE's once: true the first time only.
    private let warnedUnmappedMore = Atomic<Bool>(false)
    package func firstUnmappedMore() -> Bool {
        unmappedMore.add(1, ordering: .relaxed)
        return !warnedUnmappedMore.exchange(true, ordering: .relaxed)
    }

    /// The counters, as `struct svakit_iommu_debug_stats` orders them.
    package var stats: IOMMUDebugStats {
        IOMMUDebugStats(raised: raised.load(ordering: .relaxed), lowered: lowered.load(ordering: .relaxed),
                        reraised: reraised.load(ordering: .relaxed), skipped: skipped.load(ordering: .relaxed),
                        overflows: overflows.load(ordering: .relaxed), underflows: underflows.load(ordering: .relaxed),
                        unmappedMore: unmappedMore.load(ordering: .relaxed), leaks: leaks.load(ordering: .relaxed))
    }
}

/// What the IOMMU_DEBUG_PAGEALLOC sanitizer counted (struct
/// svakit_iommu_debug_stats).
public struct IOMMUDebugStats: Sendable, Equatable {
    /// Frame counts raised by maps.
    public var raised: Int
    /// Frame counts lowered by unmaps (window-aware: by the covering flush).
    public var lowered: Int
    /// Counts raised again for the tail of a short unmap (linux mode).
    public var reraised: Int
    /// Frames skipped: no descriptor backs them (MMIO, holes) or offline.
    public var skipped: Int
    /// Raises refused at the count's maximum (warned, never wrapped).
    public var overflows: Int
    /// Lowers refused at zero (a double unmap; warned, never wrapped).
    public var underflows: Int
    /// Unmaps that removed more than they were asked to.
    public var unmappedMore: Int
    /// Page-leak reports made.
    public var leaks: Int

    /// Counters with these values.
    public init(raised: Int, lowered: Int, reraised: Int, skipped: Int, overflows: Int, underflows: Int,
                unmappedMore: Int, leaks: Int) {
        self.raised = raised
        self.lowered = lowered
        self.reraised = reraised
        self.skipped = skipped
        self.overflows = overflows
        self.underflows = underflows
        self.unmappedMore = unmappedMore
        self.leaks = leaks
    }
}

/// The physical frames an unmap removed, in runs: what the window-aware
/// sanitizer lowers once the invalidation that covers them has finished.
/// One run inline (a DMA mapping of contiguous memory is one run), more in
/// an array only for a scattered mapping.
package struct FrameRuns: Sendable {
    package private(set) var first: (pfn: Int, frames: Int)? = nil
    /// nil until a second run: an empty FrameRuns holds no reference.
    package private(set) var more: [(pfn: Int, frames: Int)]? = nil

    /// No frames.
    package init() {}

    /// Adds [pfn, pfn + frames), merged with the last run when they touch.
    package mutating func append(pfn: Int, frames: Int) {
        guard let f = first else {
            first = (pfn, frames)
            return
        }
        guard let last = more?.last else {
            if f.pfn + f.frames == pfn { first = (f.pfn, f.frames + frames) } else { more = [(pfn, frames)] }
            return
        }
        if last.pfn + last.frames == pfn { more![more!.count - 1].frames += frames } else { more!.append((pfn, frames)) }
    }

    package var isEmpty: Bool { first == nil }

    /// Calls `body` on each run.
    package func forEach(_ body: (Int, Int) -> Void) {
        if let f = first { body(f.pfn, f.frames) }
        for r in more ?? [] { body(r.pfn, r.frames) }
    }

    /// Whether a run holds `pfn`.
    package func contains(_ pfn: Int) -> Bool {
        var hit = false
        forEach { p, n in if pfn >= p && pfn < p + n { hit = true } }
        return hit
    }
}
