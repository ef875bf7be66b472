// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import SVAKit
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA

@Suite struct FrameTests {
    @Test func allocationFillsTheDescriptor() throws {
        let m = try machine()
        let step = m.stats.step
        let pfn = try m.allocFrames(order: 0, owner: 77)
        let d = try m.descriptor(pfn)
        #expect(d.kind == .data)
        #expect(d.owner == 77)
        #expect(d.site == .api)
        #expect(UInt64(d.allocStep) == step)
        #expect(d.generation == 0)
        #expect(try m.rawDescriptor(pfn).pt_list_next == PFN.none.rawValue)
        let h = m.history(of: pfn)
        #expect(h.map(\.type) == [EventType.frameAlloc])
    }

    @Test func freeChangesGenerationAndKeepsHistory() throws {
        let m = try machine()
        let pfn = try m.allocFrames(owner: 5)
        try m.freeFrames(pfn)
        let d = try m.descriptor(pfn)
        #expect(d.kind == .free)
        #expect(d.generation == 1)
        #expect(d.owner == 5, "who allocated it stays readable after the free")
        let h = m.history(of: pfn)
        #expect(h.map(\.type) == [EventType.frameAlloc, EventType.frameFree])
        #expect(h.last?.kind == .data, "the free event says what the frame was")
        #expect(h.last?.generation == 1)
    }

    @Test func lifoHandsBackTheMostRecentlyFreedFrame() throws {
        let m = try machine(reuse: .lifo)
        let a = try m.allocFrames(), b = try m.allocFrames()
        try m.freeFrames(a)
        try m.freeFrames(b)
        #expect(try m.allocFrames() == b)
        #expect(try m.allocFrames() == a)
    }

    @Test func fifoHandsBackTheOldestFreedFrame() throws {
        let m = try machine(reuse: .fifo)
        let a = try m.allocFrames(), b = try m.allocFrames()
        try m.freeFrames(a)
        try m.freeFrames(b)
        // The order-0 list may hold split remainders first; FIFO serves
        // those, then a, then b.
        var got: [PFN] = []
        for _ in 0..<64 {
            let p = try m.allocFrames()
            if p == a || p == b { got.append(p) }
            if got.count == 2 { break }
        }
        #expect(got == [a, b])
    }

    @Test func randomPolicyIsReproducibleFromItsSeed() throws {
        let seed = testSeed("randomPolicyIsReproducibleFromItsSeed")
        func run() throws -> [PFN] {
            let m = try machine(reuse: .random(seed: seed))
            var live = (0..<64).map { _ in try? m.allocFrames() }.compactMap { $0 }
            for p in live.prefix(32) { try m.freeFrames(p) }
            live.removeFirst(32)
            return try (0..<32).map { _ in try m.allocFrames() }
        }
        let first = try run(), second = try run()
        #expect(first == second)
    }

    @Test func ordersAreContiguousAndAligned() throws {
        let m = try machine()
        for order in 0...maxOrder {
            let p = try m.allocFrames(order: order)
            #expect(p.index % (1 << order) == 0, "order \(order) block at \(p) is misaligned")
            let head = try m.descriptor(p)
            #expect(Int(head.order) == order)
            if order > 0 {
                let tail = try m.descriptor(p + ((1 << order) - 1))
                #expect(tail.flags.contains(.tail))
                #expect(tail.kind == .data)
            }
        }
        #expect(m.audit() == [])
    }

    @Test func outOfMemoryIsAnErrorNotACrash() throws {
        let m = try machine(frames: 1 << 12)  // 16 MiB, most of it the boot tables' neighbours
        var n = 0
        while true {
            do throws(SVAError) { _ = try m.allocFrames(order: 0); n += 1 } catch {
                #expect(error == .outOfMemory)
                break
            }
        }
        #expect(n > 0)
        #expect(m.stats.freeFrames == 0)
        expectRefused(m, .outOfMemory) { _ = try m.allocFrames() }
        expectRefused(m, .outOfMemory) { _ = try m.vmalloc(4096) }
    }

    @Test func badFreesAreRefusedAndLeaveTheMachineConsistent() throws {
        let m = try machine()
        let p = try m.allocFrames()
        try m.freeFrames(p)
        expectRefused(m, .doubleFree) { try m.freeFrames(p) }
        expectRefused(m, .notAllocated) { try m.freeFrames(PFN(gib - 1)) }  // never allocated
        let block = try m.allocFrames(order: 2)
        expectRefused(m, .notAllocated) { try m.freeFrames(block + 1) }  // a tail
        expectRefused(m, .outOfRange) { try m.freeFrames(PFN(gib)) }
        let root = try m.rootTable(of: Machine.initMM)
        expectRefused(m, .wrongAPI) { try m.freeFrames(root.pfn) }  // a page table
        try m.freeFrames(block)
        expectRefused(m, .doubleFree) { try m.freeFrames(block + 1) }
        expectRefused(m, .invalidArgument) { _ = try m.allocFrames(order: maxOrder + 1) }
    }

    @Test func frameBytesRoundTripAndAreBoundsChecked() throws {
        let m = try machine()
        let p = try m.allocFrames()
        let bytes: [UInt8] = [1, 2, 3, 4]
        try bytes.withUnsafeBytes { b in try m.writeFrame(p, offset: 4092, from: b) }
        var back = [UInt8](repeating: 0, count: 4)
        try back.withUnsafeMutableBytes { b in try m.readFrame(p, offset: 4092, into: b) }
        #expect(back == bytes)
        expectRefused(m, .invalidArgument) {
            try bytes.withUnsafeBytes { b in try m.writeFrame(p, offset: 4093, from: b) }
        }
        expectRefused(m, .outOfRange) { _ = try m.readWord(PFN(gib), index: 0) }
    }

    @Test func untouchedMemoryCostsNoHostMemory() throws {
        let m = try Machine()  // the 16 GiB default
        #expect(m.config.memoryBytes == 16 << 30)
        #expect(m.stats.metadataBytesPerFrame == 32)
        #expect(m.residentBytes < 4 << 20, "boot touched \(m.residentBytes) bytes of frame contents")
    }
}
