// SPDX-License-Identifier: Apache-2.0
import CSVAKit

/// `svakit_event_read()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_event_read(_ h: UnsafeMutablePointer<svakit_machine>?, _ since: UInt64,
                          _ out: UnsafeMutablePointer<svakit_event>?, _ cap: Int) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard cap >= 0 else { throw .invalidArgument }
        guard let out else { if cap == 0 { return 0 }; throw .nullPointer }
        let n = m.copyEvents(since: since, into: UnsafeMutableBufferPointer(start: out, count: min(cap, Int(Int32.max)))) { _ in true }
        return Int32(n)
    }
}

/// `svakit_frame_history()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_frame_history(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64,
                                 _ out: UnsafeMutablePointer<svakit_event>?, _ cap: Int) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard cap >= 0 else { throw .invalidArgument }
        let p = try pfnArgument(pfn)
        _ = try m.descriptor(p)  // range check
        guard let out else { if cap == 0 { return 0 }; throw .nullPointer }
        let n = m.copyEvents(since: 0, into: UnsafeMutableBufferPointer(start: out, count: min(cap, Int(Int32.max)))) {
            $0.concerns(p)
        }
        return Int32(n)
    }
}
