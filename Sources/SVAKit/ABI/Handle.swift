// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The glue every C entry point uses: NULL and foreign handles are refused
/// here, errors become negative errno. No logic lives in the ABI layer.
@inline(__always)
func withMachine(_ h: UnsafeMutablePointer<svakit_machine>?,
                 _ body: (Machine) throws(SVAError) -> Int32) -> Int32 {
    guard let h else { return SVAError.nullPointer.errno }
    guard let owner = MachineHandle.owner(h) else { return SVAError.badHandle.errno }
    // The handle holds the machine's reference; borrowing it here avoids a
    // retain/release pair per call.
    return Unmanaged<Machine>.fromOpaque(owner)._withUnsafeGuaranteedRef { m in
        do throws(SVAError) { return try body(m) } catch { return error.errno }
    }
}

/// Writes through a C output pointer, refusing NULL.
@inline(__always)
func store<T>(_ value: T, to p: UnsafeMutablePointer<T>?) throws(SVAError) {
    guard let p else { throw .nullPointer }
    p.pointee = value
}

@inline(__always)
func requireOut<T>(_ p: UnsafeMutablePointer<T>?) throws(SVAError) -> UnsafeMutablePointer<T> {
    guard let p else { throw .nullPointer }
    return p
}

/// A C function pointer and the context the caller registered with it,
/// carried into a Swift closure. `@unchecked Sendable`: the context is the
/// caller's, and SVAKit only passes it back.
struct CCallback<F>: @unchecked Sendable {
    let fn: F
    let ctx: UnsafeMutableRawPointer?
}

/// A frame number from C: past 32 bits it cannot name a frame.
@inline(__always)
func pfnArgument(_ v: UInt64) throws(SVAError) -> PFN {
    guard v <= UInt64(UInt32.max - 1) else { throw .outOfRange }
    return PFN(UInt32(v))
}

/// A C buffer (pointer and length) as a Swift buffer: NULL is -EFAULT.
@inline(__always)
func cBuffer(_ p: UnsafeMutableRawPointer?, _ len: Int) throws(SVAError) -> UnsafeMutableRawBufferPointer {
    guard let p else { throw .nullPointer }
    guard len >= 0 else { throw .invalidArgument }
    return UnsafeMutableRawBufferPointer(start: p, count: len)
}

@inline(__always)
func cBuffer(_ p: UnsafeRawPointer?, _ len: Int) throws(SVAError) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(try cBuffer(UnsafeMutableRawPointer(mutating: p), len))
}

/// A C text buffer of len bytes, the NUL included: NULL is -EFAULT, no room
/// for the NUL -EINVAL.
@inline(__always)
func cText(_ p: UnsafeMutablePointer<CChar>?, _ len: Int) throws(SVAError) -> UnsafeMutableBufferPointer<CChar> {
    guard let p else { throw .nullPointer }
    guard len > 0 else { throw .invalidArgument }
    return UnsafeMutableBufferPointer(start: p, count: len)
}

extension UnsafeMutableBufferPointer<CChar> {
    /// Writes s, truncated to leave room for the NUL, then the NUL.
    func store(_ s: String) {
        var n = 0
        for b in s.utf8.prefix(count - 1) {
            self[n] = CChar(bitPattern: b)
            n += 1
        }
        self[n] = 0
    }
}
