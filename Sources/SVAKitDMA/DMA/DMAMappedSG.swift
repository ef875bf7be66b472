// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// A scatter-gather list mapped by `Machine/dmaMapSG(device:_:direction:cpu:)`:
/// the DMA segments the device uses (merged where the IOVA layout is
/// contiguous), and what `Machine/dmaUnmapSG(device:_:cpu:)` needs.
public struct DMAMappedSG: Sendable, Equatable {
    /// The DMA segments: (DMA address, length) each.
    public let segments: [DMASegment]
    /// The direction it was mapped with.
    public let direction: DMADirection
    /// The one IOVA range the list occupies, and the bytes it spans.
    package let base: UInt64, span: UInt64
    /// Mapped element by element through iommu_dma_map_page, as every
    /// untrusted device's list is (sg_dma_mark_swiotlb): unmapped segment
    /// by segment.
    package let swiotlb: Bool

    package init(segments: [DMASegment], direction: DMADirection, base: UInt64, span: UInt64, swiotlb: Bool = false) {
        self.segments = segments
        self.direction = direction
        self.base = base
        self.span = span
        self.swiotlb = swiotlb
    }
}

/// One DMA segment of a mapped scatter-gather list.
public struct DMASegment: Sendable, Equatable {
    /// The DMA address the device uses.
    public let address: UInt64
    /// Its length in bytes.
    public let length: UInt64

    /// A segment of `length` bytes at `address`.
    public init(address: UInt64, length: UInt64) {
        self.address = address
        self.length = length
    }
}
