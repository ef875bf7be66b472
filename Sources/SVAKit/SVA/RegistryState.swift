// SPDX-License-Identifier: Apache-2.0

/// A device behind an IOMMU.
struct DeviceRecord {
    let iommu: Int
    let sva: Bool
    /// PASIDs the device can emit: 1 ..< pasidLimit.
    let pasidLimit: Int
    /// What is attached at each PASID of the device.
    var attachments: [UInt32: Attachment] = [:]
}

enum Attachment: Equatable {
    /// An SVA bond (the handle) to an mm.
    case sva(handle: UInt32, mm: UInt32)
    /// A non-SVA attachment the caller placed at a PASID it chose.
    case explicit(mm: UInt32)

    var mm: UInt32 {
        switch self {
        case .sva(_, let mm), .explicit(let mm): mm
        }
    }
}

/// iommu_mm_data: one PASID for the mm's whole life, and its SVA domains.
struct MMData {
    let pasid: UInt32
    /// SVA domain per IOMMU index.
    var domains: [Int: SVADomain] = [:]
}

/// The SVA domain of one (mm, IOMMU): shared by every device behind that
/// IOMMU bound to the mm.
struct SVADomain {
    /// Device-PASID attachments (domain->users).
    var users: Int
    /// Its slot in the published (pasid, IOMMU) table the gate reads.
    let slot: Int
}

/// struct iommu_sva: one (device, mm) bond, refcounted.
struct Bond {
    let device: UInt32
    let mm: UInt32
    let pasid: UInt32
    var users: Int
}

/// Everything the SVA registry's lock protects.
struct RegistryState {
    var pasids: PASIDAllocator
    var devices: [DeviceRecord] = []
    var iommuCount = 0
    var mmData: [UInt32: MMData] = [:]
    var bonds: [UInt32: Bond] = [:]
    var nextHandle: UInt32 = 1
    /// Mms with at least one SVA domain (the length of iommu_sva_mms).
    var svaMMCount = 0
    /// Times the key went 0 -> 1 or 1 -> 0.
    var keyTransitions = 0

    init(pasidBits: Int) { pasids = PASIDAllocator(bits: pasidBits) }

    /// Encodes a published (pasid, IOMMU) word: never zero.
    static func domainWord(pasid: UInt32, iommu: Int) -> UInt64 {
        1 << 63 | UInt64(iommu) << 20 | UInt64(pasid)
    }

    static func decode(_ w: UInt64) -> (pasid: UInt32, iommu: Int) {
        (UInt32(w & 0xf_ffff), Int((w >> 20) & 0xffff_ffff))
    }
}
