// SPDX-License-Identifier: Apache-2.0
import CSVAKit

/// The static key and the kernel-address invalidation it gates
/// (kernel-notes §1.6, §1.8, §6).
extension Machine {
    /// iommu_sva_present: on exactly while an mm has an SVA domain.
    @inlinable public var svaPresent: Bool { svakit_iommu_sva_present(cHandle) != 0 }

    /// iommu_sva_invalidate_kva_range: the inline gate. With no SVA bound it
    /// is one relaxed load and a not-taken branch (the same inline C function
    /// the header gives C callers). `end` is exclusive; UInt64.max means all.
    @inlinable
    public func invalidateKernelRange(_ start: UInt64, _ end: UInt64) {
        svakit_iommu_sva_invalidate_kva_range(cHandle, start, end)
    }

    /// The out-of-line slow path: invalidates [start, end) with the leaf-only
    /// hint clear, for every SVA domain's PASID on its IOMMU, then fences each
    /// IOMMU it touched.
    ///
    /// The read side takes no lock (svaDomains and iommuTable are published
    /// RCU-style), so it may run where the caller cannot sleep. Why it is
    /// right against a concurrent bind: bind publishes the domain word and
    /// sets the key *before* it installs the PASID entry under the IOMMU's
    /// lock. A walk that cached a table needs that entry, so it follows the
    /// publication; the caller unlinked the table after that walk (both hold
    /// the memory lock), and scans after the unlink, so it sees the word.
    /// Against unbind: the word is cleared only after the PASID entry is
    /// gone and the PASID invalidated, so a word it misses has nothing cached.
    func invalidateKVASlow(_ start: UInt64, _ end: UInt64) {
        kvaSlowCalls.add(1, ordering: .relaxed)
        let last = end == .max ? .max : end &- 1
        let iommus = iommuTable.count
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: max(iommus, 1)) { touched in
            touched.initialize(repeating: false)
            svaDomains.forEach { w in
                let (pasid, index) = RegistryState.decode(w)
                withIOMMU(index) { $0.invalidateRange(pasid: pasid, start: start, end: last, leafOnly: false) }
                if index < touched.count { touched[index] = true }
            }
            for i in 0..<touched.count where touched[i] { withIOMMU(i) { $0.fence() } }
        }
    }

    /// Runs body with the IOMMU of `index`, borrowed without ARC traffic.
    @inline(__always)
    func withIOMMU<R>(_ index: Int, _ body: (IOMMU) -> R) -> R? {
        let w = iommuTable.word(at: index)
        guard w != 0, let p = UnsafeRawPointer(bitPattern: UInt(w)) else { return nil }
        return Unmanaged<IOMMU>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }
}
