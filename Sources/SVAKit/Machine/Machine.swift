// SPDX-License-Identifier: Apache-2.0
import CSVAKit
import CSVAKitCore
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// A simulated machine: the layers, composed. Each layer is one type that
/// owns its state and its lock, and depends only on the layers below it:
///
///     EventLog <- FrameMemory <- PageTables <- IOMMU <- IOMMUCore <- SVARegistry <- DeferredFree
///                                                         IOMMUCore <- DMADomains
///
/// `Machine` is the kernel that drives them: the public API, the kernel
/// paths (KernelPaths/), the DMA front and the reports. Two machines share
/// nothing. Thread-safe.
public final class Machine: @unchecked Sendable {
    // @unchecked: every stored property is immutable, a lock or an atomic.

    /// The configuration the machine was built with.
    public let config: MachineConfig
    /// The virtual address layout of its paging mode
    /// (``MachineConfig/pagingLevels``).
    public let layout: AddressLayout

    let events: EventLog
    let frames: FrameMemory
    let tables: PageTables
    let core: IOMMUCore
    let sva: SVARegistry
    let domains: DMADomains
    let deferred: DeferredFree
    let reportSink: ReportSink

    /// The C handle: its public prefix (magic, the static key
    /// iommu_sva_present) is read by the header's inline functions; `owner`
    /// points back here. See MachineHandle for its life after destroy.
    @usableFromInline let handle: UnsafeMutablePointer<svakit_machine>

    /// The CPU TLB flush hook; copied out and called with no lock held, so a
    /// hook may call back into the machine.
    let flushHook = RankedMutex<HookBox<TLBFlushHook>?>(.hook, nil)
    /// The kernel window hook (KernelPaths/KernelWindow.swift); copied out and
    /// called with no lock held.
    let windowHook = RankedMutex<HookBox<KernelWindowHook>?>(.hook, nil)
    #if SVAKIT_SCHEDULE_POINTS
    /// The explorer's what-if: hot-remove in Linux's order in `complete`.
    let explorerLinuxHotRemoveOrder = RankedMutex<Bool>(.hook, false)
    #endif
    /// flush_tlb_kernel_range calls (relaxed: a counter, not a lock).
    let tlbFlushes = Atomic<Int>(0)

    /// Called by flush_tlb_kernel_range(start, end) and flush_tlb_all()
    /// (start 0, end UInt64.max): the CPUs' flush. Free paths call it after
    /// the entry is cleared and before the table is freed, except memory
    /// hot-remove in Linux's order, whose final flush comes after the frees
    /// (docs/KERNEL-MODEL.md §2.7).
    public typealias TLBFlushHook = @Sendable (_ start: UInt64, _ end: UInt64) -> Void

    /// Boots a machine: reserves its simulated memory, builds init_mm's kernel
    /// half and the direct map, and in `WorkMode/thread` starts the deferred-free
    /// worker. Throws `SVAError/invalidArgument` for a configuration out of
    /// bounds and `SVAError/outOfMemory` when the host cannot back the memory.
    public init(_ config: MachineConfig = MachineConfig()) throws(SVAError) {
        try config.validate()
        self.config = config
        layout = AddressLayout(levels: config.pagingLevels)
        handle = MachineHandle.allocate()
        events = EventLog(capacity: config.eventLogCapacity)
        do throws(SVAError) {
            frames = try FrameMemory(frames: config.frames, policy: config.reuse, events: events,
                                     debugMode: config.iommuDebugPagealloc,
                                     debugKey: MachineHandle.debugKey(handle))
            tables = try PageTables(frames: frames, layout: layout,
                                    kernelEntriesWithoutUser: config.pageTableDefence == .clearUS,
                                    gbpages: config.directGbpages)
        } catch {
            MachineHandle.retire(handle)
            throw error
        }
        core = IOMMUCore(memory: frames.memory, events: events, rootLevel: layout.rootLevel)
        sva = SVARegistry(core: core, tables: tables, key: MachineHandle.key(handle), pasidBits: config.pasidBits,
                          iommuOnlyRoots: config.pageTableDefence == .kptiRoot)
        domains = DMADomains(frames: frames, core: core, policy: DMAPolicy(
            strict: config.dmaStrict, quarantine: config.dmaQuarantine, cpus: config.cpus, hz: config.hz,
            timerThread: config.workMode == .thread, swiotlbSlabs: config.swiotlbSlabs,
            untrustedBounce: config.untrustedBounce, dmaDebug: config.dmaDebug))
        deferred = DeferredFree(frames: frames, sva: sva, mode: config.freeMode, rangeStart: layout.directMapBase,
                                schedule: config.deferralSchedule, maxPending: config.maxPending)
        reportSink = ReportSink(capacity: config.reportLogCapacity)
        if config.iommuDebugPagealloc != .off { installLeakHook() }
        // What reset() returns to: the bytes boot wrote, the descriptors and
        // the allocator, the boot events.
        do throws(SVAError) { try frames.takeBootImage() } catch {
            MachineHandle.retire(handle)
            throw error
        }
        events.takeBootImage()
        MachineHandle.publish(handle, owner: Unmanaged.passUnretained(self).toOpaque())
        if config.workMode == .thread {
            deferred.startWorker(latencyMicros: config.kworkerLatencyMicros, batchTarget: config.deferBatchTarget,
                                 maxDelayMicros: config.deferMaxDelayMicros)
            domains.startTimer()
        }
    }

    deinit {
        // The hook holds this machine unowned; teardown's frees report nothing.
        removeLeakHook()
        // Shutdown drains the queue: the worker finishes, then whatever is
        // left is freed here (still behind one invalidation per batch).
        domains.shutdown()
        deferred.shutdown()
        MachineHandle.retire(handle)
    }

    /// The C handle of this machine (valid while the machine lives).
    @inlinable public var cHandle: UnsafeMutablePointer<svakit_machine> { handle }

    // MARK: - Frames

    /// Allocates 2^order contiguous data frames tagged with `owner` (`alloc_pages`).
    /// Throws `SVAError/invalidArgument` for an order past `maxOrder` and
    /// `SVAError/outOfMemory`.
    public func allocFrames(order: Int = 0, owner: UInt16 = 0) throws(SVAError) -> PFN {
        try frames.alloc(order: order, kind: .data, site: .api, owner: owner)
    }

    /// Frees a data block (not a page table). Throws `SVAError/outOfRange`,
    /// `SVAError/doubleFree` or `SVAError/notAllocated` unless `pfn` heads
    /// an allocated block, and `SVAError/wrongAPI` unless the block is data.
    public func freeFrames(_ pfn: PFN) throws(SVAError) {
        // The quarantine: a data block a lazy unmap still covers is freed
        // when the flush that covers it is over.
        let d = try frames.allocatedHead(pfn)
        if d.frameKind == .data, try domains.parkFree(pfn, frames: 1 << Int(d.order)) { return }
        try frames.freeData(try frames.checkFrame(UInt64(pfn.rawValue)), site: .api)
    }

    /// What the frame's descriptor says now. Throws `SVAError/outOfRange` for
    /// a frame past memory.
    public func descriptor(_ pfn: PFN) throws(SVAError) -> FrameDescriptor {
        FrameDescriptor(try rawDescriptor(pfn))
    }

    /// A copy of the frame's descriptor as memory stores it (the C ABI's
    /// svakit_frame_info, and tests of the allocator's links).
    func rawDescriptor(_ pfn: PFN) throws(SVAError) -> Ptdesc {
        frames.descriptor(try frames.checkFrame(UInt64(pfn.rawValue)))
    }

    /// Copies `buf.count` bytes of frame `pfn`, from byte `offset`, into `buf`;
    /// any frame, page tables included. Throws `SVAError/outOfRange` for a frame
    /// past memory and `SVAError/invalidArgument` if the bytes cross its end.
    public func readFrame(_ pfn: PFN, offset: Int, into buf: UnsafeMutableRawBufferPointer) throws(SVAError) {
        let f = try frames.checkFrame(UInt64(pfn.rawValue))
        guard offset >= 0, offset <= pageSize, buf.count <= pageSize - offset else { throw .invalidArgument }
        if let b = buf.baseAddress { frames.memory.copyOut(frames.memory.frame(f) + offset, to: b, count: buf.count) }
    }

    /// Writes bytes into a frame that is not a live page table (data, or a
    /// free frame); page tables change only through the mapping calls and
    /// the entry primitives, which keep the machine consistent. Throws
    /// `SVAError/wrongAPI` for a live table, `SVAError/outOfRange` and
    /// `SVAError/invalidArgument` as ``Machine/readFrame(_:offset:into:)`` does.
    public func writeFrame(_ pfn: PFN, offset: Int, from buf: UnsafeRawBufferPointer) throws(SVAError) {
        let f = try writableFrame(pfn)
        guard offset >= 0, offset <= pageSize, buf.count <= pageSize - offset else { throw .invalidArgument }
        if let b = buf.baseAddress { frames.memory.copyIn(b, to: frames.memory.frame(f) + offset, count: buf.count) }
    }

    /// Reads one 64-bit word of a frame (e.g. a page-table entry). Throws
    /// `SVAError/outOfRange` for a frame past memory and
    /// `SVAError/invalidArgument` for an index past 511.
    public func readWord(_ pfn: PFN, index: Int) throws(SVAError) -> UInt64 {
        guard index >= 0, index < 512 else { throw .invalidArgument }
        return frames.memory.loadEntry(try frames.checkFrame(UInt64(pfn.rawValue)), index)
    }

    /// Writes one 64-bit word of a frame: what an attacker who owns a reused
    /// frame does. Throws as ``Machine/writeFrame(_:offset:from:)`` does, and
    /// `SVAError/invalidArgument` for an index past 511.
    public func writeWord(_ pfn: PFN, index: Int, _ value: UInt64) throws(SVAError) {
        let f = try writableFrame(pfn)
        guard index >= 0, index < 512 else { throw .invalidArgument }
        frames.memory.storeEntry(f, index, value)
    }

    /// A frame the byte-level writers may change: not a live page table.
    private func writableFrame(_ pfn: PFN) throws(SVAError) -> PFN {
        let f = try frames.checkFrame(UInt64(pfn.rawValue))
        let kind = frames.memory.kind(f)
        guard kind != FrameKind.kernelTable.rawValue && kind != FrameKind.userTable.rawValue else { throw .wrongAPI }
        return f
    }

    // MARK: - Address spaces and mappings

    /// init_mm, the owner of the shared kernel half.
    public static let initMM = MMID.initMM

    /// A new address space: a user root whose kernel half points at the
    /// shared kernel tables, as every x86 mm does.
    public func createAddressSpace() throws(SVAError) -> MMID {
        try allocatingTables { () throws(SVAError) in MMID(try tables.createMM()) }
    }

    /// Tears an mm down. Refused with `.busy` while a device is attached to
    /// it: unbind first (in Linux the bond keeps the mm alive). Its user
    /// tables free at once: no IOMMU can hold them once the mm is on no
    /// PASID, and unbind fenced every walk through it.
    public func destroyAddressSpace(_ id: MMID) throws(SVAError) {
        let mm = id.rawValue
        _ = try tables.root(of: mm)
        guard id != .initMM else { throw .wrongAPI }
        let removed = try sva.tearDown(mm: mm) { () throws(SVAError) in try tables.removeMM(mm) }
        let (root, iommuRoot) = removed.freeTables { deferred.pagetableFree($0, site: .mmTeardown) }
        frames.free(root, site: .mmTeardown)
        if iommuRoot != .none { frames.free(iommuRoot, site: .mmTeardown) }
    }

    /// The root table (CR3, or the PASID entry's pointer) of an mm.
    public func rootTable(of mm: MMID) throws(SVAError) -> TableFrame { try tables.root(of: mm.rawValue) }

    /// Maps [va, va + size) to phys with one leaf. Kernel addresses go through
    /// `Machine.initMM`, user addresses through a process mm. A process mm
    /// maps only frames a process could own (`checkUserTarget(_:size:)`):
    /// `SVAError/wrongAPI` for a page table or offline memory, checked
    /// after the mapping's other checks.
    public func map(_ va: UInt64, to phys: UInt64, size: PageSize = .size4K,
                    prot: UInt64 = PageTableEntry.writable, in mm: MMID = .initMM) throws(SVAError) {
        try allocatingTables { () throws(SVAError) in
            try tables.map(mm: mm.rawValue, va: va, phys: phys, size: size, prot: prot, site: .map) {
                () throws(SVAError) in if mm != .initMM { try checkUserTarget(phys, size: size) }
            }
        }
    }

    /// Clears the leaf that maps exactly [va, va + size); tables stay. In a
    /// bound mm the MMU notifier then invalidates that range on its IOMMUs.
    public func unmap(_ va: UInt64, size: PageSize = .size4K, in mm: MMID = .initMM) throws(SVAError) {
        try tables.unmap(mm: mm.rawValue, va: va, size: size)
        if mm != .initMM { sva.mmInvalidateRange(mm.rawValue, va, va + size.bytes) }
    }

    /// The software walk of `va` in `mm`.
    public func translate(_ va: UInt64, in mm: MMID = .initMM) throws(SVAError) -> Translation {
        try tables.translate(va, mm: mm.rawValue)
    }

    /// The entry slot at `level` that maps `va` in `mm`, if the tables exist.
    public func entrySlot(_ va: UInt64, level: Int, in mm: MMID = .initMM) throws(SVAError) -> EntrySlot? {
        guard level >= 1, level <= layout.rootLevel else { throw .invalidArgument }
        guard layout.isCanonical(va) else { throw .outOfRange }
        return try tables.withMM(mm.rawValue) { t in t.lookup(va, level: level) }
    }

    /// The table an entry points to (nil for an empty entry or a leaf).
    public func table(pointedToBy slot: EntrySlot) -> TableFrame? {
        tables.withKernel { k in k.child(of: slot) }
    }

    /// The entry in a slot now (one atomic load).
    public func entry(_ slot: EntrySlot) -> PageTableEntry {
        PageTableEntry(raw: frames.memory.loadEntry(slot.holder.pfn, slot.index))
    }

    // MARK: - CPU TLB

    /// Installs (or, with nil, removes) the CPU TLB flush hook: it runs after
    /// each kernel TLB flush with no engine lock held, so it may call back.
    public func setTLBFlushHook(_ hook: TLBFlushHook?) {
        flushHook.locked { $0 = hook.map { HookBox($0) } }
    }

    /// flush_tlb_kernel_range as the kernel paths call it (their ranges are
    /// right by construction; the checked public form is in
    /// Machine+Checks.swift): logs the flush and runs the hook (the CPUs'
    /// flush) with no lock held; then, with `.onFlush` (v1-v3 of the
    /// series), calls the IOMMU gate over the pages the flush covers, as v1
    /// did at the end of the function.
    func flushKernelRange(_ start: UInt64, _ end: UInt64, site: Site) {
        flushCPUs(start, end, site: site)
        // v1-v3 call the gate at the end of flush_tlb_kernel_range(), after
        // the CPUs' flush (docs/KERNEL-MODEL.md §1.7).
        if config.kvaInvalidation == .onFlush, let pages = Self.flushedPages(start, end) {
            invalidateKernelRange(pages.start, pages.end)
        }
    }

    /// flush_tlb_one_kernel (INVLPG of one page on every CPU, as cpa_flush
    /// does page by page): the CPUs' flush only; no design ever put the
    /// IOMMU gate here.
    func flushTLBOneKernel(_ va: UInt64, site: Site) { flushCPUs(va, va + UInt64(pageSize), site: site) }

    /// The CPUs' side of a kernel flush: counted, logged, the hook run.
    private func flushCPUs(_ start: UInt64, _ end: UInt64, site: Site) {
        tlbFlushes.add(1, ordering: .relaxed)
        events.record(.tlbFlush, site: site, va: start, aux: end)
        if let hook = flushHook.locked({ $0 })?.fn {
            LockRank.assertNoneHeld("the TLB flush hook")
            hook(start, end)
        }
    }

    /// flush_tlb_all.
    public func flushTLBAll(site: Site = .api) { flushKernelRange(0, .max, site: site) }

    /// The pages a flush_tlb_kernel_range(start, end) covers, as the
    /// exclusive range the IOMMU gate takes: x86's do_kernel_range_flush
    /// flushes each page at `start + n * PAGE_SIZE` below `end`, so
    /// pmd_free_pte_page's (addr, addr + PAGE_SIZE - 1) is the page
    /// [addr, addr + PAGE_SIZE), not one byte short of it. UInt64.max stays
    /// "all"; an empty range (end <= start) flushes nothing.
    static func flushedPages(_ start: UInt64, _ end: UInt64) -> (start: UInt64, end: UInt64)? {
        let first = start & ~0xfff
        if end == .max { return (first, .max) }
        guard end > start else { return nil }
        let last = start &+ ((end &- start &- 1) & ~0xfff)   // the last address the loop flushes
        return (first, last & ~0xfff >= UInt64.max - 0xfff ? .max : (last & ~0xfff) + 0x1000)
    }

    // MARK: - The static key and the gate

    /// iommu_sva_present: on exactly while an IOMMU may walk an mm's tables.
    @inlinable public var svaPresent: Bool { svakit_iommu_sva_present(cHandle) != 0 }

    /// iommu_sva_invalidate_kva_range: the gate. With nothing bound it is one
    /// relaxed load and a not-taken branch; Swift then calls the slow path
    /// directly (C callers get the same inline test from the header).
    /// `end` is exclusive; UInt64.max means all. Returns whether any IOMMU
    /// was invalidated.
    @discardableResult
    public func invalidateKernelRange(_ start: UInt64, _ end: UInt64) -> Bool {
        guard _slowPath(svaPresent) else { return false }
        return sva.invalidateKernelRange(start, end)
    }
}
