// SPDX-License-Identifier: Apache-2.0
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// An unmap that matches no live mapping: refused by default (beyond
/// Linux), made as asked and reported in DMADebugMode.linux, as
/// iommu_dma_unmap_page and then dma-debug's check_unmap do.
@Suite struct DMADebugModeTests {
    func rig(_ mode: DMADebugMode, strict: Bool = true) throws -> (Machine, DeviceID, PFN) {
        var cfg = MachineConfig(frames: 1 << 16, eventLogCapacity: 1 << 12, workMode: .manual)
        cfg.dmaStrict = strict
        cfg.cpus = 1
        cfg.dmaDebug = mode
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU(IOMMUConfig())
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        _ = try m.setupDMA(for: dev)
        let p = try m.allocFrames(order: 1)
        try m.writeWord(p, index: 0, 0x1234)
        return (m, dev, p)
    }

    func findings(_ m: Machine) -> [UInt64] { m.events().filter { $0.type == .dmaDebugError }.map(\.aux) }

    func readable(_ m: Machine, _ dev: DeviceID, _ a: UInt64) throws -> Bool {
        if case .success = try m.dmaRead(device: dev, pasid: .noPASID, va: a, count: 8) { return true }
        return false
    }

    /// The default: another size is refused, the mapping stays, nothing is logged.
    @Test func refuseChangesNothing() throws {
        let (m, dev, p) = try rig(.refuse)
        let a = try m.dmaMapPage(device: dev, phys: p.physicalAddress, size: 4096, direction: .toDevice, cpu: 0)
        #expect(throws: SVAError.invalidArgument) {
            try m.dmaUnmapPage(device: dev, address: a, size: 8192, direction: .toDevice, cpu: 0)
        }
        #expect(throws: SVAError.notFound) {
            try m.dmaUnmapPage(device: dev, address: a + 0x10_0000, size: 4096, direction: .toDevice, cpu: 0)
        }
        #expect(try readable(m, dev, a) && findings(m).isEmpty && m.audit().isEmpty)
    }

    /// Linux: B then A mapped (A one page below B, the allocator walking
    /// down); A unmapped with 8 KiB goes ahead over B's page too, dma-debug
    /// says the size differs (2), and the 2-page class of A's CPU now caches
    /// A: the next 2-page map is handed [A, B], over B's live IOVA, as
    /// free_iova_fast does in Linux. The right unmap of A after it finds no
    /// translation: WARN (5) and "not allocated" (1), nothing freed.
    @Test func anotherSizeGoesAheadAndIsReported() throws {
        let (m, dev, p) = try rig(.linux)
        let b = try m.dmaMapPage(device: dev, phys: (p + 1).physicalAddress, size: 4096, direction: .toDevice, cpu: 0)
        let a = try m.dmaMapPage(device: dev, phys: p.physicalAddress, size: 4096, direction: .toDevice, cpu: 0)
        #expect(a == b - 4096)
        try m.dmaUnmapPage(device: dev, address: a, size: 8192, direction: .toDevice, cpu: 0)
        #expect(try !readable(m, dev, a) && !readable(m, dev, b))
        #expect(findings(m) == [2])
        #expect(m.events().last?.generation == dev.rawValue && m.events().last?.va == a)
        let c = try m.dmaMapPage(device: dev, phys: p.physicalAddress, size: 8192, direction: .toDevice, cpu: 0)
        #expect(c == a, "the 2-page class handed out A's pfn, whose second page is B's")
        try m.dmaUnmapPage(device: dev, address: a + 0x1000_0000, size: 4096, direction: .toDevice, cpu: 0)
        #expect(findings(m) == [2, 5, 1])
    }

    /// Another direction: the unmap is whole, so only dma-debug speaks (3).
    @Test func anotherDirectionGoesAhead() throws {
        let (m, dev, p) = try rig(.linux, strict: false)
        let a = try m.dmaMapPage(device: dev, phys: p.physicalAddress, size: 4096, direction: .toDevice, cpu: 0)
        try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: .fromDevice, cpu: 0)
        #expect(findings(m) == [3])
        m.flushDMAQueues()
        #expect(try !readable(m, dev, a))
        #expect(m.audit().isEmpty)
    }

    /// An unmap of an address nothing maps: iommu_dma_unmap_page finds no
    /// translation, WARNs (5) and returns; dma-debug then says "not
    /// allocated" (1). Nothing is freed: the next map is not handed that
    /// IOVA (it was, before the early return was modelled).
    @Test func anUntranslatedUnmapFreesNothing() throws {
        let (m, dev, p) = try rig(.linux)
        let a = try m.dmaMapPage(device: dev, phys: p.physicalAddress, size: 4096, direction: .toDevice, cpu: 0)
        let bogus = a - 0x40_0000
        try m.dmaUnmapPage(device: dev, address: bogus, size: 4096, direction: .toDevice, cpu: 0)
        #expect(findings(m) == [5, 1])
        let b = try m.dmaMapPage(device: dev, phys: (p + 1).physicalAddress, size: 4096, direction: .toDevice, cpu: 0)
        #expect(b != bogus)
        #expect(try readable(m, dev, a) && m.audit().isEmpty)
    }
}
