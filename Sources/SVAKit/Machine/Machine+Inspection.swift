// SPDX-License-Identifier: Apache-2.0
import CSVAKit

public typealias MachineStats = svakit_stats

/// Read-only views of a machine: counters and the event log.
extension Machine {
    /// The machine's counters. `host_bytes_resident` is left 0 here because
    /// it walks the whole mapping; `residentBytes` computes it on demand (the
    /// C svakit_machine_stats fills it).
    public var stats: MachineStats {
        let c = frames.counters
        return MachineStats(
            frames: UInt64(frames.frameCount), frames_free: UInt64(frames.freeFrameCount),
            frames_offline: UInt64(c.offlineFrames),
            kernel_tables: UInt64(c.kernelTables), user_tables: UInt64(c.userTables),
            data_frames: UInt64(c.dataFrames), allocs: UInt64(c.allocs),
            frees: UInt64(c.frees), kernel_tlb_flushes: UInt64(tlbFlushes.load(ordering: .relaxed)),
            metadata_bytes_per_frame: UInt64(MemoryLayout<Ptdesc>.stride),
            host_bytes_resident: 0, step: events.nextStep)
    }

    /// Host bytes backing frame contents now (walks the mapping; not cheap).
    public var residentBytes: Int { frames.memory.residentBytes() }

    /// Events with step >= since, oldest first, at most `limit`.
    public func events(since: UInt64 = 0, limit: Int = .max) -> [Event] {
        collect(since: since, limit: limit) { _ in true }
    }

    /// The events about one frame, oldest first.
    public func history(of pfn: PFN, limit: Int = .max) -> [Event] {
        collect(since: 0, limit: limit) { $0.concerns(pfn) }
    }

    /// Copies matching events into `out`; returns how many.
    func copyEvents(since: UInt64, into out: UnsafeMutableBufferPointer<Event>,
                    where match: (Event) -> Bool) -> Int {
        do {
            var n = 0
            events.forEach(since: since) { e in
                guard n < out.count else { return false }
                if match(e) { out[n] = e; n += 1 }
                return true
            }
            return n
        }
    }

    private func collect(since: UInt64, limit: Int, where match: (Event) -> Bool) -> [Event] {
        do {
            var out: [Event] = []
            events.forEach(since: since) { e in
                if match(e) { out.append(e) }
                return out.count < limit
            }
            return out
        }
    }
}

extension svakit_event {
    /// Whether the event is about frame `pfn` (range events carry no frame).
    @inlinable public func concerns(_ pfn: PFN) -> Bool {
        self.pfn == pfn.rawValue && type != EventType.tlbFlush.rawValue
    }

    public var eventType: EventType? { EventType(rawValue: type) }
    public var eventSite: Site { Site(rawValue: site) ?? .none }
}
