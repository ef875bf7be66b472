// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
@_spi(Engine) import SVAKitSVA
@_spi(Engine) import SVAKitDMA
#endif

/// Called where a kernel path, in Linux's order, has freed a page-table
/// frame that an entry still points at: `pfn` is the freed table, `va` the
/// first address it translated, `site` the path. What the hook does is what
/// another CPU or a device may do in that window: allocate (and get the
/// frame back), write it, issue DMA, run the deferred work.
public typealias KernelWindowHook = @Sendable (_ pfn: PFN, _ va: UInt64, _ site: Site) -> Void

extension Machine {
    /// Installs (or, with nil, removes) the kernel window hook. Today one
    /// path has such a window: memory hot-remove in the modes named after
    /// Linux, between free_pagetable() and the pmd_clear / pud_clear /
    /// p4d_clear that follows it (arch/x86/mm/init_64.c free_pte_table,
    /// free_pmd_table, free_pud_table; docs/KERNEL-MODEL.md §2.7). The hook
    /// runs on the removing thread with no lock held and may call back into
    /// the machine. It drives the window explicitly, so a test or scenario
    /// sees it in every run rather than when a scheduler allows.
    public func setKernelWindowHook(_ hook: KernelWindowHook?) {
        windowHook.locked { $0 = hook.map { HookBox($0) } }
    }

    func runKernelWindowHook(_ pfn: PFN, va: UInt64, site: Site) {
        guard let hook = windowHook.locked({ $0 })?.fn else { return }
        LockRank.assertNoneHeld("the kernel window hook")
        hook(pfn, va, site)
    }
}
