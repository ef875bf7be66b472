// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// Allocator of kernel virtual ranges in the vmalloc area (mm/vmalloc.c's
/// vmap_area trees): first fit from the lowest address. A range vfree
/// releases goes on the lazy (purge) list first and stays reserved, as
/// free_vmap_area_noflush leaves it: it returns to the allocator only when a
/// purge has flushed it (docs/KERNEL-MODEL.md §2.9). Areas are kept sorted by
/// start; lookups are O(log n), allocation O(n) in the number of areas.
@usableFromInline
package struct VmallocSpace {
    /// Where an area is in its life.
    package enum State: Equatable {
        /// Allocated (the busy tree).
        case busy
        /// Unlinked by remove_vm_area (find_unlink_vmap_area), not yet on
        /// the lazy list: being unmapped.
        case unlinked
        /// On the lazy list, waiting for a purge (free_vmap_area_noflush).
        case lazy
        /// Taken off the lazy list by the purge with this number, whose
        /// flush has not finished yet.
        case purging(UInt64)
    }

    package struct Area: Equatable {
        package var start: UInt64
        package var size: UInt64
        /// Mapped with 2 MiB leaves.
        package var huge: Bool
        /// The blocks vmalloc allocated for it (vm_struct.pages): what
        /// vfree frees, whatever the entries say by then.
        package var pages: [PFN] = []
        package var state: State = .busy
        package var end: UInt64 { start + size }
        /// The guard page vmalloc leaves after a 4 KiB-mapped area.
        package var guardSize: UInt64 { huge ? 0 : 4096 }
        /// va_size(va): the area with its guard page, what the lazy count
        /// and the purge's flush cover.
        package var vaEnd: UInt64 { end + guardSize }
    }

    /// What a purge took off the lazy list: its number and the union
    /// [start, end) of the areas' ranges (guard pages included).
    package struct PurgeClaim: Equatable {
        package var id: UInt64
        package var start: UInt64
        package var end: UInt64
        package var areas: Int
    }

    package let start: UInt64
    package let end: UInt64
    package private(set) var areas: [Area] = []
    /// vmap_lazy_nr: pages (guard pages included) on the lazy list or being
    /// purged; lowered when a purge returns its areas.
    package private(set) var lazyPages: UInt64 = 0
    private var purgeSeq: UInt64 = 0

    package init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end
    }

    /// Reserves `size` bytes aligned to `align`, lowest address first. Each
    /// area is followed by a guard page, as vmalloc leaves one. Lazily freed
    /// areas still occupy their range.
    package mutating func reserve(size: UInt64, align: UInt64, huge: Bool) throws(SVAError) -> UInt64 {
        let guardSize: UInt64 = huge ? 0 : 4096
        var candidate = alignUp(start, align)
        var i = 0
        while i < areas.count {
            if candidate + size + guardSize <= areas[i].start { break }
            candidate = max(candidate, alignUp(areas[i].vaEnd, align))
            i += 1
        }
        guard candidate + size <= end else { throw .noSpace }
        areas.insert(Area(start: candidate, size: size, huge: huge), at: i)
        return candidate
    }

    /// The allocated (busy) area that starts at `va`.
    package func area(at va: UInt64) -> Area? {
        guard let i = index(of: va), areas[i].state == .busy else { return nil }
        return areas[i]
    }

    package mutating func setPages(at va: UInt64, _ pages: [PFN]) {
        if let i = index(of: va) { areas[i].pages = pages }
    }

    /// find_unlink_vmap_area: takes the busy area at `va` out of use (a
    /// second vfree of it finds nothing) and returns it.
    package mutating func unlink(at va: UInt64) -> Area? {
        guard let i = index(of: va), areas[i].state == .busy else { return nil }
        areas[i].state = .unlinked
        return areas[i]
    }

    /// free_vmap_area_noflush: the unlinked area at `va` goes on the lazy
    /// list; returns vmap_lazy_nr after adding its pages.
    package mutating func freeLazily(at va: UInt64) -> UInt64 {
        guard let i = index(of: va), areas[i].state == .unlinked else { return lazyPages }
        areas[i].state = .lazy
        lazyPages += (areas[i].vaEnd - areas[i].start) >> 12
        return lazyPages
    }

    /// The first half of __purge_vmap_area_lazy: takes every area on the
    /// lazy list and widens [start, end) to their union. Nil when the list
    /// is empty (no flush, nothing purged).
    package mutating func claimLazy(start s: UInt64, end e: UInt64) -> PurgeClaim? {
        purgeSeq &+= 1
        var claim = PurgeClaim(id: purgeSeq, start: s, end: e, areas: 0)
        for i in areas.indices where areas[i].state == .lazy {
            areas[i].state = .purging(claim.id)
            claim.start = min(claim.start, areas[i].start)
            claim.end = max(claim.end, areas[i].vaEnd)
            claim.areas += 1
        }
        return claim.areas > 0 ? claim : nil
    }

    /// The second half (purge_vmap_node, reclaim_list_global): after the
    /// flush the claimed areas return to the allocator and vmap_lazy_nr
    /// drops by their pages.
    package mutating func returnPurged(_ claim: PurgeClaim) {
        var pages: UInt64 = 0
        areas.removeAll { a in
            guard a.state == .purging(claim.id) else { return false }
            pages += (a.vaEnd - a.start) >> 12
            return true
        }
        lazyPages -= pages
    }

    /// Areas on the lazy list (not yet claimed by a purge).
    package var lazyAreas: Int { areas.count { $0.state == .lazy } }

    private func index(of va: UInt64) -> Int? {
        var lo = 0, hi = areas.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if areas[mid].start < va { lo = mid + 1 } else { hi = mid }
        }
        return lo < areas.count && areas[lo].start == va ? lo : nil
    }

    private func alignUp(_ v: UInt64, _ a: UInt64) -> UInt64 { (v + a - 1) & ~(a - 1) }
}
