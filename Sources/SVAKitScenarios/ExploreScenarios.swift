// SPDX-License-Identifier: Apache-2.0
import SVAKit
import SVAKitExplorer

/// A race the explorer runs (`svakit explore`): a seed scenario cut where
/// its kernel path begins, or the DMA API's lazy window, with its actors.
///
/// The set-up before the race (binding the device, the walk that fills the
/// device's caches) runs on the explorer's thread, with no schedule point.
/// Then these actors run, one step at a time, in every order the search
/// reaches:
/// - `kernel`: the scenario's freeing path (vmalloc_huge, vmap of a 1 GiB
///   leaf, set_memory_rox, memory hot-remove), as the mode under test has
///   it; a deferral's `schedule_work` spawns
/// - `kworker`: the deferred work (splice, invalidate, fence, free), which
///   may run at any later step;
/// - `attacker`: another CPU's allocation (it gets a freed table under LIFO
///   reuse) and its store of a user leaf to the secret, at the entry the
///   device's walk will read;
/// - `device`: one DMA access through the IOMMU: the cache lookup, the walk
///   (entry loads, A/D writes), the fills.
///
/// In the DMA window: `driver` (dma_unmap_page, then the page's free),
/// `timer` (the flush queue's timeout: fq_flush_timeout), `attacker` (the
/// page's next owner writes its secret), `device` (a read of the old IOVA).
public struct ExploreProgram: Sendable, Equatable {
    /// What races.
    public enum Race: Sendable, Equatable, Hashable {
        /// A seed scenario's kernel path against the device's walk.
        case scenario(ScenarioName)
        /// The DMA API's lazy window: an unmap and free against a read of
        /// the old IOVA and the flush-queue timer.
        case dmaWindow
        /// Hot-remove of memory that was hot-added: its direct-map PMD
        /// table was allocated at run time (alloc_low_pages ->
        /// __get_free_pages, no PT_kernel mark, so linux-6.19 frees it at
        /// once, as at boot). With `linuxHotRemoveOrder` in `complete` it
        /// is deferred while still linked (explorer only).
        case hotRemoveHotAdded
    }

    /// What races.
    public var race: Race
    /// The kernel page-table free mode (SVA races).
    public var freeMode: FreeMode = .linux619
    /// The DMA mode (the DMA window): strict, lazy or lazy+quarantine.
    public var dmaMode: DMAMode = .lazy
    /// The IOMMU.
    public var iommu = IOMMUConfig()
    /// A fix broken on purpose (builds with the schedule points only).
    public var brokenFix: BrokenFix?
    /// Who invalidates the IOMMU for kernel addresses: nobody (the series
    /// as merged does it in its deferred work), or v1's design, the gate in
    /// flush_tlb_kernel_range (`KVAInvalidation/onFlush`, with the frees at
    /// once: `FreeMode/immediate`).
    public var kvaInvalidation = KVAInvalidation.none
    /// Hot-remove in Linux's order even in `complete` (free, then clear,
    /// with complete's deferral of every kernel table): the what-if of
    /// whether deferring those frees closes Linux's window (beyond Linux).
    public var linuxHotRemoveOrder = false

    /// A program.
    public init(_ race: Race, freeMode: FreeMode = .linux619, dmaMode: DMAMode = .lazy,
                iommu: IOMMUConfig = IOMMUConfig(), brokenFix: BrokenFix? = nil) {
        self.race = race
        self.freeMode = freeMode
        self.dmaMode = dmaMode
        self.iommu = iommu
        self.brokenFix = brokenFix
    }

    /// "huge-vmap", "dma-window".
    public var name: String {
        switch race {
        case .scenario(let n): n.rawValue
        case .dmaWindow: "dma-window"
        case .hotRemoveHotAdded: "hot-remove-hot-added"
        }
    }

    /// Whether this build has the schedule points the explorer drives (the
    /// `ScheduleExplorer` trait, CMake's `SVAKIT_SCHEDULE_EXPLORER`).
    public static var pointsCompiledIn: Bool {
        #if SVAKIT_SCHEDULE_POINTS
        true
        #else
        false
        #endif
    }

    /// Every race name `svakit explore` accepts.
    public static var names: [String] {
        ScenarioName.allCases.map(\.rawValue) + ["hot-remove-hot-added", "dma-window"]
    }

    /// The race named `name`.
    public static func race(named name: String) -> Race? {
        if name == "dma-window" { return .dmaWindow }
        if name == "hot-remove-hot-added" { return .hotRemoveHotAdded }
        return ScenarioName(rawValue: name).map { .scenario($0) }
    }

    /// The machine every execution starts from.
    public var machineConfig: MachineConfig {
        // Every execution boots a fresh machine, and boot is O(memory): 1
        // GiB (a 1 GiB vmap maps physical [0, 1 GiB)), 2 GiB where hot-remove
        // needs a whole GiB mapped at boot past the first, 256 MiB for DMA.
        let frames = switch race {
        case .scenario(.hotRemoveBoot), .hotRemoveHotAdded: 1 << 19
        case .dmaWindow: 1 << 16
        default: 1 << 18
        }
        var cfg = MachineConfig(frames: frames, eventLogCapacity: 1 << 12)
        cfg.workMode = .manual
        switch race {
        case .scenario, .hotRemoveHotAdded:
            cfg.freeMode = freeMode
            cfg.kvaInvalidation = kvaInvalidation
        case .dmaWindow: cfg = dmaMode.machineConfig(cfg)
        }
        return cfg
    }

    /// A fresh instance: a new machine, set up to where the race begins.
    public func instance() throws(SVAError) -> ExploreInstance {
        let m = try Machine(machineConfig)
        #if SVAKIT_SCHEDULE_POINTS
        m.breakFix(brokenFix)
        m.hotRemoveInLinuxOrder(linuxHotRemoveOrder)
        #else
        guard brokenFix == nil, !linuxHotRemoveOrder else { throw .notSupported }
        #endif
        switch race {
        case .scenario(let name): return try scenarioInstance(name, m)
        case .hotRemoveHotAdded: return try scenarioInstance(.hotRemoveBoot, m, hotAddedFirst: true)
        case .dmaWindow: return try dmaWindowInstance(m)
        }
    }

    // MARK: - The seed scenarios

    private func scenarioInstance(_ name: ScenarioName, _ m: Machine,
                                  hotAddedFirst: Bool = false) throws(SVAError) -> ExploreInstance {
        var iommu = self.iommu
        if name.usesSupervisorSVA { iommu.svaSupervisorRequests = true }
        let s = try SVASetup(m, iommu: iommu)
        let race = RaceRecord(m)
        var supervisor = false
        let kernel: () throws(SVAError) -> Void
        let attack: () throws(SVAError) -> Void
        let va: UInt64
        switch name {
        case .hugeVmap, .hugeVmapSlot5:
            let secret = try makeSecret(m)
            let slot: UInt64 = name == .hugeVmapSlot5 ? 5 : 0
            let filler = slot > 0 ? try m.vmallocHuge(slot << 21) : nil
            let area = try m.vmalloc(slot > 0 ? 8192 : 4096)
            va = area + (slot > 0 ? 4096 : 0)
            _ = try s.touch(m, va)
            try m.vfree(area)
            if let filler { try m.vfree(filler) }
            m.vmUnmapAliases()
            _ = try s.touch(m, va)
            // vmalloc_huge's 512 page allocations are not part of the race
            // (they conflict with the attacker's only through the
            // allocator's lock, in 512 equivalent orders): the kernel actor
            // maps the 2 MiB leaf over the slot with vmap, the same
            // vmap_try_huge_pmd -> pmd_free_pte_page.
            let slotBase = va & ~((1 << 21) - 1)
            kernel = { () throws(SVAError) in try m.vmapHuge(slotBase, phys: 0, size: .size2M) }
            attack = { () throws(SVAError) in try plantEntry(m, va: va, level: 1, target: secret) }
        case .pudFreePmd, .pudFreePmdSlot5:
            let secret = try makeSecret(m)
            let base = m.layout.vmallocStart + (8 << 30)
            va = name == .pudFreePmdSlot5 ? base + (5 << 21) + (3 << 12) : base
            try m.map(va, to: 0x1000)
            if name == .pudFreePmd { _ = try s.touch(m, va) }
            try m.vunmap(va, size: 4096)
            if name == .pudFreePmdSlot5 { _ = try s.touch(m, va) }
            kernel = { () throws(SVAError) in try m.vmapHuge(base, phys: 0, size: .size1G) }
            attack = { () throws(SVAError) in
                for _ in 0..<2 { try plantEntry(m, va: va, level: 1, target: secret) }
            }
        case .setMemoryCollapse, .setMemoryCollapseSupervisor:
            supervisor = name == .setMemoryCollapseSupervisor
            let secret = try makeSecret(m)
            let region = try m.vmallocHuge(2 << 20)
            let first = region + (7 << 12)
            va = region + (9 << 12)
            try m.setMemory(first, pages: 1, clear: PageTableEntry.writable)
            _ = try s.touch(m, first, supervisor: supervisor)
            kernel = { () throws(SVAError) in try m.setMemoryROX(region, pages: 512) }
            attack = { () throws(SVAError) in try plantEntry(m, va: va, level: 1, target: secret) }
        case .hotRemoveBoot:
            let secret = try m.allocFrames(order: 9, owner: 0x5ec)
            try m.writeWord(secret, index: 0, secretWord)
            let first = UInt64(m.config.frames) - (1 << 18)
            if hotAddedFirst {
                // Removed and added back: the direct map's tables for the
                // GiB are now run-time allocations.
                try m.hotRemove(pfn: first, pages: 1 << 18)
                m.flushDeferredWork()
                try m.hotAdd(pfn: first, pages: 1 << 18)
            }
            va = try m.directMapAddress(first << 12)
            _ = try s.touch(m, va)
            kernel = { () throws(SVAError) in try m.hotRemove(pfn: first, pages: 1 << 18) }
            attack = { () throws(SVAError) in try plantEntry(m, va: va, level: 2, target: secret) }
        case .vmallocStorm:
            // One round of the storm (the sixteen are the same race).
            let secret = try makeSecret(m)
            let region = m.layout.vmallocStart + (16 << 30)
            va = region + (1 << 12)
            try m.map(va, to: 0x1000)
            _ = try s.touch(m, va)
            try m.vunmap(region, size: 2 << 20)
            kernel = { () throws(SVAError) in try m.vmapHuge(region, phys: 0, size: .size2M) }
            attack = { () throws(SVAError) in try plantEntry(m, va: va, level: 1, target: secret) }
        case .pmdTableReuse:
            let secret = try makeSecret(m)
            let base = m.layout.vmallocStart + (12 << 30)
            va = base + (5 << 21) + (3 << 12)
            try m.map(base, to: 0x1000)
            _ = try s.touch(m, base)
            try m.vunmap(base, size: 4096)
            kernel = { () throws(SVAError) in try m.vmapHuge(base, phys: 0, size: .size1G) }
            attack = { () throws(SVAError) in
                // Two freed frames taken; a PTE table of the attacker's with
                // the leaf; each taken frame gets a table pointer to it where
                // the walk through a stale PDPTE reads.
                let taken = [try m.allocFrames(owner: 0xbad), try m.allocFrames(owner: 0xbad)]
                let table = try m.allocFrames(owner: 0xbad)
                try m.writeWord(table, index: AddressLayout.index(va, level: 1), leafEntry(secret, level: 1))
                for f in taken {
                    try m.writeWord(f, index: AddressLayout.index(va, level: 2),
                                    table.physicalAddress | PageTableEntry.present | PageTableEntry.writable
                                        | PageTableEntry.user)
                }
            }
        }
        let before = m.reportCount
        let dev = s
        return ExploreInstance(
            actors: [
                (name: "kernel", body: { race.run(kernel) }),
                (name: "attacker", body: { race.run(attack) }),
                (name: "device", body: {
                    race.run { () throws(SVAError) in race.leaked = try dev.touch(m, va, supervisor: supervisor).isSecret }
                }),
            ],
            finish: { race.outcome(m, reportsFrom: before) })
    }

    // MARK: - The DMA window

    private func dmaWindowInstance(_ m: Machine) throws(SVAError) -> ExploreInstance {
        let iommu = try m.addIOMMU(self.iommu)
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        _ = try m.setupDMA(for: dev)
        let buf = try m.allocFrames(owner: 0xd1)
        try m.writeWord(buf, index: 0, 0)
        let a = try m.dmaMapPage(device: dev, phys: buf.physicalAddress, size: 4096, direction: .toDevice)
        // The device reads its buffer: the IOTLB holds the page.
        guard try m.dmaRead(device: dev, pasid: .noPASID, va: a, count: 8).fault == nil else { throw .invalidArgument }
        let race = RaceRecord(m)
        let before = m.reportCount
        return ExploreInstance(
            actors: [
                (name: "driver", body: {
                    race.run { () throws(SVAError) in
                        try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: .toDevice)
                        try m.freeFrames(buf)
                    }
                }),
                (name: "timer", body: { m.flushDMAQueues() }),
                (name: "attacker", body: { race.run { () throws(SVAError) in _ = try makeSecret(m) } }),
                (name: "device", body: {
                    race.run { () throws(SVAError) in
                        race.leaked = try m.dmaRead(device: dev, pasid: .noPASID, va: a, count: 8).isSecret
                    }
                }),
            ],
            finish: { race.outcome(m, reportsFrom: before) })
    }
}

/// The actors' shared record: what the device saw and the first error an
/// actor met. Touched only by the running actor (the explorer runs one at a
/// time) and then by `finish`.
private final class RaceRecord: @unchecked Sendable {
    let machine: Machine
    var leaked = false
    var error: SVAError?

    init(_ m: Machine) { machine = m }

    func run(_ body: () throws(SVAError) -> Void) {
        do throws(SVAError) { try body() } catch { self.error = self.error ?? error }
    }

    func outcome(_ m: Machine, reportsFrom before: UInt64) -> ExploreOutcome {
        m.flushDeferredWork()
        m.flushDMAQueues()
        let reports = m.reports(from: before).filter { !$0.isPageLeak }
        precondition(error == nil, "an actor failed: \(error!)")
        return ExploreOutcome(reports: reports.count, escalations: reports.filter(\.escalation).count,
                              corruptions: reports.filter(\.corruption).count, leaked: leaked)
    }
}

/// The attacker's store: a frame taken from the allocator (under LIFO, the
/// table the kernel freed last) gets one user leaf to `target`, at the entry
/// the device's walk of `va` reads at `level`. One store, where `plantLeaf`
/// zeroes the frame first: the explorer interleaves every store.
private func plantEntry(_ m: Machine, va: UInt64, level: Int, target: PFN) throws(SVAError) {
    let frame = try m.allocFrames(owner: 0xbad)
    try m.writeWord(frame, index: AddressLayout.index(va, level: level), leafEntry(target, level: level))
}

private func leafEntry(_ target: PFN, level: Int) -> UInt64 {
    target.physicalAddress | PageTableEntry.present | PageTableEntry.writable | PageTableEntry.user
        | (level > 1 ? PageTableEntry.pageSize : 0)
}
