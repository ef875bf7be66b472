// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// Every way an SVAKit call can refuse its input. Each case is one kind of bad
/// input and maps to one negative errno in the C ABI (see the table at the top
/// of include/svakit.h). A call that throws leaves the machine as it was.
public enum SVAError: Error, Equatable, Sendable, CaseIterable {
    /// A NULL handle or output pointer (C ABI only).
    case nullPointer
    /// A handle that is not a live SVAKit machine (C ABI only).
    case badHandle
    /// A frame number past the end of memory or a non-canonical address.
    case outOfRange
    /// Misaligned address or size, bad flag, level, order or half.
    case invalidArgument
    /// A live mapping or table is already there.
    case exists
    /// Nothing is mapped or allocated there.
    case notFound
    /// The frame was allocated once and is free now.
    case doubleFree
    /// The frame is not the head of an allocated block.
    case notAllocated
    /// The frame has to be freed through another API.
    case wrongAPI
    /// The object is in use (linked table, table with live leaves, range with
    /// allocated frames).
    case busy
    /// No address space has that id.
    case noSuchMM
    /// The simulated physical memory is exhausted.
    case outOfMemory
    /// The vmalloc area or the PASID space is exhausted.
    case noSpace
    /// No IOMMU or device has that id.
    case noDevice
    /// The device cannot do SVA.
    case notSupported
    /// The mm's PASID does not fit the device's PASID width.
    case overflow
    /// The SVA handle is unknown or already released.
    case staleHandle

    /// The negative errno the C ABI returns for this error.
    public var errno: Int32 {
        switch self {
        case .nullPointer: -EFAULT
        case .badHandle: -EBADF
        case .outOfRange: -ERANGE
        case .invalidArgument: -EINVAL
        case .exists: -EEXIST
        case .notFound: -ENOENT
        case .doubleFree: -EALREADY
        case .notAllocated: -ENXIO
        case .wrongAPI: -EPERM
        case .busy: -EBUSY
        case .noSuchMM: -ESRCH
        case .outOfMemory: -ENOMEM
        case .noSpace: -ENOSPC
        case .noDevice: -ENODEV
        case .notSupported: -EOPNOTSUPP
        case .overflow: -EOVERFLOW
        case .staleHandle: -ESTALE
        }
    }

    /// The error a negative errno stands for, if SVAKit returns it.
    public init?(errno: Int32) {
        for e in SVAError.allCases where e.errno == errno {
            self = e
            return
        }
        return nil
    }

    /// A short, static description (what svakit_strerror returns).
    public var message: StaticString {
        switch self {
        case .nullPointer: "NULL handle or pointer"
        case .badHandle: "not a live SVAKit machine"
        case .outOfRange: "frame or address out of range"
        case .invalidArgument: "invalid argument (alignment, flag, level, order or half)"
        case .exists: "a mapping or table is already there"
        case .notFound: "nothing mapped or allocated there"
        case .doubleFree: "double free: the frame is already free"
        case .notAllocated: "not the head of an allocated block"
        case .wrongAPI: "frame must be freed through another API"
        case .busy: "in use"
        case .noSuchMM: "no such address space"
        case .outOfMemory: "simulated physical memory exhausted"
        case .noSpace: "vmalloc area or PASID space exhausted"
        case .noDevice: "no such IOMMU or device"
        case .notSupported: "device does not support SVA"
        case .overflow: "PASID wider than the device supports"
        case .staleHandle: "unknown or released SVA handle"
        }
    }
}

extension SVAError: CustomStringConvertible {
    /// The message and the C ABI errno, e.g. `in use (-16)`.
    public var description: String { "\(message) (\(errno))" }
}
