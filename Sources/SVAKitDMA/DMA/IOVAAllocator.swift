// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if canImport(Glibc)
import Glibc
#endif
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The IOVA allocator on its own (include/svakit.h, "The IOVA allocator as
/// a library"): an `IOVADomain` with no clock, so its depot work runs only
/// when `runDepotWork()` is called, and the checks the C API makes. Every
/// method refuses bad input with a typed error before it changes anything.
package final class IOVAAllocator: Sendable {
    package let domain: IOVADomain

    /// init_iova_domain(granule, startPfn) + iova_domain_init_rcaches with
    /// `cpus` CPUs. The domain ends at the anchor (~0).
    package init(granule: UInt64, startPfn: UInt64, cpus: Int) throws(SVAError) {
        guard granule > 0, granule <= 4096, granule & (granule - 1) == 0 else { throw .invalidArgument }
        guard startPfn >= 1, startPfn < IOVATree.anchorPfn - 1 else { throw .invalidArgument }
        guard cpus >= 1, cpus <= Int(SVAKIT_IOVA_MAX_CPUS) else { throw .invalidArgument }
        domain = IOVADomain(granule: granule, startPfn: startPfn, endPfn: IOVATree.anchorPfn - 1,
                            cpuCount: cpus, clock: { 0 })
    }

    private func check(cpu: Int) throws(SVAError) {
        guard cpu >= 0, cpu < domain.rcache.cpuCount else { throw .invalidArgument }
    }

    private func check(size: UInt64, limitPfn: UInt64) throws(SVAError) {
        guard size >= 1, size <= 1 << 62, limitPfn < IOVATree.anchorPfn else { throw .invalidArgument }
    }

    /// alloc_iova.
    package func alloc(size: UInt64, limitPfn: UInt64, sizeAligned: Bool) throws(SVAError) -> UInt64 {
        try check(size: size, limitPfn: limitPfn)
        guard let pfn = domain.alloc(pages: size, limitPfn: limitPfn, sizeAligned: sizeAligned) else {
            throw .noSpace
        }
        return pfn
    }

    /// free_iova; a pfn in no range is refused.
    package func free(pfn: UInt64) throws(SVAError) {
        guard domain.free(pfn: pfn) != nil else { throw .notFound }
    }

    /// alloc_iova_fast.
    package func allocFast(cpu: Int, size: UInt64, limitPfn: UInt64, flushRcache: Bool) throws(SVAError) -> UInt64 {
        try check(cpu: cpu)
        try check(size: size, limitPfn: limitPfn)
        guard let pfn = domain.allocFast(pages: size, limitPfn: limitPfn, cpu: cpu, flushRcache: flushRcache) else {
            throw .noSpace
        }
        return pfn
    }

    /// free_iova_fast; a pfn in no range of the tree is refused.
    package func freeFast(cpu: Int, pfn: UInt64, size: UInt64) throws(SVAError) {
        try check(cpu: cpu)
        guard size >= 1, size <= 1 << 62 else { throw .invalidArgument }
        guard domain.find(pfn: pfn) != nil else { throw .notFound }
        domain.freeFast(pfn: pfn, pages: size, cpu: cpu)
    }

    /// reserve_iova.
    package func reserve(lo: UInt64, hi: UInt64) throws(SVAError) {
        guard domain.reserve(lo: lo, hi: hi) != nil else { throw .invalidArgument }
    }

    /// free_cpu_cached_iovas.
    package func freeCPUCachedIOVAs(cpu: Int) throws(SVAError) {
        try check(cpu: cpu)
        domain.freeCPUCachedIOVAs(cpu: cpu)
    }

    /// Each pending depot work, once; how many ran.
    package func runDepotWork() -> Int { domain.runDepotWork() }

    /// The tree's cache and the depots.
    package func stats() -> svakit_iova_stats {
        var s = svakit_iova_stats()
        let (cache, nodes) = domain.tree.locked { t in (t.cache, t.nodeCount) }
        s.cached_node_lo = cache.node.lo
        s.cached32_node_lo = cache.node32.lo
        s.max32_alloc_size = cache.max32AllocSize
        s.dma_32bit_pfn = 1 << UInt64(32 - domain.shift)
        withUnsafeMutableBytes(of: &s.depot_size) { b in
            for k in 0..<IOVARcache.sizeClasses {
                b.storeBytes(of: UInt32(domain.depotSize(sizeClass: k)), toByteOffset: 4 * k, as: UInt32.self)
            }
        }
        withUnsafeMutableBytes(of: &s.depot_work_pending) { b in
            for k in 0..<IOVARcache.sizeClasses {
                b[k] = domain.depotWorkPending(sizeClass: k) ? 1 : 0
            }
        }
        s.cpus = UInt32(domain.rcache.cpuCount)
        s.nodes = UInt64(nodes)
        return s
    }

    /// One CPU's magazine sizes.
    package func cpuStats(cpu: Int) throws(SVAError) -> svakit_iova_cpu_stats {
        try check(cpu: cpu)
        var s = svakit_iova_cpu_stats()
        for k in 0..<IOVARcache.sizeClasses {
            let (l, p) = domain.rcache.cpus[cpu * IOVARcache.sizeClasses + k].locked { c in
                (UInt32(c.loaded.count), UInt32(c.prev.count))
            }
            withUnsafeMutableBytes(of: &s.loaded) { $0.storeBytes(of: l, toByteOffset: 4 * k, as: UInt32.self) }
            withUnsafeMutableBytes(of: &s.prev) { $0.storeBytes(of: p, toByteOffset: 4 * k, as: UInt32.self) }
        }
        return s
    }
}

/// The C handle of a standalone IOVA domain (struct svakit_iova_domain,
/// opaque in the header): a page of its own holding a magic word, the
/// allocator and a check word tying the two to the page's address. On
/// destroy it becomes a tombstone (magic "DEAD", owner cleared, read-only)
/// that is never unmapped, so a destroyed domain gets -EBADF, as
/// `MachineHandle` does for machines.
package enum IOVAHandle {
    package static let liveMagic: UInt64 = 0x5356_4b49_4f56_4144  // "SVKIOVAD"
    package static let deadMagic: UInt64 = 0x4445_4144_4445_4144  // "DEADDEAD"

    private struct Layout {
        package var magic: UInt64
        package var owner: UnsafeMutableRawPointer?
        package var check: UInt64
    }

    private static func check(_ h: UnsafeMutableRawPointer, _ owner: UnsafeMutableRawPointer?) -> UInt64 {
        let o = UInt64(UInt(bitPattern: owner)), a = UInt64(UInt(bitPattern: h))
        return (o ^ 0x5356_4b49_c0ff_ee00) &* 0x9E37_79B9_7F4A_7C15 ^ a
    }

    /// A new handle that holds a reference to `allocator`.
    package static func make(_ allocator: IOVAAllocator) -> OpaquePointer {
        let p = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(p != UnsafeMutableRawPointer(bitPattern: -1), "cannot map an IOVA domain handle")
        let owner = Unmanaged.passRetained(allocator).toOpaque()
        p!.bindMemory(to: Layout.self, capacity: 1)
            .initialize(to: Layout(magic: liveMagic, owner: owner, check: check(p!, owner)))
        return OpaquePointer(p!)
    }

    /// The allocator behind a live handle; nil for a tombstone or a forgery.
    package static func allocator(_ h: OpaquePointer) -> Unmanaged<IOVAAllocator>? {
        let raw = UnsafeMutableRawPointer(h)
        let l = raw.assumingMemoryBound(to: Layout.self).pointee
        guard l.magic == liveMagic, let o = l.owner, l.check == check(raw, o) else { return nil }
        return Unmanaged.fromOpaque(o)
    }

    /// Turns a live handle into a tombstone and drops its reference.
    package static func retire(_ h: OpaquePointer) throws(SVAError) {
        guard let a = allocator(h) else { throw .badHandle }
        let raw = UnsafeMutableRawPointer(h)
        raw.assumingMemoryBound(to: Layout.self).pointee = Layout(magic: deadMagic, owner: nil, check: 0)
        mprotect(raw, 4096, PROT_READ)
        a.release()
    }
}
