// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// Records every flush_tlb_kernel_range the machine makes.
private final class FlushLog: Sendable {
    let flushes = Mutex<[(UInt64, UInt64)]>([])
    init(_ m: Machine) { m.setTLBFlushHook { [self] s, e in flushes.withLock { $0.append((s, e)) } } }
    var all: [(UInt64, UInt64)] { flushes.withLock { $0 } }
    func take() -> [(UInt64, UInt64)] { flushes.withLock { f in defer { f = [] }; return f } }
}

/// vfree's lazy TLB flush (mm/vmalloc.c, Linux 6.12, docs/KERNEL-MODEL.md
/// §2.9), each order pinned, with its negative control.
@Suite struct VmapPurgeTests {
    @Test("vfree unmaps without a flush and parks the range (free_unmap_vmap_area, free_vmap_area_noflush, 6.12)")
    func vfreeDefersTheFlush() throws {
        let m = try Machine(MachineConfig(frames: gib, workMode: .manual))
        let va = try m.vmalloc(4096)
        let data = try #require(try m.translate(va).physicalAddress) >> 12
        let log = FlushLog(m)
        try m.vfree(va)
        #expect(log.all.isEmpty, "vunmap_range_noflush: no flush_tlb_kernel_range")
        #expect(try m.translate(va).physicalAddress == nil)   // the leaf is gone
        #expect(try m.descriptor(PFN(UInt32(data))).kind == .free, "vm->pages are freed before any flush")
        #expect(m.vmapLazyPages == 2, "va_size: the page and its guard page")
        #expect(throws: SVAError.notFound) { try m.vfree(va) }    // not busy any more
        // The lazily freed range is not reusable until purged.
        let next = try m.vmalloc(4096)
        #expect(next != va)
        #expect(log.all.isEmpty)
        // Negative control: vunmap_range flushes at once.
        try m.vunmap(next, size: 4096)
        #expect(log.take().map(\.0) == [next])
        #expect(m.audit() == [])
    }

    @Test("the purge flushes the union once, then returns the ranges (__purge_vmap_area_lazy, vm_unmap_aliases, 6.12)")
    func purgeFlushesTheUnionOnce() throws {
        let m = try Machine(MachineConfig(frames: gib, workMode: .manual))
        let a = try m.vmalloc(4096), b = try m.vmalloc(8192), c = try m.vmalloc(4096)
        #expect(b == a + 8192 && c == b + 12288)
        try m.vfree(a)
        try m.vfree(c)
        let log = FlushLog(m)
        m.vmUnmapAliases()
        let f = log.take()
        #expect(f.count == 1)
        #expect(f.first?.0 == a && f.first?.1 == c + 8192, "[lowest va_start, highest va_end), b's busy range inside")
        #expect(m.vmapLazyPages == 0)
        #expect(try m.vmalloc(4096) == a, "returned to the allocator only after the flush")
        m.vmUnmapAliases()
        #expect(log.all.isEmpty, "nothing lazy: no flush")
        #expect(try m.translate(b + 4096).physicalAddress != nil, "a busy area is untouched")
        #expect(m.events().filter { $0.type == .tlbFlush && $0.site == .vmapPurge }.count == 1)
        #expect(m.audit() == [])
    }

    @Test("lazy_max_pages() = fls(num_online_cpus()) * 32 MiB / PAGE_SIZE (mm/vmalloc.c, 6.12)",
          arguments: [(1, 8192), (2, 16384), (3, 16384), (4, 24576), (8, 32768), (256, 9 * 8192)])
    func lazyMaxPages(cpus: Int, pages: UInt64) throws {
        var c = MachineConfig(frames: 1 << 12)
        c.cpus = cpus
        let m = try Machine(c)
        #expect(m.lazyMaxPages == pages)
    }

    @Test("vfree purges once vmap_lazy_nr passes lazy_max_pages (free_vmap_area_noflush, drain_vmap_area_work, 6.12)")
    func vfreePurgesPastTheLimit() throws {
        var c = MachineConfig(frames: 1 << 15, workMode: .manual)
        c.cpus = 1
        let m = try Machine(c)
        #expect(m.lazyMaxPages == 8192)
        let big = try m.vmalloc((8192 - 1) << 12)   // 8191 pages and a guard page
        let small = try m.vmalloc(4096)
        let log = FlushLog(m)
        try m.vfree(big)
        #expect(m.vmapLazyPages == 8192)
        #expect(log.all.isEmpty, "8192 is not more than lazy_max_pages: no purge")
        try m.vfree(small)
        let f = log.take()
        #expect(f.count == 1 && f.first?.0 == big && f.first?.1 == small + 8192)
        #expect(m.vmapLazyPages == 0)
        #expect(try m.vmalloc(4096) == big)
        #expect(m.audit() == [])
    }

    @Test("a failed vmalloc goes back through vfree: its range goes lazy (__vmalloc_area_node fail:, 6.12)")
    func failedVmallocGoesLazy() throws {
        let m = try Machine(MachineConfig(frames: gib, workMode: .manual))
        let log = FlushLog(m)
        m.failNthAllocation(3)   // the range, the PTE table path or a data frame: the third allocation fails
        #expect(throws: SVAError.self) { _ = try m.vmalloc(4 << 12) }
        m.failNthAllocation(0)
        #expect(m.vmapLazyPages == 5)
        #expect(log.all.isEmpty)
        m.vmUnmapAliases()
        #expect(log.all.count == 1)
        #expect(m.audit() == [])
    }

    @Test("set_memory calls vm_unmap_aliases first (change_page_attr_set_clr, arch/x86/mm/pat/set_memory.c, 6.12)")
    func setMemoryPurges() throws {
        let m = try Machine(MachineConfig(frames: gib, workMode: .manual))
        try m.vfree(try m.vmalloc(4096))
        #expect(m.vmapLazyPages == 2)
        let log = FlushLog(m)
        try m.setMemory(try m.directMapAddress(64 << 20), pages: 1, clear: PageTableEntry.writable)
        let sites = m.events().filter { $0.type == .tlbFlush && $0.site != .vfree }.map(\.site)
        #expect(sites == [.vmapPurge, .setMemorySplit], "the purge comes before the change")
        #expect(log.all.count == 2)
        #expect(m.vmapLazyPages == 0)
    }

    @Test("a flush reaches the IOMMU as the pages it covers: (addr, addr + PAGE_SIZE - 1) is the page (do_kernel_range_flush)")
    func flushedPagesAreWholePages() {
        let a: UInt64 = 0xffff_c900_0020_0000
        #expect(Machine.flushedPages(a, a + 4095)! == (a, a + 4096))
        #expect(Machine.flushedPages(a, a + 4096)! == (a, a + 4096))
        #expect(Machine.flushedPages(a, a + 4097)! == (a, a + 8192))
        #expect(Machine.flushedPages(a + 8, a + 4096)! == (a, a + 4096), "one INVLPG at a + 8: its page")
        #expect(Machine.flushedPages(a + 8, a + 4105)! == (a, a + 8192))
        #expect(Machine.flushedPages(0, .max)! == (0, .max))
        #expect(Machine.flushedPages(a, a) == nil)
        #expect(Machine.flushedPages(.max - 4095, .max - 1)! == (.max - 4095, .max))
    }
}

/// What a one-page kernel range invalidation [addr, addr + 4 KiB), the
/// flush of pmd_free_pte_page / pud_free_pmd_page forwarded by
/// flush-on-kernel-tlb-flush, drops on each IOMMU profile
/// (docs/KERNEL-MODEL.md §3.6).
@Suite struct OnePageFlushTests {
    struct Cached: Equatable, CustomStringConvertible {
        var pml4e, pdpte, pdeSlot0, pdeSlot5: Bool
        var description: String { "pml4e \(pml4e) pdpte \(pdpte) pde0 \(pdeSlot0) pde5 \(pdeSlot5)" }
    }

    static func cached(_ iommu: IOMMU, pasid: UInt32, base: UInt64) -> Cached {
        iommu.hardware.locked { s in
            func has(_ level: Int, _ va: UInt64) -> Bool {
                s.withPSC(level) { $0.lookup(pasid: pasid, key: va >> UInt64(12 + 9 * (level - 1))) != nil }
            }
            return Cached(pml4e: has(4, base), pdpte: has(3, base), pdeSlot0: has(2, base),
                          pdeSlot5: has(2, base + (5 << 21)))
        }
    }

    /// Per profile: what stays cached after the one-page flush. Every
    /// profile that walks the kernel half drops the entries whose region
    /// holds the page; only riscv (non-leaf → IOTINVAL.VMA AV=0, the whole
    /// PSCID) drops the PDE of slot 5 too. smmuv3 (EPD1) cached nothing.
    @Test("a one-page range drops the walk-cache entries over that page; riscv drops the PSCID's",
          arguments: [(IOMMUProfile.generic, true), (.vtd, true), (.amd, true), (.riscv, false), (.smmuv3, false)])
    func onePageRangeDrops(profile: IOMMUProfile, keepsSlot5: Bool) throws {
        var c = IOMMUConfig()
        c.profile = profile
        let (m, s) = try boundMachine(c, kva: .onFlush)
        let ranges = Mutex<[(UInt64, UInt64)]>([])
        s.iommu.setDriver(IOMMUDriver(invalidateRange: { _, start, end, _ in
            ranges.withLock { $0.append((start, end)) }
        }))
        let base = m.layout.vmallocStart + (8 << 30)
        let slot5 = base + (5 << 21) + (3 << 12)
        try m.map(base, to: 0x1000)
        try m.map(slot5, to: 0x1000)
        _ = try s.touch(m, base)    // faults at the kernel leaf; the upper levels stay cached
        _ = try s.touch(m, slot5)
        let walks = profile != .smmuv3
        #expect(Self.cached(s.iommu, pasid: s.bond.pasid.rawValue, base: base)
                == Cached(pml4e: walks, pdpte: walks, pdeSlot0: walks, pdeSlot5: walks))
        try m.flushTLBKernelRange(base, base + 4095, site: .pmdFreePtePage)   // as pmd_free_pte_page
        #expect(Self.cached(s.iommu, pasid: s.bond.pasid.rawValue, base: base)
                == Cached(pml4e: false, pdpte: false, pdeSlot0: false, pdeSlot5: keepsSlot5), "\(profile)")
        #expect(ranges.withLock { $0.map(\.0) == [base] && $0.map(\.1) == [base + 4095] },
                "the IOMMU gets the whole page [addr, addr + 4095], not one byte short")
    }

    /// The verdict for flush-on-kernel-tlb-flush follows: huge-vmap does not
    /// depend on the slot (its one-page flush names the freed table's own
    /// slot), pud-free-pmd does (slot 5's PDE survives the flush of slot 0's
    /// first page) on every profile but riscv and smmuv3.
    @Test("flush-on-kernel-tlb-flush: the verdict per slot and profile", arguments: IOMMUProfile.allCases)
    func slotVariants(profile: IOMMUProfile) throws {
        let p = MatrixProfile(profile)
        let d = MatrixDesign(.flushOnKernelTLBFlush)
        for name in [ScenarioName.hugeVmap, .hugeVmapSlot5, .pudFreePmd, .pudFreePmdSlot5] {
            let m = try Machine(d.config(MachineConfig(frames: gib, workMode: .manual)))
            let o = try runScenario(name, on: m, iommu: p.iommu)
            let gap = name == .pudFreePmdSlot5 && profile != .riscv && profile != .smmuv3
            #expect(o.verdict == (gap ? .exploited : .safe), "\(name) on \(profile)")
            #expect(o.verdict == d.expected(name, on: p))
        }
    }
}
