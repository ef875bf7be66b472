// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_frame_alloc()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_frame_alloc(_ h: UnsafeMutablePointer<svakit_machine>?, _ order: UInt32, _ owner: UInt16,
                               _ pfn: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(pfn)
        guard order <= UInt32(maxOrder) else { throw .invalidArgument }
        out.pointee = UInt64(try m.allocFrames(order: Int(order), owner: owner).rawValue)
        return 0
    }
}

/// `svakit_frame_free()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_frame_free(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.freeFrames(try pfnArgument(pfn)); return 0 }
}

/// `svakit_frame_info()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_frame_info(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64,
                              _ out: UnsafeMutablePointer<svakit_ptdesc>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let o = try requireOut(out)
        o.pointee = try m.rawDescriptor(try pfnArgument(pfn))
        return 0
    }
}

/// `svakit_frame_read()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_frame_read(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64, _ offset: UInt32,
                              _ buf: UnsafeMutableRawPointer?, _ len: Int) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try m.readFrame(try pfnArgument(pfn), offset: Int(offset), into: try cBuffer(buf, len))
        return 0
    }
}

/// `svakit_frame_write()` of the C ABI, as include/svakit_debug.h documents it.
@c @implementation
public func svakit_frame_write(_ h: UnsafeMutablePointer<svakit_machine>?, _ pfn: UInt64, _ offset: UInt32,
                               _ buf: UnsafeRawPointer?, _ len: Int) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try m.writeFrame(try pfnArgument(pfn), offset: Int(offset), from: try cBuffer(buf, len))
        return 0
    }
}
