// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

extension UAFReport {
    /// The C record of the report (absent values as the header spells them).
    var cValue: svakit_uaf_report {
        svakit_uaf_report(
            step: step, va: va, escalation_phys: escalationPhysicalAddress ?? 0,
            freed_step: freedStep ?? .max, realloc_step: reallocStep ?? .max,
            device: device.rawValue, pasid: pasid.rawValue, iommu: iommu.rawValue, frame: frame.rawValue,
            expected_generation: expectedGeneration ?? .max, found_generation: foundGeneration,
            corrupted_frame: (corruptedFrame ?? .none).rawValue,
            freed_by: freedBy.rawValue, realloc_site: reallocSite.rawValue, realloc_owner: reallocOwner,
            stale_level: UInt8(staleLevel), expected_level: UInt8(expectedLevel),
            found_kind: foundKind.rawValue, found_level: UInt8(foundLevel),
            escalation: escalation ? 1 : 0, corruption: corruption ? 1 : 0,
            kind: kind.rawValue, map_count: mapCount, domain: (leakDomain ?? pendingDomain)?.rawValue ?? .max,
            alloc_site: allocSite.rawValue, alloc_owner: allocOwner, alloc_step: UInt64(allocStep),
            iova: leakIOVA ?? .max, mapped_step: mappedStep ?? .max)
    }
}

/// `svakit_machine_set_report_handler()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_machine_set_report_handler(_ h: UnsafeMutablePointer<svakit_machine>?, _ fn: svakit_report_fn?,
                                      _ ctx: UnsafeMutableRawPointer?) -> Int32 {
    withMachine(h) { m in
        if let fn {
            let handler = CCallback(fn: fn, ctx: ctx)
            m.setReportHandler { r in
                var record = r.cValue
                r.text.withCString { handler.fn(handler.ctx, &record, $0) }
            }
        } else {
            m.setReportHandler(nil)
        }
        return 0
    }
}

/// `svakit_report_count()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_report_count(_ h: UnsafeMutablePointer<svakit_machine>?, _ total: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(total)
        out.pointee = m.reportCount
        return 0
    }
}

/// `svakit_report_read()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_report_read(_ h: UnsafeMutablePointer<svakit_machine>?, _ first: UInt64,
                           _ out: UnsafeMutablePointer<svakit_uaf_report>?, _ cap: Int) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        guard cap >= 0 else { throw .invalidArgument }
        guard let out else { if cap == 0 { return 0 }; throw .nullPointer }
        let rs = m.reports(from: first, limit: min(cap, Int(Int32.max)))
        for (i, r) in rs.enumerated() { out[i] = r.cValue }
        return Int32(rs.count)
    }
}

/// `svakit_report_text()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_report_text(_ h: UnsafeMutablePointer<svakit_machine>?, _ index: UInt64,
                               _ buf: UnsafeMutablePointer<CChar>?, _ len: Int) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try cText(buf, len)
        guard let r = m.report(index) else { throw .notFound }
        out.store(r.text)
        return 0
    }
}
