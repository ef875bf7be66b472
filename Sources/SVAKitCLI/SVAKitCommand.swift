// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit

@main
struct SVAKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svakit",
        abstract: "A model of how Linux stops DMA use-after-free through SVA IOMMUs.",
        version: SVAKit.version.description,
        subcommands: [Demo.self, Run.self, Bench.self])
}

/// Options shared by the commands that build a machine.
struct MachineOptions: ParsableArguments {
    @Option(help: "Simulated memory in GiB.") var gib: Int = 16
    @Option(help: "Paging levels: 4 or 5.") var levels: Int = 4

    func config() -> MachineConfig {
        MachineConfig(frames: gib << 18, pagingLevels: levels)
    }
}
