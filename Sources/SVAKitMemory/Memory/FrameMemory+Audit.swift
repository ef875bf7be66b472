// SPDX-License-Identifier: Apache-2.0
import CSVAKitCore
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

extension FrameMemory {
    /// The allocator's self-check, as the IOVA tree audits itself: every
    /// free-list member a free head, no frame twice, each list's count; the
    /// frames by kind against the counters; virgin memory untouched; and
    /// conservation (allocations minus frees = allocated blocks). Reports
    /// each problem through `fail`; returns the virgin cursor (frames below
    /// it have been handed out at least once), which the machine's
    /// cross-layer checks scan. O(frames); run it on a quiet machine.
    package func audit(_ fail: (String) -> Void) -> Int {
        let memory = self.memory
        let (virgin, cursor, counters) = zone.locked { s in
            var onList = FrameSet(frames: memory.frameCount)
            for order in 0...maxOrder {
                var p = s.allocator.headOf(order)
                var n = 0
                while p != .none {
                    let d = memory.snapshot(p)
                    if d.frameKind != .free { fail("\(p) on free list \(order) is \(d.frameKind)") }
                    if Int(d.order) != order { fail("\(p) on list \(order) has order \(d.order)") }
                    if !onList.insert(p.index) { fail("\(p) on a free list twice"); break }
                    n += 1
                    p = PFN(d.lru_next)
                    if n > memory.frameCount { fail("free list \(order) loops"); break }
                }
                if n != s.allocator.listCounts[order] { fail("list \(order) holds \(n), counted \(s.allocator.listCounts[order])") }
            }
            return (memory.frameCount - s.allocator.virginCursor, s.allocator.virginCursor, s.counters)
        }
        var kinds = (kernel: 0, user: 0, iommu: 0, data: 0, offline: 0, offlineVirgin: 0, free: 0, heads: 0)
        var listFrames = 0
        zone.locked { s in
            for order in 0...maxOrder { listFrames += s.allocator.listCounts[order] << order }
            // The census of every descriptor in C (svk_census): the kind
            // byte and the tail flag, as the switch it replaces read them.
            var below = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            var above = below
            let raw = UnsafeRawPointer(memory.descs).assumingMemoryBound(to: UInt8.self)
            let stride = UInt64(MemoryLayout<Ptdesc>.stride)
            let free = FrameKind.free.rawValue, offline = FrameKind.offline.rawValue
            let heads = withUnsafeMutableBytes(of: &below) {
                svk_census(raw, stride, 0, UInt64(cursor), free, offline, PtdescFlags.tail.rawValue,
                           $0.baseAddress!.assumingMemoryBound(to: UInt64.self))
            }
            // Virgin memory (most of a small machine) is free or offline.
            _ = withUnsafeMutableBytes(of: &above) {
                svk_census(raw, stride, UInt64(cursor), UInt64(memory.frameCount), free, offline,
                           PtdescFlags.tail.rawValue, $0.baseAddress!.assumingMemoryBound(to: UInt64.self))
            }
            let counts = [below.0, below.1, below.2, below.3, below.4, below.5, below.6, below.7].map(Int.init)
            let virgin = [above.0, above.1, above.2, above.3, above.4, above.5, above.6, above.7].map(Int.init)
            kinds.kernel = counts[Int(FrameKind.kernelTable.rawValue)]
            kinds.user = counts[Int(FrameKind.userTable.rawValue)]
            kinds.iommu = counts[Int(FrameKind.iommuTable.rawValue)]
            kinds.data = counts[Int(FrameKind.data.rawValue)]
            kinds.offline = counts[Int(offline)] + virgin[Int(offline)]
            kinds.offlineVirgin = virgin[Int(offline)]
            kinds.free = counts[Int(free)] + virgin[Int(free)]
            kinds.heads = Int(heads)
            if kinds.kernel + kinds.user + kinds.iommu + kinds.data + counts[Int(offline)] + counts[Int(free)] != cursor {
                fail("frames below the cursor of an unknown kind")
            }
            // Only when the census found a virgin frame neither free nor
            // offline: which one.
            if virgin[Int(free)] + virgin[Int(offline)] != memory.frameCount - cursor {
                for i in cursor..<memory.frameCount {
                    switch memory.kind(PFN(i)) {
                    case free, offline: break
                    case let k: fail("virgin \(PFN(i)) is \(FrameKind(rawValue: k).map { "\($0)" } ?? "kind \(k)")")
                    }
                }
            }
        }
        if kinds.kernel != counters.kernelTables { fail("kernel tables \(kinds.kernel), counted \(counters.kernelTables)") }
        if kinds.user != counters.userTables { fail("user tables \(kinds.user), counted \(counters.userTables)") }
        if kinds.iommu != counters.iommuTables { fail("IOMMU tables \(kinds.iommu), counted \(counters.iommuTables)") }
        if kinds.data != counters.dataFrames { fail("data frames \(kinds.data), counted \(counters.dataFrames)") }
        if kinds.offline != counters.offlineFrames { fail("offline \(kinds.offline), counted \(counters.offlineFrames)") }
        if kinds.offlineVirgin != counters.offlineVirgin { fail("offline virgin \(kinds.offlineVirgin), counted \(counters.offlineVirgin)") }
        if kinds.free != listFrames + virgin - kinds.offlineVirgin {
            fail("\(kinds.free) free frames, lists and virgin memory hold \(listFrames + virgin - kinds.offlineVirgin)")
        }
        // Conservation of allocations: every block handed out and not freed
        // is still allocated, and nothing else is.
        if counters.allocs - counters.frees != kinds.heads {
            fail("\(counters.allocs) allocations - \(counters.frees) frees != \(kinds.heads) allocated blocks")
        }
        return cursor
    }
}

/// A set of frame numbers as a bit map: the audits' bookkeeping, with no
/// hashing (the fuzzer audits every input).
package struct FrameSet {
    private var words: [UInt64]

    package init(frames: Int) { words = [UInt64](repeating: 0, count: (frames + 63) / 64) }

    /// Adds `i`; false when it was there already.
    package mutating func insert(_ i: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(i & 63)
        if words[i >> 6] & bit != 0 { return false }
        words[i >> 6] |= bit
        return true
    }

    package func contains(_ i: Int) -> Bool { i >= 0 && i >> 6 < words.count && words[i >> 6] & (1 << UInt64(i & 63)) != 0 }
}
