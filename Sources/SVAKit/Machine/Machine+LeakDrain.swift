// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The one place IOMMU_DEBUG_PAGEALLOC's deferred leak reports are drained.
///
/// A leak found while a page table is allocated is found under a page-table
/// lock, where no handler may run, so it waits on the allocator's pending
/// list. Every public path that can allocate a table runs its body through
/// `allocatingTables(_:)`, which drains that list after the body, with no
/// lock held: the report reaches the handler during the call that found
/// the leak, not at some later call. The report readers drain first
/// (`drainedReportSink`), so nothing pending is missed by a reader.
extension Machine {
    /// Runs a public path that may allocate a page table, then delivers the
    /// leaks found while it did (also when it throws).
    @inline(__always)
    func allocatingTables<R: ~Copyable, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        defer { drainLeaks() }
        return try body()
    }

    /// The report log, after the pending leak reports joined it.
    var drainedReportSink: ReportSink {
        drainLeaks()
        return reportSink
    }

    /// Reports the leaks found while a page table was allocated, with no
    /// lock held. One load when there are none.
    private func drainLeaks() {
        guard _slowPath(frames.pendingLeakCount.load(ordering: .acquiring) > 0) else { return }
        let pending = frames.pendingLeaks.locked { (p: inout [PendingLeak]) -> [PendingLeak] in
            let taken = p
            p = []
            return taken
        }
        frames.pendingLeakCount.subtract(pending.count, ordering: .relaxed)
        guard !pending.isEmpty else { return }
        deliver(pending.map { leakReport($0.pfn, count: $0.count, when: $0.when, site: $0.site) })
    }

    /// The allocator's check reports through the machine (no lock held), the
    /// pending ones first, so reports keep the order the leaks were found in.
    func installLeakHook() {
        frames.leakHook.locked {
            $0 = HookBox { [unowned self] pfn, count, when, site in
                drainLeaks()
                deliver([leakReport(pfn, count: count, when: when, site: site)])
            }
        }
    }
}
