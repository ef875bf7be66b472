// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_iommu_commands()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_iommu_commands(_ h: UnsafeMutablePointer<svakit_machine>?, _ iommu: UInt32,
                                  _ out: UnsafeMutablePointer<svakit_iommu_commands>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let o = try requireOut(out)
        let all = try m.iommu(IOMMUID(iommu)).counters
        let c = all.commands
        o.pointee = svakit_iommu_commands(
            vtd_page_selective: UInt64(c.vtdPageSelective), vtd_page_selective_ih: UInt64(c.vtdPageSelectiveIH),
            vtd_pasid_selective: UInt64(c.vtdPASIDSelective), vtd_wait: UInt64(c.vtdWait),
            smmu_tlbi_nh_va: UInt64(c.smmuTLBINHVA), smmu_tlbi_nh_va_leaf: UInt64(c.smmuTLBINHVALeaf),
            smmu_tlbi_nh_asid: UInt64(c.smmuTLBINHASID), smmu_sync: UInt64(c.smmuSync),
            amd_invalidate_pages: UInt64(c.amdInvalidatePages),
            amd_invalidate_all_pages: UInt64(c.amdInvalidateAllPages),
            amd_completion_wait: UInt64(c.amdCompletionWait),
            riscv_inval_vma_addr: UInt64(c.riscvInvalVMAAddress), riscv_inval_vma_pscid: UInt64(c.riscvInvalVMAPSCID),
            riscv_iofence: UInt64(c.riscvFence), modelled_device_ns: all.modelledDeviceNs)
        return 0
    }
}
