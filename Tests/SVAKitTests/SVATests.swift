// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

@Suite struct SVATests {
    @Test func keyFollowsTheSVAList() throws {
        let m = try machine()
        let a = try m.addIOMMU(), b = try m.addIOMMU()
        let d1 = try m.addDevice(iommu: a.id), d2 = try m.addDevice(iommu: a.id), d3 = try m.addDevice(iommu: b.id)
        let mm1 = try m.createAddressSpace(), mm2 = try m.createAddressSpace()
        #expect(!m.svaPresent)
        let b1 = try m.bindSVA(device: d1, mm: mm1)
        #expect(m.svaPresent, "the first bind turns the key on")
        let b2 = try m.bindSVA(device: d2, mm: mm1)   // same mm, same IOMMU: same domain
        let b3 = try m.bindSVA(device: d3, mm: mm2)   // another mm, another IOMMU
        #expect(m.svaMMCount == 2)
        #expect(m.sva.domains.count == 2)
        try m.unbindSVA(b1)
        try m.unbindSVA(b3)
        #expect(m.svaPresent, "mm1 still has a domain through d2")
        #expect(m.svaMMCount == 1)
        try m.unbindSVA(b2)
        #expect(!m.svaPresent, "the last unbind turns it off")
        #expect(m.svaMMCount == 0)
        #expect(m.svaKeyTransitions == 2, "on once, off once")
    }

    @Test func rebindingReturnsTheSameHandle() throws {
        let m = try machine()
        let i = try m.addIOMMU()
        let d = try m.addDevice(iommu: i.id)
        let mm = try m.createAddressSpace()
        let b1 = try m.bindSVA(device: d, mm: mm), b2 = try m.bindSVA(device: d, mm: mm)
        #expect(b1 == b2)
        try m.unbindSVA(b1)
        #expect(m.svaPresent, "one reference left")
        try m.unbindSVA(b2)
        #expect(!m.svaPresent)
        #expect(throws: SVAError.staleHandle) { try m.unbindSVA(b1) }
        #expect(throws: SVAError.staleHandle) { try m.unbindSVA(SVABond(rawValue: 999, pasid: 1)) }
        #expect(throws: SVAError.staleHandle) { _ = try m.pasid(of: b1) }
    }

    @Test func onePASIDPerMMForItsLife() throws {
        let m = try machine()
        let i = try m.addIOMMU()
        let d = try m.addDevice(iommu: i.id)
        let mm1 = try m.createAddressSpace(), mm2 = try m.createAddressSpace()
        let p1 = try m.bindSVA(device: d, mm: mm1).pasid
        let p2 = try m.bindSVA(device: d, mm: mm2).pasid
        #expect(p1 != p2)
        #expect(p1 >= 1 && p2 >= 1)
        try m.unbindSVA(handle: try #require(handleOf(m, d, mm1)))
        let again = try m.bindSVA(device: d, mm: mm1)
        #expect(again.pasid == p1, "the PASID outlives the bond")
        try m.unbindSVA(again)
        try m.destroyAddressSpace(mm1)
        #expect(m.pasid(ofMM: mm1) == nil, "mm_pasid_drop at teardown")
        let mm3 = try m.createAddressSpace()
        #expect(try m.bindSVA(device: d, mm: mm3).pasid == p1, "the freed PASID is reused")
    }

    func handleOf(_ m: Machine, _ d: DeviceID, _ mm: MMID) -> UInt32? {
        m.sva.bonds.locked { r in r.bonds.first { $0.value.device == d.rawValue && $0.value.mm == mm.rawValue }?.key }
    }

    @Test func bindErrorsAreDistinctAndLeaveTheRegistryAlone() throws {
        let m = try Machine(MachineConfig(frames: gib, pasidBits: 2))  // PASIDs 1...3
        let i = try m.addIOMMU()
        let plain = try m.addDevice(iommu: i.id, sva: false)
        let narrow = try m.addDevice(iommu: i.id, pasidBits: 1)   // PASID 1 only
        let d = try m.addDevice(iommu: i.id)
        let mms = try (0..<4).map { _ in try m.createAddressSpace() }
        #expect(throws: SVAError.notSupported) { _ = try m.bindSVA(device: plain, mm: mms[0]) }
        #expect(throws: SVAError.noDevice) { _ = try m.bindSVA(device: 77, mm: mms[0]) }
        #expect(throws: SVAError.noSuchMM) { _ = try m.bindSVA(device: d, mm: 77) }
        #expect(throws: SVAError.invalidArgument) { _ = try m.bindSVA(device: d, mm: Machine.initMM) }
        _ = try m.bindSVA(device: d, mm: mms[0])                   // PASID 1
        let b2 = try m.bindSVA(device: d, mm: mms[1])              // PASID 2
        #expect(b2.pasid == 2)
        #expect(throws: SVAError.overflow) { _ = try m.bindSVA(device: narrow, mm: mms[1]) }
        // A PASID the caller attached on the device (iommufd-style) for mm3.
        try m.attachPASID(device: d, pasid: 3, mm: mms[3])
        #expect(throws: SVAError.busy) { _ = try m.bindSVA(device: d, mm: mms[2]) } // mms[2] gets PASID 3
        #expect(m.pasid(ofMM: mms[2]) == 3)
        #expect(throws: SVAError.noSpace) { _ = try m.bindSVA(device: d, mm: mms[3]) } // 1...3 all taken
        #expect(throws: SVAError.busy) { try m.destroyAddressSpace(mms[0]) }     // still bound
        #expect(m.svaMMCount == 2)
        #expect(m.audit() == [])
    }

    @Test func kernelInvalidationReachesExactlyTheBoundPASIDs() throws {
        let m = try machine()
        let a = try m.addIOMMU(), b = try m.addIOMMU(), idle = try m.addIOMMU()
        let da = try m.addDevice(iommu: a.id), db = try m.addDevice(iommu: b.id)
        _ = try m.addDevice(iommu: idle.id)
        let mm1 = try m.createAddressSpace(), mm2 = try m.createAddressSpace()
        _ = try m.createAddressSpace()  // never bound

        m.invalidateKernelRange(m.layout.directMapBase, .max)
        #expect([a, b, idle].allSatisfy { $0.counters.invalidations == 0 }, "key off: no IOMMU hears anything")

        let p1 = try m.bindSVA(device: da, mm: mm1).pasid
        let p2 = try m.bindSVA(device: db, mm: mm2).pasid
        // Warm both IOMMUs with entries for both PASIDs' kernel half and user half.
        let user: UInt64 = 0x10_0000
        try m.map(user, to: userFrame(m), prot: PageTableEntry.user, in: mm1)
        _ = try m.dmaRead(device: da, pasid: p1, va: user, count: 8)
        let va = try m.vmalloc(4096)
        _ = try m.dmaRead(device: da, pasid: p1, va: va, count: 8)
        _ = try m.dmaRead(device: db, pasid: p2, va: va, count: 8)
        let before = (a.counters, b.counters)
        m.invalidateKernelRange(m.layout.directMapBase, .max)
        #expect(a.counters.rangeInvalidations == before.0.rangeInvalidations + 1)
        #expect(b.counters.rangeInvalidations == before.1.rangeInvalidations + 1)
        #expect(a.counters.fences == before.0.fences + 1)
        #expect(idle.counters.invalidations == 0)
        // The kernel-half entries went; mm1's user translation stays in the IOTLB.
        let after = try m.dmaRead(device: da, pasid: p1, va: user, count: 8)
        #expect(after.isSuccess)
        #expect(a.counters.iotlbHits > before.0.iotlbHits)
        let k = a.counters
        _ = try m.dmaRead(device: da, pasid: p1, va: va, count: 8)
        #expect(a.counters.fullWalks == k.fullWalks + 1, "no paging-structure entry for the kernel range survived")
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { return true } else { return false } }
}

extension SVATests {
    /// PASIDs are machine-wide and live as long as their mm: a device with
    /// 2-bit PASIDs has 1..3, and the fourth mm's bind is -ENOSPC and
    /// publishes nothing; when an mm goes, its PASID is free again. The
    /// same at a 6-bit device, whose limit falls at a word of the bitmap.
    @Test func aNarrowDeviceRunsOutOfPASIDs() throws {
        let m = try Machine(MachineConfig(frames: gib, freeMode: .complete, workMode: .manual))
        try m.addIOMMU()
        let dev = try m.addDevice(iommu: 0, pasidBits: 2)
        var bonds: [(mm: MMID, bond: SVABond)] = []
        for _ in 0..<3 {
            let mm = try m.createAddressSpace()
            bonds.append((mm, try m.bindSVA(device: dev, mm: mm)))
        }
        #expect(bonds.map(\.bond.pasid) == [1, 2, 3])
        let fourth = try m.createAddressSpace()
        #expect(throws: SVAError.noSpace) { _ = try m.bindSVA(device: dev, mm: fourth) }
        #expect(m.svaMMCount == 3)
        #expect(m.audit().isEmpty)
        try m.unbindSVA(bonds[1].bond)
        try m.destroyAddressSpace(bonds[1].mm)
        #expect(try m.bindSVA(device: dev, mm: fourth).pasid == 2)
        #expect(m.svaMMCount == 3)
        #expect(m.audit().isEmpty)

        // A 6-bit device ends at a word of the bitmap: PASIDs 4..63 are
        // left, 60 mms get them, the 61st is -ENOSPC.
        let wide = try m.addDevice(iommu: 0, pasidBits: 6)
        var got = Set<PASID>()
        for _ in 0..<60 { got.insert(try m.bindSVA(device: wide, mm: try m.createAddressSpace()).pasid) }
        #expect(got == Set((4..<64).map { PASID(UInt32($0)) }))
        let last = try m.createAddressSpace()
        #expect(throws: SVAError.noSpace) { _ = try m.bindSVA(device: wide, mm: last) }
        #expect(m.svaMMCount == 63)
        #expect(m.audit().isEmpty)
    }
}
