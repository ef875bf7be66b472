// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The machine-wide PASID allocator (iommu_alloc_global_pasid): the lowest
/// free PASID in 1 ..< limit, where the limit is the smaller of the machine's
/// space and the device's. A bitmap, scanned a word at a time.
package struct PASIDAllocator {
    package let space: Int
    /// The bit map up to the highest word ever used; the words past its end
    /// are all zero (it grows on demand, so a new registry, made at boot
    /// and at every reset, costs one word, not the 128 KiB of 20 bits).
    private var words: [UInt64] = [1]  // PASID 0 is reserved (RID_PASID)
    package private(set) var inUse = 0

    package init(bits: Int) {
        space = 1 << bits
    }

    package mutating func allocate(below limit: Int) -> UInt32? {
        let end = min(limit, space)
        var w = 0
        while w * 64 < end {
            if w == words.count { words.append(0) }
            if words[w] != .max {
                let bit = (~words[w]).trailingZeroBitCount
                let p = w * 64 + bit
                guard p < end else { return nil }
                words[w] |= 1 << UInt64(bit)
                inUse += 1
                return UInt32(p)
            }
            w += 1
        }
        return nil
    }

    package mutating func free(_ p: UInt32) {
        let (w, b) = (Int(p) / 64, UInt64(p) % 64)
        precondition(words[w] & (1 << b) != 0, "PASID \(p) freed twice")
        words[w] &= ~(1 << b)
        inUse -= 1
    }
}
