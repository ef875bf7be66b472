/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svakit_debug.h - the inspection and test-only part of SVAKit's C ABI.
 *
 * What is here looks inside the model or pokes it where no kernel path
 * could: the audit of the machine's bookkeeping, fault injection (fail_nth),
 * the raw descriptor and bytes of any frame by frame number (bypassing every
 * page table), an IOMMU's hardware command log, the IOVAs a flush queue
 * holds, and the event log. A harness needs these to test SVAKit itself or
 * to look inside a run; a harness that only drives the kernel paths and the
 * hardware needs none of them. The counters and stats each layer keeps
 * (svakit_machine_stats(), svakit_iommu_counters(), svakit_deferred_stats(),
 * ...) stay in svakit.h: a harness's verdict reads them.
 *
 * svakit.h includes this header, so every 0.5 caller still compiles and a
 * program includes only svakit.h; including svakit_debug.h says that a file
 * uses these calls. The conventions, the naming rule, the error table and
 * the context rules are svakit.h's; the same ABI promises hold (every
 * function has @c @implementation in Swift and a kernel-doc comment).
 */
#ifndef SVAKIT_DEBUG_H
#define SVAKIT_DEBUG_H

#include "svakit.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Audit and fault injection                                               */
/* ------------------------------------------------------------------------ */

/**
 * svakit_machine_check() - audit a machine's bookkeeping.
 * @m: the machine.
 *
 * Audits every descriptor, free list and table link, and conservation of
 * frames (docs/TESTING.md, "The machine check"). O(frames): for tests. Prints
 * nothing; svakit_machine_check_text() says what is wrong.
 *
 * Context: Takes the address-space, page-table, deferred-list and frame
 * allocator locks in turn. Meaningful only while no other thread changes @m.
 * May be called from any callback.
 * Return: 0 when consistent.
 * -EUCLEAN: the bookkeeping is inconsistent.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_machine_check(svakit_machine *m);

/**
 * svakit_machine_check_text() - audit a machine and describe what is wrong.
 * @m: the machine.
 * @buf: receives the problems found, one per line, each ending in a newline;
 *	empty when the machine is consistent.
 * @len: the size of @buf, the NUL included; longer text is truncated.
 *
 * The audit of svakit_machine_check(), for harnesses that print its findings
 * on failure (the library itself prints nothing).
 *
 * Context: As svakit_machine_check().
 * Return: 0 when consistent.
 * -EUCLEAN: the bookkeeping is inconsistent (@buf says how).
 * -EFAULT: @m or @buf is NULL.
 * -EINVAL: @len is 0 (no room for the NUL).
 * -EBADF: @m is not a live machine.
 */
int svakit_machine_check_text(svakit_machine *m, char *buf, size_t len);

/**
 * enum svakit_fail_what - what svakit_fail_nth() made fail.
 * @SVAKIT_FAIL_NONE: nothing, since it was last armed.
 * @SVAKIT_FAIL_FRAME: a frame (alloc_pages): the call returned -ENOMEM.
 * @SVAKIT_FAIL_PASID: a PASID (iommu_alloc_global_pasid, in a bind): -ENOSPC.
 * @SVAKIT_FAIL_VMALLOC_RANGE: a vmalloc address range (alloc_vmap_area): -ENOSPC.
 * @SVAKIT_FAIL_IOVA: an IOVA range (alloc_iova_fast, in a DMA map): -ENOSPC.
 */
enum svakit_fail_what {
	SVAKIT_FAIL_NONE = 0,
	SVAKIT_FAIL_FRAME = 1,
	SVAKIT_FAIL_PASID = 2,
	SVAKIT_FAIL_VMALLOC_RANGE = 3,
	SVAKIT_FAIL_IOVA = 4,
};

/**
 * svakit_fail_nth() - make the n-th allocation from now fail, as iommufd's fail_nth.
 * @m: the machine.
 * @n: 1 for the next allocation, 2 for the one after, ...; 0 disarms.
 * @made: receives the allocations made since the previous call (a harness
 *	walks every failure point of a call by arming 1, 2, ... up to what a
 *	clean run made); NULL if not wanted.
 *
 * The allocations counted are the engine's own: frames (page tables and
 * data), PASIDs, vmalloc address ranges and IOVAs. The failing call
 * returns the error that allocation's real exhaustion returns and must
 * leave the machine consistent (svakit_machine_check()).
 *
 * Context: Atomic counters, no lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_fail_nth(svakit_machine *m, uint32_t n, uint64_t *made);

/**
 * svakit_fail_nth_injected() - what svakit_fail_nth() made fail since it was armed.
 * @m: the machine.
 * @what: receives an enum svakit_fail_what (SVAKIT_FAIL_NONE if nothing).
 *
 * Context: As svakit_fail_nth().
 * Return: 0 on success.
 * -EFAULT: @m or @what is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_fail_nth_injected(svakit_machine *m, uint32_t *what);

/* ------------------------------------------------------------------------ */
/* Raw frames: descriptors and bytes by frame number                       */
/* ------------------------------------------------------------------------ */

/**
 * svakit_frame_info() - copy a frame's descriptor.
 * @m: the machine.
 * @pfn: the frame, free or not.
 * @out: receives the descriptor.
 *
 * Context: Takes at most the frame allocator's lock, briefly. May be called
 * from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @out is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @pfn is past the end of memory.
 */
int svakit_frame_info(svakit_machine *m, uint64_t pfn, struct svakit_ptdesc *out);

/**
 * svakit_frame_read() - read bytes of a frame.
 * @m: the machine.
 * @pfn: the frame.
 * @offset: the first byte, in the frame.
 * @buf: receives the bytes.
 * @len: how many; @offset + @len must stay in the frame.
 *
 * Context: Takes at most the frame allocator's lock, briefly. May be called
 * from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @buf is NULL (even with @len 0).
 * -EBADF: @m is not a live machine.
 * -ERANGE: @pfn is past the end of memory.
 * -EINVAL: the range leaves the frame.
 */
int svakit_frame_read(svakit_machine *m, uint64_t pfn, uint32_t offset,
		      void *buf, size_t len);

/**
 * svakit_frame_write() - write bytes into a frame.
 * @m: the machine.
 * @pfn: the frame; not a live page table.
 * @offset: the first byte, in the frame.
 * @buf: the bytes.
 * @len: how many; @offset + @len must stay in the frame.
 *
 * Tables change only through the mapping calls and svakit_pagetable_write_entry() /
 * svakit_pagetable_link(), which keep them valid.
 *
 * Context: Takes at most the frame allocator's lock, briefly. May be called
 * from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @buf is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @pfn is past the end of memory.
 * -EINVAL: the range leaves the frame (nothing is written).
 * -EPERM: @pfn is a live page table.
 */
int svakit_frame_write(svakit_machine *m, uint64_t pfn, uint32_t offset,
		       const void *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* An IOMMU's hardware command log (docs/KERNEL-MODEL.md §3.6)             */
/* ------------------------------------------------------------------------ */

/**
 * struct svakit_iommu_commands - the hardware commands an IOMMU's profile
 * issued, by kind.
 * @vtd_page_selective: VT-d PASID-based IOTLB invalidation,
 *	page-selective-within-PASID, IH=0.
 * @vtd_page_selective_ih: the same with IH=1 (paging-structure caches kept).
 * @vtd_pasid_selective: VT-d PASID-based IOTLB invalidation, PASID-selective.
 * @vtd_wait: VT-d invalidation wait descriptors (one per batch of up to 16).
 * @smmu_tlbi_nh_va: SMMUv3 CMD_TLBI_NH_VA with LEAF=0.
 * @smmu_tlbi_nh_va_leaf: SMMUv3 CMD_TLBI_NH_VA with LEAF=1.
 * @smmu_tlbi_nh_asid: SMMUv3 CMD_TLBI_NH_ASID.
 * @smmu_sync: SMMUv3 CMD_SYNC.
 * @amd_invalidate_pages: AMD INVALIDATE_IOMMU_PAGES (PDE=1) with a page or
 *	size-encoded address.
 * @amd_invalidate_all_pages: the same with the all-pages address.
 * @amd_completion_wait: AMD COMPLETION_WAIT.
 * @riscv_inval_vma_addr: RISC-V IOTINVAL.VMA with AV=1 (leaf entries of one
 *	address).
 * @riscv_inval_vma_pscid: RISC-V IOTINVAL.VMA with AV=0, PSCV=1.
 * @riscv_iofence: RISC-V IOFENCE.C.
 * @modelled_device_ns: the modelled device time of every command and sync
 *	the IOMMU received, in ns (docs/KERNEL-MODEL.md §4.6).
 *
 * An SVAKIT_IOMMU_GENERIC IOMMU leaves every count but @modelled_device_ns
 * at zero: its commands are the requests struct svakit_iommu_counters counts.
 */
struct svakit_iommu_commands {
	uint64_t vtd_page_selective, vtd_page_selective_ih, vtd_pasid_selective, vtd_wait;
	uint64_t smmu_tlbi_nh_va, smmu_tlbi_nh_va_leaf, smmu_tlbi_nh_asid, smmu_sync;
	uint64_t amd_invalidate_pages, amd_invalidate_all_pages, amd_completion_wait;
	uint64_t riscv_inval_vma_addr, riscv_inval_vma_pscid, riscv_iofence;
	uint64_t modelled_device_ns;
};

/**
 * svakit_iommu_commands() - copy the hardware commands an IOMMU issued.
 * @m: the machine.
 * @iommu: the IOMMU.
 * @out: receives the counts.
 *
 * Context: Takes the IOMMU's lock briefly. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @out is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no IOMMU has that id.
 */
int svakit_iommu_commands(svakit_machine *m, uint32_t iommu, struct svakit_iommu_commands *out);

/* ------------------------------------------------------------------------ */
/* A DMA domain's flush queue, entry by entry                              */
/* ------------------------------------------------------------------------ */

/**
 * struct svakit_queued_iova - an unmap waiting in a flush queue.
 * @iova: its first IOVA (the granule it starts in).
 * @size: its length in bytes (whole granules).
 * @counter: fq_flush_start_cnt when it was queued: a flush that starts
 *	after it and finishes releases it.
 * @ring: the ring it waits in: its CPU, or 0 for the single queue.
 */
struct svakit_queued_iova {
	uint64_t iova;
	uint64_t size;
	uint64_t counter;
	uint32_t ring;
	uint32_t reserved;
};

/**
 * svakit_flush_queue_entries() - the IOVAs a domain's flush queue holds now.
 * @m: the machine.
 * @domain: a translated domain.
 * @out: receives up to @cap entries, ring by ring, oldest first; may be
 *	NULL when @cap is 0.
 * @cap: room in @out.
 * @count: receives how many entries wait (may exceed @cap: call again
 *	with more room).
 *
 * What a lazy unmap leaves behind until its flush: each entry's IOVA is not
 * handed out again, and a device may still reach its pages through a stale
 * IOTLB entry, until a flush that started after it has finished.
 *
 * Context: Takes each ring's lock in turn. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @count is NULL, or @out is NULL with @cap not 0.
 * -EINVAL: @cap is past SSIZE_MAX (a negative size).
 * -EBADF: @m is not a live machine.
 * -ENODEV: no domain has that id.
 * -EINVAL: @domain is an identity domain (it has no queue).
 */
int svakit_flush_queue_entries(svakit_machine *m, uint32_t domain, struct svakit_queued_iova *out, size_t cap,
			       size_t *count);

/* ------------------------------------------------------------------------ */
/* The event log                                                           */
/* ------------------------------------------------------------------------ */

/**
 * enum svakit_event_type - what happened at one step (svakit_event.type).
 * @SVAKIT_EV_FRAME_ALLOC: a frame block was allocated.
 * @SVAKIT_EV_FRAME_FREE: a frame block was freed.
 * @SVAKIT_EV_TABLE_LINK: a table was linked under an entry.
 * @SVAKIT_EV_TABLE_UNLINK: the entry pointing at a table was cleared.
 * @SVAKIT_EV_TLB_FLUSH: a flush of va..aux; aux = UINT64_MAX for flush_tlb_all.
 * @SVAKIT_EV_HOT_REMOVE: memory was hot-removed.
 * @SVAKIT_EV_HOT_ADD: memory was hot-added.
 * @SVAKIT_EV_DEFER_QUEUE: pagetable_free_kernel queued pfn.
 * @SVAKIT_EV_DEFER_BATCH: the work took aux frames off the list.
 * @SVAKIT_EV_KVA_INVALIDATE: the work called the gate over va..aux.
 * @SVAKIT_EV_DMA_WALK: an IOMMU walk of va (only with walk tracing): aux = 0
 *	or the fault reason, pfn = the frame.
 * @SVAKIT_EV_UAF_REPORT: the oracle reported a walk through pfn.
 * @SVAKIT_EV_DMA_LAZY_WINDOW: the first lazy (DMA-FQ) domain: the machine is
 *	tainted; va = the longest a device may keep access after dma_unmap
 *	(ns), aux = the unmaps that may wait for a flush at once.
 * @SVAKIT_EV_IOMMU_DEBUG_WARN: the sanitizer warned: va = the IOVA or
 *	physical address, aux = what (1 a count at its maximum, 2 a count
 *	lowered at zero, 3 an unmap removed more than asked), generation =
 *	the domain id.
 * @SVAKIT_EV_DMA_DEBUG_ERROR: with svakit_config.dma_debug 1, an unmap that
 *	matches no mapping went ahead and dma-debug reported it: va = the DMA
 *	address, aux = what (1 "tries to free DMA memory it has not
 *	allocated", 2 "with different size", 3 "with different direction",
 *	4 dma-iommu's WARN that the unmap removed another size, 5 its WARN
 *	that the address has no translation: nothing was unmapped or freed),
 *	generation = the device.
 * @SVAKIT_EV_DMA_DAC_NOTICE: a device's IOVA try below 4 GiB failed, so PCI's
 *	32-bit workaround is off for it from now on (iommu_dma_alloc_iova's
 *	"Using %d-bit DMA addresses"): va = the device, aux = the bits of its
 *	limit.
 */
enum svakit_event_type {
	SVAKIT_EV_FRAME_ALLOC = 1,
	SVAKIT_EV_FRAME_FREE = 2,
	SVAKIT_EV_TABLE_LINK = 3,
	SVAKIT_EV_TABLE_UNLINK = 4,
	SVAKIT_EV_TLB_FLUSH = 5,
	SVAKIT_EV_HOT_REMOVE = 6,
	SVAKIT_EV_HOT_ADD = 7,
	SVAKIT_EV_DEFER_QUEUE = 8,
	SVAKIT_EV_DEFER_BATCH = 9,
	SVAKIT_EV_KVA_INVALIDATE = 10,
	SVAKIT_EV_DMA_WALK = 11,
	SVAKIT_EV_UAF_REPORT = 12,
	SVAKIT_EV_DMA_LAZY_WINDOW = 13,
	SVAKIT_EV_IOMMU_DEBUG_WARN = 14,
	SVAKIT_EV_DMA_DAC_NOTICE = 15,
	SVAKIT_EV_DMA_DEBUG_ERROR = 16,
};

/**
 * struct svakit_event - one step of the machine (40 bytes).
 * @step: the event clock.
 * @type: enum svakit_event_type.
 * @site: enum svakit_site: the path that did it.
 * @level: table level, for table events.
 * @kind: enum svakit_frame_kind of the frame at that step.
 * @order: the block's order, for frame events.
 * @pfn: the frame.
 * @generation: the frame's generation after the step.
 * @va: the address whose entry changed, or a range's start.
 * @aux: a range's end, or the entry's old value.
 */
struct svakit_event {
	uint64_t step;
	uint16_t type;
	uint16_t site;
	uint8_t level;
	uint8_t kind;
	uint16_t order;
	uint32_t pfn;
	uint32_t generation;
	uint64_t va;
	uint64_t aux;
};

/**
 * svakit_event_read() - copy events out of the log.
 * @m: the machine.
 * @since: the first step wanted.
 * @out: receives the events, oldest first; may be NULL when @cap is 0.
 * @cap: room in @out, in events.
 *
 * The ring keeps the newest event_log_capacity events.
 *
 * Context: Takes the event log's lock. May be called from any callback.
 * Return: the number copied (>= 0).
 * -EFAULT: @m is NULL, or @out is NULL with @cap not 0.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @cap is past SSIZE_MAX (a negative size).
 */
int svakit_event_read(svakit_machine *m, uint64_t since, struct svakit_event *out,
		  size_t cap);

/**
 * svakit_frame_history() - copy the events about one frame.
 * @m: the machine.
 * @pfn: the frame.
 * @out: receives the events, oldest first; may be NULL when @cap is 0.
 * @cap: room in @out, in events.
 *
 * Context: As svakit_event_read().
 * Return: the number copied (>= 0).
 * -EFAULT: @m is NULL, or @out is NULL with @cap not 0.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @pfn is past the end of memory.
 * -EINVAL: @cap is past SSIZE_MAX (a negative size).
 */
int svakit_frame_history(svakit_machine *m, uint64_t pfn,
			 struct svakit_event *out, size_t cap);

#ifdef __cplusplus
}
#endif

/* The 0.5 names of svakit.h and of this header, deprecated (removed in
 * 0.7.0): here, where both headers' declarations are complete, whichever of
 * the two a file includes first. */
#include "svakit_deprecated.h"

#endif /* SVAKIT_DEBUG_H */
