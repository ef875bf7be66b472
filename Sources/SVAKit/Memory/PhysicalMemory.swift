// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif
import CSVAKit

/// The simulated RAM: frame contents and one ptdesc per frame.
///
/// Both arrays are anonymous `MAP_NORESERVE` mappings, so a 16 GiB machine
/// reserves address space only: the host backs a frame's bytes (and a page of
/// descriptors) the first time it is touched. Zero-filled descriptors are valid
/// free frames (kind 0, generation 0), which is why boot costs nothing per frame.
///
/// The machine owns it and calls `unmap()` once, from Machine.deinit (see
/// MachineCore for why the owner is not a `~Copyable` deinit).
@usableFromInline
struct PhysicalMemory {
    @usableFromInline let frameCount: Int
    @usableFromInline let bytes: UnsafeMutableRawPointer
    @usableFromInline let descs: UnsafeMutablePointer<Ptdesc>

    init(frames: Int) throws(SVAError) {
        guard frames > 0, frames <= Int(UInt32.max) else { throw .invalidArgument }
        guard let b = PhysicalMemory.reserve(frames << pageShift) else { throw .outOfMemory }
        guard let d = PhysicalMemory.reserve(frames * MemoryLayout<Ptdesc>.stride) else {
            munmap(b, frames << pageShift)
            throw .outOfMemory
        }
        frameCount = frames
        bytes = b
        descs = d.bindMemory(to: Ptdesc.self, capacity: frames)
    }

    /// Returns both mappings to the host; only the owner's deinit calls it.
    func unmap() {
        munmap(bytes, frameCount << pageShift)
        munmap(UnsafeMutableRawPointer(descs), frameCount * MemoryLayout<Ptdesc>.stride)
    }

    private static func reserve(_ size: Int) -> UnsafeMutableRawPointer? {
        let p = mmap(nil, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        // MAP_FAILED is (void *)-1; comparing the bits avoids the Glibc overlay
        // (libswiftGlibc), so C users link only swiftCore and swiftSynchronization.
        return p == UnsafeMutableRawPointer(bitPattern: -1) ? nil : p
    }

    @inlinable func contains(_ pfn: PFN) -> Bool { pfn.index < frameCount }

    /// The frame's bytes. The caller has checked `contains`.
    @inlinable func frame(_ pfn: PFN) -> UnsafeMutableRawPointer {
        bytes + (pfn.index << pageShift)
    }

    /// Entry `index` of the page table in `pfn`.
    @inlinable func entry(_ pfn: PFN, _ index: Int) -> UnsafeMutablePointer<UInt64> {
        (bytes + (pfn.index << pageShift)).assumingMemoryBound(to: UInt64.self) + index
    }

    /// The descriptor of `pfn`, by address.
    @inlinable subscript(_ pfn: PFN) -> Ptdesc {
        unsafeAddress { UnsafePointer(descs + pfn.index) }
        nonmutating unsafeMutableAddress { descs + pfn.index }
    }

    func zero(_ pfn: PFN, count: Int = 1) {
        memset(frame(pfn), 0, count << pageShift)
    }

    /// Host bytes that back frame contents right now (mincore).
    func residentBytes() -> Int {
        let hostPage = Int(sysconf(Int32(_SC_PAGESIZE)))
        let total = frameCount << pageShift
        let pages = (total + hostPage - 1) / hostPage
        var resident = 0
        let chunk = 1 << 20
        var vec = [UInt8](repeating: 0, count: chunk)
        var start = 0
        while start < pages {
            let n = min(chunk, pages - start)
            let ok = vec.withUnsafeMutableBufferPointer { v in
                mincore(bytes + start * hostPage, n * hostPage, v.baseAddress!) == 0
            }
            if ok { for i in 0..<n where vec[i] & 1 != 0 { resident += 1 } }
            start += n
        }
        return resident * hostPage
    }
}
