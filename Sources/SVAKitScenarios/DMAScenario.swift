// SPDX-License-Identifier: Apache-2.0
import SVAKit

/// How a DMA scenario's machine and device unmap: the policies of
/// docs/KERNEL-MODEL.md §4.1, and the quarantine beyond them.
public enum DMAMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// iommu.strict=1: each unmap invalidates and syncs before it returns.
    case strict
    /// DMA-FQ, x86's default: unmaps wait in the flush queue.
    case lazy
    /// Lazy, with frees of frames a lazy unmap still covers parked until
    /// the covering flush (`MachineConfig.dmaQuarantine`).
    case lazyQuarantine = "lazy+quarantine"
    /// A lazy machine, but the device is untrusted, which forces its
    /// default domain strict (`DMAPolicyReason.untrustedDevice`), and
    /// bounces its sub-granule buffers through swiotlb.
    case untrustedStrict = "untrusted-forced-strict"
    /// As ``untrustedStrict`` on **Linux before 82612d66d51d** ("iommu:
    /// Allow the dma-iommu api to use bounce buffers"): strict, but no
    /// bounce (`MachineConfig.untrustedBounce` off). A control, not a mode
    /// any current kernel has.
    case untrustedBeforeBounce = "untrusted-before-bounce"

    /// The raw value: "strict", "lazy", "lazy+quarantine",
    /// "untrusted-forced-strict" or "untrusted-before-bounce".
    public var description: String { rawValue }

    /// `base` with this mode's DMA policy and manual work (the scenario
    /// flushes when its story says, never a timer).
    public func machineConfig(_ base: MachineConfig = MachineConfig()) -> MachineConfig {
        var cfg = base
        cfg.workMode = .manual
        cfg.dmaStrict = self == .strict
        cfg.dmaQuarantine = self == .lazyQuarantine
        cfg.untrustedBounce = self != .untrustedBeforeBounce
        return cfg
    }

    /// Whether the scenario's device is untrusted.
    public var untrustedDevice: Bool { self == .untrustedStrict || self == .untrustedBeforeBounce }
}

/// What a DMA scenario's device achieved, from worst to best.
public enum DMAVerdict: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// The device wrote into a page that belongs to someone else now.
    case corrupted = "CORRUPTED"
    /// The device read the new owner's secret.
    case leaked = "LEAKED"
    /// The oracle reported a use-after-free, and nothing was written or leaked.
    case useAfterFree = "use-after-free"
    /// The device's access after the unmap faulted: the IOMMU stopped it.
    case faulted
    /// No report and no fault: the device reached only its own old buffer,
    /// which nobody else had yet.
    case safe

    /// The raw value.
    public var description: String { rawValue }
}

/// The DMA scenarios (docs/KERNEL-MODEL.md §4.4): a device reaching a data
/// page after its unmap, through the IOTLB entry a lazy unmap leaves.
public enum DMAScenarioName: String, Sendable, CaseIterable {
    /// A driver frees its buffer at once after the unmap; the device writes again.
    case buggyDriverEarlyFree = "buggy-driver-early-free"
    /// An untrusted device reads its old buffer after it went to a new owner.
    case untrustedDeviceReadsReallocatedPage = "untrusted-device-reads-reallocated-page"
    /// A device reads past a 512-byte buffer into the rest of its page
    /// (docs/KERNEL-MODEL.md §4.3b).
    case deviceReadsPastItsBuffer = "device-reads-past-its-buffer"

    /// The story, as `svakit demo` tells it.
    public var story: String {
        switch self {
        case .buggyDriverEarlyFree:
            "a driver maps a buffer bidirectionally, the device writes it, the driver unmaps and frees it at once, "
                + "the page goes to another owner, the device writes again"
        case .untrustedDeviceReadsReallocatedPage:
            "a device reads a buffer, the driver unmaps and frees it, the page goes to an owner with a secret, "
                + "the (malicious) device reads the old address again"
        case .deviceReadsPastItsBuffer:
            "a driver maps a 512-byte buffer at the start of a page whose rest holds a secret, "
                + "the (malicious) device reads the rest of the granule its DMA address is in"
        }
    }
}

/// What a DMA scenario ended with.
public struct DMAScenarioOutcome: Sendable {
    /// The scenario and the mode it ran under.
    public var name: DMAScenarioName, mode: DMAMode
    /// Use-after-free reports the data-page oracle made (not the
    /// sanitizer's page-leak reports, when it runs).
    public var reports: [UAFReport]
    /// The new owner's data was overwritten by the device.
    public var ownerDataCorrupted: Bool
    /// The device read the new owner's secret.
    public var secretLeaked: Bool
    /// The fault that stopped the device's access after the unmap, if any.
    public var finalFault: DMAFault?
    /// The driver's free took effect only after the covering flush (the
    /// quarantine parked it); false when it took effect at once.
    public var freeWaitedForFlush: Bool
    /// Invalidation commands and syncs the IOMMU received, and their
    /// modelled device time in ns (`IOMMUCostModel`).
    public var invalidations: Int, fences: Int, modelledDeviceNs: UInt64

    /// Reports whose device access wrote into the page.
    public var corruptions: Int { reports.filter(\.corruption).count }

    /// The verdict the outcome supports.
    public var verdict: DMAVerdict {
        if ownerDataCorrupted || corruptions > 0 { return .corrupted }
        if secretLeaked { return .leaked }
        if !reports.isEmpty { return .useAfterFree }
        return finalFault != nil ? .faulted : .safe
    }
}

/// One DMA scenario as a row of the table the CLI and the tests share: its
/// name, story, and the verdict each mode where it applies must give.
public struct DMAScenario: Sendable {
    /// The scenario's name (`svakit run NAME`).
    public let name: DMAScenarioName
    /// What happens, in one sentence.
    public let story: String
    /// The verdict under each mode the scenario is run in.
    public let expected: [DMAMode: DMAVerdict]

    /// The modes the scenario is run in, in ``DMAMode`` order.
    public var modes: [DMAMode] { DMAMode.allCases.filter { expected[$0] != nil } }

    /// Both scenarios. Lazy mode lets the device reach the page after its
    /// new owner has it; strict (configured, or forced by an untrusted
    /// device) faults; the quarantine keeps the page from the new owner
    /// until the flush, so the device reaches only its own old buffer.
    public static let all: [DMAScenario] = [
        DMAScenario(name: .buggyDriverEarlyFree, story: DMAScenarioName.buggyDriverEarlyFree.story,
                    expected: [.strict: .faulted, .lazy: .corrupted, .lazyQuarantine: .safe]),
        DMAScenario(name: .untrustedDeviceReadsReallocatedPage,
                    story: DMAScenarioName.untrustedDeviceReadsReallocatedPage.story,
                    expected: [.strict: .faulted, .lazy: .leaked, .lazyQuarantine: .safe, .untrustedStrict: .faulted]),
        // A trusted device is mapped whole granules (strict shown; lazy maps
        // the same); an untrusted one gets a bounce slot with zeroed padding
        // (6.12), which the kernel before 82612d66d51d did not give it.
        DMAScenario(name: .deviceReadsPastItsBuffer, story: DMAScenarioName.deviceReadsPastItsBuffer.story,
                    expected: [.strict: .leaked, .untrustedStrict: .safe, .untrustedBeforeBounce: .leaked]),
    ]

    /// The row for `name`.
    public static func named(_ name: DMAScenarioName) -> DMAScenario { all.first { $0.name == name }! }

    /// Runs it under `mode` on a fresh machine built from
    /// `mode.machineConfig(...)`, step by step (no timer).
    public func run(on m: Machine, mode: DMAMode, iommu: IOMMUConfig = IOMMUConfig()) throws(SVAError)
        -> DMAScenarioOutcome {
        try runDMAScenario(name, mode: mode, on: m, iommu: iommu)
    }
}

/// The new owner's first word in the early-free scenario ("OWNERDAT").
let ownerWord: UInt64 = 0x5441_4452_454E_574F
/// What the device writes: before the unmap, and after it ("DEVWRITE").
let deviceWord: UInt64 = 0x4554_4952_5756_4544

/// Runs a DMA scenario on `m` (built with `mode.machineConfig(...)`): one
/// IOMMU, one device without SVA (untrusted in ``DMAMode/untrustedStrict``)
/// and its default domain; a buffer mapped, touched by the device,
/// unmapped and freed at once, the page allocated to a new owner (LIFO
/// reuse gives it the same frame), and the device's access to the old DMA
/// address. Then the queues are flushed, as the timer would. `config` is
/// the IOMMU's (its profile, say).
public func runDMAScenario(_ name: DMAScenarioName, mode: DMAMode, on m: Machine,
                           iommu config: IOMMUConfig = IOMMUConfig()) throws(SVAError) -> DMAScenarioOutcome {
    let iommu = try m.addIOMMU(config)
    let dev = try m.addDevice(iommu: iommu.id, sva: false, untrusted: mode.untrustedDevice)
    _ = try m.setupDMA(for: dev)
    let before = iommu.counters, reportsBefore = m.reportCount
    if name == .deviceReadsPastItsBuffer {
        // Words 0-63 the buffer, 64-511 the secret.
        let page = try m.allocFrames(owner: 0x5ec)
        for i in 0..<512 { try m.writeWord(page, index: i, i < 64 ? deviceWord : secretWord) }
        let a = try m.dmaMapPage(device: dev, phys: page.physicalAddress, size: 512, direction: .toDevice)
        let r = try m.dmaRead(device: dev, pasid: .noPASID, va: (a & ~0xfff) + 512, count: 8)
        try m.dmaUnmapPage(device: dev, address: a, size: 512, direction: .toDevice)
        m.flushDMAQueues()
        let after = iommu.counters
        return DMAScenarioOutcome(
            name: name, mode: mode, reports: m.reports(from: reportsBefore).filter { !$0.isPageLeak },
            ownerDataCorrupted: false, secretLeaked: r.isSecret, finalFault: r.fault, freeWaitedForFlush: false,
            invalidations: after.invalidations - before.invalidations, fences: after.fences - before.fences,
            modelledDeviceNs: after.modelledDeviceNs - before.modelledDeviceNs)
    }
    let buf = try m.allocFrames(owner: 0xd1)
    try m.writeWord(buf, index: 0, 0)
    let direction: DMADirection = name == .buggyDriverEarlyFree ? .bidirectional : .toDevice
    let a = try m.dmaMapPage(device: dev, phys: buf.physicalAddress, size: 4096, direction: direction)
    // The device uses the buffer: its IOTLB now holds the page.
    let first: DMAFault?
    if name == .buggyDriverEarlyFree {
        first = try deviceWrite(m, dev, a, deviceWord)
    } else {
        first = try m.dmaRead(device: dev, pasid: .noPASID, va: a, count: 8).fault
    }
    precondition(first == nil, "the device's access to a mapped buffer faulted")
    try m.dmaUnmapPage(device: dev, address: a, size: 4096, direction: direction)
    try m.freeFrames(buf)                                   // the driver frees at once
    let parked = try m.descriptor(buf).kind != .free
    // The next allocation: the freed buffer under LIFO, unless parked.
    let owner: PFN
    if name == .buggyDriverEarlyFree {
        owner = try m.allocFrames(owner: 0x0e)
        try m.writeWord(owner, index: 0, ownerWord)
    } else {
        owner = try makeSecret(m)
    }
    var leaked = false, corrupted = false
    let last: DMAFault?
    if name == .buggyDriverEarlyFree {
        last = try deviceWrite(m, dev, a, deviceWord)
        corrupted = try m.readWord(owner, index: 0) != ownerWord
    } else {
        let r = try m.dmaRead(device: dev, pasid: .noPASID, va: a, count: 8)
        leaked = r.isSecret
        last = r.fault
    }
    m.flushDMAQueues()
    let freedNow = try m.descriptor(buf).kind == .free
    let after = iommu.counters
    return DMAScenarioOutcome(
        name: name, mode: mode, reports: m.reports(from: reportsBefore).filter { !$0.isPageLeak },
        ownerDataCorrupted: corrupted,
        secretLeaked: leaked, finalFault: last, freeWaitedForFlush: parked && freedNow,
        invalidations: after.invalidations - before.invalidations, fences: after.fences - before.fences,
        modelledDeviceNs: after.modelledDeviceNs - before.modelledDeviceNs)
}

/// The device writes one word at `address` (without PASID).
private func deviceWrite(_ m: Machine, _ dev: DeviceID, _ address: UInt64, _ word: UInt64) throws(SVAError)
    -> DMAFault? {
    var w = word
    let r: Result<DMAFault?, SVAError> = withUnsafeBytes(of: &w) { b in
        Result { () throws(SVAError) in try m.dmaWrite(device: dev, pasid: .noPASID, va: address, from: b) }
    }
    return try r.get()
}

extension Result where Success == [UInt8], Failure == DMAFault {
    /// The fault, if the access faulted.
    public var fault: DMAFault? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
