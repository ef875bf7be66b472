// SPDX-License-Identifier: Apache-2.0
import CSVAKit

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

    public var description: String {
        switch self {
        case .notPresent: "not present"
        case .privilege: "privilege (U/S)"
        case .write: "write to read-only"
        case .noPASID: "no PASID entry"
        case .badAddress: "bad physical address"
        }
    }
}

public struct DMAFault: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: DMAFaultReason
    /// The level of the entry that faulted (0 for a PASID fault).
    public let level: Int
    public let address: UInt64
    public var description: String { "\(reason) at level \(level), address \(hex(address))" }
}

/// How a device's request is made.
public struct DMAAccess: OptionSet, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let write = DMAAccess(rawValue: UInt32(SVAKIT_DMA_WRITE))
    /// A supervisor (privileged) request; SVA devices make user requests.
    public static let privileged = DMAAccess(rawValue: UInt32(SVAKIT_DMA_PRIV))
}

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
