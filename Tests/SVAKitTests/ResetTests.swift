// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SVAKit
@_spi(Benchmarks) import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
import SVAKitScenarios

/// Machine.reset (svakit_machine_reset): a reset machine is a new one.
/// Each test runs a whole scenario on a machine, resets it, and compares it
/// with a machine just built from the same configuration: every frame's
/// bytes and descriptor, the counters, the event log, the audit; then runs
/// the scenario again on both and compares what the two runs saw. A reset
/// that left any of it behind fails here (and in the fuzzer's differential
/// replay, `SVAKIT_FUZZ_RESET_CHECK=1` in scripts/fuzz.sh).
@Suite struct ResetTests {
    /// 64 MiB: the whole memory is compared byte by byte.
    static let frames = 1 << 14

    static func config(_ mode: FreeMode, debug: IOMMUDebugMode = .off) -> MachineConfig {
        var c = MachineConfig(frames: frames, eventLogCapacity: 1 << 12, freeMode: mode, workMode: .manual)
        c.iommuDebugPagealloc = debug
        return c
    }

    /// Everything a program can observe of a machine at rest, but the host's
    /// resident bytes.
    struct Image: Equatable {
        var stats: MachineStats
        var events: [Event]
        var reports: UInt64
        var svaPresent: Bool
        var audit: [String]
        /// fail_nth's count of allocations (boot's, on a new machine);
        /// reading it rearms, on both machines alike.
        var allocationsCounted: Int

        init(_ m: Machine) throws {
            stats = m.stats
            events = m.events()
            reports = m.reportCount
            svaPresent = m.svaPresent
            audit = m.audit()
            allocationsCounted = m.failNthAllocation(0)
        }

        static func == (a: Image, b: Image) -> Bool {
            a.stats == b.stats && a.events == b.events && a.reports == b.reports && a.svaPresent == b.svaPresent
                && a.audit == b.audit && a.allocationsCounted == b.allocationsCounted
        }
    }

    /// The first difference, for the failure message.
    static func difference(_ a: Image, _ b: Image) -> String {
        if a.stats != b.stats { return "stats \(a.stats) vs \(b.stats)" }
        if a.events != b.events { return "events: \(a.events.count) vs \(b.events.count)" }
        return "reports \(a.reports)/\(b.reports), key \(a.svaPresent)/\(b.svaPresent), audit \(a.audit)/\(b.audit), "
            + "fail_nth count \(a.allocationsCounted)/\(b.allocationsCounted)"
    }

    /// The first frame whose bytes or descriptor differ between two
    /// machines of the same size: memcmp of all memory and all descriptors
    /// (a page nobody touched reads as zeros), then frame by frame.
    static func firstDifferentFrame(_ a: Machine, _ b: Machine) -> String? {
        let n = a.config.frames
        let da = UnsafeRawPointer(a.frames.memory.descs), db = UnsafeRawPointer(b.frames.memory.descs)
        let stride = MemoryLayout<Ptdesc>.stride
        if memcmp(da, db, n * stride) != 0,
           let f = (0..<n).first(where: { memcmp(da + $0 * stride, db + $0 * stride, stride) != 0 }) {
            return "the descriptor of pfn \(f)"
        }
        return a._withUnsafeMemory { x in
            b._withUnsafeMemory { y in
                guard memcmp(x, y, n << 12) != 0 else { return nil }
                return (0..<n).first { memcmp(x + ($0 << 12), y + ($0 << 12), 4096) != 0 }.map { "the bytes of pfn \($0)" }
            }
        }
    }

    /// Runs `body` on a used machine after a reset and on a new one, and
    /// expects the same machine before and after, and the same results.
    func expectResetIsNew<R: Equatable>(_ config: MachineConfig, _ body: (Machine) throws -> R) throws {
        let used = try Machine(config)
        let first = try body(used)
        #expect(used.framesWrittenSinceReset > 0)
        let restored = try used.reset()
        #expect(restored > 0)
        #expect(used.framesWrittenSinceReset == 0)
        let fresh = try Machine(config)
        let a = try Image(used), b = try Image(fresh)
        #expect(a == b, "after reset: \(Self.difference(a, b))")
        #expect(Self.firstDifferentFrame(used, fresh) == nil, "a frame differs")
        #expect(a.audit == [])
        let again = try body(used), onFresh = try body(fresh)
        #expect(again == onFresh && again == first)
        let c = try Image(used), d = try Image(fresh)
        #expect(c == d, "after the second run: \(Self.difference(c, d))")
        #expect(Self.firstDifferentFrame(used, fresh) == nil, "a frame differs")
    }

    /// What a seed scenario's run saw.
    struct Seen: Equatable {
        var verdict: Verdict, reports: Int, invalidations: Int, deferred: Int
        init(_ o: ScenarioOutcome) {
            verdict = o.verdict
            reports = o.reports.count
            invalidations = o.invalidations
            deferred = o.framesDeferred
        }
    }

    @Test(arguments: ScenarioName.allCases, [FreeMode.immediate, .complete])
    func aSeedScenarioOnAResetMachineIsItsRunOnANewOne(_ name: ScenarioName, mode: FreeMode) throws {
        // 1 GiB, as the scenarios assume; 2 for the one that removes the last GiB.
        var config = Self.config(mode)
        config.frames = name == .hotRemoveBoot ? 2 * gib : gib
        try expectResetIsNew(config) { m in Seen(try runScenario(name, on: m)) }
    }

    @Test(arguments: DMAScenarioName.allCases, [DMAMode.strict, .lazy, .lazyQuarantine])
    func aDMAScenarioOnAResetMachineIsItsRunOnANewOne(_ name: DMAScenarioName, mode: DMAMode) throws {
        let config = mode.machineConfig(Self.config(.complete, debug: .windowAware))
        try expectResetIsNew(config) { m in
            let o = try runDMAScenario(name, mode: mode, on: m)
            return [o.reports.count, o.invalidations, o.fences, o.secretLeaked ? 1 : 0, o.ownerDataCorrupted ? 1 : 0]
        }
    }

    @Test func hotplugSVAAndHooksAreGoneAfterAReset() throws {
        // 256 MiB: two 128 MiB sections, the upper one removed and added.
        var config = Self.config(.complete)
        config.frames = 1 << 16
        let used = try Machine(config)
        let iommu = try used.addIOMMU(IOMMUConfig())
        let dev = try used.addDevice(iommu: iommu.id, sva: true)
        let mm = try used.createAddressSpace()
        _ = try used.bindSVA(device: dev, mm: mm)
        #expect(used.svaPresent)
        used.setTLBFlushHook { _, _ in }
        try used.hotRemove(pfn: 1 << 15, pages: 1 << 15)
        try used.reset()
        let fresh = try Machine(config)
        let a = try Image(used), b = try Image(fresh)
        #expect(a == b, "after reset: \(Self.difference(a, b))")
        #expect(Self.firstDifferentFrame(used, fresh) == nil, "a frame differs")
        #expect(!used.svaPresent)
        #expect(throws: SVAError.noDevice) { try used.addDevice(iommu: iommu.id, sva: true) }
        #expect(throws: SVAError.noSuchMM) { _ = try used.rootTable(of: mm) }
        // The ids start again where a new machine's do.
        #expect(try used.addIOMMU(IOMMUConfig()).id == iommu.id)
        #expect(try used.createAddressSpace() == mm)
    }

    @Test func aResetCostsWhatWasTouched() throws {
        // 16 GiB: a reset after one vmalloc restores a handful of frames.
        let m = try Machine(MachineConfig(frames: 1 << 22, workMode: .manual))
        #expect(m.framesWrittenSinceReset == 0)
        let va = try m.vmalloc(4096)
        let touched = m.framesWrittenSinceReset
        #expect(touched >= 1 && touched <= 4, "\(touched) frames written by one vmalloc")
        #expect(try m.reset() == touched)
        #expect(m.framesWrittenSinceReset == 0)
        #expect(try m.vmalloc(4096) == va)
    }

    @Test func aMachineWithWorkerThreadsIsNotReset() throws {
        let m = try Machine(MachineConfig(frames: Self.frames, freeMode: .complete, workMode: .thread))
        _ = try m.vmalloc(4096)
        let before = m.stats
        #expect(throws: SVAError.busy) { try m.reset() }
        #expect(m.stats == before)
        #expect(m.audit() == [])
    }
}
