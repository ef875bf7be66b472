// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

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
    package var writable: Bool { self != .toDevice }

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
package struct DMAMapping {
    package let device: UInt32
    /// The physical address and the size the caller mapped.
    package let phys: UInt64
    package let size: UInt64
    package let direction: DMADirection
    /// The IOVA range in granules.
    package let iovaPfn: UInt64
    package let pages: UInt64
    /// A scatter-gather list: the frames behind the range are not
    /// physically contiguous (read them from the tables).
    package var scattered = false
    /// Bounced through swiotlb: `phys` is the bounce buffer's address, and
    /// the unmap gives its slots back (docs/KERNEL-MODEL.md §4.3b).
    package var bounced = false
}

/// A translated domain's DMA state (struct iommu_dma_cookie): its IOVA
/// allocator, its flush queue (active in DMA-FQ mode), and the live
/// mappings, sharded by IOVA so that threads mapping different buffers do
/// not contend on one lock.
package final class DMACookie: @unchecked Sendable {
    // @unchecked: immutable references, atomics and locks.
    package let domain: IOMMUDomain
    package let iovad: IOVADomain
    package let fq: FlushQueue
    /// cookie->fq_domain: the flush queue is in use (DMA-FQ).
    package let fqActive: Atomic<Bool>
    package let cpus: Int
    private static let shardCount = 64
    private let shards: [LockBox<[UInt64: DMAMapping]>]

    /// The first IOVA page handed out: IOVA 0 is never used (an IOVA of 0
    /// looks like a failed mapping to many drivers; Linux starts at 1 too).
    package static let basePfn: UInt64 = 1

    /// `releaseTables` is the machine's part of releasing a flushed entry:
    /// its freed tables back to the allocator (iommu_put_pages_list), and,
    /// beyond Linux, the window-aware sanitizer's counts and the frees the
    /// quarantine parked behind it. The cookie then gives the IOVA back to
    /// the releasing CPU's rcache itself, in fq_ring_free_locked's order, so
    /// an entry released while the domain is torn down needs no lookup.
    package init(domain: IOMMUDomain, cpus: Int, hz: Int, singleQueue: Bool, clock: @escaping @Sendable () -> UInt64,
         releaseTables: @escaping (FQEntry) -> Void) {
        self.domain = domain
        self.cpus = cpus
        let shift = UInt64(domain.granule.trailingZeroBitCount)
        let iovad = IOVADomain(granule: domain.granule, startPfn: Self.basePfn,
                               endPfn: (IOMMUDomain.apertureEnd >> shift) - 1, cpuCount: cpus, clock: clock)
        self.iovad = iovad
        fqActive = Atomic(domain.type == .dmaFQ)
        let d = domain
        fq = FlushQueue(single: singleQueue, cpus: cpus, hz: hz, now: clock, flushAll: {
            d.iommu.invalidateTag(d.tag)
            d.iommu.fence()
        }, release: { e, cpu in
            releaseTables(e)
            iovad.freeFast(pfn: e.iovaPfn, pages: e.pages, cpu: cpu)
        })
        shards = (0..<Self.shardCount).map { _ in LockBox(.dmaMappings, [:]) }
    }

    private func shard(_ iovaPfn: UInt64) -> LockBox<[UInt64: DMAMapping]> {
        shards[Int(truncatingIfNeeded: iovaPfn &* 0x9E37_79B9_7F4A_7C15 >> 58) & (Self.shardCount - 1)]
    }

    package func record(_ m: DMAMapping) { shard(m.iovaPfn).locked { $0[m.iovaPfn] = m } }

    /// Claims the mapping at `iovaPfn` if it matches what the unmap says,
    /// as dma-debug's check_unmap: unknown -> notFound; another device, size
    /// or direction -> invalidArgument (and the mapping stays).
    package func claim(iovaPfn: UInt64, device: UInt32, phys offset: UInt64, size: UInt64,
               direction: DMADirection, remove: Bool = true) throws(SVAError) -> DMAMapping {
        try shard(iovaPfn).locked { s throws(SVAError) in
            guard let m = s[iovaPfn] else { throw .notFound }
            guard m.device == device, m.size == size, m.direction == direction,
                  m.phys & (domain.granule - 1) == offset else { throw .invalidArgument }
            if remove { s[iovaPfn] = nil }
            return m
        }
    }

    /// The live mapping recorded at `iovaPfn`, if any (dma-debug's lookup).
    package func entry(iovaPfn: UInt64) -> DMAMapping? { shard(iovaPfn).locked { $0[iovaPfn] } }

    /// Every live mapping (for the audit).
    package var mappings: [DMAMapping] { shards.flatMap { s in s.locked { Array($0.values) } } }
}
