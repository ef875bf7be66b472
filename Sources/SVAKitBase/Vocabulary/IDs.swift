// SPDX-License-Identifier: Apache-2.0

/// The ids a machine hands out. Each kind of object gets its own type so that
/// a device id cannot be passed where a PASID is expected: the C ABI passes
/// them all as `uint32_t`, and the Swift API is where that mistake is caught,
/// at compile time.
///
/// The raw value is the number the C ABI uses for the same object, so a value
/// can cross between the two APIs with `init(rawValue:)` and `rawValue`. An
/// integer literal converts (`pasid: 5`): a literal names its kind at the call
/// site, while a variable of one id type never converts to another.
public protocol MachineID: RawRepresentable, Hashable, Comparable, Sendable,
    CustomStringConvertible, ExpressibleByIntegerLiteral where RawValue == UInt32 {
    /// The id of the C ABI's number `rawValue`.
    init(rawValue: UInt32)
}

extension MachineID {
    /// The id of the C ABI's number `raw`.
    @inlinable public init(_ raw: UInt32) { self.init(rawValue: raw) }

    /// The id written as a literal at the call site, e.g. `pasid: 5`.
    @inlinable public init(integerLiteral value: UInt32) { self.init(rawValue: value) }

    /// Orders ids by their C ABI number.
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// An address space (an mm): ``MMID/initMM`` is init_mm, whose tables are the
/// kernel half every other mm shares.
public struct MMID: MachineID {
    /// The C ABI's mm id (`SVAKIT_INIT_MM` is 0).
    public let rawValue: UInt32
    /// The mm with C ABI id `rawValue`. Not checked here: a call given an id
    /// with no live mm throws ``SVAError/noSuchMM``.
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// init_mm (`SVAKIT_INIT_MM`).
    public static let initMM = MMID(rawValue: 0)

    /// "init_mm" for ``MMID/initMM``, otherwise `mm` and the number, e.g. `mm3`.
    public var description: String { self == .initMM ? "init_mm" : "mm\(rawValue)" }
}

/// An IOMMU of the machine.
public struct IOMMUID: MachineID {
    /// The C ABI's IOMMU id (as `svakit_iommu_create` returns it).
    public let rawValue: UInt32
    /// The IOMMU with C ABI id `rawValue`; a call given an unknown one throws
    /// ``SVAError/noDevice``.
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `iommu` and the number, e.g. `iommu0`.
    public var description: String { "iommu\(rawValue)" }
}

/// A device behind one IOMMU.
public struct DeviceID: MachineID {
    /// The C ABI's device id.
    public let rawValue: UInt32
    /// The device with C ABI id `rawValue`; a call given an unknown one throws
    /// ``SVAError/noDevice``.
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `dev` and the number, e.g. `dev0`.
    public var description: String { "dev\(rawValue)" }
}

/// A Process Address Space ID: the tag a device puts on a request to say
/// which address space it means. SVA gives each bound mm one PASID for its
/// whole life (docs/KERNEL-MODEL.md §1.4).
public struct PASID: MachineID {
    /// The PASID value the device puts on its requests (20 bits at most).
    public let rawValue: UInt32
    /// The PASID `rawValue`.
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `pasid` and the number, e.g. `pasid 1`.
    public var description: String { "pasid \(rawValue)" }
}

/// An SVA bond (`struct iommu_sva`): what `iommu_sva_bind_device` returns and
/// `iommu_sva_unbind_device` takes. Its raw value is the C ABI's handle.
public struct SVABond: Hashable, Sendable, CustomStringConvertible {
    /// The C ABI's handle of the bond.
    public let rawValue: UInt32
    /// The PASID of the bound mm (`iommu_sva_get_pasid`).
    public let pasid: PASID

    /// The bond with C handle `rawValue` whose mm holds `pasid`.
    public init(rawValue: UInt32, pasid: PASID) {
        self.rawValue = rawValue
        self.pasid = pasid
    }

    /// The handle and its PASID, e.g. `bond1 (pasid 1)`.
    public var description: String { "bond\(rawValue) (\(pasid))" }
}

/// A DMA domain (`struct iommu_domain` of type DMA, DMA-FQ or identity).
public struct DomainID: MachineID {
    /// The C ABI's number for the domain.
    public let rawValue: UInt32
    /// The domain the C ABI numbers `rawValue`.
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// "domainN".
    public var description: String { "domain\(rawValue)" }
}

extension PASID {
    /// IOMMU_NO_PASID: a request without PASID, which the device's default
    /// DMA domain translates.
    public static let noPASID = PASID(rawValue: 0)
}
