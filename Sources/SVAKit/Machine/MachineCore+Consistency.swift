// SPDX-License-Identifier: Apache-2.0

/// A full audit of the machine's bookkeeping, for tests: after any refused
/// call, and at the end of every random run, the machine must pass it.
extension MachineCore {
    /// Returns the first few inconsistencies found (empty when none).
    func audit(limit: Int = 8) -> [String] {
        var problems: [String] = []
        func fail(_ s: String) { if problems.count < limit { problems.append(s) } }

        // 1. Free lists: every member a free head, no frame twice.
        var onList = Set<Int>()
        var listFrames = 0
        for order in 0...maxOrder {
            var p = allocator.headOf(order)
            var n = 0
            while p != .none {
                let d = memory[p]
                if d.frameKind != .free { fail("\(p) on free list \(order) is \(d.frameKind)") }
                if Int(d.order) != order { fail("\(p) on list \(order) has order \(d.order)") }
                if !onList.insert(p.index).inserted { fail("\(p) on a free list twice"); break }
                n += 1
                listFrames += 1 << order
                p = PFN(d.lru_next)
                if n > memory.frameCount { fail("free list \(order) loops"); break }
            }
            if n != allocator.listCounts[order] { fail("list \(order) holds \(n), counted \(allocator.listCounts[order])") }
        }

        // 2. Descriptors: counts by kind, virgin memory untouched.
        var tables = (kernel: 0, user: 0), data = 0, offline = 0, offlineVirgin = 0, free = 0
        for i in 0..<memory.frameCount {
            let d = memory[PFN(i)]
            switch d.frameKind {
            case .kernelTable: tables.kernel += 1
            case .userTable: tables.user += 1
            case .data: data += 1
            case .offline:
                offline += 1
                if allocator.isVirgin(PFN(i)) { offlineVirgin += 1 }
            case .free: free += 1
            }
            if allocator.isVirgin(PFN(i)), d.frameKind != .free, d.frameKind != .offline {
                fail("virgin \(PFN(i)) is \(d.frameKind)")
            }
        }
        if tables.kernel != counters.kernelTables { fail("kernel tables \(tables.kernel), counted \(counters.kernelTables)") }
        if tables.user != counters.userTables { fail("user tables \(tables.user), counted \(counters.userTables)") }
        if data != counters.dataFrames { fail("data frames \(data), counted \(counters.dataFrames)") }
        if offline != counters.offlineFrames { fail("offline \(offline), counted \(counters.offlineFrames)") }
        if offlineVirgin != counters.offlineVirgin { fail("offline virgin \(offlineVirgin), counted \(counters.offlineVirgin)") }
        let virgin = memory.frameCount - allocator.virginCursor
        if free != listFrames + virgin - offlineVirgin {
            fail("\(free) free frames, lists and virgin memory hold \(listFrames + virgin - offlineVirgin)")
        }

        // 3. Tables: each reached exactly once, with the right kind, level
        //    and LINKED mark; no LINKED table unreachable.
        var seen = Set<Int>()
        func visit(_ t: TableFrame, kernelHalf: Bool) {
            for i in 0..<512 {
                let s = EntrySlot(holder: t, index: i)
                guard let c = child(of: s) else { continue }
                guard memory.contains(c.pfn) else { fail("\(s) points past memory"); continue }
                let d = memory[c.pfn]
                if d.frameKind != (kernelHalf ? .kernelTable : .userTable) { fail("\(s) points at \(d.frameKind)") }
                if Int(d.level) != c.level { fail("\(s) points at a level-\(d.level) table") }
                if !d.ptFlags.contains(.linked) { fail("\(c) is linked but not marked") }
                if !seen.insert(c.pfn.index).inserted { fail("\(c) is linked twice"); continue }
                visit(c, kernelHalf: kernelHalf)
            }
        }
        visit(kernelRoot, kernelHalf: true)
        for (id, r) in mmRoots.enumerated() where id > 0 && r != .none {
            let root = TableFrame(pfn: r, level: layout.rootLevel)
            for i in AddressLayout.kernelRootEntries
            where memory.entry(r, i).pointee != memory.entry(kernelRoot.pfn, i).pointee {
                fail("mm \(id) root entry \(i) differs from init_mm's")
            }
            for i in 0..<AddressLayout.kernelRootEntries.lowerBound {
                let s = EntrySlot(holder: root, index: i)
                guard let c = child(of: s) else { continue }
                if !seen.insert(c.pfn.index).inserted { fail("\(c) is linked twice") }
                if memory[c.pfn].frameKind != .userTable { fail("\(s) points at \(memory[c.pfn].frameKind)") }
                visit(c, kernelHalf: false)
            }
        }
        for i in 0..<allocator.virginCursor where memory[PFN(i)].ptFlags.contains(.linked) && !seen.contains(i) {
            fail("\(PFN(i)) is marked linked but no entry points at it")
        }
        return problems
    }
}
