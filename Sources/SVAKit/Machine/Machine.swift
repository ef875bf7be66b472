// SPDX-License-Identifier: Apache-2.0
import CSVAKit
import Synchronization

/// A simulated machine: physical memory with page descriptors, the x86-64
/// page tables of init_mm and of every address space, and the kernel paths
/// that free page-table frames.
///
/// Thread-safe. Two machines share nothing.
/// The worker's way back to its machine without owning it.
final class MachineBackReference: @unchecked Sendable {
    // @unchecked: written once in Machine.init before the worker starts.
    unowned(unsafe) var machine: Machine?
}

public final class Machine: @unchecked Sendable {
    // @unchecked: `handle` is written only in init and deinit; every other
    // mutable field is a Mutex or an Atomic.

    public let config: MachineConfig
    public let layout: AddressLayout

    /// Protects frame contents and descriptors, the allocator, every page
    /// table, the address spaces, the vmalloc area and the event log. Held for
    /// one step of a kernel path at a time, never while calling out.
    let core: Mutex<MachineCore>

    /// Protects the CPU TLB flush hook. Copied out and called with no lock
    /// held, so a hook may call back into the machine.
    let flushHook = Mutex<TLBFlushHook?>(nil)

    /// The C handle: its public prefix (magic, the static key
    /// iommu_sva_present) is read by the header's inline functions; `owner`
    /// points back here.
    @usableFromInline let handle: UnsafeMutablePointer<svakit_machine>

    /// Protects the devices, the per-mm SVA data, domains, bonds, the PASID
    /// allocator and the IOMMU list; serialises every writer of the three
    /// published tables below and of the key. Lock order: taken first, before
    /// any IOMMU's lock and the memory lock.
    let registry: Mutex<RegistryState>
    /// (PASID, IOMMU) of every SVA domain: what the gate's slow path scans,
    /// with no lock (see PublishedWords).
    let svaDomains = PublishedWords()
    /// Unmanaged IOMMU references by id; the registry's `iommus` keeps them
    /// alive for the machine's life.
    let iommuTable = PublishedWords(capacity: 8)
    /// IOMMU index + 1 by device id.
    let deviceTable = PublishedWords()

    /// Protects the bounded log of use-after-free reports.
    let reportLog: Mutex<ReportLog>
    /// Protects the report handler; copied out and called with no lock held.
    let reportHandler = Mutex<ReportHandler?>(nil)
    /// Frame 0 of the simulated memory: fixed for the machine's life, so read
    /// without the memory lock.
    let memoryBase: UnsafeMutableRawPointer

    /// Calls of the gate's slow path (relaxed: a counter, not a lock).
    let kvaSlowCalls = Atomic<Int>(0)
    /// The worker thread of the deferred-free work (nil in manual mode).
    /// Started after init, stopped and drained in deinit.
    let deferredWorker: DeferredWorker?

    /// Keeps the IOMMU objects alive (written under `registry`).
    let iommuObjects = Mutex<[IOMMU]>([])

    /// Called by flush_tlb_kernel_range(start, end) and flush_tlb_all()
    /// (start 0, end UInt64.max) after the entry is cleared and before the
    /// table is freed.
    public typealias TLBFlushHook = @Sendable (_ start: UInt64, _ end: UInt64) -> Void

    public init(_ config: MachineConfig = MachineConfig()) throws(SVAError) {
        try config.validate()
        self.config = config
        layout = AddressLayout(levels: config.pagingLevels)
        let booted = try MachineCore.boot(config)
        memoryBase = booted.memory.bytes
        core = Mutex(booted)
        registry = Mutex(RegistryState(pasidBits: config.pasidBits))
        reportLog = Mutex(ReportLog(capacity: config.reportLogCapacity))
        // The work runs on the worker thread; deinit stops (joins) the
        // thread before any field goes away, so an unretained reference is
        // safe there and keeps the thread from keeping the machine alive.
        let cell = MachineBackReference()
        deferredWorker = config.workMode == .thread ? DeferredWorker { cell.machine?.runDeferredWork() } : nil
        handle = .allocate(capacity: 1)
        handle.initialize(to: svakit_machine(magic: 0, iommu_sva_present: 0, owner: nil))
        handle.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        handle.pointee.magic = SVAKIT_MACHINE_MAGIC
        cell.machine = self
        deferredWorker?.start()
    }

    deinit {
        // Shutdown drains the queue: the worker finishes, then whatever is
        // left is freed here (still behind one invalidation).
        deferredWorker?.stop()
        while core.locked({ $0.deferredPending }) > 0 { runDeferredWork() }
        core.locked { $0.releaseResources() }
        handle.pointee.magic = 0
        handle.deallocate()
    }

    /// The C handle of this machine (valid while the machine lives).
    @inlinable public var cHandle: UnsafeMutablePointer<svakit_machine> { handle }

    // MARK: - Frames

    /// Allocates 2^order contiguous data frames tagged with `owner`.
    public func allocFrames(order: Int = 0, owner: UInt16 = 0) throws(SVAError) -> PFN {
        try core.locked { c throws(SVAError) in
            try c.allocFrames(order: order, kind: .data, site: .api, owner: owner)
        }
    }

    /// Frees a data block (not a page table).
    public func freeFrames(_ pfn: PFN) throws(SVAError) {
        try core.locked { c throws(SVAError) in try c.freeData(try c.checkFrame(UInt64(pfn.rawValue)), site: .api) }
    }

    /// A copy of the frame's descriptor.
    public func descriptor(_ pfn: PFN) throws(SVAError) -> Ptdesc {
        try core.locked { c throws(SVAError) in c.memory[try c.checkFrame(UInt64(pfn.rawValue))] }
    }

    public func readFrame(_ pfn: PFN, offset: Int, into buf: UnsafeMutableRawBufferPointer) throws(SVAError) {
        try core.locked { c throws(SVAError) in
            let f = try c.checkFrame(UInt64(pfn.rawValue))
            guard offset >= 0, offset <= pageSize, buf.count <= pageSize - offset else { throw .invalidArgument }
            if let b = buf.baseAddress { b.copyMemory(from: c.memory.frame(f) + offset, byteCount: buf.count) }
        }
    }

    public func writeFrame(_ pfn: PFN, offset: Int, from buf: UnsafeRawBufferPointer) throws(SVAError) {
        try core.locked { c throws(SVAError) in
            let f = try c.checkFrame(UInt64(pfn.rawValue))
            guard offset >= 0, offset <= pageSize, buf.count <= pageSize - offset else { throw .invalidArgument }
            if let b = buf.baseAddress { (c.memory.frame(f) + offset).copyMemory(from: b, byteCount: buf.count) }
        }
    }

    /// Reads one 64-bit word of a frame (e.g. a page-table entry).
    public func readWord(_ pfn: PFN, index: Int) throws(SVAError) -> UInt64 {
        try core.locked { c throws(SVAError) in
            guard index >= 0, index < 512 else { throw .invalidArgument }
            return c.memory.entry(try c.checkFrame(UInt64(pfn.rawValue)), index).pointee
        }
    }

    /// Writes one 64-bit word of a frame: what an attacker who owns a reused
    /// frame does.
    public func writeWord(_ pfn: PFN, index: Int, _ value: UInt64) throws(SVAError) {
        try core.locked { c throws(SVAError) in
            guard index >= 0, index < 512 else { throw .invalidArgument }
            c.memory.entry(try c.checkFrame(UInt64(pfn.rawValue)), index).pointee = value
        }
    }

    // MARK: - Address spaces and mappings

    /// init_mm, the owner of the shared kernel half.
    public static let initMM: UInt32 = 0

    public func createAddressSpace() throws(SVAError) -> UInt32 {
        try core.locked { c throws(SVAError) in try c.createMM() }
    }

    /// Tears an mm down. Refused with `.busy` while a device is attached to
    /// it: unbind first (in Linux the bond keeps the mm alive).
    public func destroyAddressSpace(_ mm: UInt32) throws(SVAError) {
        try registry.locked { r throws(SVAError) in
            _ = try rootTable(of: mm)
            guard mm != Machine.initMM else { throw .wrongAPI }
            try r.checkDetached(mm)
            try core.locked { c throws(SVAError) in try c.destroyMM(mm) }
            r.dropPASID(of: mm)
        }
    }

    public func rootTable(of mm: UInt32) throws(SVAError) -> TableFrame {
        try core.locked { c throws(SVAError) in try c.root(of: mm) }
    }

    /// Maps [va, va + size) to phys with one leaf. Kernel addresses go through
    /// `Machine.initMM`, user addresses through a process mm.
    public func map(_ va: UInt64, to phys: UInt64, size: PageSize = .size4K,
                    prot: UInt64 = PageTableEntry.writable, in mm: UInt32 = initMM) throws(SVAError) {
        try core.locked { c throws(SVAError) in
            try c.map(mm: mm, va: va, phys: phys, size: size, prot: prot, site: .map)
        }
    }

    /// Clears the leaf that maps exactly [va, va + size); tables stay. In a
    /// bound mm the MMU notifier then invalidates that range on its IOMMUs.
    public func unmap(_ va: UInt64, size: PageSize = .size4K, in mm: UInt32 = initMM) throws(SVAError) {
        try core.locked { c throws(SVAError) in try c.unmap(mm: mm, va: va, size: size) }
        if mm != Machine.initMM { mmInvalidateRange(mm, va, va + size.bytes) }
    }

    /// The software walk of `va` in `mm`.
    public func translate(_ va: UInt64, in mm: UInt32 = initMM) throws(SVAError) -> Translation {
        try core.locked { c throws(SVAError) in
            guard c.layout.isCanonical(va) else { throw .outOfRange }
            return c.translate(root: try c.root(of: mm), va: va)
        }
    }

    /// The entry slot at `level` that maps `va` in `mm`, if the tables exist.
    public func entrySlot(_ va: UInt64, level: Int, in mm: UInt32 = initMM) throws(SVAError) -> EntrySlot? {
        try core.locked { c throws(SVAError) in
            guard level >= 1, level <= c.layout.rootLevel else { throw .invalidArgument }
            guard c.layout.isCanonical(va) else { throw .outOfRange }
            return c.lookup(try c.root(of: mm), to: level, va: va)
        }
    }

    /// The table an entry points to (nil for an empty entry or a leaf).
    public func table(pointedToBy slot: EntrySlot) -> TableFrame? {
        core.locked { c in c.child(of: slot) }
    }

    public func entry(_ slot: EntrySlot) -> PageTableEntry {
        core.locked { c in c.entry(slot) }
    }

    // MARK: - CPU TLB

    public func setTLBFlushHook(_ hook: TLBFlushHook?) {
        flushHook.locked { $0 = hook }
    }

    /// flush_tlb_kernel_range: logs the flush; with `.onFlush` (v1 of the
    /// series) calls the IOMMU gate; then runs the hook with no lock held.
    public func flushTLBKernelRange(_ start: UInt64, _ end: UInt64, site: Site = .api) {
        core.locked { c in
            c.counters.tlbFlushes += 1
            c.events.record(.tlbFlush, site: site, va: start, aux: end)
        }
        if config.kvaInvalidation == .onFlush { invalidateKernelRange(start, end) }
        flushHook.locked { $0 }?(start, end)
    }

    /// flush_tlb_all.
    public func flushTLBAll(site: Site = .api) { flushTLBKernelRange(0, .max, site: site) }
}
