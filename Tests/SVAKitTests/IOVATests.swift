// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// The IOVA allocator and its rcache (docs/KERNEL-MODEL.md §4.5).
@Suite struct IOVATests {
    // MARK: The tree

    // These pin iova.c's (6.12.118) cached-node walk. Before issue 19 the
    // tree handed out the highest fit below the limit; Linux walks down from
    // cached32_node/cached_node and can leave a hole above it unused, and
    // max32_alloc_size fails large requests fast. tests-c/kernel/iova checks
    // the same against Linux's own iova.c.
    @Test func allocationWalksDownFromTheCachedNodeAsIovaCDoes() {
        let d = IOVADomain(startPfn: 1, endPfn: 1023, cpuCount: 1)
        #expect(d.shift == 12)
        #expect(d.alloc(pages: 1, limitPfn: 1023, sizeAligned: true) == 1023)
        // 1019...1022 is free but not 4-aligned: 1016...1019.
        #expect(d.alloc(pages: 4, limitPfn: 1023, sizeAligned: true) == 1016)
        // The walk starts at cached32_node (1016): the hole 1020...1022 above it is not seen.
        #expect(d.alloc(pages: 3, limitPfn: 1023, sizeAligned: false) == 1013)
        // Freeing the cached node moves cached32_node to its successor (1023), so the hole is seen.
        #expect(d.free(pfn: 1017) == IOVARange(lo: 1016, hi: 1019))
        #expect(d.treeCache.node32 == IOVARange(lo: 1023, hi: 1023))
        #expect(d.alloc(pages: 3, limitPfn: 1023, sizeAligned: false) == 1020)
        // A failure records its size in max32_alloc_size; as large a request under 4 GiB fails at once.
        #expect(d.alloc(pages: 2000, limitPfn: 1023, sizeAligned: false) == nil)
        #expect(d.treeCache.max32AllocSize == 2000)
        #expect(d.alloc(pages: 2000, limitPfn: 1023, sizeAligned: false) == nil)
        // ...until a free below dma_32bit_pfn resets it.
        d.free(pfn: 1013)
        #expect(d.treeCache.max32AllocSize == 1 << 20)
        let a = d.accounting()
        #expect(a.problems == [])
        #expect(a.allocated.map(\.pages).reduce(0, +) == 4)
        #expect(d.counters.failures == 2)
    }

    @Test func sizeAlignedAllocationsAreTheHighestAlignedFit() {
        for pages in UInt64(1)...70 {
            let d = IOVADomain(startPfn: 1, endPfn: 4095, cpuCount: 1)
            _ = d.alloc(pages: 1, limitPfn: 4095, sizeAligned: false)  // 4095 taken: the top is unaligned
            let align: UInt64 = pages == 1 ? 1 : 1 << UInt64(64 - (pages - 1).leadingZeroBitCount)
            let expected = (4095 - pages) / align * align
            let got = d.alloc(pages: pages, limitPfn: 4095, sizeAligned: true)
            #expect(got == expected, "pages \(pages)")
            #expect(got.map { $0 % align } == 0, "pages \(pages)")
        }
    }

    @Test func theLimitIsRespected() {
        let d = IOVADomain(startPfn: 1, endPfn: 1023, cpuCount: 1)
        // 96...103 would cross the limit 99: the highest 8-aligned fit below it is 88.
        #expect(d.alloc(pages: 8, limitPfn: 99, sizeAligned: true) == 88)
        // From cached32_node (88...95) down: 87, not 99 (iova.c does not look above it).
        #expect(d.alloc(pages: 1, limitPfn: 99, sizeAligned: false) == 87)
        #expect(d.alloc(pages: 4, limitPfn: 3, sizeAligned: false) == nil)  // only 1...3 below the limit
        #expect(d.treeCache.max32AllocSize == 4)
        #expect(d.alloc(pages: 3, limitPfn: 3, sizeAligned: false) == 1)
        #expect(d.alloc(pages: 1, limitPfn: 0, sizeAligned: false) == nil)  // below startPfn
        // max32_alloc_size is now 1: every request under 4 GiB fails fast until a free.
        // (A limit above the domain is the domain's end, here under 4 GiB.)
        #expect(d.alloc(pages: 1, limitPfn: 1 << 40, sizeAligned: false) == nil)
        d.free(pfn: 87)
        #expect(d.alloc(pages: 1, limitPfn: 1 << 40, sizeAligned: false) == 87)
        #expect(d.counters.failures == 3)
        #expect(d.accounting().problems == [])
    }

    @Test func freeAndFindWorkOnTheContainingRange() {
        let d = IOVADomain(startPfn: 1, endPfn: 1023, cpuCount: 1)
        let p = d.alloc(pages: 16, limitPfn: 1023, sizeAligned: true)!
        #expect(p == 1008)
        #expect(d.find(pfn: 1015)?.range == IOVARange(lo: 1008, hi: 1023))
        #expect(d.find(pfn: 1015)?.kind == .allocated)
        #expect(d.find(pfn: 1007) == nil)  // free
        #expect(d.free(pfn: 1010) == IOVARange(lo: 1008, hi: 1023))
        #expect(d.free(pfn: 1008) == nil)  // a double free is stray, not a second free
        #expect(d.counters.frees == 1)
        #expect(d.counters.strayFrees == 1)
        // The freed range merged back: the whole space is one free range again.
        #expect(d.accounting().free == [IOVARange(lo: 1, hi: 1023)])
    }

    @Test func reservedRangesAreNeverHandedOutAndMergeAsIovaCMergesThem() {
        let d = IOVADomain(startPfn: 1, endPfn: 1023, cpuCount: 1)
        #expect(d.reserve(lo: 1000, hi: 1023) == IOVARange(lo: 1000, hi: 1023))
        #expect(d.alloc(pages: 1, limitPfn: 1023, sizeAligned: false) == 999)
        // Reserving over an allocation grows it down (__adjust_overlap_range): one range, 990...999.
        #expect(d.reserve(lo: 990, hi: 999) == IOVARange(lo: 990, hi: 999))
        #expect(d.find(pfn: 995)?.range == IOVARange(lo: 990, hi: 999))
        #expect(d.find(pfn: 995)?.kind == .allocated)
        #expect(d.alloc(pages: 1, limitPfn: 1023, sizeAligned: false) == 989)
        // free_iova removes the whole range, reserved part included, as Linux does.
        #expect(d.free(pfn: 995) == IOVARange(lo: 990, hi: 999))
        #expect(d.alloc(pages: 1, limitPfn: 1023, sizeAligned: false) == 999)
        // Refused: an empty range, and pfns past ULLONG_MAX >> shift.
        #expect(d.reserve(lo: 5, hi: 4) == nil)
        #expect(d.reserve(lo: 1, hi: 1 << 60) == nil)
        let a = d.accounting()
        #expect(a.problems == [])
        #expect(a.reserved == [IOVARange(lo: 1000, hi: 1023)])
        #expect(a.allocated == [IOVARange(lo: 989, hi: 989), IOVARange(lo: 999, hi: 999)])
    }

    // MARK: The rcache

    @Test func allocationPagesRoundSmallSizesToAPowerOfTwo() {
        let cases: [(UInt64, UInt64)] = [(1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (31, 32),
                                         (32, 32), (33, 33), (100, 100)]
        for (pages, expected) in cases { #expect(iovaAllocationPages(pages) == expected, "\(pages)") }
        #expect(IOVARcache.sizeClass(1) == 0)
        #expect(IOVARcache.sizeClass(32) == 5)
        #expect(IOVARcache.sizeClass(33) == 6)  // not cached
    }

    @Test func aFreedIOVAIsReusedFromTheSameCPUsCache() {
        let d = IOVADomain(startPfn: 1, endPfn: 1 << 20, cpuCount: 2)
        let p = d.allocFast(pages: 3, limitPfn: 1 << 20, cpu: 0, flushRcache: true)!
        #expect(d.find(pfn: p)?.range.pages == 4)  // rounded up
        d.freeFast(pfn: p, pages: 3, cpu: 0)
        #expect(d.find(pfn: p)?.kind == .allocated)  // cached, not freed to the tree
        #expect(d.counters.frees == 0)
        let other = d.allocFast(pages: 4, limitPfn: 1 << 20, cpu: 1, flushRcache: true)
        #expect(other != p)  // CPU 1's cache is empty
        let again = d.allocFast(pages: 4, limitPfn: 1 << 20, cpu: 0, flushRcache: true)
        #expect(again == p)
        let c = d.counters
        #expect(c.rcacheHits == 1)
        #expect(c.rcacheMisses == 2)
        #expect(c.allocations == 2)
        // A cached pfn above the caller's limit is not handed out.
        d.freeFast(pfn: p, pages: 4, cpu: 0)
        let low = d.allocFast(pages: 4, limitPfn: p - 1, cpu: 0, flushRcache: true)!
        #expect(low + 3 <= p - 1)
        #expect(d.accounting().problems == [])
    }

    @Test func uncachedSizesGoStraightBackToTheTree() {
        let d = IOVADomain(startPfn: 1, endPfn: 1 << 20, cpuCount: 1)
        let p = d.allocFast(pages: 33, limitPfn: 1 << 20, cpu: 0, flushRcache: true)!
        #expect(d.find(pfn: p)?.range.pages == 33)
        d.freeFast(pfn: p, pages: 33, cpu: 0)
        #expect(d.find(pfn: p) == nil)
        #expect(d.counters.frees == 1)
        #expect(d.accounting().cached == [])
    }

    @Test func exhaustionFailsAndTheFlushingRetryRecoversCachedIOVAs() {
        let d = IOVADomain(startPfn: 1, endPfn: 64, cpuCount: 2)
        var pfns: [UInt64] = []
        for _ in 0..<64 {
            pfns.append(d.allocFast(pages: 1, limitPfn: 64, cpu: 0, flushRcache: false)!)
        }
        #expect(Set(pfns) == Set(1...64))
        #expect(d.allocFast(pages: 1, limitPfn: 64, cpu: 0, flushRcache: true) == nil)
        #expect(d.counters.rcacheFlushes == 1)  // tried, nothing cached to recover
        for p in pfns { d.freeFast(pfn: p, pages: 1, cpu: 1) }
        #expect(d.accounting().cached.count == 64)
        // CPU 0 has nothing of 2 pages cached and the tree is full.
        #expect(d.allocFast(pages: 2, limitPfn: 64, cpu: 0, flushRcache: false) == nil)
        #expect(d.counters.rcacheFlushes == 1)
        #expect(d.allocFast(pages: 2, limitPfn: 64, cpu: 0, flushRcache: true) == 62)  // 2-aligned
        #expect(d.counters.rcacheFlushes == 2)
        let a = d.accounting()
        #expect(a.problems == [])
        #expect(a.cached == [])
        #expect(a.allocated == [IOVARange(lo: 62, hi: 63)])
        #expect(a.free == [IOVARange(lo: 1, hi: 61), IOVARange(lo: 64, hi: 64)])
    }

    @Test func magazinesSwapAt127AndGoToTheDepotAt254() {
        let d = IOVADomain(startPfn: 1, endPfn: 4096, cpuCount: 1, clock: { 0 })
        let pfns = (0..<300).map { _ in d.alloc(pages: 1, limitPfn: 4096, sizeAligned: true)! }
        func slots() -> [IOVACacheSlot: Int] {
            d.accounting().cached.reduce(into: [:]) { $0[$1.slot, default: 0] += 1 }
        }
        for p in pfns[0..<127] { d.freeFast(pfn: p, pages: 1, cpu: 0) }
        #expect(slots() == [.loaded(cpu: 0): 127])
        d.freeFast(pfn: pfns[127], pages: 1, cpu: 0)
        #expect(slots() == [.loaded(cpu: 0): 1, .prev(cpu: 0): 127])
        for p in pfns[128..<254] { d.freeFast(pfn: p, pages: 1, cpu: 0) }
        #expect(slots() == [.loaded(cpu: 0): 127, .prev(cpu: 0): 127])
        #expect(d.counters.depotPushes == 0)
        let before = d.counters.magazineAllocations
        #expect(before == 2 * 6)  // loaded and prev per size class, up front
        d.freeFast(pfn: pfns[254], pages: 1, cpu: 0)
        #expect(slots() == [.loaded(cpu: 0): 1, .prev(cpu: 0): 127, .depot: 127])
        #expect(d.counters.depotPushes == 1)
        #expect(d.depotSize(sizeClass: 0) == 1)
        #expect(d.counters.magazineAllocations == before + 1)
        // Back out: the last freed first; then prev, the first magazine
        // filled (pfns[0..<127]), swapped in; then the depot's (pfns[127..<254]).
        #expect(d.allocFast(pages: 1, limitPfn: 4096, cpu: 0, flushRcache: false) == pfns[254])
        #expect(d.allocFast(pages: 1, limitPfn: 4096, cpu: 0, flushRcache: false) == pfns[126])
        var out: [UInt64] = []
        for _ in 2..<255 { out.append(d.allocFast(pages: 1, limitPfn: 4096, cpu: 0, flushRcache: false)!) }
        #expect(Set(out[0..<126]) == Set(pfns[0..<126]))
        #expect(Set(out[126...]) == Set(pfns[127..<254]))
        var c = d.counters
        #expect(c.rcacheHits == 255)
        #expect(c.depotPops == 1)
        #expect(c.rcacheMisses == 0)
        #expect(d.allocFast(pages: 1, limitPfn: 4096, cpu: 0, flushRcache: false) != nil)
        c = d.counters
        #expect(c.rcacheMisses == 1)
        #expect(c.allocations == 301)
        #expect(d.accounting().problems == [])
    }

    @Test func anRcacheHitAllocatesNothingAndTakesNoTreeLock() {
        let d = IOVADomain(startPfn: 1, endPfn: 1 << 20, cpuCount: 1, clock: { 0 })
        var p = d.allocFast(pages: 1, limitPfn: 1 << 20, cpu: 0, flushRcache: true)!
        d.freeFast(pfn: p, pages: 1, cpu: 0)
        let before = d.counters
        for _ in 0..<10_000 {
            p = d.allocFast(pages: 1, limitPfn: 1 << 20, cpu: 0, flushRcache: true)!
            d.freeFast(pfn: p, pages: 1, cpu: 0)
        }
        let after = d.counters
        #expect(after.rcacheHits - before.rcacheHits == 10_000)
        #expect(after.allocations == before.allocations)
        #expect(after.frees == before.frees)
        #expect(after.magazineAllocations == before.magazineAllocations)
        // Depot churn: after the first round the spares serve every push.
        var rounds: [Int] = []
        for _ in 0..<4 {
            let ps = (0..<1000).map { _ in d.allocFast(pages: 1, limitPfn: 1 << 20, cpu: 0, flushRcache: true)! }
            for p in ps { d.freeFast(pfn: p, pages: 1, cpu: 0) }
            rounds.append(d.counters.magazineAllocations)
        }
        #expect(rounds[0] > before.magazineAllocations)
        #expect(rounds.allSatisfy { $0 == rounds[0] }, "\(rounds)")
        #expect(d.accounting().problems == [])
    }

    // MARK: Depot reclaim

    /// 254 frees fill loaded and prev; then each 127 more push one magazine.
    private func fill(_ d: IOVADomain, magazines: Int, from pfns: inout [UInt64], cpu: Int = 0) {
        let n = 254 + 1 + (magazines - 1) * 127
        for _ in 0..<n { d.freeFast(pfn: pfns.removeLast(), pages: 1, cpu: cpu) }
    }

    @Test func depotReclaimWaits100msAndStopsAtOneMagazinePerCPU() {
        let clock = ManualClock()
        let d = IOVADomain(startPfn: 1, endPfn: 1 << 16, cpuCount: 2, clock: clock.read)
        var pfns = (0..<2000).map { _ in d.alloc(pages: 1, limitPfn: 1 << 16, sizeAligned: true)! }
        fill(d, magazines: 3, from: &pfns)
        #expect(d.depotSize(sizeClass: 0) == 3)
        d.reclaimDepot(now: 99_999_999)
        #expect(d.depotSize(sizeClass: 0) == 3)
        #expect(d.counters.frees == 0)
        d.reclaimDepot(now: 100_000_000)
        #expect(d.depotSize(sizeClass: 0) == 2)
        #expect(d.counters.depotReclaims == 1)
        #expect(d.counters.frees == 127)  // the magazine's IOVAs are back in the tree
        d.reclaimDepot(now: 150_000_000)  // rescheduled for 200 ms
        #expect(d.depotSize(sizeClass: 0) == 2)
        d.reclaimDepot(now: 10_000_000_000)  // 2 magazines, 2 CPUs: nothing to trim
        #expect(d.depotSize(sizeClass: 0) == 2)
        #expect(d.counters.depotReclaims == 1)
        #expect(d.accounting().problems == [])
    }

    @Test func depotReclaimRunsLazilyOnTheNextPushAndCatchesUp() {
        let clock = ManualClock()
        let d = IOVADomain(startPfn: 1, endPfn: 1 << 16, cpuCount: 1, clock: clock.read)
        var pfns = (0..<2000).map { _ in d.alloc(pages: 1, limitPfn: 1 << 16, sizeAligned: true)! }
        fill(d, magazines: 3, from: &pfns)  // at 0 ns: due at 100 ms
        clock.set(150_000_000)
        d.freeFast(pfn: pfns.removeLast(), pages: 1, cpu: 0)  // no push, no reclaim
        #expect(d.depotSize(sizeClass: 0) == 3)
        for _ in 0..<126 { d.freeFast(pfn: pfns.removeLast(), pages: 1, cpu: 0) }  // the 4th push
        #expect(d.counters.depotPushes == 4)
        #expect(d.depotSize(sizeClass: 0) == 3)  // 4, less the one due at 100 ms
        #expect(d.counters.depotReclaims == 1)
        clock.set(1_000_000_000)
        for _ in 0..<127 { d.freeFast(pfn: pfns.removeLast(), pages: 1, cpu: 0) }  // the 5th push
        // Due at 200, 300, 400 ms: 4 -> 1; at 500 ms 1 is not above 1 CPU: idle.
        #expect(d.depotSize(sizeClass: 0) == 1)
        #expect(d.counters.depotReclaims == 4)
        for _ in 0..<127 { d.freeFast(pfn: pfns.removeLast(), pages: 1, cpu: 0) }  // the 6th push
        #expect(d.depotSize(sizeClass: 0) == 2)  // newly scheduled, for 1.1 s
        d.reclaimDepot(now: 1_099_999_999)
        #expect(d.depotSize(sizeClass: 0) == 2)
        d.reclaimDepot(now: 1_100_000_000)
        #expect(d.depotSize(sizeClass: 0) == 1)
        #expect(d.counters.frees == 5 * 127)
        #expect(d.accounting().problems == [])
    }

    // MARK: Random and concurrent

    @Test func randomAllocAndFreeAcrossCPUsKeepTheBooks() {
        let seed = testSeed("randomAllocAndFreeAcrossCPUsKeepTheBooks")
        var rng = SplitMix64(seed: seed)
        let clock = ManualClock()
        let end: UInt64 = 3000
        let d = IOVADomain(startPfn: 1, endPfn: end, cpuCount: 3, clock: clock.read)
        #expect(d.reserve(lo: 2048, hi: 2111) != nil)  // an MSI window
        // pfn -> (requested pages, allocated pages, through the rcache)
        var held: [UInt64: (asked: UInt64, pages: UInt64, fast: Bool)] = [:]
        for step in 0..<2500 {
            clock.advance(UInt64(rng.next(below: 20_000_000)))
            switch rng.next(below: 10) {
            case 0..<5:
                let fast = rng.next(below: 4) != 0
                let asked = UInt64(1 + rng.next(below: rng.next(below: 4) == 0 ? 64 : 32))
                let limit = rng.next(below: 4) == 0 ? UInt64(500 + rng.next(below: 2500)) : end
                let cpu = rng.next(below: 3)
                let pfn = fast
                    ? d.allocFast(pages: asked, limitPfn: limit, cpu: cpu, flushRcache: rng.next(below: 2) == 0)
                    : d.alloc(pages: asked, limitPfn: limit, sizeAligned: rng.next(below: 2) == 0)
                guard let pfn else { continue }
                let pages = fast ? iovaAllocationPages(asked) : asked
                #expect(pfn + pages - 1 <= limit, "step \(step): past the limit")
                if fast {
                    let align = UInt64(1) << UInt64(64 - (pages - 1).leadingZeroBitCount)
                    #expect(pfn % (pages == 1 ? 1 : align) == 0, "step \(step): unaligned")
                }
                #expect(held[pfn] == nil, "step \(step): \(pfn) handed out twice")
                held[pfn] = (asked, pages, fast)
            case 5..<9:
                guard let (pfn, h) = held.randomElement(using: &rng) else { continue }
                held[pfn] = nil
                if h.fast {
                    d.freeFast(pfn: pfn, pages: h.asked, cpu: rng.next(below: 3))
                } else {
                    #expect(d.free(pfn: pfn) == IOVARange(lo: pfn, hi: pfn + h.pages - 1))
                }
            default:
                d.reclaimDepot(now: clock.read())
            }
            let a = d.accounting()
            #expect(a.problems == [], "step \(step), seed \(seed)")
            let mine = held.map { IOVARange(lo: $0.key, hi: $0.key + $0.value.pages - 1) }
            #expect(Set(a.inUse) == Set(mine), "step \(step), seed \(seed): outstanding IOVAs differ")
            let total = (a.free + a.allocated + a.reserved).map(\.pages).reduce(0, +)
            #expect(total == end, "step \(step), seed \(seed)")
            if !a.problems.isEmpty || Set(a.inUse) != Set(mine) { return }
        }
        // The run went through the paths it is meant to check.
        let c = d.counters
        #expect(c.rcacheHits > 0 && c.rcacheMisses > 0, "seed \(seed)")
        #expect(c.failures > 0 && c.rcacheFlushes > 0, "seed \(seed): never exhausted")
        for (pfn, h) in held {
            if h.fast { d.freeFast(pfn: pfn, pages: h.asked, cpu: 0) } else { d.free(pfn: pfn) }
        }
        d.flushCachedIOVAs()
        let a = d.accounting()
        #expect(a.allocated == [])
        #expect(a.reserved == [IOVARange(lo: 2048, hi: 2111)])
        #expect(a.free == [IOVARange(lo: 1, hi: 2047), IOVARange(lo: 2112, hi: end)])
    }

    @Test func concurrentCPUsAllocAndFreeWithoutLosingAnIOVA() {
        let seed = testSeed("concurrentCPUsAllocAndFreeWithoutLosingAnIOVA")
        let cpus = 4
        let end: UInt64 = 1 << 14
        let d = IOVADomain(startPfn: 1, endPfn: end, cpuCount: cpus)
        let owners = PageOwners(pages: Int(end) + 1)
        let clashes = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        runThreads(cpus) { t in
            CurrentCPU.set(t)
            var rng = SplitMix64(seed: seed &+ UInt64(t))
            var held: [(pfn: UInt64, asked: UInt64, pages: UInt64)] = []
            for _ in 0..<5000 {
                if held.count < 24 && (held.isEmpty || rng.next(below: 2) == 0) {
                    let asked = UInt64(1 + rng.next(below: rng.next(below: 8) == 0 ? 64 : 32))
                    let cpu = CurrentCPU.index(cpuCount: cpus)
                    guard let pfn = d.allocFast(pages: asked, limitPfn: end, cpu: cpu, flushRcache: true) else {
                        continue
                    }
                    let pages = iovaAllocationPages(asked)
                    if !owners.claim(pfn, pages, by: t) { clashes.add(1, ordering: .relaxed) }
                    held.append((pfn, asked, pages))
                } else {
                    let h = held.remove(at: rng.next(below: held.count))
                    owners.release(h.pfn, h.pages, by: t)
                    d.freeFast(pfn: h.pfn, pages: h.asked, cpu: CurrentCPU.index(cpuCount: cpus))
                }
            }
            for h in held {
                owners.release(h.pfn, h.pages, by: t)
                d.freeFast(pfn: h.pfn, pages: h.asked, cpu: CurrentCPU.index(cpuCount: cpus))
            }
            done.add(1, ordering: .relaxed)
        }
        #expect(done.load(ordering: .relaxed) == cpus)
        #expect(clashes.load(ordering: .relaxed) == 0, "an IOVA was handed to two threads at once")
        let a = d.accounting()
        #expect(a.problems == [])
        #expect(a.inUse == [])  // every allocated range is cached
        #expect(Set(a.cached.map(\.pfn)) == Set(a.allocated.map(\.lo)))
        let c = d.counters
        #expect(c.rcacheHits + c.rcacheMisses > 0)
        #expect(c.allocations - c.frees == a.allocated.count)
        d.flushCachedIOVAs()
        #expect(d.accounting().free == [IOVARange(lo: 1, hi: end)])
    }

    @Test func eachThreadHasItsOwnCurrentCPU() {
        let seen = TestMutex<[Int: (Int?, Int, Int)]>([:])
        runThreads(3) { t in
            let before = CurrentCPU.raw
            if t == 0 { CurrentCPU.set(6) }
            let first = CurrentCPU.index(cpuCount: 4)
            let second = CurrentCPU.index(cpuCount: 1 << 40)
            seen.withLock { $0[t] = (before, first, second) }
            CurrentCPU.clear()
            #expect(CurrentCPU.raw == nil)
        }
        let s = seen.withLock { $0 }
        for t in 0..<3 { #expect(s[t]?.0 == nil, "thread \(t) started with a CPU") }
        #expect(s[0]?.1 == 2)  // 6 mod 4
        #expect(s[0]?.2 == 6)
        // Threads that set nothing got distinct round-robin tickets, kept across calls.
        #expect(s[1]?.2 != s[2]?.2)
        #expect(s[1].map { $0.1 == $0.2 % 4 } == true)
        #expect(s[2].map { $0.1 == $0.2 % 4 } == true)
    }
}

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let ns = Atomic<UInt64>(0)
    var read: @Sendable () -> UInt64 { { self.ns.load(ordering: .relaxed) } }
    func set(_ v: UInt64) { ns.store(v, ordering: .relaxed) }
    func advance(_ by: UInt64) { ns.add(by, ordering: .relaxed) }
}

/// Which thread holds each IOVA page, set with a compare-and-exchange so
/// two threads holding one page at once is caught.
final class PageOwners: @unchecked Sendable {
    // @unchecked: the cells are atomics, allocated in init and never freed
    // before deinit.
    private let cells: UnsafeMutablePointer<Atomic<Int>>
    private let count: Int
    init(pages: Int) {
        count = pages
        cells = .allocate(capacity: pages)
        for i in 0..<pages { (cells + i).initialize(to: Atomic(0)) }
    }
    deinit {
        cells.deinitialize(count: count)
        cells.deallocate()
    }
    func claim(_ pfn: UInt64, _ pages: UInt64, by t: Int) -> Bool {
        var ok = true
        for p in pfn..<pfn + pages {
            ok = cells[Int(p)].compareExchange(expected: 0, desired: t + 1, ordering: .relaxed).exchanged && ok
        }
        return ok
    }
    func release(_ pfn: UInt64, _ pages: UInt64, by t: Int) {
        for p in pfn..<pfn + pages {
            _ = cells[Int(p)].compareExchange(expected: t + 1, desired: 0, ordering: .relaxed)
        }
    }
}

/// Runs `body(0..<n)` on n new threads (not tasks: the current CPU is a
/// thread-local) and joins them.
func runThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Box { let run: () -> Void; init(_ run: @escaping () -> Void) { self.run = run } }
    var threads: [pthread_t] = []
    for i in 0..<n {
        var t = pthread_t()
        let box = Unmanaged.passRetained(Box { body(i) }).toOpaque()
        let rc = pthread_create(&t, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, box)
        precondition(rc == 0)
        threads.append(t)
    }
    for t in threads { pthread_join(t, nil) }
}
