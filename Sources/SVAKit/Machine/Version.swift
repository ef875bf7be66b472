// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// The package's namespace for facts about the library itself.
public enum SVAKit {
    /// The package version; equal to SVAKIT_VERSION_STRING in svakit.h (a
    /// test checks it). A StaticString so the C ABI can return its bytes.
    public static let version: StaticString = "0.6.1"
}
