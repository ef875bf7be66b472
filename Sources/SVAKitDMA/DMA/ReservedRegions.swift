// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// A reserved region of a device's IOVA space (struct iommu_resv_region):
/// addresses the DMA API must never hand out, because the platform gives
/// them another meaning. docs/KERNEL-MODEL.md §4.3c.
public struct ReservedRegion: Hashable, Sendable, CustomStringConvertible {
    /// enum iommu_resv_type, the kinds the model's profiles report.
    public enum Kind: UInt32, Sendable {
        /// IOMMU_RESV_DIRECT: must stay identity-mapped (an RMRR).
        case direct = 0
        /// IOMMU_RESV_RESERVED: must not be mapped at all (AMD's
        /// HyperTransport range).
        case reserved = 2
        /// IOMMU_RESV_MSI: the hardware MSI window (x86's interrupt
        /// range, 0xfee00000-0xfeefffff).
        case msi = 3
        /// IOMMU_RESV_SW_MSI: a window software maps MSIs into (Arm's
        /// MSI_IOVA_BASE); dma-iommu manages it itself and reserves nothing.
        case swMSI = 4
        /// A PCI host bridge's memory window (iova_reserve_pci_windows):
        /// not an iommu_resv_type, reserved all the same.
        case pciWindow = 100
    }

    /// The first and last address.
    public var start: UInt64, end: UInt64
    /// What the region is.
    public var kind: Kind

    /// A region of [start, end].
    public init(start: UInt64, end: UInt64, kind: Kind) {
        self.start = start
        self.end = end
        self.kind = kind
    }

    /// "[0xfee00000-0xfeefffff] msi", as /sys/kernel/iommu_groups/N/reserved_regions.
    public var description: String {
        let k: String
        switch kind {
        case .direct: k = "direct"
        case .reserved: k = "reserved"
        case .msi: k = "msi"
        case .swMSI: k = "msi"  // sysfs names IOMMU_RESV_SW_MSI "msi" too
        case .pciWindow: k = "pci-window"
        }
        return "[\(hex(start))-\(hex(end))] \(k)"
    }

    /// x86's interrupt range: IOAPIC_RANGE_START..END (intel/iommu.c) and
    /// MSI_RANGE_START..END (amd/iommu.c).
    package static let x86MSI = ReservedRegion(start: 0xfee0_0000, end: 0xfeef_ffff, kind: .msi)
    /// AMD's HT_RANGE_START..HT_RANGE_END.
    package static let amdHyperTransport = ReservedRegion(start: 0xfd_0000_0000, end: 0xff_ffff_ffff, kind: .reserved)
    /// arm-smmu-v3.c's MSI_IOVA_BASE, MSI_IOVA_LENGTH.
    package static let armSWMSI = ReservedRegion(start: 0x800_0000, end: 0x80f_ffff, kind: .swMSI)
    /// The machine's PCI host bridge window: the peer device's MMIO range
    /// (include/svakit.h SVAKIT_MMIO_BASE, SVAKIT_MMIO_SIZE).
    package static let hostBridgeWindow = ReservedRegion(start: SVAKIT_MMIO_BASE, end: SVAKIT_MMIO_BASE + SVAKIT_MMIO_SIZE - 1,
                                                 kind: .pciWindow)
}

extension IOMMUProfile {
    /// The driver's get_resv_regions for a device with no RMRR, unity map
    /// or IORT RMR (linux-source-6.12): VT-d the IOAPIC range as MSI
    /// (intel_iommu_get_resv_regions); AMD the MSI range and the
    /// HyperTransport range (amd_iommu_get_resv_regions); SMMUv3 its
    /// software MSI window (arm_smmu_get_resv_regions). The generic and
    /// RISC-V profiles report none (the 6.12 package has no RISC-V IOMMU
    /// driver to read; docs/KERNEL-MODEL.md §4.3c).
    package var reservedRegions: [ReservedRegion] {
        switch self {
        case .vtd: [.x86MSI]
        case .amd: [.x86MSI, .amdHyperTransport]
        case .smmuv3: [.armSWMSI]
        case .generic, .riscv: []
        }
    }
}

extension DMADomains {
    /// iova_reserve_iommu_regions for a PCI device's default domain, as
    /// iommu_dma_init_domain runs it before the first map: the host
    /// bridge's memory window (iova_reserve_pci_windows), then every
    /// region of the IOMMU's profile but IOMMU_RESV_SW_MSI, each made
    /// unallocatable with reserve_iova.
    package func reserveRegions(_ c: DMACookie, profile: IOMMUProfile) {
        let shift = UInt64(c.domain.granule.trailingZeroBitCount)
        for r in [ReservedRegion.hostBridgeWindow] + profile.reservedRegions where r.kind != .swMSI {
            let lo = r.start >> shift, hi = min(r.end >> shift, c.iovad.endPfn)
            guard lo <= hi else { continue }
            _ = c.iovad.reserve(lo: lo, hi: hi)
        }
    }

    /// iommu_get_resv_regions of `device` (its IOMMU's profile), the PCI
    /// window first: what /sys/kernel/iommu_groups/N/reserved_regions lists.
    package func reservedRegions(device: UInt32) throws(SVAError) -> [ReservedRegion] {
        let w = try core.deviceWord(device)
        let unit = try core.iommu(UInt32(w.iommu))
        return [.hostBridgeWindow] + unit.config.profile.reservedRegions
    }
}
