// SPDX-License-Identifier: Apache-2.0
import CSVAKit
internal import CSVAKitCore

/// Layers 5 and 6: the IOMMUs and devices of a machine, the SVA registry
/// (docs/KERNEL-MODEL.md §1.4-1.5) and the static key with the slow path of
/// the kernel-address gate (§1.6, §6). Depends on the page tables (an mm's
/// root) and the IOMMUs below it.
///
/// Writers hold `state` for the bookkeeping, and take an IOMMU's lock inside
/// it only to change a PASID entry. Every command that reaches a driver (an
/// invalidation, a fence) is collected under the lock and issued after it.
final class SVARegistry: @unchecked Sendable {
    // @unchecked: `key` is written only with atomics; the rest are locks
    // and published tables.

    let tables: PageTables
    let frames: FrameMemory
    /// The static key iommu_sva_present, inside the C handle.
    private let key: UnsafeMutablePointer<Int32>

    /// The registry lock (iommu_sva_lock): devices, per-mm data, domains,
    /// bonds, the PASID allocator, the IOMMU list; it serialises every writer
    /// of the three published tables and of the key.
    let state: RankedMutex<RegistryState>
    /// (PASID, IOMMU) of every domain an IOMMU may walk a CPU mm through: SVA
    /// domains and explicit PASID attachments. What the gate's slow path
    /// scans, with no lock (see PublishedWords).
    let domains = PublishedWords()
    /// Unmanaged IOMMU references by id.
    let iommuTable = PublishedWords(capacity: 8)
    /// (PASID width, IOMMU index + 1) by device id.
    let deviceTable = PublishedWords()

    /// kpti-root: PASID entries point at the mm's IOMMU-only root
    /// (`PageTables.iommuRoot(of:)`), never at its CPU root.
    let iommuOnlyRoots: Bool

    init(tables: PageTables, key: UnsafeMutablePointer<Int32>, pasidBits: Int, iommuOnlyRoots: Bool = false) {
        self.tables = tables
        self.iommuOnlyRoots = iommuOnlyRoots
        frames = tables.frames
        self.key = key
        state = RankedMutex(.registry, RegistryState(pasidBits: pasidBits))
    }

    // MARK: - IOMMUs and devices

    func addIOMMU(_ config: IOMMUConfig, traceWalks: Bool) -> IOMMU {
        state.locked { r in
            let iommu = IOMMU(id: UInt32(r.iommuCount), config: config, memory: frames.memory, events: frames.events,
                              rootLevel: tables.layout.rootLevel, traceWalks: traceWalks)
            r.iommus.append(iommu)
            let slot = iommuTable.insert(UInt64(UInt(bitPattern: Unmanaged.passUnretained(iommu).toOpaque())))
            precondition(slot == Int(iommu.id.rawValue))
            return iommu
        }
    }

    func iommu(_ id: UInt32) throws(SVAError) -> IOMMU {
        let w = iommuTable.word(at: Int(id))
        guard w != 0, let p = UnsafeRawPointer(bitPattern: UInt(w)) else { throw .noDevice }
        return Unmanaged<IOMMU>.fromOpaque(p).takeUnretainedValue()
    }

    /// Runs body with the IOMMU of `index`, borrowed without ARC traffic.
    @inline(__always)
    func withIOMMU<R>(_ index: Int, _ body: (IOMMU) -> R) -> R? {
        let w = iommuTable.word(at: index)
        guard w != 0, let p = UnsafeRawPointer(bitPattern: UInt(w)) else { return nil }
        return Unmanaged<IOMMU>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    func addDevice(iommu: UInt32, sva: Bool, pasidBits: Int, untrusted: Bool = false) throws(SVAError) -> UInt32 {
        guard pasidBits >= 1, pasidBits <= 20 else { throw .invalidArgument }
        return try state.locked { r throws(SVAError) in
            guard Int(iommu) < r.iommuCount else { throw .noDevice }
            var d = DeviceRecord(iommu: Int(iommu), sva: sva, pasidLimit: 1 << pasidBits)
            d.untrusted = untrusted
            r.devices.append(d)
            // The DMA paths read the device's word without the lock.
            let id = deviceTable.insert(DeviceWord(iommu: Int(iommu), pasidBits: pasidBits,
                                                   untrusted: untrusted, defaultDomain: nil).raw)
            precondition(id == r.devices.count - 1)
            return UInt32(id)
        }
    }

    /// What the DMA paths know of a device, read with no lock.
    func deviceWord(_ device: UInt32) throws(SVAError) -> DeviceWord {
        let w = deviceTable.word(at: Int(device))
        guard w != 0 else { throw .noDevice }
        return DeviceWord(raw: w)
    }

    /// The IOMMU index of a device, after checking the PASID fits it. No lock.
    /// PASID 0 is IOMMU_NO_PASID: a request without PASID, which the
    /// device's default DMA domain translates (and which faults at the
    /// PASID-table step when none is attached).
    func route(device: UInt32, pasid: UInt32) throws(SVAError) -> Int {
        let w = try deviceWord(device)
        guard UInt64(pasid) < 1 << w.pasidBits else { throw .overflow }
        return w.iommu
    }

    // MARK: - The static key

    /// iommu_sva_present, as the gate reads it.
    var keyIsOn: Bool { svk_load_key(key) != 0 }

    /// Publishes a (pasid, IOMMU) word, or takes one more use of it; the
    /// first word turns the key on. Registry lock held.
    private func publish(_ r: inout RegistryState, _ word: UInt64) {
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
    /// turns the key off. Registry lock held.
    private func retire(_ r: inout RegistryState, _ word: UInt64) {
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
    func bind(device: UInt32, mm: UInt32) throws(SVAError) -> SVABond {
        try state.locked { r throws(SVAError) in
            let d = try r.device(device)
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
                let word = RegistryState.domainWord(pasid: pasid, iommu: d.iommu)
                publish(&r, word)
                r.mmData[mm]!.domains[d.iommu] = SVADomain(users: 1, word: word)
            }
            installPASID(iommu: d.iommu, device: device, pasid: pasid, mm: mm, root: root)
            let h = r.nextHandle
            r.nextHandle &+= 1
            r.bonds[h] = Bond(device: device, mm: mm, pasid: pasid, users: 1)
            r.devices[Int(device)].attachments[pasid] = .sva(handle: h, mm: mm)
            return SVABond(rawValue: h, pasid: PASID(pasid))
        }
    }

    /// What a detach leaves to do once the registry lock is dropped.
    private struct Teardown {
        let iommu: Int
        let pasid: UInt32
        /// Drop the PASID's lines (the domain's last user went).
        let flush: Bool
        /// The published word to drop a use of after the flush and the fence.
        let retireWord: UInt64?
    }

    /// iommu_sva_unbind_device (docs/KERNEL-MODEL.md §1.5). The PASID entry
    /// goes under the lock; the invalidation and the fence go after it; the
    /// published word goes last, so the gate keeps reaching the domain until
    /// nothing of it can be cached or in flight.
    func unbind(handle h: UInt32) throws(SVAError) {
        let t = try state.locked { r throws(SVAError) -> Teardown? in
            guard var bond = r.bonds[h] else { throw .staleHandle }
            bond.users -= 1
            guard bond.users == 0 else { r.bonds[h] = bond; return nil }
            r.bonds[h] = nil
            let d = r.devices[Int(bond.device)]
            r.devices[Int(bond.device)].attachments[bond.pasid] = nil
            var domain = r.mmData[bond.mm]!.domains[d.iommu]!
            domain.users -= 1
            removePASID(iommu: d.iommu, device: bond.device, pasid: bond.pasid)
            if domain.users > 0 {
                r.mmData[bond.mm]!.domains[d.iommu] = domain
                return Teardown(iommu: d.iommu, pasid: bond.pasid, flush: false, retireWord: nil)
            }
            r.mmData[bond.mm]!.domains[d.iommu] = nil
            if r.mmData[bond.mm]!.domains.isEmpty { r.svaMMCount -= 1 }
            return Teardown(iommu: d.iommu, pasid: bond.pasid, flush: true, retireWord: domain.word)
        }
        if let t { finish(t) }
    }

    /// A non-SVA attachment of mm's tables at a PASID the caller picks (as a
    /// VMM does through iommufd). An IOMMU can walk the mm's kernel half
    /// through it as through an SVA domain, so it is published for the gate
    /// too (Linux reaches every such walker through the mm's SVA domain).
    func attach(device: UInt32, pasid: UInt32, mm: UInt32) throws(SVAError) {
        try state.locked { r throws(SVAError) in
            let d = try r.device(device)
            guard pasid > 0 else { throw .invalidArgument }
            guard Int(pasid) < d.pasidLimit else { throw .overflow }
            // init_mm is the kernel's own: no device may walk it at a PASID.
            guard mm != 0 else { throw .invalidArgument }
            guard d.attachments[pasid] == nil else { throw .busy }
            let root = try walkRoot(of: mm)
            publish(&r, RegistryState.domainWord(pasid: pasid, iommu: d.iommu))
            installPASID(iommu: d.iommu, device: device, pasid: pasid, mm: mm, root: root)
            r.devices[Int(device)].attachments[pasid] = .explicit(mm: mm)
        }
    }

    /// Attaches a DMA domain as `device`'s default domain: its requests
    /// without PASID walk the domain's tables. The domain must belong to
    /// the device's IOMMU; a device has one default domain at a time.
    func attachDefaultDomain(device: UInt32, iommu: Int, domain: UInt32, entry: PasidEntry) throws(SVAError) {
        try state.locked { r throws(SVAError) in
            let d = try r.device(device)
            guard !r.dyingDomains.contains(domain) else { throw .noDevice }
            guard d.iommu == iommu else { throw .invalidArgument }
            guard d.defaultDomain == nil else { throw .busy }
            withIOMMU(iommu) { $0.setPASIDEntry(device: device, pasid: 0, entry) }
            r.devices[Int(device)].defaultDomain = domain
            publishDevice(r, device)
        }
    }

    /// Removes the device's default domain entry and returns the domain;
    /// the caller invalidates and fences.
    func detachDefaultDomain(device: UInt32) throws(SVAError) -> UInt32 {
        try state.locked { r throws(SVAError) in
            let d = try r.device(device)
            guard let domain = d.defaultDomain else { throw .notFound }
            withIOMMU(d.iommu) { $0.setPASIDEntry(device: device, pasid: 0, nil) }
            r.devices[Int(device)].defaultDomain = nil
            publishDevice(r, device)
            return domain
        }
    }

    /// Republishes a device's word after its default domain changed.
    /// Registry lock held.
    private func publishDevice(_ r: RegistryState, _ device: UInt32) {
        let d = r.devices[Int(device)]
        deviceTable.store(DeviceWord(iommu: d.iommu, pasidBits: d.pasidLimit.trailingZeroBitCount,
                                     untrusted: d.untrusted, defaultDomain: d.defaultDomain).raw,
                          at: Int(device))
    }

    /// iommu_domain_free's check: refused while a device uses `domain` as
    /// its default domain; otherwise no attach to it succeeds any more.
    func markDomainDying(_ domain: UInt32) throws(SVAError) {
        try state.locked { r throws(SVAError) in
            guard !r.devices.contains(where: { $0.defaultDomain == domain }) else { throw .busy }
            r.dyingDomains.insert(domain)
        }
    }

    /// Whether an untrusted device has `domain` as its default domain.
    func usesUntrusted(domain: UInt32) -> Bool {
        state.locked { r in r.devices.contains { $0.defaultDomain == domain && $0.untrusted } }
    }

    /// Whether any device has `domain` as its default domain.
    func isDefaultDomainAttached(_ domain: UInt32) -> Bool {
        state.locked { r in r.devices.contains { $0.defaultDomain == domain } }
    }

    func detach(device: UInt32, pasid: UInt32) throws(SVAError) {
        let t = try state.locked { r throws(SVAError) -> Teardown in
            let d = try r.device(device)
            guard case .explicit = d.attachments[pasid] else { throw .notFound }
            removePASID(iommu: d.iommu, device: device, pasid: pasid)
            r.devices[Int(device)].attachments[pasid] = nil
            return Teardown(iommu: d.iommu, pasid: pasid, flush: true,
                            retireWord: RegistryState.domainWord(pasid: pasid, iommu: d.iommu))
        }
        finish(t)
    }

    /// After a detach, with no lock held: drop the lines, wait for walks in
    /// flight, then retire the published word.
    private func finish(_ t: Teardown) {
        withIOMMU(t.iommu) { i in
            if t.flush { i.invalidatePASID(PASID(t.pasid)) }
            i.fence()
        }
        if let word = t.retireWord { state.locked { r in retire(&r, word) } }
    }

    /// The root a PASID entry for `mm` points at: the mm's own, or with
    /// kpti-root its IOMMU-only root (allocated at the first bind; may
    /// throw ``SVAError/outOfMemory``). Registry lock held.
    private func walkRoot(of mm: UInt32) throws(SVAError) -> TableFrame {
        iommuOnlyRoots ? try tables.iommuRoot(of: mm) : try tables.root(of: mm)
    }

    private func installPASID(iommu: Int, device: UInt32, pasid: UInt32, mm: UInt32, root: TableFrame) {
        let gen = frames.memory.generation(root.pfn)
        withIOMMU(iommu) { i in
            // SRE only where the IOMMU is configured for supervisor SVA
            // (beyond Linux since 942fd5435dcc; IOMMUConfig.svaSupervisorRequests).
            i.setPASIDEntry(device: device, pasid: pasid, PasidEntry(root: root.pfn, rootGeneration: gen, mm: mm, tag: pasid,
                                                                     supervisorRequests: i.config.svaSupervisorRequests))
        }
    }

    private func removePASID(iommu: Int, device: UInt32, pasid: UInt32) {
        withIOMMU(iommu) { $0.setPASIDEntry(device: device, pasid: pasid, nil) }
    }

    // MARK: - Queries

    func pasid(ofBond handle: UInt32) throws(SVAError) -> UInt32 {
        try state.locked { r throws(SVAError) in
            guard let b = r.bonds[handle] else { throw .staleHandle }
            return b.pasid
        }
    }

    func pasid(ofMM mm: UInt32) -> UInt32? { state.locked { $0.mmData[mm]?.pasid } }
    var svaMMCount: Int { state.locked { $0.svaMMCount } }
    var keyTransitions: Int { state.locked { $0.keyTransitions } }

    /// mm teardown: refused while a device is attached; otherwise `teardown`
    /// runs under the registry lock (no bind can race it) and the mm's PASID
    /// is dropped (mm_pasid_drop).
    func tearDown<R: ~Copyable>(mm: UInt32, _ teardown: () throws(SVAError) -> R) throws(SVAError) -> R {
        try state.locked { r throws(SVAError) in
            try r.checkDetached(mm)
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
    func mmInvalidateRange(_ mm: UInt32, _ start: UInt64, _ end: UInt64) {
        let targets: (pasid: UInt32, iommus: [Int])? = state.locked { r in
            guard let data = r.mmData[mm], !data.domains.isEmpty else { return nil }
            return (data.pasid, Array(data.domains.keys))
        }
        guard let targets else { return }
        for index in targets.iommus {
            withIOMMU(index) { $0.invalidateRange(pasid: PASID(targets.pasid), start: start, end: end &- 1, leafOnly: false) }
        }
    }

    // MARK: - The gate's slow path

    /// iommu_sva_invalidate_kva_range's out-of-line half: invalidates
    /// [start, end) with the leaf-only hint clear for every published domain,
    /// one hold of each IOMMU's lock for all its domains, then fences each
    /// IOMMU it touched. Returns whether it invalidated anything.
    ///
    /// The read side takes no registry lock (the words are published
    /// RCU-style), so it may run where the caller cannot sleep. Why it is
    /// right against a concurrent bind: bind publishes the word and sets the
    /// key *before* it installs the PASID entry. A walk that cached a table
    /// needs that entry, so it follows the publication; the caller unlinked
    /// the table after that walk read it, and scans after the unlink, so it
    /// sees the word. Against unbind: the word is retired only after the
    /// PASID entry is gone, its lines dropped and a fence, so a word the scan
    /// misses has nothing cached and nothing in flight.
    func invalidateKernelRange(_ start: UInt64, _ end: UInt64) -> Bool {
        let last = end == .max ? .max : end &- 1
        var any = false
        for index in 0..<iommuTable.count {
            let n = withIOMMU(index) { iommu in
                iommu.invalidateKernelRange(start: start, end: last) { body in
                    domains.forEach { w in
                        let (pasid, i) = RegistryState.decode(w)
                        if i == index { body(pasid) }
                    }
                }
            } ?? 0
            if n > 0 {
                withIOMMU(index) { $0.fence() }
                any = true
            }
        }
        return any
    }
}
