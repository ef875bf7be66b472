// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// A schedule: which actor executed each step, in order. Its id is the
/// run-length encoding of that list, one letter per actor ("a" is the first
/// actor the program lists, then the actors it spawns in spawn order), a
/// count after a letter that repeats: "a12b3a5" is twelve steps of actor 0,
/// three of actor 1, five of actor 0. Replaying an id gives the same run.
public struct Schedule: Sendable, Equatable, CustomStringConvertible {
    /// The actor of each step.
    public var steps: [Int]

    /// The schedule of `steps`.
    public init(_ steps: [Int]) { self.steps = steps }

    /// Parses an id; nil unless it is letters, each optionally followed by
    /// a count of at least 1.
    public init?(id: String) {
        var steps: [Int] = []
        var actor: Int? = nil
        var count = 0
        func flush() -> Bool {
            guard let a = actor else { return true }
            guard count != 0 else { steps.append(a); return true }
            guard count > 0, steps.count + count <= 10_000_000 else { return false }
            steps.append(contentsOf: repeatElement(a, count: count))
            return true
        }
        for u in id.unicodeScalars {
            if u.value >= 97 && u.value <= 122 {
                guard flush() else { return nil }
                actor = Int(u.value - 97)
                count = 0
            } else if u.value >= 48 && u.value <= 57 {
                guard actor != nil, count < 1_000_000 else { return nil }
                count = count * 10 + Int(u.value - 48)
                if count == 0 { return nil }
            } else {
                return nil
            }
        }
        guard flush() else { return nil }
        self.steps = steps
    }

    /// The id ("a12b3a5").
    public var id: String {
        var out = ""
        var i = 0
        while i < steps.count {
            var j = i
            while j < steps.count && steps[j] == steps[i] { j += 1 }
            out.unicodeScalars.append(Unicode.Scalar(UInt8(97 + min(steps[i], 25))))
            if j - i > 1 { out += String(j - i) }
            i = j
        }
        return out
    }

    /// The id.
    public var description: String { id }
}
