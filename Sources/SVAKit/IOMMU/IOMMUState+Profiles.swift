// SPDX-License-Identifier: Apache-2.0

/// How each hardware profile turns a kernel-side request into commands
/// (docs/KERNEL-MODEL.md §3.6): which commands, what each drops, and the
/// completion command that ends the request's batch, as the Linux driver of
/// that IOMMU queues them. Requests are counted by the caller; this counts
/// and prices the commands. Each returns the modelled device time.
extension IOMMUState {
    /// A range request [start, end] (inclusive) of `pasid` on a non-generic
    /// profile.
    mutating func profileRange(pasid: UInt32, start: UInt64, end: UInt64, leafOnly: Bool) -> UInt64 {
        let c = config.costs
        var pages = 0, wide = 0, syncs = 1
        switch config.profile {
        case .generic:
            preconditionFailure("the generic profile does not come here")
        case .vtd:
            // cache_tag_flush_range: one PASID-based IOTLB descriptor per
            // cache tag (one here: device TLBs are not modelled), batched
            // by 16 and submitted with a wait descriptor.
            // The whole space (intel_arch_invalidate_secondary_tlbs's
            // start 0, end ULONG_MAX) is cache_tag_flush_all: PASID-selective.
            if start == 0 && end == .max {
                counters.commands.vtdPASIDSelective += 1
                dropPASID(pasid)
                wide = 1
            } else {
                let (address, mask) = IOMMUProfileRules.vtdPSI(start: start, end: end)
                let r = IOMMUProfileRules.vtdRange(address: address, mask: mask)
                if leafOnly { counters.commands.vtdPageSelectiveIH += 1 } else { counters.commands.vtdPageSelective += 1 }
                dropRange(pasid: pasid, start: r.start, end: r.end, nonLeaf: !leafOnly)
                pages = 1
            }
            syncs = (pages + wide + IOMMUProfileRules.vtdBatch - 1) / IOMMUProfileRules.vtdBatch
            counters.commands.vtdWait += syncs
        case .smmuv3:
            // arm_smmu_mm_arch_invalidate_secondary_tlbs: per-page
            // CMD_TLBI_NH_VA below CMDQ_MAX_TLBI_OPS pages, else the ASID;
            // the batch ends with CMD_SYNC.
            let n = Self.pageCount(start, end)
            if n >= UInt64(IOMMUProfileRules.smmuMaxTLBIOps) {
                counters.commands.smmuTLBINHASID += 1
                dropPASID(pasid)
                wide = 1
            } else {
                if leafOnly { counters.commands.smmuTLBINHVALeaf += Int(n) } else { counters.commands.smmuTLBINHVA += Int(n) }
                // The union of per-page commands: every line that meets one of the pages.
                dropRange(pasid: pasid, start: start & ~0xfff, end: end | 0xfff, nonLeaf: !leafOnly)
                pages = Int(n)
            }
            counters.commands.smmuSync += 1
        case .amd:
            // amd_iommu_dev_flush_pasid_pages: one INVALIDATE_IOMMU_PAGES,
            // PDE=1 whatever the hint, then COMPLETION_WAIT.
            let address = IOMMUProfileRules.amdInvAddress(start: start, end: end)
            let r = IOMMUProfileRules.amdRange(address)
            if address == IOMMUProfileRules.amdAllPagesAddress & ~0xfff | IOMMUProfileRules.amdSizeBit {
                counters.commands.amdInvalidateAllPages += 1
                wide = 1
            } else {
                counters.commands.amdInvalidatePages += 1
                pages = 1
            }
            if r.start == 0 && r.end == .max { dropPASID(pasid) } else {
                dropRange(pasid: pasid, start: r.start, end: r.end, nonLeaf: true)
            }
            counters.commands.amdCompletionWait += 1
        case .riscv:
            // RISC-V IOMMU 1.0: IOTINVAL.VMA with an address drops only that
            // address's leaf entries, so a request that must drop non-leaf
            // entries invalidates the whole PSCID; a leaf-only request goes
            // page by page below Linux's 2 MiB limit. IOFENCE.C ends it.
            let n = Self.pageCount(start, end)
            if leafOnly && n > 0 && n << 12 < IOMMUProfileRules.riscvInvalLimit {
                counters.commands.riscvInvalVMAAddress += Int(n)
                dropRange(pasid: pasid, start: start & ~0xfff, end: end | 0xfff, nonLeaf: false)
                pages = Int(n)
            } else {
                counters.commands.riscvInvalVMAPSCID += 1
                dropPASID(pasid)
                wide = 1
            }
            counters.commands.riscvFence += 1
        }
        let ns = UInt64(pages) &* c.rangeInvalidationNs &+ UInt64(wide) &* c.domainInvalidationNs
            &+ UInt64(syncs) &* c.syncNs
        counters.modelledDeviceNs &+= ns
        return ns
    }

    /// A PASID-wide request on a non-generic profile: the hardware's
    /// context-wide command and its completion.
    mutating func profilePASID(_ pasid: UInt32) -> UInt64 {
        switch config.profile {
        case .generic: preconditionFailure("the generic profile does not come here")
        case .vtd:
            counters.commands.vtdPASIDSelective += 1
            counters.commands.vtdWait += 1
        case .smmuv3:
            counters.commands.smmuTLBINHASID += 1
            counters.commands.smmuSync += 1
        case .amd:
            counters.commands.amdInvalidateAllPages += 1
            counters.commands.amdCompletionWait += 1
        case .riscv:
            counters.commands.riscvInvalVMAPSCID += 1
            counters.commands.riscvFence += 1
        }
        dropPASID(pasid)
        let ns = config.costs.domainInvalidationNs &+ config.costs.syncNs
        counters.modelledDeviceNs &+= ns
        return ns
    }

    /// 4 KiB pages [start, end] touches; 2^52 for the whole 64-bit space.
    static func pageCount(_ start: UInt64, _ end: UInt64) -> UInt64 { (end >> 12) &- (start >> 12) &+ 1 }
}
