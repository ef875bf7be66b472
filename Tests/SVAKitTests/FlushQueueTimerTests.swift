// SPDX-License-Identifier: Apache-2.0
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// The flush queue's timer as dma-iommu.c arms and runs it (6.12.118):
/// mod_timer(jiffies + msecs_to_jiffies(fq_timeout)) at the machine's HZ,
/// and fq_flush_timeout on the CPU that armed it, whose rcache gets every
/// IOVA the timeout releases (free_iova_fast's raw_cpu_ptr).
@Suite struct FlushQueueTimerTests {
    @Test func msecsToJiffiesRoundsUp() {
        #expect(FlushQueue.msecsToJiffies(10, hz: 250) == 3)
        #expect(FlushQueue.msecsToJiffies(10, hz: 100) == 1)
        #expect(FlushQueue.msecsToJiffies(10, hz: 300) == 3)
        #expect(FlushQueue.msecsToJiffies(10, hz: 1000) == 10)
        #expect(FlushQueue.msecsToJiffies(1000, hz: 250) == 250)
    }

    /// A timer armed in jiffy j fires when jiffies reaches j + n: at
    /// HZ=250 (4 ms ticks), armed at 5 ms (jiffy 1) for 3 jiffies, at
    /// 16 ms, 11 ms later; armed at 7.9 ms, still 16 ms (8.1 ms later).
    @Test func theTimerFiresOnATick() {
        #expect(FlushQueue.expiry(armedAt: 5_000_000, jiffies: 3, hz: 250) == 16_000_000)
        #expect(FlushQueue.expiry(armedAt: 7_900_000, jiffies: 3, hz: 250) == 16_000_000)
        #expect(FlushQueue.expiry(armedAt: 8_000_000, jiffies: 3, hz: 250) == 20_000_000)
        #expect(FlushQueue.expiry(armedAt: 0, jiffies: 3, hz: 300) == 10_000_000)
        #expect(FlushQueue.expiry(armedAt: 5_500_000, jiffies: 10, hz: 1000) == 15_000_000)
        // Past 2^64 / HZ ns the product needs the full width.
        let late: UInt64 = 1 << 62
        #expect(FlushQueue.expiry(armedAt: late, jiffies: 3, hz: 1000) > late)
    }

    func rig(hz: Int = 250, cpus: Int = 2) throws -> (Machine, DeviceID, DMACookie) {
        var cfg = MachineConfig(frames: 1 << 16, eventLogCapacity: 1 << 12, workMode: .manual)
        cfg.cpus = cpus
        cfg.hz = hz
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU(IOMMUConfig())
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        let (d, _) = try m.setupDMA(for: dev)
        let c = try #require(try m.domains.slot(d.rawValue).cookie)
        return (m, dev, c)
    }

    /// On a machine: the deadline is a tick of the configured HZ, 8 to
    /// 12 ms after the unmap that armed it at HZ=250 (exactly 10 ms before).
    @Test(arguments: [100, 250, 300, 1000]) func theDeadlineIsInJiffies(hz: Int) throws {
        let (m, dev, c) = try rig(hz: hz)
        let a = try m.dmaMapPage(device: dev, phys: 0x1000, size: 4096, direction: .toDevice, cpu: 0)
        let before = monotonicNanoseconds()
        try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: .toDevice, cpu: 0)
        let after = monotonicNanoseconds()
        let deadline = c.fq.deadline.load(ordering: .relaxed)
        let n = FlushQueue.msecsToJiffies(10, hz: UInt64(hz))
        let tick = FlushQueue.nanoseconds(jiffies: 1, hz: UInt64(hz))
        #expect(deadline == FlushQueue.nanoseconds(jiffies: FlushQueue.jiffies(at: deadline, hz: UInt64(hz)),
                                                   hz: UInt64(hz)), "on a tick")
        #expect(deadline > before + (n - 1) * tick - tick && deadline <= after + n * tick)
        if hz == 250 { #expect(c.fq.timeoutNs == 12_000_000) }
    }

    /// CPU 0 arms the timer, CPU 1 queues behind it; the timeout runs on
    /// CPU 0, so both IOVAs land in CPU 0's rcache and CPU 1's stays empty.
    /// (The model used to put each back on its ring's CPU: the CPU 1 checks
    /// fail on it.)
    @Test func theTimeoutFreesIntoTheArmingCPUsRcache() throws {
        let (m, dev, c) = try rig()
        let a = try m.dmaMapPage(device: dev, phys: 0x1000, size: 4096, direction: .toDevice, cpu: 0)
        let b = try m.dmaMapPage(device: dev, phys: 0x2000, size: 4096, direction: .toDevice, cpu: 1)
        try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: .toDevice, cpu: 0)
        try m.dmaUnmapPage(device: dev, address: b, size: 4096, direction: .toDevice, cpu: 1)
        #expect(c.fq.timerCPU.load(ordering: .relaxed) == 0)
        m.runDMATimers(now: c.fq.deadline.load(ordering: .relaxed))
        #expect(c.fq.pendingEntries == 0)
        // CPU 1 allocates from the tree (its cache is empty): not b again.
        let b2 = try m.dmaMapPage(device: dev, phys: 0x2000, size: 4096, direction: .toDevice, cpu: 1)
        #expect(b2 != b && b2 != a)
        // CPU 0's cache holds both, last freed first.
        let x = try m.dmaMapPage(device: dev, phys: 0x3000, size: 4096, direction: .toDevice, cpu: 0)
        let y = try m.dmaMapPage(device: dev, phys: 0x4000, size: 4096, direction: .toDevice, cpu: 0)
        #expect(Set([x, y]) == Set([a, b]))
    }

    @Test func hzOutsideKconfigsChoicesIsRefused() {
        var cfg = MachineConfig(frames: 1 << 16, workMode: .manual)
        for bad in [0, 99, 200, 1001] {
            cfg.hz = bad
            #expect(throws: SVAError.invalidArgument) { _ = try Machine(cfg) }
        }
    }
}
