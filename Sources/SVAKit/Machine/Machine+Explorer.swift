// SPDX-License-Identifier: Apache-2.0
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitSVA
#endif

#if SVAKIT_SCHEDULE_POINTS
extension Machine {
    /// Breaks a fix on purpose, for the schedule explorer's negative
    /// controls (only in builds with the schedule points). Call before the
    /// race begins.
    public func breakFix(_ fix: BrokenFix?) {
        deferred.brokenFix = fix
    }

    /// The explorer's what-if (beyond Linux, only in builds with the
    /// schedule points): memory hot-remove in Linux's order (free, then
    /// clear) in `FreeMode/complete`, whose rule defers every kernel table:
    /// whether deferring the frees closes the window Linux's order opens.
    public func hotRemoveInLinuxOrder(_ on: Bool) {
        explorerLinuxHotRemoveOrder.locked { $0 = on }
    }
}
#endif
