// SPDX-License-Identifier: Apache-2.0
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
            var onList = Set<Int>()
            for order in 0...maxOrder {
                var p = s.allocator.headOf(order)
                var n = 0
                while p != .none {
                    let d = memory.snapshot(p)
                    if d.frameKind != .free { fail("\(p) on free list \(order) is \(d.frameKind)") }
                    if Int(d.order) != order { fail("\(p) on list \(order) has order \(d.order)") }
                    if !onList.insert(p.index).inserted { fail("\(p) on a free list twice"); break }
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
            for i in 0..<cursor {
                let d = memory.snapshot(PFN(i))
                switch d.frameKind {
                case .kernelTable: kinds.kernel += 1
                case .userTable: kinds.user += 1
                case .iommuTable: kinds.iommu += 1
                case .data: kinds.data += 1
                case .offline: kinds.offline += 1
                case .free: kinds.free += 1
                }
                if d.frameKind != .free, d.frameKind != .offline, !d.ptFlags.contains(.tail) { kinds.heads += 1 }
            }
            // Virgin memory (most of a small machine) is free or offline;
            // only its kind need be read.
            for i in cursor..<memory.frameCount {
                switch memory.kind(PFN(i)) {
                case FrameKind.free.rawValue: kinds.free += 1
                case FrameKind.offline.rawValue: kinds.offline += 1; kinds.offlineVirgin += 1
                case let k: fail("virgin \(PFN(i)) is \(FrameKind(rawValue: k).map { "\($0)" } ?? "kind \(k)")")
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
