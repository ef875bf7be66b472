// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// What limits a device's IOVAs, as Linux keeps it on the device: its DMA
/// mask (`*dev->dma_mask`, set by the driver's dma_set_mask), its bus's
/// limit (`dev->bus_dma_limit`, from firmware; 0 for none) and whether the
/// PCI 32-bit first try still applies (`dev->iommu->pci_32bit_workaround`).
/// docs/KERNEL-MODEL.md §4.3, "The device's limit".
///
/// Packed in one word so the map path reads it with one atomic load:
/// bit 0 set (a published word is never 0), bits 1-7 the mask's width in
/// bits (1...64), bits 8-14 the bus limit's width (0: none), bit 15 the
/// workaround.
public struct DMADeviceLimits: Hashable, Sendable {
    /// The DMA mask's width: the device addresses [0, 2^maskBits).
    public var maskBits: Int
    /// The bus limit's width, or nil when the bus sets none.
    public var busLimitBits: Int?
    /// pci_32bit_workaround: the next IOVA is tried below 4 GiB first.
    /// Cleared for good by the first such try that fails.
    public var pci32BitWorkaround: Bool

    /// A device as the model's devices are set up: its driver set a 64-bit
    /// mask (dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64)), what drivers
    /// of SVA-capable devices do), no bus limit, and PCI's workaround on
    /// (iommu_setup_dma_ops sets it for a PCI device unless iommu.forcedac).
    public static let `default` = DMADeviceLimits(maskBits: 64, busLimitBits: nil, pci32BitWorkaround: true)

    /// Limits with the given fields.
    public init(maskBits: Int, busLimitBits: Int?, pci32BitWorkaround: Bool) {
        self.maskBits = maskBits
        self.busLimitBits = busLimitBits
        self.pci32BitWorkaround = pci32BitWorkaround
    }

    package init(word w: UInt64) {
        guard w & 1 != 0 else { self = .default; return }
        maskBits = Int((w >> 1) & 0x7f)
        let b = Int((w >> 8) & 0x7f)
        busLimitBits = b == 0 ? nil : b
        pci32BitWorkaround = w & 1 << 15 != 0
    }

    package var word: UInt64 {
        1 | UInt64(maskBits) << 1 | UInt64(busLimitBits ?? 0) << 8 | (pci32BitWorkaround ? 1 << 15 : 0)
    }

    /// n for a mask DMA_BIT_MASK(n), nil for a mask of another form.
    package static func width(ofMask mask: UInt64) -> Int? {
        guard mask != 0, mask & (mask &+ 1) == 0 else { return nil }
        return 64 - mask.leadingZeroBitCount
    }

    /// DMA_BIT_MASK(bits).
    package static func bitMask(_ bits: Int) -> UInt64 { bits >= 64 ? .max : (1 << UInt64(bits)) - 1 }

    /// The highest address an IOVA may reach: min_not_zero(mask, bus
    /// limit), as iommu_dma_alloc_iova computes it (the aperture is the
    /// caller's).
    package var dmaLimit: UInt64 {
        let mask = Self.bitMask(maskBits)
        guard let b = busLimitBits else { return mask }
        return min(mask, Self.bitMask(b))
    }
}

/// The DMA limits of every device, indexed by device id and read with no
/// lock on the map path.
package final class DMADeviceTable: @unchecked Sendable {
    // @unchecked: `words` is written only under `lock`; readers load atomics.

    /// Slot i is device i's limits word, 0 (the defaults) until a writer
    /// sets it. Grown in order, so slot == device id.
    private let words = PublishedWords()

    /// Serialises the writers of `words`: dma_set_mask, the bus limit, and
    /// the one-shot clear of the PCI workaround. Taken alone.
    private let lock = RankedMutex<Void>(.domainList, ())

    /// Every device back to the defaults (a machine's reset; no reader runs).
    package func removeAll() { lock.locked { _ in words.removeAll() } }

    /// Device `id`'s limits now.
    @inline(__always)
    package func limits(_ id: UInt32) -> DMADeviceLimits { DMADeviceLimits(word: words.word(at: Int(id))) }

    /// Changes device `id`'s limits with `body`, under the lock.
    package func update(_ id: UInt32, _ body: (inout DMADeviceLimits) -> Void) {
        lock.locked { _ in
            while words.count <= Int(id) { _ = words.insert(DMADeviceLimits.default.word) }
            var l = DMADeviceLimits(word: words.word(at: Int(id)))
            body(&l)
            words.store(l.word, at: Int(id))
        }
    }
}
