// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Testing
@testable import SVAKitCLI

/// Every option of every subcommand names its default in `--help`, or is a
/// flag or required (issue 20, item 10). Walks the command tree from the
/// root, so a subcommand added later is checked too.
@Suite struct HelpDefaultsTests {
    /// The root and every subcommand under it, with their command paths.
    static func commands(_ type: any ParsableCommand.Type = SVAKitCommand.self,
                         path: String = "svakit") -> [(path: String, type: any ParsableCommand.Type)] {
        [(path, type)] + type.configuration.subcommands.flatMap { sub in
            commands(sub, path: path + " " + sub._commandName)
        }
    }

    /// One option of a help page: its names, its value placeholder if it
    /// takes one, and its text.
    struct Entry {
        var names: [String]
        var value: String?
        var text: String
        /// Its first long name, e.g. `--iommu`.
        var longName: String? { names.first { $0.hasPrefix("--") } }
        var takesValue: Bool { value != nil }

        /// Parses "-t, --threads <threads> Threads, each ... (default: 1)".
        init(_ raw: String) {
            var tokens = raw.split(separator: " ").map(String.init)[...]
            names = []
            while let t = tokens.first, t.hasPrefix("-") {
                names.append(t.hasSuffix(",") ? String(t.dropLast()) : t)
                tokens = tokens.dropFirst()
            }
            if let t = tokens.first, t.hasPrefix("<") {
                value = t
                tokens = tokens.dropFirst()
            }
            text = tokens.joined(separator: " ")
        }
    }

    /// The OPTIONS section of `help`, one entry per option (its wrapped
    /// lines joined).
    static func options(_ help: String) -> [Entry] {
        var raws: [String] = []
        var inOptions = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("OPTIONS:") { inOptions = true; continue }
            guard inOptions else { continue }
            if !line.hasPrefix(" ") { if !line.isEmpty { inOptions = false }; continue }
            if line.hasPrefix("  -") { raws.append(line) } else if !raws.isEmpty { raws[raws.count - 1] += " " + line }
        }
        return raws.map(Entry.init)
    }

    @Test func theTreeIsWalked() {
        let paths = Self.commands().map(\.path)
        #expect(paths.contains("svakit run") && paths.contains("svakit bench walk")
                    && paths.contains("svakit dma-map-benchmark"), "\(paths)")
    }

    @Test(arguments: commands().map(\.path))
    func everyOptionNamesItsDefault(path: String) throws {
        let type = try #require(Self.commands().first { $0.path == path }?.type)
        let help = SVAKitCommand.helpMessage(for: type, columns: 200)
        let usage = help.split(separator: "\n").first { $0.hasPrefix("USAGE:") }.map(String.init) ?? ""
        for entry in Self.options(help) where entry.takesValue {
            let name = try #require(entry.longName, "\(path): \(entry.names)")
            let required = usage.contains(" \(name) <") && !usage.contains("[\(name) <")
            if required { continue }
            #expect(entry.text.contains("(default:") || entry.text.contains("; default:"),
                    "\(path) \(name) names no default: \(entry.text)")
            // An option with named values names its default by one of them
            // (`--iommu` once showed `default: 0`, the C value).
            if let v = entry.text.firstRange(of: "(values: "), let d = entry.text.firstRange(of: "; default: ") {
                let values = entry.text[v.upperBound..<d.lowerBound].split(separator: ", ").map(String.init)
                let rest = entry.text[d.upperBound...]
                let shown = String(rest.prefix { $0 != ")" })
                #expect(values.contains(shown), "\(path) \(name): default \(shown) is not one of \(values)")
            }
        }
    }
}
