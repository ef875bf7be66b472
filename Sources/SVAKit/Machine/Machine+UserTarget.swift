// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// What a user mapping may point at. No Linux path gives a process a
/// mapping of a page-table page: its pages come from the page allocator as
/// data (anonymous memory, the page cache, a driver's buffer), and device
/// memory is outside the frames this machine models (svakit_map refuses a
/// physical address past memory with -ERANGE). A user leaf over a live table
/// would let an SVA device, walking that mm, write the table as data: the
/// corruption of fuzz class 12 (tests-c/fuzz/README.md), which no kernel
/// bug of the modelled kind produces.
extension Machine {
    /// Refuses a user mapping of [phys, phys + size) unless every frame in it
    /// is one a process could own: `SVAError/wrongAPI` (-EPERM) for a page
    /// table of any kind (kernel, user or IOMMU, queued on the deferred list
    /// or not) and for offline memory. Data frames are allowed, and so are
    /// free frames: the model hands memory it never allocated to whoever
    /// maps it (the scenarios' and tests' fixed physical addresses); a free
    /// frame that later becomes a table while a process still maps it is the
    /// use-after-free the oracle reports, not a refused mapping.
    ///
    /// Called by `map` under the mm's page-table lock, after its range
    /// checks; each frame's kind is one lock-free load, as a walker reads it
    /// (a 1 GiB map checks 262,144 frames).
    func checkUserTarget(_ phys: UInt64, size: PageSize) throws(SVAError) {
        guard phys < frames.bytes, size.bytes <= frames.bytes - phys else { throw .outOfRange }
        let first = Int(phys >> 12)
        for f in first ..< first + size.frames {
            switch frames.memory.kind(PFN(f)) {
            case FrameKind.free.rawValue, FrameKind.data.rawValue: continue
            default: throw .wrongAPI
            }
        }
    }
}
