// SPDX-License-Identifier: Apache-2.0
import SVAKit

/// Where `dma-map-benchmark` reads and sets the engine's
/// IOMMU_DEBUG_PAGEALLOC state: whether this build has it, the machine's
/// mode, and the warnings it raised.
enum DMASanitizer {
    /// Whether IOMMU_DEBUG_PAGEALLOC is compiled into this build.
    static var compiledIn: Bool { false }

    /// Sets the machine's mode for `s`.
    static func configure(_ cfg: inout MachineConfig, _ s: DMAMapBenchmark.Sanitizer) throws {
        guard s == .off else { throw CLIError("--sanitizer \(s.rawValue): this engine has no IOMMU_DEBUG_PAGEALLOC") }
    }

    /// The sanitizer's warnings on `m` so far.
    static func warnings(_ m: Machine) -> Int { 0 }
}
