// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// Frames a lazy unmap covered whose flush has not finished (beyond Linux,
/// the fix docs/KERNEL-MODEL.md §4.4 describes): a caller's free of such a
/// frame is parked until the flush that covers the last of its unmaps is
/// over, as the flush queue holds back IOVAs. Machine-wide, because one
/// frame may be mapped through several domains.
package struct Quarantine {
    /// Lazy unmaps of a frame not yet covered by a finished flush.
    package private(set) var pending: [PFN: Int] = [:]
    /// Blocks whose free was asked for while one of their frames was
    /// pending: head -> (frames in the block, frames of it still pending).
    package private(set) var parked: [PFN: (frames: Int, waiting: Int)] = [:]
    /// The parked block each frame of a parked block belongs to, so a
    /// release touches only the blocks of the frames it releases: O(1) each.
    private var blockOf: [PFN: PFN] = [:]
    /// Blocks parked over the machine's life, and the most frames at once.
    package private(set) var parkedTotal = 0, peakParkedFrames = 0
    private var parkedFrames = 0

    package mutating func noteUnmap(_ frames: [PFN]) {
        for f in frames {
            let n = pending[f, default: 0]
            pending[f] = n + 1
            // A frame of a parked block pending again (mapped and unmapped
            // after its free was asked for) waits for this flush as well.
            if n == 0, let head = blockOf[f] { parked[head]!.waiting += 1 }
        }
    }

    /// A free of the block at `head` of `n` frames: parked (true) when a
    /// flush is still owed for one of its frames; nil when it is parked
    /// already (a double free).
    package mutating func park(_ head: PFN, frames n: Int) -> Bool? {
        if parked[head] != nil { return nil }
        let waiting = (0..<n).reduce(0) { c, i in pending[head + i] != nil ? c + 1 : c }
        guard waiting > 0 else { return false }
        parked[head] = (n, waiting)
        for i in 0..<n { blockOf[head + i] = head }
        parkedTotal += 1
        parkedFrames += n
        peakParkedFrames = max(peakParkedFrames, parkedFrames)
        return true
    }

    /// A flush covered these unmaps; returns the parked blocks now free to go.
    package mutating func release(_ frames: [PFN]) -> [PFN] {
        var out: [PFN] = []
        for f in frames {
            guard let n = pending[f] else { continue }
            if n > 1 { pending[f] = n - 1; continue }
            pending[f] = nil
            guard let head = blockOf[f] else { continue }
            parked[head]!.waiting -= 1
            guard let b = parked[head], b.waiting == 0 else { continue }
            parked[head] = nil
            for i in 0..<b.frames { blockOf[head + i] = nil }
            parkedFrames -= b.frames
            out.append(head)
        }
        return out
    }

    /// Frames parked now.
    package var heldFrames: Int { parkedFrames }
}
