// SPDX-License-Identifier: Apache-2.0

/// Allocator of kernel virtual ranges in the vmalloc area: first fit from the
/// lowest address, so a range freed by vfree is the next one handed out, as
/// the kernel's vmap_area allocator does after a purge. Areas are kept sorted
/// by start; lookups are O(log n), allocation O(n) in the number of areas.
@usableFromInline
struct VmallocSpace {
    struct Area: Equatable {
        var start: UInt64
        var size: UInt64
        /// Mapped with 2 MiB leaves.
        var huge: Bool
        /// The blocks vmalloc allocated for it (vm_struct.pages): what
        /// vfree frees, whatever the entries say by then.
        var pages: [PFN] = []
        var end: UInt64 { start + size }
    }

    let start: UInt64
    let end: UInt64
    private(set) var areas: [Area] = []

    init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end
    }

    /// Reserves `size` bytes aligned to `align`, lowest address first. Each
    /// area is followed by a guard page, as vmalloc leaves one.
    mutating func reserve(size: UInt64, align: UInt64, huge: Bool) throws(SVAError) -> UInt64 {
        let guardSize: UInt64 = huge ? 0 : 4096
        var candidate = alignUp(start, align)
        var i = 0
        while i < areas.count {
            if candidate + size + guardSize <= areas[i].start { break }
            candidate = max(candidate, alignUp(areas[i].end + (areas[i].huge ? 0 : 4096), align))
            i += 1
        }
        guard candidate + size <= end else { throw .noSpace }
        areas.insert(Area(start: candidate, size: size, huge: huge), at: i)
        return candidate
    }

    /// The area that starts at `va`.
    func area(at va: UInt64) -> Area? {
        guard let i = index(of: va) else { return nil }
        return areas[i]
    }

    mutating func setPages(at va: UInt64, _ pages: [PFN]) {
        if let i = index(of: va) { areas[i].pages = pages }
    }

    mutating func remove(at va: UInt64) {
        if let i = index(of: va) { areas.remove(at: i) }
    }

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
