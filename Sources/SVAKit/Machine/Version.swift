// SPDX-License-Identifier: Apache-2.0

public enum SVAKit {
    /// The package version; equal to SVAKIT_VERSION_STRING in svakit.h (a
    /// test checks it). A StaticString so the C ABI can return its bytes.
    public static let version: StaticString = "0.1.0"
}
