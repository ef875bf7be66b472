// SPDX-License-Identifier: Apache-2.0
import CSVAKitCore
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The machine's self-check, for tests (svakit_machine_check): the
/// bookkeeping of every layer, and conservation across them.
extension Machine {
    /// Returns the first few inconsistencies found (empty when none).
    /// O(frames). Run it on a quiet machine: it reads each layer under its
    /// own lock in turn, so a concurrent change may show as a problem.
    public func audit(limit: Int = 8) -> [String] {
        var problems: [String] = []
        func fail(_ s: String) { if problems.count < limit { problems.append(s) } }
        let memory = frames.memory

        // 1. The allocator audits itself (FrameMemory+Audit.swift); the
        //    cross-layer checks below need how far memory was touched.
        let cursor = frames.audit(fail)

        // 2. Tables: each reached exactly once, with the right kind, level
        //    and LINKED mark; every table is in exactly one place.
        var seen = FrameSet(frames: memory.frameCount)
        func visit(_ k: PTView, _ t: TableFrame, kernelHalf: Bool, first: Int = 0, end: Int = 512) {
            // A table no writer touched since boot or the last reset, and
            // that boot left empty, holds no entry (the write tracker,
            // PhysicalMemory.dirty): most of the kernel half's 256 tables.
            guard memory.mayBeNonzero(t.pfn) else { return }
            let kind = memory.snapshot(t.pfn).frameKind
            let entries = memory.entry(t.pfn, 0)
            var i = first
            while true {
                // Most entries are empty: the scan skips them (in C).
                i = Int(svk_next_present(entries, Int32(i), Int32(end)))
                guard i < end else { break }
                defer { i += 1 }
                let s = EntrySlot(holder: t, index: i)
                guard let c = k.child(of: s) else { continue }
                guard memory.contains(c.pfn) else { fail("\(s) points past memory"); continue }
                let d = memory.snapshot(c.pfn)
                let expected: FrameKind = kind == .iommuTable ? .iommuTable : kernelHalf ? .kernelTable : .userTable
                if d.frameKind != expected { fail("\(s) points at \(d.frameKind)") }
                if Int(d.level) != c.level { fail("\(s) points at a level-\(d.level) table") }
                if !d.ptFlags.contains(.linked) { fail("\(c) is linked but not marked") }
                if d.ptFlags.contains(.deferred) { fail("\(c) is linked and on the deferred list") }
                if !seen.insert(c.pfn.index) { fail("\(c) is linked twice"); continue }
                visit(k, c, kernelHalf: kernelHalf)
            }
        }
        tables.withKernel { k in visit(k, k.root, kernelHalf: true) }
        var roots = FrameSet(frames: memory.frameCount)
        _ = roots.insert(tables.kernel.root.pfn.index)
        for space in tables.allSpaces where space.id != 0 {
            _ = roots.insert(space.root.pfn.index)
            _ = try? tables.withMM(space.id) { k in
                for i in AddressLayout.kernelRootEntries
                where memory.loadEntry(space.root.pfn, i) != memory.loadEntry(tables.kernel.root.pfn, i) {
                    fail("mm \(space.id) root entry \(i) differs from init_mm's")
                }
                visit(k, space.root, kernelHalf: false, end: AddressLayout.kernelRootEntries.lowerBound)
            }
        }

        for space in tables.allSpaces {
            let d = memory.snapshot(space.root.pfn)
            if !d.frameKind.isTable || !d.ptFlags.contains(.root) { fail("mm \(space.id)'s root \(space.root.pfn) is \(d.frameKind)") }
        }
        // kpti-root: an mm's IOMMU-only root is a user root whose user half
        // is the mm's, entry for entry, and whose kernel half is empty.
        for space in tables.allSpaces where space.id != 0 {
            guard let r = tables.existingIOMMURoot(of: space) else { continue }
            _ = roots.insert(r.index)
            let d = memory.snapshot(r)
            if d.frameKind != .userTable || !d.ptFlags.contains(.root) { fail("mm \(space.id)'s IOMMU root \(r) is \(d.frameKind)") }
            _ = try? tables.withMM(space.id) { _ in
                for i in 0..<512 {
                    let want = i < AddressLayout.kernelRootEntries.lowerBound ? memory.loadEntry(space.root.pfn, i) : 0
                    if memory.loadEntry(r, i) != want { fail("mm \(space.id)'s IOMMU root entry \(i) is out of sync") }
                }
            }
        }
        // DMA domains: each root an IOMMU table marked root, its tables
        // reached once (the walk checks their kind).
        for domain in domains.all {
            guard let root = domain.root else { continue }
            _ = roots.insert(root.pfn.index)
            let d = memory.snapshot(root.pfn)
            if d.frameKind != .iommuTable || !d.ptFlags.contains(.root) { fail("domain \(domain.id)'s root \(root.pfn) is \(d.frameKind)") }
            let view = PTView(memory: memory, frames: frames, events: events, layout: layout, root: root,
                              tableKind: .iommuTable)
            domain.tablesLock.locked { _ in visit(view, root, kernelHalf: false) }  // (dead or not)
        }

        // 3. The deferred list: its members are deferred tables, counted
        //    right; what entered it left once or is still on it.
        let queued = deferred.queuedFrames()
        let flow = deferred.throughput
        if queued.count != flow.pending { fail("deferred list holds \(queued.count), counted \(flow.pending)") }
        if flow.entered != flow.left + flow.pending {
            fail("\(flow.entered) frames entered the deferred list, \(flow.left) left, \(flow.pending) pending")
        }
        var deferredSet = FrameSet(frames: memory.frameCount)
        for p in queued {
            let d = memory.snapshot(p)
            if !d.frameKind.isTable || !d.ptFlags.contains(.deferred) { fail("\(p) on the deferred list is \(d.frameKind)") }
            if !deferredSet.insert(p.index) { fail("\(p) on the deferred list twice") }
            if seen.contains(p.index) { fail("\(p) is on the deferred list and linked") }
        }

        // 4. Every table frame in exactly one place: root, linked, deferred,
        //    or detached and held by a caller of the primitives (not LINKED,
        //    not DEFERRED), with whatever that caller linked under it.
        //    LINKED or DEFERRED marks must match the place.
        tables.withKernel { k in
            for i in 0..<cursor where FrameKind(rawValue: memory.kind(PFN(i)))?.isTable == true
                && !seen.contains(i) && !deferredSet.contains(i) && !roots.contains(i) {
                let d = memory.snapshot(PFN(i))
                guard d.frameKind.isTable, !d.ptFlags.contains(.linked), !d.ptFlags.contains(.tail) else { continue }
                visit(k, TableFrame(pfn: PFN(i), level: Int(d.level)), kernelHalf: d.frameKind == .kernelTable)
            }
        }
        for i in 0..<cursor where FrameKind(rawValue: memory.kind(PFN(i)))?.isTable == true {
            let d = memory.snapshot(PFN(i))
            let linked = seen.contains(i), queuedHere = deferredSet.contains(i), root = roots.contains(i)
            if d.ptFlags.contains(.linked) && !linked { fail("\(PFN(i)) is marked linked but no entry points at it") }
            if d.ptFlags.contains(.deferred) && !queuedHere { fail("\(PFN(i)) is marked deferred but not on the list") }
            if d.ptFlags.contains(.root) != root { fail("\(PFN(i)) root mark does not match the mm and domain lists") }
        }

        // 5. The swiotlb pool (docs/KERNEL-MODEL.md §4.3b): each segment an
        //    allocated data block of its own, as reserved; the slot lists
        //    consistent; the slots in use exactly those live bounced
        //    mappings hold.
        if let pool = domains.swiotlb {
            for b in pool.segments {
                let d = memory.snapshot(b)
                if d.frameKind != .data || Int(d.order) != SWIOTLB.segmentOrder || d.site != Site.boot.rawValue
                    || d.owner != SWIOTLB.owner || d.ptFlags.contains(.tail) {
                    fail("swiotlb segment \(b) is no longer the pool's block")
                }
            }
            let inUse = pool.check(fail)
            var held = 0
            for c in domains.cookies {
                for m in c.mappings where m.bounced {
                    held += Int(((m.phys & (c.domain.granule - 1)) + m.size + c.domain.granule - 1)
                        / c.domain.granule * c.domain.granule >> SWIOTLB.slotShift)
                }
            }
            if held != inUse { fail("swiotlb: \(inUse) slots in use, live bounced mappings hold \(held)") }
        }
        return problems
    }

    /// Where each table frame is now (for tests and the conservation check).
    public struct TablePlaces: Equatable, Sendable {
        /// Roots of address spaces; tables a live entry points to; tables on the
        /// deferred list; and the rest: unlinked, not yet freed.
        public var roots = 0, linked = 0, deferred = 0, detached = 0
    }

    /// Counts every page-table frame (kernel and user) by where it is now.
    /// Scans every frame, so O(memory size).
    public var tablePlaces: TablePlaces {
        var places = TablePlaces()
        let memory = frames.memory
        for i in 0..<memory.frameCount {
            let k = memory.kind(PFN(i))
            guard FrameKind(rawValue: k)?.isTable == true else { continue }
            let f = memory.flags(PFN(i))
            if f.contains(.root) { places.roots += 1 }
            else if f.contains(.linked) { places.linked += 1 }
            else if f.contains(.deferred) { places.deferred += 1 }
            else { places.detached += 1 }
        }
        return places
    }
}
