// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Dispatch
import SVAKit
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The DMA API's costs (issue 11, items 3, 5, 6 and 8): (1) a stream of
/// dma_map_page + dma_unmap_page of 4 KiB and 64 KiB buffers on 1 and 2
/// threads, under strict, lazy with per-CPU queues, lazy with the single
/// queue, and lazy with the quarantine: host ns per map and per unmap (in
/// batches of 64, the clock read once per batch), modelled device time and
/// invalidation commands per unmap, the window, and the frames the
/// quarantine holds. The stream runs with manual timers, so its command
/// counts are exact (only full rings and the final drain flush). (2) a paced
/// workload on the flush timer's thread (1 ms tick): `--rate` map/unmap per
/// second per CPU on 2 CPUs, a device writing each buffer and, one period
/// after each unmap (before the next map, so a recycled IOVA cannot refill
/// the line), reaching the old address again; the window's
/// distribution and how many of those stale accesses landed on a page that
/// had been freed and allocated again, for per-CPU and single queues.
struct DMABench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "dma", abstract: "dma_map/unmap under strict, lazy and quarantine; the lazy window.")
    static let benchName = "dma"
    static let batch = 64
    static let opsRange = batch...(1 << 32)
    static let rateRange = 1...100_000
    static let windowRange = 10...60_000
    static let sizes = [(name: "4k", order: 0), (name: "64k", order: 4)]
    static let threadCounts = [1, 2]
    /// The quantiles `--cdf` reports, in permille.
    static let cdfPermilles = Array(stride(from: 10, through: 990, by: 10)) + [995, 999, 1000]

    /// The policies the stream compares.
    enum Policy: String, CaseIterable {
        case strict
        case lazyPerCPU = "lazy_percpu"
        case lazySingle = "lazy_single"
        case lazyQuarantine = "lazy_quarantine"

        var lazy: Bool { self != .strict }
    }

    @Option(help: "map+unmap pairs per thread in each stream case (\(range(opsRange)); whole batches of 64).")
    var ops: Int = 100_000
    @Option(help: "Paced map/unmap per second per CPU in the window workload (\(range(rateRange))).")
    var rate: Int = 1000
    @Option(help: "How long each window workload runs, in ms (\(range(windowRange))).")
    var windowMs: Int = 1500
    @Flag(help: "Also the window's quantile function, window_<policy>_q<permille>_ns for each permille in \(DMABench.cdfPermilles.first!), \(DMABench.cdfPermilles[1]), ... 1000 and 995, 999 (the plots' CDF).")
    var cdf = false
    @OptionGroup var output: BenchOutput

    func validate() throws {
        try check(ops, in: Self.opsRange, "--ops")
        try check(rate, in: Self.rateRange, "--rate")
        try check(windowMs, in: Self.windowRange, "--window-ms")
    }

    struct Config: Encodable {
        var ops: Int
        var rate: Int
        var windowMs: Int
        var batch = DMABench.batch
        var cpus = 2
        var costModelNs = [IOMMUCostModel().rangeInvalidationNs, IOMMUCostModel().domainInvalidationNs,
                           IOMMUCostModel().globalInvalidationNs, IOMMUCostModel().syncNs]
    }

    var benchConfig: Config { Config(ops: ops, rate: rate, windowMs: windowMs) }

    /// A machine with one IOMMU and one device on a default DMA domain.
    struct Rig {
        let m: Machine
        let iommu: IOMMU
        let dev: DeviceID
        let domain: DomainID

        init(_ p: Policy, work: WorkMode) throws {
            var cfg = MachineConfig(frames: 1 << 18, eventLogCapacity: 1 << 10, workMode: work)
            cfg.cpus = 2
            cfg.dmaStrict = p == .strict
            cfg.dmaQuarantine = p == .lazyQuarantine
            m = try Machine(cfg)
            var ic = IOMMUConfig()
            ic.shadowedFlush = p == .lazySingle
            iommu = try m.addIOMMU(ic)
            dev = try m.addDevice(iommu: iommu.id, sva: false)
            domain = try m.setupDMA(for: dev).domain
        }
    }

    /// What one thread of a stream case measured.
    struct ThreadResult {
        var mapNs: UInt64 = 0, unmapNs: UInt64 = 0, deviceNs: UInt64 = 0
        var held: [Int] = []
    }

    /// One stream case: `threads` threads, each on its own CPU.
    func stream(_ p: Policy, order: Int, threads: Int) throws -> (Metrics.Case, [Int]) {
        let rig = try Rig(p, work: .manual)
        let m = rig.m, dev = rig.dev
        let rounds = ops / Self.batch
        let size = UInt64(4096 << order)
        let results = Mutex<[ThreadResult]>(Array(repeating: ThreadResult(), count: threads))
        let failure = Mutex<String?>(nil)
        let before = rig.iommu.counters
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var r = ThreadResult()
            var bufs = [PFN](repeating: .none, count: Self.batch)
            var addrs = [UInt64](repeating: 0, count: Self.batch)
            ModelledDeviceTime.resetCurrentThread()
            do {
                for _ in 0..<rounds {
                    for i in 0..<Self.batch { bufs[i] = try m.allocFrames(order: order, owner: 0xd1) }
                    let t0 = nowNs()
                    for i in 0..<Self.batch {
                        addrs[i] = try m.dmaMapPage(device: dev, phys: bufs[i].physicalAddress, size: size,
                                                    direction: .bidirectional, cpu: t)
                    }
                    let t1 = nowNs()
                    for i in 0..<Self.batch {
                        try m.dmaUnmapPage(device: dev, address: addrs[i], size: size, direction: .bidirectional, cpu: t)
                    }
                    let t2 = nowNs()
                    for b in bufs { try m.freeFrames(b) }
                    r.mapNs += t1 - t0
                    r.unmapNs += t2 - t1
                    if p == .lazyQuarantine && t == 0 {
                        r.held.append(try m.flushQueueStats(rig.domain).quarantinedFrames)
                    }
                }
            } catch {
                failure.withLock { $0 = "a map, unmap or free failed: \(error)" }
            }
            r.deviceNs = ModelledDeviceTime.currentThreadNs
            results.withLock { $0[t] = r }
        }
        if let f = failure.withLock({ $0 }) { throw CLIError("bench dma: \(f)") }
        // The stream's flushes, then the drain: what it owes.
        let stats = p.lazy ? try m.flushQueueStats(rig.domain) : nil
        ModelledDeviceTime.resetCurrentThread()
        m.flushDMAQueues()
        let drainNs = ModelledDeviceTime.currentThreadNs
        let after = rig.iommu.counters
        let rs = results.withLock { $0 }
        let unmaps = rounds * Self.batch * threads
        let c = Metrics.Case(
            unmaps: unmaps, mapNs: rs.reduce(0) { $0 + $1.mapNs }, unmapNs: rs.reduce(0) { $0 + $1.unmapNs },
            invalidations: after.invalidations - before.invalidations, fences: after.fences - before.fences,
            iommuDeviceNs: after.modelledDeviceNs - before.modelledDeviceNs,
            threadDeviceNs: rs.reduce(drainNs) { $0 + $1.deviceNs }, window: stats)
        return (c, rs.flatMap(\.held))
    }

    /// The paced workload on the timer thread; see the type's comment.
    func window(_ p: Policy) throws -> (FlushQueueStats, attempts: Int, landed: Int, faulted: Int, held: [Int],
                                        quantiles: [UInt64]) {
        let rig = try Rig(p, work: .thread)
        let m = rig.m, dev = rig.dev
        let landed = Atomic<Int>(0)
        m.setReportHandler { r in if r.isDataPage && r.reallocStep != nil { landed.add(1, ordering: .relaxed) } }
        let period = UInt64(1_000_000_000 / rate)
        let end = nowNs() + UInt64(windowMs) * 1_000_000
        let counts = Mutex<(attempts: Int, faulted: Int, held: [Int])>((0, 0, []))
        let failure = Mutex<String?>(nil)
        DispatchQueue.concurrentPerform(iterations: 2) { t in
            var attempts = 0, faulted = 0
            var held: [Int] = []
            var w = UInt64(0x4554_4952_5756_4544)
            do {
                var buf = try m.allocFrames(owner: 0xd1)
                var previous: UInt64? = nil
                var next = nowNs()
                while next < end {
                    if let old = previous {
                        // One period after its unmap, the page owned by
                        // someone else: a buggy device reaches the old address.
                        attempts += 1
                        if case .failure = try m.dmaRead(device: dev, pasid: .noPASID, va: old, count: 8) { faulted += 1 }
                    }
                    let a = try m.dmaMapPage(device: dev, phys: buf.physicalAddress, size: 4096,
                                             direction: .bidirectional, cpu: t)
                    _ = try withUnsafeBytes(of: &w) { b throws(SVAError) in
                        try m.dmaWrite(device: dev, pasid: .noPASID, va: a, from: b)
                    }
                    try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: .bidirectional, cpu: t)
                    try m.freeFrames(buf)
                    buf = try m.allocFrames(owner: 0x0e)   // the page's next owner
                    previous = a
                    if t == 0 && p == .lazyQuarantine { held.append(try m.flushQueueStats(rig.domain).quarantinedFrames) }
                    next += period
                    let now = nowNs()
                    if next > now {
                        var ts = timespec(tv_sec: Int((next - now) / 1_000_000_000),
                                          tv_nsec: Int((next - now) % 1_000_000_000))
                        nanosleep(&ts, nil)
                    }
                }
                try m.freeFrames(buf)
            } catch {
                failure.withLock { $0 = "a map, unmap, access or free failed: \(error)" }
            }
            counts.withLock { $0.attempts += attempts; $0.faulted += faulted; $0.held += held }
        }
        if let f = failure.withLock({ $0 }) { throw CLIError("bench dma: \(f)") }
        // The timer thread may still be releasing (and timing) entries: drain
        // the queues and wait for releases in flight, so the stats and the
        // quantiles below read one finished histogram.
        m.flushDMAQueues()
        let stats = try m.flushQueueStats(rig.domain)
        let quantiles = cdf ? try m.flushQueueWindowQuantiles(rig.domain, permilles: Self.cdfPermilles) : []
        m.setReportHandler(nil)
        let c = counts.withLock { $0 }
        return (stats, c.attempts, landed.load(ordering: .relaxed), c.faulted, c.held, quantiles)
    }

    func measure(_ progress: Progress) throws -> Metrics {
        var metrics = Metrics()
        for s in Self.sizes {
            for threads in Self.threadCounts {
                for p in Policy.allCases {
                    progress.update("dma: \(s.name), \(threads) thread(s), \(p.rawValue)")
                    let (c, held) = try stream(p, order: s.order, threads: threads)
                    metrics.add(c, tag: "\(s.name)_\(threads)t_\(p.rawValue)", pages: 1 << s.order,
                                held: p == .lazyQuarantine ? held : nil)
                }
            }
        }
        for p in [Policy.lazyPerCPU, .lazySingle, .lazyQuarantine] {
            progress.update("dma: window, \(p.rawValue), \(rate)/s per CPU")
            let (w, attempts, landed, faulted, held, quantiles) = try window(p)
            let tag = "window_\(p.rawValue)"
            metrics.add("\(tag)_released", count: w.released, "unmaps")
            metrics.add("\(tag)_p50_ns", count: Int(w.windowP50), "ns")
            metrics.add("\(tag)_p99_ns", count: Int(w.windowP99), "ns")
            metrics.add("\(tag)_max_ns", count: Int(w.windowMax), "ns")
            metrics.add("\(tag)_flushes", count: w.flushes)
            metrics.add("\(tag)_stale_accesses", count: attempts)
            metrics.add("\(tag)_stale_on_reallocated_page", count: landed)
            metrics.add("\(tag)_stale_faulted", count: faulted)
            if p == .lazyQuarantine { metrics.addPercentiles("\(tag)_quarantine_frames", held) }
            for (q, ns) in zip(Self.cdfPermilles, quantiles) {
                let digits = String(q)
                metrics.add("\(tag)_q\(String(repeating: "0", count: 4 - digits.count) + digits)_ns", count: Int(ns), "ns")
            }
        }
        return metrics
    }
}

extension Metrics {
    /// One stream case's figures.
    struct Case {
        var unmaps: Int
        var mapNs: UInt64, unmapNs: UInt64
        var invalidations: Int, fences: Int
        var iommuDeviceNs: UInt64, threadDeviceNs: UInt64
        var window: FlushQueueStats?
    }

    mutating func add(_ c: Case, tag: String, pages: Int, held: [Int]?) {
        let n = Double(c.unmaps)
        add("ns_per_map_\(tag)", Double(c.mapNs) / n, "ns")
        add("ns_per_unmap_\(tag)", Double(c.unmapNs) / n, "ns")
        if pages > 1 {
            add("ns_per_map_per_4k_page_\(tag)", Double(c.mapNs) / n / Double(pages), "ns")
            add("ns_per_unmap_per_4k_page_\(tag)", Double(c.unmapNs) / n / Double(pages), "ns")
        }
        add("unmaps_\(tag)", count: c.unmaps)
        add("invalidations_\(tag)", count: c.invalidations)
        add("syncs_\(tag)", count: c.fences)
        add("invalidations_per_unmap_\(tag)", Double(c.invalidations) / n, "1/unmap")
        add("device_ns_per_unmap_\(tag)", Double(c.iommuDeviceNs) / n, "ns")
        add("device_ns_threads_match_iommu_\(tag)", count: c.threadDeviceNs == c.iommuDeviceNs ? 1 : 0, "bool")
        if let w = c.window {
            add("window_p50_ns_\(tag)", count: Int(w.windowP50), "ns")
            add("window_p99_ns_\(tag)", count: Int(w.windowP99), "ns")
        }
        if let held { addPercentiles("quarantine_frames_\(tag)", held) }
    }

    /// p50, p99 and max of `samples` (nearest rank), as counts.
    mutating func addPercentiles(_ name: String, _ samples: [Int]) {
        let s = samples.sorted()
        func pct(_ p: Double) -> Int { s.isEmpty ? 0 : s[min(s.count - 1, max(0, Int((Double(s.count) * p).rounded(.up)) - 1))] }
        add("\(name)_p50", count: pct(0.5), "frames")
        add("\(name)_p99", count: pct(0.99), "frames")
        add("\(name)_max", count: s.last ?? 0, "frames")
    }
}
