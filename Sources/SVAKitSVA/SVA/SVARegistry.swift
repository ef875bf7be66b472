// SPDX-License-Identifier: Apache-2.0
import CSVAKit
import CSVAKitCore
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// SVA, as drivers/iommu/iommu-sva.c is, on top of the IOMMU core
/// (IOMMUCore): bind and unbind, the per-mm data and its PASID, the SVA
/// domains, the explicit PASID attachments of an mm's tables, and the static
/// key with the slow path of the kernel-address gate (docs/KERNEL-MODEL.md
/// §1.4-1.6, §6). Depends on the core (devices, PASID entries), the page
/// tables (an mm's root) and the IOMMUs.
///
/// Writers hold `bonds` for the bookkeeping, and attach or remove a PASID
/// through the core inside it. Every command that reaches a driver (an
/// invalidation, a fence) is collected under the lock and issued after it.
package final class SVARegistry: @unchecked Sendable {
    // @unchecked: `key` is written only with atomics; the rest are locks
    // and published tables.

    package let core: IOMMUCore
    package let tables: PageTables
    package let frames: FrameMemory
    /// The static key iommu_sva_present, in the word the machine gives it
    /// (the C handle's, which the header's inline gate reads).
    private let key: UnsafeMutablePointer<Int32>

    /// iommu_sva_lock: the bonds, the per-mm data and its PASIDs, the SVA
    /// domains; it serialises every PASID attachment of an mm (bind, unbind,
    /// attach, detach) and every writer of the published words and the key.
    package let bonds: RankedMutex<SVAState>
    /// (PASID, IOMMU) of every domain an IOMMU may walk a CPU mm through: SVA
    /// domains and explicit PASID attachments. What the gate's slow path
    /// scans, with no lock (see PublishedWords).
    package let domains = PublishedWords()

    /// kpti-root: PASID entries point at the mm's IOMMU-only root
    /// (`PageTables.iommuRoot(of:)`), never at its CPU root.
    package let iommuOnlyRoots: Bool
    /// The width of the PASID space (a reset's new SVAState).
    private let pasidBits: Int

    package init(core: IOMMUCore, tables: PageTables, key: UnsafeMutablePointer<Int32>, pasidBits: Int,
         iommuOnlyRoots: Bool = false) {
        self.core = core
        self.tables = tables
        self.iommuOnlyRoots = iommuOnlyRoots
        frames = tables.frames
        self.key = key
        self.pasidBits = pasidBits
        bonds = RankedMutex(.sva, SVAState(pasidBits: pasidBits))
    }

    /// Back to boot (Machine.reset, quiescent): no bond, no PASID, no
    /// published domain, the key off.
    package func resetToBoot() {
        bonds.locked { $0 = SVAState(pasidBits: pasidBits) }
        domains.removeAll()
        svk_store_key(key, 0)
    }

    // MARK: - The static key

    /// iommu_sva_present, as the gate reads it.
    package var keyIsOn: Bool { svk_load_key(key) != 0 }

    /// Publishes a (pasid, IOMMU) word, or takes one more use of it; the
    /// first word turns the key on.
    private func publishLocked(_ r: inout SVAState, _ word: UInt64) {
        LockRank.sva.assertHeld()
        if let e = r.words[word] {
            r.words[word] = (e.slot, e.users + 1)
            return
        }
        if r.published == 0 {
            svk_store_key(key, 1)
            r.keyTransitions += 1
        }
        r.published += 1
        r.words[word] = (domains.insert(word), 1)
    }

    /// Drops one use of a word, retiring it with its last; the last word
    /// turns the key off.
    private func retireLocked(_ r: inout SVAState, _ word: UInt64) {
        LockRank.sva.assertHeld()
        guard let e = r.words[word] else { return }
        guard e.users == 1 else { r.words[word] = (e.slot, e.users - 1); return }
        r.words[word] = nil
        domains.remove(slot: e.slot)
        r.published -= 1
        if r.published == 0 {
            svk_store_key(key, 0)
            r.keyTransitions += 1
        }
    }

    // MARK: - iommu_sva_bind_device and iommu_sva_unbind_device

    /// iommu_sva_bind_device (docs/KERNEL-MODEL.md §1.4).
    package func bind(device: UInt32, mm: UInt32) throws(SVAError) -> SVABond {
        try bonds.locked { r throws(SVAError) in
            // The device's attachments change only under this lock.
            let d = try core.device(device)
            guard d.sva else { throw .notSupported }
            guard mm != 0 else { throw .invalidArgument }
            let root = try walkRoot(of: mm)
            // iommu_alloc_mm_data: one PASID for the mm's life.
            let pasid: UInt32
            if let data = r.mmData[mm] {
                guard Int(data.pasid) < d.pasidLimit else { throw .overflow }
                pasid = data.pasid
            } else {
                guard !frames.failNth.shouldFail(.pasid), let p = r.pasids.allocate(below: d.pasidLimit) else {
                    throw .noSpace
                }
                pasid = p
                r.mmData[mm] = MMData(pasid: p)
            }
            switch d.attachments[pasid] {
            case .sva(let h, let other) where other == mm:
                r.bonds[h]!.users += 1
                return SVABond(rawValue: h, pasid: PASID(pasid))
            case .some:
                throw .busy
            case .none:
                break
            }
            // The domain of (mm, IOMMU), shared by the devices behind it. Its
            // word is published, and the key on, before the PASID entry
            // exists (see invalidateKernelRange).
            if r.mmData[mm]!.domains[d.iommu] != nil {
                r.mmData[mm]!.domains[d.iommu]!.users += 1
            } else {
                if r.mmData[mm]!.domains.isEmpty { r.svaMMCount += 1 }
                let word = IOMMUCore.pasidWord(pasid: pasid, iommu: d.iommu)
                publishLocked(&r, word)
                r.mmData[mm]!.domains[d.iommu] = SVADomain(users: 1, word: word)
            }
            let h = r.nextHandle
            r.nextHandle &+= 1
            attachLocked(device: device, pasid: pasid, .sva(handle: h, mm: mm), root: root)
            r.bonds[h] = Bond(device: device, mm: mm, pasid: pasid, users: 1)
            return SVABond(rawValue: h, pasid: PASID(pasid))
        }
    }

    /// What a detach leaves to do once the lock is dropped.
    private struct Teardown {
        package let iommu: Int
        package let pasid: UInt32
        /// Drop the PASID's lines (the domain's last user went).
        package let flush: Bool
        /// The published word to drop a use of after the flush and the fence.
        package let retireWord: UInt64?
    }

    /// iommu_sva_unbind_device (docs/KERNEL-MODEL.md §1.5). The PASID entry
    /// goes under the lock; the invalidation and the fence go after it; the
    /// published word goes last, so the gate keeps reaching the domain until
    /// nothing of it can be cached or in flight.
    package func unbind(handle h: UInt32) throws(SVAError) {
        let t = try bonds.locked { r throws(SVAError) -> Teardown? in
            guard var bond = r.bonds[h] else { throw .staleHandle }
            bond.users -= 1
            guard bond.users == 0 else { r.bonds[h] = bond; return nil }
            r.bonds[h] = nil
            let iommu = core.removePASID(device: bond.device, pasid: bond.pasid)
            var domain = r.mmData[bond.mm]!.domains[iommu]!
            domain.users -= 1
            if domain.users > 0 {
                r.mmData[bond.mm]!.domains[iommu] = domain
                return Teardown(iommu: iommu, pasid: bond.pasid, flush: false, retireWord: nil)
            }
            r.mmData[bond.mm]!.domains[iommu] = nil
            if r.mmData[bond.mm]!.domains.isEmpty { r.svaMMCount -= 1 }
            return Teardown(iommu: iommu, pasid: bond.pasid, flush: true, retireWord: domain.word)
        }
        if let t { finish(t) }
    }

    /// A non-SVA attachment of mm's tables at a PASID the caller picks (as a
    /// VMM does through iommufd). An IOMMU can walk the mm's kernel half
    /// through it as through an SVA domain, so it is published for the gate
    /// too (Linux reaches every such walker through the mm's SVA domain).
    package func attach(device: UInt32, pasid: UInt32, mm: UInt32) throws(SVAError) {
        try bonds.locked { r throws(SVAError) in
            let d = try core.device(device)
            guard pasid > 0 else { throw .invalidArgument }
            guard Int(pasid) < d.pasidLimit else { throw .overflow }
            // init_mm is the kernel's own: no device may walk it at a PASID.
            guard mm != 0 else { throw .invalidArgument }
            guard d.attachments[pasid] == nil else { throw .busy }
            let root = try walkRoot(of: mm)
            publishLocked(&r, IOMMUCore.pasidWord(pasid: pasid, iommu: d.iommu))
            attachLocked(device: device, pasid: pasid, .explicit(mm: mm), root: root)
        }
    }

    package func detach(device: UInt32, pasid: UInt32) throws(SVAError) {
        let t = try bonds.locked { r throws(SVAError) -> Teardown in
            let d = try core.device(device)
            guard case .explicit = d.attachments[pasid] else { throw .notFound }
            let iommu = core.removePASID(device: device, pasid: pasid)
            return Teardown(iommu: iommu, pasid: pasid, flush: true,
                            retireWord: IOMMUCore.pasidWord(pasid: pasid, iommu: iommu))
        }
        finish(t)
    }

    /// After a detach, with no lock held: drop the lines, wait for walks in
    /// flight, then retire the published word.
    private func finish(_ t: Teardown) {
        core.withIOMMU(t.iommu) { i in
            if t.flush { i.invalidatePASID(PASID(t.pasid)) }
            i.fence()
        }
        if let word = t.retireWord { bonds.locked { r in retireLocked(&r, word) } }
    }

    /// The root a PASID entry for `mm` points at: the mm's own, or with
    /// kpti-root its IOMMU-only root (allocated at the first bind; may
    /// throw `SVAError/outOfMemory`).
    private func walkRoot(of mm: UInt32) throws(SVAError) -> TableFrame {
        iommuOnlyRoots ? try tables.iommuRoot(of: mm) : try tables.root(of: mm)
    }

    /// Attaches mm's tables at (device, pasid) through the core: the PASID
    /// entry points at `root`, with SRE only where the IOMMU is configured
    /// for supervisor SVA (beyond Linux since 942fd5435dcc;
    /// IOMMUConfig.svaSupervisorRequests).
    private func attachLocked(device: UInt32, pasid: UInt32, _ attachment: PASIDAttachment, root: TableFrame) {
        LockRank.sva.assertHeld()
        let gen = frames.memory.generation(root.pfn)
        core.attachPASID(device: device, pasid: pasid, attachment) { i in
            PasidEntry(root: root.pfn, rootGeneration: gen, mm: attachment.mm, tag: pasid,
                       supervisorRequests: i.config.svaSupervisorRequests)
        }
    }

    // MARK: - Queries

    package func pasid(ofBond handle: UInt32) throws(SVAError) -> UInt32 {
        try bonds.locked { r throws(SVAError) in
            guard let b = r.bonds[handle] else { throw .staleHandle }
            return b.pasid
        }
    }

    package func pasid(ofMM mm: UInt32) -> UInt32? { bonds.locked { $0.mmData[mm]?.pasid } }
    package var svaMMCount: Int { bonds.locked { $0.svaMMCount } }
    package var keyTransitions: Int { bonds.locked { $0.keyTransitions } }

    /// The device of a live bond.
    package func device(ofBond handle: UInt32) -> UInt32? { bonds.locked { $0.bonds[handle]?.device } }

    /// mm teardown: refused while a device is attached; otherwise `teardown`
    /// runs under the SVA lock (no bind or attach can race it) and the mm's
    /// PASID is dropped (mm_pasid_drop).
    package func tearDown<R: ~Copyable>(mm: UInt32, _ teardown: () throws(SVAError) -> R) throws(SVAError) -> R {
        try bonds.locked { r throws(SVAError) in
            guard !core.isAttached(mm: mm) else { throw .busy }
            let result = try teardown()
            r.dropPASID(of: mm)
            return result
        }
    }

    // MARK: - MMU notifier

    /// arch_invalidate_secondary_tlbs for a bound mm: its user mappings in
    /// [start, end) changed, so each IOMMU it is bound to drops them (the
    /// leaf-only hint clear, as the SVA notifiers pass it). The targets are
    /// collected under the lock and invalidated after it.
    package func mmInvalidateRange(_ mm: UInt32, _ start: UInt64, _ end: UInt64) {
        let targets: (pasid: UInt32, iommus: [Int])? = bonds.locked { r in
            guard let data = r.mmData[mm], !data.domains.isEmpty else { return nil }
            return (data.pasid, Array(data.domains.keys))
        }
        guard let targets else { return }
        for index in targets.iommus {
            core.withIOMMU(index) { $0.invalidateRange(pasid: PASID(targets.pasid), start: start, end: end &- 1, leafOnly: false) }
        }
    }

    // MARK: - The gate's slow path

    /// iommu_sva_invalidate_kva_range's out-of-line half: invalidates
    /// [start, end) with the leaf-only hint clear for every published domain,
    /// one hold of each IOMMU's lock for all its domains, then fences each
    /// IOMMU it touched. Returns whether it invalidated anything.
    ///
    /// The read side takes no SVA lock (the words are published
    /// RCU-style), so it may run where the caller cannot sleep. Why it is
    /// right against a concurrent bind: bind publishes the word and sets the
    /// key *before* it installs the PASID entry. A walk that cached a table
    /// needs that entry, so it follows the publication; the caller unlinked
    /// the table after that walk read it, and scans after the unlink, so it
    /// sees the word. Against unbind: the word is retired only after the
    /// PASID entry is gone, its lines dropped and a fence, so a word the scan
    /// misses has nothing cached and nothing in flight.
    package func invalidateKernelRange(_ start: UInt64, _ end: UInt64) -> Bool {
        core.invalidateKernelRange(start, end == .max ? .max : end &- 1, pasidsIn: domains)
    }

    #if SVAKIT_SCHEDULE_POINTS
    /// The same without the fence (the explorer's `BrokenFix.workWithoutFence`).
    package func invalidateKernelRangeWithoutFence(_ start: UInt64, _ end: UInt64) -> Bool {
        core.invalidateKernelRangeWithoutFence(start, end == .max ? .max : end &- 1, pasidsIn: domains)
    }
    #endif
}
