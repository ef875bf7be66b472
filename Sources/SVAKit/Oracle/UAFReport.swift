// SPDX-License-Identifier: Apache-2.0
import CSVAKit

/// A DMA use-after-free found by the walk oracle: the structured record (the
/// C struct itself) and its kernel-style text.
public struct UAFReport: Sendable {
    public var record: svakit_uaf_report
    public var text: String

    public var frame: PFN { PFN(record.frame) }
    /// The cache level whose entry led to the frame (2 = PDE ...), 0 = live.
    public var staleLevel: Int { Int(record.stale_level) }
    public var escalation: Bool { record.escalation != 0 }
    public var corruption: Bool { record.corruption != 0 }
    public var freedBy: Site { Site(rawValue: record.freed_by) ?? .none }
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

public typealias ReportHandler = @Sendable (UAFReport) -> Void

/// The report channel: the bounded log and the handler.
final class ReportSink: Sendable {
    /// Protects the bounded log of reports.
    private let log: RankedMutex<ReportLog>
    /// Protects the handler; copied out and called with no lock held.
    private let handler = RankedMutex<HookBox<ReportHandler>?>(.hook, nil)

    init(capacity: Int) { log = RankedMutex(.reports, ReportLog(capacity: capacity)) }

    func setHandler(_ h: ReportHandler?) { handler.locked { $0 = h.map { HookBox($0) } } }

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
            guard e.pfn == f.frame.rawValue else { return true }
            if e.type == EventType.frameFree.rawValue { freed = e; realloc = nil }
            if e.type == EventType.frameAlloc.rawValue, freed != nil { realloc = e }
            return true
        }
        let now = frames.descriptor(f.frame)
        let r = svakit_uaf_report(
            step: events.nextStep, va: va, escalation_phys: f.escalation ? f.escalationPhys : 0,
            freed_step: freed?.step ?? .max, realloc_step: realloc?.step ?? .max,
            device: device, pasid: pasid, iommu: iommu, frame: f.frame.rawValue,
            expected_generation: f.expectedGeneration ?? .max, found_generation: f.foundGeneration,
            corrupted_frame: f.corruption ? f.corruptedFrame.rawValue : PFN.none.rawValue,
            freed_by: freed?.site ?? 0, realloc_site: realloc?.site ?? 0, realloc_owner: realloc != nil ? now.owner : 0,
            stale_level: UInt8(f.staleLevel), expected_level: UInt8(f.expectedLevel),
            found_kind: f.foundKind, found_level: f.foundLevel,
            escalation: f.escalation ? 1 : 0, corruption: f.corruption ? 1 : 0)
        return UAFReport(record: r, text: UAFReport.text(r))
    }
}

extension UAFReport {
    static func cacheName(_ level: Int) -> String {
        switch level {
        case 2: "PDE cache"
        case 3: "PDPTE cache"
        case 4: "PML4E cache"
        case 5: "PML5E cache"
        default: "live entry"
        }
    }

    static func text(_ r: svakit_uaf_report) -> String {
        let found = FrameKind(rawValue: r.found_kind) ?? .free
        let expectedGen = r.expected_generation == .max ? "" : " gen \(r.expected_generation)"
        var s = "BUG: SVAKit: DMA use-after-free in IOMMU page walk\n"
        s += "device \(r.device) (iommu \(r.iommu)) pasid \(hex(UInt64(r.pasid))) va \(hex(r.va)) at step \(r.step)\n"
        s += "\(cacheName(Int(r.stale_level))) led to pfn \(hex(UInt64(r.frame))): expected L\(r.expected_level) page table\(expectedGen), "
        s += "found \(found)\(found.isTable ? " L\(r.found_level)" : "") gen \(r.found_generation)\n"
        if r.freed_step != .max {
            s += "pfn \(hex(UInt64(r.frame))) freed by \(Site(rawValue: r.freed_by) ?? .none) at step \(r.freed_step)"
            if r.realloc_step != .max {
                s += ", allocated again by \(Site(rawValue: r.realloc_site) ?? .none) (owner \(hex(UInt64(r.realloc_owner)))) at step \(r.realloc_step)"
            }
            s += "\n"
        }
        if r.escalation != 0 { s += "the walk translated through it to phys \(hex(r.escalation_phys)): attacker-chosen frame reached\n" }
        if r.corruption != 0 { s += "the IOMMU wrote A/D bits into pfn \(hex(UInt64(r.corrupted_frame))) (corruption)\n" }
        return s
    }
}
