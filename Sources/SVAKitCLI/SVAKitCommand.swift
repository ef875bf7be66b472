// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit

@main
struct SVAKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svakit",
        abstract: "A model of how Linux stops DMA use-after-free through SVA IOMMUs.",
        version: SVAKit.version.description,
        subcommands: [Demo.self, Run.self, Bench.self, DMAMapBenchmark.self, Explore.self])
}

/// The simulated memory (demo, run, bench pagetable). The ranges are what
/// `MachineConfig` accepts (Sources/SVAKit/Machine/MachineConfig.swift):
/// frames a multiple of 1024 up to 2^32 - 1024, so whole GiB from 1 to
/// 16383, and 4 or 5 paging levels.
struct MemoryOptions: ParsableArguments {
    static let gibRange = 1...16383

    @Option(help: "Simulated memory in GiB (\(range(gibRange))).") var gib: Int = 16
    @Option(help: "Paging levels: 4 or 5.") var levels: Int = 4

    func validate() throws {
        try check(gib, in: Self.gibRange, "--gib")
        guard levels == 4 || levels == 5 else {
            throw ValidationError("--levels must be 4 or 5 (got \(levels))")
        }
    }

    var config: MachineConfig { MachineConfig(gib: gib, levels: levels, pasidBits: 20) }
}

/// The machine of the commands that bind devices (demo, run): memory and the
/// PASID space, 1 to 20 bits as `MachineConfig` accepts.
struct MachineOptions: ParsableArguments {
    static let pasidBitsRange = 1...20

    @OptionGroup var memory: MemoryOptions
    @Option(help: "PASID width in bits (\(range(pasidBitsRange))); PASIDs are 1 ..< 2^bits.")
    var pasidBits: Int = 20

    /// The scenarios need 2 GiB: hot-remove-boot takes the last GiB offline,
    /// which must not be the memory the kernel itself lives in.
    static let scenarioGibRange = 2...MemoryOptions.gibRange.upperBound

    func validate() throws {
        try check(memory.gib, in: Self.scenarioGibRange, "--gib")
        try check(pasidBits, in: Self.pasidBitsRange, "--pasid-bits")
    }

    var config: MachineConfig { MachineConfig(gib: memory.gib, levels: memory.levels, pasidBits: pasidBits) }
}

/// "1...16383" as the help and the messages write a range.
func range(_ r: ClosedRange<Int>) -> String { "\(r.lowerBound)...\(r.upperBound)" }

/// A message naming the option, its valid range and the value given.
func check(_ value: Int, in r: ClosedRange<Int>, _ option: String) throws {
    guard r.contains(value) else {
        throw ValidationError("\(option) must be in \(range(r)) (got \(value))")
    }
}

/// A failure after the options were accepted, printed as its message.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
