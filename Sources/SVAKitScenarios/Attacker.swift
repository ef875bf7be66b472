// SPDX-License-Identifier: Apache-2.0
import SVAKit
import Synchronization

/// One SVA device bound to one process, the setting of every scenario.
public struct SVASetup: Sendable {
    /// The IOMMU the setup added.
    public let iommu: IOMMU
    /// The SVA device behind it.
    public let device: DeviceID
    /// The process address space the device is bound to.
    public let mm: MMID
    /// The bond (`iommu_sva_bind_device`); its PASID tags the device's DMA.
    public let bond: SVABond

    /// Adds an IOMMU and an SVA device to `m`, creates an address space and
    /// binds the device to it (`Machine.bindSVA(device:mm:)`). Throws what
    /// those calls throw.
    public init(_ m: Machine, iommu config: IOMMUConfig = IOMMUConfig()) throws(SVAError) {
        iommu = try m.addIOMMU(config)
        device = try m.addDevice(iommu: iommu.id)
        mm = try m.createAddressSpace()
        bond = try m.bindSVA(device: device, mm: mm)
    }

    /// A DMA read of 8 bytes: a user request, or with `supervisor` a
    /// privileged one (translated only where the IOMMU enables supervisor
    /// SVA, `IOMMUConfig.svaSupervisorRequests`).
    public func touch(_ m: Machine, _ va: UInt64, supervisor: Bool = false) throws(SVAError) -> Result<[UInt8], DMAFault> {
        try m.dmaRead(device: device, pasid: bond.pasid, va: va, count: 8, access: supervisor ? .privileged : [])
    }
}

/// The attacker's part: take the next free frame (the freed table, under
/// LIFO reuse) and fill the entry that maps `va` at `level` so it points at
/// `target` as a user-accessible leaf.
public func plantLeaf(_ m: Machine, va: UInt64, level: Int, target: PFN) throws(SVAError) -> PFN {
    let frame = try m.allocFrames(owner: 0xbad)
    let huge = level > 1 ? PageTableEntry.pageSize : 0
    let entry = target.physicalAddress | PageTableEntry.present | PageTableEntry.writable | PageTableEntry.user | huge
    for i in 0..<512 { try m.writeWord(frame, index: i, 0) }
    try m.writeWord(frame, index: AddressLayout.index(va, level: level), entry)
    return frame
}

/// The attacker's move inside a kernel window (`Machine.setKernelWindowHook(_:)`):
/// done once, at the first window, its outcome kept for the scenario.
public final class WindowAttack: Sendable {
    private let state = Mutex<(done: Bool, outcome: Result<Result<[UInt8], DMAFault>, SVAError>?)>((false, nil))

    /// An attack with nothing done yet.
    public init() {}

    /// Runs `attack` unless an earlier window already did.
    public func strike(_ attack: () throws(SVAError) -> Result<[UInt8], DMAFault>) {
        guard state.withLock({ s in
            defer { s.done = true }
            return !s.done
        }) else { return }
        let r: Result<Result<[UInt8], DMAFault>, SVAError>
        do throws(SVAError) { r = .success(try attack()) } catch { r = .failure(error) }
        state.withLock { $0.outcome = r }
    }

    /// What the device saw in the window, nil if no window opened; rethrows
    /// what the attack threw.
    public func result() throws(SVAError) -> Result<[UInt8], DMAFault>? {
        guard let r = state.withLock({ $0.outcome }) else { return nil }
        return try r.get()
    }
}

/// The secret the attacker wants: a kernel data frame holding "SECRET!!".
public func makeSecret(_ m: Machine) throws(SVAError) -> PFN {
    let s = try m.allocFrames(owner: 0x5ec)
    try m.writeWord(s, index: 0, secretWord)
    return s
}

/// The secret's first word: "SECRET!!" read as a little-endian `UInt64`.
public let secretWord: UInt64 = 0x2121_5445_5243_4553  // "SECRET!!" little-endian

extension Result where Success == [UInt8], Failure == DMAFault {
    /// Whether the read returned the secret.
    public var isSecret: Bool {
        guard case .success(let b) = self, b.count == 8 else { return false }
        return b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == secretWord
    }
}
