// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if canImport(Glibc)
import Glibc
#endif
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_config_default()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_config_default(_ cfg: UnsafeMutablePointer<svakit_config>?) {
    cfg?.pointee = MachineConfig().cValue
}

/// `svakit_machine_create()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_machine_create(_ cfg: UnsafePointer<svakit_config>?,
                                  _ out: UnsafeMutablePointer<UnsafeMutablePointer<svakit_machine>?>?) -> Int32 {
    guard let cfg, let out else { return SVAError.nullPointer.errno }
    do throws(SVAError) {
        let m = try Machine(try MachineConfig(cfg.pointee))
        // The handle owns one reference, dropped by svakit_machine_destroy.
        _ = Unmanaged.passRetained(m)
        out.pointee = m.cHandle
        return 0
    } catch {
        return error.errno
    }
}

/// `svakit_machine_destroy()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_machine_destroy(_ h: UnsafeMutablePointer<svakit_machine>?) {
    guard let h, let owner = MachineHandle.owner(h) else { return }
    Unmanaged<Machine>.fromOpaque(owner).release()
}

/// `svakit_machine_reset()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_machine_reset(_ h: UnsafeMutablePointer<svakit_machine>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try m.reset()
        return 0
    }
}

/// `svakit_version()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_version() -> UnsafePointer<CChar>? {
    UnsafeRawPointer(SVAKit.version.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// `svakit_strerror()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_strerror(_ err: Int32) -> UnsafePointer<CChar>? {
    let msg: StaticString = err == 0 ? "success"
        : err == -EUCLEAN ? "machine check failed: the bookkeeping is inconsistent"
        : SVAError(errno: err)?.message ?? "unknown error"
    return UnsafeRawPointer(msg.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// `svakit_machine_stats()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_machine_stats(_ h: UnsafeMutablePointer<svakit_machine>?,
                                 _ out: UnsafeMutablePointer<svakit_stats>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try store(cStats(m, resident: UInt64(m.residentBytes)), to: out)
        return 0
    }
}

/// `svakit_machine_counters()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_machine_counters(_ h: UnsafeMutablePointer<svakit_machine>?,
                                    _ out: UnsafeMutablePointer<svakit_stats>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try store(cStats(m, resident: 0), to: out)
        return 0
    }
}

/// The C form of the machine's counters.
private func cStats(_ m: Machine, resident: UInt64) -> svakit_stats {
    let s = m.stats
    return svakit_stats(
        frames: UInt64(s.frames), frames_free: UInt64(s.freeFrames), frames_offline: UInt64(s.offlineFrames),
        kernel_tables: UInt64(s.kernelTables), user_tables: UInt64(s.userTables),
        data_frames: UInt64(s.dataFrames), allocs: UInt64(s.allocs), frees: UInt64(s.frees),
        kernel_tlb_flushes: UInt64(s.kernelTLBFlushes), metadata_bytes_per_frame: UInt64(s.metadataBytesPerFrame),
        host_bytes_resident: resident, step: s.step)
}

/// `svakit_machine_check()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_machine_check(_ h: UnsafeMutablePointer<svakit_machine>?) -> Int32 {
    withMachine(h) { m in m.audit().isEmpty ? 0 : -EUCLEAN }
}

/// `svakit_machine_check_text()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_machine_check_text(_ h: UnsafeMutablePointer<svakit_machine>?,
                                      _ buf: UnsafeMutablePointer<CChar>?, _ len: Int) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try cText(buf, len)
        let problems = m.audit()
        out.store(problems.map { $0 + "\n" }.joined())
        return problems.isEmpty ? 0 : -EUCLEAN
    }
}

/// `svakit_fail_nth()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_fail_nth(_ h: UnsafeMutablePointer<svakit_machine>?, _ n: UInt32,
                            _ made: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let count = m.failNthAllocation(Int(n))
        made?.pointee = UInt64(count)
        return 0
    }
}

/// `svakit_fail_nth_injected()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_fail_nth_injected(_ h: UnsafeMutablePointer<svakit_machine>?,
                                     _ what: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try requireOut(what).pointee = UInt32(m.failNthInjected?.rawValue ?? 0)
        return 0
    }
}
