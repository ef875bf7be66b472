// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// A machine's counters (the C ABI's `struct svakit_stats`).
public struct MachineStats: Sendable, Equatable {
    /// Frames of simulated memory, online or not.
    public var frames: Int
    /// Frames on the allocator's free lists.
    public var freeFrames: Int
    /// Hot-removed frames.
    public var offlineFrames: Int
    /// Frames holding kernel (init_mm) page tables.
    public var kernelTables: Int
    /// Frames holding process page tables.
    public var userTables: Int
    /// Frames holding the IOMMU page tables of DMA domains.
    public var iommuTables: Int
    /// Frames allocated as data.
    public var dataFrames: Int
    /// Frame allocations and frees since boot.
    public var allocs: Int, frees: Int
    /// flush_tlb_kernel_range and flush_tlb_all calls.
    public var kernelTLBFlushes: Int
    /// Bytes of descriptor per frame: the ptdesc, and the sanitizer's page_ext
    /// entry when it is on.
    public var metadataBytesPerFrame: Int
    /// The event clock.
    public var step: UInt64
}

/// Read-only views of a machine: counters and the event log.
extension Machine {
    /// The machine's counters. Host memory is not among them because it
    /// walks the whole mapping: ``residentBytes`` computes it on demand.
    public var stats: MachineStats {
        let c = frames.counters
        return MachineStats(
            frames: frames.frameCount, freeFrames: frames.freeFrameCount, offlineFrames: c.offlineFrames,
            kernelTables: c.kernelTables, userTables: c.userTables, iommuTables: c.iommuTables,
            dataFrames: c.dataFrames,
            allocs: c.allocs, frees: c.frees, kernelTLBFlushes: tlbFlushes.load(ordering: .relaxed),
            metadataBytesPerFrame: MemoryLayout<Ptdesc>.stride + (frames.debug.mode == .off ? 0 : IOMMUDebugPagealloc.entryBytes),
            step: events.nextStep)
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

    private func collect(since: UInt64, limit: Int, where match: (Event) -> Bool) -> [Event] {
        var out: [Event] = []
        events.forEach(since: since) { e in
            guard out.count < limit else { return false }
            if match(e) { out.append(e) }
            return out.count < limit
        }
        return out
    }
}
