// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The DMA API's machine-wide options (docs/KERNEL-MODEL.md §4.1).
package struct DMAPolicy: Sendable {
    /// iommu.strict=1: every translated default domain is DMA (strict);
    /// otherwise DMA-FQ (lazy), x86's default.
    package var strict: Bool
    /// Park frees of frames a lazy unmap covered until their flush is over.
    package var quarantine: Bool
    /// Simulated CPUs: per-CPU flush queues and IOVA caches.
    package var cpus: Int
    /// CONFIG_HZ: the flush-queue timer's jiffies.
    package var hz: Int
    /// Timers run on a thread (true) or when the caller says (manual mode).
    package var timerThread: Bool
    /// The swiotlb pool's slots (swiotlb=<slabs>; 0: no swiotlb).
    package var swiotlbSlabs = SWIOTLB.defaultSlabs
    /// dma-iommu bounces an untrusted device's sub-granule buffers (since
    /// 82612d66d51d); false is the kernel before it.
    package var untrustedBounce = true
    /// What an unmap dma-debug cannot match does.
    package var dmaDebug = DMADebugMode.refuse
    /// Monotonic nanoseconds (injectable for tests).
    package var clock: @Sendable () -> UInt64 = monotonicNanoseconds

    package init(strict: Bool, quarantine: Bool, cpus: Int, hz: Int, timerThread: Bool,
                 swiotlbSlabs: Int = SWIOTLB.defaultSlabs, untrustedBounce: Bool = true,
                 dmaDebug: DMADebugMode = .refuse, clock: @escaping @Sendable () -> UInt64 = monotonicNanoseconds) {
        self.strict = strict
        self.quarantine = quarantine
        self.cpus = cpus
        self.hz = hz
        self.timerThread = timerThread
        self.swiotlbSlabs = swiotlbSlabs
        self.untrustedBounce = untrustedBounce
        self.dmaDebug = dmaDebug
        self.clock = clock
    }
}

/// Why a device's default domain got the type it got, as Linux's boot log
/// says it ("iommu: DMA domain TLB invalidation policy: lazy mode").
public enum DMAPolicyReason: UInt32, Sendable, CustomStringConvertible {
    /// Lazy: the machine's default (x86's IOMMU_DEFAULT_DMA_LAZY).
    case lazyDefault = 0
    /// Strict: the machine was configured strict (iommu.strict=1).
    case strictConfigured = 1
    /// Strict: the device is untrusted (an external-facing port).
    case untrustedDevice = 2
    /// Strict: the IOMMU cannot defer flushes (no IOMMU_CAP_DEFERRED_FLUSH,
    /// or caching mode under virtualisation).
    case noDeferredFlush = 3

    /// The boot-log line.
    public var description: String {
        switch self {
        case .lazyDefault: "DMA domain TLB invalidation policy: lazy mode"
        case .strictConfigured: "DMA domain TLB invalidation policy: strict mode (set via configuration)"
        case .untrustedDevice: "untrusted device: strict mode"
        case .noDeferredFlush: "IOMMU batching disallowed: strict mode"
        }
    }
}

/// What an unmap that matches no live mapping does: another size,
/// direction or device than the map's, or an address nothing mapped
/// (dma-debug's check_unmap, kernel/dma/debug.c). docs/KERNEL-MODEL.md §4.3d.
public enum DMADebugMode: UInt32, Sendable, CaseIterable {
    /// Beyond Linux (the default): refused, with nothing changed, so a
    /// harness's bad input never corrupts the machine.
    case refuse = 0
    /// Linux with CONFIG_DMA_API_DEBUG: iommu_dma_unmap_page goes ahead with
    /// the caller's address and size (the range is unmapped and its IOVA
    /// freed as given), then dma-debug reports the mismatch
    /// (`EventType/dmaDebugError`) and forgets the entry it found. Debian
    /// builds without dma-debug: the same unmap, unreported.
    case linux = 1
}
