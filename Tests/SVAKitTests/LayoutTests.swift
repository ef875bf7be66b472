// SPDX-License-Identifier: Apache-2.0
import CSVAKit
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// The structs Swift stores and C reads must have the header's layout
/// (abi_checks.c asserts the same from the C side).
@Suite struct LayoutTests {
    @Test func ptdescIs32Bytes() {
        #expect(MemoryLayout<Ptdesc>.size == 32)
        #expect(MemoryLayout<Ptdesc>.stride == 32)
        #expect(MemoryLayout<Ptdesc>.offset(of: \.generation) == 8)
        #expect(MemoryLayout<Ptdesc>.offset(of: \.lru_next) == 16)
        #expect(MemoryLayout<Ptdesc>.offset(of: \.pt_list_next) == 24)
        #expect(MemoryLayout<Ptdesc>.offset(of: \.map_count) == 28)
    }

    @Test func eventIs40Bytes() {
        #expect(MemoryLayout<svakit_event>.size == 40)
    }

    @Test func configLayoutsMatchHeader() {
        #expect(MemoryLayout<svakit_config>.offset(of: \.dma_strict) == 52)
        #expect(MemoryLayout<svakit_config>.offset(of: \.cpus) == 60)
        #expect(MemoryLayout<svakit_config>.size == 88)
        #expect(MemoryLayout<svakit_config>.offset(of: \.hz) == 80)
        #expect(MemoryLayout<svakit_config>.offset(of: \.dma_debug) == 84)
        #expect(MemoryLayout<svakit_config>.offset(of: \.iommu_debug_pagealloc) == 64)
        #expect(MemoryLayout<svakit_config>.offset(of: \.mitigation) == 68)
        #expect(MemoryLayout<svakit_config>.offset(of: \.direct_gbpages) == 72)
        #expect(MemoryLayout<svakit_config>.offset(of: \.kworker_latency_us) == 76)
        #expect(MemoryLayout<svakit_uaf_report>.size == 120)
        #expect(MemoryLayout<svakit_uaf_report>.offset(of: \.kind) == 80)
        #expect(MemoryLayout<svakit_machine>.offset(of: \.iommu_debug_initialized) == 24)
        #expect(MemoryLayout<svakit_iommu_config>.size == 56)
        #expect(MemoryLayout<svakit_iommu_config>.offset(of: \.profile) == 48)
        #expect(MemoryLayout<svakit_iommu_config>.offset(of: \.deferred_flush) == 28)
        #expect(MemoryLayout<svakit_iommu_config>.offset(of: \.seed) == 40)
        #expect(MemoryLayout<svakit_sg>.size == 32)
        #expect(MemoryLayout<svakit_flush_queue_stats>.size == 64)
        #expect(MemoryLayout<svakit_queued_iova>.size == 32)
        #expect(MemoryLayout<svakit_map_benchmark>.size == 136)
    }

    @Test func dmaConfigRoundTripsThroughC() throws {
        var cfg = MachineConfig(frames: 1 << 14)
        cfg.dmaStrict = true
        cfg.dmaQuarantine = true
        cfg.cpus = 7
        cfg.iommuDebugPagealloc = .windowAware
        #expect(try MachineConfig(cfg.cValue) == cfg)
        for work in [WorkMode.thread, .manual] {
            for schedule in DeferralSchedule.allCases {
                var d = MachineConfig(frames: 1 << 14, workMode: work)
                d.deferralSchedule = schedule
                d.kworkerLatencyMicros = 250
                #expect(try MachineConfig(d.cValue) == d)
            }
        }
        #expect(MachineConfig(workMode: .thread).cValue.work_mode == SVAKIT_WORK_THREAD.rawValue)
        #expect(MachineConfig(workMode: .manual).cValue.work_mode == SVAKIT_WORK_MANUAL.rawValue)
        #expect(MachineConfig().deferralSchedule == .linux, "Linux's schedule is the default")
        var b = MachineConfig().cValue
        b.work_mode = SVAKIT_WORK_THREAD_BATCHED.rawValue
        #expect(try MachineConfig(b).deferralSchedule == .batched && MachineConfig(b).workMode == .thread)
        b.work_mode = SVAKIT_WORK_MANUAL_BATCHED.rawValue
        #expect(try MachineConfig(b).deferralSchedule == .batched && MachineConfig(b).workMode == .manual)
        b.work_mode = 4
        #expect(throws: SVAError.invalidArgument) { try MachineConfig(b) }
        var c = MachineConfig().cValue
        c.cpus = 0
        #expect(try MachineConfig(c).cpus == 4, "0 means the default, as a field that was reserved")
        var i = IOMMUConfig()
        i.deferredFlush = false
        i.shadowedFlush = true
        #expect(try IOMMUConfig(i.cValue) == i)
        #expect(IOMMUConfig().cValue.deferred_flush == 1)
        #expect(DomainType.dmaFQ.rawValue == SVAKIT_DOMAIN_DMA_FQ.rawValue)
        #expect(DMADirection.fromDevice.rawValue == SVAKIT_DMA_FROM_DEVICE.rawValue)
        #expect(DMAPolicyReason.noDeferredFlush.rawValue == SVAKIT_POLICY_NO_DEFERRED_FLUSH.rawValue)
    }

    @Test func versionMatchesHeader() {
        #expect(SVAKit.version.description == SVAKIT_VERSION_STRING)
        #expect(SVAKit.version.description == "\(SVAKIT_VERSION_MAJOR).\(SVAKIT_VERSION_MINOR).\(SVAKIT_VERSION_PATCH)")
    }

    @Test func errnoMappingIsDistinctAndRoundTrips() {
        let codes = SVAError.allCases.map(\.errno)
        #expect(Set(codes).count == codes.count)
        for e in SVAError.allCases { #expect(SVAError(errno: e.errno) == e) }
        #expect(codes.allSatisfy { $0 < 0 })
    }

    @Test func siteNamesMatchHeader() {
        #expect(Site.allCases.count == Int(SVAKIT_SITE_COUNT.rawValue))
        #expect(Site.pudFreePmdPage.rawValue == UInt16(SVAKIT_SITE_PUD_FREE_PMD_PAGE.rawValue))
        #expect(Site.mmTeardown.rawValue == UInt16(SVAKIT_SITE_MM_TEARDOWN.rawValue))
    }
}
