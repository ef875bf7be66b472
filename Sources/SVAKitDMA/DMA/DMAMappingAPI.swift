// SPDX-License-Identifier: Apache-2.0
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The DMA API over a device's default domain (dma-iommu.c: iommu_dma_map_page,
/// __iommu_dma_unmap; docs/KERNEL-MODEL.md §4.3): an IOVA from the
/// per-CPU rcache, iommu_map; at unmap the entries go, then either a sync
/// and the IOVA back (strict), or the IOVA and the freed tables into the
/// flush queue (lazy). The data pages are the caller's at once in both
/// modes: that is the window lazy mode opens, which the quarantine closes.
extension DMADomains {
    /// The translated default domain of `device` and its cookie; nil for an
    /// identity domain (dma-direct: the DMA address is the physical one).
    private func cookie(of device: UInt32) throws(SVAError) -> (DeviceWord, DMACookie?) {
        let w = try core.deviceWord(device)
        guard let id = w.defaultDomain else { throw .notSupported }
        switch lookupCookie(id) {
        case .translated(let c): return (w, c)
        case .identity: return (w, nil)
        case .gone: throw .noDevice  // freed under a racing call
        }
    }

    /// A caller's CPU: nil (the thread's own) or 0 ..< cpus, checked before
    /// anything changes, identity domains included.
    package func checkCPU(_ cpu: Int?) throws(SVAError) {
        if let cpu, cpu < 0 || cpu >= policy.cpus { throw .invalidArgument }
    }

    /// The checks of a DMA API call before anything changes: the device
    /// has a default domain, the CPU is in range.
    package func checkCaller(device: UInt32, cpu: Int?) throws(SVAError) {
        _ = try cookie(of: device)
        try checkCPU(cpu)
    }

    /// dma_free_coherent's check before anything changes: `address` is
    /// mapped, to `phys` (in an identity domain, is `phys`).
    package func checkCoherent(device: UInt32, address: UInt64, phys: UInt64) throws(SVAError) {
        let (_, c) = try cookie(of: device)
        guard let c else {
            guard address == phys else { throw .invalidArgument }
            return
        }
        guard address < IOMMUDomain.apertureEnd else { throw .outOfRange }
        guard let p = c.domain.iovaToPhys(address) else { throw .notFound }
        guard p == phys else { throw .invalidArgument }
    }

    /// dma_unmap_sg from the segments a mapped list carries (what C keeps):
    /// as iommu_dma_unmap_sg, the range from the first segment's granule to
    /// the end of the last, rounded up to the granule.
    package func unmapSG(device: UInt32, segments: [DMASegment], direction: DMADirection,
                 cpu: Int?) throws(SVAError) {
        guard let first = segments.first, let last = segments.last else { throw .invalidArgument }
        let (w, c) = try cookie(of: device)
        try checkCPU(cpu)
        guard let c else { return }
        // sg_dma_is_swiotlb: the map took the swiotlb path, which it does
        // for every untrusted device.
        if w.untrusted && policy.untrustedBounce {
            return try unmapSGSwiotlb(device: device, segments: segments, direction: direction, cpu: cpu)
        }
        let g = c.domain.granule, end = IOMMUDomain.apertureEnd
        guard first.address < end, last.address < end, last.length <= end - last.address else { throw .outOfRange }
        let base = first.address & ~(g - 1)
        let top = (last.address + last.length + g - 1) & ~(g - 1)
        guard top > base else { throw .invalidArgument }
        try unmapPage(device: device, address: base, size: top - base, direction: direction, cpu: cpu,
                      scatterGather: true)
    }

    private func cpuIndex(_ cpu: Int?, _ c: DMACookie) throws(SVAError) -> Int {
        guard let cpu else { return CurrentCPU.index(cpuCount: c.cpus) }
        guard cpu >= 0, cpu < c.cpus else { throw .invalidArgument }
        return cpu
    }

    /// iommu_setup_default_domain and its policy: identity when asked; a
    /// translated domain otherwise, DMA-FQ unless the machine is strict, the
    /// device untrusted or the IOMMU unable to defer flushes. Attaches it.
    package func setupDefaultDomain(device: UInt32, identity: Bool) throws(SVAError) -> (UInt32, DMAPolicyReason) {
        let w = try core.deviceWord(device)
        // Refused before the domain is allocated, so nothing changes (attach
        // checks again under the core's lock).
        guard w.defaultDomain == nil else { throw .busy }
        let unit = try core.iommu(UInt32(w.iommu))
        let reason: DMAPolicyReason = w.untrusted ? .untrustedDevice : !unit.config.deferredFlush ? .noDeferredFlush
            : policy.strict ? .strictConfigured : .lazyDefault
        let type: DomainType = identity ? .identity : reason == .lazyDefault ? .dmaFQ : .dma
        // The bounce pool an untrusted device's sub-granule maps need
        // (docs/KERNEL-MODEL.md §4.3b). As in Linux, a pool that cannot be
        // had fails no setup: swiotlb is inactive, and a map that would
        // bounce fails instead.
        if w.untrusted && !identity && policy.untrustedBounce { try? reserveSWIOTLB() }
        let id = try create(iommu: UInt32(w.iommu), type: type, pgsizeBitmap: Self.defaultPageSizes)
        // iommu_dma_init_domain's reservations before the domain is
        // published, so no racing map can take an IOVA in a reserved region.
        if let c = cookie(id) { reserveRegions(c, profile: unit.config.profile) }
        do throws(SVAError) {
            try attach(device: device, domain: id)
        } catch {
            try? free(id)
            throw error
        }
        // iommu_setup_dma_ops, at every default-domain setup:
        // pci_32bit_workaround = !iommu_dma_forcedac.
        deviceLimits.update(device) { $0.pci32BitWorkaround = true }
        return (id, reason)
    }

    /// The first DMA-FQ domain taints the machine and logs the window it
    /// opens (beyond Linux, which says only "lazy mode"): how long and for
    /// how many unmaps a device may keep access after dma_unmap.
    package func noteLazy(_ d: IOMMUDomain) {
        guard !tainted.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let single = d.iommu.config.shadowedFlush
        let ns = FlushQueue.nanoseconds(jiffies: FlushQueue.msecsToJiffies(
            single ? FlushQueue.singleTimeoutMs : FlushQueue.perCPUTimeoutMs, hz: UInt64(policy.hz)), hz: UInt64(policy.hz))
        let entries = (single ? FlushQueue.singleSize : FlushQueue.perCPUSize * policy.cpus) - (single ? 1 : policy.cpus)
        events.record(.dmaLazyWindow, site: .none, va: ns, aux: UInt64(entries))
    }

    /// dma_map_page (iommu_dma_map_page at 6.12.118): maps `size` bytes at
    /// `phys` for `device`; returns the DMA address. An identity domain
    /// returns `phys`. An untrusted device's buffer that does not start and
    /// end on its granule is bounced through swiotlb first (dev_use_swiotlb
    /// and `iova_offset(iovad, phys | size)`); `coherent` is
    /// dma_alloc_coherent's own map (__iommu_dma_map), which never bounces.
    package func mapPage(device: UInt32, phys: UInt64, size: UInt64, direction: DMADirection,
                 cpu: Int?, coherent: Bool = false) throws(SVAError) -> UInt64 {
        guard size > 0, phys < frames.bytes, size <= frames.bytes - phys else { throw .outOfRange }
        let (w, c) = try cookie(of: device)
        try checkCPU(cpu)
        guard let c else { return phys }
        let cpu = try cpuIndex(cpu, c)
        if _slowPath(w.untrusted) && !coherent && policy.untrustedBounce && (phys | size) & (c.domain.granule - 1) != 0 {
            return try mapBounced(c, device: device, phys: phys, size: size, direction: direction, cpu: cpu)
        }
        return try map(c, device: device, phys: phys, size: size, direction: direction, cpu: cpu)
    }

    /// __iommu_dma_map: an IOVA for the granules [phys, phys + size) touches,
    /// mapped, and the mapping recorded.
    private func map(_ c: DMACookie, device: UInt32, phys: UInt64, size: UInt64, direction: DMADirection,
                     cpu: Int, bounced: Bool = false) throws(SVAError) -> UInt64 {
        let g = c.domain.granule, off = phys & (g - 1)
        let pages = (off + size + g - 1) / g
        guard let pfn = allocIOVA(c, device: device, pages: pages, cpu: cpu) else { throw .noSpace }
        do throws(SVAError) {
            try c.domain.map(iova: pfn * g, phys: phys - off, size: pages * g, writable: direction.writable)
        } catch {
            c.iovad.freeFast(pfn: pfn, pages: pages, cpu: cpu)
            throw error
        }
        c.record(DMAMapping(device: device, phys: phys, size: size, direction: direction, iovaPfn: pfn, pages: pages,
                            bounced: bounced))
        return pfn * g + off
    }

    /// iommu_dma_map_page's bounce (dma-iommu.c at 6.12.118): slots from
    /// swiotlb aligned to the granule (swiotlb_tbl_map_single with
    /// iova_mask), the buffer copied in, the pre- and post-padding of the
    /// granules zeroed, and the slots' granules mapped instead of the
    /// caller's page. No pool ("DMA bounce buffers are inactive") or no
    /// free slots ("swiotlb buffer is full"): DMA_MAPPING_ERROR, which
    /// dma_mapping_error() turns into -ENOMEM. A failed IOVA or table
    /// allocation gives the slots back (swiotlb_tbl_unmap_single, which
    /// copies back for DMA_FROM_DEVICE and DMA_BIDIRECTIONAL as Linux does).
    private func mapBounced(_ c: DMACookie, device: UInt32, phys: UInt64, size: UInt64, direction: DMADirection,
                            cpu: Int) throws(SVAError) -> UInt64 {
        guard let pool = swiotlb, let tlb = pool.mapSingle(orig: phys, size: size, alignMask: c.domain.granule - 1,
                                                           cpu: cpu)
        else { throw .outOfMemory }
        let g = c.domain.granule, memory = frames.memory
        let start = tlb & ~(g - 1), end = tlb + size
        memory.zeroBytes(at: start, count: Int(tlb - start))                  // pre-padding
        memory.zeroBytes(at: end, count: Int(((end + g - 1) & ~(g - 1)) - end))  // post-padding
        do throws(SVAError) {
            return try map(c, device: device, phys: tlb, size: size, direction: direction, cpu: cpu, bounced: true)
        } catch {
            pool.unmapSingle(tlb, size: size, direction: direction)
            throw error
        }
    }

    /// iommu_dma_max_mapping_size: an untrusted device's maps may bounce,
    /// so they are limited to what swiotlb can hold (one segment).
    package func maxMappingSize(device: UInt32) throws(SVAError) -> UInt64 {
        let w = try core.deviceWord(device)
        return w.untrusted && policy.untrustedBounce ? SWIOTLB.maxMappingSize : UInt64.max
    }

    /// dma_unmap_page: `address`, `size` and `direction` must be those of a
    /// live mapping of `device` (dma-debug's checks): otherwise nothing
    /// changes and it throws. Strict or lazy as the domain's type says.
    package func unmapPage(device: UInt32, address: UInt64, size: UInt64, direction: DMADirection,
                   cpu: Int?, skipCPUSync: Bool = false, scatterGather: Bool = false) throws(SVAError) {
        let (w, c) = try cookie(of: device)
        try checkCPU(cpu)
        guard let c else { return }
        let cpu = try cpuIndex(cpu, c)
        let g = c.domain.granule
        guard address < IOMMUDomain.apertureEnd else { throw .outOfRange }
        let m: DMAMapping
        do throws(SVAError) {
            m = try c.claim(iovaPfn: address / g, device: device, phys: address & (g - 1), size: size,
                            direction: direction)
        } catch {
            guard _slowPath(policy.dmaDebug == .linux) else { throw error }
            try unmapUnmatched(c, device: device, address: address, size: size, direction: direction,
                               lazy: c.fqActive.load(ordering: .acquiring) && !w.untrusted, cpu: cpu,
                               page: !scatterGather, error)
            return
        }
        guard _slowPath(m.bounced) else {
            unmap(m, c, lazy: c.fqActive.load(ordering: .acquiring) && !w.untrusted, cpu: cpu)
            return
        }
        // iommu_dma_unmap_page: the bounce buffer's address from the
        // tables, __iommu_dma_unmap (strict: an untrusted device's unmaps
        // always are, so no walk reaches the slots after it), then
        // swiotlb_tbl_unmap_single: copy back, free the slots.
        guard let tlb = c.domain.iovaToPhys(address), let pool = swiotlb else {
            preconditionFailure("a bounced DMA mapping lost its slots")
        }
        unmap(m, c, lazy: false, cpu: cpu)
        pool.unmapSingle(tlb, size: size, direction: direction, skipCPUSync: skipCPUSync)
    }

    /// dma-debug's check of an unmap without making it (the swiotlb
    /// scatter-gather unmap checks every segment before it unmaps one).
    package func checkUnmap(device: UInt32, address: UInt64, size: UInt64, direction: DMADirection) throws(SVAError) {
        let (_, c) = try cookie(of: device)
        guard let c else { return }
        let g = c.domain.granule
        guard address < IOMMUDomain.apertureEnd else { throw .outOfRange }
        _ = try c.claim(iovaPfn: address / g, device: device, phys: address & (g - 1), size: size,
                        direction: direction, remove: false)
    }

    /// DMADebugMode.linux: an unmap that matches no live mapping goes ahead
    /// as iommu_dma_unmap_page makes it, with the caller's address and size
    /// (__iommu_dma_unmap: the granules from the address's to the end of
    /// the size, unmapped, then synced or queued, and that IOVA range freed
    /// as given), then debug_dma_unmap_page's check_unmap reports what it
    /// finds and forgets the entry it found at that address for that device.
    /// A page unmap (`page`) first asks the tables for the address's
    /// translation and, finding none, WARNs and unmaps and frees nothing
    /// (iommu_dma_unmap_page's early return); dma-debug still checks after
    /// it. A scatter-gather unmap goes straight to __iommu_dma_unmap.
    /// A bounced (swiotlb) mapping's mismatched unmap stays refused with
    /// `refusal`: the model keeps no slot lookup by address.
    private func unmapUnmatched(_ c: DMACookie, device: UInt32, address: UInt64, size: UInt64,
                                direction: DMADirection, lazy: Bool, cpu: Int, page: Bool,
                                _ refusal: SVAError) throws(SVAError) {
        let g = c.domain.granule
        let off = address & (g - 1), pfn = address / g
        guard size > 0, size <= IOMMUDomain.apertureEnd - pfn * g - off else { throw refusal }
        let pages = (off + size + g - 1) / g
        let entry = c.entry(iovaPfn: pfn)
        let found = entry.flatMap { $0.device == device && $0.phys & (g - 1) == off ? $0 : nil }
        if let found, found.bounced { throw refusal }
        var findings: [UInt64] = []
        if let found {
            _ = try? c.claim(iovaPfn: pfn, device: device, phys: off, size: found.size, direction: found.direction)
            if found.size != size { findings.append(2) }
            if found.direction != direction { findings.append(3) }
        } else {
            findings.append(1)
        }
        if page && c.domain.iovaToPhys(address) == nil {
            findings.insert(5, at: 0)  // WARN_ON(!phys): nothing unmapped, no IOVA freed
        } else {
            let unmapped = unmap(DMAMapping(device: device, phys: 0, size: size, direction: direction, iovaPfn: pfn,
                                            pages: pages, scattered: true), c, lazy: lazy, cpu: cpu)
            if unmapped != pages * g { findings.insert(4, at: 0) }  // WARN_ON(unmapped != size), before the check
        }
        for f in findings { events.record(.dmaDebugError, site: .none, va: address, aux: f, tag: device) }
    }

    /// __iommu_dma_unmap for a claimed mapping: clear the range, then its
    /// one decision. Queued (lazy): the IOVA and the freed tables wait in
    /// the flush queue for a flush that starts after this. Otherwise: sync,
    /// then free_iova_fast. Returns the bytes the range's unmap removed.
    @discardableResult
    private func unmap(_ m: DMAMapping, _ c: DMACookie, lazy: Bool, cpu: Int) -> UInt64 {
        let g = c.domain.granule
        let frames = lazy && policy.quarantine ? quarantineUnmap(m, c) : []
        // The range lies in the aperture, so the unmap cannot be refused (a
        // recorded mapping's also cannot come up short).
        guard let u = try? c.domain.unmap(iova: m.iovaPfn * g, size: m.pages * g) else {
            preconditionFailure("a DMA unmap outside the aperture")
        }
        let bytes = u.bytes
        if lazy {
            let removed = u.frames
            c.fq.queue(FQEntry(iovaPfn: m.iovaPfn, pages: m.pages, freelist: u.takeTables().release(),
                               queuedAt: policy.clock(), frames: frames, debugFrames: removed,
                               debugStamp: removed.isEmpty ? 0 : self.frames.events.approximateStep), cpu: cpu)
        } else {
            iotlbSync(c.domain, u, start: m.iovaPfn * g)
            c.iovad.freeFast(pfn: m.iovaPfn, pages: m.pages, cpu: cpu)
        }
        return bytes
    }

    /// The quarantine's note of a lazy unmap: every frame behind the range,
    /// read from the tables before they go for a scatter-gather mapping
    /// (not physically contiguous), else every frame of the granules mapped,
    /// not only the bytes asked for. Returns them for the queue entry.
    private func quarantineUnmap(_ m: DMAMapping, _ c: DMACookie) -> [PFN] {
        let g = c.domain.granule
        var frames: [PFN] = []
        if m.scattered {
            var a = m.iovaPfn * g
            while a < (m.iovaPfn + m.pages) * g {
                if let p = c.domain.iovaToPhys(a) { frames.append(PFN(Int(p >> 12))) }
                a += UInt64(pageSize)
            }
        } else {
            let first = (m.phys & ~(g - 1)) >> 12
            frames = (first ..< first + m.pages * (g >> 12)).map { PFN(Int($0)) }
        }
        quarantine.locked { $0.noteUnmap(frames) }
        return frames
    }

    /// iommu_dma_alloc_iova (dma-iommu.c at 6.12.118): the limit is the
    /// device's, min_not_zero(mask, bus limit), within the aperture. While
    /// PCI's 32-bit workaround is on and the limit is above 4 GiB, the IOVA
    /// is tried below 4 GiB first without flushing the rcaches; the first
    /// such try that fails turns the workaround off for that device for
    /// good (its dev_notice: `EventType/dmaDACNotice`), and this try and
    /// every later one go to the limit, flushing the rcaches if they must.
    private func allocIOVA(_ c: DMACookie, device: UInt32, pages: UInt64, cpu: Int) -> UInt64? {
        if frames.failNth.shouldFail(.iova) { return nil }
        let shift = UInt64(c.domain.granule.trailingZeroBitCount)
        let lim = deviceLimits.limits(device)
        let dmaLimit = min(lim.dmaLimit, IOMMUDomain.apertureEnd - 1)
        if dmaLimit > UInt64(UInt32.max) && lim.pci32BitWorkaround {
            if let pfn = c.iovad.allocFast(pages: pages, limitPfn: min(c.iovad.endPfn, UInt64(UInt32.max) >> shift),
                                           cpu: cpu, flushRcache: false) {
                return pfn
            }
            deviceLimits.update(device) { $0.pci32BitWorkaround = false }
            events.record(.dmaDACNotice, site: .none, va: UInt64(device),
                          aux: UInt64(64 - dmaLimit.leadingZeroBitCount))
        }
        return c.iovad.allocFast(pages: pages, limitPfn: min(c.iovad.endPfn, dmaLimit >> shift), cpu: cpu,
                                 flushRcache: true)
    }

    /// dma_map_sg (iommu_dma_map_sg): one IOVA range for the whole list,
    /// each element padded to the granule so its offset is kept, mapped in
    /// turn; segments whose DMA addresses touch are merged.
    package func mapSG(device: UInt32, _ list: [(phys: UInt64, length: UInt64)], direction: DMADirection,
               cpu: Int?) throws(SVAError) -> DMAMappedSG {
        guard !list.isEmpty else { throw .invalidArgument }
        for e in list where e.length == 0 || e.phys >= frames.bytes || e.length > frames.bytes - e.phys {
            throw .outOfRange
        }
        let (w, c) = try cookie(of: device)
        try checkCPU(cpu)
        guard let c else {
            return DMAMappedSG(segments: Self.merge(list.map { DMASegment(address: $0.phys, length: $0.length) }),
                               direction: direction, base: 0, span: 0)
        }
        let cpu = try cpuIndex(cpu, c)
        if _slowPath(w.untrusted) && policy.untrustedBounce {
            return try mapSGSwiotlb(device: device, list, direction: direction, cpu: cpu)
        }
        let g = c.domain.granule
        let padded = list.map { ($0.phys & (g - 1) + $0.length + g - 1) / g * g }
        let span = padded.reduce(0, +)
        guard let pfn = allocIOVA(c, device: device, pages: span / g, cpu: cpu) else { throw .noSpace }
        var iova = pfn * g
        var segments: [DMASegment] = []
        for (e, len) in zip(list, padded) {
            let off = e.phys & (g - 1)
            do throws(SVAError) {
                try c.domain.map(iova: iova, phys: e.phys - off, size: len, writable: direction.writable)
            } catch {
                // Nothing was handed out: no device can have walked it.
                if iova > pfn * g, let u = try? c.domain.unmap(iova: pfn * g, size: iova - pfn * g) {
                    iotlbSync(c.domain, u, start: pfn * g)
                }
                c.iovad.freeFast(pfn: pfn, pages: span / g, cpu: cpu)
                throw error
            }
            segments.append(DMASegment(address: iova + off, length: e.length))
            iova += len
        }
        c.record(DMAMapping(device: device, phys: list[0].phys & ~(g - 1), size: span, direction: direction,
                            iovaPfn: pfn, pages: span / g, scattered: true))
        return DMAMappedSG(segments: Self.merge(segments), direction: direction, base: pfn * g, span: span)
    }

    /// iommu_dma_map_sg_swiotlb (dma-iommu.c at 6.12.118), which
    /// iommu_dma_map_sg takes for every untrusted device
    /// (dev_use_sg_swiotlb): each element mapped on its own by
    /// iommu_dma_map_page (so bounced when it does not fill its granules),
    /// one segment per element, nothing merged. A failure unmaps the
    /// elements mapped so far without copying back (DMA_ATTR_SKIP_CPU_SYNC)
    /// and throws the failed map's error (Linux returns -EIO).
    private func mapSGSwiotlb(device: UInt32, _ list: [(phys: UInt64, length: UInt64)], direction: DMADirection,
                              cpu: Int) throws(SVAError) -> DMAMappedSG {
        var segments: [DMASegment] = []
        for e in list {
            do throws(SVAError) {
                let a = try mapPage(device: device, phys: e.phys, size: e.length, direction: direction, cpu: cpu)
                segments.append(DMASegment(address: a, length: e.length))
            } catch {
                for s in segments {
                    try? unmapPage(device: device, address: s.address, size: s.length, direction: direction, cpu: cpu,
                                   skipCPUSync: true)
                }
                throw error
            }
        }
        return DMAMappedSG(segments: segments, direction: direction, base: 0, span: 0, swiotlb: true)
    }

    /// iommu_dma_unmap_sg_swiotlb: each segment unmapped on its own
    /// (iommu_dma_unmap_page). Every segment is checked first, so a bad
    /// list changes nothing.
    package func unmapSGSwiotlb(device: UInt32, segments: [DMASegment], direction: DMADirection,
                        cpu: Int?) throws(SVAError) {
        guard !segments.isEmpty else { throw .invalidArgument }
        try checkCPU(cpu)
        var seen = Set<UInt64>()
        for s in segments {
            guard seen.insert(s.address).inserted else { throw .invalidArgument }
            try checkUnmap(device: device, address: s.address, size: s.length, direction: direction)
        }
        for s in segments {
            try unmapPage(device: device, address: s.address, size: s.length, direction: direction, cpu: cpu)
        }
    }

    /// Merges segments whose addresses touch (sg's dma_length grows).
    package static func merge(_ s: [DMASegment]) -> [DMASegment] {
        var out: [DMASegment] = []
        for seg in s {
            if let last = out.last, last.address + last.length == seg.address {
                out[out.count - 1] = DMASegment(address: last.address, length: last.length + seg.length)
            } else {
                out.append(seg)
            }
        }
        return out
    }

    /// A flush covered `e`, the machine's part (its cookie gives the IOVA
    /// back after this): its tables go to the allocator, and the frees
    /// parked behind it happen now.
    package func releaseFlushed(_ e: FQEntry, from d: IOMMUDomain) {
        for t in e.freelist { frames.free(t.pfn, site: .unmap) }
        // The window-aware sanitizer: the flush is over, the counts drop,
        // before any free parked behind it.
        if !e.debugFrames.isEmpty { d.debugFlushed(e.debugFrames) }
        guard !e.frames.isEmpty else { return }
        for f in quarantine.locked({ $0.release(e.frames) }) { frames.free(f, site: .api) }
    }

    /// svakit_frame_free's quarantine check: true when the free of `pfn`
    /// is parked behind a flush still owed (the caller's free succeeded).
    package func parkFree(_ pfn: PFN, frames n: Int) throws(SVAError) -> Bool {
        guard policy.quarantine else { return false }
        guard let parked = quarantine.locked({ $0.park(pfn, frames: n) }) else { throw .doubleFree }
        return parked
    }

    /// Runs every timer due at `now` (the timer thread's tick, or the
    /// caller's in manual mode): flush-queue timeouts and IOVA depot reclaim.
    package func runTimers(now: UInt64) {
        for c in cookies {
            if c.fq.isDue(at: now) { c.fq.timeout() }
            c.iovad.reclaimDepot(now: now)
        }
    }

    /// Flushes every DMA-FQ domain now (the timers firing early).
    /// Releases in flight on the timer thread are waited for too.
    package func flushQueues() {
        for c in cookies {
            if c.fq.pendingEntries > 0 { c.fq.timeout(drain: true) }
            c.fq.quiesce()
        }
    }

    package func startTimer() {
        let t = FlushTimer { [unowned self] in self.runTimers(now: self.policy.clock()) }
        timer = t
        t.start()
    }

    /// Stops the timer and drains every queue.
    package func shutdown() {
        timer?.stop()
        timer = nil
        for c in cookies + retiredCookies { c.fq.timeout(drain: true) }
    }
}
