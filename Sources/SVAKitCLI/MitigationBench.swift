// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
import SVAKitScenarios

/// What each mitigation costs the kernel's freeing path in host time, on
/// the matrix's workload (SVAKitScenarios/Matrix.swift `CostWorkload`):
/// `--mms` SVA mms bound on one IOMMU (the gate invalidates each one's
/// PASID), then `--rounds` rounds of map, device access, vunmap, huge vmap
/// over the PTE table (pmd_free_pte_page), vunmap and a 16 KiB vmalloc and
/// vfree (lazy: one purge per lazy_max_pages of them). Timed apart: the freeing path (the caller of those kernel paths,
/// non-preemptible in Linux where the gate runs from flush_tlb_kernel_range)
/// and the deferred work (a kworker in Linux); per kernel table freed. Also
/// a user page mapped in a new top-level slot of a bound mm and unmapped
/// (kpti-root's mirror on the map side, the MMU notifier on the unmap side).
struct MitigationBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "mitigation", abstract: "Host time each mitigation adds to kernel table frees and user maps.")
    static let benchName = "mitigation"
    static let roundsRange = 16...(1 << 16)
    static let mmsRange = 1...4096

    @Option(help: "Kernel rounds per design, one table freed each (\(range(roundsRange))).")
    var rounds: Int = 400
    @Option(help: "SVA mms bound on the IOMMU (\(range(mmsRange))).")
    var mms: Int = 8
    @Option(help: ArgumentHelp("The IOMMU's hardware profile.", valueName: "profile"))
    var iommu: IOMMUProfile = .generic
    @Option(help: deferralScheduleHelp)
    var deferralSchedule: DeferralSchedule = .linux
    @OptionGroup var output: BenchOutput

    func validate() throws {
        try check(rounds, in: Self.roundsRange, "--rounds")
        try check(mms, in: Self.mmsRange, "--mms")
    }

    struct Config: Encodable {
        var rounds: Int
        var mms: Int
        var iommu: String
        /// "linux" or "batched" (beyond Linux).
        var deferralSchedule: String
        /// Batched only: rounds between runs of the deferred work.
        var batch: Int
    }

    /// As in the matrix: under Linux's schedule the deferred work runs after
    /// each kernel call that queued a table (CostWorkload); batched, every
    /// 16 rounds.
    static let batch = 16

    var benchConfig: Config {
        Config(rounds: rounds, mms: mms, iommu: iommu.description, deferralSchedule: deferralSchedule.description,
               batch: Self.batch)
    }

    func measure(_ progress: Progress) throws -> Metrics {
        var metrics = Metrics()
        for d in MatrixDesign.all {
            progress.update("mitigation: \(d)")
            let key = String(d.description.map { $0.isLetter || $0.isNumber ? $0 : "_" })
            let r = try run(d)
            metrics.add("\(key)_ns_freeing_path_per_free", r.pathNs, "ns")
            metrics.add("\(key)_ns_deferred_work_per_free", r.workNs, "ns")
            metrics.add("\(key)_caller_syncs_per_free", r.callerSyncs, "syncs")
            metrics.add("\(key)_device_ns_per_free", r.deviceNs, "ns")
            metrics.add("\(key)_ns_kernel_tlb_flush", r.flushNs, "ns")
            metrics.add("\(key)_ns_user_map_new_region", r.userMapNs, "ns")
            metrics.add("\(key)_ns_user_unmap", r.userUnmapNs, "ns")
            metrics.add("\(key)_bytes_per_sva_mm", count: r.bytesPerMM, "bytes")
        }
        return metrics
    }

    struct Figures {
        var pathNs = 0.0, workNs = 0.0, callerSyncs = 0.0, deviceNs = 0.0
        var userMapNs = 0.0, userUnmapNs = 0.0, flushNs = 0.0
        var bytesPerMM = 0
    }

    private func run(_ d: MatrixDesign) throws -> Figures {
        var base = MachineConfig(frames: 1 << 20, eventLogCapacity: 1 << 10)
        base.workMode = .manual
        base.deferralSchedule = deferralSchedule
        let m = try Machine(d.config(base))
        let ic = iommuConfig(iommu)
        let tables0 = m.stats.userTables
        let s = try SVASetup(m, iommu: ic)
        var f = Figures()
        f.bytesPerMM = (m.stats.userTables - tables0 - 1) * 4096
        var others: [MMID] = []
        for _ in 1..<mms {
            let mm = try m.createAddressSpace()
            let dev = try m.addDevice(iommu: s.iommu.id)
            _ = try m.bindSVA(device: dev, mm: mm)
            others.append(mm)
        }
        let region = m.layout.vmallocStart + (24 << 30)
        try m.map(region + (1 << 29), to: 0x1000)
        try m.vfree(try m.vmalloc(16 << 10))
        let kernelTables0 = m.stats.kernelTables
        let dev0 = s.iommu.counters.modelledDeviceNs
        var pathNs: UInt64 = 0, workNs: UInt64 = 0, syncs = 0
        // PTE tables the 16 KiB areas allocate as they move up the vmalloc
        // area (vfree frees none): not frees.
        var vmallocTables = 0
        for i in 0..<rounds {
            let va = region + UInt64(i % 256) << 21
            try m.map(va, to: 0x1000)
            _ = try s.touch(m, va)
            // One kernel call: the caller's time and syncs, then (Linux's
            // schedule) the kworker's run, timed apart.
            func kernelCall(_ body: () throws -> Void) throws {
                let syncs0 = s.iommu.counters.syncCommands(iommu)
                let t0 = nowNs()
                try body()
                pathNs += nowNs() - t0
                syncs += s.iommu.counters.syncCommands(iommu) - syncs0
                guard deferralSchedule == .linux else { return }
                let t1 = nowNs()
                m.runDeferredWork()
                workNs += nowNs() - t1
            }
            try kernelCall { try m.vunmap(va, size: 2 << 20) }
            try kernelCall { try m.vmapHuge(va, phys: 0, size: .size2M) }
            try kernelCall { try m.vunmap(va, size: 2 << 20) }
            let t = m.stats.kernelTables
            try kernelCall { try m.vfree(try m.vmalloc(16 << 10)) }   // lazy: its range is reused only after a purge
            vmallocTables += m.stats.kernelTables - t
            if deferralSchedule == .batched && ((i + 1) % Self.batch == 0 || i + 1 == rounds) {
                let t1 = nowNs()
                m.flushDeferredWork()
                workNs += nowNs() - t1
            }
        }
        let frees = Double(max(1, kernelTables0 + rounds + vmallocTables - m.stats.kernelTables))
        f.pathNs = Double(pathNs) / frees
        f.workNs = Double(workNs) / frees
        f.callerSyncs = Double(syncs) / frees
        f.deviceNs = Double(s.iommu.counters.modelledDeviceNs - dev0) / frees

        // One flush_tlb_kernel_range of a page, alone: what the design adds
        // to every kernel TLB flush (best of 3 runs of 1000).
        f.flushNs = .infinity
        for _ in 0..<3 {
            let t0 = nowNs()
            for _ in 0..<1000 { try m.flushTLBKernelRange(region, region + 4096) }
            f.flushNs = min(f.flushNs, Double(nowNs() - t0) / 1000)
        }

        // User side: a page in a new top-level slot of the bound mm, mapped
        // (kpti-root mirrors the new entry), touched, unmapped (the notifier).
        let n = 64
        var mapNs: UInt64 = 0, unmapNs: UInt64 = 0
        let page = try m.allocFrames()   // a frame a process could own (svakit_map refuses tables)
        defer { try? m.freeFrames(page) }
        for i in 0..<n {
            let va = UInt64(i % 200 + 1) << 39 | UInt64(i) << 21
            let t0 = nowNs()
            try m.map(va, to: page.physicalAddress, prot: PageTableEntry.writable | PageTableEntry.user, in: s.mm)
            mapNs += nowNs() - t0
            _ = try s.touch(m, va)
            let t1 = nowNs()
            try m.unmap(va, in: s.mm)
            unmapNs += nowNs() - t1
        }
        f.userMapNs = Double(mapNs) / Double(n)
        f.userUnmapNs = Double(unmapNs) / Double(n)
        blackHole(others)
        return f
    }
}
