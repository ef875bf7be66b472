// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// The direction of a DMA mapping (enum dma_data_direction); the raw values
/// are Linux's and the C ABI's.
public enum DMADirection: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// DMA_BIDIRECTIONAL: the device reads and writes.
    case bidirectional = 0
    /// DMA_TO_DEVICE: the device reads the buffer (IOMMU_READ).
    case toDevice = 1
    /// DMA_FROM_DEVICE: the device writes the buffer (IOMMU_WRITE).
    case fromDevice = 2

    /// Whether the IOMMU entry lets the device write.
    var writable: Bool { self != .toDevice }

    /// "bidirectional", "to-device" or "from-device".
    public var description: String {
        switch self {
        case .bidirectional: "bidirectional"
        case .toDevice: "to-device"
        case .fromDevice: "from-device"
        }
    }
}

/// A live DMA mapping, as dma-debug records one: what dma_unmap must match.
struct DMAMapping {
    let device: UInt32
    /// The physical address and the size the caller mapped.
    let phys: UInt64
    let size: UInt64
    let direction: DMADirection
    /// The IOVA range in granules.
    let iovaPfn: UInt64
    let pages: UInt64
    /// A scatter-gather list: the frames behind the range are not
    /// physically contiguous (read them from the tables).
    var scattered = false
    /// Bounced through swiotlb: `phys` is the bounce buffer's address, and
    /// the unmap gives its slots back (docs/KERNEL-MODEL.md §4.3b).
    var bounced = false
}

/// A translated domain's DMA state (struct iommu_dma_cookie): its IOVA
/// allocator, its flush queue (active in DMA-FQ mode), and the live
/// mappings, sharded by IOVA so that threads mapping different buffers do
/// not contend on one lock.
final class DMACookie: @unchecked Sendable {
    // @unchecked: immutable references, atomics and locks.
    let domain: IOMMUDomain
    let iovad: IOVADomain
    let fq: FlushQueue
    /// cookie->fq_domain: the flush queue is in use (DMA-FQ).
    let fqActive: Atomic<Bool>
    let cpus: Int
    private static let shardCount = 64
    private let shards: [LockBox<[UInt64: DMAMapping]>]

    /// The first IOVA page handed out: IOVA 0 is never used (an IOVA of 0
    /// looks like a failed mapping to many drivers; Linux starts at 1 too).
    static let basePfn: UInt64 = 1

    init(domain: IOMMUDomain, cpus: Int, hz: Int, singleQueue: Bool, clock: @escaping @Sendable () -> UInt64,
         release: @escaping (FQEntry, Int) -> Void) {
        self.domain = domain
        self.cpus = cpus
        let shift = UInt64(domain.granule.trailingZeroBitCount)
        iovad = IOVADomain(granule: domain.granule, startPfn: Self.basePfn,
                           endPfn: (IOMMUDomain.apertureEnd >> shift) - 1, cpuCount: cpus, clock: clock)
        fqActive = Atomic(domain.type == .dmaFQ)
        let d = domain
        fq = FlushQueue(single: singleQueue, cpus: cpus, hz: hz, now: clock, flushAll: {
            d.iommu.invalidateTag(d.tag)
            d.iommu.fence()
        }, release: release)
        shards = (0..<Self.shardCount).map { _ in LockBox(.dmaMappings, [:]) }
    }

    private func shard(_ iovaPfn: UInt64) -> LockBox<[UInt64: DMAMapping]> {
        shards[Int(truncatingIfNeeded: iovaPfn &* 0x9E37_79B9_7F4A_7C15 >> 58) & (Self.shardCount - 1)]
    }

    func record(_ m: DMAMapping) { shard(m.iovaPfn).locked { $0[m.iovaPfn] = m } }

    /// Claims the mapping at `iovaPfn` if it matches what the unmap says,
    /// as dma-debug's check_unmap: unknown -> notFound; another device, size
    /// or direction -> invalidArgument (and the mapping stays).
    func claim(iovaPfn: UInt64, device: UInt32, phys offset: UInt64, size: UInt64,
               direction: DMADirection, remove: Bool = true) throws(SVAError) -> DMAMapping {
        try shard(iovaPfn).locked { s throws(SVAError) in
            guard let m = s[iovaPfn] else { throw .notFound }
            guard m.device == device, m.size == size, m.direction == direction,
                  m.phys & (domain.granule - 1) == offset else { throw .invalidArgument }
            if remove { s[iovaPfn] = nil }
            return m
        }
    }

    /// Every live mapping (for the audit).
    var mappings: [DMAMapping] { shards.flatMap { s in s.locked { Array($0.values) } } }
}

/// Frames a lazy unmap covered whose flush has not finished (beyond Linux,
/// the fix docs/KERNEL-MODEL.md §4.4 describes): a caller's free of such a
/// frame is parked until the flush that covers the last of its unmaps is
/// over, as the flush queue holds back IOVAs. Machine-wide, because one
/// frame may be mapped through several domains.
struct Quarantine {
    /// Lazy unmaps of a frame not yet covered by a finished flush.
    private(set) var pending: [PFN: Int] = [:]
    /// Blocks whose free was asked for while one of their frames was
    /// pending: head -> (frames in the block, frames of it still pending).
    private(set) var parked: [PFN: (frames: Int, waiting: Int)] = [:]
    /// The parked block each frame of a parked block belongs to, so a
    /// release touches only the blocks of the frames it releases: O(1) each.
    private var blockOf: [PFN: PFN] = [:]
    /// Blocks parked over the machine's life, and the most frames at once.
    private(set) var parkedTotal = 0, peakParkedFrames = 0
    private var parkedFrames = 0

    mutating func noteUnmap(_ frames: [PFN]) {
        for f in frames {
            let n = pending[f, default: 0]
            pending[f] = n + 1
            // A frame of a parked block pending again (mapped and unmapped
            // after its free was asked for) waits for this flush as well.
            if n == 0, let head = blockOf[f] { parked[head]!.waiting += 1 }
        }
    }

    /// A free of the block at `head` of `n` frames: parked (true) when a
    /// flush is still owed for one of its frames; nil when it is parked
    /// already (a double free).
    mutating func park(_ head: PFN, frames n: Int) -> Bool? {
        if parked[head] != nil { return nil }
        let waiting = (0..<n).reduce(0) { c, i in pending[head + i] != nil ? c + 1 : c }
        guard waiting > 0 else { return false }
        parked[head] = (n, waiting)
        for i in 0..<n { blockOf[head + i] = head }
        parkedTotal += 1
        parkedFrames += n
        peakParkedFrames = max(peakParkedFrames, parkedFrames)
        return true
    }

    /// A flush covered these unmaps; returns the parked blocks now free to go.
    mutating func release(_ frames: [PFN]) -> [PFN] {
        var out: [PFN] = []
        for f in frames {
            guard let n = pending[f] else { continue }
            if n > 1 { pending[f] = n - 1; continue }
            pending[f] = nil
            guard let head = blockOf[f] else { continue }
            parked[head]!.waiting -= 1
            guard let b = parked[head], b.waiting == 0 else { continue }
            parked[head] = nil
            for i in 0..<b.frames { blockOf[head + i] = nil }
            parkedFrames -= b.frames
            out.append(head)
        }
        return out
    }

    /// Frames parked now.
    var heldFrames: Int { parkedFrames }
}
