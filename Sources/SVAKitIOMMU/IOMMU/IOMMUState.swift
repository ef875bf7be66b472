// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// Counters of one IOMMU.
public struct IOMMUCounters: Sendable, Equatable {
    /// Translation requests, IOTLB hits and PASID-entry faults included.
    public var walks = 0
    /// Requests the IOTLB answered without a walk.
    public var iotlbHits = 0
    /// Paging-structure cache hits: PDE, PDPTE, PML4E, PML5E. Plain fields,
    /// not an array: the walk bumps one on every hit.
    public var pdeHits = 0, pdpteHits = 0, pml4eHits = 0, pml5eHits = 0
    /// Walks that started from the PASID table's root.
    public var fullWalks = 0
    /// Requests that faulted (see ``DMAFaultReason``).
    public var faults = 0
    /// Range invalidation requests without the leaf-only hint (for
    /// ``IOMMUProfile/generic``, one command each).
    public var rangeInvalidations = 0
    /// Range invalidation requests with the leaf-only hint (paging-structure
    /// caches may be kept).
    public var leafRangeInvalidations = 0
    /// PASID-wide invalidation requests (`IOMMU.invalidatePASID`).
    public var pasidInvalidations = 0
    /// Global invalidations (``IOMMU/invalidateAll()``).
    public var globalInvalidations = 0
    /// IOTLB and paging-structure cache lines the invalidations dropped.
    public var entriesDropped = 0
    /// Fences (invalidation waits, ``IOMMU/fence()``).
    public var fences = 0
    /// Modelled device time of every command and sync this IOMMU received,
    /// in ns, as its ``IOMMUConfig/costs`` price them.
    public var modelledDeviceNs: UInt64 = 0
    /// Entries the walker set A (or A and D) in, when
    /// ``IOMMUConfig/setsAccessedDirty`` is on.
    public var accessedDirtyWrites = 0
    /// The hardware commands the IOMMU's ``IOMMUProfile`` turned the
    /// requests above into (zero for ``IOMMUProfile/generic``).
    public var commands = IOMMUCommandCounts()
    /// All counters zero.
    public init() {}

    /// Hits of the paging-structure cache that holds entries of `level`.
    public func pscHits(level: Int) -> Int {
        switch level {
        case 2: pdeHits
        case 3: pdpteHits
        case 4: pml4eHits
        case 5: pml5eHits
        default: 0
        }
    }

    package mutating func countPSCHit(level: Int) {
        switch level {
        case 2: pdeHits += 1
        case 3: pdpteHits += 1
        case 4: pml4eHits += 1
        default: pml5eHits += 1
        }
    }

    /// Invalidation requests of every kind (range, leaf-range, PASID, global).
    public var invalidations: Int {
        rangeInvalidations + leafRangeInvalidations + pasidInvalidations + globalInvalidations
    }
}

/// An attachment in the PASID table: the (device, PASID) pair walks the
/// tables rooted at `root` (the mm's PGD, as SVA programs it, or a DMA
/// domain's root at PASID 0, the requests without PASID).
package struct PasidEntry {
    package let root: PFN
    package let rootGeneration: UInt32
    package let mm: UInt32
    /// The tag of the cache lines its walks fill, which the invalidations
    /// name: the PASID for SVA and PASID attachments (devices bound to one
    /// mm share its lines, as they share its SVA domain), a DMA domain's
    /// tag (DomainTag) for a domain: VT-d tags lines with the domain id.
    package var tag: UInt32
    /// What the walk must find at each level: the mm's tables, or the DMA
    /// domain's IOMMU tables (`iommuTables`).
    package var iommuTables = false
    /// An identity (passthrough) domain: the address is the physical
    /// address, nothing is walked or cached.
    package var passthrough = false
    /// SRE: whether supervisor (privileged) requests are translated. SVA
    /// and user-table attachments leave it clear, so a privileged request
    /// through them faults before any walk (VT-d PASID-entry SRE, SMMUv3
    /// and AMD likewise grant SVA user access only).
    package var supervisorRequests = false

    package init(root: PFN, rootGeneration: UInt32, mm: UInt32, tag: UInt32, iommuTables: Bool = false,
                 passthrough: Bool = false, supervisorRequests: Bool = false) {
        self.root = root
        self.rootGeneration = rootGeneration
        self.mm = mm
        self.tag = tag
        self.iommuTables = iommuTables
        self.passthrough = passthrough
        self.supervisorRequests = supervisorRequests
    }
}


/// Everything one IOMMU's lock protects: its PASID table, its caches, its
/// counters, its driver and the walk epochs. Walks hold it only to look up
/// and to fill, never while they read memory.
/// `@unchecked Sendable`: reachable only through `IOMMU.hardware`, whose Mutex
/// makes sharing it safe.
package struct IOMMUState: ~Copyable, @unchecked Sendable {
    package let config: IOMMUConfig
    package var pasidTable = PASIDTable()
    package var iotlb: TranslationCache
    /// Paging-structure caches by the level of the entry they hold:
    /// pde (2), pdpte (3), pml4e (4), pml5e (5).
    package var pde: TranslationCache
    package var pdpte: TranslationCache
    package var pml4e: TranslationCache
    package var pml5e: TranslationCache
    package var counters = IOMMUCounters()
    package var driver: IOMMUDriver?
    /// Attachments per cache tag (translated PASID-table entries), kept
    /// only when ``IOMMUConfig/deviceTLBs`` is on: the device TLBs a
    /// request of that tag invalidates.
    package var tagDevices: [UInt32: Int] = [:]
    /// Walk epochs: a walk enters the current epoch when it leaves the lock
    /// to read memory and leaves it when it comes back to fill. A fence
    /// flips the epoch and waits until the old one is empty, so after it
    /// returns no walk that started before it is in flight.
    package var epoch = 0
    package var inflight = (0, 0)
    /// Bumped by every invalidation: a walk that started before one does
    /// not fill the caches with what it read (it may be stale).
    package var invalidationSeq: UInt64 = 0
    /// One bit per PASID that may have cached lines: set on every fill,
    /// cleared when a PASID-wide or global invalidation empties it. Lets a
    /// command for a PASID with nothing cached skip the scan, which keeps the
    /// fan-out over many bound mms at tens of ns each (a model shortcut with
    /// no effect on what is dropped).
    package let pasidBits: UnsafeMutablePointer<UInt64>
    package static let pasidWords = (1 << 20) / 64

    package init(config: IOMMUConfig) {
        self.config = config
        // 128 KiB of zeros the host backs only where a PASID's bit is set
        // (an IOMMU is made per device model, and per fuzzer input).
        let p = mmap(nil, Self.pasidWords * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        precondition(p != UnsafeMutableRawPointer(bitPattern: -1) && p != nil, "no host memory for an IOMMU")
        pasidBits = p!.bindMemory(to: UInt64.self, capacity: Self.pasidWords)
        iotlb = TranslationCache(sets: config.iotlbSets, ways: config.iotlbWays,
                                 replacement: config.replacement, seed: config.seed)
        pde = TranslationCache(sets: config.pscSets, ways: config.pscWays, replacement: config.replacement, seed: config.seed &+ 2)
        pdpte = TranslationCache(sets: config.pscSets, ways: config.pscWays, replacement: config.replacement, seed: config.seed &+ 3)
        pml4e = TranslationCache(sets: config.pscSets, ways: config.pscWays, replacement: config.replacement, seed: config.seed &+ 4)
        pml5e = TranslationCache(sets: config.pscSets, ways: config.pscWays, replacement: config.replacement, seed: config.seed &+ 5)
    }

    deinit { munmap(UnsafeMutableRawPointer(pasidBits), Self.pasidWords * 8) }

    package func mayHaveLines(_ pasid: UInt32) -> Bool {
        pasidBits[Int(pasid >> 6) & (Self.pasidWords - 1)] & (1 << UInt64(pasid & 63)) != 0
    }

    package func noteLines(_ pasid: UInt32) {
        pasidBits[Int(pasid >> 6) & (Self.pasidWords - 1)] |= 1 << UInt64(pasid & 63)
    }

    package func forgetLines(_ pasid: UInt32) {
        pasidBits[Int(pasid >> 6) & (Self.pasidWords - 1)] &= ~(1 << UInt64(pasid & 63))
    }

    package mutating func withPSC<R>(_ level: Int, _ body: (inout TranslationCache) -> R) -> R {
        switch level {
        case 2: body(&pde)
        case 3: body(&pdpte)
        case 4: body(&pml4e)
        default: body(&pml5e)
        }
    }

    /// The bits of va a paging-structure cache entry at `level` is tagged by.
    package static func pscKey(_ va: UInt64, level: Int) -> UInt64 { va >> UInt64(12 + 9 * (level - 1)) }

    /// The IOTLB tag of va for a leaf at `level` (the size is part of the tag).
    package static func iotlbKey(_ va: UInt64, level: Int) -> UInt64 {
        (va >> UInt64(12 + 9 * (level - 1))) << 2 | UInt64(level)
    }
}
