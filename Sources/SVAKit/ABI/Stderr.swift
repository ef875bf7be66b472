// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

/// Writes one line to stderr with write(2): no Foundation, no stdio overlay.
func debugLogProblem(_ s: String) {
    var line = "svakit: " + s + "\n"
    line.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
