// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_iommu_config_default()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_config_default(_ cfg: UnsafeMutablePointer<svakit_iommu_config>?) {
    cfg?.pointee = IOMMUConfig().cValue
}

/// `svakit_iommu_create()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_create(_ h: UnsafeMutablePointer<svakit_machine>?, _ cfg: UnsafePointer<svakit_iommu_config>?,
                                _ iommu: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard let cfg else { throw .nullPointer }
        let out = try requireOut(iommu)
        out.pointee = try m.addIOMMU(try IOMMUConfig(cfg.pointee)).id.rawValue
        return 0
    }
}

/// `svakit_iommu_counters()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_counters(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32,
                                  _ out: UnsafeMutablePointer<svakit_iommu_counters>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let o = try requireOut(out)
        let c = try m.iommu(IOMMUID(iommu)).counters
        let p = (0...5).map { UInt64(c.pscHits(level: $0)) }
        o.pointee = svakit_iommu_counters(
            walks: UInt64(c.walks), iotlb_hits: UInt64(c.iotlbHits), full_walks: UInt64(c.fullWalks),
            faults: UInt64(c.faults), psc_hits: (p[0], p[1], p[2], p[3], p[4], p[5]),
            range_invalidations: UInt64(c.rangeInvalidations),
            leaf_range_invalidations: UInt64(c.leafRangeInvalidations),
            pasid_invalidations: UInt64(c.pasidInvalidations), global_invalidations: UInt64(c.globalInvalidations),
            entries_dropped: UInt64(c.entriesDropped), fences: UInt64(c.fences),
            accessed_dirty_writes: UInt64(c.accessedDirtyWrites))
        return 0
    }
}

/// `svakit_iommu_invalidate_range()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_invalidate_range(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32, _ pasid: UInt32,
                                          _ start: UInt64, _ end: UInt64, _ leafOnly: Int32) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard leafOnly == 0 || leafOnly == 1 else { throw .invalidArgument }
        try m.invalidateRange(iommu: IOMMUID(iommu), pasid: PASID(pasid), start: start, end: end, leafOnly: leafOnly != 0)
        return 0
    }
}

/// `svakit_iommu_invalidate_pasid()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_invalidate_pasid(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32,
                                          _ pasid: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.invalidatePASID(iommu: IOMMUID(iommu), pasid: PASID(pasid)); return 0 }
}

/// `svakit_iommu_invalidate_all()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_invalidate_all(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.iommu(IOMMUID(iommu)).invalidateAll(); return 0 }
}

/// `svakit_iommu_fence()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_fence(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.iommu(IOMMUID(iommu)).fence(); return 0 }
}

/// `svakit_device_create()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_device_create(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32, _ flags: UInt32,
                                 _ pasidBits: UInt32, _ dev: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(dev)
        guard flags & ~(SVAKIT_DEV_SVA | SVAKIT_DEV_UNTRUSTED) == 0 else { throw .invalidArgument }
        out.pointee = try m.addDevice(iommu: IOMMUID(iommu), sva: flags & SVAKIT_DEV_SVA != 0,
                                      pasidBits: Int(pasidBits),
                                      untrusted: flags & SVAKIT_DEV_UNTRUSTED != 0).rawValue
        return 0
    }
}

/// `svakit_iommu_attach_device_pasid()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_attach_device_pasid(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ pasid: UInt32,
                                       _ mm: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.attachPASID(device: DeviceID(dev), pasid: PASID(pasid), mm: MMID(mm)); return 0 }
}

/// `svakit_iommu_detach_device_pasid()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_detach_device_pasid(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ pasid: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.detachPASID(device: DeviceID(dev), pasid: PASID(pasid)); return 0 }
}
