// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_iommu_sva_bind_device()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_sva_bind_device(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ mm: UInt32,
                                         _ handle: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(handle)
        out.pointee = try m.bindSVA(device: DeviceID(dev), mm: MMID(mm)).rawValue
        return 0
    }
}

/// `svakit_iommu_sva_unbind_device()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_sva_unbind_device(_ h: UnsafeMutablePointer<svakit_machine>?, _ handle: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.unbindSVA(handle: handle); return 0 }
}

/// `svakit_iommu_sva_get_pasid()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_sva_get_pasid(_ h: UnsafeMutablePointer<svakit_machine>?, _ handle: UInt32,
                                       _ pasid: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(pasid)
        out.pointee = try m.pasid(ofHandle: handle)
        return 0
    }
}

/// `svakit_iommu_sva_mm_count()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_sva_mm_count(_ h: UnsafeMutablePointer<svakit_machine>?,
                                      _ count: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(count)
        out.pointee = UInt32(m.svaMMCount)
        return 0
    }
}

/// `svakit_iommu_sva_invalidate_kva_range_slow()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_sva_invalidate_kva_range_slow(_ h: UnsafeMutablePointer<svakit_machine>?,
                                                       _ start: UInt64, _ end: UInt64) {
    _ = withMachine(h) { m in m.invalidateKernelRangeSlow(start, end); return 0 }
}
