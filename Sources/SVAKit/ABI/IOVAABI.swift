// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The glue of the IOVA entry points: NULL and dead domains are refused
/// here, errors become negative errno. The checks live in `IOVAAllocator`.
@inline(__always)
private func withIOVA(_ h: OpaquePointer?, _ body: (IOVAAllocator) throws(SVAError) -> Int32) -> Int32 {
    guard let h else { return SVAError.nullPointer.errno }
    guard let a = IOVAHandle.allocator(h) else { return SVAError.badHandle.errno }
    return a._withUnsafeGuaranteedRef { a in
        do throws(SVAError) { return try body(a) } catch { return error.errno }
    }
}

@inline(__always)
private func flag(_ v: Int32) throws(SVAError) -> Bool {
    guard v == 0 || v == 1 else { throw .invalidArgument }
    return v == 1
}

/// `svakit_iova_domain_create()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iova_domain_create(_ granule: UInt64, _ startPfn: UInt64, _ cpus: UInt32,
                                      _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    do throws(SVAError) {
        let o = try requireOut(out)
        o.pointee = IOVAHandle.make(try IOVAAllocator(granule: granule, startPfn: startPfn, cpus: Int(cpus)))
        return 0
    } catch { return error.errno }
}

/// `svakit_iova_domain_destroy()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iova_domain_destroy(_ iovad: OpaquePointer?) -> Int32 {
    guard let iovad else { return SVAError.nullPointer.errno }
    do throws(SVAError) { try IOVAHandle.retire(iovad); return 0 } catch { return error.errno }
}

/// `svakit_alloc_iova()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_alloc_iova(_ iovad: OpaquePointer?, _ size: UInt64, _ limitPfn: UInt64, _ sizeAligned: Int32,
                              _ pfn: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withIOVA(iovad) { a throws(SVAError) in
        let out = try requireOut(pfn)
        out.pointee = try a.alloc(size: size, limitPfn: limitPfn, sizeAligned: try flag(sizeAligned))
        return 0
    }
}

/// `svakit_free_iova()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_free_iova(_ iovad: OpaquePointer?, _ pfn: UInt64) -> Int32 {
    withIOVA(iovad) { a throws(SVAError) in try a.free(pfn: pfn); return 0 }
}

/// `svakit_alloc_iova_fast()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_alloc_iova_fast(_ iovad: OpaquePointer?, _ cpu: UInt32, _ size: UInt64, _ limitPfn: UInt64,
                                   _ flushRcache: Int32, _ pfn: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withIOVA(iovad) { a throws(SVAError) in
        let out = try requireOut(pfn)
        out.pointee = try a.allocFast(cpu: Int(cpu), size: size, limitPfn: limitPfn,
                                      flushRcache: try flag(flushRcache))
        return 0
    }
}

/// `svakit_free_iova_fast()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_free_iova_fast(_ iovad: OpaquePointer?, _ cpu: UInt32, _ pfn: UInt64, _ size: UInt64) -> Int32 {
    withIOVA(iovad) { a throws(SVAError) in try a.freeFast(cpu: Int(cpu), pfn: pfn, size: size); return 0 }
}

/// `svakit_reserve_iova()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_reserve_iova(_ iovad: OpaquePointer?, _ lo: UInt64, _ hi: UInt64) -> Int32 {
    withIOVA(iovad) { a throws(SVAError) in try a.reserve(lo: lo, hi: hi); return 0 }
}

/// `svakit_free_cpu_cached_iovas()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_free_cpu_cached_iovas(_ iovad: OpaquePointer?, _ cpu: UInt32) -> Int32 {
    withIOVA(iovad) { a throws(SVAError) in try a.freeCPUCachedIOVAs(cpu: Int(cpu)); return 0 }
}

/// `svakit_iova_run_depot_work()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iova_run_depot_work(_ iovad: OpaquePointer?) -> Int32 {
    withIOVA(iovad) { a in Int32(a.runDepotWork()) }
}

/// `svakit_iova_stats()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iova_stats(_ iovad: OpaquePointer?, _ out: UnsafeMutablePointer<svakit_iova_stats>?) -> Int32 {
    withIOVA(iovad) { a throws(SVAError) in try store(a.stats(), to: out); return 0 }
}

/// `svakit_iova_cpu_stats()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iova_cpu_stats(_ iovad: OpaquePointer?, _ cpu: UInt32,
                                  _ out: UnsafeMutablePointer<svakit_iova_cpu_stats>?) -> Int32 {
    withIOVA(iovad) { a throws(SVAError) in
        let o = try requireOut(out)
        o.pointee = try a.cpuStats(cpu: Int(cpu))
        return 0
    }
}
