// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The lazy window's whole distribution, for plots (`svakit bench dma
/// --cdf`); ``Machine/flushQueueStats(_:)`` gives p50, p99 and the maximum.
extension Machine {
    /// A domain's window from unmap to release as a quantile function: for
    /// each of `permilles` (1 ... 1000), the nanoseconds by which that
    /// share of the released unmaps had been released (the upper bound of
    /// the histogram bucket holding it, so at most 12.5 % high, never above
    /// the exact maximum). Zeros before the first release. Throws
    /// `SVAError/invalidArgument` for a domain without a flush queue or a
    /// permille out of range, and `SVAError/noDevice` for an unknown one.
    public func flushQueueWindowQuantiles(_ domain: DomainID, permilles: [Int]) throws(SVAError) -> [UInt64] {
        guard let c = try domains.slot(domain.rawValue).cookie else { throw .invalidArgument }
        for p in permilles where p < 1 || p > 1000 { throw .invalidArgument }
        return permilles.map { c.fq.window.percentile(permille: $0) }
    }
}
