// SPDX-License-Identifier: Apache-2.0
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// iommu_dma_alloc_iova's limit (dma-iommu.c at 6.12.118): the device's DMA
/// mask and bus limit, and PCI's one-shot 32-bit first try. The buffers are
/// 1 GiB, 1 GiB-aligned, so three of them fill the space below 4 GiB with a
/// few 1 GiB leaves and the fourth must go above it.
@Suite struct DMAMaskTests {
    static let gib: UInt64 = 1 << 30

    func rig() throws -> (Machine, DeviceID) {
        var cfg = MachineConfig(frames: 1 << 19, eventLogCapacity: 1 << 12, workMode: .manual)
        cfg.dmaStrict = true
        cfg.cpus = 1
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU(IOMMUConfig())
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        _ = try m.setupDMA(for: dev)
        return (m, dev)
    }

    func notices(_ m: Machine) -> [Event] { m.events().filter { $0.type == .dmaDACNotice } }

    /// Below 4 GiB while it lasts; the first failure there turns the
    /// workaround off for good (one notice, the limit's 48 bits), and a
    /// later map goes high even with room below 4 GiB again. The model
    /// before this departure was fixed tried below 4 GiB first forever: the
    /// last expectation catches it.
    @Test func pciWorkaroundIsOneShot() throws {
        let (m, dev) = try rig()
        #expect(try m.dmaLimits(device: dev) == .default)
        var low: [UInt64] = []
        for _ in 0..<3 {
            let a = try m.dmaMapPage(device: dev, phys: Self.gib, size: Self.gib, direction: .toDevice, cpu: 0)
            #expect(a < 4 * Self.gib && a % Self.gib == 0)
            low.append(a)
        }
        #expect(notices(m).isEmpty)
        #expect(try m.dmaLimits(device: dev).pci32BitWorkaround)
        let high = try m.dmaMapPage(device: dev, phys: Self.gib, size: Self.gib, direction: .toDevice, cpu: 0)
        #expect(high >= 4 * Self.gib && high < 1 << 48)
        let n = notices(m)
        #expect(n.count == 1 && n.first?.va == UInt64(dev.rawValue) && n.first?.aux == 48)
        #expect(try m.dmaLimits(device: dev).pci32BitWorkaround == false)
        try m.dmaUnmapPage(device: dev, address: low[0], size: Self.gib, direction: .toDevice, cpu: 0)
        let next = try m.dmaMapPage(device: dev, phys: 0, size: 4096, direction: .toDevice, cpu: 0)
        #expect(next >= 4 * Self.gib, "the 32-bit first try is over for this device")
        #expect(notices(m).count == 1)
    }

    /// A 32-bit mask keeps every IOVA below 4 GiB and never takes the
    /// workaround's path (the limit is not above 4 GiB): the fourth 1 GiB
    /// map finds no room, and no notice is logged.
    @Test func maskBoundsEveryIOVA() throws {
        let (m, dev) = try rig()
        try m.dmaSetMask(device: dev, bits: 32)
        for _ in 0..<3 {
            let a = try m.dmaMapPage(device: dev, phys: Self.gib, size: Self.gib, direction: .toDevice, cpu: 0)
            #expect(a < 4 * Self.gib)
        }
        #expect(throws: SVAError.noSpace) {
            try m.dmaMapPage(device: dev, phys: Self.gib, size: Self.gib, direction: .toDevice, cpu: 0)
        }
        #expect(notices(m).isEmpty)
        #expect(try m.dmaLimits(device: dev).pci32BitWorkaround, "no try below 4 GiB failed: it was the limit")
    }

    /// min_not_zero(mask, bus limit): a 36-bit bus under a 64-bit mask
    /// caps the IOVAs once the workaround is off.
    @Test func busLimitCapsTheMask() throws {
        let (m, dev) = try rig()
        try m.setBusDMALimit(device: dev, bits: 36)
        for _ in 0..<4 { _ = try m.dmaMapPage(device: dev, phys: Self.gib, size: Self.gib, direction: .toDevice, cpu: 0) }
        #expect(notices(m).first?.aux == 36)
        let a = try m.dmaMapPage(device: dev, phys: 0, size: 4096, direction: .toDevice, cpu: 0)
        #expect(a >= 4 * Self.gib && a < 1 << 36)
    }

    @Test func badInputChangesNothing() throws {
        let (m, dev) = try rig()
        #expect(throws: SVAError.invalidArgument) { try m.dmaSetMask(device: dev, bits: 0) }
        #expect(throws: SVAError.invalidArgument) { try m.dmaSetMask(device: dev, bits: 65) }
        #expect(throws: SVAError.invalidArgument) { try m.setBusDMALimit(device: dev, bits: 65) }
        #expect(throws: SVAError.noDevice) { try m.dmaSetMask(device: DeviceID(99), bits: 32) }
        #expect(try m.dmaLimits(device: dev) == .default)
        #expect(DMADeviceLimits.width(ofMask: 0xffff_ffff) == 32 && DMADeviceLimits.width(ofMask: .max) == 64)
        #expect(DMADeviceLimits.width(ofMask: 0) == nil && DMADeviceLimits.width(ofMask: 0xff00_ffff) == nil)
    }
}

/// kernel/dma/map_benchmark.c's ioctl as the library runs it: the module's
/// checks, the mask set for the run and restored, the buffers freed.
@Suite struct MapBenchmarkTests {
    @Test func ioctlChecksAreTheModules() {
        func p(threads: UInt32 = 1, seconds: UInt32 = 1, node: Int32 = -1, bits: UInt32 = 32, dir: UInt32 = 0,
               ns: UInt32 = 0, granule: UInt32 = 1) throws(SVAError) -> MapBenchmark.Parameters {
            try MapBenchmark.Parameters(threads: threads, seconds: seconds, node: node, dmaBits: bits, dmaDir: dir,
                                        transNs: ns, granule: granule)
        }
        #expect((try? p()) != nil)
        #expect(throws: SVAError.invalidArgument) { _ = try p(threads: 0) }
        #expect(throws: SVAError.invalidArgument) { _ = try p(threads: 1025) }
        #expect(throws: SVAError.invalidArgument) { _ = try p(seconds: 0) }
        #expect(throws: SVAError.invalidArgument) { _ = try p(seconds: 301) }
        #expect(throws: SVAError.invalidArgument) { _ = try p(ns: 10_000_001) }
        #expect(throws: SVAError.invalidArgument) { _ = try p(granule: 0) }
        #expect(throws: SVAError.invalidArgument) { _ = try p(granule: 1025) }
        #expect(throws: SVAError.invalidArgument) { _ = try p(dir: 3) }
    }

    @Test func aShortRunRestoresTheMaskAndFreesItsBuffers() throws {
        var cfg = MachineConfig(frames: 1 << 16, eventLogCapacity: 1 << 10, workMode: .manual)
        cfg.cpus = 2
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU(IOMMUConfig())
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        _ = try m.setupDMA(for: dev)
        try m.dmaSetMask(device: dev, bits: 40)
        let data = m.stats.dataFrames
        let r = try MapBenchmark.run(m, device: dev, MapBenchmark.Parameters(
            threads: 3, durationNs: 5_000_000, dmaBits: 33, direction: .fromDevice, pages: 4))
        #expect(r.loops >= 3, "every thread finishes a loop")
        let k = r.kernelFigures
        #expect(k.avgMap100ns == r.sumMap100ns / r.loops)
        #expect(try m.dmaLimits(device: dev).maskBits == 40)
        #expect(m.stats.dataFrames == data, "every buffer freed")
        #expect(m.audit().isEmpty)
        #expect(throws: SVAError.invalidArgument) {
            _ = try MapBenchmark.run(m, device: dev, MapBenchmark.Parameters(durationNs: 1, node: 1))
        }
    }
}
