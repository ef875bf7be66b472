// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// The virtual address layout of x86-64 with 4- or 5-level paging
/// (Documentation/arch/x86/x86_64/mm.rst).
public struct AddressLayout: Sendable, Equatable {
    /// 4 or 5.
    public let levels: Int
    /// Start of the direct map of all physical memory (page_offset_base).
    public let directMapBase: UInt64
    /// The vmalloc/ioremap area, [vmallocStart, vmallocEnd).
    public let vmallocStart: UInt64
    /// The end (exclusive) of the vmalloc/ioremap area.
    public let vmallocEnd: UInt64

    /// The layout of `levels`-level paging (4, or 5 for the LA57 addresses).
    /// Any other value is a programming error and traps.
    public init(levels: Int) {
        precondition(levels == 4 || levels == 5, "x86-64 paging has 4 or 5 levels, not \(levels)")
        self.levels = levels
        if levels == 5 {
            directMapBase = 0xff11_0000_0000_0000
            vmallocStart = 0xffa0_0000_0000_0000
            vmallocEnd = 0xfffc_0000_0000_0000
        } else {
            directMapBase = 0xffff_8880_0000_0000
            vmallocStart = 0xffff_c900_0000_0000
            vmallocEnd = 0xffff_e900_0000_0000
        }
    }

    /// The level of the root table (PML4 or PML5).
    @inlinable public var rootLevel: Int { levels }
    /// Virtual address bits: 48 or 57.
    @inlinable public var vaBits: Int { 12 + 9 * levels }

    /// Whether `va` is canonical (bits above vaBits-1 copy bit vaBits-1).
    @inlinable public func isCanonical(_ va: UInt64) -> Bool {
        let shift = UInt64(64 - vaBits)
        return UInt64(bitPattern: Int64(bitPattern: va << shift) >> Int64(shift)) == va
    }

    /// Whether `va` lies in the kernel half, which every address space shares.
    @inlinable public func isKernel(_ va: UInt64) -> Bool { va >> 63 != 0 }

    /// The index of `va` in a table of `level`.
    @inlinable public static func index(_ va: UInt64, level: Int) -> Int {
        Int(truncatingIfNeeded: (va >> UInt64(12 + 9 * (level - 1))) & 511)
    }

    /// Bytes one entry of a table at `level` covers.
    @inlinable public static func span(level: Int) -> UInt64 { 1 << UInt64(12 + 9 * (level - 1)) }

    /// Root entries 256...511 map the kernel half.
    public static let kernelRootEntries = 256..<512
}
