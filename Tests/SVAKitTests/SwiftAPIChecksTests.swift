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

/// The checks live in the Swift API (issue 20, item 4): the Swift calls
/// refuse the bad input the C glue refused, with the error whose errno the
/// C call returns, and change nothing when they do.
@Suite struct SwiftAPIChecksTests {
    @Test func flushTLBKernelRangeRefusesWhatTheCCallRefuses() throws {
        let m = try machine()
        let va = try m.vmalloc(4096)
        let bad: [(UInt64, UInt64, SVAError)] = [
            (va + 4096, va, .invalidArgument),                    // start > end
            (0xff00_0000_0000_0000, 0xff00_0000_0000_1000, .outOfRange),  // not canonical
            (va + 8, va + 4096, .invalidArgument),                // start not page-aligned
            (0x10_0000, 0x10_1000, .invalidArgument),             // a user address
        ]
        for (start, end, error) in bad {
            let flushes = m.stats.kernelTLBFlushes
            #expect(throws: error) { try m.flushTLBKernelRange(start, end) }
            #expect(m.stats.kernelTLBFlushes == flushes, "a refused flush flushes nothing")
            #expect(svakit_flush_tlb_kernel_range(m.cHandle, start, end) == error.errno)
        }
        let flushes = m.stats.kernelTLBFlushes
        try m.flushTLBKernelRange(va, va + 4095)
        try m.flushTLBKernelRange(0, .max)                         // flush_tlb_all
        #expect(m.stats.kernelTLBFlushes == flushes + 2)
    }

    @Test func invalidationsRefuseWhatTheCCallsRefuse() throws {
        let m = try machine()
        let s = try SVASetup(m)
        let id = s.iommu.id, pasid = s.bond.pasid
        let user: UInt64 = 0x40_0000
        let bad: [(IOMMUID, PASID, UInt64, UInt64, SVAError)] = [
            (IOMMUID(7), pasid, user, user + 0xfff, .noDevice),
            (id, pasid, user + 4096, user + 0xfff, .invalidArgument),          // start > end
            (id, pasid, 0x0000_8000_0000_0000, 0x0000_8000_0000_0fff, .outOfRange),
            (id, pasid, user + 8, user + 0xfff, .invalidArgument),             // start misaligned
            (id, pasid, user, user + 4096, .invalidArgument),                  // end not a page's last byte
            (id, PASID(1 << 20), user, user + 0xfff, .invalidArgument),        // past 20 bits
        ]
        for (iommu, p, start, end, error) in bad {
            let before = s.iommu.counters.invalidations
            #expect(throws: error) { try m.invalidateRange(iommu: iommu, pasid: p, start: start, end: end) }
            #expect(s.iommu.counters.invalidations == before, "a refused command reaches no IOMMU")
            #expect(svakit_iommu_invalidate_range(m.cHandle, iommu.rawValue, p.rawValue, start, end, 0) == error.errno)
        }
        #expect(throws: SVAError.noDevice) { try m.invalidatePASID(iommu: IOMMUID(7), pasid: pasid) }
        #expect(throws: SVAError.invalidArgument) { try m.invalidatePASID(iommu: id, pasid: PASID(1 << 20)) }
        #expect(svakit_iommu_invalidate_pasid(m.cHandle, id.rawValue, 1 << 20) == SVAError.invalidArgument.errno)
        let before = s.iommu.counters.invalidations
        try m.invalidateRange(iommu: id, pasid: pasid, start: user, end: user + 0xfff, leafOnly: true)
        try m.invalidateRange(iommu: id, pasid: pasid, start: 0, end: .max)
        try m.invalidatePASID(iommu: id, pasid: pasid)
        #expect(s.iommu.counters.invalidations == before + 3)
    }
}
