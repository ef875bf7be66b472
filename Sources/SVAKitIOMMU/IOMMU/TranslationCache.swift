// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// One line of a translation cache: a tag (PASID and a key derived from the
/// address) and two payload words whose meaning belongs to the cache's user.
package struct CacheLine {
    package var valid = false
    package var pasid: UInt32 = 0
    package var stamp: UInt32 = 0
    package var key: UInt64 = 0
    package var a: UInt64 = 0
    package var b: UInt64 = 0
}

/// A set-associative cache with LRU, FIFO or random replacement, as IOMMU
/// IOTLBs and paging-structure caches are built. Storage is one flat buffer
/// owned here (`~Copyable`); lookups scan one set, invalidations every line.
///
/// Not thread-safe by itself: the owning IOMMU's lock protects it.
package struct TranslationCache: ~Copyable {
    package let sets: Int
    package let ways: Int
    /// sets is a power of two: the set index is a mask, not a division.
    private let setMask: UInt64
    package let replacement: CacheReplacement
    private let lines: UnsafeMutablePointer<CacheLine>
    private var clock: UInt32 = 0
    private var rng: SplitMix64

    package init(sets: Int, ways: Int, replacement: CacheReplacement, seed: UInt64) {
        precondition(sets > 0 && sets & (sets - 1) == 0, "sets must be a power of two")
        self.sets = sets
        self.ways = ways
        setMask = UInt64(sets - 1)
        self.replacement = replacement
        rng = SplitMix64(seed: seed)
        lines = .allocate(capacity: sets * ways)
        lines.initialize(repeating: CacheLine(), count: sets * ways)
    }

    deinit { lines.deallocate() }

    package var capacity: Int { sets * ways }

    private func setBase(pasid: UInt32, key: UInt64) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(pasid) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        return Int(h & setMask) * ways
    }

    /// The payload cached for (pasid, key), refreshing its LRU age.
    package mutating func lookup(pasid: UInt32, key: UInt64) -> (a: UInt64, b: UInt64)? {
        let base = setBase(pasid: pasid, key: key)
        for i in base..<base + ways where lines[i].valid && lines[i].key == key && lines[i].pasid == pasid {
            if replacement == .lru { clock &+= 1; lines[i].stamp = clock }
            return (lines[i].a, lines[i].b)
        }
        return nil
    }

    /// Inserts or replaces the line for (pasid, key). Returns whether a valid
    /// line of another tag was evicted.
    @discardableResult
    package mutating func insert(pasid: UInt32, key: UInt64, a: UInt64, b: UInt64) -> Bool {
        let base = setBase(pasid: pasid, key: key)
        var victim = base
        var evicting = true
        for i in base..<base + ways {
            if lines[i].valid && lines[i].key == key && lines[i].pasid == pasid { victim = i; evicting = false; break }
            if !lines[i].valid { victim = i; evicting = false; break }
            if lines[i].stamp < lines[victim].stamp { victim = i }
        }
        if evicting && replacement == .random { victim = base + rng.next(below: ways) }
        clock &+= 1
        lines[victim] = CacheLine(valid: true, pasid: pasid, stamp: clock, key: key, a: a, b: b)
        return evicting
    }

    /// Drops every line that `match` selects; returns how many.
    package mutating func invalidate(where match: (CacheLine) -> Bool) -> Int {
        var n = 0
        for i in 0..<capacity where lines[i].valid && match(lines[i]) {
            lines[i].valid = false
            n += 1
        }
        return n
    }

    /// Number of valid lines (for tests and counters).
    package var occupancy: Int {
        var n = 0
        for i in 0..<capacity where lines[i].valid { n += 1 }
        return n
    }
}
