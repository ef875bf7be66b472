// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

// The C form of the machine's configuration (struct svakit_config) and back:
// only the C glue converts; the Swift types know nothing of C.

extension MachineConfig {
    /// Reads the C configuration.
    public init(_ c: svakit_config) throws(SVAError) {
        let reuse: ReusePolicy
        switch c.reuse_policy {
        case UInt32(SVAKIT_REUSE_LIFO.rawValue): reuse = .lifo
        case UInt32(SVAKIT_REUSE_FIFO.rawValue): reuse = .fifo
        case UInt32(SVAKIT_REUSE_RANDOM.rawValue): reuse = .random(seed: c.seed)
        default: throw .invalidArgument
        }
        // enum svakit_work_mode: bit 0 who runs the work, bit 1 the batched
        // schedule (beyond Linux).
        guard c.frames <= UInt64(Int.max), c.direct_gbpages <= 1, c.dma_strict <= 1, c.dma_quarantine <= 1,
              let kva = KVAInvalidation(rawValue: c.kva_invalidation),
              let debug = IOMMUDebugMode(rawValue: c.iommu_debug_pagealloc),
              let free = FreeMode(rawValue: c.free_mode), c.work_mode <= 3,
              let work = WorkMode(rawValue: c.work_mode & 1),
              let schedule = DeferralSchedule(rawValue: c.work_mode >> 1)
        else { throw .invalidArgument }
        self.init(frames: Int(c.frames), pagingLevels: Int(c.paging_levels), reuse: reuse,
                  eventLogCapacity: Int(c.event_log_capacity), kvaInvalidation: kva,
                  pasidBits: Int(c.pasid_bits), reportLogCapacity: Int(c.report_log_capacity),
                  freeMode: free, workMode: work, maxPending: Int(c.max_pending))
        deferralSchedule = schedule
        kworkerLatencyMicros = Int(c.kworker_latency_us)
        directGbpages = c.direct_gbpages != 0
        dmaStrict = c.dma_strict != 0
        dmaQuarantine = c.dma_quarantine != 0
        iommuDebugPagealloc = debug
        if c.cpus != 0 { cpus = Int(c.cpus) }  // 0: the default, as for a field that was reserved
        if c.hz != 0 { hz = Int(c.hz) }
        guard let dd = DMADebugMode(rawValue: c.dma_debug) else { throw .invalidArgument }
        dmaDebug = dd
        try applyCMitigation(c.mitigation)
    }

    /// The C form of this configuration.
    public var cValue: svakit_config {
        var seed: UInt64 = 0
        if case .random(let s) = reuse { seed = s }
        return svakit_config(frames: UInt64(frames), seed: seed, paging_levels: UInt32(pagingLevels),
                             reuse_policy: reuse.cValue, event_log_capacity: UInt32(eventLogCapacity),
                             kva_invalidation: kvaInvalidation.rawValue, pasid_bits: UInt32(pasidBits),
                             report_log_capacity: UInt32(reportLogCapacity), free_mode: freeMode.rawValue,
                             work_mode: deferralSchedule.rawValue << 1 | workMode.rawValue,
                             max_pending: UInt32(maxPending),
                             dma_strict: dmaStrict ? 1 : 0, dma_quarantine: dmaQuarantine ? 1 : 0,
                             cpus: UInt32(truncatingIfNeeded: cpus),
                             iommu_debug_pagealloc: iommuDebugPagealloc.rawValue, mitigation: cMitigation,
                             direct_gbpages: directGbpages ? 1 : 0,
                             kworker_latency_us: UInt32(clamping: kworkerLatencyMicros),
                             hz: UInt32(clamping: hz), dma_debug: dmaDebug.rawValue)
    }
}

extension MachineConfig {
    /// Applies svakit_config.mitigation: 0 leaves the knobs as they are;
    /// another value must agree with them (or find them at their defaults).
    mutating func applyCMitigation(_ raw: UInt32) throws(SVAError) {
        guard raw != 0 else { return }
        guard let m = Mitigation(rawValue: raw) else { throw .invalidArgument }
        switch m {
        case .deferredFree: guard kvaInvalidation == .none else { throw .invalidArgument }
        case .flushOnKernelTLBFlush: guard freeMode == .immediate else { throw .invalidArgument }
        default: guard freeMode == .immediate && kvaInvalidation == .none else { throw .invalidArgument }
        }
        mitigation = m
    }

    /// svakit_config.mitigation for this configuration: 0 when the knobs
    /// say everything (none, deferred-free, flush-on-kernel-tlb-flush), the
    /// design otherwise; so a round trip through C is exact.
    var cMitigation: UInt32 { pageTableDefence == .none ? 0 : mitigation.rawValue }
}

extension ReusePolicy {
    /// enum svakit_reuse_policy.
    var cValue: UInt32 {
        switch self {
        case .lifo: UInt32(SVAKIT_REUSE_LIFO.rawValue)
        case .fifo: UInt32(SVAKIT_REUSE_FIFO.rawValue)
        case .random: UInt32(SVAKIT_REUSE_RANDOM.rawValue)
        }
    }
}
