// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// `svakit_mm_create()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_mm_create(_ h: UnsafeMutablePointer<svakit_machine>?, _ mm: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(mm)
        out.pointee = try m.createAddressSpace().rawValue
        return 0
    }
}

/// `svakit_mm_destroy()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_mm_destroy(_ h: UnsafeMutablePointer<svakit_machine>?, _ mm: UInt32) -> Int32 {
    withMachine(h) { m throws(SVAError) in try m.destroyAddressSpace(MMID(mm)); return 0 }
}

/// `svakit_mm_root()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_mm_root(_ h: UnsafeMutablePointer<svakit_machine>?, _ mm: UInt32,
                           _ root: UnsafeMutablePointer<UInt64>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let out = try requireOut(root)
        out.pointee = UInt64(try m.rootTable(of: MMID(mm)).pfn.rawValue)
        return 0
    }
}

func pageSize(_ bytes: UInt64) throws(SVAError) -> PageSize {
    guard let s = PageSize(bytes: bytes) else { throw .invalidArgument }
    return s
}

/// `svakit_mm_map()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_mm_map(_ h: UnsafeMutablePointer<svakit_machine>?, _ mm: UInt32, _ va: UInt64, _ phys: UInt64,
                       _ size: UInt64, _ prot: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try m.map(va, to: phys, size: try pageSize(size), prot: prot, in: MMID(mm))
        return 0
    }
}

/// `svakit_mm_unmap()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_mm_unmap(_ h: UnsafeMutablePointer<svakit_machine>?, _ mm: UInt32, _ va: UInt64,
                         _ size: UInt64) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        try m.unmap(va, size: try pageSize(size), in: MMID(mm))
        return 0
    }
}

/// `svakit_mm_translate()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_mm_translate(_ h: UnsafeMutablePointer<svakit_machine>?, _ mm: UInt32, _ va: UInt64,
                             _ out: UnsafeMutablePointer<svakit_translation>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        let o = try requireOut(out)
        switch try m.translate(va, in: MMID(mm)) {
        case .mapped(let phys, let size, let entry, let level):
            o.pointee = svakit_translation(phys: phys, page_size: size.bytes, entry: entry.raw,
                                           level: UInt32(level), reserved: 0)
            return 0
        case .notPresent(let level):
            o.pointee = svakit_translation(phys: 0, page_size: 0, entry: 0, level: UInt32(level), reserved: 0)
            return SVAError.notFound.errno
        }
    }
}
