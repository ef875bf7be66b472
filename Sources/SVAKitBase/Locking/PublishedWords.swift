// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// A table of 64-bit words that writers change under their owner's lock and
/// readers scan with no lock at all: the RCU-style publication the
/// kernel-address invalidation's read side needs, so it can run where the
/// caller may not sleep and never waits for bind or unbind.
///
/// - Writers (serialised by the owner's lock) store words with release
///   ordering; readers load the table pointer, then the count, then each word
///   with acquire ordering.
/// - Growth copies the words into a table twice the size and publishes it
///   with a release store. The old table is retired, not freed: a reader that
///   loaded it may still be scanning. Retired tables live until the owner
///   dies; geometric growth bounds them by the final size.
/// - A reader racing a writer sees each word either before or after the
///   change, never torn. Seeing a just-cleared slot costs an extra
///   invalidation; missing a just-set slot is harmless for the gate because
///   a bond published after the reader's load cannot have let a walk cache a
///   table the caller had already unlinked (see SVARegistry.invalidateKernelRange).
@_spi(Engine) public final class PublishedWords: @unchecked Sendable {
    // @unchecked: `retired` and `freeSlots` are touched only under the
    // owner's lock; everything readers see is atomic.

    /// Word 0 holds the capacity; words 1...capacity are the slots.
    @usableFromInline let table: Atomic<UnsafeMutablePointer<Atomic<UInt64>>>
    /// Slots in use are below this index.
    @usableFromInline let highWater = Atomic<Int>(0)
    private var retired: [UnsafeMutablePointer<Atomic<UInt64>>] = []
    private var freeSlots: [Int] = []

    package init(capacity: Int = 64) {
        table = Atomic(Self.allocate(capacity: capacity))
    }

    deinit {
        for t in retired + [table.load(ordering: .relaxed)] {
            let n = Int(t[0].load(ordering: .relaxed)) + 1
            t.deinitialize(count: n)
            t.deallocate()
        }
    }

    private static func allocate(capacity: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        let p = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: capacity + 1)
        for i in 0...capacity { (p + i).initialize(to: Atomic(0)) }
        p[0].store(UInt64(capacity), ordering: .relaxed)
        return p
    }

    // MARK: - Writers (owner's lock held)

    /// Stores a nonzero word in a free slot and returns the slot.
    package func insert(_ word: UInt64) -> Int {
        precondition(word != 0, "0 marks an empty slot")
        let slot: Int
        if let s = freeSlots.popLast() {
            slot = s
        } else {
            slot = highWater.load(ordering: .relaxed)
            var t = table.load(ordering: .relaxed)
            let cap = Int(t[0].load(ordering: .relaxed))
            if slot == cap {
                let bigger = Self.allocate(capacity: cap * 2)
                for i in 1...cap { bigger[i].store(t[i].load(ordering: .relaxed), ordering: .relaxed) }
                table.store(bigger, ordering: .releasing)
                retired.append(t)
                t = bigger
            }
        }
        table.load(ordering: .relaxed)[slot + 1].store(word, ordering: .releasing)
        if slot == highWater.load(ordering: .relaxed) { highWater.store(slot + 1, ordering: .releasing) }
        return slot
    }

    /// Replaces the word in a slot in use.
    package func store(_ word: UInt64, at slot: Int) {
        precondition(word != 0, "0 marks an empty slot")
        table.load(ordering: .relaxed)[slot + 1].store(word, ordering: .releasing)
    }

    package func remove(slot: Int) {
        table.load(ordering: .relaxed)[slot + 1].store(0, ordering: .releasing)
        freeSlots.append(slot)
    }

    /// Empties every slot, as a new table is (a machine's reset; no reader
    /// runs). The capacity stays.
    package func removeAll() {
        let t = table.load(ordering: .relaxed)
        for i in 0..<highWater.load(ordering: .relaxed) { t[i + 1].store(0, ordering: .relaxed) }
        highWater.store(0, ordering: .releasing)
        freeSlots = []
    }

    // MARK: - Readers (no lock)

    /// Calls `body` with every nonzero word.
    // Inlinable: the gate's slow path and the DMA paths read it from the
    // layers above, and a call across modules per word would cost them.
    /// Calls `body` with every nonzero word (no lock).
    @inlinable @inline(__always)
    @_spi(Engine) public func forEach(_ body: (UInt64) -> Void) {
        let t = table.load(ordering: .acquiring)
        let n = min(highWater.load(ordering: .acquiring), Int(t[0].load(ordering: .relaxed)))
        var i = 1
        while i <= n {
            let w = t[i].load(ordering: .acquiring)
            if w != 0 { body(w) }
            i += 1
        }
    }

    /// The word in a slot, 0 when the slot is empty or past the end.
    @inlinable @inline(__always)
    @_spi(Engine) public func word(at slot: Int) -> UInt64 {
        let t = table.load(ordering: .acquiring)
        guard slot >= 0, slot < min(highWater.load(ordering: .acquiring), Int(t[0].load(ordering: .relaxed))) else {
            return 0
        }
        return t[slot + 1].load(ordering: .acquiring)
    }

    /// Slots ever used (the scan length).
    @inlinable @_spi(Engine) public var count: Int { highWater.load(ordering: .acquiring) }
}
