// SPDX-License-Identifier: Apache-2.0

/// What a scenario ended with.
public struct ScenarioOutcome: Sendable {
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

    public var escalations: Int { reports.filter(\.escalation).count }
    public var corruptions: Int { reports.filter(\.corruption).count }
}

/// One SVA device bound to one process, the setting of every scenario.
public struct SVASetup: Sendable {
    public let iommu: IOMMU
    public let device: UInt32
    public let mm: UInt32
    public let bond: SVABond

    public init(_ m: Machine, iommu config: IOMMUConfig = IOMMUConfig()) throws(SVAError) {
        iommu = try m.addIOMMU(config)
        device = try m.addDevice(iommu: iommu.id)
        mm = try m.createAddressSpace()
        bond = try m.bindSVA(device: device, mm: mm)
    }

    /// A user-privilege DMA read of 8 bytes.
    public func touch(_ m: Machine, _ va: UInt64) throws(SVAError) -> Result<[UInt8], DMAFault> {
        try m.dmaRead(device: device, pasid: bond.pasid, va: va, count: 8)
    }
}

/// The attacker's part: take the next free frame (the freed table, under
/// LIFO reuse) and fill the entry that maps `va` at `level` so it points at
/// `target` as a user-accessible leaf.
public func plantLeaf(_ m: Machine, va: UInt64, level: Int, target: PFN) throws(SVAError) -> PFN {
    let frame = try m.allocFrames(owner: 0xbad)
    let huge = level > 1 ? PageTableEntry.pageSize : 0
    let entry = target.physicalAddress | PageTableEntry.present | PageTableEntry.writable | PageTableEntry.user | huge
    for i in 0..<512 { try m.writeWord(frame, index: i, 0) }
    try m.writeWord(frame, index: AddressLayout.index(va, level: level), entry)
    return frame
}

/// The secret the attacker wants: a kernel data frame holding "SECRET!!".
public func makeSecret(_ m: Machine) throws(SVAError) -> PFN {
    let s = try m.allocFrames(owner: 0x5ec)
    try m.writeWord(s, index: 0, secretWord)
    return s
}

public let secretWord: UInt64 = 0x2121_5445_5243_4553  // "SECRET!!" little-endian

extension Result where Success == [UInt8], Failure == DMAFault {
    /// Whether the read returned the secret.
    public var isSecret: Bool {
        guard case .success(let b) = self, b.count == 8 else { return false }
        return b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == secretWord
    }
}

/// The seed scenarios (seed 000 and the paths seed 001's review found).
public enum ScenarioName: String, Sendable, CaseIterable {
    /// A huge vmap replaces a PTE table: pmd_free_pte_page (seed 000).
    case hugeVmap = "huge-vmap"
    /// A 1 GiB vmap replaces a PMD table and its PTE tables: pud_free_pmd_page.
    case pudFreePmd = "pud-free-pmd"
    /// set_memory splits a direct-map leaf, then cpa collapse frees the table.
    case setMemoryCollapse = "set-memory-collapse"
    /// Hot-remove of memory present at boot frees boot-time tables; then hot-add.
    case hotRemoveBoot = "hot-remove-boot"
    /// Sixteen rounds of vmalloc, device access, vfree and huge vmalloc.
    case vmallocStorm = "vmalloc-storm"
}

/// Runs one scenario on a fresh machine (built by the caller with the mode
/// under test). Each follows the same story: a bound device touches a kernel
/// address (its walk faults at the leaf, the upper levels stay cached), a
/// kernel path frees a table on that walk, the deferred work is flushed (as
/// the kworker would run), an attacker takes the next free frames (LIFO) and
/// plants a user leaf to a secret, and the device touches the address again.
public func runScenario(_ name: ScenarioName, on m: Machine,
                        iommu: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> ScenarioOutcome {
    let s = try SVASetup(m, iommu: iommu)
    let reportsBefore = m.reportCount
    let invalidationsBefore = s.iommu.counters.invalidations
    var leaked = false
    var last: Result<[UInt8], DMAFault> = .success([])
    switch name {
    case .hugeVmap:
        let secret = try makeSecret(m)
        let va = try m.vmalloc(4096)
        _ = try s.touch(m, va)
        try m.vfree(va)
        _ = try m.vmallocHuge(2 << 20)
        m.flushDeferredWork()
        _ = try plantLeaf(m, va: va, level: 1, target: secret)
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
    case .setMemoryCollapse:
        let secret = try makeSecret(m)
        let va = try m.directMapAddress(64 << 20)
        try m.setMemory(va, pages: 1, clear: PageTableEntry.writable)   // split
        _ = try s.touch(m, va)
        try m.setMemory(va, pages: 1, set: PageTableEntry.writable)
        try m.collapseLargePages(va)
        m.flushDeferredWork()
        _ = try plantLeaf(m, va: va, level: 1, target: secret)
        last = try s.touch(m, va)
        leaked = last.isSecret
    case .hotRemoveBoot:
        // A 2 MiB secret, so the planted 2 MiB leaf starts at its first byte.
        let secret = try m.allocFrames(order: 9, owner: 0x5ec)
        try m.writeWord(secret, index: 0, secretWord)
        let first = UInt64(m.config.frames) - (1 << 18)   // the last GiB, mapped at boot
        let va = try m.directMapAddress(first << 12)
        _ = try s.touch(m, va)                             // caches the PDPTE -> boot PMD table
        try m.hotRemove(pfn: first, pages: 1 << 18)
        m.flushDeferredWork()
        _ = try plantLeaf(m, va: va, level: 2, target: secret)
        last = try s.touch(m, va)
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
