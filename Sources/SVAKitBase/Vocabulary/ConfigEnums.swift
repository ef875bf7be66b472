// SPDX-License-Identifier: Apache-2.0

/// Who invalidates IOMMUs for kernel addresses (enum svakit_kva_invalidation).
public enum KVAInvalidation: UInt32, Sendable {
    /// The unfixed kernel: nobody does.
    case none = 0
    /// v1 of the series: flush_tlb_kernel_range calls the gate.
    case onFlush = 1
}

/// How kernel page-table frames are freed (enum svakit_free_mode).
public enum FreeMode: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// The unfixed kernel: free at once, no IOMMU invalidation.
    case immediate = 0
    /// The merged series (v6.19): PT_kernel-marked tables are deferred;
    /// set_memory split tables and boot-time or hot-added direct-map tables,
    /// which x86 allocates without the mark, free at once.
    case linux619 = 1
    /// Every kernel table deferred, boot-time ones included.
    case complete = 2

    /// The mode's name, as ``FreeMode/init(name:)`` accepts it: "immediate",
    /// "linux-6.19" or "complete".
    public var description: String {
        switch self {
        case .immediate: "immediate"
        case .linux619: "linux-6.19"
        case .complete: "complete"
        }
    }

    /// The mode whose `description` is `name`, or nil.
    public init?(name: String) {
        guard let m = FreeMode.allCases.first(where: { $0.description == name }) else { return nil }
        self = m
    }
}

/// The IOMMU_DEBUG_PAGEALLOC sanitizer, as `iommu.debug_pagealloc=` at boot
/// (enum svakit_iommu_debug_mode; docs/KERNEL-MODEL.md §5).
public enum IOMMUDebugMode: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// Off: no per-frame counts, the key stays off.
    case off = 0
    /// As Linux 7.0 merged it: counts raised after a map, lowered before an
    /// unmap through one iova_to_phys walk per granule, at once for a lazy
    /// unmap.
    case linux = 1
    /// The same counts and checks, lowered inside the unmap's own walk.
    case fast = 2
    /// `fast`, window-aware: an unmapped granule counts until the
    /// invalidation that covers it has finished, so a free in the lazy
    /// window is reported.
    case windowAware = 3

    /// "off", "linux", "fast" or "window".
    public var description: String {
        switch self {
        case .off: "off"
        case .linux: "linux"
        case .fast: "fast"
        case .windowAware: "window"
        }
    }

    /// The mode whose `description` is `name`, or nil.
    public init?(name: String) {
        guard let m = IOMMUDebugMode.allCases.first(where: { $0.description == name }) else { return nil }
        self = m
    }
}

/// Who runs the deferred-free work (with ``DeferralSchedule``, enum
/// svakit_work_mode).
public enum WorkMode: UInt32, Sendable {
    /// A background worker thread, as Linux's kworker.
    case thread = 0
    /// The caller runs pending work (`runDeferredWork`): deterministic.
    case manual = 1
}

/// When the deferred-free work runs (docs/KERNEL-MODEL.md §2.5, "How SVAKit
/// models §2.5"). C: the BATCHED values of enum svakit_work_mode.
public enum DeferralSchedule: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// As Linux 6.19 (mm/pgtable-generic.c, 5ba2f0a15564):
    /// `pagetable_free_kernel()` queues and calls `schedule_work()`, which
    /// only sets the work pending if it was not; the worker, after
    /// `MachineConfig/kworkerLatencyMicros`, clears pending and takes what
    /// was queued meanwhile. No deliberate delay and no bound: the freeing
    /// caller never runs the work nor invalidates, whatever the list holds.
    case linux = 0
    /// Beyond Linux: the worker gathers a storm, waiting until
    /// `MachineConfig/deferBatchTarget` frames are pending or
    /// `MachineConfig/deferMaxDelayMicros` passed, and past
    /// `MachineConfig/maxPending` the freeing caller runs the work itself.
    case batched = 1

    /// "linux" or "batched".
    public var description: String {
        switch self {
        case .linux: "linux"
        case .batched: "batched"
        }
    }

    /// The schedule whose `description` is `name`, or nil.
    public init?(name: String) {
        guard let s = DeferralSchedule.allCases.first(where: { $0.description == name }) else { return nil }
        self = s
    }
}
