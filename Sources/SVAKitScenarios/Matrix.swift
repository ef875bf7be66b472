// SPDX-License-Identifier: Apache-2.0
import SVAKit

/// One IOMMU the matrix runs every scenario on: a name and the
/// configuration of the IOMMU the scenario's device sits behind.
public struct MatrixProfile: Sendable {
    /// The name the matrix prints ("generic", ...).
    public let name: String
    /// The IOMMU the scenario adds.
    public let iommu: IOMMUConfig
    /// Whether an SVA walk on this IOMMU can reach the mm's kernel half (an
    /// x86-style shared root). Where it cannot, every design is safe.
    public let walksKernelHalf: Bool

    /// A profile.
    public init(name: String, iommu: IOMMUConfig, walksKernelHalf: Bool = true) {
        self.name = name
        self.iommu = iommu
        self.walksKernelHalf = walksKernelHalf
    }

    /// The profile of `profile`: the default IOMMU configuration with it.
    /// SMMUv3's SVA context descriptor sets EPD1, so it never walks the
    /// kernel half; every other profile shares the mm's root as x86 does.
    public init(_ profile: IOMMUProfile) {
        var c = IOMMUConfig()
        c.profile = profile
        self.init(name: profile.description, iommu: c, walksKernelHalf: profile != .smmuv3)
    }

    /// The profiles the matrix runs, in order: extend this one array.
    public static let all: [MatrixProfile] = IOMMUProfile.allCases.map { MatrixProfile($0) }
}

/// One column of the matrix: a mitigation and, for deferred-free, the free
/// mode that says which tables it defers.
public struct MatrixDesign: Sendable, Hashable, CustomStringConvertible {
    /// The mitigation.
    public let mitigation: Mitigation
    /// For `.deferredFree`: linux-6.19 (what was merged, its holes kept) or
    /// complete; nil for the other designs.
    public let freeMode: FreeMode?

    /// A design.
    public init(_ mitigation: Mitigation, freeMode: FreeMode? = nil) {
        self.mitigation = mitigation
        self.freeMode = mitigation == .deferredFree ? (freeMode ?? .linux619) : nil
    }

    /// "none", "deferred-free/linux-6.19", "deferred-free/complete", ...
    public var description: String {
        if let freeMode { return "\(mitigation)/\(freeMode)" }
        return mitigation.description
    }

    /// `base` set up for this design.
    public func config(_ base: MachineConfig) -> MachineConfig { base.with(mitigation, freeMode: freeMode) }

    /// Every design the matrix compares, in the order it prints them.
    public static let all: [MatrixDesign] = [
        MatrixDesign(.none),
        MatrixDesign(.deferredFree, freeMode: .linux619),
        MatrixDesign(.deferredFree, freeMode: .complete),
        MatrixDesign(.flushOnKernelTLBFlush),
        MatrixDesign(.kptiRoot),
        MatrixDesign(.clearUS),
    ]

    /// The verdict `scenario` must give under this design on `profile`:
    /// safe everywhere on an IOMMU that never walks the kernel half;
    /// otherwise the unfixed kernel gives the scenario's
    /// ``ScenarioName/unfixedVerdict``, and so does linux-6.19 where x86
    /// frees a table without the PT_kernel mark; flush-on-kernel-tlb-flush
    /// is exploited on hot-remove (remove_pagetable frees before its only
    /// flush) and where the device's cached walk is under a 2 MiB slot the
    /// one-page flush does not name, on an IOMMU whose one-page invalidation
    /// keeps the walk-cache entries of other addresses (every profile that
    /// walks the kernel half but riscv, whose non-leaf invalidation is
    /// PSCID-wide); clear-us leaves the stale walk (a use-after-free report)
    /// but refuses the planted leaf to a user request, not to a supervisor
    /// one; the other designs are safe.
    public func expected(_ scenario: ScenarioName, on profile: MatrixProfile) -> Verdict {
        guard profile.walksKernelHalf else { return .safe }
        switch mitigation {
        case .none: return scenario.unfixedVerdict
        case .deferredFree: return freeMode == .linux619 && scenario.isLinux619Hole ? scenario.unfixedVerdict : .safe
        case .flushOnKernelTLBFlush:
            // v1-v3 flush the IOMMU in flush_tlb_kernel_range / flush_tlb_all;
            // remove_pagetable frees the PMD table before its only flush.
            if scenario == .hotRemoveBoot { return .exploited }
            return scenario.cachesWalkOutsideFlushedPage && profile.iommu.profile != .riscv ? .exploited : .safe
        case .kptiRoot: return .safe
        // U/S cannot stop a supervisor request.
        case .clearUS: return scenario.usesSupervisorSVA ? .exploited : .useAfterFree
        }
    }
}

/// One cell of the matrix: a scenario under a design on a profile.
public struct MatrixCell: Sendable {
    /// The profile's name.
    public var profile: String
    /// The design (``MatrixDesign/description``).
    public var design: String
    /// The scenario.
    public var scenario: ScenarioName
    /// What the run showed.
    public var verdict: Verdict
    /// What ``MatrixDesign/expected(_:on:)`` says it must be.
    public var expected: Verdict
    /// Use-after-free reports (stale walks the oracle caught).
    public var reports: Int
    /// Reports whose walk wrote A/D bits into a freed frame.
    public var corruptions: Int
    /// IOMMU invalidation commands during the scenario.
    public var invalidations: Int
}

/// What a design costs on one profile, measured on ``CostWorkload``.
public struct MatrixCost: Sendable, Equatable {
    /// The profile's name.
    public var profile: String
    /// The design (``MatrixDesign/description``).
    public var design: String
    /// Kernel page-table frames the workload freed.
    public var kernelTableFrees: Int
    /// flush_tlb_kernel_range and flush_tlb_all calls the workload made.
    public var kernelTLBFlushes: Int
    /// IOMMU invalidation commands (the hardware's, per profile), per kernel table free.
    public var commandsPerKernelFree: Double
    /// IOMMU syncs (fences) for kernel addresses, per kernel table free.
    public var syncsPerKernelFree: Double
    /// Modelled device time of those commands and syncs, per kernel table
    /// free, in ns (docs/KERNEL-MODEL.md §4.6).
    public var deviceNsPerKernelFree: Double
    /// Syncs (fences, each a wait for the IOMMU) issued on the freeing path
    /// itself, in the caller of the kernel path, per kernel table free: what
    /// holds the (non-preemptible) caller up. Work the deferred worker does
    /// is not counted here.
    public var freeingPathSyncsPerFree: Double
    /// Modelled device time the caller of the kernel path waited for, per
    /// kernel table free, in ns.
    public var freeingPathDeviceNsPerFree: Double
    /// Page-table bytes one SVA bind adds beyond the mm's own tables.
    public var bytesPerSVAMM: Int
    /// Top-level entries mirrored into the IOMMU-only root (kpti-root), per
    /// new user region the workload mapped.
    public var rootSyncsPerUserRegion: Double
    /// IOMMU invalidation commands per ordinary user unmap (the MMU
    /// notifier's path), for comparison with the unfixed kernel.
    public var commandsPerUserUnmap: Double
    /// Use-after-free reports during the workload (a design that is safe on
    /// the scenarios must report none here either).
    public var reports: Int
    /// Calls of the gate (iommu_sva_invalidate_kva_range) per kernel table
    /// free: one per run of the deferred work (deferred-free), one per
    /// kernel TLB flush (flush-on-kernel-tlb-flush), none otherwise.
    public var gateCallsPerKernelFree: Double = 0
    /// The global lock each gate call takes in the kernel design the row
    /// models: the merged code's mutex `iommu_sva_lock`, taken whether or
    /// not an mm has SVA; v2's `spin_lock_irqsave(&iommu_mms_lock)`, taken
    /// while the key is on; nil for the designs without a gate. SVAKit's gate
    /// takes none (beyond Linux: a static key, then a lock-free list).
    public var gateLock: String? = nil
}

/// The workload the cost columns are measured on, the same for every
/// design: one device bound to one mm; `rounds` times a kernel mapping the
/// device touches, vunmap, a huge vmap over it (pmd_free_pte_page frees its
/// PTE table), vunmap again, and a 16 KiB vmalloc and vfree (three kernel TLB
/// flushes, one kernel table freed: the vfree flushes nothing, its five
/// pages wait on the lazy list until a purge, which comes only past
/// lazy_max_pages, 24576 pages on four CPUs), the deferred work run as
/// `schedule` says; then `userRegions` user pages, each in a new top-level
/// (PML4) slot, mapped, touched and unmapped.
public struct CostWorkload: Sendable {
    /// Kernel rounds (one kernel table freed each).
    public var rounds = 64
    /// With `DeferralSchedule.batched`: rounds between runs of the
    /// deferred work (its batch).
    public var batch = 16
    /// User regions, each in its own top-level slot.
    public var userRegions = 8
    /// When the deferred work runs. `DeferralSchedule.linux` (the
    /// default): after every kernel-path call that queued a table, before
    /// the next call, which is what Linux's schedule_work with no delay
    /// gives when the kworker's scheduling latency is below the gap between
    /// two freeing calls (the assumption; docs/MITIGATIONS.md).
    /// `DeferralSchedule.batched` (beyond Linux): every `batch` rounds.
    public var schedule = DeferralSchedule.linux

    /// The default workload: 64 rounds, the Linux schedule (batches of 16
    /// when batched), 8 user regions.
    public init(rounds: Int = 64, batch: Int = 16, userRegions: Int = 8, schedule: DeferralSchedule = .linux) {
        self.rounds = rounds
        self.batch = batch
        self.userRegions = userRegions
        self.schedule = schedule
    }

    /// Runs the workload on `m` (a fresh machine with the design under
    /// test, manual work) with its device behind `iommu`.
    public func measure(on m: Machine, iommu config: IOMMUConfig, profile: String,
                        design: String) throws(SVAError) -> MatrixCost {
        let tablesBefore = m.stats.userTables
        let s = try SVASetup(m, iommu: config)
        let bytesPerMM = (m.stats.userTables - tablesBefore - 1) * 4096   // less the mm's own root
        let reportsBefore = m.reportCount
        let region = m.layout.vmallocStart + (24 << 30)
        // The region's PMD table, made first so each round allocates one
        // table (the PTE table its huge vmap frees).
        try m.map(region + (1 << 29), to: 0x1000)
        try m.vfree(try m.vmalloc(16 << 10))   // and the PTE table the first 16 KiB areas share
        let c0 = s.iommu.counters, flushes0 = m.stats.kernelTLBFlushes, runs0 = m.deferredStats.batches
        let kernelTables0 = m.stats.kernelTables
        var pathFences = 0, pathNs: UInt64 = 0
        // PTE tables the 16 KiB areas allocate as they move up the vmalloc
        // area (their ranges wait on the lazy list; vfree frees no table).
        var vmallocTables = 0
        // One call of the freeing path: what the kernel's caller runs, then,
        // under Linux's schedule, the kworker (not counted as the caller's).
        func kernelCall(_ body: () throws(SVAError) -> Void) throws(SVAError) {
            let fences = s.iommu.counters.syncCommands(config.profile)
            ModelledDeviceTime.resetCurrentThread()
            try body()
            pathNs += ModelledDeviceTime.currentThreadNs
            pathFences += s.iommu.counters.syncCommands(config.profile) - fences
            if schedule == .linux { m.runDeferredWork() }
        }
        for i in 0..<rounds {
            let va = region + UInt64(i) << 21
            try m.map(va, to: 0x1000)
            _ = try s.touch(m, va)
            try kernelCall { () throws(SVAError) in try m.vunmap(va, size: 2 << 20) }
            try kernelCall { () throws(SVAError) in try m.vmapHuge(va, phys: 0, size: .size2M) }
            try kernelCall { () throws(SVAError) in try m.vunmap(va, size: 2 << 20) }
            // A 16 KiB area, as a thread stack (lazily freed).
            let t = m.stats.kernelTables
            try kernelCall { () throws(SVAError) in try m.vfree(try m.vmalloc(16 << 10)) }
            vmallocTables += m.stats.kernelTables - t
            if schedule == .batched, (i + 1) % batch == 0 { m.flushDeferredWork() }
        }
        m.flushDeferredWork()
        // Each round allocated one PTE table; what is gone again was freed.
        let frees = kernelTables0 + rounds + vmallocTables - m.stats.kernelTables
        let c1 = s.iommu.counters
        let kernelCommands = c1.invalidationCommands(config.profile) - c0.invalidationCommands(config.profile)
        let kernelSyncs = c1.syncCommands(config.profile) - c0.syncCommands(config.profile)
        let kernelNs = c1.modelledDeviceNs - c0.modelledDeviceNs

        // User side: new top-level slots, so kpti-root has entries to mirror.
        let syncs0 = (try? m.iommuRootSyncs(of: s.mm)) ?? 0
        let u0 = s.iommu.counters.invalidationCommands(config.profile)
        let page = try m.allocFrames()   // a frame a process could own (svakit_map refuses tables)
        defer { try? m.freeFrames(page) }
        for i in 0..<userRegions {
            let va = UInt64(i + 1) << 39
            try m.map(va, to: page.physicalAddress, prot: PageTableEntry.writable | PageTableEntry.user, in: s.mm)
            _ = try s.touch(m, va)
            try m.unmap(va, in: s.mm)
        }
        let userCommands = s.iommu.counters.invalidationCommands(config.profile) - u0
        let syncs = ((try? m.iommuRootSyncs(of: s.mm)) ?? 0) - syncs0
        let f = Double(max(frees, 1))
        let flushes = m.stats.kernelTLBFlushes - flushes0
        let (gateCalls, gateLock): (Int, String?) =
            switch m.mitigation {
            case .deferredFree: (m.deferredStats.batches - runs0, "iommu_sva_lock (mutex)")
            case .flushOnKernelTLBFlush: (flushes, "iommu_mms_lock (spin_lock_irqsave, v2)")
            default: (0, nil)
            }
        var cost = MatrixCost(profile: profile, design: design, kernelTableFrees: frees,
                          kernelTLBFlushes: flushes,
                          commandsPerKernelFree: Double(kernelCommands) / f,
                          syncsPerKernelFree: Double(kernelSyncs) / f,
                          deviceNsPerKernelFree: Double(kernelNs) / f,
                          freeingPathSyncsPerFree: Double(pathFences) / f,
                          freeingPathDeviceNsPerFree: Double(pathNs) / f,
                          bytesPerSVAMM: bytesPerMM,
                          rootSyncsPerUserRegion: Double(syncs) / Double(max(userRegions, 1)),
                          commandsPerUserUnmap: Double(userCommands) / Double(max(userRegions, 1)),
                          reports: Int(m.reportCount - reportsBefore))
        cost.gateCallsPerKernelFree = Double(gateCalls) / f
        cost.gateLock = gateLock
        return cost
    }
}

/// The matrix: every seed scenario for every profile and design, and each
/// design's cost per profile (`svakit demo --matrix`).
public struct Matrix: Sendable {
    /// Every cell, profile-major, then design, then scenario.
    public var cells: [MatrixCell]
    /// One cost row per profile and design.
    public var costs: [MatrixCost]
    /// Cells whose verdict is not the expected one.
    public var mismatches: [MatrixCell] { cells.filter { $0.verdict != $0.expected } }

    /// Runs it: each cell on a fresh machine from `base` (manual work, so
    /// deterministic), then `workload` (if any) on a fresh machine per cost row.
    public static func run(profiles: [MatrixProfile] = MatrixProfile.all,
                           designs: [MatrixDesign] = MatrixDesign.all,
                           scenarios: [ScenarioName] = ScenarioName.allCases,
                           base: MachineConfig = MachineConfig(frames: 1 << 20),
                           workload: CostWorkload? = CostWorkload()) throws(SVAError) -> Matrix {
        var base = base
        base.workMode = .manual
        if let workload { base.deferralSchedule = workload.schedule }
        var cells: [MatrixCell] = []
        var costs: [MatrixCost] = []
        for p in profiles {
            for d in designs {
                for s in scenarios {
                    let m = try Machine(d.config(base))
                    let o = try runScenario(s, on: m, iommu: p.iommu)
                    cells.append(MatrixCell(profile: p.name, design: d.description, scenario: s, verdict: o.verdict,
                                            expected: d.expected(s, on: p), reports: o.reports.count,
                                            corruptions: o.corruptions, invalidations: o.invalidations))
                }
                guard let workload else { continue }
                let m = try Machine(d.config(base))
                costs.append(try workload.measure(on: m, iommu: p.iommu, profile: p.name, design: d.description))
            }
        }
        return Matrix(cells: cells, costs: costs)
    }
}

extension IOMMUCounters {
    /// Invalidation commands the IOMMU's hardware received: one per
    /// request on the generic IOMMU, the profile's commands otherwise
    /// (`IOMMUCommandCounts`).
    public func invalidationCommands(_ profile: IOMMUProfile) -> Int {
        profile == .generic ? invalidations : commands.invalidations
    }

    /// Completion commands (syncs): the generic IOMMU's fences, or the
    /// profile's wait descriptors, CMD_SYNCs, COMPLETION_WAITs or IOFENCE.Cs.
    public func syncCommands(_ profile: IOMMUProfile) -> Int {
        profile == .generic ? fences : commands.syncs
    }
}
