// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// The PASID table of one IOMMU: (device, PASID) -> entry. Every walk that
/// misses the caches looks here, so it is an open-addressing table with a
/// multiplicative hash rather than a Dictionary (whose SipHash costs more
/// than the rest of a cached walk).
package struct PASIDTable {
    private var keys: [UInt64]
    private var values: [PasidEntry]
    private var used = 0
    private static let empty: UInt64 = 0
    private static let tombstone: UInt64 = 1

    package init() {
        keys = [UInt64](repeating: Self.empty, count: 16)
        values = [PasidEntry](repeating: PasidEntry(root: .none, rootGeneration: 0, mm: 0, tag: 0), count: 16)
    }

    /// Device and PASID packed; never 0 or 1 because PASID 0 is never used.
    @inline(__always) private static func key(_ device: UInt32, _ pasid: UInt32) -> UInt64 {
        UInt64(device) << 32 | UInt64(pasid) << 1 | 1 << 63
    }

    @inline(__always) private func slot(_ k: UInt64) -> Int {
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 40) & (keys.count - 1)
    }

    package subscript(device: UInt32, pasid: UInt32) -> PasidEntry? {
        get {
            let k = Self.key(device, pasid)
            var i = slot(k)
            while keys[i] != Self.empty {
                if keys[i] == k { return values[i] }
                i = (i + 1) & (keys.count - 1)
            }
            return nil
        }
        set {
            let k = Self.key(device, pasid)
            var i = slot(k)
            var firstFree: Int? = nil
            while keys[i] != Self.empty {
                if keys[i] == k { break }
                if keys[i] == Self.tombstone && firstFree == nil { firstFree = i }
                i = (i + 1) & (keys.count - 1)
            }
            let found = keys[i] == k
            if let newValue {
                if found { values[i] = newValue; return }
                let at = firstFree ?? i
                if keys[at] == Self.empty { used += 1 }
                keys[at] = k
                values[at] = newValue
                if used * 2 > keys.count { grow() }
            } else if found {
                keys[i] = Self.tombstone
            }
        }
    }

    private mutating func grow() {
        let old = zip(keys, values).filter { $0.0 > Self.tombstone }
        keys = [UInt64](repeating: Self.empty, count: keys.count * 2)
        values = [PasidEntry](repeating: values[0], count: keys.count)
        used = 0
        for (k, v) in old {
            var i = slot(k)
            while keys[i] != Self.empty { i = (i + 1) & (keys.count - 1) }
            keys[i] = k
            values[i] = v
            used += 1
        }
    }
}
