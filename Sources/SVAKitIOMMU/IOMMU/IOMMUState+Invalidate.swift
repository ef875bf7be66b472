// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// Invalidation requests (docs/KERNEL-MODEL.md §3.2-3.4, §3.6): PASID-selective
/// range with the leaf-only hint (VT-d IH, SMMUv3 LEAF), PASID-wide, and
/// global. A ``IOMMUProfile/generic`` IOMMU executes each as one command; the
/// other profiles turn it into their hardware's commands
/// (IOMMUState+Profiles.swift). Each returns the modelled device time it cost.
extension IOMMUState {
    /// Drops IOTLB entries of `pasid` that overlap [start, end] and, unless
    /// `leafOnly`, paging-structure entries whose region overlaps it.
    package mutating func invalidateRange(pasid: UInt32, start: UInt64, end: UInt64, leafOnly: Bool) -> UInt64 {
        if leafOnly { counters.leafRangeInvalidations += 1 } else { counters.rangeInvalidations += 1 }
        invalidationSeq &+= 1
        guard config.profile == .generic else { return profileRange(pasid: pasid, start: start, end: end, leafOnly: leafOnly) }
        counters.modelledDeviceNs &+= config.costs.rangeInvalidationNs
        dropRange(pasid: pasid, start: start, end: end, nonLeaf: !leafOnly)
        return config.costs.rangeInvalidationNs
    }

    package mutating func invalidatePASID(_ pasid: UInt32) -> UInt64 {
        counters.pasidInvalidations += 1
        invalidationSeq &+= 1
        guard config.profile == .generic else { return profilePASID(pasid) }
        counters.modelledDeviceNs &+= config.costs.domainInvalidationNs
        dropPASID(pasid)
        return config.costs.domainInvalidationNs
    }

    package mutating func invalidateAll() {
        counters.globalInvalidations += 1
        counters.modelledDeviceNs &+= config.costs.globalInvalidationNs
        invalidationSeq &+= 1
        pasidBits.update(repeating: 0, count: Self.pasidWords)
        var dropped = iotlb.invalidate { _ in true }
        for level in 2...5 { dropped += withPSC(level) { c in c.invalidate { _ in true } } }
        counters.entriesDropped += dropped
    }

    /// What one command does to the caches: the IOTLB lines of `pasid` that
    /// overlap [start, end] go and, when `nonLeaf`, the paging-structure
    /// lines whose region overlaps it.
    package mutating func dropRange(pasid: UInt32, start: UInt64, end: UInt64, nonLeaf: Bool) {
        guard mayHaveLines(pasid) else { return }
        var dropped = iotlb.invalidate { line in
            guard line.pasid == pasid else { return false }
            let level = Int(line.key & 3)
            let span = UInt64(12 + 9 * (level - 1))
            return Self.overlaps(base: (line.key >> 2) << span, span: span, start, end)
        }
        if nonLeaf {
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

    /// Every line tagged `pasid`, leaf and paging-structure.
    package mutating func dropPASID(_ pasid: UInt32) {
        guard mayHaveLines(pasid) else { return }
        forgetLines(pasid)
        var dropped = iotlb.invalidate { $0.pasid == pasid }
        for level in 2...5 { dropped += withPSC(level) { c in c.invalidate { $0.pasid == pasid } } }
        counters.entriesDropped += dropped
    }

    /// Whether [base, base + 2^span) meets [start, end] (inclusive end).
    package static func overlaps(base: UInt64, span: UInt64, _ start: UInt64, _ end: UInt64) -> Bool {
        let last = base &+ ((1 << span) - 1)
        return base <= end && last >= start
    }

    /// Cached entries, for tests.
    package var cachedEntries: (iotlb: Int, psc: Int) {
        (iotlb.occupancy, pde.occupancy + pdpte.occupancy + pml4e.occupancy + pml5e.occupancy)
    }
}
