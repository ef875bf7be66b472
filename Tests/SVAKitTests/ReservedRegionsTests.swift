// SPDX-License-Identifier: Apache-2.0
import Testing
@_spi(Testing) @testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

/// iova_reserve_iommu_regions (dma-iommu.c at 6.12.118): a default DMA
/// domain never hands out its device's reserved regions.
@Suite struct ReservedRegionsTests {
    static let gib: UInt64 = 1 << 30

    func rig(_ profile: IOMMUProfile) throws -> (Machine, DeviceID, DMACookie) {
        var cfg = MachineConfig(frames: 1 << 19, eventLogCapacity: 1 << 12, workMode: .manual)
        cfg.dmaStrict = true
        cfg.cpus = 1
        let m = try Machine(cfg)
        var ic = IOMMUConfig()
        ic.profile = profile
        let iommu = try m.addIOMMU(ic)
        let dev = try m.addDevice(iommu: iommu.id, sva: false)
        let (d, _) = try m.setupDMA(for: dev)
        let c = try #require(try m.domains.slot(d.rawValue).cookie)
        return (m, dev, c)
    }

    /// Under a 32-bit mask, VT-d's IOAPIC range (0xfee00000) sits in the
    /// top GiB below 4 GiB: two 1 GiB buffers fit, not three. SMMUv3
    /// reserves nothing there (its MSI window is software-managed), so
    /// three fit: the control, and what the model did for every profile
    /// before it reserved regions.
    @Test(arguments: [(IOMMUProfile.vtd, 2), (.amd, 2), (.smmuv3, 3), (.generic, 3)])
    func theMSIWindowIsNeverHandedOut(profile: IOMMUProfile, fit: Int) throws {
        let (m, dev, c) = try rig(profile)
        try m.dmaSetMask(device: dev, bits: 32)
        var mapped = 0
        while mapped < 4, (try? m.dmaMapPage(device: dev, phys: Self.gib, size: Self.gib, direction: .toDevice,
                                             cpu: 0)) != nil {
            mapped += 1
        }
        #expect(mapped == fit)
        let msi = c.iovad.find(pfn: 0xfee00)
        #expect((msi?.kind == .reserved) == (profile == .vtd || profile == .amd))
    }

    @Test func everyDeviceKeepsTheHostBridgeWindowAndAMDItsHTRange() throws {
        let (m, dev, c) = try rig(.amd)
        let regions = try m.reservedRegions(device: dev)
        #expect(regions.map(\.kind) == [.pciWindow, .msi, .reserved])
        #expect(regions.map(\.description)
                == ["[0x200000000000-0x20003fffffff] pci-window", "[0xfee00000-0xfeefffff] msi",
                    "[0xfd00000000-0xffffffffff] reserved"])
        for r in regions {
            let k = try #require(c.iovad.find(pfn: r.start >> 12)?.kind)
            #expect(k == .reserved, "\(r)")
            #expect(c.iovad.find(pfn: r.end >> 12)?.kind == .reserved)
        }
        let (m2, dev2, c2) = try rig(.smmuv3)
        #expect(try m2.reservedRegions(device: dev2).map(\.kind) == [.pciWindow, .swMSI])
        #expect(c2.iovad.find(pfn: 0x8000) == nil, "IOMMU_RESV_SW_MSI is dma-iommu's own: not reserved")
        #expect(throws: SVAError.noDevice) { try m.reservedRegions(device: DeviceID(42)) }
    }
}
