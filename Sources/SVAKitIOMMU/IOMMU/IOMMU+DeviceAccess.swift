// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
#endif

extension IOMMU {
    /// A device's DMA through this IOMMU: `count` bytes at `va`, translated
    /// page by page (the caches, then a walk), each piece's host address
    /// handed to `move(address, offset, length)` with no lock held, as the
    /// device's transfer. Stops at the first fault, and at a translation past
    /// the end of memory (`badAddress`). What the walk oracle found on the
    /// way goes to `found`, with the address it concerns, for the machine to
    /// turn into reports. The caller has routed the request and checked the
    /// range.
    package func deviceAccess(device: UInt32, pasid: UInt32, va: UInt64, count: Int, access: DMAAccess,
                              found: (WalkFinding, UInt64) -> Void,
                              move: (UnsafeMutableRawPointer, Int, Int) -> Void) -> DMAFault? {
        let memoryBytes = UInt64(memory.frameCount) << pageShift
        var off = 0
        while off < count {
            let a = va + UInt64(off)
            let n = min(count - off, pageSize - Int(a & 0xfff))
            var finding: WalkFinding? = nil
            let result = translate(device: device, pasid: pasid, va: a, access: access, finding: &finding)
            if let finding { found(finding, a) }
            switch result {
            case .failure(let f): return f
            case .success(let t):
                guard t.phys < memoryBytes, UInt64(n) <= memoryBytes - t.phys else {
                    return DMAFault(reason: .badAddress, level: 0, address: a)
                }
                move(memory.bytes + Int(t.phys), off, n)
            }
            off += n
        }
        return nil
    }
}
