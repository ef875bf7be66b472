// SPDX-License-Identifier: Apache-2.0

/// A fix broken on purpose, for the explorer's negative controls: each must
/// be found with a witness schedule (docs/TESTING.md, "Every interleaving").
/// Only builds with the schedule points can set one (`Machine.breakFix`).
public enum BrokenFix: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The deferred work invalidates the IOMMU's caches but does not wait
    /// for walks in flight (no fence) before it frees the tables.
    case workWithoutFence = "work-without-fence"
    /// The deferred work frees the tables, then invalidates.
    case freeBeforeInvalidation = "free-before-invalidation"

    /// The raw value.
    public var description: String { rawValue }
}
