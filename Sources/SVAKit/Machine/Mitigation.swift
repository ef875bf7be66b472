// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The designs argued over in the series' review (docs/MITIGATIONS.md), each
/// selectable per machine (enum svakit_mitigation).
///
/// Three are settings of the existing knobs (``MachineConfig/freeMode`` and
/// ``MachineConfig/kvaInvalidation``); two change what the IOMMU walks
/// (``MachineConfig/pageTableDefence``). ``MachineConfig/mitigation`` reads
/// and sets them together.
public enum Mitigation: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// The unfixed kernel: kernel tables free at once, no IOMMU invalidation.
    case none = 1
    /// What was merged (v4-v7): kernel tables are freed by a work item that
    /// first invalidates every SVA IOMMU. ``MachineConfig/freeMode`` chooses
    /// linux-6.19 (its holes kept) or complete.
    case deferredFree = 2
    /// Seed 001 (v1-v3): flush_tlb_kernel_range calls the gate, which
    /// invalidates and fences every SVA IOMMU; tables free right after.
    case flushOnKernelTLBFlush = 3
    /// Peter Zijlstra's proposal: each SVA mm gets an IOMMU-only root that
    /// mirrors the user half and has no kernel half; kernel tables free at
    /// once with nothing to invalidate.
    case kptiRoot = 4
    /// Kernel entries without U/S: the review's counter-example. Tables free
    /// at once; the stale walk and its A/D write still happen.
    case clearUS = 5

    /// The name the CLI and docs use: "none", "deferred-free",
    /// "flush-on-kernel-tlb-flush", "kpti-root" or "clear-us".
    public var description: String {
        switch self {
        case .none: "none"
        case .deferredFree: "deferred-free"
        case .flushOnKernelTLBFlush: "flush-on-kernel-tlb-flush"
        case .kptiRoot: "kpti-root"
        case .clearUS: "clear-us"
        }
    }

    /// The mitigation whose `description` is `name`, or nil.
    public init?(name: String) {
        guard let m = Mitigation.allCases.first(where: { $0.description == name }) else { return nil }
        self = m
    }
}

/// What an SVA walk of the kernel half meets (the structural half of
/// ``Mitigation``).
public enum PageTableDefence: UInt32, Sendable, CaseIterable {
    /// The mm's own root, kernel half included: what Linux does on x86.
    case none = 0
    /// An IOMMU-only root per SVA mm: the user half's top-level entries,
    /// mirrored under the mm's page_table_lock, and an empty kernel half.
    case kptiRoot = 1
    /// init_mm's table entries are written without U/S, so the kernel half
    /// is supervisor-only from its top level down.
    case clearUS = 2
}

extension MachineConfig {
    /// The design this configuration runs. Reading it: ``PageTableDefence``
    /// first, then `.onFlush` invalidation, then a deferring free mode.
    /// Setting it sets the knobs it stands for: `.deferredFree` keeps a
    /// deferring ``MachineConfig/freeMode`` (linux-6.19 or complete) and
    /// picks linux-6.19 from `.immediate`; every other design frees at once.
    public var mitigation: Mitigation {
        get {
            switch pageTableDefence {
            case .kptiRoot: return .kptiRoot
            case .clearUS: return .clearUS
            case .none: break
            }
            if kvaInvalidation == .onFlush { return .flushOnKernelTLBFlush }
            return freeMode == .immediate ? .none : .deferredFree
        }
        set {
            kvaInvalidation = newValue == .flushOnKernelTLBFlush ? .onFlush : .none
            switch newValue {
            case .deferredFree: if freeMode == .immediate { freeMode = .linux619 }
            default: freeMode = .immediate
            }
            switch newValue {
            case .kptiRoot: pageTableDefence = .kptiRoot
            case .clearUS: pageTableDefence = .clearUS
            default: pageTableDefence = .none
            }
        }
    }

    /// This configuration with `mitigation` set (and, for `.deferredFree`,
    /// `freeMode` when given).
    public func with(_ mitigation: Mitigation, freeMode: FreeMode? = nil) -> MachineConfig {
        var c = self
        if let freeMode { c.freeMode = freeMode }
        c.mitigation = mitigation
        return c
    }

    /// A structural defence runs alone: it frees at once and invalidates
    /// nothing for kernel addresses.
    func validateMitigation() throws(SVAError) {
        guard pageTableDefence == .none || (freeMode == .immediate && kvaInvalidation == .none)
        else { throw .invalidArgument }
    }
}
