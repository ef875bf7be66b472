// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// Records each CPU flush and, at that moment, the kinds of the frames a test
/// is watching: the free paths must flush while the table is still unfreed.
final class FlushRecorder: Sendable {
    struct Flush: Equatable { let start: UInt64, end: UInt64, watchedKinds: [FrameKind] }
    let flushes = TestMutex<[Flush]>([])
    let watched = TestMutex<[PFN]>([])

    init(_ m: Machine) {
        m.setTLBFlushHook { [weak m, self] start, end in
            guard let m else { return }
            let kinds = self.watched.withLock { $0 }.map { (try? m.descriptor($0))?.kind ?? .free }
            self.flushes.withLock { $0.append(Flush(start: start, end: end, watchedKinds: kinds)) }
        }
    }

    func watch(_ pfns: [PFN]) { watched.withLock { $0 = pfns } }
    var all: [Flush] { flushes.withLock { $0 } }
}

/// The steps of a freed table's history, in order, as (type, site).
func trail(_ m: Machine, _ t: TableFrame) -> [(EventType, Site)] {
    m.history(of: t.pfn).map { ($0.type!, $0.site) }
}

func expectFreedAfterFlush(_ m: Machine, _ t: TableFrame, by site: Site,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    let events = m.events()
    let pfn = t.pfn
    let unlink = events.firstIndex { $0.type == .tableUnlink && $0.pfn == pfn }
    let free = events.lastIndex { $0.type == .frameFree && $0.pfn == pfn }
    guard let unlink, let free else {
        Issue.record("\(t) was not unlinked and freed", sourceLocation: sourceLocation); return
    }
    #expect(events[free].site == site, sourceLocation: sourceLocation)
    #expect(events[unlink].site == site, sourceLocation: sourceLocation)
    #expect(events[free].kind == .kernelTable, sourceLocation: sourceLocation)
    let flushBetween = events[unlink..<free].contains { $0.type == .tlbFlush }
    #expect(flushBetween, "no CPU flush between unlink and free of \(t)", sourceLocation: sourceLocation)
}

@Suite struct FreePathTests {
    @Test func hugeVmapOverAPTETableFreesItThroughPmdFreePtePage() throws {
        let m = try machine()
        let rec = FlushRecorder(m)
        let va = try m.vmalloc(4096)
        let t = try m.tableUnder(va, level: 2)
        #expect(t.level == 1)
        try m.vfree(va)
        #expect(try m.descriptor(t.pfn).flags.contains(.linked), "vfree leaves the table")
        #expect(rec.all.isEmpty, "vfree leaves the flush to the lazy purge")
        m.vmUnmapAliases()   // the purge: the range returns to the allocator
        #expect(rec.all.count == 1)
        rec.watch([t.pfn])
        let huge = try m.vmallocHuge(2 << 20)
        #expect(huge == va, "first fit reuses the purged range")
        let d = try m.descriptor(t.pfn)
        #expect(d.kind == .free)
        #expect(d.generation == 1)
        expectFreedAfterFlush(m, t, by: .pmdFreePtePage)
        let flush = try #require(rec.all.last)
        #expect(flush.start == va && flush.end == va + 4095, "INVLPG of the first page")
        #expect(flush.watchedKinds == [.kernelTable], "the hook ran before the free")
        guard case .mapped(_, .size2M, _, 2) = try m.translate(va) else { Issue.record("no 2 MiB leaf"); return }
        // LIFO: the next page anyone allocates is the freed table.
        #expect(try m.allocFrames() == t.pfn)
        #expect(m.audit() == [])
    }

    @Test func hugeVmapRefusesATableThatStillMapsPages() throws {
        let m = try machine()
        let va = try m.vmalloc(4096)
        expectRefused(m, .busy) { try m.vmapHuge(va, phys: 0, size: .size2M) }
        expectRefused(m, .exists) { try m.vmapHuge(m.layout.directMapBase, phys: 0, size: .size2M) }
        expectRefused(m, .invalidArgument) { try m.vmapHuge(va + 4096, phys: 0, size: .size2M) }
        expectRefused(m, .invalidArgument) { try m.vmapHuge(va, phys: 0, size: .size4K) }
        expectRefused(m, .outOfRange) { try m.vmapHuge(va, phys: UInt64(gib) << 12, size: .size2M) }
        #expect(try m.translate(va).physicalAddress != nil)
    }

    @Test func pudFreePmdPageFreesThePTETablesThenThePMDTable() throws {
        let m = try machine()
        let rec = FlushRecorder(m)
        let base = m.layout.vmallocStart + (4 << 30)
        try m.map(base, to: 0x1000)
        try m.map(base + (2 << 20), to: 0x2000)
        let pmd = try m.tableUnder(base, level: 3)
        let pte1 = try m.tableUnder(base, level: 2)
        let pte2 = try m.tableUnder(base + (2 << 20), level: 2)
        expectRefused(m, .busy) { try m.vmapHuge(base, phys: 0, size: .size1G) }
        try m.vunmap(base, size: 4 << 20)
        rec.watch([pte1.pfn, pte2.pfn, pmd.pfn])
        try m.vmapHuge(base, phys: 0, size: .size1G)
        for t in [pte1, pte2, pmd] {
            #expect(try m.descriptor(t.pfn).kind == .free)
            expectFreedAfterFlush(m, t, by: .pudFreePmdPage)
        }
        #expect(rec.all.last?.watchedKinds == [.kernelTable, .kernelTable, .kernelTable])
        // The PTE tables are unlinked before the PMD table that holds them.
        let unlinks = m.events().filter { $0.type == .tableUnlink }.map(\.pfn)
        #expect(unlinks.suffix(3) == [pte1.pfn, pte2.pfn, pmd.pfn])
        guard case .mapped(0x0123, .size1G, _, 3) = try m.translate(base + 0x123) else {
            Issue.record("no 1 GiB leaf"); return
        }
        #expect(m.audit() == [])
    }

    @Test func setMemorySplitsAndCollapseFreesTheTable() throws {
        let m = try machine()
        let rec = FlushRecorder(m)
        let va = try m.directMapAddress(4 << 20)
        guard case .mapped(_, .size2M, _, _) = try m.translate(va) else { Issue.record("direct map"); return }
        try m.setMemory(va + 0x3000, pages: 1, clear: PageTableEntry.writable)
        let t = try m.tableUnder(va, level: 2)
        let d = try m.descriptor(t.pfn)
        #expect(d.flags.contains(.split))
        #expect(d.site == .setMemorySplit)
        guard case .mapped(let p, .size4K, let e, 1) = try m.translate(va + 0x3000) else { Issue.record("split"); return }
        #expect(p == (4 << 20) + 0x3000)
        #expect(e.raw & PageTableEntry.writable == 0)
        guard case .mapped(_, _, let e2, _) = try m.translate(va + 0x4000) else { Issue.record("split"); return }
        #expect(e2.raw & PageTableEntry.writable != 0)
        #expect(try m.collapseLargePages(va) == false, "mixed protections cannot collapse")
        try m.setMemory(va + 0x3000, pages: 1, set: PageTableEntry.writable)
        rec.watch([t.pfn])
        #expect(try m.collapseLargePages(va))
        expectFreedAfterFlush(m, t, by: .setMemoryCollapse)
        #expect(rec.all.last == .init(start: 0, end: .max, watchedKinds: [.kernelTable]), "flush_tlb_all first")
        guard case .mapped(_, .size2M, _, _) = try m.translate(va) else { Issue.record("not collapsed"); return }
        expectRefused(m, .notFound) { try m.setMemory(m.layout.vmallocStart, pages: 1) }   // CPA: zero pte
        expectRefused(m, .outOfRange) { try m.setMemory(m.layout.directMapBase + (1 << 40), pages: 1) }
        expectRefused(m, .invalidArgument) { try m.setMemory(va + 1, pages: 1) }
        expectRefused(m, .invalidArgument) { try m.setMemory(va, pages: 1, set: 1 << 40) }
        // Non-canonical is out of range whatever bit 63 says, as everywhere.
        for bad: UInt64 in [0x8000_0000_0000_0000, 0x0100_0000_0000_0000] {
            expectRefused(m, .outOfRange) { try m.setMemory(bad, pages: 1) }
            expectRefused(m, .outOfRange) { try m.collapseLargePages(bad) }
        }
        expectRefused(m, .invalidArgument) { try m.setMemory(0x1000, pages: 1) }
        #expect(m.audit() == [])
    }

    @Test func hotRemoveFreesBootTablesAndHotAddRebuildsTheDirectMap() throws {
        let m = try machine(frames: 4 * gib)
        let rec = FlushRecorder(m)
        let first = UInt64(3 * gib), count = UInt64(gib)
        let va = try m.directMapAddress(first << 12)
        let pmd = try m.tableUnder(va, level: 3)
        #expect(try m.descriptor(pmd.pfn).flags.contains(.bootmem))
        // A split table inside the range goes too.
        try m.setMemory(va + (6 << 20), pages: 1, clear: PageTableEntry.writable)
        let split = try m.tableUnder(va + (6 << 20), level: 2)
        rec.watch([pmd.pfn, split.pfn])
        try m.hotRemove(pfn: first, pages: count)
        // Linux's order (HotRemoveOrderTests): freed, then cleared, then
        // the final flush_tlb_all.
        #expect(rec.all.last == .init(start: 0, end: .max, watchedKinds: [.free, .free]))
        #expect(trail(m, pmd).suffix(2).map(\.0) == [.frameFree, .tableUnlink])
        #expect(try m.translate(va) == .notPresent(level: 3))
        #expect(m.stats.offlineFrames == count)
        #expect(try m.descriptor(PFN(Int(first) + 5)).kind == .offline)
        expectRefused(m, .notFound) { try m.hotRemove(pfn: first, pages: count) }
        expectRefused(m, .notAllocated) { try m.freeFrames(PFN(Int(first))) }
        #expect(m.audit() == [])

        try m.hotAdd(pfn: first, pages: count)
        let pmd2 = try m.tableUnder(va, level: 3)
        let d = try m.descriptor(pmd2.pfn)
        #expect(!d.flags.contains(.kernel) && !d.flags.contains(.bootmem), "alloc_low_pages after boot: neither bootmem nor PT_kernel")
        #expect(d.site == .hotAdd)
        #expect(try m.translate(va + 0x5000).physicalAddress == first << 12 + 0x5000)
        #expect(m.stats.offlineFrames == 0)
        expectRefused(m, .busy) { try m.hotAdd(pfn: first, pages: count) }
        #expect(m.audit() == [])
    }

    @Test func hotRemoveRefusesRangesInUseAndBadRanges() throws {
        let m = try machine(frames: 2 * gib)
        expectRefused(m, .busy) { try m.hotRemove(pfn: 0, pages: UInt64(sectionPages)) }  // boot tables live there
        expectRefused(m, .invalidArgument) { try m.hotRemove(pfn: 1, pages: UInt64(sectionPages)) }
        expectRefused(m, .invalidArgument) { try m.hotRemove(pfn: UInt64(gib), pages: 100) }
        expectRefused(m, .outOfRange) { try m.hotRemove(pfn: UInt64(2 * gib), pages: UInt64(sectionPages)) }
        expectRefused(m, .busy) { try m.hotAdd(pfn: UInt64(gib), pages: UInt64(sectionPages)) }  // online
        // Memory the allocator handed out and took back is removable; frames
        // still allocated are not.
        let p = try m.allocFrames(order: maxOrder)
        let section = UInt64(p.rawValue) & ~UInt64(sectionPages - 1)
        expectRefused(m, .busy) { try m.hotRemove(pfn: section, pages: UInt64(sectionPages)) }
        try m.freeFrames(p)
        if section != 0 {
            try m.hotRemove(pfn: section, pages: UInt64(sectionPages))
            #expect(m.audit() == [])
            for _ in 0..<64 { #expect(try m.descriptor(try m.allocFrames()).kind == .data) }
            #expect(m.audit() == [])
        }
    }

    @Test func freedTablesAreNeverOnTheDeferredLink() throws {
        // Kernel review: the deferred-free list gets its own link. Nothing in
        // this layer uses it; the allocator's link is what free lists use.
        let m = try machine()
        let va = try m.vmalloc(4096)
        let t = try m.tableUnder(va, level: 2)
        try m.vfree(va)
        _ = try m.vmallocHuge(2 << 20)
        #expect(try m.rawDescriptor(t.pfn).pt_list_next == PFN.none.rawValue)
    }
}

extension FreePathTests {
    /// Hot-remove of memory that was used and freed: its frames are on the
    /// free lists (not virgin), and must come off them; none is handed out
    /// while offline; hot-add gives them back.
    @Test func hotRemoveOfUsedMemoryTakesItsBlocksOffTheFreeLists() throws {
        let m = try machine(frames: 2 * sectionPages)  // two sections
        func fill() throws -> [PFN] {
            var blocks: [PFN] = []
            do { while true { blocks.append(try m.allocFrames(order: maxOrder)) } } catch SVAError.outOfMemory {}
            return blocks
        }
        let used = try fill()
        #expect(used.contains { $0.index >= sectionPages }, "the second section was used")
        for p in used { try m.freeFrames(p) }
        try m.hotRemove(pfn: UInt64(sectionPages), pages: UInt64(sectionPages))
        #expect(m.stats.offlineFrames == UInt64(sectionPages))
        #expect(m.audit().isEmpty)
        let whileOffline = try fill()
        #expect(!whileOffline.isEmpty)
        #expect(whileOffline.allSatisfy { $0.index < sectionPages }, "an offline frame was handed out")
        for p in whileOffline { try m.freeFrames(p) }
        try m.hotAdd(pfn: UInt64(sectionPages), pages: UInt64(sectionPages))
        #expect(m.stats.offlineFrames == 0)
        #expect(m.audit().isEmpty)
        let again = try fill()
        #expect(again.filter { $0.index >= sectionPages }.count == sectionPages >> maxOrder, "the section is whole again")
        for p in again { try m.freeFrames(p) }
        #expect(m.audit().isEmpty)
    }
}
extension FreePathTests {
    /// Hot-remove of a section no allocation has reached yet (virgin
    /// memory), then allocations until memory runs out: the virgin cursor
    /// skips the offline section, which then no longer counts as offline
    /// virgin memory. The free count stays true (it went negative, and
    /// svakit_machine_stats trapped: tests-c/fuzz/crashes/virgin-cursor-skips-an-offline-section),
    /// the frames add up, and hot-add gives the section back.
    @Test func theAllocatorSkipsAnOfflineVirginSection() throws {
        let m = try machine(frames: 2 * sectionPages)
        let s0 = m.stats
        #expect(s0.freeFrames > sectionPages, "the second section is virgin")
        try m.hotRemove(pfn: UInt64(sectionPages), pages: UInt64(sectionPages))
        func addsUp(_ why: String) {
            let s = m.stats
            #expect(s.freeFrames >= 0, "\(why)")
            #expect(s.freeFrames + s.offlineFrames + s.kernelTables + s.userTables + s.iommuTables + s.dataFrames
                    == s.frames, "\(why)")
            #expect(m.audit().isEmpty, "\(why): \(m.audit())")
        }
        addsUp("after the hot-remove")
        var blocks: [PFN] = []
        do { while true { blocks.append(try m.allocFrames(order: maxOrder)) } } catch SVAError.outOfMemory {}
        #expect(blocks.allSatisfy { $0.index < sectionPages })
        addsUp("after the cursor skipped the section")
        for p in blocks { try m.freeFrames(p) }
        try m.hotAdd(pfn: UInt64(sectionPages), pages: UInt64(sectionPages))
        addsUp("after the hot-add")
        var again: [PFN] = []
        do { while true { again.append(try m.allocFrames(order: maxOrder)) } } catch SVAError.outOfMemory {}
        #expect(again.filter { $0.index >= sectionPages }.count == sectionPages >> maxOrder)
        for p in again { try m.freeFrames(p) }
        addsUp("at the end")
    }
}
