// SPDX-License-Identifier: Apache-2.0
import CSVAKit
import Testing
@testable import SVAKit

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
        #expect(MemoryLayout<RawEvent>.size == 40)
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
