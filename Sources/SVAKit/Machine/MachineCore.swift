// SPDX-License-Identifier: Apache-2.0

/// Everything the machine's memory lock protects: frame contents and
/// descriptors, the allocator, every page table, the address spaces, the
/// vmalloc area and the event log. `Machine` owns exactly one, inside a Mutex;
/// all methods here run with that lock held and never call out of the engine.
///
/// `@unchecked Sendable`: the raw memory inside is reachable only through
/// `Machine.core`, so the Mutex is what makes sharing it safe.
///
/// Not `~Copyable`, though it owns raw memory: with a ~Copyable MachineCore
/// the Swift 6.3.1 compiler emits invalid IR under -sanitize=thread (LLVM
/// verifier: "Invalid bitcast" in the access instrumentation of methods that
/// take the core as a guaranteed parameter), and CI runs the stress test
/// under ThreadSanitizer. It lives only inside Machine's Mutex and is never
/// copied out; Machine.deinit releases its resources.
@usableFromInline
struct MachineCore: @unchecked Sendable {
    let memory: PhysicalMemory
    var allocator: FrameAllocator
    var events: EventLog
    let layout: AddressLayout
    /// init_mm's root; its entries 256...511 are the shared kernel half.
    var kernelRoot = TableFrame(pfn: .none, level: 4)
    /// Root table of each address space, by id; `.none` once destroyed.
    /// Id 0 is init_mm. Ids are never reused.
    var mmRoots: [PFN] = []
    var vmalloc: VmallocSpace
    var counters = Counters()
    let freeMode: FreeMode
    let traceWalks: Bool
    var deferred = DeferredList()
    /// Told of every page-table frame that returns to the allocator, with
    /// this lock held.
    var tableFreeHook: TableFreeHook?

    struct Counters {
        var allocs = 0, frees = 0
        var kernelTables = 0, userTables = 0, dataFrames = 0
        var offlineFrames = 0
        /// Offline frames in virgin memory (the allocator counts those as its own).
        var offlineVirgin = 0
        var tlbFlushes = 0
    }

    /// Returns the simulated memory and the log to the host; Machine.deinit
    /// calls it once, as the core's only owner.
    func releaseResources() {
        memory.unmap()
        events.deallocate()
    }

    private init(memory: PhysicalMemory, config: MachineConfig) {
        self.memory = memory
        allocator = FrameAllocator(frames: config.frames, policy: config.reuse)
        events = EventLog(capacity: config.eventLogCapacity)
        layout = AddressLayout(levels: config.pagingLevels)
        vmalloc = VmallocSpace(start: layout.vmallocStart, end: layout.vmallocEnd)
        freeMode = config.freeMode
        traceWalks = config.traceWalks
    }

    /// A booted machine core.
    static func boot(_ config: MachineConfig) throws(SVAError) -> MachineCore {
        var core = MachineCore(memory: try PhysicalMemory(frames: config.frames), config: config)
        do throws(SVAError) {
            try core.boot()
        } catch {
            core.releaseResources()
            throw error
        }
        return core
    }

    var memoryBytes: UInt64 { UInt64(memory.frameCount) << 12 }

    func checkFrame(_ pfn: UInt64) throws(SVAError) -> PFN {
        guard pfn < UInt64(memory.frameCount) else { throw .outOfRange }
        return PFN(Int(pfn))
    }

    func root(of mm: UInt32) throws(SVAError) -> TableFrame {
        guard Int(mm) < mmRoots.count, mmRoots[Int(mm)] != .none else { throw .noSuchMM }
        return TableFrame(pfn: mmRoots[Int(mm)], level: layout.rootLevel)
    }
}
