// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_pagetable_alloc_kernel()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_pagetable_alloc_kernel(_ h: UnsafeMutablePointer<svakit_machine>?, _ level: UInt32,
                                          _ pfn: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(pfn)
        out.pointee = UInt64(try m.allocKernelTable(level: Int(level)).pfn.rawValue)
        return 0
    }
}

/// `svakit_pagetable_read_entry()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_pagetable_read_entry(_ h: UnsafeMutablePointer<svakit_machine>?, _ table: UInt64, _ index: UInt32,
                              _ entry: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(entry)
        out.pointee = try m.readEntry(table: try pfnArgument(table), index: index)
        return 0
    }
}

/// `svakit_pagetable_write_entry()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_pagetable_write_entry(_ h: UnsafeMutablePointer<svakit_machine>?, _ table: UInt64, _ index: UInt32,
                               _ entry: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.writeEntry(table: try pfnArgument(table), index: index, entry); return 0 }
}

/// `svakit_pagetable_link()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_pagetable_link(_ h: UnsafeMutablePointer<svakit_machine>?, _ parent: UInt64, _ index: UInt32,
                              _ child: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.linkTable(parent: try pfnArgument(parent), index: index, child: try pfnArgument(child)); return 0 }
}

/// `svakit_pagetable_unlink()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_pagetable_unlink(_ h: UnsafeMutablePointer<svakit_machine>?, _ parent: UInt64, _ index: UInt32,
                                _ child: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(child)
        out.pointee = UInt64(try m.unlinkTable(parent: try pfnArgument(parent), index: index).pfn.rawValue)
        return 0
    }
}

/// `svakit_pagetable_free()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_pagetable_free(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.pagetableFree(try pfnArgument(pfn)); return 0 }
}

/// `svakit_pagetable_free_kernel()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_pagetable_free_kernel(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.pagetableFreeKernel(try pfnArgument(pfn)); return 0 }
}

/// `svakit_deferred_work_run()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_deferred_work_run(_ h: UnsafeMutablePointer<svakit_machine>?) -> Int32 {
    withMachine(h) { m in m.runDeferredWork(); return 0 }
}

/// `svakit_deferred_work_flush()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_deferred_work_flush(_ h: UnsafeMutablePointer<svakit_machine>?) -> Int32 {
    withMachine(h) { m in m.flushDeferredWork(); return 0 }
}

/// `svakit_deferred_stats()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_deferred_stats(_ h: UnsafeMutablePointer<svakit_machine>?,
                                  _ out: UnsafeMutablePointer<svakit_deferred_stats>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let o = try requireOut(out)
        let d = m.deferredStats
        o.pointee = svakit_deferred_stats(pending: UInt64(d.pending), frames_deferred: UInt64(d.framesDeferred),
                                          batches: UInt64(d.batches), largest_batch: UInt64(d.largestBatch),
                                          peak_pending: UInt64(d.peakPending), invalidations: UInt64(d.invalidations))
        return 0
    }
}

/// `svakit_machine_set_free_hook()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_machine_set_free_hook(_ h: UnsafeMutablePointer<svakit_machine>?, _ fn: svakit_free_fn?,
                                 _ ctx: UnsafeMutableRawPointer?) -> Int32 {
    withMachine(h) { m in
        if let fn {
            let cb = CCallback(fn: fn, ctx: ctx)
            m.setTableFreeHook { pfn, level, site in cb.fn(cb.ctx, UInt64(pfn.rawValue), UInt32(level), UInt32(site.rawValue)) }
        } else {
            m.setTableFreeHook(nil)
        }
        return 0
    }
}

/// `svakit_iommu_set_driver()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_set_driver(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32,
                                    _ ops: UnsafePointer<svakit_iommu_driver_ops>?,
                                    _ ctx: UnsafeMutableRawPointer?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let unit = try m.iommu(IOMMUID(iommu))
        guard let o = ops?.pointee else { unit.setDriver(nil); return 0 }
        var d = IOMMUDriver()
        if let f = o.invalidate_range {
            let cb = CCallback(fn: f, ctx: ctx)
            d.invalidateRange = { pasid, start, end, leaf in cb.fn(cb.ctx, pasid.rawValue, start, end, leaf ? 1 : 0) }
        }
        if let f = o.invalidate_pasid {
            let cb = CCallback(fn: f, ctx: ctx)
            d.invalidatePASID = { pasid in cb.fn(cb.ctx, pasid.rawValue) }
        }
        if let f = o.invalidate_all {
            let cb = CCallback(fn: f, ctx: ctx)
            d.invalidateAll = { cb.fn(cb.ctx) }
        }
        if let f = o.fence {
            let cb = CCallback(fn: f, ctx: ctx)
            d.fence = { cb.fn(cb.ctx) }
        }
        unit.setDriver(d)
        return 0
    }
}
