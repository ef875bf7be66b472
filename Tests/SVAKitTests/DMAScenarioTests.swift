// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// The DMA scenarios' table (SVAKitScenarios): each verdict per mode, run
/// step by step on a manual machine (no timer, so nothing depends on time),
/// and the cost model's modelled device time.
@Suite struct DMAScenarioTests {
    static let cases: [(DMAScenarioName, DMAMode)] = DMAScenario.all.flatMap { s in s.modes.map { (s.name, $0) } }

    func run(_ name: DMAScenarioName, _ mode: DMAMode) throws -> DMAScenarioOutcome {
        let m = try Machine(mode.machineConfig(MachineConfig(frames: gib, eventLogCapacity: 1 << 14)))
        return try DMAScenario.named(name).run(on: m, mode: mode)
    }

    @Test(arguments: cases)
    func eachModeGivesTheVerdictOfTheTable(name: DMAScenarioName, mode: DMAMode) throws {
        let o = try run(name, mode)
        #expect(o.verdict == DMAScenario.named(name).expected[mode], "\(name.rawValue) under \(mode)")
    }

    @Test func earlyFreeUnderLazyIsAReportedCorruption() throws {
        let o = try run(.buggyDriverEarlyFree, .lazy)
        let r = try #require(o.reports.first)
        #expect(o.reports.count == 1)
        #expect(r.isDataPage && r.corruption && r.staleLevel == 1)
        #expect(r.reallocOwner == 0x0e, "the page belonged to its new owner")
        #expect(o.ownerDataCorrupted && !o.freeWaitedForFlush)
        #expect(r.text.contains("stale IOTLB entry"))
    }

    @Test func earlyFreeUnderStrictFaultsAndCorruptsNothing() throws {
        let o = try run(.buggyDriverEarlyFree, .strict)
        #expect(o.reports.isEmpty && !o.ownerDataCorrupted)
        #expect(o.finalFault != nil)
        #expect(o.invalidations == 1 && o.fences == 1, "one range command and one sync for the unmap")
    }

    @Test func earlyFreeUnderTheQuarantineFreesAfterTheFlush() throws {
        let o = try run(.buggyDriverEarlyFree, .lazyQuarantine)
        #expect(o.reports.isEmpty && !o.ownerDataCorrupted && o.finalFault == nil)
        #expect(o.freeWaitedForFlush, "the free was parked until the flush")
    }

    @Test func untrustedDeviceLeaksOnlyUnderLazy() throws {
        let lazy = try run(.untrustedDeviceReadsReallocatedPage, .lazy)
        #expect(lazy.secretLeaked && lazy.reports.count == 1 && lazy.corruptions == 0)
        let forced = try run(.untrustedDeviceReadsReallocatedPage, .untrustedStrict)
        #expect(!forced.secretLeaked && forced.reports.isEmpty && forced.finalFault != nil)
        let quarantined = try run(.untrustedDeviceReadsReallocatedPage, .lazyQuarantine)
        #expect(!quarantined.secretLeaked && quarantined.reports.isEmpty && quarantined.freeWaitedForFlush)
    }

    /// docs/KERNEL-MODEL.md §4.3b: the bounce hides the rest of the page
    /// from an untrusted device; the controls (a trusted device, and an
    /// untrusted one before 82612d66d51d) read the secret in every run.
    @Test func theBounceHidesTheRestOfThePageAndOnlyIt() throws {
        let bounced = try run(.deviceReadsPastItsBuffer, .untrustedStrict)
        #expect(!bounced.secretLeaked && bounced.finalFault == nil && bounced.reports.isEmpty)
        for mode in [DMAMode.strict, .untrustedBeforeBounce] {
            for _ in 0..<20 {
                let o = try run(.deviceReadsPastItsBuffer, mode)
                #expect(o.secretLeaked && o.finalFault == nil, "\(mode)")
            }
        }
    }

    /// A strict unmap costs one range command and one sync; a lazy flush one
    /// domain-wide command and one sync; the IOMMU and the issuing thread
    /// are charged the same.
    @Test func modelledDeviceTimeFollowsTheCostModel() throws {
        var config = IOMMUConfig()
        config.costs = IOMMUCostModel(rangeInvalidationNs: 300, domainInvalidationNs: 500,
                                      globalInvalidationNs: 2000, syncNs: 700)
        for strict in [true, false] {
            var cfg = MachineConfig(frames: gib, eventLogCapacity: 1 << 14, workMode: .manual)
            cfg.dmaStrict = strict
            let m = try Machine(cfg)
            let iommu = try m.addIOMMU(config)
            let dev = try m.addDevice(iommu: iommu.id, sva: false)
            _ = try m.setupDMA(for: dev)
            ModelledDeviceTime.resetCurrentThread()
            let before = iommu.counters.modelledDeviceNs
            for _ in 0..<10 {
                let a = try m.dmaMapPage(device: dev, phys: 0x1000, size: 4096, direction: .toDevice, cpu: 0)
                try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: .toDevice, cpu: 0)
            }
            m.flushDMAQueues()
            let charged = iommu.counters.modelledDeviceNs - before
            #expect(charged == (strict ? 10 * (300 + 700) : 500 + 700))
            #expect(ModelledDeviceTime.currentThreadNs == charged)
        }
        let m = try machine()
        let iommu = try m.addIOMMU(config)
        ModelledDeviceTime.resetCurrentThread()
        iommu.invalidateAll()
        iommu.fence()
        #expect(iommu.counters.modelledDeviceNs == 2700 && ModelledDeviceTime.currentThreadNs == 2700)
        #expect(IOMMUConfig().costs == IOMMUCostModel(rangeInvalidationNs: 200, domainInvalidationNs: 200,
                                                       globalInvalidationNs: 1000, syncNs: 400))
    }
}

/// The window histogram's buckets: an eighth of an octave, upper bounds
/// never below the value and at most 12.5 % above it.
@Suite struct WindowHistogramTests {
    @Test func bucketsBoundTheirValues() {
        for v: UInt64 in [0, 1, 7, 8, 9, 15, 16, 17, 1000, 8_388_608, 10_000_000, 1 << 40, .max >> 1] {
            let b = WindowHistogram.bucket(v)
            #expect(b < WindowHistogram.bucketCount)
            let ub = WindowHistogram.upperBound(b)
            #expect(ub >= v && Double(ub) <= Double(v) * 1.125 + 1, "\(v): bucket \(b), bound \(ub)")
            if b > 0 { #expect(WindowHistogram.upperBound(b - 1) < v) }
        }
        let h = WindowHistogram()
        for v in 1...1000 { h.record(UInt64(v) * 1000) }
        #expect(h.percentile(permille: 500) >= 500_000 && h.percentile(permille: 500) <= 562_500)
        #expect(h.percentile(permille: 1000) == 1_000_000)
    }
}
