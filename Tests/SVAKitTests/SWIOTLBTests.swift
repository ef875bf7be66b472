// SPDX-License-Identifier: Apache-2.0
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// swiotlb under dma-iommu (docs/KERNEL-MODEL.md §4.3b; iommu_dma_map_page,
/// iommu_dma_unmap_page, iommu_dma_map_sg_swiotlb in
/// drivers/iommu/dma-iommu.c and swiotlb_tbl_map_single,
/// swiotlb_tbl_unmap_single in kernel/dma/swiotlb.c, linux-source-6.12
/// 6.12.118): an untrusted device's buffer that does not fill its granule is
/// bounced, its padding zeroed, so the device never sees the rest of the page.
@Suite struct SWIOTLBTests {
    struct Rig {
        let m: Machine
        let iommu: IOMMUID
        let dev: DeviceID
    }

    func rig(untrusted: Bool = true, bounce: Bool = true, slabs: Int = SWIOTLB.defaultSlabs,
             cpus: Int = 4) throws -> Rig {
        var cfg = MachineConfig(frames: gib, eventLogCapacity: 1 << 12, workMode: .manual)
        cfg.untrustedBounce = bounce
        cfg.swiotlbSlabs = slabs
        cfg.cpus = cpus
        let m = try Machine(cfg)
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: iommu.id, sva: false, untrusted: untrusted)
        _ = try m.setupDMA(for: dev)
        return Rig(m: m, iommu: iommu.id, dev: dev)
    }

    /// A page whose first 512 bytes are the buffer ("BUF" words) and whose
    /// rest is a secret.
    func bufferBesideASecret(_ m: Machine) throws -> PFN {
        let p = try m.allocFrames(owner: 0x5ec)
        for i in 0..<512 { try m.writeWord(p, index: i, i < 64 ? 0x4655_42 + UInt64(i) : secretWord) }
        return p
    }

    let secretWord: UInt64 = 0x2121_5445_5243_4553  // "SECRET!!"

    /// The whole granule the device can reach at `address`, as words.
    func granule(_ r: Rig, _ address: UInt64) throws -> [UInt64]? {
        guard case .success(let b) = try r.m.dmaRead(device: r.dev, pasid: .noPASID, va: address & ~0xfff, count: 4096)
        else { return nil }
        return b.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
    }

    @Test func anUntrustedDeviceSeesItsBufferAndZerosNotTheSecret() throws {
        let r = try rig()
        let p = try bufferBesideASecret(r.m)
        let a = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .toDevice)
        let words = try #require(try granule(r, a))
        #expect(Array(words[0..<64]) == (0..<64).map { 0x4655_42 + UInt64($0) }, "the buffer's bytes")
        #expect(words[64...].allSatisfy { $0 == 0 }, "zeroed post-padding, not the secret")
        #expect(a & 0xfff == 0, "min_align_mask 0: the buffer starts its slot's granule")
        let t = try r.m.translateForDevice(device: r.dev, pasid: .noPASID, va: a).get()
        let pool = try #require(r.m.swiotlbStats)
        #expect(pool.frames.contains { t >= $0.physicalAddress && t < $0.physicalAddress + 0x4_0000 },
                "the device's page is a bounce slot, not the caller's")
        #expect(pool.used == 2 && pool.bounced == 1, "512 bytes take a granule: two 2 KiB slots")
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 512, direction: .toDevice)
        #expect(r.m.swiotlbStats?.used == 0)
        #expect(r.m.audit().isEmpty, "\(r.m.audit())")
    }

    /// The negative controls: the same map through a trusted device, and
    /// through an untrusted one on the kernel before 82612d66d51d, reads the
    /// secret in every run.
    @Test(arguments: [(false, true), (true, false)])
    func withoutTheBounceTheDeviceReadsTheSecret(untrusted: Bool, bounce: Bool) throws {
        let r = try rig(untrusted: untrusted, bounce: bounce)
        let p = try bufferBesideASecret(r.m)
        let a = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .toDevice)
        let words = try #require(try granule(r, a))
        #expect(words[64...].allSatisfy { $0 == secretWord }, "the rest of the page is exposed")
        #expect(r.m.swiotlbStats == nil, "no pool was reserved")
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 512, direction: .toDevice)
    }

    @Test func aBufferPaddedAtBothEndsIsZeroedAtBothEnds() throws {
        // 6.12 zeroes pre-padding too (min_align_mask 0 leaves none); a
        // buffer that starts mid-page still starts its bounce granule.
        let r = try rig()
        let p = try bufferBesideASecret(r.m)
        let a = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress + 1024, size: 100, direction: .bidirectional)
        let b = try r.m.dmaRead(device: r.dev, pasid: .noPASID, va: a & ~0xfff, count: 4096).get()
        #expect(b[0..<100].elementsEqual(withUnsafeBytes(of: secretWord) { Array($0) }.cycled(100)))
        #expect(b[100...].allSatisfy { $0 == 0 })
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 100, direction: .bidirectional)
        #expect(r.m.audit().isEmpty)
    }

    @Test func copiesFollowTheDirectionAs612Does() throws {
        let r = try rig()
        // FROM_DEVICE: the slot is filled from the original at map (so a
        // partial write leaves the rest as it was), and copied back at unmap,
        // only the buffer's bytes: the device's write into the padding never
        // reaches the caller's page.
        let p = try bufferBesideASecret(r.m)
        let a = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .fromDevice)
        let first = try r.m.dmaRead(device: r.dev, pasid: .noPASID, va: a + 8, count: 8).get()
        #expect(first.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == 0x4655_43, "copied in at map")
        var w: UInt64 = 0xD0D0_D0D0
        let fault = try withUnsafeBytes(of: &w) { b in
            try [0, 600].map { try r.m.dmaWrite(device: r.dev, pasid: .noPASID, va: a + $0, from: b) }
        }
        #expect(fault == [nil, nil], "the device may write its granule, padding included")
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 512, direction: .fromDevice)
        #expect(try r.m.readWord(p, index: 0) == 0xD0D0_D0D0, "copied back at unmap")
        #expect(try r.m.readWord(p, index: 1) == 0x4655_43, "unwritten bytes kept")
        #expect(try r.m.readWord(p, index: 75) == secretWord, "the padding write stayed in the slot")
        // TO_DEVICE: read-only to the device, nothing copied back.
        let b = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .toDevice)
        try r.m.writeWord(p, index: 0, 0x1111)
        try r.m.dmaUnmapPage(device: r.dev, address: b, size: 512, direction: .toDevice)
        #expect(try r.m.readWord(p, index: 0) == 0x1111, "DMA_TO_DEVICE copies nothing back")
        #expect(r.m.audit().isEmpty)
    }

    @Test func aBufferThatFillsItsGranulesIsNotBounced() throws {
        let r = try rig()
        let p = try r.m.allocFrames(order: 1)
        let a = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 8192, direction: .toDevice)
        #expect(try r.m.translateForDevice(device: r.dev, pasid: .noPASID, va: a).get() == p.physicalAddress)
        #expect(r.m.swiotlbStats?.bounced == 0)
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 8192, direction: .toDevice)
        // dma_alloc_coherent is never bounced (iommu_dma_alloc maps with
        // __iommu_dma_map), whatever its size.
        let c = try r.m.dmaAllocCoherent(device: r.dev, size: 100)
        #expect(try r.m.translateForDevice(device: r.dev, pasid: .noPASID, va: c.address).get() == c.pfn.physicalAddress)
        try r.m.dmaFreeCoherent(device: r.dev, size: 100, address: c.address, pfn: c.pfn)
        #expect(r.m.swiotlbStats?.bounced == 0)
    }

    @Test func aTrustedDeviceKeepsItsOffsetAndNoPool() throws {
        let r = try rig(untrusted: false)
        let p = try r.m.allocFrames()
        let a = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress + 0x123, size: 512, direction: .toDevice)
        #expect(a & 0xfff == 0x123)
        #expect(r.m.swiotlbStats == nil)
        #expect(try r.m.dmaMaxMappingSize(device: r.dev) == .max)
        let u = try rig()
        #expect(try u.m.dmaMaxMappingSize(device: u.dev) == 256 << 10, "swiotlb_max_mapping_size: one segment")
    }

    @Test func geometryFollowsSwiotlbInitRemap() {
        #expect(SWIOTLB.geometry(slabs: 32768, cpus: 4) == (32768, 4))
        #expect(SWIOTLB.geometry(slabs: 32768, cpus: 3) == (32768, 4), "areas round up to a power of two")
        #expect(SWIOTLB.geometry(slabs: 100, cpus: 4) == (512, 4), "at least a segment per area")
        #expect(SWIOTLB.geometry(slabs: 3 * 128 * 4, cpus: 4) == (2048, 4), "a power of two")
        #expect(SWIOTLB.geometry(slabs: 200, cpus: 1) == (256, 1), "aligned to a segment, then a power of two")
    }

    @Test func exhaustionIsAMappingErrorThatChangesNothing() throws {
        // 512 slots in 4 areas: 256 maps of 512 bytes (2 slots each) fill it.
        let r = try rig(slabs: 512)
        #expect(r.m.swiotlbStats?.slots == 512 && r.m.swiotlbStats?.areas == 4)
        let p = try bufferBesideASecret(r.m)
        var maps: [UInt64] = []
        for i in 0..<256 {
            maps.append(try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .toDevice,
                                           cpu: i % 4))
        }
        let before = r.m.audit()
        #expect(before.isEmpty, "\(before)")
        #expect(throws: SVAError.outOfMemory) {
            try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .toDevice, cpu: 0)
        }
        #expect(r.m.swiotlbStats?.full == 1 && r.m.swiotlbStats?.used == 512)
        #expect(r.m.audit().isEmpty)
        try r.m.dmaUnmapPage(device: r.dev, address: maps[5], size: 512, direction: .toDevice, cpu: 1)
        // A CPU whose area is full finds the free granule in another area.
        let again = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .toDevice, cpu: 3)
        #expect(r.m.swiotlbStats?.used == 512)
        for a in maps where a != maps[5] { try r.m.dmaUnmapPage(device: r.dev, address: a, size: 512, direction: .toDevice) }
        try r.m.dmaUnmapPage(device: r.dev, address: again, size: 512, direction: .toDevice)
        #expect(r.m.swiotlbStats?.used == 0 && r.m.swiotlbStats?.hiwater == 512)
        #expect(r.m.audit().isEmpty)
        // More than a segment cannot bounce (dma_max_mapping_size says so).
        #expect(throws: SVAError.outOfMemory) {
            try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: (256 << 10) + 1, direction: .toDevice)
        }
    }

    @Test func withoutAPoolAnUnalignedMapFails() throws {
        let r = try rig(slabs: 0)
        let p = try r.m.allocFrames()
        #expect(throws: SVAError.outOfMemory) {
            try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .toDevice)
        }
        let a = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 4096, direction: .toDevice)
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 4096, direction: .toDevice)
        #expect(r.m.audit().isEmpty)
    }

    @Test func aFailedIOVAAllocationGivesTheSlotsBack() throws {
        let r = try rig()
        let p = try r.m.allocFrames()
        r.m.failNthAllocation(1)  // the IOVA, after the slots
        #expect(throws: SVAError.noSpace) {
            try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .bidirectional)
        }
        #expect(r.m.failNthInjected == .iova)
        #expect(r.m.swiotlbStats?.used == 0)
        #expect(r.m.audit().isEmpty)
    }

    @Test func theAreaSearchStartsAtTheCPUsAreaAndSlotsMerge() throws {
        let r = try rig(slabs: 512)
        let p = try r.m.allocFrames()
        let pool = try #require(r.m.domains.swiotlb)
        let a = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 512, direction: .toDevice, cpu: 2)
        let b = try r.m.dmaMapPage(device: r.dev, phys: p.physicalAddress, size: 3000, direction: .toDevice, cpu: 2)
        let ta = try r.m.translateForDevice(device: r.dev, pasid: .noPASID, va: a).get()
        let tb = try r.m.translateForDevice(device: r.dev, pasid: .noPASID, va: b).get()
        #expect(ta == pool.slotAddress(2 * 128), "area 2's first granule")
        #expect(tb == pool.slotAddress(2 * 128 + 2), "the next granule: the area's index moved past the first")
        try r.m.dmaUnmapPage(device: r.dev, address: a, size: 512, direction: .toDevice)
        try r.m.dmaUnmapPage(device: r.dev, address: b, size: 3000, direction: .toDevice)
        #expect(r.m.audit().isEmpty, "every free slot's list counts to its segment's end again")
    }

    @Test func anUntrustedScatterListMapsEachElementAndBouncesThePartialOnes() throws {
        let r = try rig()
        let p = try bufferBesideASecret(r.m)
        let q = try r.m.allocFrames()
        let sg = try r.m.dmaMapSG(device: r.dev, [(p.physicalAddress, 512), (q.physicalAddress, 4096)],
                                  direction: .toDevice)
        #expect(sg.segments.count == 2 && sg.segments.map(\.length) == [512, 4096], "one segment per element")
        let words = try #require(try granule(r, sg.segments[0].address))
        #expect(words[64...].allSatisfy { $0 == 0 }, "the partial element was bounced")
        #expect(try r.m.translateForDevice(device: r.dev, pasid: .noPASID, va: sg.segments[1].address).get()
                == q.physicalAddress, "the whole page was not")
        // A bad unmap of the list changes nothing; the right one frees it all.
        #expect(throws: SVAError.invalidArgument) {
            try r.m.dmaUnmapSG(device: r.dev, segments: sg.segments, direction: .fromDevice)
        }
        #expect(r.m.swiotlbStats?.used == 2)
        try r.m.dmaUnmapSG(device: r.dev, segments: sg.segments, direction: .toDevice)
        #expect(r.m.swiotlbStats?.used == 0)
        #expect(r.m.audit().isEmpty)
    }

    @Test func thePoolIsAccountedForAndCannotBeFreedByHand() throws {
        let r = try rig(slabs: 512)
        let pool = try #require(r.m.swiotlbStats)
        #expect(pool.frames.count == 4, "one 256 KiB block per segment")
        #expect(throws: SVAError.wrongAPI) { try r.m.freeFrames(pool.frames[0]) }
        let d = try r.m.descriptor(pool.frames[0])
        #expect(d.kind == .data && d.owner == SWIOTLB.owner)
        #expect(r.m.audit().isEmpty)
        // A second untrusted device shares the pool.
        let dev2 = try r.m.addDevice(iommu: r.iommu, sva: false, untrusted: true)
        _ = try r.m.setupDMA(for: dev2)
        #expect(r.m.swiotlbStats?.frames == pool.frames)
    }
}

extension Array where Element == UInt8 {
    /// The bytes repeated to `n`.
    func cycled(_ n: Int) -> [UInt8] { (0..<n).map { self[$0 % count] } }
}
