// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// One machine, one IOMMU (config given), one device bound to one process.
func boundMachine(_ config: IOMMUConfig = IOMMUConfig(), kva: KVAInvalidation = .none) throws -> (Machine, SVASetup) {
    let m = try Machine(MachineConfig(frames: gib, eventLogCapacity: 1 << 14, kvaInvalidation: kva))
    return (m, try SVASetup(m, iommu: config))
}

@Suite struct IOMMUTests {
    let user: UInt64 = 0x7f00_0000_0000

    @Test func userDMARoundTripsThroughTheIOTLB() throws {
        let (m, s) = try boundMachine()
        let frame = try m.allocFrames()
        try m.map(user, to: frame.physicalAddress, prot: PageTableEntry.user | PageTableEntry.writable, in: s.mm)
        let data: [UInt8] = Array("hello, device".utf8)
        let wf = try data.withUnsafeBytes { try m.dmaWrite(device: s.device, pasid: s.bond.pasid, va: user + 100, from: $0) }
        #expect(wf == nil)
        #expect(try m.dmaRead(device: s.device, pasid: s.bond.pasid, va: user + 100, count: data.count) == .success(data))
        let c = s.iommu.counters
        #expect(c.fullWalks == 1, "the write walked; the read hit the IOTLB")
        #expect(c.iotlbHits == 1)
        // The walker set A and D in the leaf.
        guard case .mapped(_, _, let e, _) = try m.translate(user, in: s.mm) else { Issue.record("unmapped"); return }
        #expect(e.raw & PageTableEntry.accessed != 0 && e.raw & PageTableEntry.dirty != 0)
        #expect(m.reportCount == 0)
    }

    @Test func aFaultingWalkStillFillsThePagingStructureCaches() throws {
        let (m, s) = try boundMachine()
        let va = try m.vmalloc(4096)
        let r = try s.touch(m, va)
        #expect(r == .failure(DMAFault(reason: .privilege, level: 1, address: va)))
        #expect(s.iommu.cachedEntries.psc == 3, "PML4E, PDPTE and PDE cached before the leaf faulted")
        #expect(s.iommu.cachedEntries.iotlb == 0)
        _ = try s.touch(m, va)
        #expect(s.iommu.counters.pdeHits == 1, "the second walk resumed from the PDE")
        // SVA grants user access only: a supervisor request faults at the
        // PASID entry (SRE clear) before any walk, so it reads nothing of the
        // kernel half and fills nothing.
        let walks = s.iommu.counters.fullWalks
        let priv = try m.dmaRead(device: s.device, pasid: s.bond.pasid, va: va, count: 8, access: .privileged)
        #expect(priv == .failure(DMAFault(reason: .privilege, level: 0, address: va)))
        #expect(s.iommu.counters.fullWalks == walks)
    }

    @Test func leafOnlyInvalidationKeepsPagingStructureEntries() throws {
        let (m, s) = try boundMachine()
        try m.map(user, to: userFrame(m), prot: PageTableEntry.user, in: s.mm)
        _ = try s.touch(m, user)
        #expect(s.iommu.cachedEntries == (1, 3))
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 4095, leafOnly: true)
        #expect(s.iommu.cachedEntries == (0, 3))
        s.iommu.invalidateRange(pasid: PASID(s.bond.pasid.rawValue + 1), start: 0, end: .max)  // another PASID
        #expect(s.iommu.cachedEntries == (0, 3))
        s.iommu.invalidateRange(pasid: s.bond.pasid, start: user, end: user + 4095)
        #expect(s.iommu.cachedEntries == (0, 0))
        _ = try s.touch(m, user)
        s.iommu.invalidatePASID(s.bond.pasid)
        #expect(s.iommu.cachedEntries == (0, 0))
        _ = try s.touch(m, user)
        s.iommu.invalidateAll()
        #expect(s.iommu.cachedEntries == (0, 0))
        let c = s.iommu.counters
        #expect((c.leafRangeInvalidations, c.rangeInvalidations, c.pasidInvalidations, c.globalInvalidations) == (1, 2, 1, 1))
        #expect(c.entriesDropped == 1 + 3 + 4 + 4)
    }

    @Test(arguments: [IOMMUCaching.none, .leafOnly])
    func simplerHardwareCachesLess(caching: IOMMUCaching) throws {
        let (m, s) = try boundMachine(IOMMUConfig(caching: caching))
        try m.map(user, to: userFrame(m), prot: PageTableEntry.user, in: s.mm)
        _ = try s.touch(m, user)
        _ = try s.touch(m, user)
        #expect(s.iommu.cachedEntries.psc == 0)
        #expect(s.iommu.cachedEntries.iotlb == (caching == .leafOnly ? 1 : 0))
        #expect(s.iommu.counters.fullWalks == (caching == .leafOnly ? 1 : 2))
    }

    @Test func accessedDirtyUpdatesCanBeTurnedOff() throws {
        let (m, s) = try boundMachine(IOMMUConfig(setsAccessedDirty: false))
        try m.map(user, to: userFrame(m), prot: PageTableEntry.user | PageTableEntry.writable, in: s.mm)
        let rootA = try m.entry(#require(try m.entrySlot(user, level: 4, in: s.mm))).raw & PageTableEntry.accessed
        _ = try [UInt8](repeating: 1, count: 8).withUnsafeBytes {
            try m.dmaWrite(device: s.device, pasid: s.bond.pasid, va: user, from: $0)
        }
        #expect(s.iommu.counters.accessedDirtyWrites == 0)
        #expect(try m.entry(#require(try m.entrySlot(user, level: 4, in: s.mm))).raw & PageTableEntry.accessed == rootA)
    }

    @Test func unmappingABoundMMInvalidatesItsPASID() throws {
        // The MMU-notifier path: no stale IOTLB entry outlives the unmap.
        let (m, s) = try boundMachine()
        try m.map(user, to: userFrame(m), prot: PageTableEntry.user, in: s.mm)
        #expect(try s.touch(m, user).isSuccess)
        try m.unmap(user, in: s.mm)
        #expect(try s.touch(m, user) == .failure(DMAFault(reason: .notPresent, level: 1, address: user)))
        #expect(s.iommu.counters.rangeInvalidations == 1)
    }

    @Test func dmaRefusesBadInput() throws {
        let (m, s) = try boundMachine()
        #expect(throws: SVAError.noDevice) { _ = try m.dmaRead(device: 9, pasid: 1, va: 0, count: 8) }
        // PASID 0 is a request without PASID: with no DMA domain attached it
        // faults at the PASID-table step.
        #expect(try m.dmaRead(device: s.device, pasid: .noPASID, va: 0, count: 8)
                == .failure(DMAFault(reason: .noPASID, level: 0, address: 0)))
        #expect(throws: SVAError.overflow) { _ = try m.dmaRead(device: s.device, pasid: PASID(1 << 20), va: 0, count: 8) }
        #expect(throws: SVAError.outOfRange) { _ = try m.dmaRead(device: s.device, pasid: 1, va: 0x0000_8000_0000_0000, count: 8) }
        #expect(try m.dmaRead(device: s.device, pasid: 7, va: 0, count: 8) == .failure(DMAFault(reason: .noPASID, level: 0, address: 0)))
    }

    @Test func smallCachesEvictAndStillTranslateCorrectly() throws {
        let seed = testSeed("smallCachesEvictAndStillTranslateCorrectly")
        for replacement in [CacheReplacement.lru, .fifo, .random] {
            let (m, s) = try boundMachine(IOMMUConfig(iotlbSets: 2, iotlbWays: 2, pscSets: 1, pscWays: 2,
                                                      replacement: replacement, seed: seed))
            var rng = SplitMix64(seed: seed)
            var pages: [UInt64: UInt64] = [:]
            for i in 0..<64 {
                let va = UInt64(i) << 30 | UInt64(i) << 21  // a table chain each
                let frame = try m.allocFrames()
                try m.writeWord(frame, index: 0, va)
                try m.map(va, to: frame.physicalAddress, prot: PageTableEntry.user, in: s.mm)
                pages[va] = va
            }
            for _ in 0..<2000 {
                let va = Array(pages.keys)[rng.next(below: pages.count)]
                let r = try m.dmaRead(device: s.device, pasid: s.bond.pasid, va: va, count: 8)
                guard case .success(let b) = r else { Issue.record("\(replacement): \(r)"); break }
                #expect(b.withUnsafeBytes { $0.load(as: UInt64.self) } == va)
            }
            #expect(s.iommu.cachedEntries.iotlb <= 4)
            #expect(s.iommu.cachedEntries.psc <= 2 * 3)
            #expect(m.reportCount == 0)
        }
    }
}

extension IOMMUTests {
    @Test func anUnboundDeviceDoesNotHitLinesItsNeighbourLeft() throws {
        // Two devices behind one IOMMU share the mm's domain; after one
        // unbinds, the IOTLB still holds the other's lines for the PASID.
        let (m, s) = try boundMachine()
        let other = try m.addDevice(iommu: s.iommu.id)
        let b2 = try m.bindSVA(device: other, mm: s.mm)
        try m.map(user, to: userFrame(m), prot: PageTableEntry.user, in: s.mm)
        #expect(try s.touch(m, user).isSuccess)
        try m.unbindSVA(s.bond)
        #expect(s.iommu.cachedEntries.iotlb == 1, "the domain lives on through the other device")
        #expect(try s.touch(m, user) == .failure(DMAFault(reason: .noPASID, level: 0, address: user)))
        #expect(try m.dmaRead(device: other, pasid: b2.pasid, va: user, count: 8).isSuccess)
    }
}

extension IOMMUTests {
    /// A burst of ATS translation requests (translateForDevice with many
    /// addresses, the path that looks up the PASID entry and enters the walk
    /// epoch once) must answer each address as a request of its own would,
    /// fill the caches that later requests hit, fault every request through
    /// an unattached PASID or a supervisor request through SVA, and see an
    /// unmap once its invalidation has run.
    @Test func aBurstOfTranslationsAgreesWithSingleRequests() throws {
        let m = try Machine(MachineConfig(frames: gib, freeMode: .complete, workMode: .manual))
        let iommu = try m.addIOMMU()  // caching .full
        let dev = try m.addDevice(iommu: 0)
        let mm = try m.createAddressSpace()
        let base: UInt64 = 0x1000_0000, phys: UInt64 = 0x40_0000
        for i in 0..<8 where i != 5 {
            try m.map(base + UInt64(i) << 12, to: phys + UInt64(i) << 12,
                      prot: PageTableEntry.writable | PageTableEntry.user, in: mm)
        }
        let bond = try m.bindSVA(device: dev, mm: mm)
        // Pages 0..7 (5 unmapped) at an offset, then pages 0..2 again.
        let vas = (0..<8).map { base + UInt64($0) << 12 + 0x10 } + (0..<3).map { base + UInt64($0) << 12 }
        var out = [UInt64](repeating: 0, count: vas.count)
        func burst(_ pasid: PASID, _ access: DMAAccess = []) throws -> Int {
            try vas.withUnsafeBufferPointer { v in
                try out.withUnsafeMutableBufferPointer { o in
                    try m.translateForDevice(device: dev, pasid: pasid, vas: v, into: o, access: access)
                }
            }
        }
        let hitsBefore = iommu.counters.iotlbHits
        #expect(try burst(bond.pasid) == 1)
        #expect(iommu.counters.iotlbHits >= hitsBefore + 3, "the repeats hit what the burst filled")
        for (i, va) in vas.enumerated() {
            let page = (va - base) >> 12
            #expect(out[i] == (page == 5 ? .max : phys + page << 12 + (va & 0xfff)), "request \(i)")
            switch try m.translateForDevice(device: dev, pasid: bond.pasid, va: va) {
            case .success(let p): #expect(p == out[i], "request \(i)")
            case .failure: #expect(out[i] == .max, "request \(i)")
            }
        }
        #expect(try burst(PASID(bond.pasid.rawValue + 1)) == vas.count)
        #expect(out.allSatisfy { $0 == .max })
        #expect(try burst(bond.pasid, .privileged) == vas.count)
        #expect(out.allSatisfy { $0 == .max })
        try m.unmap(base, in: mm)
        #expect(try burst(bond.pasid) == 3, "page 0 (twice) and page 5")
        #expect(out[0] == .max && out[8] == .max && out[1] == phys + 0x1010)
        #expect(m.audit().isEmpty)
    }
}

extension IOMMUTests {
    /// An IOTLB line whose cached permissions refuse a request (a write to
    /// a page cached read-only and clean) does not answer it: the IOMMU
    /// walks again, and the walk faults. Requests the line allows hit it.
    @Test func aCachedLineThatRefusesTheRequestWalksAgain() throws {
        let m = try Machine(MachineConfig(frames: gib, freeMode: .complete, workMode: .manual))
        let iommu = try m.addIOMMU()
        let dev = try m.addDevice(iommu: 0)
        let mm = try m.createAddressSpace()
        let va: UInt64 = 0x1000_0000
        try m.map(va, to: 0x40_0000, prot: PageTableEntry.user, in: mm)  // read-only
        let bond = try m.bindSVA(device: dev, mm: mm)
        #expect(try m.dmaRead(device: dev, pasid: bond.pasid, va: va, count: 8).get() == [UInt8](repeating: 0, count: 8))
        let before = iommu.counters
        _ = try m.dmaRead(device: dev, pasid: bond.pasid, va: va, count: 8)
        #expect(iommu.counters.iotlbHits == before.iotlbHits + 1, "the read hits the cached line")
        let bytes = [UInt8](repeating: 0xaa, count: 8)
        let fault = try bytes.withUnsafeBytes { try m.dmaWrite(device: dev, pasid: bond.pasid, va: va, from: $0) }
        #expect(fault?.reason == .write)
        let after = iommu.counters
        #expect(after.iotlbHits == before.iotlbHits + 1, "the write is not answered from the line")
        #expect(after.faults == before.faults + 1)
        #expect(try m.dmaRead(device: dev, pasid: bond.pasid, va: va, count: 8).get() == [UInt8](repeating: 0, count: 8),
                "nothing was written")

        #expect(m.audit().isEmpty)
    }
}
