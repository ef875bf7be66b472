// SPDX-License-Identifier: Apache-2.0

/// A device behind an IOMMU.
struct DeviceRecord {
    let iommu: Int
    let sva: Bool
    /// An untrusted device (an external port's: dev->untrusted): always
    /// strict, whatever the machine's DMA policy.
    var untrusted = false
    /// PASIDs the device can emit: 1 ..< pasidLimit.
    let pasidLimit: Int
    /// What is attached at each PASID of the device.
    var attachments: [UInt32: Attachment] = [:]
    /// The DMA domain its requests without PASID go through, if any.
    var defaultDomain: UInt32? = nil
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
    /// Its (pasid, IOMMU) word in the table the gate reads.
    let word: UInt64
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
    var iommuCount: Int { iommus.count }
    var mmData: [UInt32: MMData] = [:]
    /// The IOMMUs by id; keeps them alive for the machine's life.
    var iommus: [IOMMU] = []
    /// Every published (pasid, IOMMU) word: its slot, and the SVA domains
    /// and explicit attachments that share it (one word per pair, so one
    /// kernel-range invalidation reaches each PASID of an IOMMU once).
    var words: [UInt64: (slot: Int, users: Int)] = [:]
    /// Published words of every kind; the key is on while this is non-zero.
    var published = 0
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

extension RegistryState {
    func device(_ id: UInt32) throws(SVAError) -> DeviceRecord {
        guard Int(id) < devices.count else { throw .noDevice }
        return devices[Int(id)]
    }

    /// An mm that a device is still attached to cannot be torn down.
    func checkDetached(_ mm: UInt32) throws(SVAError) {
        for d in devices where d.attachments.values.contains(where: { $0.mm == mm }) { throw .busy }
    }

    /// mm_pasid_drop: the PASID lives until the mm is torn down.
    mutating func dropPASID(of mm: UInt32) {
        if let data = mmData.removeValue(forKey: mm) { pasids.free(data.pasid) }
    }
}

/// A device as the lock-free DMA paths see it, packed in one published word:
/// bits 0-31 the IOMMU index + 1 (never 0), 32-39 the PASID width, bit 40
/// untrusted, bits 41-63 the default DMA domain + 1 (0: none).
struct DeviceWord {
    let raw: UInt64

    init(raw: UInt64) { self.raw = raw }

    init(iommu: Int, pasidBits: Int, untrusted: Bool, defaultDomain: UInt32?) {
        precondition(iommu < 1 << 31 && (defaultDomain ?? 0) < 1 << 22)
        raw = UInt64(iommu + 1) | UInt64(pasidBits) << 32 | (untrusted ? 1 << 40 : 0)
            | UInt64(defaultDomain.map { $0 + 1 } ?? 0) << 41
    }

    var iommu: Int { Int(raw & 0xffff_ffff) - 1 }
    var pasidBits: Int { Int((raw >> 32) & 0xff) }
    var untrusted: Bool { raw & 1 << 40 != 0 }
    var defaultDomain: UInt32? {
        let d = raw >> 41
        return d == 0 ? nil : UInt32(d - 1)
    }
}
