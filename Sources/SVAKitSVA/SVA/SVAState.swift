// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// iommu_mm_data: one PASID for the mm's whole life, and its SVA domains.
package struct MMData {
    package let pasid: UInt32
    /// SVA domain per IOMMU index.
    package var domains: [Int: SVADomain] = [:]
}

/// The SVA domain of one (mm, IOMMU): shared by every device behind that
/// IOMMU bound to the mm.
package struct SVADomain {
    /// Device-PASID attachments (domain->users).
    package var users: Int
    /// Its (pasid, IOMMU) word in the table the gate reads.
    package let word: UInt64
}

/// struct iommu_sva: one (device, mm) bond, refcounted.
package struct Bond {
    package let device: UInt32
    package let mm: UInt32
    package let pasid: UInt32
    package var users: Int
}

/// Everything `SVARegistry.bonds` (iommu_sva_lock) protects.
package struct SVAState {
    package var pasids: PASIDAllocator
    package var mmData: [UInt32: MMData] = [:]
    /// Every published (pasid, IOMMU) word: its slot, and the SVA domains
    /// and explicit attachments that share it (one word per pair, so one
    /// kernel-range invalidation reaches each PASID of an IOMMU once).
    package var words: [UInt64: (slot: Int, users: Int)] = [:]
    /// Published words of every kind; the key is on while this is non-zero.
    package var published = 0
    package var bonds: [UInt32: Bond] = [:]
    package var nextHandle: UInt32 = 1
    /// Mms with at least one SVA domain (the length of iommu_sva_mms).
    package var svaMMCount = 0
    /// Times the key went 0 -> 1 or 1 -> 0.
    package var keyTransitions = 0

    package init(pasidBits: Int) { pasids = PASIDAllocator(bits: pasidBits) }


    /// mm_pasid_drop: the PASID lives until the mm is torn down.
    package mutating func dropPASID(of mm: UInt32) {
        if let data = mmData.removeValue(forKey: mm) { pasids.free(data.pasid) }
    }
}
