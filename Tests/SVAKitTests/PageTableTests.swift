// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

@Suite struct PageTableTests {
    let kva: UInt64 = 0xffff_c900_4000_0000  // vmalloc area, 1 GiB aligned

    @Test(arguments: [4, 5])
    func mapTranslateUnmapEverySize(levels: Int) throws {
        let m = try machine(levels: levels)
        for (i, size) in PageSize.allCases.enumerated() {
            // A fresh 1 GiB slot each: a map never replaces a table that an
            // earlier, smaller mapping left behind.
            let base = m.layout.vmallocStart + UInt64(i + 1) << 30
            let phys: UInt64 = size.bytes  // aligned, inside 1 GiB... except 1 GiB itself
            let pa = size == .size1G ? 0 : phys
            try m.map(base, to: pa, size: size, prot: PageTableEntry.writable | PageTableEntry.noExecute)
            guard case .mapped(let p, let s, let e, let level) = try m.translate(base + 0x123) else {
                Issue.record("\(size) not mapped"); continue
            }
            #expect(p == pa + 0x123)
            #expect(s == size)
            #expect(level == size.level)
            #expect(e.raw & PageTableEntry.noExecute != 0)
            #expect(e.raw & PageTableEntry.user == 0, "kernel leaves deny user requests")
            try m.unmap(base, size: size)
            #expect(try m.translate(base + 0x123) == .notPresent(level: size.level))
        }
        #expect(m.audit() == [])
    }

    @Test func kernelHalfIsSharedByEveryAddressSpace() throws {
        let m = try machine()
        let mm1 = try m.createAddressSpace(), mm2 = try m.createAddressSpace()
        let va = try m.vmalloc(4096)
        let k = try m.translate(va)
        #expect(try m.translate(va, in: mm1) == k)
        #expect(try m.translate(va, in: mm2) == k)
        // User mappings are private to their mm.
        try m.map(0x40_0000, to: 0x20_0000, prot: PageTableEntry.user | PageTableEntry.writable, in: mm1)
        #expect(try m.translate(0x40_0000, in: mm1).physicalAddress == 0x20_0000)
        #expect(try m.translate(0x40_0000, in: mm2) == .notPresent(level: 4))
        #expect(m.audit() == [])
    }

    @Test func intermediateEntriesCarryTheUserBit() throws {
        // x86's _PAGE_TABLE sets U/S on every non-leaf entry, kernel half
        // included; only the leaf denies a user request (docs/KERNEL-MODEL.md §3.1).
        let m = try machine()
        let va = try m.vmalloc(4096)
        for level in 2...4 {
            let slot = try #require(try m.entrySlot(va, level: level))
            #expect(m.entry(slot).raw & PageTableEntry.user != 0, "level \(level)")
        }
        let leaf = try #require(try m.entrySlot(va, level: 1))
        #expect(m.entry(leaf).raw & PageTableEntry.user == 0)
    }

    @Test func addressSpaceTeardownFreesItsTables() throws {
        let m = try machine()
        let before = m.stats
        let mm = try m.createAddressSpace()
        for i in 0..<8 {
            try m.map(UInt64(i) << 30, to: userFrame(m, i), prot: PageTableEntry.user, in: mm)
        }
        #expect(m.stats.userTables == before.userTables + 1 + 1 + 8 * 2)
        let root = try m.rootTable(of: mm)
        try m.destroyAddressSpace(mm)
        #expect(m.stats.userTables == before.userTables)
        #expect(try m.descriptor(root.pfn).kind == .free)
        expectRefused(m, .noSuchMM) { _ = try m.translate(0, in: mm) }
        expectRefused(m, .noSuchMM) { try m.destroyAddressSpace(mm) }
        expectRefused(m, .wrongAPI) { try m.destroyAddressSpace(Machine.initMM) }
        #expect(m.audit() == [])
    }

    @Test func badMappingsAreRefused() throws {
        let m = try machine()
        let mm = try m.createAddressSpace()
        try m.map(kva, to: 0)
        expectRefused(m, .exists) { try m.map(kva, to: 0x1000) }                       // live mapping
        expectRefused(m, .exists) { try m.map(kva, to: 0, size: .size2M) }             // over a table
        expectRefused(m, .invalidArgument) { try m.map(kva + 0x1000, to: 0, size: .size2M) }  // unaligned va
        expectRefused(m, .invalidArgument) { try m.map(kva + (2 << 20), to: 0x1000, size: .size2M) }  // unaligned pa
        expectRefused(m, .invalidArgument) { try m.map(kva + 1, to: 0) }
        expectRefused(m, .invalidArgument) { try m.map(kva + 0x1000, to: 0, prot: PageTableEntry.present) }  // not a prot bit
        expectRefused(m, .outOfRange) { try m.map(0x0000_8000_0000_0000, to: 0, in: mm) }  // non-canonical
        expectRefused(m, .outOfRange) { try m.map(kva + 0x1000, to: UInt64(gib) << 12) }  // past memory
        expectRefused(m, .invalidArgument) { try m.map(0x1000, to: 0) }                  // user va via init_mm
        expectRefused(m, .invalidArgument) { try m.map(kva + 0x1000, to: 0, in: mm) }    // kernel va via an mm
        expectRefused(m, .noSuchMM) { try m.map(0x1000, to: 0, in: 99) }
        expectRefused(m, .notFound) { try m.unmap(kva + 0x1000) }
        expectRefused(m, .invalidArgument) { try m.unmap(kva, size: .size2M) }            // mapped by 4K leaves
        try m.map(kva + (4 << 20), to: 2 << 20, size: .size2M)
        expectRefused(m, .invalidArgument) { try m.unmap(kva + (4 << 20) + 0x1000) }     // part of a huge leaf
        expectRefused(m, .exists) { try m.map(kva + (4 << 20) + 0x1000, to: 0) }         // under a huge leaf
        expectRefused(m, .outOfRange) { _ = try m.translate(0x0001_0000_0000_0000) }
    }

    @Test func randomMapsAgreeWithAnOracle() throws {
        let seed = testSeed("randomMapsAgreeWithAnOracle")
        var rng = SplitMix64(seed: seed)
        let m = try machine()
        let mm = try m.createAddressSpace()
        var oracle: [UInt64: UInt64] = [:]  // va -> phys, 4 KiB pages of mm
        for _ in 0..<4000 {
            let va = UInt64(rng.next(below: 1 << 14)) << 12 + (UInt64(rng.next(below: 4)) << 39)
            if let phys = oracle[va] {
                #expect(try m.translate(va, in: mm).physicalAddress == phys)
                try m.unmap(va, in: mm)
                oracle[va] = nil
            } else {
                let phys = UInt64(gib / 2 + rng.next(below: gib / 2)) << 12   // not a table
                try m.map(va, to: phys, prot: PageTableEntry.user, in: mm)
                oracle[va] = phys
            }
        }
        for (va, phys) in oracle { #expect(try m.translate(va, in: mm).physicalAddress == phys) }
        #expect(m.audit() == [])
    }
}
