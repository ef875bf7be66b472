// SPDX-License-Identifier: Apache-2.0
import SVAKit

/// ns per 4 KiB map, unmap and software translate (hot: a 16 MiB window
/// walked again and again; cold: random order over every mapped page), and
/// what the model costs the host per simulated frame.
struct PagetableBench {
    let config: MachineConfig
    let pages: Int

    func run() throws -> BenchResult {
        let m = try Machine(config)
        let base = m.layout.vmallocStart + (64 << 30)
        let residentBoot = m.residentBytes

        var t0 = nowNs()
        for i in 0..<pages {
            try m.map(base + UInt64(i) << 12, to: UInt64(i % config.frames) << 12)
        }
        let mapNs = Double(nowNs() - t0) / Double(pages)

        // Hot: 4096 pages (8 PTE tables) translated repeatedly.
        let hotPages = min(4096, pages)
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

        let stats = m.stats
        let residentMapped = m.residentBytes
        t0 = nowNs()
        for i in 0..<pages { try m.unmap(base + UInt64(i) << 12) }
        let unmapNs = Double(nowNs() - t0) / Double(pages)

        return BenchResult(
            name: "pagetable",
            config: [("simulated_gib", .int(Int(config.memoryBytes >> 30))), ("paging_levels", .int(config.pagingLevels)),
                     ("pages", .int(pages)), ("hot_window_pages", .int(hotPages))],
            metrics: [
                ("ns_per_map_4k", mapNs, "ns"),
                ("ns_per_unmap_4k", unmapNs, "ns"),
                ("ns_per_translate_hot", hotBest, "ns"),
                ("ns_per_translate_cold", coldNs, "ns"),
                ("simulated_gib", Double(config.memoryBytes >> 30), "GiB"),
                ("metadata_bytes_per_frame", Double(stats.metadataBytesPerFrame), "B"),
                ("host_bytes_resident_after_boot", Double(residentBoot), "B"),
                ("host_bytes_resident_mapped", Double(residentMapped), "B"),
                ("kernel_tables", Double(stats.kernelTables), "frames"),
            ])
    }
}
