// SPDX-License-Identifier: Apache-2.0

/// Invalidation commands (docs/KERNEL-MODEL.md §3.2-3.4): PASID-selective range with
/// the leaf-only hint (VT-d IH, SMMUv3 LEAF), PASID-wide, and global.
extension IOMMUState {
    /// Drops IOTLB entries of `pasid` that overlap [start, end] and, unless
    /// `leafOnly`, paging-structure entries whose region overlaps it.
    mutating func invalidateRange(pasid: UInt32, start: UInt64, end: UInt64, leafOnly: Bool) {
        if leafOnly { counters.leafRangeInvalidations += 1 } else { counters.rangeInvalidations += 1 }
        counters.modelledDeviceNs &+= config.costs.rangeInvalidationNs
        invalidationSeq &+= 1
        guard mayHaveLines(pasid) else { return }
        var dropped = iotlb.invalidate { line in
            guard line.pasid == pasid else { return false }
            let level = Int(line.key & 3)
            let span = UInt64(12 + 9 * (level - 1))
            return Self.overlaps(base: (line.key >> 2) << span, span: span, start, end)
        }
        if !leafOnly {
            for level in 2...5 {
                dropped += withPSC(level) { cache in
                    cache.invalidate { line in
                        let span = UInt64(12 + 9 * (level - 1))
                        return line.pasid == pasid && Self.overlaps(base: line.key << span, span: span, start, end)
                    }
                }
            }
        }
        counters.entriesDropped += dropped
    }

    mutating func invalidatePASID(_ pasid: UInt32) {
        counters.pasidInvalidations += 1
        counters.modelledDeviceNs &+= config.costs.domainInvalidationNs
        invalidationSeq &+= 1
        guard mayHaveLines(pasid) else { return }
        forgetLines(pasid)
        var dropped = iotlb.invalidate { $0.pasid == pasid }
        for level in 2...5 { dropped += withPSC(level) { c in c.invalidate { $0.pasid == pasid } } }
        counters.entriesDropped += dropped
    }

    mutating func invalidateAll() {
        counters.globalInvalidations += 1
        counters.modelledDeviceNs &+= config.costs.globalInvalidationNs
        invalidationSeq &+= 1
        pasidBits.update(repeating: 0, count: Self.pasidWords)
        var dropped = iotlb.invalidate { _ in true }
        for level in 2...5 { dropped += withPSC(level) { c in c.invalidate { _ in true } } }
        counters.entriesDropped += dropped
    }

    /// Whether [base, base + 2^span) meets [start, end] (inclusive end).
    static func overlaps(base: UInt64, span: UInt64, _ start: UInt64, _ end: UInt64) -> Bool {
        let last = base &+ ((1 << span) - 1)
        return base <= end && last >= start
    }

    /// Cached entries, for tests.
    var cachedEntries: (iotlb: Int, psc: Int) {
        (iotlb.occupancy, pde.occupancy + pdpte.occupancy + pml4e.occupancy + pml5e.occupancy)
    }
}
