// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// A direction from C (enum svakit_dma_direction): Linux's values.
@inline(__always)
private func direction(_ dir: UInt32) throws(SVAError) -> DMADirection {
    guard let d = DMADirection(rawValue: dir) else { throw .invalidArgument }
    return d
}

/// A CPU from C: SVAKIT_CPU_CURRENT is the calling thread's; the DMA layer
/// checks the rest.
@inline(__always)
private func cpuArgument(_ cpu: Int32) -> Int? { cpu == SVAKIT_CPU_CURRENT ? nil : Int(cpu) }

/// `svakit_iommu_domain_alloc()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_domain_alloc(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32, _ type: UInt32,
                                _ pgsizeBitmap: UInt64, _ domain: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(domain)
        guard let t = DomainType(rawValue: type) else { throw .invalidArgument }
        out.pointee = try m.createDomain(iommu: IOMMUID(iommu), type: t,
                                         pageSizes: pgsizeBitmap == 0 ? Machine.defaultPageSizes : pgsizeBitmap).rawValue
        return 0
    }
}

/// `svakit_iommu_domain_free()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_domain_free(_ h: UnsafeMutablePointer<svakit_machine>?, _ domain: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.freeDomain(DomainID(domain)); return 0 }
}

/// `svakit_iommu_attach_device()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_attach_device(_ h: UnsafeMutablePointer<svakit_machine>?, _ domain: UInt32,
                                 _ dev: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.attachDomain(DomainID(domain), to: DeviceID(dev)); return 0 }
}

/// `svakit_iommu_detach_device()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_detach_device(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.detachDomain(from: DeviceID(dev)); return 0 }
}

/// `svakit_iommu_map()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_map(_ h: UnsafeMutablePointer<svakit_machine>?, _ domain: UInt32, _ iova: UInt64,
                             _ phys: UInt64, _ size: UInt64, _ prot: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard prot & ~(SVAKIT_IOMMU_READ | SVAKIT_IOMMU_WRITE) == 0, prot & SVAKIT_IOMMU_READ != 0 else {
            throw .invalidArgument
        }
        try m.iommuMap(DomainID(domain), iova: iova, phys: phys, size: size, writable: prot & SVAKIT_IOMMU_WRITE != 0)
        return 0
    }
}

/// `svakit_iommu_unmap()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_unmap(_ h: UnsafeMutablePointer<svakit_machine>?, _ domain: UInt32, _ iova: UInt64,
                               _ size: UInt64, _ unmapped: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(unmapped)
        out.pointee = try m.iommuUnmap(DomainID(domain), iova: iova, size: size)
        return 0
    }
}

/// `svakit_iommu_iova_to_phys()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_iova_to_phys(_ h: UnsafeMutablePointer<svakit_machine>?, _ domain: UInt32,
                                      _ iova: UInt64, _ phys: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(phys)
        guard let p = try m.iovaToPhys(DomainID(domain), iova: iova) else { throw .notFound }
        out.pointee = p
        return 0
    }
}

/// `svakit_iommu_setup_default_domain()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_iommu_setup_default_domain(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ identity: Int32,
                             _ domain: UnsafeMutablePointer<UInt32>?,
                             _ reason: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let d = try requireOut(domain), r = try requireOut(reason)
        guard identity == 0 || identity == 1 else { throw .invalidArgument }
        let s = try m.setupDMA(for: DeviceID(dev), identity: identity == 1)
        d.pointee = s.domain.rawValue
        r.pointee = s.reason.rawValue
        return 0
    }
}

/// `svakit_dma_map_page()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_map_page(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ phys: UInt64,
                                _ size: UInt64, _ dir: UInt32, _ cpu: Int32,
                                _ dmaAddr: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(dmaAddr)
        out.pointee = try m.dmaMapPage(device: DeviceID(dev), phys: phys, size: size, direction: try direction(dir),
                                       cpu: cpuArgument(cpu))
        return 0
    }
}

/// `svakit_dma_unmap_page()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_unmap_page(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ dmaAddr: UInt64,
                                  _ size: UInt64, _ dir: UInt32, _ cpu: Int32) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try m.dmaUnmapPage(device: DeviceID(dev), address: dmaAddr, size: size, direction: try direction(dir),
                           cpu: cpuArgument(cpu))
        return 0
    }
}

/// `svakit_dma_map_sg()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_map_sg(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32,
                              _ sg: UnsafeMutablePointer<svakit_sg>?, _ nents: Int, _ dir: UInt32,
                              _ cpu: Int32) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard let sg else { throw .nullPointer }
        guard nents > 0, nents <= Int(Int32.max) else { throw .invalidArgument }
        let list = UnsafeMutableBufferPointer(start: sg, count: nents)
        let mapped = try m.dmaMapSG(device: DeviceID(dev), list.map { (phys: $0.phys, length: $0.length) },
                                    direction: try direction(dir), cpu: cpuArgument(cpu))
        for i in list.indices {
            let s = i < mapped.segments.count ? mapped.segments[i] : DMASegment(address: 0, length: 0)
            list[i].dma_address = s.address
            list[i].dma_length = s.length
        }
        return Int32(mapped.segments.count)
    }
}

/// `svakit_dma_unmap_sg()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_unmap_sg(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32,
                                _ sg: UnsafePointer<svakit_sg>?, _ nents: Int, _ dir: UInt32,
                                _ cpu: Int32) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard let sg else { throw .nullPointer }
        guard nents > 0 else { throw .invalidArgument }
        let segments = UnsafeBufferPointer(start: sg, count: nents).prefix { $0.dma_length != 0 }
            .map { DMASegment(address: $0.dma_address, length: $0.dma_length) }
        try m.dmaUnmapSG(device: DeviceID(dev), segments: segments, direction: try direction(dir),
                         cpu: cpuArgument(cpu))
        return 0
    }
}

/// `svakit_dma_alloc_coherent()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_alloc_coherent(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ size: UInt64,
                                      _ cpu: Int32, _ dmaAddr: UnsafeMutablePointer<UInt64>?,
                                      _ pfn: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let a = try requireOut(dmaAddr), p = try requireOut(pfn)
        let r = try m.dmaAllocCoherent(device: DeviceID(dev), size: size, cpu: cpuArgument(cpu))
        a.pointee = r.address
        p.pointee = UInt64(r.pfn.rawValue)
        return 0
    }
}

/// `svakit_dma_free_coherent()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_free_coherent(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ size: UInt64,
                                     _ pfn: UInt64, _ dmaAddr: UInt64, _ cpu: Int32) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try m.dmaFreeCoherent(device: DeviceID(dev), size: size, address: dmaAddr, pfn: try pfnArgument(pfn),
                              cpu: cpuArgument(cpu))
        return 0
    }
}

/// `svakit_dma_flush_queues()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_flush_queues(_ h: UnsafeMutablePointer<svakit_machine>?) -> Int32 {
    withMachine(h) { m in m.flushDMAQueues(); return 0 }
}

/// `svakit_dma_run_timers()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_run_timers(_ h: UnsafeMutablePointer<svakit_machine>?, _ nowNs: UInt64) -> Int32 {
    withMachine(h) { m in m.runDMATimers(now: nowNs); return 0 }
}

/// `svakit_flush_queue_stats()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_flush_queue_stats(_ h: UnsafeMutablePointer<svakit_machine>?, _ domain: UInt32,
                                     _ stats: UnsafeMutablePointer<svakit_flush_queue_stats>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(stats)
        let s = try m.flushQueueStats(DomainID(domain))
        out.pointee = svakit_flush_queue_stats(
            pending: UInt64(s.pending), flushes: UInt64(s.flushes), full_flushes: UInt64(s.fullFlushes),
            released: UInt64(s.released), window_p50_ns: s.windowP50, window_p99_ns: s.windowP99,
            window_max_ns: s.windowMax, quarantined_frames: UInt64(s.quarantinedFrames))
        return 0
    }
}

/// `svakit_dma_set_mask()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_set_mask(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ mask: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard let bits = DMADeviceLimits.width(ofMask: mask) else { throw .invalidArgument }
        try m.dmaSetMask(device: DeviceID(dev), bits: bits)
        return 0
    }
}

/// `svakit_dma_get_mask()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_get_mask(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32,
                                _ mask: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(mask)
        out.pointee = DMADeviceLimits.bitMask(try m.dmaLimits(device: DeviceID(dev)).maskBits)
        return 0
    }
}

/// `svakit_device_set_bus_dma_limit()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_device_set_bus_dma_limit(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32,
                                            _ limit: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let bits: Int?
        if limit == 0 { bits = nil } else {
            guard let b = DMADeviceLimits.width(ofMask: limit) else { throw .invalidArgument }
            bits = b
        }
        try m.setBusDMALimit(device: DeviceID(dev), bits: bits)
        return 0
    }
}

/// `svakit_dma_map_benchmark()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_dma_map_benchmark(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32,
                                     _ map: UnsafeMutablePointer<svakit_map_benchmark>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let b = try requireOut(map)
        let p = try MapBenchmark.Parameters(
            threads: b.pointee.threads, seconds: b.pointee.seconds, node: b.pointee.node,
            dmaBits: b.pointee.dma_bits, dmaDir: b.pointee.dma_dir, transNs: b.pointee.dma_trans_ns,
            granule: b.pointee.granule)
        let k = try MapBenchmark.run(m, device: DeviceID(dev), p).kernelFigures
        b.pointee.avg_map_100ns = k.avgMap100ns
        b.pointee.map_stddev = k.mapStddev
        b.pointee.avg_unmap_100ns = k.avgUnmap100ns
        b.pointee.unmap_stddev = k.unmapStddev
        return 0
    }
}

/// `svakit_flush_queue_entries()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_flush_queue_entries(_ h: UnsafeMutablePointer<svakit_machine>?, _ domain: UInt32,
                                       _ out: UnsafeMutablePointer<svakit_queued_iova>?, _ cap: Int,
                                       _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let n = try requireOut(count)
        guard cap == 0 || out != nil else { throw .nullPointer }
        guard cap >= 0 else { throw .invalidArgument }
        let q = try m.queuedIOVAs(DomainID(domain))
        for (i, e) in q.prefix(cap).enumerated() {
            out![i] = svakit_queued_iova(iova: e.iova, size: e.size, counter: e.counter, ring: UInt32(e.ring),
                                         reserved: 0)
        }
        n.pointee = q.count
        return 0
    }
}
