// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// Which freed block the allocator hands out next (per machine).
public enum ReusePolicy: Sendable, Equatable {
    /// Most recently freed first, as the kernel's per-CPU page lists behave:
    /// a freed page-table page is the next page someone else gets. The
    /// adversary's case and the default for scenarios.
    case lifo
    /// Oldest freed first.
    case fifo
    /// Uniformly random among the free blocks of the order, from a seeded
    /// generator, so a failing run can be replayed.
    case random(seed: UInt64)

}

/// SplitMix64: small, fast and seedable; enough for reuse choices and tests.
@usableFromInline
package struct SplitMix64: Sendable {
    @usableFromInline package var state: UInt64
    /// A generator seeded with `seed`.
    @inlinable @_spi(Engine) public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    @inlinable @_spi(Engine) public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A value in 0 ..< n.
    @inlinable @_spi(Engine) public mutating func next(below n: Int) -> Int { Int(next() % UInt64(n)) }
}
