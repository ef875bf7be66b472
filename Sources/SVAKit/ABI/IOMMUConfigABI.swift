// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

// The C form of an IOMMU's configuration (struct svakit_iommu_config) and
// back: only the C glue converts; the Swift types know nothing of C.

extension IOMMUConfig {
    init(_ c: svakit_iommu_config) throws(SVAError) {
        guard let caching = IOMMUCaching(rawValue: c.caching),
              let replacement = CacheReplacement(rawValue: c.replacement),
              let profile = IOMMUProfile(rawValue: c.profile),
              c.sets_accessed_dirty <= 1, c.deferred_flush <= 1, c.shadowed_flush <= 1,
              c.reserved == 0, c.reserved2 == 0 else { throw .invalidArgument }
        self.init(caching: caching, iotlbSets: Int(c.iotlb_sets), iotlbWays: Int(c.iotlb_ways),
                  pscSets: Int(c.psc_sets), pscWays: Int(c.psc_ways), replacement: replacement,
                  setsAccessedDirty: c.sets_accessed_dirty != 0, seed: c.seed)
        deferredFlush = c.deferred_flush != 0
        shadowedFlush = c.shadowed_flush != 0
        self.profile = profile
    }

    var cValue: svakit_iommu_config {
        svakit_iommu_config(caching: caching.rawValue, replacement: replacement.rawValue,
                            iotlb_sets: UInt32(iotlbSets), iotlb_ways: UInt32(iotlbWays),
                            psc_sets: UInt32(pscSets), psc_ways: UInt32(pscWays),
                            sets_accessed_dirty: setsAccessedDirty ? 1 : 0, deferred_flush: deferredFlush ? 1 : 0,
                            shadowed_flush: shadowedFlush ? 1 : 0, reserved: 0, seed: seed,
                            profile: profile.rawValue, reserved2: 0)
    }
}
