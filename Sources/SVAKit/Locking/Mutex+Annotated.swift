// SPDX-License-Identifier: Apache-2.0
import Synchronization

#if SVAKIT_TSAN
@_silgen_name("__tsan_acquire") private func tsanAcquire(_ addr: UnsafeMutableRawPointer)
@_silgen_name("__tsan_release") private func tsanRelease(_ addr: UnsafeMutableRawPointer)
#endif

extension Mutex where Value: ~Copyable {
    /// `withLock`, and under `-DSVAKIT_TSAN` a ThreadSanitizer acquire after
    /// taking the lock and a release before dropping it, on the Mutex's own
    /// address (taking the value's address would itself be an access). Synchronization's contended lock path lives in an
    /// uninstrumented library, so without them TSan reports false "Swift
    /// access races" on everything a Mutex protects (docs/BUILDING.md §7).
    @inline(__always)
    func locked<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        #if SVAKIT_TSAN
        let token = withUnsafePointer(to: self) { UnsafeMutableRawPointer(mutating: $0) }
        #endif
        return try withLock { (value: inout sending Value) throws(E) -> sending Result in
            #if SVAKIT_TSAN
            tsanAcquire(token)
            defer { tsanRelease(token) }
            #endif
            return try body(&value)
        }
    }
}
