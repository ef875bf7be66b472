// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// kernel/dma/map_benchmark.c (6.12.118) on a machine: what its
/// DMA_MAP_BENCHMARK ioctl does, as a client of the machine's DMA API. The
/// C ABI's `svakit_dma_map_benchmark()` is its ioctl; the kernel's own user
/// tool (tools/testing/selftests/dma/dma_map_benchmark.c) runs against it
/// unmodified in tests-c/kernel/map_benchmark/, and `svakit
/// dma-map-benchmark` is that tool with extras (docs/BENCHMARKS.md).
///
/// The run, in the module's order: check the parameters (the ioctl's
/// checks), save the device's DMA mask and set DMA_BIT_MASK(dma_bits),
/// start the threads, sleep for the duration, stop them (each ends its
/// current iteration), compute the averages, restore the mask. Each thread
/// allocates its buffer (alloc_pages_exact), then loops: fill it with 0x66
/// unless the direction is FROM_DEVICE, t0, dma_map_single, t1, spin
/// dma_trans_ns (ndelay), t2, dma_unmap_single, t3; adds (t1-t0)/100 and
/// (t3-t2)/100 and their squares to shared sums with relaxed atomics; and
/// frees its buffer at the end.
public enum MapBenchmark {
    /// DMA_MAP_MAX_THREADS.
    public static let maxThreads = 1024
    /// DMA_MAP_MAX_SECONDS.
    public static let maxSeconds = 300
    /// DMA_MAP_MAX_TRANS_DELAY: 10 ms.
    public static let maxTransNs: UInt64 = 10_000_000
    /// The module's largest granule, in pages.
    public static let maxGranule = 1024
    /// Beyond the kernel module: the largest buffer, in pages (4 GiB).
    public static let maxPages = 1 << 20

    /// What a run does: struct map_benchmark's inputs.
    public struct Parameters: Sendable, Equatable {
        /// Threads mapping and unmapping in parallel, 1...1024; thread t
        /// runs on simulated CPU t % the machine's CPUs.
        public var threads: Int
        /// How long the threads run, in ns (the module takes whole seconds,
        /// 1...300; shorter runs are beyond it).
        public var durationNs: UInt64
        /// NUMA_NO_NODE (-1) or a node; the machine has one node, 0.
        public var node: Int
        /// DMA_BIT_MASK(dmaBits) is the device's mask during the run (1...64).
        public var dmaBits: Int
        /// DMA_MAP_BIDIRECTIONAL, _TO_DEVICE or _FROM_DEVICE.
        public var direction: DMADirection
        /// ns spun between map and unmap, the transfer (at most 10 ms).
        public var transNs: UInt64
        /// Pages per buffer: the module's granule, 1...1024; up to 2^20
        /// beyond it (past 1024 the buffer is contiguous 4 MiB blocks, one
        /// page in, so the IOMMU maps it with 4 KiB leaves).
        public var pages: Int

        /// Parameters with the given fields (checked by ``MapBenchmark/run(_:device:_:)``).
        public init(threads: Int = 1, durationNs: UInt64, node: Int = -1, dmaBits: Int = 32,
                    direction: DMADirection = .bidirectional, transNs: UInt64 = 0, pages: Int = 1) {
            self.threads = threads
            self.durationNs = durationNs
            self.node = node
            self.dmaBits = dmaBits
            self.direction = direction
            self.transNs = transNs
            self.pages = pages
        }

        /// The ioctl's parameters, checked as map_benchmark_ioctl checks
        /// them (threads, seconds, delay, node, granule, direction).
        public init(threads: UInt32, seconds: UInt32, node: Int32, dmaBits: UInt32, dmaDir: UInt32,
                    transNs: UInt32, granule: UInt32) throws(SVAError) {
            guard threads >= 1, threads <= UInt32(maxThreads), seconds >= 1, seconds <= UInt32(maxSeconds),
                  UInt64(transNs) <= maxTransNs, granule >= 1, granule <= UInt32(maxGranule),
                  let dir = DMADirection(rawValue: dmaDir)
            else { throw .invalidArgument }
            self.init(threads: Int(threads), durationNs: UInt64(seconds) * 1_000_000_000, node: Int(node),
                      dmaBits: Int(dmaBits), direction: dir, transNs: UInt64(transNs), pages: Int(granule))
        }

        func check() throws(SVAError) {
            guard (1...maxThreads).contains(threads), durationNs > 0,
                  durationNs <= UInt64(maxSeconds) * 1_000_000_000, transNs <= maxTransNs,
                  node == -1 || node == 0, (1...64).contains(dmaBits),
                  (1...maxPages).contains(pages)
            else { throw .invalidArgument }
        }
    }

    /// What a run measured: the module's five sums, and beyond it the
    /// exact sums in ns and the run's length.
    public struct Result: Sendable, Equatable {
        /// Iterations of every thread together.
        public var loops: UInt64 = 0
        /// Sums of the map and unmap latencies in 100 ns units, and of their squares.
        public var sumMap100ns: UInt64 = 0, sumSqMap: UInt64 = 0
        /// See ``sumMap100ns``.
        public var sumUnmap100ns: UInt64 = 0, sumSqUnmap: UInt64 = 0
        /// Beyond the module: the exact sums in ns.
        public var sumMapNs: UInt64 = 0, sumUnmapNs: UInt64 = 0
        /// Beyond the module: from waking the threads to stopping them.
        public var elapsedNs: UInt64 = 0

        /// A result with the given sums (all 0 by default).
        public init(loops: UInt64 = 0, sumMap100ns: UInt64 = 0, sumSqMap: UInt64 = 0, sumUnmap100ns: UInt64 = 0,
                    sumSqUnmap: UInt64 = 0, sumMapNs: UInt64 = 0, sumUnmapNs: UInt64 = 0, elapsedNs: UInt64 = 0) {
            self.loops = loops
            self.sumMap100ns = sumMap100ns
            self.sumSqMap = sumSqMap
            self.sumUnmap100ns = sumUnmap100ns
            self.sumSqUnmap = sumSqUnmap
            self.sumMapNs = sumMapNs
            self.sumUnmapNs = sumUnmapNs
            self.elapsedNs = elapsedNs
        }

        /// avg_map_100ns, map_stddev, avg_unmap_100ns, unmap_stddev as the
        /// module computes them: avg = sum / loops, stddev =
        /// int_sqrt64(sum_sq / loops - avg^2), integer, u64 wrap-around
        /// included; all 0 when no loop ran (the module writes nothing).
        public var kernelFigures: (avgMap100ns: UInt64, mapStddev: UInt64, avgUnmap100ns: UInt64, unmapStddev: UInt64) {
            let (am, sm) = Self.avgStddev(sumMap100ns, sumSqMap, loops)
            let (au, su) = Self.avgStddev(sumUnmap100ns, sumSqUnmap, loops)
            return (am, sm, au, su)
        }

        static func avgStddev(_ sum: UInt64, _ sumSq: UInt64, _ loops: UInt64) -> (UInt64, UInt64) {
            guard loops > 0 else { return (0, 0) }
            let avg = sum / loops
            return (avg, intSqrt64(sumSq / loops &- avg &* avg))
        }
    }

    /// int_sqrt64: the largest r with r * r <= x.
    public static func intSqrt64(_ x: UInt64) -> UInt64 {
        guard x > 1 else { return x }
        var r = UInt64(Double(x).squareRoot())
        while r > 0 && (r > UInt64(UInt32.max) || r * r > x) { r -= 1 }
        while r < UInt64(UInt32.max) && (r + 1) * (r + 1) <= x { r += 1 }
        return r
    }

    /// Frames a buffer of `pages` takes: alloc_pages_exact's block (the
    /// next power of two) up to 1024; past that, whole 4 MiB blocks and one
    /// more page (the buffer starts one page in).
    public static func allocatedPages(_ pages: Int) -> Int {
        if pages <= 1 << maxOrder { return 1 << blockOrder(pages) }
        return ((pages + 1 + (1 << maxOrder) - 1) >> maxOrder) << maxOrder
    }

    static func blockOrder(_ pages: Int) -> Int {
        pages <= 1 ? 0 : Int.bitWidth - (pages - 1).leadingZeroBitCount
    }

    /// The DMA_MAP_BENCHMARK ioctl on `device`, which has a default domain:
    /// runs `p` and returns the sums. Throws `SVAError/invalidArgument`
    /// for parameters out of range (nothing runs), and
    /// `SVAError/outOfMemory` when a buffer cannot be allocated or a map
    /// fails (the module's "dma_map_single failed": the run stops, the
    /// buffers are freed). The device's mask is restored in every case.
    public static func run(_ m: Machine, device: DeviceID, _ p: Parameters) throws(SVAError) -> Result {
        try p.check()
        try m.domains.checkCaller(device: device.rawValue, cpu: nil)
        let old = try m.dmaLimits(device: device).maskBits
        try m.dmaSetMask(device: device, bits: p.dmaBits)
        defer { try? m.dmaSetMask(device: device, bits: old) }
        var buffers: [Buffer] = []
        var mapped = false
        defer {
            // free_pages_exact, after every queued flush is over once the
            // buffers were mapped (beyond the module, which frees them at
            // once: so a window-aware sanitizer never counts the run's own
            // buffers as freed while a device may still reach them).
            if mapped { m.flushDMAQueues() }
            for b in buffers { for x in b.blocks { try? m.freeFrames(x) } }
        }
        for _ in 0..<p.threads { buffers.append(try allocBuffer(m, pages: p.pages)) }
        // The simulated memory is reserved, not backed, until first touched:
        // touch every buffer once before the clock starts, so the first
        // loops do not pay the host's page faults real memory never has.
        let zero = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 64)
        zero.initializeMemory(as: UInt8.self, repeating: 0)
        defer { zero.deallocate() }
        for b in buffers {
            for i in 0..<p.pages { try m.writeFrame(b.first + i, offset: 0, from: UnsafeRawBufferPointer(zero)) }
        }
        let c = Counters()
        let bufs = buffers, cpus = m.config.cpus
        var start: UInt64 = 0
        mapped = true
        runThreads(p.threads, { t in loop(m, device, p, bufs[t], cpu: t % cpus, c) }, main: {
            // Wake the threads, sleep, stop them; the join is kthread_stop
            // waiting for each one's current iteration.
            start = monotonicNanoseconds()
            c.go.store(true, ordering: .releasing)
            var ts = timespec(tv_sec: Int(p.durationNs / 1_000_000_000), tv_nsec: Int(p.durationNs % 1_000_000_000))
            var left = timespec()
            // Only EINTR can fail a valid request: sleep what is left.
            // (errno is not read: it lives in the Swift Glibc overlay, which
            // a C program linking libsvakit.a does not link.)
            while nanosleep(&ts, &left) != 0 { ts = left }
            c.stop.store(true, ordering: .relaxed)
        })
        var r = c.result
        r.elapsedNs = monotonicNanoseconds() &- start
        if let e = c.failure.withLock({ $0 }) { throw e }
        return r
    }

    /// A thread's buffer: its first frame and the blocks to free.
    struct Buffer: Sendable {
        var first: PFN
        var blocks: [PFN]
    }

    /// alloc_pages_exact: one block; past 1024 pages, contiguous 4 MiB
    /// blocks (a fresh machine hands them out in order) and the buffer one
    /// page in.
    static func allocBuffer(_ m: Machine, pages: Int) throws(SVAError) -> Buffer {
        if pages <= 1 << maxOrder {
            let b = try m.allocFrames(order: blockOrder(pages), owner: 0xdb)
            return Buffer(first: b, blocks: [b])
        }
        var blocks: [PFN] = []
        for _ in 0 ..< allocatedPages(pages) >> maxOrder {
            let b = try m.allocFrames(order: maxOrder, owner: 0xdb)
            if let last = blocks.last, b != last + (1 << maxOrder) {
                for x in blocks + [b] { try? m.freeFrames(x) }
                throw .outOfMemory
            }
            blocks.append(b)
        }
        return Buffer(first: blocks[0] + 1, blocks: blocks)
    }

    /// The shared sums, added to with relaxed atomics as the module does.
    final class Counters: Sendable {
        let loops = Atomic<UInt64>(0)
        let sumMap100ns = Atomic<UInt64>(0), sumSqMap = Atomic<UInt64>(0)
        let sumUnmap100ns = Atomic<UInt64>(0), sumSqUnmap = Atomic<UInt64>(0)
        let sumMapNs = Atomic<UInt64>(0), sumUnmapNs = Atomic<UInt64>(0)
        /// Set by the calling thread: the threads start, then stop.
        let go = Atomic<Bool>(false), stop = Atomic<Bool>(false)
        let failure = Mutex<SVAError?>(nil)

        var result: Result {
            Result(loops: loops.load(ordering: .relaxed),
                   sumMap100ns: sumMap100ns.load(ordering: .relaxed), sumSqMap: sumSqMap.load(ordering: .relaxed),
                   sumUnmap100ns: sumUnmap100ns.load(ordering: .relaxed),
                   sumSqUnmap: sumSqUnmap.load(ordering: .relaxed),
                   sumMapNs: sumMapNs.load(ordering: .relaxed), sumUnmapNs: sumUnmapNs.load(ordering: .relaxed))
        }
    }

    /// map_benchmark_thread's loop.
    static func loop(_ m: Machine, _ dev: DeviceID, _ p: Parameters, _ buf: Buffer, cpu: Int, _ c: Counters) {
        let phys = buf.first.physicalAddress, size = UInt64(p.pages) << 12
        let fill = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 64)
        fill.initializeMemory(as: UInt8.self, repeating: 0x66)
        defer { fill.deallocate() }
        while !c.go.load(ordering: .acquiring) { sched_yield() }
        var i = 0
        do throws(SVAError) {
            // Every thread finishes at least one loop (beyond the module,
            // whose averages a very short run on a loaded host could leave
            // with no loop at all).
            repeat {
                if p.direction != .fromDevice {
                    for k in 0..<p.pages { try m.writeFrame(buf.first + k, offset: 0, from: UnsafeRawBufferPointer(fill)) }
                }
                let t0 = monotonicNanoseconds()
                // "dma_map_single failed": the thread returns -ENOMEM,
                // whatever the mapping error was.
                let a: UInt64
                do throws(SVAError) {
                    a = try m.dmaMapPage(device: dev, phys: phys, size: size, direction: p.direction, cpu: cpu)
                } catch {
                    throw .outOfMemory
                }
                let t1 = monotonicNanoseconds()
                if p.transNs > 0 { while monotonicNanoseconds() &- t1 < p.transNs {} }  // ndelay
                let t2 = monotonicNanoseconds()
                try m.dmaUnmapPage(device: dev, address: a, size: size, direction: p.direction, cpu: cpu)
                let t3 = monotonicNanoseconds()
                let mapNs = t1 &- t0, unmapNs = t3 &- t2
                let map100 = mapNs / 100, unmap100 = unmapNs / 100
                c.sumMap100ns.wrappingAdd(map100, ordering: .relaxed)
                c.sumSqMap.wrappingAdd(map100 &* map100, ordering: .relaxed)
                c.sumUnmap100ns.wrappingAdd(unmap100, ordering: .relaxed)
                c.sumSqUnmap.wrappingAdd(unmap100 &* unmap100, ordering: .relaxed)
                c.loops.wrappingAdd(1, ordering: .relaxed)
                c.sumMapNs.wrappingAdd(mapNs, ordering: .relaxed)
                c.sumUnmapNs.wrappingAdd(unmapNs, ordering: .relaxed)
                i += 1
                if i & 1023 == 0 { sched_yield() }  // cond_resched
            } while !c.stop.load(ordering: .relaxed)
        } catch {
            c.failure.withLock { $0 = $0 ?? error }
            c.stop.store(true, ordering: .relaxed)
        }
    }

    /// Runs `body(t)` for t in 0 ..< n, each on a POSIX thread of its own
    /// (the module's kthreads all run, whatever the core count), while
    /// `main` runs on the calling thread; returns when every thread ended.
    /// A thread that cannot be created is run after `main` on the caller.
    static func runThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void, main: () -> Void) {
        final class Start: Sendable {
            let run: @Sendable () -> Void
            init(_ run: @escaping @Sendable () -> Void) { self.run = run }
        }
        var ids: [pthread_t] = []
        var unstarted: [Int] = []
        for t in 0..<n {
            let ctx = Unmanaged.passRetained(Start { body(t) }).toOpaque()
            var id = pthread_t()
            let rc = pthread_create(&id, nil, { p in
                Unmanaged<Start>.fromOpaque(p!).takeRetainedValue().run()
                return nil
            }, ctx)
            if rc == 0 {
                ids.append(id)
            } else {
                Unmanaged<Start>.fromOpaque(ctx).release()
                unstarted.append(t)
            }
        }
        main()
        for t in unstarted { body(t) }
        for id in ids { pthread_join(id, nil) }
    }
}
