// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSVAKit
// Not internal: the walker in SVAKitIOMMU inlines the entry and identity
// reads, which call these C atomics.
import CSVAKitCore
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
#endif

/// The simulated RAM: frame contents and one ptdesc per frame.
///
/// Both arrays are anonymous `MAP_NORESERVE` mappings, so a 16 GiB machine
/// reserves address space only: the host backs a frame's bytes (and a page of
/// descriptors) the first time it is touched. Zero-filled descriptors are valid
/// free frames (kind 0, generation 0), which is why boot costs nothing per frame.
///
/// Shared memory, accessed the way hardware accesses it: page-table entries
/// and the identity words of a descriptor (kind, level, generation) with
/// single atomic loads and stores, because an IOMMU walker reads them with no
/// lock while the CPU changes them (docs/ARCHITECTURE.md, "The walker").
/// Every other descriptor field belongs to whichever layer's lock the field's
/// comment names, and the walker never reads it.
///
/// `FrameMemory` owns it and calls `unmap()` once, from its deinit.
@_spi(Engine) public struct PhysicalMemory: @unchecked Sendable {
    @usableFromInline package let frameCount: Int
    @usableFromInline package let bytes: UnsafeMutableRawPointer
    @usableFromInline package let descs: UnsafeMutablePointer<Ptdesc>
    /// The frames whose bytes changed since boot or the last reset, and the
    /// boot image (svakit_core.h, `struct svk_dirty`): every write into a
    /// frame's bytes marks the frame first, so a reset restores only those
    /// (docs/ARCHITECTURE.md, "Reset").
    @usableFromInline package let dirty: UnsafeMutablePointer<svk_dirty>

    package init(frames: Int) throws(SVAError) {
        guard frames > 0, frames <= Int(UInt32.max) else { throw .invalidArgument }
        guard let b = PhysicalMemory.reserve(frames << pageShift) else { throw .outOfMemory }
        guard let d = PhysicalMemory.reserve(frames * MemoryLayout<Ptdesc>.stride) else {
            munmap(b, frames << pageShift)
            throw .outOfMemory
        }
        let t = UnsafeMutablePointer<svk_dirty>.allocate(capacity: 1)
        guard svk_dirty_init(t, UInt64(frames)) == 0 else {
            t.deallocate()
            munmap(b, frames << pageShift)
            munmap(d, frames * MemoryLayout<Ptdesc>.stride)
            throw .outOfMemory
        }
        frameCount = frames
        bytes = b
        descs = d.bindMemory(to: Ptdesc.self, capacity: frames)
        dirty = t
    }

    /// Returns both mappings to the host; only the owner's deinit calls it.
    package func unmap() {
        munmap(bytes, frameCount << pageShift)
        munmap(UnsafeMutableRawPointer(descs), frameCount * MemoryLayout<Ptdesc>.stride)
        svk_dirty_destroy(dirty)
        dirty.deallocate()
    }

    private static func reserve(_ size: Int) -> UnsafeMutableRawPointer? {
        let p = mmap(nil, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        // MAP_FAILED is (void *)-1; comparing the bits avoids the Glibc overlay
        // (libswiftGlibc), so C users link only swiftCore and swiftSynchronization.
        return p == UnsafeMutableRawPointer(bitPattern: -1) ? nil : p
    }

    /// Whether a descriptor backs `pfn`.
    @inlinable @_spi(Engine) public func contains(_ pfn: PFN) -> Bool { pfn.index < frameCount }

    /// The frame's bytes. The caller has checked `contains`.
    @inlinable @_spi(Engine) public func frame(_ pfn: PFN) -> UnsafeMutableRawPointer {
        bytes + (pfn.index << pageShift)
    }

    /// Entry `index` of the page table in `pfn`.
    @inlinable @_spi(Engine) public func entry(_ pfn: PFN, _ index: Int) -> UnsafeMutablePointer<UInt64> {
        (bytes + (pfn.index << pageShift)).assumingMemoryBound(to: UInt64.self) + index
    }

    // MARK: - Entries, as hardware reads and writes them

    /// Reads an entry: acquire, so that a table reached through a pointer
    /// that was published with a release store (`storeEntry`) is seen
    /// initialised, and so that the seqcount re-check that follows is not
    /// satisfied early. A plain load on x86, as a walker's read is.
    @inlinable @inline(__always) @_spi(Engine) public func loadEntry(_ pfn: PFN, _ index: Int) -> UInt64 {
        SchedulePoints.point(.read, ScheduleObject.frame(pfn.rawValue), UInt64(index))
        return svk_load_acquire(entry(pfn, index))
    }

    /// Writes an entry (set_pte, set_pmd, pmd_clear): release, so whatever
    /// the entry points at is initialised before a walker can follow it.
    @inlinable @inline(__always) @_spi(Engine) public func storeEntry(_ pfn: PFN, _ index: Int, _ value: UInt64) {
        SchedulePoints.point(.write, ScheduleObject.frame(pfn.rawValue), UInt64(index))
        svk_dirty_mark(dirty, UInt64(truncatingIfNeeded: pfn.index))
        svk_store_release(entry(pfn, index), value)
    }

    /// The walker's A/D update: a locked cmpxchg that succeeds only if the
    /// entry still holds `old` (VT-d and SMMUv3 HTTU update atomically; an
    /// entry the CPU cleared meanwhile is left clear).
    @inlinable @inline(__always) @_spi(Engine) public func casEntry(_ pfn: PFN, _ index: Int, old: UInt64, new: UInt64) -> Bool {
        SchedulePoints.point(.write, ScheduleObject.frame(pfn.rawValue), UInt64(index))
        svk_dirty_mark(dirty, UInt64(truncatingIfNeeded: pfn.index))
        return svk_cas(entry(pfn, index), old, new) != 0
    }

    // MARK: - Descriptor identity, read by walkers with no lock

    /// The frame's kind (ptdesc.kind), one atomic load.
    @inlinable @inline(__always) @_spi(Engine) public func kind(_ pfn: PFN) -> UInt8 {
        svk_load8(UnsafeRawPointer(descs + pfn.index).assumingMemoryBound(to: UInt8.self))
    }

    /// The frame's table level (ptdesc.level), one atomic load.
    @inlinable @inline(__always) @_spi(Engine) public func level(_ pfn: PFN) -> UInt8 {
        svk_load8(UnsafeRawPointer(descs + pfn.index).assumingMemoryBound(to: UInt8.self) + 1)
    }

    /// The generation, acquire: the seqcount read of the walk oracle.
    @inlinable @inline(__always) @_spi(Engine) public func generation(_ pfn: PFN) -> UInt32 {
        svk_load32_acquire(identityWord32(pfn))
    }

    /// The address of the frame's generation word.
    @inlinable @inline(__always) @_spi(Engine) public func identityWord32(_ pfn: PFN) -> UnsafeMutablePointer<UInt32> {
        (UnsafeMutableRawPointer(descs + pfn.index) + MemoryLayout<Ptdesc>.offset(of: \.generation)!)
            .assumingMemoryBound(to: UInt32.self)
    }

    private func byte(_ pfn: PFN, _ offset: Int) -> UnsafeMutablePointer<UInt8> {
        (UnsafeMutableRawPointer(descs + pfn.index) + offset).assumingMemoryBound(to: UInt8.self)
    }

    package func setKind(_ pfn: PFN, _ kind: FrameKind) { svk_store8(byte(pfn, 0), kind.rawValue) }
    package func setLevel(_ pfn: PFN, _ level: Int) { svk_store8(byte(pfn, 1), UInt8(level)) }
    package func setFlags(_ pfn: PFN, _ flags: PtdescFlags) { svk_store8(byte(pfn, 3), flags.rawValue) }
    package func insertFlags(_ pfn: PFN, _ flags: PtdescFlags) { _ = svk_or8(byte(pfn, 3), flags.rawValue) }
    package func removeFlags(_ pfn: PFN, _ flags: PtdescFlags) { _ = svk_and8(byte(pfn, 3), ~flags.rawValue) }
    package func flags(_ pfn: PFN) -> PtdescFlags { PtdescFlags(rawValue: svk_load8(byte(pfn, 3))) }

    /// Bumps the generation: the write side of the seqcount, after the kind
    /// changed, so a walker that read the old identity sees the change.
    package func bumpGeneration(_ pfn: PFN) {
        SchedulePoints.point(.write, ScheduleObject.frame(pfn.rawValue), 512)
        let p = identityWord32(pfn)
        svk_store32_release(p, svk_load32_acquire(p) &+ 1)
    }

    /// A copy of the descriptor. Identity fields are read atomically; the
    /// rest is only meaningful to a caller that holds the allocator's lock.
    package func snapshot(_ pfn: PFN) -> Ptdesc {
        var d = Ptdesc()
        d.kind = kind(pfn)
        d.level = level(pfn)
        d.flags = svk_load8(byte(pfn, 3))
        d.generation = generation(pfn)
        let raw = UnsafeRawPointer(descs + pfn.index)
        d.order = svk_load8(raw.assumingMemoryBound(to: UInt8.self) + 2)
        d.site = raw.load(fromByteOffset: 4, as: UInt16.self)
        d.owner = raw.load(fromByteOffset: 6, as: UInt16.self)
        d.alloc_step = raw.load(fromByteOffset: 12, as: UInt32.self)
        d.lru_next = raw.load(fromByteOffset: 16, as: UInt32.self)
        d.lru_prev = raw.load(fromByteOffset: 20, as: UInt32.self)
        d.pt_list_next = raw.load(fromByteOffset: 24, as: UInt32.self)
        d.map_count = raw.load(fromByteOffset: 28, as: Int32.self)
        return d
    }

    /// Zeroes a table frame with atomic stores (a stale walker may be
    /// reading it). A frame nobody wrote since boot or the last reset, and
    /// that boot did not write, holds zeros already: it is left alone, so
    /// the host never backs the 256 empty kernel-half tables of a fresh
    /// machine (the schedule point stays: the explorer sees the same write).
    package func zeroTable(_ pfn: PFN) {
        SchedulePoints.point(.write, ScheduleObject.frame(pfn.rawValue), 513)
        let f = UInt64(truncatingIfNeeded: pfn.index)
        guard svk_dirty_may_be_nonzero(dirty, f) != 0 else { return }
        svk_dirty_mark(dirty, f)
        svk_zero_table(entry(pfn, 0))
    }

    /// Marks the frames of [p, p + count) written, for a writer that holds a
    /// raw pointer into the frames (a device's or the CPU's byte copy, the
    /// bounce buffer's).
    package func markWritten(_ p: UnsafeRawPointer, count: Int) {
        guard count > 0 else { return }
        let first = (p - UnsafeRawPointer(bytes)) >> pageShift
        let last = (p + (count - 1) - UnsafeRawPointer(bytes)) >> pageShift
        for f in first...last { svk_dirty_mark(dirty, UInt64(truncatingIfNeeded: f)) }
    }

    /// Whether the frame may hold anything but zeros: written since boot or
    /// the last reset, or one of the frames boot wrote. False proves the
    /// frame all zeros, so long as every write goes through this type's
    /// writers (the audit's scan skips such tables).
    package func mayBeNonzero(_ pfn: PFN) -> Bool {
        svk_dirty_may_be_nonzero(dirty, UInt64(truncatingIfNeeded: pfn.index)) != 0
    }

    /// Frames written since the boot image or the last reset.
    package var dirtyFrames: Int { Int(svk_dirty_count(dirty)) }

    /// Byte copies in and out of frames, as a device or the CPU makes them:
    /// word by word with relaxed atomics, since a walker may read the same
    /// bytes as entries at the same time (the use-after-free the oracle
    /// reports).
    package func copyOut(_ src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, count: Int) {
        for i in 0..<count {
            dst.storeBytes(of: svk_load8(src.assumingMemoryBound(to: UInt8.self) + i), toByteOffset: i, as: UInt8.self)
        }
    }

    package func copyIn(_ src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, count: Int) {
        markWritten(dst, count: count)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count { svk_store8(d + i, src.load(fromByteOffset: i, as: UInt8.self)) }
    }

    /// The descriptor of `pfn`, by address.
    @inlinable @_spi(Engine) public subscript(_ pfn: PFN) -> Ptdesc {
        unsafeAddress { UnsafePointer(descs + pfn.index) }
        nonmutating unsafeMutableAddress { descs + pfn.index }
    }

    /// Host bytes that back frame contents right now (mincore).
    package func residentBytes() -> Int {
        let hostPage = Int(sysconf(Int32(_SC_PAGESIZE)))
        let total = frameCount << pageShift
        let pages = (total + hostPage - 1) / hostPage
        var resident = 0
        // One status byte per host page, bit 0 resident; counted eight at a
        // time (svakit_machine_stats runs this, and the fuzzer calls that
        // after every call). The vector is no larger than the memory needs.
        let chunk = min(1 << 20, pages)
        var words = [UInt64](repeating: 0, count: (chunk + 7) / 8)
        var start = 0
        while start < pages {
            let n = min(chunk, pages - start)
            let ok = words.withUnsafeMutableBytes { v in
                v.initializeMemory(as: UInt8.self, repeating: 0)
                return mincore(bytes + start * hostPage, n * hostPage, v.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
            if ok { for w in words { resident += (w & 0x0101_0101_0101_0101).nonzeroBitCount } }
            start += n
        }
        return resident * hostPage
    }
}
