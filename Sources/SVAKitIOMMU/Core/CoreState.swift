// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// A device behind an IOMMU (struct device with its iommu_group, as
/// drivers/iommu/iommu.c keeps it).
package struct DeviceRecord {
    package let iommu: Int
    /// The device can take SVA binds (IOMMU_DEV_FEAT_SVA).
    package let sva: Bool
    /// An untrusted device (an external port's: dev->untrusted): always
    /// strict, whatever the machine's DMA policy.
    package var untrusted = false
    /// PASIDs the device can emit: 1 ..< pasidLimit.
    package let pasidLimit: Int
    /// What is attached at each PASID of the device (group->pasid_array).
    package var attachments: [UInt32: PASIDAttachment] = [:]
    /// The DMA domain its requests without PASID go through, if any.
    package var defaultDomain: UInt32? = nil
}

/// What a PASID of a device is attached to. The core keeps it as
/// group->pasid_array keeps the domain: it knows the domain's kind and mm
/// (include/linux/iommu.h's IOMMU_DOMAIN_SVA carries domain->mm), not the
/// bookkeeping of whoever attached it.
package enum PASIDAttachment: Equatable {
    /// An SVA domain: the bond's handle and its mm.
    case sva(handle: UInt32, mm: UInt32)
    /// A non-SVA attachment of an mm's tables the caller placed at a PASID
    /// it chose.
    case explicit(mm: UInt32)

    package var mm: UInt32 {
        switch self {
        case .sva(_, let mm), .explicit(let mm): mm
        }
    }
}

/// Everything `IOMMUCore.devices` protects.
package struct CoreState {
    /// The IOMMUs by id; keeps them alive for the machine's life.
    package var iommus: [IOMMU] = []
    package var devices: [DeviceRecord] = []
    /// DMA domains being freed: no device may attach to them any more.
    package var dyingDomains: Set<UInt32> = []

    package func device(_ id: UInt32) throws(SVAError) -> DeviceRecord {
        guard Int(id) < devices.count else { throw .noDevice }
        return devices[Int(id)]
    }
}

/// A device as the lock-free DMA paths see it, packed in one published word:
/// bits 0-31 the IOMMU index + 1 (never 0), 32-39 the PASID width, bit 40
/// untrusted, bits 41-63 the default DMA domain + 1 (0: none).
@frozen @_spi(Engine) public struct DeviceWord {
    @usableFromInline package let raw: UInt64

    /// The word as published.
    @inlinable @_spi(Engine) public init(raw: UInt64) { self.raw = raw }

    package init(iommu: Int, pasidBits: Int, untrusted: Bool, defaultDomain: UInt32?) {
        precondition(iommu < 1 << 31 && (defaultDomain ?? 0) < 1 << 22)
        raw = UInt64(iommu + 1) | UInt64(pasidBits) << 32 | (untrusted ? 1 << 40 : 0)
            | UInt64(defaultDomain.map { $0 + 1 } ?? 0) << 41
    }

    /// The device's IOMMU index.
    @inlinable @_spi(Engine) public var iommu: Int { Int(raw & 0xffff_ffff) - 1 }
    /// How many PASID bits the device emits.
    @inlinable @_spi(Engine) public var pasidBits: Int { Int((raw >> 32) & 0xff) }
    /// Whether the device is untrusted (dev->untrusted).
    @inlinable @_spi(Engine) public var untrusted: Bool { raw & 1 << 40 != 0 }
    /// The device's default DMA domain, if any.
    @inlinable @_spi(Engine) public var defaultDomain: UInt32? {
        let d = raw >> 41
        return d == 0 ? nil : UInt32(d - 1)
    }
}
