// SPDX-License-Identifier: Apache-2.0
import SVAKit

/// Where `dma-map-benchmark` reads and sets the engine's
/// IOMMU_DEBUG_PAGEALLOC state (docs/KERNEL-MODEL.md §5): whether this
/// build has it, the machine's mode, and what it counted.
enum DMASanitizer {
    /// Whether IOMMU_DEBUG_PAGEALLOC is compiled into this build (the
    /// SwiftPM trait IOMMUDebugPagealloc; `--disable-default-traits` leaves it out).
    static var compiledIn: Bool { Machine.iommuDebugCompiledIn }

    /// The engine's mode for the option's value.
    static func mode(_ s: DMAMapBenchmark.Sanitizer) -> IOMMUDebugMode {
        switch s {
        case .off: .off
        case .linux: .linux
        case .fast: .fast
        case .window: .windowAware
        }
    }

    /// Sets the machine's mode for `s` (the options were validated: a mode
    /// other than off only in a build that has the sanitizer).
    static func configure(_ cfg: inout MachineConfig, _ s: DMAMapBenchmark.Sanitizer) throws {
        cfg.iommuDebugPagealloc = mode(s)
    }

    /// What the sanitizer counted on `m`; zeros with the key off.
    static func stats(_ m: Machine) -> Stats {
        guard m.iommuDebugEnabled, let s = try? m.iommuDebugStats() else { return Stats() }
        return Stats(warnings: s.leaks + s.overflows + s.underflows + s.unmappedMore, raised: s.raised,
                     lowered: s.lowered)
    }

    /// The figures the benchmark reports: the WARNs (page leaks, count
    /// overflows and underflows, unmaps that removed more than asked) and
    /// the frame counts raised by maps and lowered by unmaps.
    struct Stats: Equatable {
        var warnings = 0, raised = 0, lowered = 0

        static func - (a: Stats, b: Stats) -> Stats {
            Stats(warnings: a.warnings - b.warnings, raised: a.raised - b.raised, lowered: a.lowered - b.lowered)
        }
    }
}
