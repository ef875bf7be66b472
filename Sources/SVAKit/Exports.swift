// SPDX-License-Identifier: Apache-2.0

// One library, layered modules: `import SVAKit` gives a client every public
// type of the layers below (the errors and ids, frames and page tables, the
// IOMMUs, SVA and the DMA API), as swift-collections' umbrella module does.
// The CMake build compiles all of them as one module (SVAKIT_SINGLE_MODULE).
#if !SVAKIT_SINGLE_MODULE
@_exported import SVAKitBase
@_exported import SVAKitMemory
@_exported import SVAKitIOMMU
@_exported import SVAKitSVA
@_exported import SVAKitDMA
#endif
