// SPDX-License-Identifier: Apache-2.0
import CSVAKit
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// 0, SVAKIT_DMA_FAULTED with the fault copied out, or the error.
private func dmaOutcome(_ fault: DMAFault?, _ out: UnsafeMutablePointer<svakit_dma_fault>?) -> Int32 {
    guard let fault else { return 0 }
    out?.pointee = svakit_dma_fault(reason: fault.reason.rawValue, level: UInt32(fault.level), address: fault.address)
    return SVAKIT_DMA_FAULTED
}

private func dmaFlags(_ flags: UInt32) throws(SVAError) -> DMAAccess {
    guard flags & ~(SVAKIT_DMA_WRITE | SVAKIT_DMA_PRIV) == 0 else { throw .invalidArgument }
    return DMAAccess(rawValue: flags)
}

/// `svakit_device_dma_read()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_device_dma_read(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ pasid: UInt32, _ va: UInt64,
                            _ buf: UnsafeMutableRawPointer?, _ len: Int, _ flags: UInt32,
                            _ fault: UnsafeMutablePointer<svakit_dma_fault>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        dmaOutcome(try m.dmaRead(device: DeviceID(dev), pasid: PASID(pasid), va: va, into: try cBuffer(buf, len),
                                 access: try dmaFlags(flags)), fault)
    }
}

/// `svakit_device_dma_write()` of the C ABI, as include/svakit.h documents it.
@c @implementation
public func svakit_device_dma_write(_ h: UnsafeMutablePointer<svakit_machine>?, _ dev: UInt32, _ pasid: UInt32, _ va: UInt64,
                             _ buf: UnsafeRawPointer?, _ len: Int, _ flags: UInt32,
                             _ fault: UnsafeMutablePointer<svakit_dma_fault>?) -> Int32 {
    withMachine(h) { m throws(SVAError) in
        dmaOutcome(try m.dmaWrite(device: DeviceID(dev), pasid: PASID(pasid), va: va, from: try cBuffer(buf, len),
                                  access: try dmaFlags(flags)), fault)
    }
}
