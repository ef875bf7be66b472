// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_event_read()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_event_read(_ h: UnsafeMutablePointer<svakit_machine>?, _ since: UInt64,
                          _ out: UnsafeMutablePointer<svakit_event>?, _ cap: Int) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard cap >= 0 else { throw .invalidArgument }
        guard let out else { if cap == 0 { return 0 }; throw .nullPointer }
        return copy(m.events(since: since, limit: min(cap, Int(Int32.max))), to: out)
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
        return copy(m.history(of: p, limit: min(cap, Int(Int32.max))), to: out)
    }
}

/// Copies events into the caller's array as struct svakit_event.
private func copy(_ events: [Event], to out: UnsafeMutablePointer<svakit_event>) -> Int32 {
    for (i, e) in events.enumerated() { out[i] = svakit_event(e) }
    return Int32(events.count)
}

extension svakit_event {
    /// The C ABI's 40-byte form of an event.
    init(_ e: Event) {
        self.init(step: e.step, type: e.type?.rawValue ?? 0, site: e.site.rawValue, level: UInt8(e.level),
                  kind: e.kind.rawValue, order: UInt16(e.order), pfn: e.pfn.rawValue, generation: e.generation,
                  va: e.va, aux: e.aux)
    }
}
