// SPDX-License-Identifier: Apache-2.0
@_spi(Testing) import SVAKit

/// The IOMMU_DEBUG_PAGEALLOC scenarios (docs/KERNEL-MODEL.md §5): what the
/// sanitizer reports, warns about and must stay silent on.
public enum DebugScenarioName: String, Sendable, CaseIterable {
    /// A driver frees a page it still has mapped.
    case freeWhileMapped = "free-while-mapped"
    /// A driver that went away maps its freed buffer after the free's check.
    case mapAfterFree = "map-after-free"
    /// Two unmaps of one mapping race.
    case doubleUnmap = "double-unmap"
    /// dma_map_sg maps small pieces, dma_unmap_sg unmaps one large range.
    case sgSmallUnmapLarge = "sg-small-unmap-large"
    /// An unmap stops at a hole; the mapping past it stays.
    case partialUnmap = "partial-unmap"
    /// An unmap smaller than the leaf it cuts into removes the whole leaf.
    case unmapSmallerThanLeaf = "unmap-smaller-than-leaf"
    /// A peer device's MMIO window mapped for peer-to-peer DMA.
    case mmioPeerToPeer = "mmio-peer-to-peer"
    /// A lazy (DMA-FQ) unmap, then the page freed before the flush.
    case lazyFreeInWindow = "lazy-free-in-window"

    /// The story, as `svakit demo` tells it.
    public var story: String {
        switch self {
        case .freeWhileMapped: "a driver maps a page and frees it without unmapping: reported at the free"
        case .mapAfterFree:
            "a driver frees its buffer (the check passes), its dying work maps it after the check (the "
                + "documented race), the allocator hands the page out again: reported then"
        case .doubleUnmap:
            "two unmaps of one page race: the second lowers the count the first already lowered; warned, "
                + "never wrapped, nothing lost"
        case .sgSmallUnmapLarge:
            "three pages mapped as one scatterlist, unmapped as one range: counts back to zero, no false report"
        case .partialUnmap:
            "an unmap over four mapped pages, a hole and a fifth page stops at the hole: the fifth stays counted"
        case .unmapSmallerThanLeaf:
            "a 4 KiB unmap cuts into a 2 MiB leaf, which goes whole (warned once): Linux leaves 511 frames "
                + "counted and reports each of them when the block is freed"
        case .mmioPeerToPeer: "a peer's BAR mapped for peer-to-peer DMA: no frame backs it, skipped"
        case .lazyFreeInWindow:
            "lazy mode: dma_unmap, then the page freed before the flush queue's flush (the seed-003 window)"
        }
    }
}

/// What a sanitizer scenario ended with.
public struct DebugScenarioOutcome: Sendable {
    /// The scenario and the sanitizer mode it ran under.
    public var name: DebugScenarioName, mode: IOMMUDebugMode
    /// The page-leak reports the sanitizer made.
    public var leaks: [UAFReport]
    /// What the sanitizer counted during the scenario.
    public var stats: IOMMUDebugStats
    /// The machine's audit after the scenario (empty: consistent).
    public var audit: [String]
    /// Frames the scenario used whose count is not zero at its end, when
    /// nothing maps them any more (a count lost or left behind).
    public var strayCounts: Int
}

/// One sanitizer scenario as a row of the table the CLI and the tests
/// share: the page-leak reports and underflow warnings each mode must give.
public struct DebugScenario: Sendable {
    /// The scenario's name.
    public let name: DebugScenarioName
    /// (page-leak reports, underflow warnings) under linux, fast and
    /// window-aware, in that order.
    public let expected: [IOMMUDebugMode: Expectation]

    /// What a mode must give.
    public struct Expectation: Sendable, Equatable, CustomStringConvertible {
        /// Page-leak reports.
        public var leaks: Int
        /// Counts refused at zero (warned).
        public var underflows: Int
        /// An expectation of `leaks` reports and `underflows` warnings.
        public init(leaks: Int, underflows: Int) {
            self.leaks = leaks
            self.underflows = underflows
        }
        /// "2 leaks, 1 underflow" or "silent".
        public var description: String {
            if leaks == 0 && underflows == 0 { return "silent" }
            var parts: [String] = []
            if leaks > 0 { parts.append("\(leaks) leak\(leaks == 1 ? "" : "s")") }
            if underflows > 0 { parts.append("\(underflows) underflow\(underflows == 1 ? "" : "s")") }
            return parts.joined(separator: ", ")
        }
    }

    /// The modes with the sanitizer on.
    public static let modes: [IOMMUDebugMode] = [.linux, .fast, .windowAware]

    private static func same(_ leaks: Int, _ underflows: Int = 0) -> [IOMMUDebugMode: Expectation] {
        Dictionary(uniqueKeysWithValues: modes.map { ($0, Expectation(leaks: leaks, underflows: underflows)) })
    }

    /// Every scenario. Linux's sanitizer and SVAKit's agree except where
    /// SVAKit is exact (a race of two unmaps, an unmap cutting a larger
    /// leaf) and in the lazy window, which only the window-aware mode sees.
    public static let all: [DebugScenario] = {
        var double = same(0), cut = same(0), window = same(0)
        double[.linux] = Expectation(leaks: 0, underflows: 1)
        // Linux warns for each page of the freed block still counted: 511.
        cut[.linux] = Expectation(leaks: 511, underflows: 0)
        window[.windowAware] = Expectation(leaks: 1, underflows: 0)
        return [
            DebugScenario(name: .freeWhileMapped, expected: same(1)),
            DebugScenario(name: .mapAfterFree, expected: same(1)),
            DebugScenario(name: .doubleUnmap, expected: double),
            DebugScenario(name: .sgSmallUnmapLarge, expected: same(0)),
            DebugScenario(name: .partialUnmap, expected: same(0)),
            DebugScenario(name: .unmapSmallerThanLeaf, expected: cut),
            DebugScenario(name: .mmioPeerToPeer, expected: same(0)),
            DebugScenario(name: .lazyFreeInWindow, expected: window),
        ]
    }()

    /// A machine for the scenarios: manual work, the sanitizer in `mode`.
    public static func machineConfig(_ mode: IOMMUDebugMode, base: MachineConfig = MachineConfig()) -> MachineConfig {
        var cfg = base
        cfg.workMode = .manual
        cfg.iommuDebugPagealloc = mode
        // Room for every report: a freed 2 MiB block can leak 511 pages.
        cfg.reportLogCapacity = max(cfg.reportLogCapacity, 1024)
        return cfg
    }

    /// Runs it on `m`, a fresh machine built from ``machineConfig(_:base:)``.
    public func run(on m: Machine) throws(SVAError) -> DebugScenarioOutcome {
        try runDebugScenario(name, on: m)
    }
}

/// Runs a sanitizer scenario on `m`: one IOMMU, a strict DMA domain for the
/// IOMMU API scenarios and a device whose default domain is lazy for the
/// window. Every frame used ends freed (or parked) and every mapping gone.
public func runDebugScenario(_ name: DebugScenarioName, on m: Machine) throws(SVAError) -> DebugScenarioOutcome {
    let iommu = try m.addIOMMU()
    let d = try m.createDomain(iommu: iommu.id, type: .dma)
    let before = try m.iommuDebugStats(), reportsBefore = m.reportCount
    var used: [PFN] = []
    let x: UInt64 = 0x4000_0000, page: UInt64 = 4096
    switch name {
    case .freeWhileMapped:
        let p = try m.allocFrames(owner: 0xd1)
        try m.iommuMap(d, iova: x, phys: p.physicalAddress, size: page)
        try m.freeFrames(p)                                  // reported here
        try m.iommuUnmap(d, iova: x, size: page)
        used = [p]
    case .mapAfterFree:
        // The driver's earlier mapping built the tables the late map reuses
        // (so it allocates none, which would take the freed frame).
        let other = try m.allocFrames(owner: 0xd1)
        try m.iommuMap(d, iova: x + page, phys: other.physicalAddress, size: page)
        let p = try m.allocFrames(owner: 0xd1)
        try m.freeFrames(p)                                  // checked: nothing mapped
        try m.iommuMap(d, iova: x, phys: p.physicalAddress, size: page)
        let again = try m.allocFrames(owner: 0x0e)           // LIFO: the same frame, reported
        precondition(again == p, "LIFO reuse")
        try m.iommuUnmap(d, iova: x, size: 2 * page)
        try m.freeFrames(again)
        try m.freeFrames(other)
        used = [p, other]
    case .doubleUnmap:
        let p = try m.allocFrames(owner: 0xd1)
        try m.iommuMap(d, iova: x, phys: p.physicalAddress, size: page)
        if m.config.iommuDebugPagealloc == .linux {
            // The second unmap runs between the first's unmap_begin and its walk.
            m.afterNextUnmapBegin { _ = try? m.iommuUnmap(d, iova: x, size: page) }
            do throws(SVAError) { try m.iommuUnmap(d, iova: x, size: page) } catch where error == .notFound {}
        } else {
            try m.iommuUnmap(d, iova: x, size: page)
            do throws(SVAError) { try m.iommuUnmap(d, iova: x, size: page) } catch where error == .notFound {}
        }
        try m.freeFrames(p)
        used = [p]
    case .sgSmallUnmapLarge:
        let dev = try m.addDevice(iommu: iommu.id, sva: false, untrusted: true)  // strict default domain
        _ = try m.setupDMA(for: dev)
        let pages = try (0..<3).map { _ throws(SVAError) in try m.allocFrames(owner: 0xd1) }
        let sg = try m.dmaMapSG(device: dev, pages.map { ($0.physicalAddress + 512, page - 1024) },
                                direction: .toDevice)
        try m.dmaUnmapSG(device: dev, sg)
        for p in pages { try m.freeFrames(p) }
        used = pages
    case .partialUnmap:
        let block = try m.allocFrames(order: 2, owner: 0xd1)
        let fifth = try m.allocFrames(owner: 0xd2)
        try m.iommuMap(d, iova: x, phys: block.physicalAddress, size: 4 * page)
        try m.iommuMap(d, iova: x + 5 * page, phys: fifth.physicalAddress, size: page)
        let unmapped = try m.iommuUnmap(d, iova: x, size: 8 * page)
        precondition(unmapped == 4 * page, "an unmap goes on past a hole")
        try m.freeFrames(block)                              // no longer mapped: silent
        let kept = try m.iommuDebugMapCount(fifth)
        precondition(kept == 1, "the page past the hole lost its count")
        try m.iommuUnmap(d, iova: x + 5 * page, size: page)
        try m.freeFrames(fifth)
        used = [block, block + 1, block + 2, block + 3, fifth]
    case .unmapSmallerThanLeaf:
        let block = try m.allocFrames(order: 9, owner: 0xd1)
        try m.iommuMap(d, iova: x, phys: block.physicalAddress, size: 512 * page)
        let unmapped = try m.iommuUnmap(d, iova: x, size: page)
        precondition(unmapped == 512 * page, "io-pgtable unmaps the whole leaf")
        try m.freeFrames(block)                              // linux: 511 frames still counted
        used = (0..<512).map { block + $0 }
    case .mmioPeerToPeer:
        let bar = Machine.mmioWindow.lowerBound
        try m.iommuMap(d, iova: x, phys: bar, size: 16 * page)
        try m.iommuUnmap(d, iova: x, size: 16 * page)
    case .lazyFreeInWindow:
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        _ = try m.setupDMA(for: dev)                        // DMA-FQ: lazy
        let p = try m.allocFrames(owner: 0xd1)
        let a = try m.dmaMapPage(device: dev, phys: p.physicalAddress, size: page, direction: .toDevice)
        try m.dmaUnmapPage(device: dev, address: a, size: page, direction: .toDevice)
        try m.freeFrames(p)                                  // window-aware: reported here
        m.flushDMAQueues()
        used = [p]
    }
    let after = try m.iommuDebugStats()
    var stray = 0
    for p in used where try m.iommuDebugMapCount(p) != 0 { stray += 1 }
    return DebugScenarioOutcome(
        name: name, mode: m.config.iommuDebugPagealloc,
        leaks: m.reports(from: reportsBefore).filter(\.isPageLeak), stats: after.delta(from: before),
        audit: m.audit(), strayCounts: stray)
}

extension IOMMUDebugStats {
    /// What was counted since `before`.
    func delta(from before: IOMMUDebugStats) -> IOMMUDebugStats {
        IOMMUDebugStats(raised: raised - before.raised, lowered: lowered - before.lowered,
                        reraised: reraised - before.reraised, skipped: skipped - before.skipped,
                        overflows: overflows - before.overflows, underflows: underflows - before.underflows,
                        unmappedMore: unmappedMore - before.unmappedMore, leaks: leaks - before.leaks)
    }
}
