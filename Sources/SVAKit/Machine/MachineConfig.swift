// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// How a machine is built. `MachineConfig()` is the embedded default: 16 GiB,
/// 4-level paging, LIFO reuse, a 64 Ki-event log, 20-bit PASIDs, and the
/// unfixed kernel's behaviour (no IOMMU invalidation for kernel addresses).
public struct MachineConfig: Sendable, Equatable {
    /// 4 KiB frames; a multiple of 1024 (4 MiB, the largest block).
    public var frames: Int
    /// 4 or 5.
    public var pagingLevels: Int
    /// Which freed block the allocator hands out next (default LIFO).
    public var reuse: ReusePolicy
    /// Events the ring keeps, 1 ... 2^26; older ones are overwritten.
    public var eventLogCapacity: Int
    /// Who invalidates IOMMUs for kernel addresses (default: nobody).
    public var kvaInvalidation: KVAInvalidation
    /// The machine-wide PASID space is 1 ..< 2^pasidBits.
    public var pasidBits: Int
    /// Use-after-free reports the log keeps, 1 ... 2^20 (the newest).
    public var reportLogCapacity: Int
    /// How kernel page-table frames are freed (default: at once, unfixed).
    public var freeMode: FreeMode
    /// Who runs the deferred-free work (default: a worker thread).
    public var workMode: WorkMode
    /// With `DeferralSchedule/batched` (beyond Linux): deferred frames
    /// past which the freeing caller runs the work itself. Linux's schedule
    /// has no bound and ignores it.
    public var maxPending: Int
    /// When the deferred-free work runs (default: as Linux schedules it).
    public var deferralSchedule = DeferralSchedule.linux
    /// The kworker's scheduling latency, in microseconds (0 ... 1,000,000;
    /// default 0): how long the worker thread, once woken by
    /// `schedule_work()`, waits before it clears pending and takes the
    /// list. Frees in that time join the run. 0 adds nothing to the host's
    /// own wake-up of the thread, which is the latency then. Only stopping
    /// the machine cuts it short (flush_work waits for it, as Linux's
    /// flush_work does not hurry the kworker). Unused in manual mode.
    public var kworkerLatencyMicros = 0
    /// Boot (and hot-add) the direct map with 1 GiB leaves where x86 does
    /// with direct_gbpages (CONFIG_X86_DIRECT_GBPAGES on a CPU with GBPAGES):
    /// every whole GiB but the first, which on a PC holds the legacy holes
    /// below 1 MiB and keeps 2 MiB leaves (adjust_range_page_size_mask,
    /// arch/x86/mm/init.c). Default false: 2 MiB leaves everywhere, as
    /// `nogbpages` boots, which keeps a boot-time PMD table under every GiB
    /// for hot-remove to free (docs/KERNEL-MODEL.md §2.7, §8).
    public var directGbpages = false
    /// Log every IOMMU walk in the event log (for traces; off by default, as
    /// it costs a log write per walk). Swift-only.
    public var traceWalks = false
    /// With `DeferralSchedule/batched` (beyond Linux), the worker gathers
    /// a storm into one batch: once scheduled, it waits until this many
    /// frames are pending or `deferMaxDelayMicros` passed (whichever first;
    /// flush_work does not wait). 1 disables the wait. Swift-only.
    public var deferBatchTarget = 256
    /// With `DeferralSchedule/batched`, the longest the worker waits for
    /// ``MachineConfig/deferBatchTarget``, in microseconds. Swift-only.
    public var deferMaxDelayMicros = 1000
    /// iommu.strict=1: default DMA domains are strict (DMA). Off by default:
    /// lazy (DMA-FQ), x86's default (docs/KERNEL-MODEL.md §4.1). Swift-only.
    public var dmaStrict = false
    /// The quarantine: in lazy mode, a free of a frame whose unmap has not
    /// been flushed yet is parked until it has (beyond Linux). It covers the
    /// frees callers make (``Machine/freeFrames(_:)``, dma_free_coherent);
    /// the kernel paths' own frees (vfree's pages) are not parked.
    public var dmaQuarantine = false
    /// Simulated CPUs for the DMA API's per-CPU queues and caches, 1 ... 256.
    public var cpus = 4
    /// CONFIG_HZ: 100, 250, 300 or 1000 (default 250, Debian's amd64
    /// kernels'). The flush-queue timer waits msecs_to_jiffies(10 ms) in
    /// jiffies of this HZ (docs/KERNEL-MODEL.md §4.2).
    public var hz = 250
    /// What an unmap that matches no live DMA mapping does: refused
    /// (default, beyond Linux) or, `.linux`, made as asked and reported as
    /// dma-debug reports it (docs/KERNEL-MODEL.md §4.3d).
    public var dmaDebug = DMADebugMode.refuse
    /// The swiotlb bounce pool's 2 KiB slots (the `swiotlb=<slabs>` boot
    /// option; default 32768, IO_TLB_DEFAULT_SIZE's 64 MiB), rounded as
    /// swiotlb_init_remap rounds them (a segment of 128, at least 128 per
    /// area, a power of two). The pool is reserved when the first untrusted
    /// device gets a translated default domain. 0: no swiotlb (Linux on an
    /// x86 machine whose memory ends below 4 GiB): an untrusted device's
    /// map of a buffer that does not fill its granules then fails
    /// (docs/KERNEL-MODEL.md §4.3b). 0 ... 2^22. Swift-only.
    public var swiotlbSlabs = SWIOTLB.defaultSlabs
    /// dma-iommu bounces an untrusted device's buffers that do not fill
    /// their granules through swiotlb, padding zeroed (Linux since
    /// 82612d66d51d, "iommu: Allow the dma-iommu api to use bounce
    /// buffers"). false is **Linux before that commit**, kept as the
    /// negative control of the sub-page exposure: the device is mapped the
    /// whole granules the buffer touches. Swift-only.
    public var untrustedBounce = true
    /// The IOMMU_DEBUG_PAGEALLOC sanitizer (default off). Anything but
    /// `.off` on a build without it (``Machine/iommuDebugCompiledIn``) makes
    /// ``Machine/init(_:)`` throw `SVAError/notSupported`.
    public var iommuDebugPagealloc = IOMMUDebugMode.off

    /// What an SVA walk of the kernel half meets (kpti-root, clear-us);
    /// usually set through ``MachineConfig/mitigation``. Default: the mm's
    /// own root, as Linux.
    public var pageTableDefence = PageTableDefence.none

    /// A configuration; the defaults are those of `MachineConfig()`. Not
    /// checked here: ``Machine/init(_:)`` throws `SVAError/invalidArgument` for
    /// values out of bounds.
    public init(frames: Int = 4 << 20, pagingLevels: Int = 4, reuse: ReusePolicy = .lifo,
                eventLogCapacity: Int = 1 << 16, kvaInvalidation: KVAInvalidation = .none,
                pasidBits: Int = 20, reportLogCapacity: Int = 256, freeMode: FreeMode = .immediate,
                workMode: WorkMode = .thread, maxPending: Int = 4096) {
        self.frames = frames
        self.pagingLevels = pagingLevels
        self.reuse = reuse
        self.eventLogCapacity = eventLogCapacity
        self.kvaInvalidation = kvaInvalidation
        self.pasidBits = pasidBits
        self.reportLogCapacity = reportLogCapacity
        self.freeMode = freeMode
        self.workMode = workMode
        self.maxPending = maxPending
    }

    /// Simulated memory in bytes.
    public var memoryBytes: UInt64 { UInt64(frames) << 12 }

    func validate() throws(SVAError) {
        guard frames >= 1 << maxOrder, frames % (1 << maxOrder) == 0,
              frames <= 1 << 32 - 1 << maxOrder,
              pagingLevels == 4 || pagingLevels == 5,
              eventLogCapacity > 0, eventLogCapacity <= 1 << 26,
              pasidBits >= 1, pasidBits <= 20,
              reportLogCapacity > 0, reportLogCapacity <= 1 << 20,
              maxPending >= 1, maxPending <= 1 << 30,
              kworkerLatencyMicros >= 0, kworkerLatencyMicros <= 1_000_000,
              cpus >= 1, cpus <= 256, [100, 250, 300, 1000].contains(hz),
              swiotlbSlabs >= 0, swiotlbSlabs <= 1 << 22
        else { throw .invalidArgument }
        try validateMitigation()
    }
}
