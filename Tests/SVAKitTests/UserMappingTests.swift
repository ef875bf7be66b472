// SPDX-License-Identifier: Apache-2.0
import CSVAKit
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
import SVAKitScenarios

/// User mappings only of frames a process could own (issue 20, item 9):
/// a process mm refuses a page table of any kind and offline memory with
/// ``SVAError/wrongAPI`` (-EPERM); init_mm maps any frame, as vmap does.
@Suite struct UserMappingTests {
    let user: UInt64 = 0x1000_1000

    @Test func aUserMappingOfAPageTableIsRefused() throws {
        let m = try machine()
        let mm = try m.createAddressSpace()
        let kroot = try m.rootTable(of: .initMM).pfn
        let uroot = try m.rootTable(of: mm).pfn
        let table = try m.allocKernelTable(level: 1).pfn
        for pfn in [kroot, PFN(1), uroot, table] {
            let stats = m.stats
            #expect(throws: SVAError.wrongAPI, "\(pfn)") {
                try m.map(user, to: pfn.physicalAddress, prot: PageTableEntry.user | PageTableEntry.writable, in: mm)
            }
            #expect(m.stats.userTables == stats.userTables, "refused before any table is allocated")
            #expect(try m.translate(user, in: mm).physicalAddress == nil)
        }
        // A 2 MiB leaf over a range holding a table is refused as well.
        #expect(throws: SVAError.wrongAPI) {
            try m.map(0x4000_0000, to: 0, size: .size2M, prot: PageTableEntry.user, in: mm)
        }
        // The C call returns the documented errno, -EPERM.
        #expect(svakit_map(m.cHandle, mm.rawValue, user, 0, 4096, UInt64(SVAKIT_PTE_US)) == SVAError.wrongAPI.errno)
    }

    @Test func dataAndUnallocatedFramesStayMappable() throws {
        let m = try machine()
        let mm = try m.createAddressSpace()
        let data = try m.allocFrames()
        try m.map(user, to: data.physicalAddress, prot: PageTableEntry.user, in: mm)
        try m.map(user + 0x1000, to: userFrame(m), prot: PageTableEntry.user, in: mm)   // never allocated
        #expect(try m.translate(user, in: mm).physicalAddress == data.physicalAddress)
        // init_mm maps any frame (vmap, ioremap of RAM): a table too.
        try m.map(m.layout.vmallocStart + (1 << 30), to: 0)
    }

    /// Found by the fuzzer (tests-c/fuzz/crashes/dma-write-into-a-live-table-through-a-user-mapping):
    /// a bound device copied init_mm's root into a boot-time PUD table
    /// through two user mappings of them. Both maps are refused now, and
    /// the device's write faults instead of corrupting a table.
    @Test func theFuzzReproducerCannotReachATable() throws {
        let m = try machine()
        let s = try SVASetup(m)
        #expect(throws: SVAError.wrongAPI) {
            try m.map(0x1000_1000, to: 0, prot: PageTableEntry.user | PageTableEntry.writable, in: s.mm)
        }
        #expect(throws: SVAError.wrongAPI) {
            try m.map(0x1000_2000, to: 0x10000, prot: PageTableEntry.user | PageTableEntry.writable, in: s.mm)
        }
        #expect(m.audit() == [])
    }
}
