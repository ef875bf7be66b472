// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

/// How each hardware profile turns a kernel-side request into commands
/// (docs/KERNEL-MODEL.md §3.6): which commands, what each drops, and the
/// completion command that ends the request's batch, as the Linux driver of
/// that IOMMU queues them. Requests are counted by the caller; this counts
/// and prices the commands. Each returns the modelled device time.
extension IOMMUState {
    /// A range request [start, end] (inclusive) of `pasid` on a non-generic
    /// profile.
    package mutating func profileRange(pasid: UInt32, start: UInt64, end: UInt64, leafOnly: Bool) -> UInt64 {
        let c = config.costs
        // Address-selective commands, context-wide commands, completions: the
        // three prices of the cost model.
        var pages = 0, wide = 0, syncs = 1
        let devices = deviceTLBTargets(pasid)
        switch config.profile {
        case .generic:
            preconditionFailure("the generic profile does not come here")
        case .vtd:
            // cache_tag_flush_range: one PASID-based IOTLB descriptor for
            // the PASID's IOTLB cache tag, then one device-IOTLB descriptor
            // per ATS device, batched by 16, each batch submitted with a
            // wait descriptor. The whole space (intel_arch_invalidate_secondary_tlbs's
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
            syncs = Self.vtdWaits(descriptors: pages + wide + devices)
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
            // arm_smmu_atc_inv_domain then sends the CMD_ATC_INVs as a
            // second batch with its own CMD_SYNC.
            syncs = devices > 0 ? 2 : 1
            counters.commands.smmuSync += syncs
        case .amd:
            // The SVA notifier calls amd_iommu_dev_flush_pasid_pages for
            // each (device, PASID): one INVALIDATE_IOMMU_PAGES, PDE=1
            // whatever the hint, the device's INVALIDATE_IOTLB_PAGES, then
            // COMPLETION_WAIT, once per device.
            let address = IOMMUProfileRules.amdInvAddress(start: start, end: end)
            let r = IOMMUProfileRules.amdRange(address)
            let flushes = max(1, devices)
            if address == IOMMUProfileRules.amdAllPagesAddress & ~0xfff | IOMMUProfileRules.amdSizeBit {
                counters.commands.amdInvalidateAllPages += flushes
                wide = flushes
            } else {
                counters.commands.amdInvalidatePages += flushes
                pages = flushes
            }
            syncs = flushes
            if r.start == 0 && r.end == .max { dropPASID(pasid) } else {
                dropRange(pasid: pasid, start: r.start, end: r.end, nonLeaf: true)
            }
            counters.commands.amdCompletionWait += syncs
        case .riscv:
            // RISC-V IOMMU 1.0: IOTINVAL.VMA with an address drops only that
            // address's leaf entries, so a request that must drop non-leaf
            // entries invalidates the whole PSCID; a leaf-only request goes
            // page by page below Linux's 2 MiB limit. ATS.INVAL per device,
            // then IOFENCE.C ends it.
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
        counters.commands.deviceTLB += devices
        pages += devices
        let ns = UInt64(pages) &* c.rangeInvalidationNs &+ UInt64(wide) &* c.domainInvalidationNs
            &+ UInt64(syncs) &* c.syncNs
        counters.modelledDeviceNs &+= ns
        return ns
    }

    /// A PASID-wide request on a non-generic profile: the hardware's
    /// context-wide command and its completion.
    package mutating func profilePASID(_ pasid: UInt32) -> UInt64 {
        let devices = deviceTLBTargets(pasid)
        var syncs = 1
        switch config.profile {
        case .generic: preconditionFailure("the generic profile does not come here")
        case .vtd:
            counters.commands.vtdPASIDSelective += 1
            syncs = Self.vtdWaits(descriptors: 1 + devices)
            counters.commands.vtdWait += syncs
        case .smmuv3:
            counters.commands.smmuTLBINHASID += 1
            syncs = devices > 0 ? 2 : 1
            counters.commands.smmuSync += syncs
        case .amd:
            syncs = max(1, devices)
            counters.commands.amdInvalidateAllPages += syncs
            counters.commands.amdCompletionWait += syncs
        case .riscv:
            counters.commands.riscvInvalVMAPSCID += 1
            counters.commands.riscvFence += 1
        }
        dropPASID(pasid)
        counters.commands.deviceTLB += devices
        let wide = config.profile == .amd ? syncs : 1
        let ns = UInt64(wide) &* config.costs.domainInvalidationNs &+ UInt64(devices) &* config.costs.rangeInvalidationNs
            &+ UInt64(syncs) &* config.costs.syncNs
        counters.modelledDeviceNs &+= ns
        return ns
    }

    /// The device TLBs a request of `tag` invalidates: its attachments, when
    /// the devices have ATS (``IOMMUConfig/deviceTLBs``).
    package func deviceTLBTargets(_ tag: UInt32) -> Int {
        config.deviceTLBs ? tagDevices[tag] ?? 0 : 0
    }

    /// VT-d wait descriptors for a flush of `descriptors`: the driver
    /// submits its batch with a wait when 16 are queued and at the end.
    package static func vtdWaits(descriptors: Int) -> Int {
        max(1, (descriptors + IOMMUProfileRules.vtdBatch - 1) / IOMMUProfileRules.vtdBatch)
    }

    /// 4 KiB pages [start, end] touches; 2^52 for the whole 64-bit space.
    package static func pageCount(_ start: UInt64, _ end: UInt64) -> UInt64 { (end >> 12) &- (start >> 12) &+ 1 }
}
