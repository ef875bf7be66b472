// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit

/// The main job. Boots the embedded default machine, shows its layout, then
/// drives every path that frees a kernel page-table frame and prints what the
/// descriptors and the event log remember of each freed table.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Boot the default machine and walk the page-table free paths.")

    @OptionGroup var machine: MachineOptions
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let m = try Machine(machine.config())
        let boot = m.stats
        var rows: [PathRun] = []
        rows.append(try pmdFreePtePage(m))
        rows.append(try pudFreePmdPage(m))
        rows.append(try setMemoryCollapse(m))
        rows.append(try hotRemove(m))

        if json {
            print(JSON.object([
                ("version", .string(SVAKit.version.description)),
                ("machine", .object([("gib", .int(Int(m.config.memoryBytes >> 30))), ("paging_levels", .int(m.layout.levels)),
                                     ("boot_kernel_tables", .int(Int(boot.kernel_tables)))])),
                ("paths", .array(rows.map(\.json))),
            ]).text)
            return
        }
        print("SVAKit \(SVAKit.version): \(m.config.memoryBytes >> 30) GiB, \(m.layout.levels)-level paging, LIFO frame reuse")
        print("  direct map at \(hex(m.layout.directMapBase)) (2 MiB leaves), vmalloc \(hex(m.layout.vmallocStart))..\(hex(m.layout.vmallocEnd))")
        print("  boot: \(boot.kernel_tables) kernel tables (1 root, 256 shared kernel-half tables, the direct map's)")
        print("")
        var t = TextTable(header: ["path", "freed table", "allocated by", "unlink", "flush", "free", "gen", "next alloc reuses it"])
        for r in rows {
            t.rows.append([r.path, "\(hex(UInt64(r.pfn))) L\(r.level)\(r.bootmem ? " boot" : "")", r.allocatedBy,
                           "#\(r.unlinkStep)", r.flushStep.map { "#\($0)" } ?? "-", "#\(r.freeStep)", "\(r.generation)",
                           r.reused ? "yes" : "no"])
        }
        print(t.render())
        print("\nEvery table was unlinked, the CPU TLB flushed, then the frame freed; with LIFO reuse the")
        print("next allocation gets the frame back. The IOMMU model and the deferred freeing build on this.")
    }

    struct PathRun {
        var path: String, pfn: UInt32, level: Int, bootmem: Bool, allocatedBy: String
        var unlinkStep: UInt64, flushStep: UInt64?, freeStep: UInt64, generation: UInt32, reused: Bool
        var json: JSON {
            .object([("path", .string(path)), ("pfn", .int(Int(pfn))), ("level", .int(level)), ("bootmem", .bool(bootmem)),
                     ("allocated_by", .string(allocatedBy)), ("unlink_step", .int(Int(unlinkStep))),
                     ("flush_step", flushStep.map { .int(Int($0)) } ?? .string("none")), ("free_step", .int(Int(freeStep))),
                     ("generation", .int(Int(generation))), ("reused_by_next_alloc", .bool(reused))])
        }
    }

    /// What the log says about the last life of `t`, and whether the next
    /// allocation gets it back.
    func report(_ m: Machine, _ t: TableFrame, path: String, bootmem: Bool = false) throws -> PathRun {
        let h = m.history(of: UInt64(t.pfn.rawValue))
        let alloc = h.last { $0.eventType == .frameAlloc }
        let unlink = h.last { $0.eventType == .tableUnlink }
        let free = h.last { $0.eventType == .frameFree }
        guard let alloc, let unlink, let free else { throw ValidationError("\(path): \(t) was not freed") }
        let flush = m.events(since: unlink.step).first { $0.eventType == .tlbFlush && $0.step < free.step }
        let reused = try m.allocFrames(owner: 0xa77) == t.pfn
        return PathRun(path: path, pfn: t.pfn.rawValue, level: t.level, bootmem: bootmem,
                       allocatedBy: alloc.eventSite.description, unlinkStep: unlink.step, flushStep: flush?.step,
                       freeStep: free.step, generation: free.generation, reused: reused)
    }

    func tableUnder(_ m: Machine, _ va: UInt64, level: Int) throws -> TableFrame {
        guard let s = try m.entrySlot(va, level: level), let t = m.table(pointedToBy: s) else {
            throw ValidationError("no table under \(hex(va)) at level \(level)")
        }
        return t
    }

    func pmdFreePtePage(_ m: Machine) throws -> PathRun {
        let va = try m.vmalloc(4096)
        let t = try tableUnder(m, va, level: 2)
        try m.vfree(va)
        _ = try m.vmallocHuge(2 << 20)
        return try report(m, t, path: "pmd_free_pte_page")
    }

    func pudFreePmdPage(_ m: Machine) throws -> PathRun {
        let base = m.layout.vmallocStart + (8 << 30)
        try m.map(base, to: 0)
        let pmd = try tableUnder(m, base, level: 3)
        try m.vunmap(base, size: 4096)
        try m.vmapHuge(base, phys: 0, size: .size1G)
        return try report(m, pmd, path: "pud_free_pmd_page")
    }

    func setMemoryCollapse(_ m: Machine) throws -> PathRun {
        let va = try m.directMapAddress(64 << 20)
        try m.setMemory(va, pages: 1, clear: PageTableEntry.writable)
        let t = try tableUnder(m, va, level: 2)
        try m.setMemory(va, pages: 1, set: PageTableEntry.writable)
        try m.collapseLargePages(va)
        return try report(m, t, path: "set_memory collapse")
    }

    func hotRemove(_ m: Machine) throws -> PathRun {
        let frames = UInt64(m.config.frames)
        let first = frames - (1 << 18)
        let va = try m.directMapAddress(first << 12)
        let pmd = try tableUnder(m, va, level: 3)
        let bootmem = try m.descriptor(UInt64(pmd.pfn.rawValue)).ptFlags.contains(.bootmem)
        try m.hotRemove(pfn: first, pages: 1 << 18)
        let run = try report(m, pmd, path: "memory hot-remove", bootmem: bootmem)
        try m.hotAdd(pfn: first, pages: 1 << 18)
        return run
    }
}
