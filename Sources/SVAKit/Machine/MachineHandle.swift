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

/// The life of a C handle (struct svakit_machine). It lives in a page of its
/// own that is never returned to the host: when the machine is destroyed the
/// handle becomes a tombstone (magic cleared, owner NULL, both keys off, page made
/// read-only), so a destroyed handle passed to any function gets -EBADF
/// instead of reading freed memory. Each tombstone costs one page of
/// address space for the life of the process.
///
/// Live handles also carry `check`, the owner pointer mixed with the page's
/// own address: a handle forged by hand with the right magic but not made by
/// svakit_machine_create fails that check. A byte-for-byte copy of a live
/// handle is not detected (the header says so).
enum MachineHandle {
    /// The handle's magic while its machine lives ("SVKM") and once it is a
    /// tombstone ("DEAD"). Private to the engine: the header documents the
    /// field only as private.
    static let liveMagic: UInt32 = 0x5356_4b4d
    static let deadMagic: UInt32 = 0x4445_4144

    static func allocate() -> UnsafeMutablePointer<svakit_machine> {
        let p = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(p != UnsafeMutableRawPointer(bitPattern: -1), "cannot map a machine handle")
        let h = p!.bindMemory(to: svakit_machine.self, capacity: 1)
        h.initialize(to: svakit_machine())
        return h
    }

    static func key(_ h: UnsafeMutablePointer<svakit_machine>) -> UnsafeMutablePointer<Int32> {
        UnsafeMutableRawPointer(h).advanced(by: MemoryLayout<svakit_machine>.offset(of: \.iommu_sva_present)!)
            .assumingMemoryBound(to: Int32.self)
    }

    /// The sanitizer's static key (iommu_debug_initialized) in the handle.
    static func debugKey(_ h: UnsafeMutablePointer<svakit_machine>) -> UnsafeMutablePointer<Int32> {
        UnsafeMutableRawPointer(h).advanced(by: MemoryLayout<svakit_machine>.offset(of: \.iommu_debug_initialized)!)
            .assumingMemoryBound(to: Int32.self)
    }

    static func check(_ h: UnsafeMutablePointer<svakit_machine>, owner: UnsafeMutableRawPointer?) -> UInt64 {
        let o = UInt64(UInt(bitPattern: owner)), a = UInt64(UInt(bitPattern: h))
        return (o ^ 0x5356_4b4d_c0ff_ee00) &* 0x9E37_79B9_7F4A_7C15 ^ a
    }

    static func publish(_ h: UnsafeMutablePointer<svakit_machine>, owner: UnsafeMutableRawPointer) {
        h.pointee.owner = owner
        h.pointee.check = check(h, owner: owner)
        h.pointee.magic = liveMagic
    }

    /// The machine behind a handle, or nil for a tombstone or a forgery.
    @inline(__always)
    static func owner(_ h: UnsafeMutablePointer<svakit_machine>) -> UnsafeMutableRawPointer? {
        guard h.pointee.magic == liveMagic, let o = h.pointee.owner,
              h.pointee.check == check(h, owner: o) else { return nil }
        return o
    }

    static func retire(_ h: UnsafeMutablePointer<svakit_machine>) {
        h.pointee.magic = deadMagic
        h.pointee.iommu_sva_present = 0
        h.pointee.iommu_debug_initialized = 0
        h.pointee.owner = nil
        h.pointee.check = 0
        mprotect(UnsafeMutableRawPointer(h), 4096, PROT_READ)
    }
}
