// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_vmalloc_area()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_vmalloc_area(_ h: UnsafeMutablePointer<svakit_machine>?, _ start: UnsafeMutablePointer<UInt64>?,
                                _ end: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let s = try requireOut(start), e = try requireOut(end)
        s.pointee = m.vmallocArea.lowerBound
        e.pointee = m.vmallocArea.upperBound
        return 0
    }
}

/// `svakit_vmalloc()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_vmalloc(_ h: UnsafeMutablePointer<svakit_machine>?, _ size: UInt64,
                           _ va: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(va)
        out.pointee = try m.vmalloc(size)
        return 0
    }
}

/// `svakit_vmalloc_huge()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_vmalloc_huge(_ h: UnsafeMutablePointer<svakit_machine>?, _ size: UInt64,
                                _ va: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(va)
        out.pointee = try m.vmallocHuge(size)
        return 0
    }
}

/// `svakit_vfree()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_vfree(_ h: UnsafeMutablePointer<svakit_machine>?, _ va: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.vfree(va); return 0 }
}

/// `svakit_vm_unmap_aliases()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_vm_unmap_aliases(_ h: UnsafeMutablePointer<svakit_machine>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in m.vmUnmapAliases(); return 0 }
}

/// `svakit_vmap_huge()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_vmap_huge(_ h: UnsafeMutablePointer<svakit_machine>?, _ va: UInt64, _ phys: UInt64,
                             _ size: UInt64, _ prot: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try m.vmapHuge(va, phys: phys, size: try pageSize(size), prot: prot)
        return 0
    }
}

/// `svakit_vunmap()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_vunmap(_ h: UnsafeMutablePointer<svakit_machine>?, _ va: UInt64, _ size: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.vunmap(va, size: size); return 0 }
}

/// `svakit_direct_map_va()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_direct_map_va(_ h: UnsafeMutablePointer<svakit_machine>?, _ phys: UInt64,
                                 _ va: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(va)
        out.pointee = try m.directMapAddress(phys)
        return 0
    }
}

/// `svakit_set_memory()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_set_memory(_ h: UnsafeMutablePointer<svakit_machine>?, _ va: UInt64, _ npages: UInt64,
                              _ set: UInt64, _ clear: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.setMemory(va, pages: npages, set: set, clear: clear); return 0 }
}

/// `svakit_set_memory_rox()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_set_memory_rox(_ h: UnsafeMutablePointer<svakit_machine>?, _ va: UInt64, _ npages: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in Int32(clamping: try m.setMemoryROX(va, pages: npages)) }
}

/// `svakit_cpa_collapse_large_pages()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_cpa_collapse_large_pages(_ h: UnsafeMutablePointer<svakit_machine>?, _ va: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.collapseLargePages(va) ? 1 : 0 }
}

/// `svakit_memory_hot_remove()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_memory_hot_remove(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64,
                                     _ nrPages: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.hotRemove(pfn: pfn, pages: nrPages); return 0 }
}

/// `svakit_memory_hot_add()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_memory_hot_add(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64,
                                  _ nrPages: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.hotAdd(pfn: pfn, pages: nrPages); return 0 }
}

/// `svakit_machine_set_tlb_flush_hook()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_machine_set_tlb_flush_hook(_ h: UnsafeMutablePointer<svakit_machine>?, _ fn: svakit_tlb_flush_fn?,
                                      _ ctx: UnsafeMutableRawPointer?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        if let fn {
            let hook = CCallback(fn: fn, ctx: ctx)
            m.setTLBFlushHook { start, end in hook.fn(hook.ctx, start, end) }
        } else {
            m.setTLBFlushHook(nil)
        }
        return 0
    }
}

/// `svakit_flush_tlb_kernel_range()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_flush_tlb_kernel_range(_ h: UnsafeMutablePointer<svakit_machine>?, _ start: UInt64,
                                          _ end: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.flushTLBKernelRange(start, end); return 0 }
}
