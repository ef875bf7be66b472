// SPDX-License-Identifier: Apache-2.0
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The CLI's outputs are Codable values encoded by the toolchain's JSON
/// encoder (FoundationEssentials: the CLI only; the SVAKit library stays free
/// of Foundation, docs/BUILDING.md §4).
enum JSONOutput {
    /// Reports (`demo --json`, `bench NAME --json`): Swift property names
    /// become snake_case keys; keys sorted, so the output is stable.
    static func report<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    /// Formats whose keys are fixed by someone else (the Chrome trace's
    /// `traceEvents`, `displayTimeUnit`): keys as written.
    static func verbatim<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(value)
    }
}

/// `{"bench": NAME, "config": {...}, "metrics": {...}}`, the object every
/// `svakit bench NAME --json` prints (docs/BENCHMARKS.md).
struct BenchReport<Config: Encodable>: Encodable {
    var bench: String
    var config: Config
    var metrics: Metrics

    /// A header line with the configuration (as its JSON), then one row per metric.
    func table() throws -> String {
        var t = TextTable(header: ["metric", "value", "unit"])
        for m in metrics.list { t.rows.append([m.name, m.value.text, m.unit]) }
        return "bench \(bench): \(try JSONOutput.report(config))\n" + t.render()
    }
}

/// A benchmark's figures in the order measured. JSON: one object, metric name
/// to number (a count as an integer, a non-finite figure as null); the unit
/// is for the table only.
struct Metrics: Encodable {
    enum Value {
        case count(Int)
        case real(Double)

        var text: String {
            switch self {
            case .count(let n): return String(n)
            case .real(let x): return formatFixed(x, digits: 2)
            }
        }
    }

    struct Metric {
        var name: String
        var value: Value
        var unit: String
    }

    private(set) var list: [Metric] = []

    mutating func add(_ name: String, _ value: Double, _ unit: String) {
        list.append(Metric(name: name, value: .real(value), unit: unit))
    }

    mutating func add(_ name: String, count: Int, _ unit: String = "count") {
        list.append(Metric(name: name, value: .count(count), unit: unit))
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for m in list {
            let key = Key(stringValue: m.name)
            switch m.value {
            case .count(let n): try c.encode(n, forKey: key)
            case .real(let x) where x.isFinite: try c.encode(x, forKey: key)
            case .real: try c.encodeNil(forKey: key)
            }
        }
    }
}

/// A text table with right-aligned columns after the first.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    func render() -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i == 0 ? c + pad : pad + c
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }
}

/// `x` with exactly `digits` decimals ("-" if not finite). FoundationEssentials
/// has no number format styles (they are in FoundationInternationalization,
/// which brings ICU), so the tables round here.
func formatFixed(_ x: Double, digits: Int) -> String {
    guard x.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(x) * scale).rounded()
    guard scaled < 1e18 else { return String(x) }
    let n = UInt64(scaled), s = UInt64(scale)
    let frac = String(n % s)
    let sign = x < 0 && n != 0 ? "-" : ""
    return digits == 0 ? sign + String(n) : sign + String(n / s) + "." + String(repeating: "0", count: digits - frac.count) + frac
}

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

/// Progress on stderr for work that takes more than about a second: only when
/// stderr is a terminal, never with --json. Nothing is written in the first
/// second, then at most ten updates a second on one line, cleared at the end.
final class Progress {
    private let enabled: Bool
    private let start = nowNs()
    private var lastWrite: UInt64 = 0
    private var wrote = false

    init(json: Bool) { enabled = !json && isatty(2) != 0 }

    /// A new status; cheap enough to call in a loop (a clock read when on).
    func update(_ status: @autoclosure () -> String) {
        guard enabled else { return }
        let now = nowNs()
        guard now - start >= 1_000_000_000, now - lastWrite >= 100_000_000 else { return }
        lastWrite = now
        wrote = true
        writeStderr("\r\u{1B}[K" + status())
    }

    func done() {
        guard wrote else { return }
        writeStderr("\r\u{1B}[K")
        wrote = false
    }
}

/// write(2) on stderr: unbuffered, and no shared stdio state.
func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
