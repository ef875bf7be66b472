// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
import SVAKitBase
import SVAKitMemory
import SVAKitIOMMU
import SVAKitSVA
import SVAKitDMA
#endif

/// Argument checks shared by the C entry points that pass ranges straight to
/// a command: what the hardware or the kernel would refuse.
extension Machine {
    /// flush_tlb_kernel_range(start, end): a page-aligned, canonical start in
    /// the kernel half, end at or after it (flush_tlb_all is 0 .. UInt64.max).
    public func checkKernelFlushRange(_ start: UInt64, _ end: UInt64) throws(SVAError) {
        if start == 0 && end == .max { return }
        guard layout.isCanonical(start) else { throw .outOfRange }
        guard start & 0xfff == 0, layout.isKernel(start), end >= start else { throw .invalidArgument }
    }

    /// An IOMMU invalidation's operands: a PASID the 20-bit space holds, a
    /// page-aligned canonical start and an inclusive end at a page's last byte.
    public func iommuCommandRange(pasid: PASID, start: UInt64, end: UInt64) throws(SVAError) {
        guard pasid.rawValue < 1 << 20 else { throw .invalidArgument }
        guard layout.isCanonical(start), end == .max || layout.isCanonical(end) else { throw .outOfRange }
        guard start & 0xfff == 0, end & 0xfff == 0xfff, end >= start else { throw .invalidArgument }
    }
}
