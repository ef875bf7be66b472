// SPDX-License-Identifier: Apache-2.0

/// The deferred-free list of kernel page-table frames (kernel_pgtable_work in
/// mm/pgtable-generic.c, kernel-notes §2.4). Frames are linked through
/// `ptdesc.pt_list_next`, never through the allocator's `lru` link (Jason
/// Gunthorpe's review point, §2.8). It lives in MachineCore: the memory lock,
/// which every caller of pagetableFree already holds, is its lock, and it is
/// held for O(1) per queue and per splice.
struct DeferredList {
    var head: PFN = .none
    var count = 0
    // Figures.
    var framesDeferred = 0
    var batches = 0
    var largestBatch = 0
    var peakPending = 0
    /// Gated invalidations the work issued (the key was on).
    var invalidations = 0
}

/// Figures of the deferred freeing (svakit_deferred_stats).
public struct DeferredStats: Sendable, Equatable {
    public var pending: Int
    public var framesDeferred: Int
    public var batches: Int
    public var largestBatch: Int
    public var peakPending: Int
    /// Calls of the gate's slow path that the work made (one per batch
    /// while an mm has SVA).
    public var invalidations: Int
}

extension MachineCore {
    /// Whether `pagetable_free()` sends this table to the deferred list under
    /// the machine's fidelity mode (kernel-notes §2.2-2.3, §2.7).
    func defers(_ d: Ptdesc) -> Bool {
        switch freeMode {
        case .immediate: false
        case .linux619: d.ptFlags.contains(.kernel)   // ptdesc_test_kernel(); bootmem goes free_reserved_pages
        case .complete: d.frameKind == .kernelTable
        }
    }

    /// pagetable_free_kernel(): queue on the dedicated link (list_add).
    mutating func queueDeferred(_ p: PFN, site: Site) {
        memory[p].pt_list_next = deferred.head.rawValue
        memory[p].ptFlags.insert(.deferred)
        memory[p].ptFlags.remove(.kernel)  // ptdesc_clear_kernel, as pagetable_free does
        deferred.head = p
        deferred.count += 1
        deferred.framesDeferred += 1
        deferred.peakPending = max(deferred.peakPending, deferred.count)
        events.record(.deferQueue, site: site, pfn: p, desc: memory[p])
    }

    /// The first step of the work: the whole list, taken under the lock
    /// (list_splice_tail_init onto a list on the worker's stack).
    mutating func spliceDeferred() -> (head: PFN, count: Int) {
        let taken = (deferred.head, deferred.count)
        guard taken.1 > 0 else { return taken }
        deferred.head = .none
        deferred.count = 0
        deferred.batches += 1
        deferred.largestBatch = max(deferred.largestBatch, taken.1)
        events.record(.deferBatch, site: .pgtableWork, pfn: taken.0, aux: UInt64(taken.1))
        return taken
    }

    /// The last step: __pagetable_free() on every frame of a spliced list.
    mutating func freeDeferred(_ head: PFN) {
        var p = head
        while p != .none {
            let next = PFN(memory[p].pt_list_next)
            memory[p].pt_list_next = PFN.none.rawValue
            release(p, site: .pgtableWork)
            p = next
        }
    }

    var deferredPending: Int { deferred.count }
}
