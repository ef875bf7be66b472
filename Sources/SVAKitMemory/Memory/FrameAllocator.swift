// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// The frame allocator: one free list per order (0 ... maxOrder), linked
/// through the ptdesc's own allocator link (`lru_next`/`lru_prev`), never
/// through the deferred-free link.
///
/// Memory nobody has touched yet lies above `virginCursor` and is handed out
/// as naturally aligned `maxOrder` blocks on demand, so boot costs nothing per
/// frame. A request is served from its own order's list first (the reuse the
/// adversary counts on), then by splitting the smallest larger free block,
/// then from virgin memory. Freed blocks go back to their order's list
/// unmerged: unlike the buddy allocator there is no coalescing, so a large
/// request can fail with `.outOfMemory` when only small blocks are free. That
/// is a simplification that does not touch the behaviour the model is about.
///
/// Invariant: below `virginCursor`, every free frame belongs to exactly one
/// block on one list, and walking a range from an aligned start by block
/// sizes lands on block heads (used by hot-remove).
///
/// Not thread-safe by itself: FrameMemory's allocator lock protects it.
@usableFromInline
package struct FrameAllocator: Sendable {
    package let policy: ReusePolicy
    private var rng: SplitMix64
    private var heads = [PFN](repeating: .none, count: maxOrder + 1)
    private var tails = [PFN](repeating: .none, count: maxOrder + 1)
    package private(set) var listCounts = [Int](repeating: 0, count: maxOrder + 1)
    package private(set) var virginCursor = 0
    private var skippedOffline = 0
    package let frameCount: Int

    package init(frames: Int, policy: ReusePolicy) {
        self.policy = policy
        frameCount = frames
        if case .random(let seed) = policy { rng = SplitMix64(seed: seed) } else { rng = SplitMix64(seed: 0) }
    }

    // MARK: - Lists

    /// The first block on the order's list (for audits).
    package func headOf(_ order: Int) -> PFN { heads[order] }

    private mutating func push(_ pfn: PFN, order: Int, _ mem: UnsafeMutablePointer<Ptdesc>) {
        mem[pfn].order = UInt8(order)
        let toTail = policy == .fifo
        if toTail {
            mem[pfn].lru_next = PFN.none.rawValue
            mem[pfn].lru_prev = tails[order].rawValue
            if tails[order] != .none { mem[tails[order]].lru_next = pfn.rawValue } else { heads[order] = pfn }
            tails[order] = pfn
        } else {
            mem[pfn].lru_prev = PFN.none.rawValue
            mem[pfn].lru_next = heads[order].rawValue
            if heads[order] != .none { mem[heads[order]].lru_prev = pfn.rawValue } else { tails[order] = pfn }
            heads[order] = pfn
        }
        listCounts[order] += 1
    }

    /// Takes `pfn` off its order's list.
    package mutating func unlink(_ pfn: PFN, order: Int, _ mem: UnsafeMutablePointer<Ptdesc>) {
        let next = PFN(mem[pfn].lru_next), prev = PFN(mem[pfn].lru_prev)
        if prev != .none { mem[prev].lru_next = next.rawValue } else { heads[order] = next }
        if next != .none { mem[next].lru_prev = prev.rawValue } else { tails[order] = prev }
        mem[pfn].lru_next = PFN.none.rawValue
        mem[pfn].lru_prev = PFN.none.rawValue
        listCounts[order] -= 1
    }

    private mutating func pop(order: Int, _ mem: UnsafeMutablePointer<Ptdesc>) -> PFN {
        var pick = heads[order]
        if case .random = policy {
            // Uniform over the list: O(list length), meant for fuzzing runs.
            var k = rng.next(below: listCounts[order])
            while k > 0 { pick = PFN(mem[pick].lru_next); k -= 1 }
        }
        unlink(pick, order: order, mem)
        return pick
    }

    // MARK: - Allocation

    /// Takes a free block of 2^order frames and returns its head. The
    /// descriptors are left for the caller to fill.
    package mutating func take(order: Int, _ mem: UnsafeMutablePointer<Ptdesc>) throws(SVAError) -> PFN {
        if listCounts[order] > 0 { return pop(order: order, mem) }
        var from = order + 1
        while from <= maxOrder && listCounts[from] == 0 { from += 1 }
        if from > maxOrder {
            guard let block = takeVirgin(mem) else { throw .outOfMemory }
            push(block, order: maxOrder, mem)
            from = maxOrder
        }
        let block = pop(order: from, mem)
        // Split: keep the lowest piece, give back the upper halves.
        var o = from
        while o > order {
            o -= 1
            push(block + (1 << o), order: o, mem)
        }
        return block
    }

    /// The next maxOrder block of never-used memory, skipping offline sections
    /// (offline ranges are section-aligned, hence block-aligned). Skipped
    /// offline frames are no longer above the cursor: they are added to
    /// `skippedOffline` for the caller's count of offline virgin frames.
    private mutating func takeVirgin(_ mem: UnsafeMutablePointer<Ptdesc>) -> PFN? {
        let n = 1 << maxOrder
        while virginCursor + n <= frameCount {
            let pfn = PFN(virginCursor)
            virginCursor += n
            if mem[pfn].frameKind != .offline { return pfn }
            skippedOffline += n
        }
        return nil
    }

    /// Offline frames the cursor has passed since the last call (see
    /// takeVirgin); resets the count.
    package mutating func takeSkippedOffline() -> Int {
        defer { skippedOffline = 0 }
        return skippedOffline
    }

    /// Returns a block whose descriptors the caller has marked free.
    package mutating func give(_ pfn: PFN, order: Int, _ mem: UnsafeMutablePointer<Ptdesc>) {
        push(pfn, order: order, mem)
    }

    /// Whether `pfn` has never been handed out (it lies in virgin memory).
    package func isVirgin(_ pfn: PFN) -> Bool { pfn.index >= virginCursor }

    /// Free frames on the lists plus virgin memory not offline.
    package func freeFrames(offlineAboveCursor: Int) -> Int {
        var n = 0
        for o in 0...maxOrder { n += listCounts[o] << o }
        return n + (frameCount - virginCursor) - offlineAboveCursor
    }
}
