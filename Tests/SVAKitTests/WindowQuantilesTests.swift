// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// Machine.flushQueueWindowQuantiles: the lazy window's quantile function
/// the plots draw (`svakit bench dma --cdf`).
@Suite struct WindowQuantilesTests {
    @Test func quantilesAreMonotoneAndEndAtTheMaximum() throws {
        var cfg = MachineConfig(frames: gib, eventLogCapacity: 1 << 10, workMode: .manual)
        cfg.cpus = 2
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU(IOMMUConfig())
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        let d = try m.setupDMA(for: dev).domain
        let permilles = [1, 10, 500, 990, 999, 1000]
        #expect(try m.flushQueueWindowQuantiles(d, permilles: permilles) == [0, 0, 0, 0, 0, 0], "nothing released")
        let buf = try m.allocFrames()
        for i in 0..<600 {
            let a = try m.dmaMapPage(device: dev, phys: buf.physicalAddress, size: 4096, direction: .toDevice, cpu: i % 2)
            try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: .toDevice, cpu: i % 2)
        }
        m.flushDMAQueues()
        let s = try m.flushQueueStats(d)
        #expect(s.released == 600)
        let q = try m.flushQueueWindowQuantiles(d, permilles: permilles)
        #expect(zip(q, q.dropFirst()).allSatisfy { $0 <= $1 }, "\(q)")
        #expect(q.last == s.windowMax && q[0] > 0)
        #expect(q[2] == s.windowP50 && q[3] == s.windowP99)
        for bad in [[0], [1001], [-5]] {
            #expect(throws: SVAError.invalidArgument) { try m.flushQueueWindowQuantiles(d, permilles: bad) }
        }
        try m.freeFrames(buf)
    }
}
