// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// IOMMU_DEBUG_PAGEALLOC (docs/KERNEL-MODEL.md §5): the per-frame mapping
/// counts, the check the page allocator makes, and its reports, which go
/// through the same channel as the walk oracle's.
extension Machine {
    /// Whether this build has the sanitizer (the SwiftPM trait
    /// `IOMMUDebugPagealloc`, the CMake option `SVAKIT_IOMMU_DEBUG_PAGEALLOC`).
    public static var iommuDebugCompiledIn: Bool {
        #if SVAKIT_IOMMU_DEBUG_PAGEALLOC
        true
        #else
        false
        #endif
    }

    /// The static key: whether this machine runs the sanitizer (the header's
    /// `svakit_iommu_debug_pagealloc_enabled`).
    @inlinable public var iommuDebugEnabled: Bool { svakit_iommu_debug_pagealloc_enabled(cHandle) != 0 }

    /// A frame's mapping count: the 4 KiB granules of IOMMU mappings that
    /// cover it (window-aware: and unmaps whose flush has not finished).
    /// Throws `SVAError/noDevice` when the sanitizer is off and
    /// `SVAError/outOfRange` for a frame past memory.
    public func iommuDebugMapCount(_ pfn: PFN) throws(SVAError) -> Int {
        guard frames.memory.contains(pfn) else { throw .outOfRange }
        guard iommuDebugEnabled else { throw .noDevice }
        return Int(frames.debug.count(pfn.index))
    }

    /// What the sanitizer counted. Throws `SVAError/noDevice` when it is off.
    public func iommuDebugStats() throws(SVAError) -> IOMMUDebugStats {
        guard iommuDebugEnabled else { throw .noDevice }
        return frames.debug.stats
    }

    /// iommu_debug_check_unmapped for `count` frames from `pfn`: reports each
    /// frame still counted as mapped and returns how many were (0 with the
    /// key off). Throws `SVAError/invalidArgument` for no frames and
    /// `SVAError/outOfRange` past memory.
    @discardableResult
    public func iommuDebugCheckUnmapped(_ pfn: PFN, count: Int) throws(SVAError) -> Int {
        guard count > 0 else { throw .invalidArgument }
        guard frames.memory.contains(pfn), count <= frames.frameCount - pfn.index else { throw .outOfRange }
        guard iommuDebugEnabled else { return 0 }
        var found = 0
        for f in pfn.index ..< pfn.index + count where frames.checkUnmapped(PFN(f), frames: 1, .atCheck, site: .api) {
            found += 1
        }
        return found
    }

    /// Tests only: runs `body` once, right after the next linux-mode
    /// iommu_debug_unmap_begin, before that unmap clears anything.
    @_spi(Testing) public func afterNextUnmapBegin(_ body: @escaping @Sendable () -> Void) {
        frames.debug.afterUnmapBegin.locked { $0 = HookBox(body) }
        frames.debug.afterUnmapBeginArmed.store(true, ordering: .releasing)
    }

    /// Stops reporting leaks (machine teardown: the frees it makes are not
    /// a driver's).
    func removeLeakHook() {
        frames.leakHook.locked { $0 = nil }
        frames.pendingLeaks.locked { $0 = [] }
    }

    /// "iommu: Detected page leak!" with the page owner's history: who
    /// allocated the frame and when, which domain maps it at which IOVA and
    /// since when, or (window-aware) which unmap's flush still holds it.
    func leakReport(_ pfn: PFN, count: Int32, when: LeakCheck, site: Site) -> UAFReport {
        let d = frames.descriptor(pfn)
        var r = UAFReport(
            step: events.nextStep, va: 0, device: 0, pasid: .noPASID, iommu: 0, frame: pfn, staleLevel: 0,
            expectedLevel: 0, expectedGeneration: nil, foundKind: d.frameKind, foundLevel: Int(d.level),
            foundGeneration: d.generation, freedStep: nil, freedBy: site, reallocStep: nil, reallocSite: .none,
            reallocOwner: 0, escalationPhysicalAddress: nil, corruptedFrame: nil)
        r.kind = ReportKind(when)
        r.mapCount = count
        r.allocSite = d.allocSite
        r.allocOwner = d.owner
        r.allocStep = d.alloc_step
        if let (domain, iova) = domains.mapping(of: pfn) {
            r.leakDomain = DomainID(domain)
            r.leakIOVA = iova
            r.mappedStep = frames.debug.mappedSince(pfn.index).map(UInt64.init)
        } else if let pending = domains.pendingUnmap(of: pfn) {
            r.leakIOVA = pending.iova
            r.pendingDomain = DomainID(pending.domain)
            r.mappedStep = pending.step & 0xffff_ffff
        } else {
            r.mappedStep = frames.debug.mappedSince(pfn.index).map(UInt64.init)
        }
        r.tainted = domains.tainted.load(ordering: .acquiring)
        r.text = r.kernelText
        return r
    }
}
