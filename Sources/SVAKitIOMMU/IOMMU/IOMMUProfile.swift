// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// Which IOMMU an ``IOMMU`` models (docs/KERNEL-MODEL.md §3.6): how a
/// kernel-side invalidation request (a PASID, a range, the leaf-only hint)
/// becomes hardware commands, what those commands drop, what the walker may
/// walk, and which command ends a batch. Stored in the IOMMU and switched
/// on; no protocol dispatch on the walk or on an IOTLB hit.
public enum IOMMUProfile: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// The engine's generic IOMMU: one range command per request that drops
    /// exactly the range (paging-structure entries too unless leaf-only),
    /// priced per request, with the sync priced by ``IOMMU/fence()``.
    case generic = 0
    /// Intel VT-d, scalable mode, first-stage translation: PASID-based IOTLB
    /// invalidation descriptors, page-selective-within-PASID with the
    /// address mask the driver rounds to and the IH hint, PASID-selective
    /// for everything; batches of 16 descriptors, each ended by a wait
    /// descriptor.
    case vtd = 1
    /// Arm SMMUv3 with an SVA context descriptor: EPD1 set, so an upper-half
    /// (TTB1) address faults without any table read; CMD_TLBI_NH_VA per page
    /// with LEAF, CMD_TLBI_NH_ASID past 512 pages; CMD_SYNC.
    case smmuv3 = 2
    /// AMD IOMMU with v2 (GCR3) tables: INVALIDATE_IOMMU_PAGES always with
    /// PDE=1, a naturally aligned size-encoded range or the all-pages
    /// address; COMPLETION_WAIT.
    case amd = 3
    /// RISC-V IOMMU 1.0, first stage: IOTINVAL.VMA with ADDR drops only
    /// leaf entries of that address, without ADDR everything of the PSCID;
    /// IOFENCE.C.
    case riscv = 4

    /// The name the CLI takes: "generic", "vtd", "smmuv3", "amd", "riscv".
    public var description: String {
        switch self {
        case .generic: "generic"
        case .vtd: "vtd"
        case .smmuv3: "smmuv3"
        case .amd: "amd"
        case .riscv: "riscv"
        }
    }

    /// The profile named `name` (as `description` spells it), or nil.
    public init?(name: String) {
        guard let p = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = p
    }
}

/// The drivers' arithmetic, as pure functions the profiles and the tests
/// share (docs/KERNEL-MODEL.md §3.6 cites each).
public enum IOMMUProfileRules {
    /// VT-d QI_MAX_BATCHED_DESC_COUNT: descriptors per batch before the
    /// driver submits it with a wait descriptor.
    public static let vtdBatch = 16
    /// VT-d MAX_AGAW_PFN_WIDTH: the widest address mask (64 - 12).
    public static let vtdMaxMask = 52
    /// SMMUv3 CMDQ_MAX_TLBI_OPS with 4 KiB pages (1 << (PAGE_SHIFT - 3)):
    /// a request of this many pages or more becomes CMD_TLBI_NH_ASID.
    public static let smmuMaxTLBIOps = 512
    /// AMD CMD_INV_IOMMU_ALL_PAGES_ADDRESS.
    public static let amdAllPagesAddress: UInt64 = 0x7fff_ffff_ffff_ffff
    /// AMD CMD_INV_IOMMU_PAGES_SIZE_MASK: the S bit in the address.
    public static let amdSizeBit: UInt64 = 1
    /// Linux's RISCV_IOMMU_IOTLB_INVAL_LIMIT: ranges of 2 MiB or more are
    /// invalidated without an address.
    public static let riscvInvalLimit: UInt64 = 2 << 20

    /// intel/cache.c calculate_psi_aligned_address() for the inclusive range
    /// [start, end]: the naturally aligned base and the address mask (log2
    /// of the pages) of the page-selective-within-PASID descriptor.
    public static func vtdPSI(start: UInt64, end: UInt64) -> (address: UInt64, mask: Int) {
        // aligned_nrpages(start, end - start + 1): whole pages covering it.
        let firstPfn = start >> 12
        let pages = (end >> 12) &- firstPfn &+ 1
        // __roundup_pow_of_two(pages); pages == 2^52 or more is the whole
        // space (only start == 0, end == max on a 64-bit range).
        var mask = pages <= 1 ? 0 : 64 - (pages &- 1).leadingZeroBitCount
        let bitmask: UInt64 = mask >= 64 ? .max : (1 << UInt64(mask)) &- 1
        if bitmask & firstPfn != 0 {
            let endPfn = firstPfn &+ pages &- 1
            let shared = ~(firstPfn ^ endPfn) & ~bitmask
            mask = shared != 0 ? shared.trailingZeroBitCount : vtdMaxMask
        }
        let span = UInt64(12 + mask)
        let address = span >= 64 ? 0 : start & ~((1 << span) &- 1)
        return (address, mask)
    }

    /// The inclusive range a VT-d page-selective descriptor covers.
    public static func vtdRange(address: UInt64, mask: Int) -> (start: UInt64, end: UInt64) {
        let span = UInt64(12 + mask)
        return span >= 64 ? (0, .max) : (address, address | ((1 << span) &- 1))
    }

    /// amd/iommu.c build_inv_address() for the inclusive range [start, end]:
    /// one page's address (S clear), the size-encoded address with S set, or
    /// the all-pages address with S set.
    public static func amdInvAddress(start: UInt64, end: UInt64) -> UInt64 {
        if start >> 12 == end >> 12 { return start & ~0xfff }
        let msbDiff = 63 - (end ^ start).leadingZeroBitCount
        var address = start
        if msbDiff > 51 {
            address = amdAllPagesAddress
        } else {
            address |= (1 << UInt64(msbDiff)) &- 1
        }
        return address & ~0xfff | amdSizeBit
    }

    /// The inclusive range an INVALIDATE_IOMMU_PAGES address covers: S clear,
    /// one page; S set, the naturally aligned block whose size is set by the
    /// lowest clear address bit at or above bit 12 (2^(bit + 1) bytes).
    public static func amdRange(_ address: UInt64) -> (start: UInt64, end: UInt64) {
        guard address & amdSizeBit != 0 else { return (address & ~0xfff, address | 0xfff) }
        let x = (~(address >> 12)).trailingZeroBitCount + 12   // the lowest clear bit
        guard x < 63 else { return (0, .max) }
        let span = UInt64(x + 1)
        let start = address & ~((1 << span) &- 1)
        return (start, start | ((1 << span) &- 1))
    }
}
