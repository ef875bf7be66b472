// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// Why a DMA translation faulted. A fault is a record, never a crash.
public enum DMAFaultReason: UInt32, Sendable, CustomStringConvertible {
    /// An entry on the way was not present.
    case notPresent = 1
    /// A user request met an entry without U/S (a kernel address).
    case privilege = 2
    /// A write met an entry without R/W.
    case write = 3
    /// The device has nothing attached at that PASID.
    case noPASID = 4
    /// An entry pointed past the end of physical memory.
    case badAddress = 5
    /// The address is in a half of the address space whose table walks are
    /// disabled: an SMMUv3 SVA context descriptor's TCR.EPD1 for an
    /// upper-half address (``IOMMUProfile/smmuv3``).
    case tableDisabled = 6

    /// A few words, e.g. "not present", "privilege (U/S)" or "no PASID entry".
    public var description: String {
        switch self {
        case .notPresent: "not present"
        case .privilege: "privilege (U/S)"
        case .write: "write to read-only"
        case .noPASID: "no PASID entry"
        case .badAddress: "bad physical address"
        case .tableDisabled: "walks disabled (EPD1)"
        }
    }
}

/// A DMA request the IOMMU refused: why, at which level, and at which
/// address. Returned (in a `Result` or as an optional), never thrown.
public struct DMAFault: Error, Equatable, Sendable, CustomStringConvertible {
    /// Why the request faulted.
    public let reason: DMAFaultReason
    /// The level of the entry that faulted; 0 for a fault at the PASID entry,
    /// or for a leaf that translated past the end of memory.
    public let level: Int
    /// The device virtual address whose translation faulted: the request's
    /// address, or where a multi-page request entered the faulting page.
    public let address: UInt64
    /// Reason, level and address, e.g.
    /// `not present at level 1, address 0x7f0000001000`.
    public var description: String { "\(reason) at level \(level), address \(hex(address))" }

    package init(reason: DMAFaultReason, level: Int, address: UInt64) {
        self.reason = reason
        self.level = level
        self.address = address
    }
}

/// How a device's request is made.
public struct DMAAccess: OptionSet, Sendable {
    /// The `SVAKIT_DMA_*` flag bits of the C ABI.
    public var rawValue: UInt32
    /// Access flags from their `SVAKIT_DMA_*` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// A write request (the DMA write calls add it themselves).
    public static let write = DMAAccess(rawValue: UInt32(SVAKIT_DMA_WRITE))
    /// A supervisor (privileged) request; SVA devices make user requests.
    public static let privileged = DMAAccess(rawValue: UInt32(SVAKIT_DMA_PRIV))
}
