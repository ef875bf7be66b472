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
    for i in 0..<512 { try m.writeWord(UInt64(frame.rawValue), index: i, 0) }
    try m.writeWord(UInt64(frame.rawValue), index: AddressLayout.index(va, level: level), entry)
    return frame
}

/// The secret the attacker wants: a kernel data frame holding "SECRET!!".
public func makeSecret(_ m: Machine) throws(SVAError) -> PFN {
    let s = try m.allocFrames(owner: 0x5ec)
    try m.writeWord(UInt64(s.rawValue), index: 0, secretWord)
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

/// Seed 000 (Jann Horn's sequence): a device bound to a process touches a
/// kernel vmalloc address; the walk faults at the leaf (U/S = 0) but the IOMMU
/// caches the upper levels, the PDE among them. A huge vmap then replaces the
/// PTE table (pmd_free_pte_page), the table is freed and, under LIFO reuse,
/// reallocated by an attacker who points its entry at a secret frame. The
/// device touches the address again.
///
/// Without an IOMMU invalidation the cached PDE leads the walk into the
/// attacker's frame: the oracle reports the use-after-free, the escalation
/// and the A/D write, and the device reads the secret. With the invalidation
/// on the CPU flush (`.onFlush`) the walk starts over and faults cleanly.
public func runHugeVmapScenario(_ m: Machine, iommu: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> ScenarioOutcome {
    let secret = try makeSecret(m)
    let s = try SVASetup(m, iommu: iommu)
    let before = m.reportCount
    let invBefore = s.iommu.counters.invalidations
    let va = try m.vmalloc(4096)
    _ = try s.touch(m, va)  // faults at the leaf; PML4E, PDPTE and PDE stay cached
    try m.vfree(va)
    let huge = try m.vmallocHuge(2 << 20)
    precondition(huge == va, "first fit reuses the range")
    _ = try plantLeaf(m, va: va, level: 1, target: secret)
    let second = try s.touch(m, va)
    let reports = m.reports(from: before)
    return ScenarioOutcome(name: "huge-vmap", reports: reports, secretLeaked: second.isSecret,
                           finalFault: { if case .failure(let f) = second { return f } else { return nil } }(),
                           invalidations: s.iommu.counters.invalidations - invBefore)
}
