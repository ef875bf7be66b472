// SPDX-License-Identifier: Apache-2.0
import Synchronization
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// The DMA API over DMA and DMA-FQ domains: strict and lazy unmaps, the
/// flush queue's counters and timer, the window lazy mode opens (shown by
/// the data-page oracle, deterministically) and the quarantine that closes it.
@Suite struct DMAAPITests {
    struct Rig {
        let m: Machine
        let iommu: IOMMU
        let dev: DeviceID
        let domain: DomainID
        let reason: DMAPolicyReason
    }

    func rig(strict: Bool = false, quarantine: Bool = false, untrusted: Bool = false,
             iommu config: IOMMUConfig = IOMMUConfig(), work: WorkMode = .manual) throws -> Rig {
        var cfg = MachineConfig(frames: gib, eventLogCapacity: 1 << 14, workMode: work)
        cfg.dmaStrict = strict
        cfg.dmaQuarantine = quarantine
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU(config)
        let dev = try m.addDevice(iommu: iommu.id, sva: false, untrusted: untrusted)
        let (d, reason) = try m.setupDMA(for: dev)
        return Rig(m: m, iommu: iommu, dev: dev, domain: d, reason: reason)
    }

    func read(_ r: Rig, _ addr: UInt64) throws -> Result<[UInt8], DMAFault> {
        try r.m.dmaRead(device: r.dev, pasid: .noPASID, va: addr, count: 8)
    }

    func word(_ x: Result<[UInt8], DMAFault>) -> UInt64? {
        guard case .success(let b) = x else { return nil }
        return b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    @Test func thePolicyFollowsLinuxAndSaysWhy() throws {
        let lazy = try rig()
        #expect(try lazy.m.domainType(lazy.domain) == .dmaFQ && lazy.reason == .lazyDefault)
        #expect(lazy.m.dmaTainted, "lazy mode taints the machine")
        let ev = try #require(lazy.m.events().first { $0.type == .dmaLazyWindow })
        #expect(ev.va == 12_000_000 && ev.aux == 255 * 4, "10 ms is 3 jiffies at HZ=250, 255 entries on each of 4 CPUs")
        let strict = try rig(strict: true)
        #expect(try strict.m.domainType(strict.domain) == .dma && strict.reason == .strictConfigured)
        #expect(!strict.m.dmaTainted)
        let untrusted = try rig(untrusted: true)
        #expect(try untrusted.m.domainType(untrusted.domain) == .dma && untrusted.reason == .untrustedDevice)
        var noDefer = IOMMUConfig()
        noDefer.deferredFlush = false
        let cm = try rig(iommu: noDefer)
        #expect(try cm.m.domainType(cm.domain) == .dma && cm.reason == .noDeferredFlush)
        var shadowed = IOMMUConfig()
        shadowed.shadowedFlush = true
        let single = try rig(iommu: shadowed)
        let ev2 = try #require(single.m.events().first { $0.type == .dmaLazyWindow })
        #expect(ev2.va == 1_000_000_000 && ev2.aux == 32767, "one queue of 32768, 1 s (250 jiffies)")
    }

    @Test func strictUnmapInvalidatesAndSyncsBeforeItReturns() throws {
        let r = try rig(strict: true)
        let buf = try r.m.allocFrames()
        try r.m.writeWord(buf, index: 1, 77)
        let a = try r.m.dmaMapPage(device: r.dev, phys: buf.physicalAddress + 8, size: 8, direction: .toDevice)
        #expect(a & 0xfff == 8, "the offset in the page is kept")
        #expect(word(try read(r, a)) == 77)
        let before = r.iommu.counters
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 8, direction: .toDevice)
        #expect(r.iommu.counters.invalidations == before.invalidations + 1)
        #expect(r.iommu.counters.fences == before.fences + 1)
        guard case .failure = try read(r, a) else { Issue.record("read after a strict unmap"); return }
        // The IOVA comes back from this CPU's rcache.
        let b = try r.m.dmaMapPage(device: r.dev, phys: buf.physicalAddress, size: 4096, direction: .bidirectional)
        #expect(b == a - 8)
        try r.m.dmaUnmapPage(device: r.dev, address: b, size: 4096, direction: .bidirectional)
        #expect(r.m.audit() == [])
    }

    /// The window, deterministic: the unmap returns, the driver frees its
    /// buffer, the allocator hands it to someone else, and the device still
    /// reaches it through the IOTLB until the flush. Lazy mode leaks the new
    /// owner's secret (the negative control); strict mode faults; lazy with
    /// the quarantine keeps the frame out of the allocator until the flush.
    @Test(arguments: [(false, false), (true, false), (false, true)])
    func theWindowAfterAnUnmap(strict: Bool, quarantine: Bool) throws {
        let r = try rig(strict: strict, quarantine: quarantine)
        let buf = try r.m.allocFrames(owner: 0xd1)
        try r.m.writeWord(buf, index: 0, 0x6464)
        let a = try r.m.dmaMapPage(device: r.dev, phys: buf.physicalAddress, size: 4096, direction: .fromDevice)
        #expect(word(try read(r, a)) == 0x6464)                  // the device's IOTLB holds the page
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 4096, direction: .fromDevice)
        try r.m.freeFrames(buf)                                    // the driver frees its buffer at once
        let next = try r.m.allocFrames(owner: 0x5ec)               // someone else's secret
        try r.m.writeWord(next, index: 0, 0x2121_5445_5243_4553)
        let after = try read(r, a)
        switch (strict, quarantine) {
        case (true, _):
            guard case .failure = after else { Issue.record("strict: the device still reads"); return }
            #expect(r.m.reportCount == 0)
        case (false, false):
            #expect(next == buf, "LIFO: the freed buffer is the next allocation")
            #expect(word(after) == 0x2121_5445_5243_4553, "lazy: the device read the new owner's secret")
            let rep = try #require(r.m.reports.first)
            #expect(rep.isDataPage && rep.frame == buf && rep.reallocOwner == 0x5ec)
            #expect(r.m.dmaTainted && rep.tainted)
            #expect(rep.text.contains("Tainted: lazy DMA invalidation"))
        case (false, true):
            #expect(next != buf, "the quarantine kept the freed buffer out of the allocator")
            #expect(word(after) == 0x6464, "the device still sees the old buffer, nobody else's data")
            #expect(r.m.reportCount == 0)
            #expect(try r.m.flushQueueStats(r.domain).quarantinedFrames == 1)
            let free = r.m.stats.freeFrames
            r.m.flushDMAQueues()
            #expect(try r.m.flushQueueStats(r.domain).quarantinedFrames == 0)
            #expect(r.m.stats.freeFrames == free + 1, "the parked free happened after the flush")
            #expect(try r.m.descriptor(buf).kind == .free)
            expectRefused(r.m, .doubleFree) { try r.m.freeFrames(buf) }
        }
        r.m.flushDMAQueues()
        guard case .failure = try read(r, a) else { Issue.record("the device reads after the flush"); return }
        #expect(r.m.audit() == [])
    }

    @Test func aStrictDomainCanTurnLazyAtRunTime() throws {
        let r = try rig(strict: true)
        #expect(!r.m.dmaTainted)
        let a = try r.m.dmaMapPage(device: r.dev, phys: 0x1000, size: 4096, direction: .toDevice)
        try r.m.switchToLazy(r.domain)
        #expect(try r.m.domainType(r.domain) == .dmaFQ && r.m.dmaTainted)
        let before = r.iommu.counters.invalidations
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 4096, direction: .toDevice)
        #expect(r.iommu.counters.invalidations == before, "queued, not invalidated")
        #expect(try r.m.flushQueueStats(r.domain).pending == 1)
        try r.m.switchToLazy(r.domain)   // already lazy: nothing changes
        let untrusted = try rig(strict: true, untrusted: true)
        expectRefused(untrusted.m, .wrongAPI) { try untrusted.m.switchToLazy(untrusted.domain) }
        var noDefer = IOMMUConfig()
        noDefer.deferredFlush = false
        let cm = try rig(iommu: noDefer)
        expectRefused(cm.m, .notSupported) { try cm.m.switchToLazy(cm.domain) }
        r.m.flushDMAQueues()
        #expect(r.m.audit() == [])
    }

    @Test func lazyUnmapsWaitForOneFlushPerBatch() throws {
        let r = try rig()
        let buf = try r.m.allocFrames()
        let before = r.iommu.counters.invalidations
        // 1000 map/unmap on CPU 0: its ring holds 255, so a full ring forces
        // a flush every 255 unmaps; nothing else flushes in manual mode.
        for _ in 0..<1000 {
            let a = try r.m.dmaMapPage(device: r.dev, phys: buf.physicalAddress, size: 4096, direction: .toDevice, cpu: 0)
            try r.m.dmaUnmapPage(device: r.dev, address: a, size: 4096, direction: .toDevice, cpu: 0)
        }
        var s = try r.m.flushQueueStats(r.domain)
        #expect(s.fullFlushes == 3 && s.flushes == 3)
        #expect(r.iommu.counters.invalidations - before == 3, "3 domain-wide flushes for 1000 unmaps")
        // The last full flush covered everything queued before it; the
        // entries queued after it wait: 1000 - 3 * 255 - (3 - 1) * 0 ...
        #expect(s.pending > 0 && s.pending <= 255)
        r.m.flushDMAQueues()
        s = try r.m.flushQueueStats(r.domain)
        #expect(s.pending == 0 && s.released == 1000)
        #expect(r.m.audit() == [])
    }

    @Test func anEntryIsReleasedOnlyByAFlushThatStartedAfterIt() throws {
        let r = try rig()
        let c = try #require(try r.m.domains.slot(r.domain.rawValue).cookie)
        let a = try r.m.dmaMapPage(device: r.dev, phys: 0x1000, size: 4096, direction: .toDevice, cpu: 1)
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 4096, direction: .toDevice, cpu: 1)
        #expect(c.fq.pendingEntries == 1)
        // A flush that finished before the entry was queued covers nothing:
        // simulate one in flight (started, not finished) when it was queued.
        c.fq.startCount.add(1, ordering: .relaxed)
        let b = try r.m.dmaMapPage(device: r.dev, phys: 0x2000, size: 4096, direction: .toDevice, cpu: 1)
        try r.m.dmaUnmapPage(device: r.dev, address: b, size: 4096, direction: .toDevice, cpu: 1)
        c.fq.finishCount.add(1, ordering: .relaxed)   // that flush ends
        // The next queue frees the first entry (counter 0 < 1) and not the
        // second (counter 1: queued while the flush was running).
        let d = try r.m.dmaMapPage(device: r.dev, phys: 0x3000, size: 4096, direction: .toDevice, cpu: 1)
        try r.m.dmaUnmapPage(device: r.dev, address: d, size: 4096, direction: .toDevice, cpu: 1)
        #expect(c.fq.pendingEntries == 2)
        #expect(try r.m.flushQueueStats(r.domain).released == 1)
        r.m.flushDMAQueues()
        #expect(c.fq.pendingEntries == 0)
    }

    @Test func theTimerFiresAtItsDeadlineOnly() throws {
        let r = try rig()
        let c = try #require(try r.m.domains.slot(r.domain.rawValue).cookie)
        let a = try r.m.dmaMapPage(device: r.dev, phys: 0x1000, size: 4096, direction: .toDevice)
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 4096, direction: .toDevice)
        let deadline = c.fq.deadline.load(ordering: .relaxed)
        r.m.runDMATimers(now: deadline - 1)
        #expect(c.fq.pendingEntries == 1)
        r.m.runDMATimers(now: deadline)
        #expect(c.fq.pendingEntries == 0 && c.fq.flushes.load(ordering: .relaxed) == 1)
    }

    @Test func scatterGatherMergesAndUnmapsAsOne() throws {
        let r = try rig(strict: true)
        let p = try r.m.allocFrames(order: 2)
        for i in 0..<4 { try r.m.writeWord(p + i, index: 0, UInt64(100 + i)) }
        // Two whole pages, then half a page at an offset: the first two
        // merge (their IOVAs touch), the third starts a segment of its own.
        let sg = try r.m.dmaMapSG(device: r.dev, [(p.physicalAddress, 4096), ((p + 1).physicalAddress, 4096),
                                                  ((p + 3).physicalAddress + 0x800, 0x400)], direction: .toDevice)
        #expect(sg.segments.count == 2)
        #expect(sg.segments[0].length == 8192 && sg.segments[1].length == 0x400)
        #expect(word(try read(r, sg.segments[0].address + 4096)) == 101)
        #expect(sg.segments[1].address & 0xfff == 0x800)
        try r.m.dmaUnmapSG(device: r.dev, sg)
        guard case .failure = try read(r, sg.segments[0].address) else { Issue.record("sg still mapped"); return }
        let (addr, pfn) = try r.m.dmaAllocCoherent(device: r.dev, size: 3 * 4096)
        #expect(try r.m.descriptor(pfn).order == 2)
        #expect(word(try read(r, addr + 8192)) == 0, "coherent memory comes zeroed")
        try r.m.dmaFreeCoherent(device: r.dev, size: 3 * 4096, address: addr, pfn: pfn)
        #expect(r.m.audit() == [])
    }

    @Test func badUnmapsChangeNothing() throws {
        let r = try rig()
        let other = try r.m.addDevice(iommu: r.iommu.id, sva: false)
        _ = try r.m.setupDMA(for: other)
        let a = try r.m.dmaMapPage(device: r.dev, phys: 0x5000, size: 100, direction: .toDevice)
        expectRefused(r.m, .notFound) { try r.m.dmaUnmapPage(device: r.dev, address: a + 4096, size: 100, direction: .toDevice) }
        expectRefused(r.m, .invalidArgument) { try r.m.dmaUnmapPage(device: r.dev, address: a, size: 99, direction: .toDevice) }
        expectRefused(r.m, .invalidArgument) { try r.m.dmaUnmapPage(device: r.dev, address: a, size: 100, direction: .fromDevice) }
        expectRefused(r.m, .invalidArgument) { try r.m.dmaUnmapPage(device: r.dev, address: a + 1, size: 100, direction: .toDevice) }
        expectRefused(r.m, .notFound) { try r.m.dmaUnmapPage(device: other, address: a, size: 100, direction: .toDevice) }
        expectRefused(r.m, .outOfRange) { try r.m.dmaUnmapPage(device: r.dev, address: 1 << 48, size: 100, direction: .toDevice) }
        expectRefused(r.m, .invalidArgument) { try r.m.dmaUnmapPage(device: r.dev, address: a, size: 100, direction: .toDevice, cpu: 4) }
        expectRefused(r.m, .outOfRange) { _ = try r.m.dmaMapPage(device: r.dev, phys: UInt64(gib) << 12, size: 1, direction: .toDevice) }
        expectRefused(r.m, .outOfRange) { _ = try r.m.dmaMapPage(device: r.dev, phys: 0, size: 0, direction: .toDevice) }
        let bare = try r.m.addDevice(iommu: r.iommu.id, sva: false)
        expectRefused(r.m, .notSupported) { _ = try r.m.dmaMapPage(device: bare, phys: 0, size: 8, direction: .toDevice) }
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 100, direction: .toDevice)
        expectRefused(r.m, .notFound) { try r.m.dmaUnmapPage(device: r.dev, address: a, size: 100, direction: .toDevice) }
        expectRefused(r.m, .busy) { try r.m.freeDomain(r.domain) }
        r.m.flushDMAQueues()
        #expect(r.m.audit() == [])
    }

    /// fail_nth over a driver's DMA calls: every injected failure (an IOVA,
    /// a table frame, a coherent buffer's frames) is the error of the
    /// allocation that failed; the machine stays consistent and nothing
    /// leaks: after the driver's cleanup no mapping, IOVA or frame is left.
    @Test func failNthFailsEveryDMAAllocationCleanly() throws {
        var n = 1
        var kinds = Set<UInt8>()
        while n < 64 {
            let r = try rig()
            let frames = r.m.stats.allocs - r.m.stats.frees
            let c = try #require(try r.m.domains.slot(r.domain.rawValue).cookie)
            r.m.failNthAllocation(n)
            var done = false
            do {
                let a = try r.m.dmaMapPage(device: r.dev, phys: 0x10_0000, size: 8192, direction: .toDevice)
                let sg = try r.m.dmaMapSG(device: r.dev, [(0x20_0000, 4096), (0x40_0000, 100)], direction: .fromDevice)
                let (ca, cp) = try r.m.dmaAllocCoherent(device: r.dev, size: 4096)
                try r.m.dmaFreeCoherent(device: r.dev, size: 4096, address: ca, pfn: cp)
                try r.m.dmaUnmapSG(device: r.dev, sg)
                try r.m.dmaUnmapPage(device: r.dev, address: a, size: 8192, direction: .toDevice)
                done = true
            } catch {
                let what = try #require(r.m.failNthInjected, "an error with no injected failure: \(error)")
                #expect(error == what.error)
                kinds.insert(what.rawValue)
                // The driver's cleanup: unmap whatever did get mapped.
                for m in c.mappings {
                    try r.m.dmaUnmapPage(device: r.dev, address: m.iovaPfn << 12 | m.phys & 0xfff, size: m.size,
                                         direction: m.direction)
                }
            }
            r.m.failNthAllocation(0)
            r.m.flushDMAQueues()
            #expect(c.mappings.isEmpty)
            #expect(c.iovad.accounting().inUse.isEmpty, "an IOVA leaked at n = \(n)")
            #expect(c.iovad.accounting().problems.isEmpty)
            // Only the domain's tables may stay (Linux keeps them too).
            #expect(r.m.stats.allocs - r.m.stats.frees - r.m.stats.iommuTables
                    == frames - 1, "a frame leaked at n = \(n)")
            #expect(r.m.audit() == [])
            if done { break }
            n += 1
        }
        #expect(n > 3 && n < 64)
        #expect(kinds.contains(InjectableAllocation.iova.rawValue) && kinds.contains(InjectableAllocation.frame.rawValue))
    }

    /// Several threads, each its own CPU, map and unmap with the timer
    /// thread flushing; at the end every IOVA and every frame is accounted.
    @Test func concurrentMapUnmapLosesNothing() throws {
        let r = try rig(quarantine: true, work: .thread)
        let bufs = try (0..<4).map { _ in try r.m.allocFrames(order: 4) }
        let errors = Atomic<Int>(0)
        runThreads(4) { t in
            do {
                for i in 0..<3000 {
                    let phys = (bufs[t] + (i % 16)).physicalAddress
                    let a = try r.m.dmaMapPage(device: r.dev, phys: phys, size: 4096, direction: .bidirectional, cpu: t)
                    _ = try r.m.dmaRead(device: r.dev, pasid: .noPASID, va: a, count: 8)
                    try r.m.dmaUnmapPage(device: r.dev, address: a, size: 4096, direction: .bidirectional, cpu: t)
                }
            } catch {
                errors.add(1, ordering: .relaxed)
            }
        }
        #expect(errors.load(ordering: .relaxed) == 0)
        r.m.flushDMAQueues()
        let c = try #require(try r.m.domains.slot(r.domain.rawValue).cookie)
        #expect(c.mappings.isEmpty)
        #expect(c.fq.pendingEntries == 0)
        #expect(try r.m.flushQueueStats(r.domain).released == 12000)
        let books = c.iovad.accounting()
        #expect(books.problems.isEmpty)
        #expect(books.inUse.isEmpty, "every IOVA is free or cached")
        #expect(r.m.reportCount == 0)
        #expect(r.m.audit() == [])
    }
}

/// Races and re-entry around domains (found in review): concurrent creates,
/// a drain started from a driver callback inside a flush, an attach racing
/// a free.
@Suite struct DomainLifetimeTests {
    final class Hold: @unchecked Sendable {
        var m: Machine?
        let once = Atomic<Bool>(false)
    }

    @Test func concurrentCreatesKeepIdsAndCookieSlotsTogether() throws {
        let m = try Machine(MachineConfig(frames: gib, eventLogCapacity: 1 << 14, workMode: .manual))
        let iommu = try m.addIOMMU()
        let ids = TestMutex<[DomainID]>([])
        runThreads(4) { t in
            for i in 0..<100 {
                guard let d = try? m.createDomain(iommu: iommu.id, type: i % 3 == 0 ? .identity : .dma) else { continue }
                ids.withLock { $0.append(d) }
            }
        }
        let all = ids.withLock { $0 }
        #expect(all.count == 400 && Set(all).count == 400)
        for d in all {
            let c = m.domains.cookie(d.rawValue)
            #expect((c == nil) == (try m.domainType(d) == .identity))
            #expect(c.map { $0.domain.id == d.rawValue } ?? true, "the slot of \(d) holds its own cookie")
        }
        for d in all { try m.freeDomain(d) }
        #expect(m.audit() == [])
    }

    @Test func aDrainFromADriverCallbackInsideAFlushReturns() throws {
        let m = try Machine(MachineConfig(frames: gib, eventLogCapacity: 1 << 14, workMode: .manual))
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        let (d, _) = try m.setupDMA(for: dev)
        let a = try m.dmaMapPage(device: dev, phys: 0x1000, size: 4096, direction: .toDevice)
        try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: .toDevice)
        let hold = Hold()
        hold.m = m
        let nested = Atomic<Int>(0)
        iommu.setDriver(IOMMUDriver(fence: {
            guard !hold.once.exchange(true, ordering: .relaxed) else { return }
            hold.m!.flushDMAQueues()   // re-enters the DMA layer from the driver
            nested.add(1, ordering: .relaxed)
        }))
        m.flushDMAQueues()
        iommu.setDriver(nil)
        hold.m = nil
        #expect(nested.load(ordering: .relaxed) == 1)
        #expect(try m.flushQueueStats(d).pending == 0)
        #expect(m.audit() == [])
    }

    @Test func anAttachRacingAFreeIsRefused() throws {
        let m = try Machine(MachineConfig(frames: gib, eventLogCapacity: 1 << 14, workMode: .manual))
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        let d = try m.createDomain(iommu: iommu.id, type: .dma)
        let hold = Hold()
        hold.m = m
        let refusal = TestMutex<SVAError?>(nil)
        iommu.setDriver(IOMMUDriver(fence: {
            guard !hold.once.exchange(true, ordering: .relaxed) else { return }
            do throws(SVAError) { try hold.m!.attachDomain(d, to: dev) } catch { refusal.withLock { $0 = error } }
        }))
        try m.freeDomain(d)
        iommu.setDriver(nil)
        hold.m = nil
        #expect(refusal.withLock { $0 } == .noDevice, "a domain being freed takes no device")
        #expect(throws: SVAError.notSupported) {
            _ = try m.dmaMapPage(device: dev, phys: 0x5000, size: 4096, direction: .toDevice)
        }
        #expect(m.audit() == [])
    }
}

extension DMAAPITests {
    /// An identity default domain translates nothing: dma_map_sg hands the
    /// physical addresses back, merged where they are contiguous, takes no
    /// IOVA, and the device reaches the buffer at its physical address.
    @Test func anIdentityDomainMapsAScatterlistToItsPhysicalAddresses() throws {
        let m = try Machine(MachineConfig(frames: gib, workMode: .manual))
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        let (d, _) = try m.setupDMA(for: dev, identity: true)
        #expect(try m.domainType(d) == .identity)
        let sg = try m.dmaMapSG(device: dev, [(0x20_0000, 4096), (0x20_1000, 100), (0x40_0000, 8)], direction: .toDevice)
        #expect(sg.segments == [DMASegment(address: 0x20_0000, length: 4196), DMASegment(address: 0x40_0000, length: 8)])
        let buf = try m.allocFrames()
        try m.writeWord(buf, index: 0, 0x1122_3344_5566_7788)
        let one = try m.dmaMapSG(device: dev, [(buf.physicalAddress, 8)], direction: .toDevice)
        #expect(one.segments == [DMASegment(address: buf.physicalAddress, length: 8)])
        let bytes = try m.dmaRead(device: dev, pasid: .noPASID, va: buf.physicalAddress, count: 8).get()
        #expect(bytes == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        try m.dmaUnmapSG(device: dev, one)
        try m.dmaUnmapSG(device: dev, sg)
        #expect(m.audit().isEmpty)
    }
}
