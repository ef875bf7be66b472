// SPDX-License-Identifier: Apache-2.0
import CSVAKitCore
import Synchronization
#if !SVAKIT_SINGLE_MODULE
@_spi(Engine) import SVAKitBase
@_spi(Engine) import SVAKitMemory
@_spi(Engine) import SVAKitIOMMU
#endif

/// The software IO TLB: a pool of bounce slots (kernel/dma/swiotlb.c at
/// 6.12.118, the default pool without CONFIG_SWIOTLB_DYNAMIC;
/// docs/KERNEL-MODEL.md §4.3b). dma-iommu bounces an untrusted device's
/// buffer that does not fill its granules through it, so the device's
/// IOMMU mapping covers slots and zeroed padding instead of the rest of the
/// caller's page.
///
/// As Linux: 2 KiB slots (IO_TLB_SHIFT 11) in segments of 128
/// (IO_TLB_SEGSIZE) that no allocation crosses; one area per CPU (rounded
/// up to a power of two, at most one per segment), each with its own lock,
/// its search index and its used count; each slot's `list` (free slots
/// from it to its segment's end), `orig_addr`, `alloc_size` and
/// `pad_slots`; the search of swiotlb_search_pool_area (alignment, stride,
/// wrap) starting in the calling CPU's area; swiotlb_bounce's copies and
/// swiotlb_release_slots's merging.
///
/// Differences, none visible to a caller: the pool is one block of 128
/// slots (256 KiB, order 6) per segment rather than one contiguous range
/// (no allocation crosses a segment, and each block is 256 KiB-aligned, so
/// the alignment test gives what a contiguous, 256 KiB-aligned pool would);
/// the device's min_align_mask is 0 (what dma-iommu's devices have unless
/// their driver sets one; NVMe's does) and its segment boundary the
/// default 4 GiB, which no segment crosses, so iommu_is_span_boundary is
/// always false here; the pool is reserved when the first untrusted device
/// gets a translated default domain, not at boot (docs/KERNEL-MODEL.md
/// §4.3b says why).
package final class SWIOTLB: @unchecked Sendable {
    // @unchecked: immutable after init; slot state is under the area locks,
    // figures are atomics.

    /// IO_TLB_SHIFT, IO_TLB_SIZE, IO_TLB_SEGSIZE (include/linux/swiotlb.h).
    package static let slotShift: UInt64 = 11, slotSize: UInt64 = 1 << 11, segSize = 128
    /// IO_TLB_DEFAULT_SIZE >> IO_TLB_SHIFT: 64 MiB.
    package static let defaultSlabs = (64 << 20) >> 11
    /// The order of one segment's block: 128 slots of 2 KiB, 64 frames.
    package static let segmentOrder = 6
    /// The owner recorded in the pool's frame descriptors ("5b" for sb,
    /// software bounce); the audit knows the pool by its blocks, not by this.
    package static let owner: UInt16 = 0x5b
    /// INVALID_PHYS_ADDR.
    package static let invalid = UInt64.max

    /// struct io_tlb_slot.
    package struct Slot {
        package var orig: UInt64 = SWIOTLB.invalid
        package var allocSize: UInt64 = 0
        package var padSlots: Int = 0
        package var list: Int
    }

    /// struct io_tlb_area: its slots are the pool's [a * areaSlabs, (a + 1) * areaSlabs).
    package struct Area {
        package var index = 0
        package var used = 0
        package var slots: [Slot]
    }

    package let nslabs: Int, nareas: Int, areaSlabs: Int
    /// Each segment's block (its head frame), in slot order.
    package let segments: [PFN]
    /// Segment base address -> segment number.
    private let segmentOf: [UInt64: Int]
    /// One lock per area (LockRank.swiotlbArea): its search index, used
    /// count and slots. Taken alone; nothing is called under it.
    private let areas: [LockBox<Area>]
    private let memory: PhysicalMemory

    /// Slots in use now, the most ever (mem->total_used, used_hiwater),
    /// buffers bounced, and maps refused because no slots were free.
    package let used = Atomic<Int>(0), hiwater = Atomic<Int>(0), bounced = Atomic<Int>(0), full = Atomic<Int>(0)

    /// The pool's size as swiotlb_init_remap makes it from `slabs`
    /// (swiotlb=<slabs>, aligned to a segment) and the CPU count
    /// (swiotlb_adjust_nareas(num_possible_cpus()) and round_up_default_nslabs,
    /// then limit_nareas): (slabs, areas).
    package static func geometry(slabs requested: Int, cpus: Int) -> (slabs: Int, areas: Int) {
        var slabs = (requested + segSize - 1) / segSize * segSize
        let nareas = cpus <= 1 ? 1 : 1 << (Int.bitWidth - (cpus - 1).leadingZeroBitCount)
        if slabs < segSize * nareas {
            slabs = segSize * nareas
        } else if slabs & (slabs - 1) != 0 {
            slabs = 1 << (Int.bitWidth - (slabs - 1).leadingZeroBitCount)
        }
        return (slabs, slabs < nareas * segSize ? slabs / segSize : nareas)
    }

    /// Allocates and zeroes the pool (swiotlb_init_io_tlb_pool); on failure
    /// frees what it took and throws.
    package init(frames: FrameMemory, slabs requested: Int, cpus: Int) throws(SVAError) {
        let (slabs, n) = Self.geometry(slabs: requested, cpus: cpus)
        var blocks: [PFN] = []
        blocks.reserveCapacity(slabs / Self.segSize)
        do throws(SVAError) {
            for _ in 0..<(slabs / Self.segSize) {
                blocks.append(try frames.alloc(order: Self.segmentOrder, kind: .data, site: .boot, owner: Self.owner))
            }
        } catch {
            for b in blocks { frames.free(b, site: .boot) }
            throw error
        }
        memory = frames.memory
        // memset(vaddr, 0, bytes), a word at a time.
        for b in blocks { for i in 0..<(1 << Self.segmentOrder) { memory.zeroTable(b + i) } }
        nslabs = slabs
        nareas = n
        areaSlabs = slabs / n
        segments = blocks
        segmentOf = Dictionary(uniqueKeysWithValues: blocks.enumerated().map { ($1.physicalAddress, $0) })
        let per = areaSlabs
        areas = (0..<n).map { _ in
            LockBox(.swiotlbArea, Area(slots: (0..<per).map { Slot(list: Self.segSize - $0 % Self.segSize) }))
        }
    }

    /// The physical address of slot `index` (slot_addr).
    package func slotAddress(_ index: Int) -> UInt64 {
        segments[index / Self.segSize].physicalAddress + UInt64(index % Self.segSize) << Self.slotShift
    }

    /// The slot holding `phys`, if it is in the pool (swiotlb_find_pool).
    package func slotIndex(_ phys: UInt64) -> Int? {
        let segBytes = UInt64(Self.segSize) << Self.slotShift
        guard let s = segmentOf[phys & ~(segBytes - 1)] else { return nil }
        return s * Self.segSize + Int((phys & (segBytes - 1)) >> Self.slotShift)
    }

    /// Whether `phys` lies in the pool (is_swiotlb_buffer).
    package func contains(_ phys: UInt64) -> Bool { slotIndex(phys) != nil }

    /// swiotlb_align_offset with the device's min_align_mask, which is 0.
    private static let minAlignMask: UInt64 = 0
    private static func alignOffset(_ alignMask: UInt64, _ addr: UInt64) -> UInt64 {
        addr & minAlignMask & (alignMask | (slotSize - 1))
    }

    private static func nrSlots(_ bytes: UInt64) -> Int { Int((bytes + slotSize - 1) >> slotShift) }

    /// swiotlb_tbl_map_single: finds slots for `size` bytes at `orig`
    /// (aligned and rounded to `alignMask + 1`), records orig_addr, and
    /// copies the buffer in, whatever the direction (6.12 copies on map for
    /// DMA_FROM_DEVICE too, so a partial device write leaves the rest as it
    /// was). Returns the bounce address, or nil when no slots are free
    /// ("swiotlb buffer is full": DMA_MAPPING_ERROR).
    package func mapSingle(orig: UInt64, size: UInt64, alignMask: UInt64, cpu: Int) -> UInt64? {
        var offset = Self.alignOffset(alignMask, orig)
        let allocSize = (size + offset + alignMask) & ~alignMask
        // swiotlb_find_slots: from the CPU's area, each area in turn.
        let start = cpu & (nareas - 1)
        var a = start
        var found: Int? = nil
        repeat {
            if let i = searchArea(a, orig: orig, allocSize: allocSize, alignMask: alignMask, offset: offset) {
                found = a * areaSlabs + i
                break
            }
            a = a + 1 >= nareas ? 0 : a + 1
        } while a != start
        guard var index = found else {
            full.add(1, ordering: .relaxed)
            return nil
        }
        let nslots = Self.nrSlots(allocSize)
        let now = used.add(nslots, ordering: .relaxed).newValue
        var high = hiwater.load(ordering: .relaxed)
        while now > high {
            let (done, seen) = hiwater.compareExchange(expected: high, desired: now, ordering: .relaxed)
            if done { break }
            high = seen
        }
        let padSlots = Int(offset >> Self.slotShift)
        offset &= Self.slotSize - 1
        index += padSlots
        let first = index, area = index / areaSlabs
        areas[area].locked { ar in
            ar.slots[first % areaSlabs].padSlots = padSlots
            for i in 0..<(nslots - padSlots) { ar.slots[(first + i) % areaSlabs].orig = orig + UInt64(i) << Self.slotShift }
        }
        let tlb = slotAddress(index) + offset
        bounced.add(1, ordering: .relaxed)
        bounce(tlb, size: size, toDevice: true)
        return tlb
    }

    /// swiotlb_search_pool_area in area `a`: the local index of the first
    /// slot, the slots marked used; nil when the area has no room.
    private func searchArea(_ a: Int, orig: UInt64, allocSize: UInt64, alignMask requested: UInt64,
                            offset: UInt64) -> Int? {
        let nslots = Self.nrSlots(allocSize)
        precondition(nslots > 0)
        var alignMask = requested
        var iotlbAlignMask = Self.minAlignMask
        // Streaming maps of a page or more stay page-aligned when nothing
        // else is asked for (dma-iommu always asks for its granule).
        if alignMask == 0 && iotlbAlignMask == 0 && allocSize >= UInt64(pageSize) { alignMask = UInt64(pageSize) - 1 }
        alignMask |= Self.slotSize - 1
        iotlbAlignMask &= ~alignMask
        let stride = Int(max(alignMask, iotlbAlignMask) >> Self.slotShift) + 1
        let base = a * areaSlabs, per = areaSlabs
        return areas[a].locked { ar -> Int? in
            guard nslots <= per - ar.used else { return nil }
            var index = ar.index, checked = 0
            while checked < per {
                let tlb = slotAddress(base + index)
                if tlb & alignMask != 0 || (orig != 0 && tlb & iotlbAlignMask != orig & iotlbAlignMask) {
                    index = index + 1 >= per ? 0 : index + 1
                    checked += 1
                    continue
                }
                // iommu_is_span_boundary: no segment crosses the 4 GiB
                // default segment boundary, so it never refuses here.
                if ar.slots[index].list >= nslots {
                    for i in index..<(index + nslots) {
                        ar.slots[i].list = 0
                        ar.slots[i].allocSize = allocSize - (offset + UInt64(i - index) << Self.slotShift)
                    }
                    var count = 0, i = index - 1
                    while i >= 0, i % Self.segSize != Self.segSize - 1, ar.slots[i].list != 0 {
                        count += 1
                        ar.slots[i].list = count
                        i -= 1
                    }
                    ar.index = index + nslots >= per ? 0 : index + nslots
                    ar.used += nslots
                    return index
                }
                index = index + stride >= per ? 0 : index + stride
                checked += stride
            }
            return nil
        }
    }

    /// swiotlb_bounce: copies `size` bytes between the bounce buffer at
    /// `tlb` and the original, to the slot (`toDevice`) or back; capped at
    /// what the slots hold (the kernel's "Buffer overflow detected" warning).
    package func bounce(_ tlb: UInt64, size requested: UInt64, toDevice: Bool) {
        guard let index = slotIndex(tlb) else { return }
        let (orig0, alloc0) = areas[index / areaSlabs].locked { ar in
            (ar.slots[index % areaSlabs].orig, ar.slots[index % areaSlabs].allocSize)
        }
        guard orig0 != Self.invalid else { return }
        // tlb_offset may be negative in the kernel (a later slot of an
        // allocation with an align offset); with min_align_mask 0 it is not.
        let tlbOffset = (tlb & (Self.slotSize - 1)) &- Self.alignOffset(0, orig0)
        let orig = orig0 &+ tlbOffset, alloc = alloc0 &- tlbOffset
        let size = min(requested, alloc)
        if toDevice { memory.copyBytes(from: orig, to: tlb, count: Int(size)) }
        else { memory.copyBytes(from: tlb, to: orig, count: Int(size)) }
    }

    /// __swiotlb_tbl_unmap_single (through swiotlb_tbl_unmap_single, which
    /// first finds the pool): copies back for DMA_FROM_DEVICE and
    /// DMA_BIDIRECTIONAL unless the caller skips the CPU sync, then
    /// swiotlb_release_slots. Does nothing for an address outside the pool.
    package func unmapSingle(_ tlb: UInt64, size: UInt64, direction: DMADirection, skipCPUSync: Bool = false) {
        guard slotIndex(tlb) != nil else { return }
        if !skipCPUSync && direction != .toDevice { bounce(tlb, size: size, toDevice: false) }
        releaseSlots(tlb)
    }

    /// swiotlb_release_slots: the allocation's slots go back to the free
    /// list, merged with free slots after them and before them in their segment.
    private func releaseSlots(_ tlb: UInt64) {
        let offset = Self.alignOffset(0, tlb)
        guard let raw = slotIndex(tlb - offset) else { return }
        let a = raw / areaSlabs, per = areaSlabs, seg = Self.segSize
        let nslots = areas[a].locked { ar -> Int in
            let index = raw % per - ar.slots[raw % per].padSlots
            let nslots = Self.nrSlots(ar.slots[index].allocSize + offset)
            var count = index + nslots < (index + 1 + seg - 1) / seg * seg ? ar.slots[index + nslots].list : 0
            for i in stride(from: index + nslots - 1, through: index, by: -1) {
                count += 1
                ar.slots[i] = Slot(list: count)
            }
            var i = index - 1
            while i >= 0, i % seg != seg - 1, ar.slots[i].list != 0 {
                count += 1
                ar.slots[i].list = count
                i -= 1
            }
            ar.used -= nslots
            return nslots
        }
        used.subtract(nslots, ordering: .relaxed)
    }

    /// swiotlb_max_mapping_size with min_align_mask 0: one segment, 256 KiB.
    package static var maxMappingSize: UInt64 { slotSize * UInt64(segSize) }

    /// The audit's check of the slot lists: in each area, the used count is
    /// the slots with list 0, every free slot's list counts the free slots
    /// from it to the first used slot or its segment's end, and only used
    /// slots carry an original address. Returns the slots in use.
    package func check(_ fail: (String) -> Void) -> Int {
        var total = 0
        for (a, box) in areas.enumerated() {
            box.locked { ar in
                var usedHere = 0, run = 0
                for i in stride(from: areaSlabs - 1, through: 0, by: -1) {
                    if i % Self.segSize == Self.segSize - 1 { run = 0 }
                    let s = ar.slots[i]
                    if s.list == 0 {
                        usedHere += 1
                        run = 0
                    } else {
                        run += 1
                        if s.list != run { fail("swiotlb area \(a) slot \(i): list \(s.list), \(run) free to the segment's end") }
                        if s.orig != Self.invalid { fail("swiotlb area \(a) slot \(i) is free but records an original") }
                    }
                }
                if usedHere != ar.used { fail("swiotlb area \(a): \(usedHere) slots used, counted \(ar.used)") }
                total += usedHere
            }
        }
        if total != used.load(ordering: .relaxed) { fail("swiotlb: \(total) slots used, counted \(used.load(ordering: .relaxed))") }
        return total
    }
}

extension PhysicalMemory {
    /// CPU byte copy between two physical ranges (a bounce), with the same
    /// relaxed byte accesses a device's copy uses.
    package func copyBytes(from src: UInt64, to dst: UInt64, count: Int) {
        let s = UnsafePointer<UInt8>(bytes.assumingMemoryBound(to: UInt8.self)) + Int(src)
        let d = bytes.assumingMemoryBound(to: UInt8.self) + Int(dst)
        markWritten(d, count: count)
        for i in 0..<count { svk_store8(d + i, svk_load8(s + i)) }
    }

    /// memset(phys_to_virt(at), 0, count).
    package func zeroBytes(at phys: UInt64, count: Int) {
        let d = bytes.assumingMemoryBound(to: UInt8.self) + Int(phys)
        markWritten(d, count: count)
        for i in 0..<count { svk_store8(d + i, 0) }
    }
}
