// SPDX-License-Identifier: Apache-2.0
import CSVAKitCore
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The simulated CPU the calling thread runs on, for the IOVA rcache's
/// per-CPU magazines (docs/KERNEL-MODEL.md §4.5: iova.c uses the CPU it
/// runs on, `raw_cpu_ptr`). A thread-local in CSVAKitCore (currentcpu.c).
///
/// A thread that never calls `set` gets the next of a process-wide
/// round-robin counter (0, 1, 2, ...) at its first `index(cpuCount:)`, and
/// keeps it; so threads spread over the CPUs as they start. The value is
/// taken modulo the domain's CPU count, so one thread maps to one CPU of
/// every domain, whatever its CPU count.
package enum CurrentCPU {
    /// Pins the calling thread to CPU `cpu` (reduced modulo each domain's
    /// CPU count when used).
    package static func set(_ cpu: Int) {
        precondition(cpu >= 0, "a CPU index is not negative")
        svk_set_current_cpu(Int64(cpu))
    }

    /// The calling thread's CPU, as set or assigned; nil before either.
    package static var raw: Int? {
        let c = svk_current_cpu()
        return c < 0 ? nil : Int(c)
    }

    /// The calling thread's CPU in 0..<cpuCount, assigning one round-robin
    /// at first use.
    package static func index(cpuCount: Int) -> Int {
        precondition(cpuCount > 0)
        var c = svk_current_cpu()
        if c < 0 {
            c = svk_next_cpu_ticket()
            svk_set_current_cpu(c)
        }
        return Int(c % Int64(cpuCount))
    }

    /// Forgets the calling thread's CPU (the next `index` assigns anew).
    package static func clear() { svk_set_current_cpu(-1) }
}
