// SPDX-License-Identifier: Apache-2.0
import Synchronization

/// One step of the machine, as the event log recorded it.
public struct Event: Sendable, Equatable, CustomStringConvertible {
    /// The machine's clock when it happened.
    public var step: UInt64
    /// What happened; nil for a type this version does not know.
    public var type: EventType?
    /// The path that did it.
    public var site: Site
    /// The table level, for table events; 0 otherwise.
    public var level: Int
    /// What the frame was at that step.
    public var kind: FrameKind
    /// The order of the block, for allocations and frees.
    public var order: Int
    /// The frame (``PFN/none`` for range events).
    public var pfn: PFN
    /// The frame's generation after the step.
    public var generation: UInt32
    /// The address whose entry changed, or the start of a range.
    public var va: UInt64
    /// The end of a range, or the entry's old value.
    public var aux: UInt64

    package init(step: UInt64, type: EventType, site: Site, level: Int, kind: FrameKind, order: Int, pfn: PFN,
                 generation: UInt32, va: UInt64, aux: UInt64) {
        self.step = step
        self.type = type
        self.site = site
        self.level = level
        self.kind = kind
        self.order = order
        self.pfn = pfn
        self.generation = generation
        self.va = va
        self.aux = aux
    }

    /// Whether the event is about frame `pfn` (range events carry no frame).
    public func concerns(_ pfn: PFN) -> Bool { self.pfn == pfn && type != .tlbFlush }

    /// One line: step, type, site, frame, address and aux in hex, e.g.
    /// `step 12: free by vfree pfn 0x1a3 va 0x0 aux 0x0`.
    public var description: String {
        "step \(step): \(type.map(String.init(describing:)) ?? "?") by \(site) \(pfn) va \(hex(va)) aux \(hex(aux))"
    }
}

/// The kinds of step the log records (enum svakit_event_type).
public enum EventType: UInt16, Sendable, CustomStringConvertible {
    /// `frameAlloc`, `frameFree`: a block allocated or freed; `tableLink`,
    /// `tableUnlink`: an entry pointed at a table or cleared; `tlbFlush`: a kernel
    /// TLB flush of [va, aux); `hotRemove`, `hotAdd`: memory hotplug.
    case frameAlloc = 1, frameFree, tableLink, tableUnlink, tlbFlush, hotRemove, hotAdd
    /// `deferQueue`: a table queued by `pagetable_free_kernel`; `deferBatch`: the
    /// work took a batch; `kvaInvalidate`: an IOMMU invalidation for a kernel
    /// range; `dmaWalk`: an IOMMU walk (`MachineConfig/traceWalks`); `uafReport`:
    /// a use-after-free report.
    case deferQueue, deferBatch, kvaInvalidate, dmaWalk, uafReport
    /// The first DMA-FQ domain: the machine is tainted; `va` is the longest
    /// a device may keep access after dma_unmap (ns), `aux` the unmaps that
    /// may wait at once.
    case dmaLazyWindow
    /// The IOMMU_DEBUG_PAGEALLOC sanitizer warned (`va` the IOVA or physical
    /// address, `aux` 1 a count at its maximum, 2 a count lowered at zero,
    /// 3 an unmap removed more than asked, `generation` the domain id).
    case iommuDebugWarn
    /// A device's first IOVA try below 4 GiB failed, so PCI's 32-bit
    /// workaround is off for it from now on (iommu_dma_alloc_iova's
    /// dev_notice "Using %d-bit DMA addresses"): `va` the device, `aux` the
    /// bits of its limit.
    case dmaDACNotice
    /// dma-debug found an unmap that matches no mapping
    /// (`DMADebugMode/linux`; the unmap went ahead): `va` the DMA
    /// address, `aux` what (1 memory it has not allocated, 2 a different
    /// size, 3 a different direction, 4 dma-iommu's WARN that the unmap
    /// removed another size than asked, 5 its WARN that the address has no
    /// translation: nothing unmapped or freed), `generation` the device.
    case dmaDebugError

    /// A short tag, e.g. "alloc", "tlb-flush", "defer" or "iommu-invalidate".
    public var description: String {
        switch self {
        case .frameAlloc: "alloc"
        case .frameFree: "free"
        case .tableLink: "link"
        case .tableUnlink: "unlink"
        case .tlbFlush: "tlb-flush"
        case .hotRemove: "hot-remove"
        case .hotAdd: "hot-add"
        case .deferQueue: "defer"
        case .deferBatch: "batch"
        case .kvaInvalidate: "iommu-invalidate"
        case .dmaWalk: "walk"
        case .uafReport: "uaf"
        case .dmaLazyWindow: "dma-lazy-window"
        case .iommuDebugWarn: "iommu-debug-warn"
        case .dmaDACNotice: "dma-dac-notice"
        case .dmaDebugError: "dma-debug-error"
        }
    }
}

/// A bounded ring of machine steps. Every event gets the next value of the
/// machine's clock (`step`), so events can be ordered against descriptors'
/// `alloc_step` and against later reports. The ring keeps the newest
/// `capacity` events; older ones are overwritten.
///
/// Not thread-safe by itself: `EventLog` owns one under its lock.
package struct EventRing: ~Copyable {
    package let capacity: Int
    private let ring: UnsafeMutablePointer<Event>
    /// The step the next event gets; also the number of events ever recorded.
    package private(set) var nextStep: UInt64 = 0

    package init(capacity: Int) {
        self.capacity = max(capacity, 1)
        ring = .allocate(capacity: self.capacity)
    }

    deinit { ring.deallocate() }

    /// Records one step and returns its number.
    @discardableResult
    package mutating func record(_ type: EventType, site: Site, pfn: PFN, level: Int, kind: FrameKind, order: Int,
                                 generation: UInt32, va: UInt64, aux: UInt64) -> UInt64 {
        let step = nextStep
        nextStep &+= 1
        (ring + Int(step % UInt64(capacity))).initialize(to: Event(
            step: step, type: type, site: site, level: level, kind: kind, order: order,
            pfn: pfn, generation: generation, va: va, aux: aux))
        return step
    }

    /// The oldest step still in the ring.
    package var oldestStep: UInt64 { nextStep > UInt64(capacity) ? nextStep - UInt64(capacity) : 0 }

    /// Events with step >= since, oldest first, that pass `filter`.
    package func forEach(since: UInt64, _ body: (Event) -> Bool) {
        var s = max(since, oldestStep)
        while s < nextStep {
            if !body(ring[Int(s % UInt64(capacity))]) { return }
            s += 1
        }
    }

    /// The ring as it is now: the events it holds, oldest first, and the
    /// clock (a reset's image of boot).
    package func image() -> (events: [Event], nextStep: UInt64) {
        var out: [Event] = []
        out.reserveCapacity(Int(nextStep - oldestStep))
        forEach(since: 0) { out.append($0); return true }
        return (out, nextStep)
    }

    /// Back to an image: the clock as it was, and the image's events in
    /// their slots (later events in other slots are past the clock, never
    /// read).
    package mutating func restore(_ image: (events: [Event], nextStep: UInt64)) {
        nextStep = image.nextStep
        for e in image.events { (ring + Int(e.step % UInt64(capacity))).pointee = e }
    }
}

/// The event log: the lowest layer, a sink every other layer records into
/// and that calls nothing. `record` is O(1) under its own lock (the last in
/// the lock order), so any layer may record while holding its own lock.
@_spi(Engine) public final class EventLog: Sendable {
    /// Protects the ring and the machine's step clock.
    private let ring: RankedMutex<EventRing>

    /// The step the next event gets, as of the last record: a relaxed copy
    /// for hot paths that want a time stamp without taking the lock (the
    /// sanitizer's "mapped since"); it may lag a concurrent record.
    private let clock = Atomic<UInt64>(0)

    package init(capacity: Int) { ring = RankedMutex(.events, EventRing(capacity: capacity)) }

    /// The log as boot left it, for a reset (set once, before the machine
    /// is shared).
    private nonisolated(unsafe) var bootImage: (events: [Event], nextStep: UInt64) = ([], 0)

    /// Remembers the log as it is now as boot's (Machine.init, once).
    package func takeBootImage() { bootImage = ring.locked { $0.image() } }

    /// Back to boot's log and clock (Machine.reset, quiescent).
    package func resetToBoot() {
        ring.locked { $0.restore(bootImage) }
        clock.store(bootImage.nextStep, ordering: .relaxed)
    }

    /// Records one step and returns its number.
    @discardableResult
    /// `level`, `kind`, `order` and `generation` describe the frame after
    /// the step (Memory's `record(_:site:pfn:desc:va:aux:)` fills them from a
    /// descriptor); `tag` stands in the generation field of events about no
    /// frame (a device id, a domain id).
    package func record(_ type: EventType, site: Site, pfn: PFN = .none, level: Int = 0, kind: FrameKind = .free,
                        order: Int = 0, generation: UInt32 = 0, va: UInt64 = 0, aux: UInt64 = 0,
                        tag: UInt32? = nil) -> UInt64 {
        ring.locked { r in
            let step = r.record(type, site: site, pfn: pfn, level: level, kind: kind, order: order,
                                generation: tag ?? generation, va: va, aux: aux)
            clock.store(step &+ 1, ordering: .relaxed)
            return step
        }
    }

    /// The step clock without the lock (see `clock`).
    @inline(__always) package var approximateStep: UInt64 { clock.load(ordering: .relaxed) }

    /// The step the next event gets.
    package var nextStep: UInt64 { ring.locked { $0.nextStep } }

    /// Events with step >= since, oldest first, while `body` returns true.
    /// The events are copied out under the lock and visited after it.
    package func forEach(since: UInt64, _ body: (Event) -> Bool) {
        let copy: [Event] = ring.locked { r in
            var out: [Event] = []
            r.forEach(since: since) { out.append($0); return true }
            return out
        }
        for e in copy where !body(e) { return }
    }
}

/// `v` in hexadecimal with a 0x prefix, as the logs and reports print
/// addresses.
package func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
