// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// A DMA use-after-free found by the walk oracle: a walk read or wrote a
/// frame that was not what the cache entry (or live entry) that led there
/// believed it was. The C ABI's `struct svakit_uaf_report` carries the same
/// fields.
public struct UAFReport: Sendable {
    /// The event clock when the walk was reported.
    public var step: UInt64
    /// The address the device used.
    public var va: UInt64
    /// The device, its PASID and its IOMMU.
    public var device: DeviceID, pasid: PASID, iommu: IOMMUID
    /// The frame the walk should not have reached.
    public var frame: PFN
    /// The cache level whose entry led to the frame (1 = an IOTLB entry,
    /// 2 = PDE, 3 = PDPTE ...); 0 = a live entry.
    public var staleLevel: Int
    /// The table level the walk believed the frame was; 0 for a data page
    /// (a stale IOTLB entry led to a frame freed since it was filled).
    public var expectedLevel: Int
    /// The generation the cache believed, nil when only kind and level were.
    public var expectedGeneration: UInt32?
    /// What the frame is now: its kind, level (for a table) and generation.
    public var foundKind: FrameKind, foundLevel: Int, foundGeneration: UInt32
    /// When and by which path the frame was last freed, if the log holds it.
    public var freedStep: UInt64?, freedBy: Site
    /// When, by which path and for which owner it was allocated again.
    public var reallocStep: UInt64?, reallocSite: Site, reallocOwner: UInt16
    /// The walk translated through the stale frame to this physical address.
    public var escalationPhysicalAddress: UInt64?
    /// The walker wrote A/D bits into this frame.
    public var corruptedFrame: PFN?
    /// The machine had run a lazy (DMA-FQ) domain when the report was made:
    /// isolation was weakened (the taint ``Machine/dmaTainted`` shows).
    public var tainted = false
    /// The kernel-style text of the report.
    public var text: String = ""

    /// What the report is about: a walk (the fields above) or a page leak
    /// the IOMMU_DEBUG_PAGEALLOC sanitizer found (`frame`, `found*`,
    /// `freedBy` (the path that freed or allocated it) and the fields below).
    public var kind = ReportKind.walk
    /// For a page leak: the frame's mapping count when checked.
    public var mapCount: Int32 = 0
    /// For a page leak, the page owner: the path, owner tag and event step
    /// (low 32 bits) of the frame's allocation.
    public var allocSite = Site.none, allocOwner: UInt16 = 0, allocStep: UInt32 = 0
    /// For a page leak: a domain that maps the frame now, at `leakIOVA`.
    public var leakDomain: DomainID? = nil
    /// For a page leak in window-aware mode: the domain of an unmap (at
    /// `leakIOVA`) whose flush has not finished and still counts the frame.
    public var pendingDomain: DomainID? = nil
    /// For a page leak: where the frame is mapped (or the pending unmap was).
    public var leakIOVA: UInt64? = nil
    /// The machine's step (low 32 bits) when the frame last became mapped,
    /// or when the pending unmap was queued.
    public var mappedStep: UInt64? = nil

    /// Whether the sanitizer made this report.
    public var isPageLeak: Bool { kind != .walk }

    /// Whether the walk translated through the stale frame.
    public var escalation: Bool { escalationPhysicalAddress != nil }
    /// Whether the walker wrote A/D bits into it, or, for a data page, the
    /// device wrote into it.
    public var corruption: Bool { corruptedFrame != nil }
    /// Whether the report is about a data page reached through a stale IOTLB
    /// entry (the lazy-invalidation window) rather than a freed page table.
    public var isDataPage: Bool { kind == .walk && expectedLevel == 0 }
}

/// What a report is about (enum svakit_report_kind).
public enum ReportKind: UInt32, Sendable, CustomStringConvertible {
    /// The walk oracle: a walk reached a freed frame.
    case walk = 0
    /// The sanitizer: a frame was freed while a mapping counted it.
    case leakAtFree = 1
    /// The sanitizer: a frame was allocated while a mapping counted it.
    case leakAtAlloc = 2
    /// The sanitizer: an explicit check found the frame counted.
    case leakAtCheck = 3

    init(_ when: LeakCheck) {
        switch when {
        case .atFree: self = .leakAtFree
        case .atAlloc: self = .leakAtAlloc
        case .atCheck: self = .leakAtCheck
        }
    }

    /// "walk", "leak at free", "leak at alloc" or "leak at check".
    public var description: String {
        switch self {
        case .walk: "walk"
        case .leakAtFree: "leak at free"
        case .leakAtAlloc: "leak at alloc"
        case .leakAtCheck: "leak at check"
        }
    }
}

/// The bounded log of reports (ring of the newest `capacity`).
struct ReportLog {
    let capacity: Int
    private(set) var ring: [UAFReport] = []
    /// Reports ever made; report i lives at ring[i % capacity] while
    /// i >= total - capacity.
    private(set) var total: UInt64 = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func append(_ r: UAFReport) {
        if ring.count < capacity { ring.append(r) } else { ring[Int(total % UInt64(capacity))] = r }
        total += 1
    }

    func report(_ index: UInt64) -> UAFReport? {
        guard index < total, index + UInt64(capacity) >= total else { return nil }
        return ring[Int(index % UInt64(capacity))]
    }

    var oldest: UInt64 { total > UInt64(capacity) ? total - UInt64(capacity) : 0 }
}

/// Receives each use-after-free report when the DMA call that found it
/// returns, with no lock held; set with ``Machine/setReportHandler(_:)``.
public typealias ReportHandler = @Sendable (UAFReport) -> Void

/// The report channel: the bounded log and the handler.
final class ReportSink: Sendable {
    /// Protects the bounded log of reports.
    private let log: RankedMutex<ReportLog>
    /// Protects the handler; copied out and called with no lock held.
    private let handler = RankedMutex<HookBox<ReportHandler>?>(.hook, nil)

    init(capacity: Int) { log = RankedMutex(.reports, ReportLog(capacity: capacity)) }

    func setHandler(_ h: ReportHandler?) { handler.locked { $0 = h.map { HookBox($0) } } }

    /// Back to boot (Machine.reset): no report, no handler.
    func resetToBoot() {
        log.locked { $0 = ReportLog(capacity: $0.capacity) }
        setHandler(nil)
    }

    func deliver(_ reports: [UAFReport]) {
        log.locked { l in for r in reports { l.append(r) } }
        if let h = handler.locked({ $0 })?.fn {
            LockRank.assertNoneHeld("a report handler")
            for r in reports { h(r) }
        }
    }

    var total: UInt64 { log.locked { $0.total } }

    func list(from first: UInt64, limit: Int) -> [UAFReport] {
        log.locked { log in
            let start = max(first, log.oldest)
            guard start < log.total else { return [] }
            return (start..<log.total).prefix(limit).compactMap { log.report($0) }
        }
    }

    func report(_ index: UInt64) -> UAFReport? { log.locked { $0.report(index) } }
}

extension Machine {
    /// Turns a walk finding into a report, with the frame's history from the
    /// event log: when and by which path it was freed, who has it now.
    func report(_ f: WalkFinding, device: UInt32, pasid: UInt32, iommu: UInt32, va: UInt64) -> UAFReport {
        var freed: Event? = nil, realloc: Event? = nil
        events.forEach(since: 0) { e in
            guard e.pfn == f.frame else { return true }
            if e.type == .frameFree { freed = e; realloc = nil }
            if e.type == .frameAlloc, freed != nil { realloc = e }
            return true
        }
        let now = frames.descriptor(f.frame)
        var r = UAFReport(
            step: events.nextStep, va: va, device: DeviceID(device), pasid: PASID(pasid), iommu: IOMMUID(iommu),
            frame: f.frame, staleLevel: f.staleLevel, expectedLevel: f.expectedLevel,
            expectedGeneration: f.expectedGeneration,
            foundKind: FrameKind(rawValue: f.foundKind) ?? .free, foundLevel: Int(f.foundLevel),
            foundGeneration: f.foundGeneration,
            freedStep: freed?.step, freedBy: freed?.site ?? .none,
            reallocStep: realloc?.step, reallocSite: realloc?.site ?? .none,
            reallocOwner: realloc != nil ? now.owner : 0,
            escalationPhysicalAddress: f.escalation ? f.escalationPhys : nil,
            corruptedFrame: f.corruption ? f.corruptedFrame : nil)
        r.tainted = domains.tainted.load(ordering: .acquiring)
        r.text = r.kernelText
        return r
    }
}

extension UAFReport {
    static func cacheName(_ level: Int) -> String {
        switch level {
        case 1: "IOTLB entry"
        case 2: "PDE cache"
        case 3: "PDPTE cache"
        case 4: "PML4E cache"
        case 5: "PML5E cache"
        default: "live entry"
        }
    }

    /// The report as the kernel would print it.
    var kernelText: String { isPageLeak ? leakText : walkText }

    /// The sanitizer's report: Linux's WARN and "Detected page leak!", then
    /// what page_owner and the IOMMU know about the frame.
    private var leakText: String {
        let f = hex(UInt64(frame.rawValue))
        let what = switch kind {
        case .leakAtFree: "freed by \(freedBy)"
        case .leakAtAlloc: "allocated by \(freedBy)"
        default: "checked"
        }
        var s = "WARNING: SVAKit: iommu_debug_check_unmapped: pfn \(f) \(what) while mapped for DMA "
        s += "(map count \(mapCount)) at step \(step)\n"
        s += "iommu: Detected page leak!\n"
        s += "page_owner: pfn \(f) \(foundKind) allocated by \(allocSite) (owner \(hex(UInt64(allocOwner)))) "
        s += "at step \(allocStep)\n"
        let since = mappedStep.map { " since step \($0)" } ?? ""
        if let leakDomain, let leakIOVA {
            s += "mapped by domain \(leakDomain.rawValue) at iova \(hex(leakIOVA))\(since)\n"
        } else if let pendingDomain, let leakIOVA {
            s += "unmapped from domain \(pendingDomain.rawValue) at iova \(hex(leakIOVA))"
            s += mappedStep.map { " at step \($0), " } ?? ", "
            s += "but the flush that covers it has not finished: a device may still reach it (lazy window)\n"
        } else {
            s += "no domain maps it now: a mapping was leaked or already torn down\n"
        }
        if tainted { s += "Tainted: lazy DMA invalidation (DMA-FQ) ran: isolation was weakened\n" }
        return s
    }

    private var walkText: String {
        let expectedGen = expectedGeneration.map { " gen \($0)" } ?? ""
        var s = isDataPage ? "BUG: SVAKit: DMA use-after-free through a stale IOTLB entry\n"
            : "BUG: SVAKit: DMA use-after-free in IOMMU page walk\n"
        s += "device \(device.rawValue) (iommu \(iommu.rawValue)) pasid \(hex(UInt64(pasid.rawValue))) va \(hex(va)) at step \(step)\n"
        let expected = isDataPage ? "data page" : "L\(expectedLevel) page table"
        s += "\(Self.cacheName(staleLevel)) led to pfn \(hex(UInt64(frame.rawValue))): expected \(expected)\(expectedGen), "
        s += "found \(foundKind)\(foundKind.isTable ? " L\(foundLevel)" : "") gen \(foundGeneration)\n"
        if let freedStep {
            s += "pfn \(hex(UInt64(frame.rawValue))) freed by \(freedBy) at step \(freedStep)"
            if let reallocStep {
                s += ", allocated again by \(reallocSite) (owner \(hex(UInt64(reallocOwner)))) at step \(reallocStep)"
            }
            s += "\n"
        }
        if let escalationPhysicalAddress {
            s += isDataPage ? "the device accessed phys \(hex(escalationPhysicalAddress)) after its mapping was removed\n"
                : "the walk translated through it to phys \(hex(escalationPhysicalAddress)): attacker-chosen frame reached\n"
        }
        if tainted { s += "Tainted: lazy DMA invalidation (DMA-FQ) ran: isolation was weakened\n" }
        if let corruptedFrame {
            s += isDataPage ? "the device wrote into pfn \(hex(UInt64(corruptedFrame.rawValue))) (corruption)\n"
                : "the IOMMU wrote A/D bits into pfn \(hex(UInt64(corruptedFrame.rawValue))) (corruption)\n"
        }
        return s
    }
}
