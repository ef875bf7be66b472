// SPDX-License-Identifier: Apache-2.0
import SVAKit

/// What a run of a scenario showed, from worst to best.
public enum Verdict: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// The device read the attacker's secret through the stale walk.
    case exploited = "EXPLOITED"
    /// The oracle reported a DMA use-after-free, but nothing leaked.
    case useAfterFree = "use-after-free"
    /// No report: every walk met a live table or faulted.
    case safe

    /// The raw value: "EXPLOITED", "use-after-free" or "safe".
    public var description: String { rawValue }
}

/// What a scenario ended with.
public struct ScenarioOutcome: Sendable {
    /// The scenario's name.
    public var name: String
    /// Use-after-free reports the walk oracle made during the scenario.
    public var reports: [UAFReport]
    /// The device read the attacker's target through the stale walk.
    public var secretLeaked: Bool
    /// The device's final access faulted cleanly instead.
    public var finalFault: DMAFault?
    /// IOMMU invalidation commands issued during the scenario.
    public var invalidations: Int
    /// Kernel table frames that went through the deferred list.
    public var framesDeferred: Int = 0
    /// The largest batch the deferred work freed at once.
    public var largestBatch: Int = 0

    /// Reports whose walk translated through the stale frame.
    public var escalations: Int { reports.filter(\.escalation).count }
    /// Reports whose walk wrote A/D bits into the stale frame.
    public var corruptions: Int { reports.filter(\.corruption).count }

    /// The verdict the outcome supports.
    public var verdict: Verdict { reports.isEmpty ? .safe : (secretLeaked ? .exploited : .useAfterFree) }
}

/// One seed scenario as a row of the table the CLI and the test suites share:
/// its name, the story it tells, and the verdict each free mode must give on
/// the default machine (LIFO reuse, an IOMMU with paging-structure caches).
public struct Scenario: Sendable {
    /// The scenario's name (`svakit run NAME`).
    public let name: ScenarioName
    /// What happens, in one sentence, and which kernel path frees the table.
    public let story: String
    /// The verdict under each free mode.
    public let expected: [FreeMode: Verdict]

    /// Runs it on `m` (a fresh machine built with the mode under test).
    public func run(on m: Machine, iommu: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> ScenarioOutcome {
        try runScenario(name, on: m, iommu: iommu)
    }

    /// Every seed scenario, in `ScenarioName` order. The unfixed kernel
    /// (immediate) is exploited everywhere; linux-6.19 exactly where x86
    /// allocates a kernel table without the PT_kernel mark (set_memory's
    /// split tables, the boot-time direct map: docs/KERNEL-MODEL.md §2.7);
    /// complete nowhere.
    public static let all: [Scenario] = ScenarioName.allCases.map { name in
        let unfixed: Verdict = name.unfixedVerdict
        let hole: Verdict = name.isLinux619Hole ? unfixed : .safe
        return Scenario(name: name, story: name.story, expected: [
            .immediate: unfixed,
            .linux619: hole,
            .complete: .safe,
        ])
    }

    /// The row for `name`.
    public static func named(_ name: ScenarioName) -> Scenario { all.first { $0.name == name }! }
}

/// The seed scenarios (seed 000 and the paths seed 001's review found).
public enum ScenarioName: String, Sendable, CaseIterable {
    /// A huge vmap replaces a PTE table: pmd_free_pte_page (seed 000).
    case hugeVmap = "huge-vmap"
    /// A 1 GiB vmap replaces a PMD table and its PTE tables: pud_free_pmd_page.
    case pudFreePmd = "pud-free-pmd"
    /// set_memory splits an execmem 2 MiB ROX leaf; set_memory_rox collapses
    /// it and frees the split PTE table (cpa_collapse_large_pages). The
    /// table's entry has no U/S, so a user request cannot complete.
    case setMemoryCollapse = "set-memory-collapse"
    /// The same with a supervisor request through a supervisor-SVA PASID
    /// (beyond Linux: `IOMMUConfig.svaSupervisorRequests`), which U/S does
    /// not stop.
    case setMemoryCollapseSupervisor = "set-memory-collapse-supervisor"
    /// Hot-remove of memory present at boot frees boot-time tables; then hot-add.
    case hotRemoveBoot = "hot-remove-boot"
    /// Sixteen rounds of vmalloc, device access, vfree and huge vmalloc.
    case vmallocStorm = "vmalloc-storm"
    /// A freed PMD table reused with a table pointer in it: the stale walk
    /// sets A in the freed frame before it reaches any leaf (the review's
    /// point against clearing U/S).
    case pmdTableReuse = "pmd-table-reuse"
    /// huge-vmap with the device's walk under the sixth 2 MiB slot of a
    /// 12 MiB vmalloc_huge: pmd_free_pte_page's one-page flush names that
    /// slot's first page.
    case hugeVmapSlot5 = "huge-vmap-slot5"
    /// pud-free-pmd with the device's walk under the sixth 2 MiB slot of the
    /// GiB: pud_free_pmd_page's one-page flush names only the first slot.
    case pudFreePmdSlot5 = "pud-free-pmd-slot5"

    /// The story, as `svakit demo` and the docs tell it.
    public var story: String {
        switch self {
        case .hugeVmap:
            "vfree leaves a PTE table (its range lazily freed); once vm_unmap_aliases purges the range, vmalloc_huge "
                + "maps a 2 MiB leaf over it and frees it (pmd_free_pte_page)"
        case .pudFreePmd:
            "a 1 GiB vmap replaces a PMD table and the PTE table under it (pud_free_pmd_page)"
        case .setMemoryCollapse:
            "set_memory splits an execmem 2 MiB ROX leaf; set_memory_rox collapses it and frees the split PTE table"
        case .setMemoryCollapseSupervisor:
            "the same, with a supervisor request through a supervisor-SVA PASID (beyond Linux)"
        case .hotRemoveBoot:
            "memory hot-remove frees the boot-time direct-map PMD table before it clears the PUD entry (remove_pagetable)"
        case .vmallocStorm:
            "sixteen rounds of map, device access, vunmap and huge vmap over fresh PTE tables"
        case .pmdTableReuse:
            "a 1 GiB vmap frees a cached PMD table; reused with a table pointer, the stale walk sets A in it"
        case .hugeVmapSlot5:
            "huge-vmap under the sixth 2 MiB slot of a 12 MiB vmalloc_huge: the slot's own pmd_free_pte_page "
                + "flushes its first page"
        case .pudFreePmdSlot5:
            "a 1 GiB vmap frees a PMD table whose sixth slot's PTE table the device cached; pud_free_pmd_page "
                + "flushes only the GiB's first page"
        }
    }

    /// Whether linux-6.19 frees this scenario's table at once: x86 allocates
    /// it without the PT_kernel mark the merged series defers on.
    public var isLinux619Hole: Bool {
        switch self {
        case .setMemoryCollapse, .setMemoryCollapseSupervisor, .hotRemoveBoot: true
        default: false
        }
    }

    /// Whether the device is given supervisor SVA and makes supervisor
    /// requests (`IOMMUConfig.svaSupervisorRequests`).
    public var usesSupervisorSVA: Bool { self == .setMemoryCollapseSupervisor }

    /// What the unfixed kernel gives: EXPLOITED, except where the freed
    /// table's entry lacks U/S and the request is a user one (a split
    /// table, linked with _KERNPG_TABLE): the stale walk reads the freed
    /// frame and faults at the leaf, a use-after-free that leaks nothing.
    public var unfixedVerdict: Verdict { self == .setMemoryCollapse ? .useAfterFree : .exploited }

    /// Whether the device's cached walk to the freed table is under a 2 MiB
    /// slot the freeing path's one-page flush (flush_tlb_kernel_range(addr,
    /// addr + PAGE_SIZE - 1)) does not name: an IOMMU whose one-page
    /// invalidation drops only the walk-cache entries covering that page
    /// keeps the entry (docs/KERNEL-MODEL.md §3.6).
    public var cachesWalkOutsideFlushedPage: Bool { self == .pudFreePmdSlot5 }
}

/// Runs one scenario on a fresh machine (built by the caller with the mode
/// under test). Each follows the same story: a bound device touches a kernel
/// address (its walk faults at the leaf, the upper levels stay cached), a
/// kernel path frees a table on that walk, the deferred work is flushed (as
/// the kworker would run), an attacker takes the next free frames (LIFO) and
/// plants a user leaf to a secret, and the device touches the address again.
public func runScenario(_ name: ScenarioName, on m: Machine,
                        iommu: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> ScenarioOutcome {
    var iommu = iommu
    if name.usesSupervisorSVA { iommu.svaSupervisorRequests = true }
    let s = try SVASetup(m, iommu: iommu)
    let reportsBefore = m.reportCount
    let invalidationsBefore = s.iommu.counters.invalidations
    var leaked = false
    var last: Result<[UInt8], DMAFault> = .success([])
    switch name {
    case .hugeVmap, .hugeVmapSlot5:
        // vfree unmaps without a flush and parks the range on the lazy list
        // (mm/vmalloc.c, 6.12): vmalloc_huge would land past it. A purge
        // (vm_unmap_aliases, as every set_memory_* call makes) flushes the
        // range once and returns it; the device walks again after that
        // flush, so what stops it is pmd_free_pte_page's one-page flush.
        let secret = try makeSecret(m)
        let slot: UInt64 = name == .hugeVmapSlot5 ? 5 : 0
        // Slots 0..<slot: a huge filler area (2 MiB leaves, no PTE tables),
        // so the small area lands in slot `slot`; the device walks its
        // second page there.
        let filler = slot > 0 ? try m.vmallocHuge(slot << 21) : nil
        let area = try m.vmalloc(slot > 0 ? 8192 : 4096)
        let va = area + (slot > 0 ? 4096 : 0)
        _ = try s.touch(m, va)
        try m.vfree(area)
        if let filler { try m.vfree(filler) }
        m.vmUnmapAliases()
        _ = try s.touch(m, va)
        _ = try m.vmallocHuge((slot + 1) << 21)
        m.flushDeferredWork()
        _ = try plantLeaf(m, va: va, level: 1, target: secret)
        last = try s.touch(m, va)
        leaked = last.isSecret
    case .pudFreePmdSlot5:
        // The device's walk reaches slot 5's PTE table after the vunmap's
        // flush (the walk faults at the empty PTE, the PDPTE and slot 5's
        // PDE stay cached); pud_free_pmd_page frees that PTE table and the
        // PMD table and flushes [base, base + 4 KiB) only.
        let secret = try makeSecret(m)
        let base = m.layout.vmallocStart + (8 << 30)
        let va = base + (5 << 21) + (3 << 12)
        try m.map(va, to: 0x1000)
        try m.vunmap(va, size: 4096)
        _ = try s.touch(m, va)
        try m.vmapHuge(base, phys: 0, size: .size1G)
        m.flushDeferredWork()
        for _ in 0..<2 { _ = try plantLeaf(m, va: va, level: 1, target: secret) }
        last = try s.touch(m, va)
        leaked = last.isSecret
    case .pudFreePmd:
        let secret = try makeSecret(m)
        let base = m.layout.vmallocStart + (8 << 30)
        try m.map(base, to: 0x1000)
        _ = try s.touch(m, base)
        try m.vunmap(base, size: 4096)
        try m.vmapHuge(base, phys: 0, size: .size1G)   // the PTE table, then the PMD table
        m.flushDeferredWork()
        for _ in 0..<2 { _ = try plantLeaf(m, va: base, level: 1, target: secret) }
        last = try s.touch(m, base)
        leaked = last.isSecret
    case .setMemoryCollapse, .setMemoryCollapseSupervisor:
        // execmem's ROX cache: a 2 MiB huge mapping (vmalloc_huge stands in
        // for the module area). A set_memory on one page splits it; the
        // split table's PMD entry is _KERNPG_TABLE, without U/S.
        // The device's first access caches the PDE that points at the split
        // table (and, for a supervisor request, the leaf of that page); the
        // attack aims at another page under the same PDE.
        let supervisor = name == .setMemoryCollapseSupervisor
        let secret = try makeSecret(m)
        let region = try m.vmallocHuge(2 << 20)
        let va = region + (7 << 12), target = region + (9 << 12)
        try m.setMemory(va, pages: 1, clear: PageTableEntry.writable)   // __split_large_page
        _ = try s.touch(m, va, supervisor: supervisor)
        try m.setMemoryROX(region, pages: 512)                        // CPA_COLLAPSE: the table is freed
        m.flushDeferredWork()
        _ = try plantLeaf(m, va: target, level: 1, target: secret)
        last = try s.touch(m, target, supervisor: supervisor)
        leaked = last.isSecret
    case .hotRemoveBoot:
        // A 2 MiB secret, so the planted 2 MiB leaf starts at its first byte.
        let secret = try m.allocFrames(order: 9, owner: 0x5ec)
        try m.writeWord(secret, index: 0, secretWord)
        let first = UInt64(m.config.frames) - (1 << 18)   // the last GiB, mapped at boot
        let va = try m.directMapAddress(first << 12)
        _ = try s.touch(m, va)                             // caches the PDPTE -> boot PMD table
        // The attacker strikes at the first moment the freed table can be
        // reached. In Linux's order that is inside remove_pagetable:
        // free_pmd_table frees the boot PMD table before its pud_clear and
        // the final flush_tlb_all, so another CPU's allocation gets the
        // frame while the PUD entry (and any cached copy) still points at it.
        let window = WindowAttack()
        m.setKernelWindowHook { _, _, _ in
            window.strike { () throws(SVAError) in
                _ = try plantLeaf(m, va: va, level: 2, target: secret)
                return try s.touch(m, va)
            }
        }
        defer { m.setKernelWindowHook(nil) }
        try m.hotRemove(pfn: first, pages: 1 << 18)
        m.flushDeferredWork()
        if let seen = try window.result() {
            last = seen
        } else {
            // No window (complete clears, flushes and defers): after it.
            _ = try plantLeaf(m, va: va, level: 2, target: secret)
            last = try s.touch(m, va)
        }
        leaked = last.isSecret
        try m.hotAdd(pfn: first, pages: 1 << 18)
    case .vmallocStorm:
        let secret = try makeSecret(m)
        let region = m.layout.vmallocStart + (16 << 30)
        for i in 0..<16 {
            let va = region + UInt64(i) << 21
            try m.map(va + UInt64(i) << 12, to: 0x1000)
            _ = try s.touch(m, va + UInt64(i) << 12)
            try m.vunmap(va, size: 2 << 20)
            try m.vmapHuge(va, phys: 0, size: .size2M)
            m.flushDeferredWork()
            _ = try plantLeaf(m, va: va + UInt64(i) << 12, level: 1, target: secret)
            last = try s.touch(m, va + UInt64(i) << 12)
            leaked = leaked || last.isSecret
            try m.vunmap(va, size: 2 << 20)
        }
    case .pmdTableReuse:
        // The device caches the PDPTE of a 1 GiB region (and the PDE of its
        // first 2 MiB); the 1 GiB vmap frees the PTE and PMD tables. An
        // address in another 2 MiB of the region misses the PDE cache and
        // starts at the cached PDPTE, in the freed PMD frame: the entry the
        // attacker planted there is a table pointer, so the walker sets its
        // A bit (a write into the freed frame) before it reads the leaf.
        let secret = try makeSecret(m)
        let base = m.layout.vmallocStart + (12 << 30)
        let va = base + (5 << 21) + (3 << 12)
        try m.map(base, to: 0x1000)
        _ = try s.touch(m, base)
        try m.vunmap(base, size: 4096)
        try m.vmapHuge(base, phys: 0, size: .size1G)
        m.flushDeferredWork()
        let freed = [try m.allocFrames(owner: 0xbad), try m.allocFrames(owner: 0xbad)]
        let table = try plantLeaf(m, va: va, level: 1, target: secret)
        for f in freed {
            for i in 0..<512 { try m.writeWord(f, index: i, 0) }
            try m.writeWord(f, index: AddressLayout.index(va, level: 2),
                            table.physicalAddress | PageTableEntry.present | PageTableEntry.writable | PageTableEntry.user)
        }
        last = try s.touch(m, va)
        leaked = last.isSecret
    }
    m.flushDeferredWork()
    let d = m.deferredStats
    return ScenarioOutcome(name: name.rawValue, reports: m.reports(from: reportsBefore), secretLeaked: leaked,
                           finalFault: { if case .failure(let f) = last { return f } else { return nil } }(),
                           invalidations: s.iommu.counters.invalidations - invalidationsBefore,
                           framesDeferred: d.framesDeferred, largestBatch: d.largestBatch)
}

/// Seed 000 on `m` (see `ScenarioName.hugeVmap`).
public func runHugeVmapScenario(_ m: Machine, iommu: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> ScenarioOutcome {
    try runScenario(.hugeVmap, on: m, iommu: iommu)
}
