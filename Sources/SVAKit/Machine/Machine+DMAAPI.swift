// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The DMA API of a device's default domain (docs/KERNEL-MODEL.md §4): what
/// a driver calls, strict or lazy as the domain's type says. Every call
/// takes the simulated CPU it runs on (`cpu`), or the thread's own.
extension Machine {
    /// iommu_setup_default_domain: gives `device` a default domain and
    /// attaches it: identity when asked, else translated, DMA-FQ (lazy)
    /// unless the machine is strict (``MachineConfig/dmaStrict``), the device
    /// untrusted, or its IOMMU unable to defer flushes. Returns the domain
    /// and why it got its type (the boot log's line). The first DMA-FQ
    /// domain taints the machine (``Machine/dmaTainted``) and logs the
    /// window (`EventType/dmaLazyWindow`).
    public func setupDMA(for device: DeviceID, identity: Bool = false) throws(SVAError)
        -> (domain: DomainID, reason: DMAPolicyReason) {
        let (id, reason) = try allocatingTables { () throws(SVAError) in
            try domains.setupDefaultDomain(device: device.rawValue, identity: identity)
        }
        return (DomainID(id), reason)
    }

    /// dma_set_mask_and_coherent(dev, DMA_BIT_MASK(bits)): the device's
    /// IOVAs stay below 2^bits from now on (both the streaming and the
    /// coherent mask; the model keeps one). `bits` is 1...64; any width is
    /// accepted, as a device behind an IOMMU accepts any mask (dma_supported
    /// under dma-iommu). Throws `SVAError/noDevice` for an unknown device.
    public func dmaSetMask(device: DeviceID, bits: Int) throws(SVAError) {
        guard (1...64).contains(bits) else { throw .invalidArgument }
        _ = try core.deviceWord(device.rawValue)
        domains.deviceLimits.update(device.rawValue) { $0.maskBits = bits }
    }

    /// Sets the limit the device's bus puts on its addresses
    /// (dev->bus_dma_limit, from firmware such as ACPI _DMA or a
    /// devicetree dma-ranges): 2^bits - 1, or none for nil.
    public func setBusDMALimit(device: DeviceID, bits: Int?) throws(SVAError) {
        if let bits { guard (1...64).contains(bits) else { throw .invalidArgument } }
        _ = try core.deviceWord(device.rawValue)
        domains.deviceLimits.update(device.rawValue) { $0.busLimitBits = bits }
    }

    /// The device's DMA mask, bus limit, and whether PCI's 32-bit first try
    /// still applies (it goes off at the first try below 4 GiB that fails,
    /// with `EventType/dmaDACNotice`).
    public func dmaLimits(device: DeviceID) throws(SVAError) -> DMADeviceLimits {
        _ = try core.deviceWord(device.rawValue)
        return domains.deviceLimits.limits(device.rawValue)
    }

    /// iommu_get_resv_regions: the IOVA ranges the device's default domain
    /// never hands out (the PCI host bridge window, then its IOMMU's MSI
    /// and reserved ranges; a software-MSI window is listed but not
    /// reserved), as /sys/kernel/iommu_groups/N/reserved_regions lists them.
    public func reservedRegions(device: DeviceID) throws(SVAError) -> [ReservedRegion] {
        try domains.reservedRegions(device: device.rawValue)
    }

    /// The unmaps a translated domain's flush queue holds now, ring by ring,
    /// oldest first (empty for a strict domain's idle queue). Throws
    /// `SVAError/noDevice` for an unknown or freed domain and
    /// `SVAError/invalidArgument` for an identity one.
    public func queuedIOVAs(_ domain: DomainID) throws(SVAError) -> [QueuedIOVA] {
        let s = try domains.slot(domain.rawValue)
        guard let c = s.cookie else { throw .invalidArgument }
        return c.fq.waitingEntries(granule: c.domain.granule)
    }

    /// Whether a DMA-FQ domain ever ran on this machine (isolation weakened).
    public var dmaTainted: Bool { domains.tainted.load(ordering: .acquiring) }

    /// dma_map_page / dma_map_single: maps `size` bytes at `phys` for
    /// `device` and returns the DMA address. Throws
    /// `SVAError/notSupported` when the device has no default domain,
    /// `SVAError/noSpace` when the IOVA space is exhausted,
    /// `SVAError/outOfRange` for a range past memory.
    public func dmaMapPage(device: DeviceID, phys: UInt64, size: UInt64, direction: DMADirection,
                           cpu: Int? = nil) throws(SVAError) -> UInt64 {
        try allocatingTables { () throws(SVAError) in
            try domains.mapPage(device: device.rawValue, phys: phys, size: size, direction: direction, cpu: cpu)
        }
    }

    /// dma_max_mapping_size (iommu_dma_max_mapping_size): an untrusted
    /// device's maps may bounce through swiotlb, so they are limited to one
    /// swiotlb segment (256 KiB); unlimited for other devices.
    public func dmaMaxMappingSize(device: DeviceID) throws(SVAError) -> UInt64 {
        try domains.maxMappingSize(device: device.rawValue)
    }

    /// The swiotlb bounce pool's figures (docs/KERNEL-MODEL.md §4.3b), or
    /// nil while no pool is reserved.
    public var swiotlbStats: SWIOTLBStats? {
        guard let p = domains.swiotlb else { return nil }
        return SWIOTLBStats(slots: p.nslabs, areas: p.nareas, used: p.used.load(ordering: .relaxed),
                            hiwater: p.hiwater.load(ordering: .relaxed), bounced: p.bounced.load(ordering: .relaxed),
                            full: p.full.load(ordering: .relaxed), frames: p.segments.map(\.self))
    }

    /// dma_unmap_page: `address`, `size` and `direction` must be those the
    /// map returned and was given (`SVAError/notFound` for an address not
    /// mapped, `SVAError/invalidArgument` for another size, direction or
    /// device; nothing changes then). Strict: the IOTLB is invalidated and
    /// synced before it returns. Lazy: the IOVA waits in the flush queue,
    /// and the device may keep reaching the page until the flush.
    public func dmaUnmapPage(device: DeviceID, address: UInt64, size: UInt64, direction: DMADirection,
                             cpu: Int? = nil) throws(SVAError) {
        try domains.unmapPage(device: device.rawValue, address: address, size: size, direction: direction, cpu: cpu)
    }

    /// dma_map_sg: maps each (physical address, length) of `list` into one
    /// IOVA range, each element padded to the domain's granule, and merges
    /// elements whose DMA addresses are contiguous into one segment.
    public func dmaMapSG(device: DeviceID, _ list: [(phys: UInt64, length: UInt64)], direction: DMADirection,
                         cpu: Int? = nil) throws(SVAError) -> DMAMappedSG {
        try allocatingTables { () throws(SVAError) in
            try domains.mapSG(device: device.rawValue, list, direction: direction, cpu: cpu)
        }
    }

    /// dma_unmap_sg: unmaps what ``dmaMapSG(device:_:direction:cpu:)`` mapped.
    public func dmaUnmapSG(device: DeviceID, _ sg: DMAMappedSG, cpu: Int? = nil) throws(SVAError) {
        if sg.swiotlb {
            return try domains.unmapSGSwiotlb(device: device.rawValue, segments: sg.segments, direction: sg.direction,
                                              cpu: cpu)
        }
        try domains.unmapPage(device: device.rawValue, address: sg.base, size: sg.span, direction: sg.direction,
                              cpu: cpu)
    }

    /// dma_unmap_sg from the segments alone (what a C caller keeps of a
    /// mapped list): unmaps the IOVA range from the first segment to the
    /// end of the last, as iommu_dma_unmap_sg does.
    func dmaUnmapSG(device: DeviceID, segments: [DMASegment], direction: DMADirection,
                    cpu: Int? = nil) throws(SVAError) {
        try domains.unmapSG(device: device.rawValue, segments: segments, direction: direction, cpu: cpu)
    }

    /// dma_alloc_coherent: a zeroed buffer of `size` bytes (whole frames,
    /// a power-of-two block) mapped bidirectionally; returns its DMA address
    /// and its first frame.
    public func dmaAllocCoherent(device: DeviceID, size: UInt64, cpu: Int? = nil) throws(SVAError)
        -> (address: UInt64, pfn: PFN) {
        guard size > 0, size <= UInt64(pageSize) << UInt64(maxOrder) else { throw .invalidArgument }
        try domains.checkCaller(device: device.rawValue, cpu: cpu)
        let frames = Int((size + UInt64(pageSize) - 1) >> UInt64(pageShift))
        let order = frames <= 1 ? 0 : Int.bitWidth - (frames - 1).leadingZeroBitCount
        let pfn = try allocFrames(order: order, owner: 0xc0)
        for i in 0..<(1 << order) {
            for w in 0..<(pageSize / 8) { try writeWord(pfn + i, index: w, 0) }
        }
        do throws(SVAError) {
            // __iommu_dma_map (iommu_dma_alloc at 6.12.118): never bounced.
            return try allocatingTables { () throws(SVAError) in
                (try domains.mapPage(device: device.rawValue, phys: pfn.physicalAddress, size: size,
                                     direction: .bidirectional, cpu: cpu, coherent: true), pfn)
            }
        } catch {
            try? freeFrames(pfn)
            throw error
        }
    }

    /// dma_free_coherent: unmaps and frees what ``dmaAllocCoherent(device:size:cpu:)``
    /// returned (the free waits in the quarantine when it is on).
    public func dmaFreeCoherent(device: DeviceID, size: UInt64, address: UInt64, pfn: PFN,
                                cpu: Int? = nil) throws(SVAError) {
        try domains.checkCoherent(device: device.rawValue, address: address, phys: pfn.physicalAddress)
        try dmaUnmapPage(device: device, address: address, size: size, direction: .bidirectional, cpu: cpu)
        try freeFrames(pfn)
    }

    /// Runs the DMA layer's timers due at `now` (monotonic ns): each DMA-FQ
    /// domain's flush-queue timeout and each IOVA depot's reclaim. A thread
    /// does it every millisecond in `WorkMode/thread`; tests in
    /// `WorkMode/manual` call it, or ``flushDMAQueues()``.
    public func runDMATimers(now: UInt64) { domains.runTimers(now: now) }

    /// Flushes every DMA-FQ domain's queue now, as its timer would, and
    /// waits for the entries the timer thread or another CPU took off a ring
    /// before the call: on return every unmap made before it is released.
    public func flushDMAQueues() { domains.flushQueues() }

    /// A domain's flush queue: entries waiting, flushes (and those a full
    /// ring forced), and the window from unmap to release (p50, p99, max ns).
    public func flushQueueStats(_ domain: DomainID) throws(SVAError) -> FlushQueueStats {
        guard let c = try domains.slot(domain.rawValue).cookie else { throw .invalidArgument }
        let w = c.fq.window
        return FlushQueueStats(
            pending: c.fq.pendingEntries, flushes: c.fq.flushes.load(ordering: .relaxed),
            fullFlushes: c.fq.fullFlushes.load(ordering: .relaxed), released: w.count.load(ordering: .relaxed),
            windowP50: w.percentile(permille: 500), windowP99: w.percentile(permille: 990), windowMax: w.maximum.load(ordering: .relaxed),
            quarantinedFrames: domains.quarantine.locked { $0.heldFrames })
    }
}

/// A flush queue's figures (``Machine/flushQueueStats(_:)``).
public struct FlushQueueStats: Sendable, Equatable {
    /// Unmaps waiting for a flush now.
    public var pending: Int
    /// Domain-wide flushes so far, and of them those a full ring forced.
    public var flushes: Int, fullFlushes: Int
    /// Unmaps released after a covering flush.
    public var released: Int
    /// Time from unmap to release: p50 and p99 (the upper bound of a bucket
    /// an eighth of an octave wide, so at most 12.5 % high) and the exact
    /// maximum, in nanoseconds.
    public var windowP50: UInt64, windowP99: UInt64, windowMax: UInt64
    /// Frames the machine's quarantine holds now.
    public var quarantinedFrames: Int
}

/// The swiotlb pool's figures (``Machine/swiotlbStats``).
public struct SWIOTLBStats: Sendable, Equatable {
    /// Slots (2 KiB each) and areas (one lock and search index each).
    public var slots: Int, areas: Int
    /// Slots in use now, and the most ever in use.
    public var used: Int, hiwater: Int
    /// Buffers bounced, and maps refused because no slots were free.
    public var bounced: Int, full: Int
    /// The pool's blocks: the first frame of each 256 KiB segment.
    public var frames: [PFN]
}
