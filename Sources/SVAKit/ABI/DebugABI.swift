// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_iommu_debug_pagealloc_built()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_debug_pagealloc_built() -> Int32 { Machine.iommuDebugCompiledIn ? 1 : 0 }

/// `__svakit_iommu_debug_check_unmapped()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func __svakit_iommu_debug_check_unmapped(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64,
                                                _ npages: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard npages <= UInt64(UInt32.max) else { throw .outOfRange }
        return Int32(try m.iommuDebugCheckUnmapped(try pfnArgument(pfn), count: Int(npages)))
    }
}

/// `svakit_iommu_debug_map_count()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_debug_map_count(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64,
                                         _ count: UnsafeMutablePointer<Int32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(count)
        out.pointee = Int32(try m.iommuDebugMapCount(try pfnArgument(pfn)))
        return 0
    }
}

/// `svakit_iommu_debug_stats()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_debug_stats(_ h: UnsafeMutablePointer<svakit_machine>?,
                                     _ out: UnsafeMutablePointer<svakit_iommu_debug_stats>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let o = try requireOut(out)
        let s = try m.iommuDebugStats()
        o.pointee = svakit_iommu_debug_stats(
            raised: UInt64(s.raised), lowered: UInt64(s.lowered), reraised: UInt64(s.reraised),
            skipped: UInt64(s.skipped), overflows: UInt64(s.overflows), underflows: UInt64(s.underflows),
            unmapped_more: UInt64(s.unmappedMore), leaks: UInt64(s.leaks))
        return 0
    }
}
