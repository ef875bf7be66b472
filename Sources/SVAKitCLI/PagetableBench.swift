// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit

/// ns per 4 KiB map, unmap and software translate (hot: a 16 MiB window
/// walked again and again; cold: random order over every mapped page), and
/// what the model costs the host per simulated frame.
struct PagetableBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "pagetable", abstract: "Map, unmap and software translate of 4 KiB pages.")
    static let benchName = "pagetable"
    /// Up to 64 GiB of kernel virtual space from the benchmark's base, well
    /// inside vmalloc space with 4 levels.
    static let pagesRange = 1...(1 << 24)

    @OptionGroup var memory: MemoryOptions
    @Option(help: "4 KiB pages mapped for the map/unmap/cold-walk phases (\(range(pagesRange))).")
    var pages: Int = 1 << 20
    @OptionGroup var output: BenchOutput

    func validate() throws { try check(pages, in: Self.pagesRange, "--pages") }

    struct Config: Encodable {
        var simulatedGib: Int
        var pagingLevels: Int
        var pages: Int
        var hotWindowPages: Int
    }

    var hotPages: Int { min(4096, pages) }

    var benchConfig: Config {
        Config(simulatedGib: memory.gib, pagingLevels: memory.levels, pages: pages, hotWindowPages: hotPages)
    }

    func measure(_ progress: Progress) throws -> Metrics {
        let config = memory.config
        let m = try Machine(config)
        let base = m.layout.vmallocStart + (64 << 30)
        let residentBoot = MachineFigures(m).residentBytes

        var t0 = nowNs()
        for i in 0..<pages {
            try m.map(base + UInt64(i) << 12, to: UInt64(i % config.frames) << 12)
            if i & 0xffff == 0 { progress.update("pagetable: mapping, \(i) of \(pages) pages") }
        }
        let mapNs = Double(nowNs() - t0) / Double(pages)

        // Hot: 4096 pages (8 PTE tables) translated repeatedly.
        progress.update("pagetable: hot translations")
        let hotRounds = max(1, 4_000_000 / hotPages)
        var hotBest = Double.infinity
        for _ in 0..<3 {
            var sum: UInt64 = 0
            t0 = nowNs()
            for _ in 0..<hotRounds {
                for i in 0..<hotPages { sum &+= try m.translate(base + UInt64(i) << 12).physicalAddress ?? 0 }
            }
            hotBest = min(hotBest, Double(nowNs() - t0) / Double(hotRounds * hotPages))
            blackHole(sum)
        }

        // Cold: a random permutation of every mapped page.
        progress.update("pagetable: cold translations")
        var order = Array(0..<pages)
        var rng = UInt64(0x5eed)
        for i in stride(from: pages - 1, to: 0, by: -1) {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            order.swapAt(i, Int((rng >> 33) % UInt64(i + 1)))
        }
        var sum: UInt64 = 0
        t0 = nowNs()
        for i in order { sum &+= try m.translate(base + UInt64(i) << 12).physicalAddress ?? 0 }
        let coldNs = Double(nowNs() - t0) / Double(pages)
        blackHole(sum)

        let mapped = MachineFigures(m)
        progress.update("pagetable: unmapping")
        t0 = nowNs()
        for i in 0..<pages { try m.unmap(base + UInt64(i) << 12) }
        let unmapNs = Double(nowNs() - t0) / Double(pages)

        var metrics = Metrics()
        metrics.add("ns_per_map_4k", mapNs, "ns")
        metrics.add("ns_per_unmap_4k", unmapNs, "ns")
        metrics.add("ns_per_translate_hot", hotBest, "ns")
        metrics.add("ns_per_translate_cold", coldNs, "ns")
        metrics.add("simulated_gib", count: memory.gib, "GiB")
        metrics.add("metadata_bytes_per_frame", count: mapped.metadataBytesPerFrame, "B")
        metrics.add("host_bytes_resident_after_boot", count: residentBoot, "B")
        metrics.add("host_bytes_resident_mapped", count: mapped.residentBytes, "B")
        metrics.add("kernel_tables", count: mapped.kernelTables, "frames")
        return metrics
    }
}
