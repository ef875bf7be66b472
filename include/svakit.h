/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svakit.h - the C ABI of SVAKit, a userspace model of how Linux stops DMA
 * use-after-free through IOMMUs that share the CPU's page tables (SVA).
 *
 * This hand-written header is the contract. The Swift core implements every
 * function declared here with `@c @implementation`, so the compiler checks each
 * definition against the prototype below. Every function and type carries a
 * kernel-doc comment; scripts/kerneldoc.py checks them and renders the API
 * reference (docs/api/svakit.h.md).
 *
 * Conventions (kernel style):
 *   - every function that can fail returns 0 or a negative errno, and its
 *     kernel-doc's Return: lists every errno it can return;
 *   - outputs go through pointer arguments, which may not be NULL;
 *   - a machine handle is created by svakit_machine_create() and released by
 *     svakit_machine_destroy(); two machines in one process share nothing;
 *   - the library prints nothing: svakit_machine_check_text() and
 *     svakit_report_text() hand their text to the caller.
 *
 * Names (one rule, docs/API.md "Naming"). Every function is svakit_ and then:
 *   1. the kernel's own name, verbatim, when the function models that Linux
 *      function or family: svakit_iommu_map() is iommu_map(),
 *      svakit_dma_map_page() dma_map_page(), svakit_alloc_iova() alloc_iova(),
 *      svakit_flush_tlb_kernel_range() flush_tlb_kernel_range(),
 *      svakit_set_memory() the set_memory_*() family. The kernel's family
 *      prefix (iommu_, iommu_sva_, iommu_debug_, dma_, pagetable_, vmalloc,
 *      vmap, iova) is then the object, even where the kernel puts the verb
 *      first (alloc_iova, vfree). Only these have kernel-name macros
 *      (svakit_kernel_names.h), and only where the arguments keep the
 *      kernel's order;
 *   2. otherwise <object>_<verb>[_<complement>]: the object is a noun of the
 *      model (machine, config, frame, mm, pagetable, iommu, device,
 *      deferred_work, flush_queue, iova_domain, report, event, dma for the
 *      DMA layer as a whole) and comes first; the verb says what is done to
 *      it: create/destroy for what has an id, alloc/free for memory,
 *      set_<property> for a hook or a setting, read/write for data copied
 *      in or out (svakit_frame_read(), svakit_pagetable_read_entry(),
 *      svakit_report_read()). A call that only copies a struct out is named
 *      after what it copies (svakit_iommu_counters() fills struct
 *      svakit_iommu_counters, svakit_mm_root(), svakit_frame_info());
 *   3. svakit_version() and svakit_strerror(), library-wide, as C libraries
 *      name them.
 * The names 0.5 used that break the rule are deprecated aliases until 0.7.0
 * (svakit_deprecated.h; docs/API.md, "Renamed in 0.6.0", lists them).
 *
 * Layout. This header declares the API in layer order, bottom up: the
 * machine, physical memory and frames, page tables, IOMMUs and devices,
 * device access, SVA, deferred freeing, DMA domains (with their sanitizer),
 * the DMA API, the IOVA allocator, the kernel paths, and the machine-level
 * reports. It then includes svakit_debug.h (inspection and test-only calls:
 * the audit, fault injection, raw frame access, the IOMMU command log, the
 * flush-queue entries and the event log; it ends with svakit_deprecated.h)
 * and, when SVAKIT_KERNEL_NAMES is defined, svakit_kernel_names.h.
 *
 * Errors (each names one kind of bad input; the machine is left unchanged):
 *   -EFAULT    a NULL handle or NULL output pointer
 *   -EBADF     a handle that is not a live SVAKit machine (foreign, forged or
 *              destroyed: a destroyed handle stays a readable tombstone)
 *   -ERANGE    a frame number past the end of memory, a non-canonical
 *              address, an IOVA past a DMA domain's 48-bit aperture, or a
 *              range that runs past the end of memory or wraps
 *   -EINVAL    an unaligned address/size, a bad flag, level, order, index or
 *              buffer length, an address in the wrong half, a partial unmap of
 *              a huge leaf, a reserved config field not zero or a boolean not
 *              0/1, an entry the hardware would reject (PS where no huge page
 *              can be, reserved bits 52-62), a PASID of 0 or past 20 bits,
 *              init_mm given to attach_device_pasid or bind; a DMA unmap whose size,
 *              direction or device is not the mapping's (dma-debug's checks),
 *              a CPU out of range, an identity domain where tables are needed
 *   -EEXIST    mapping over a live mapping or over an existing page table
 *   -ENOENT    nothing there: no mapping (unmap, translate), no vmalloc area,
 *              no table under the entry (unlink), a range already offline
 *              (hot-remove), offline memory (set_memory, collapse), no such
 *              report, no such PASID attachment (detach), no DMA mapping at
 *              the address (iommu_unmap, iova_to_phys, dma_unmap: a double
 *              unmap), no default domain to detach
 *   -EALREADY  double free: the frame was allocated once and is free now, or
 *              a table already on the deferred-free list
 *   -ENXIO     freeing a frame that is not the head of an allocated block
 *              (never allocated, offline, or the tail of a larger block)
 *   -EPERM     freeing a frame through the wrong API (a page table through
 *              svakit_frame_free, data through pagetable_free, a root table);
 *              a table primitive given a frame that is not a table; linking,
 *              unlinking or writing a root's kernel-half entries (init_mm's,
 *              which every mm copies) or a queued table; writing a live page
 *              table's bytes; destroying init_mm
 *   -EBUSY     freeing a table that is still linked into a live entry, a huge
 *              vmap over a table that still maps pages, hot-removing a range
 *              that holds allocated frames (hot-adding an online one), a
 *              device-PASID attached to another mm, destroying a bound or
 *              attached mm, pagetable_free of a table that still points at
 *              tables, linking a table already linked, writing over an entry
 *              that points to a table; freeing a DMA domain that a device is
 *              attached to or that holds DMA API mappings, giving a device a
 *              second default domain
 *   -ESRCH     an unknown address-space (mm) id
 *   -ENOMEM    the simulated physical memory is exhausted (a vmalloc larger
 *              than memory, or a map whose tables cannot all be allocated,
 *              fails before changing anything)
 *   -ENOSPC    the vmalloc area, the PASID space, a domain's IOVA space or
 *              the DMA domain ids are exhausted
 *   -ENODEV    an unknown IOMMU, device or DMA domain id (a freed domain
 *              included)
 *   -EOPNOTSUPP binding a device that does not support SVA; the DMA API on a
 *              device with no default domain
 *   -EOVERFLOW a PASID wider than the device supports (bind, attach, DMA)
 *   -ESTALE    an unknown or already released SVA handle
 *   -EUCLEAN   (svakit_machine_check only) the machine's bookkeeping is
 *              inconsistent: not bad input, a bug in SVAKit
 *
 * Context. The engine's locks are internal and ranked (docs/ARCHITECTURE.md,
 * "Locks"); a call takes only the ones its Context: names, and never holds
 * one while it calls out. The TLB-flush hook, the free hook, the report
 * handler and IOMMU driver ops are all called with no engine lock held, so
 * they may call back into the machine, with the exceptions their Context:
 * lines state (svakit_machine_destroy() never; svakit_deferred_work_flush()
 * not from a callback running on the deferred-free worker thread). Calls on
 * one machine from several threads are safe unless a function says otherwise.
 */
#ifndef SVAKIT_H
#define SVAKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The package version; CMake reads these lines, Swift checks them in a test.
 * 0.6.1 adds svakit_machine_reset() and svakit_machine_counters(), and
 * svakit_set_memory() refuses SVAKIT_PTE_US in @set (-EINVAL); layouts are
 * 0.6.0's.
 * 0.6.0 keeps 0.5's layouts and behaviour and renames functions: one naming
 * rule for all (above), the header in layer order, inspection and test-only
 * calls in svakit_debug.h, the kernel-name macros in svakit_kernel_names.h.
 * The 0.5 names still compile, as deprecated static inline aliases
 * (svakit_deprecated.h), but are no longer symbols of the library: rebuild
 * harnesses. The aliases go in 0.7.0.
 * 0.5.0 breaks the 0.4 ABI: struct svakit_config grew to 88 bytes (hz,
 * dma_debug); the
 * DMA layer changes behaviour a 0.4 harness sees: IOVAs are allocated as
 * iova.c allocates them (down from a cached node, not the highest fit), PCI's
 * 32-bit first try is one-shot and bounded by the device's DMA mask
 * (svakit_dma_set_mask()), reserved regions are never handed out, the
 * flush-queue timer waits whole jiffies and frees into its own CPU's
 * rcache, smmuv3 domains free emptied tables at unmap and replace a table
 * with a block, an untrusted device's sub-granule buffer is bounced through
 * swiotlb, and the sanitizer reports each leaked page of a block; new
 * svakit_iova_*, svakit_dma_map_benchmark(), svakit_fail_nth(),
 * svakit_flush_queue_entries() and the DMA mask calls.
 * 0.4.0 keeps 0.3's layouts but changes behaviour a 0.3 harness sees: the
 * deferred work is scheduled as Linux schedules it (no batching, no bound:
 * SVAKIT_WORK_*_BATCHED keeps the old), memory hot-remove frees in Linux's
 * order, set_memory accepts the vmalloc area and links split tables without
 * SVAKIT_PTE_US, vfree flushes lazily; struct svakit_config's reserved words
 * became direct_gbpages and kworker_latency_us (zero: the default); new
 * svakit_set_memory_rox() and svakit_vm_unmap_aliases().
 * 0.3.0 breaks the 0.2 ABI: struct svakit_config grew to 80 bytes
 * (iommu_debug_pagealloc, mitigation), struct svakit_iommu_config to 56
 * (profile), struct svakit_uaf_report to 120 (the sanitizer's page-leak
 * fields) and the handle gained the sanitizer's key; rebuild harnesses.
 * 0.2.0 broke 0.1: kernel names became opt-in and PASID 0 in a DMA call is
 * a request without PASID. */
#define SVAKIT_VERSION_MAJOR 0
#define SVAKIT_VERSION_MINOR 6
#define SVAKIT_VERSION_PATCH 1
#define SVAKIT_VERSION_STRING "0.6.1"

/* ------------------------------------------------------------------------ */
/* The machine (the handle every call takes)                               */
/* ------------------------------------------------------------------------ */

/**
 * enum svakit_kva_invalidation - who invalidates IOMMUs for kernel addresses.
 * @SVAKIT_KVA_INV_NONE: the unfixed kernel: nobody does.
 * @SVAKIT_KVA_INV_ON_FLUSH: v1 of the series: flush_tlb_kernel_range calls
 *	iommu_sva_invalidate_kva_range.
 *
 * The defence under test (docs/KERNEL-MODEL.md §2).
 */
enum svakit_kva_invalidation {
	SVAKIT_KVA_INV_NONE = 0,
	SVAKIT_KVA_INV_ON_FLUSH = 1,
};

/**
 * enum svakit_free_mode - how kernel page-table frames are freed.
 * @SVAKIT_FREE_IMMEDIATE: the unfixed kernel: free at once, with no IOMMU
 *	invalidation.
 * @SVAKIT_FREE_LINUX_6_19: the merged series: tables marked PT_kernel
 *	(generic pgalloc) are deferred; set_memory split tables, boot-time and
 *	hot-added direct-map tables are freed at once (its holes).
 * @SVAKIT_FREE_COMPLETE: every kernel table is deferred.
 *
 * The fix under test (docs/KERNEL-MODEL.md §2).
 */
enum svakit_free_mode {
	SVAKIT_FREE_IMMEDIATE = 0,
	SVAKIT_FREE_LINUX_6_19 = 1,
	SVAKIT_FREE_COMPLETE = 2,
};

/**
 * enum svakit_work_mode - who runs the deferred-free work, and when.
 * @SVAKIT_WORK_THREAD: a background worker thread, scheduled as Linux 6.19
 *	schedules kernel_pgtable_work (the default): pagetable_free_kernel()
 *	calls schedule_work(), which sets the work pending only if it was not;
 *	the worker, after svakit_config.kworker_latency_us, clears pending and
 *	takes what was queued meanwhile. No delay, no bound: the freeing caller
 *	never runs the work nor invalidates, and max_pending is ignored.
 * @SVAKIT_WORK_MANUAL: the caller runs it (svakit_deferred_work_run()):
 *	deterministic, for tests and the CLI; Linux's schedule otherwise (no
 *	bound).
 * @SVAKIT_WORK_THREAD_BATCHED: beyond Linux: the worker thread gathers a
 *	storm (up to 256 pending frames or 1 ms after it is scheduled, then
 *	runs), and past max_pending queued frames the freeing caller runs the
 *	work itself.
 * @SVAKIT_WORK_MANUAL_BATCHED: beyond Linux: manual, with the max_pending
 *	bound of SVAKIT_WORK_THREAD_BATCHED.
 *
 * docs/KERNEL-MODEL.md §2.5 ("How SVAKit models §2.5").
 */
enum svakit_work_mode {
	SVAKIT_WORK_THREAD = 0,
	SVAKIT_WORK_MANUAL = 1,
	SVAKIT_WORK_THREAD_BATCHED = 2,
	SVAKIT_WORK_MANUAL_BATCHED = 3,
};

/**
 * struct svakit_config - the configuration of a machine.
 * @frames: 4 KiB frames, a multiple of 1024; default 4 Mi (16 GiB).
 * @seed: the seed of SVAKIT_REUSE_RANDOM.
 * @paging_levels: 4 (the default) or 5.
 * @reuse_policy: enum svakit_reuse; default LIFO.
 * @event_log_capacity: ring size in events, at least 1; default 65536.
 * @kva_invalidation: enum svakit_kva_invalidation; default NONE.
 * @pasid_bits: the machine-wide PASID space 1 .. 2^bits - 1, 1 to 20 bits;
 *	default 20.
 * @report_log_capacity: use-after-free reports kept, at least 1; default 256.
 * @free_mode: enum svakit_free_mode; default IMMEDIATE.
 * @work_mode: enum svakit_work_mode; default THREAD.
 * @max_pending: with a BATCHED @work_mode (beyond Linux), deferred frames
 *	past which the freeing caller runs the work itself; at least 1 in every
 *	mode (Linux's schedule ignores it); default 4096.
 * @dma_strict: 1 for iommu.strict=1 (every translated default domain is
 *	strict, SVAKIT_DOMAIN_DMA), 0 for lazy (SVAKIT_DOMAIN_DMA_FQ, x86's
 *	default; docs/KERNEL-MODEL.md §4.1); default 0.
 * @dma_quarantine: 1 to park a free of a frame that a lazy unmap still
 *	covers until the flush that covers it (beyond Linux,
 *	docs/KERNEL-MODEL.md §4.4), 0 not to; default 0.
 * @cpus: simulated CPUs of the DMA API's per-CPU flush queues and IOVA
 *	caches, 1 to 256; 0 means the default, 4.
 * @iommu_debug_pagealloc: enum svakit_iommu_debug_mode: the
 *	IOMMU_DEBUG_PAGEALLOC sanitizer, as iommu.debug_pagealloc= at boot;
 *	default SVAKIT_IOMMU_DEBUG_OFF. Anything else on a build without the
 *	sanitizer (svakit_iommu_debug_pagealloc_built() is 0) is refused.
 * @mitigation: enum svakit_mitigation; default 0 (SVAKIT_MITIGATION_BY_MODE:
 *	@free_mode and @kva_invalidation decide, as before this field).
 * @direct_gbpages: 1 to boot the direct map as x86 does with direct_gbpages
 *	(CONFIG_X86_DIRECT_GBPAGES on a CPU with 1 GiB pages): a 1 GiB leaf for
 *	every whole GiB of memory but the first, which holds the PC's legacy
 *	holes and keeps 2 MiB leaves; hot-add maps whole GiBs the same way,
 *	set_memory splits 1 GiB leaves, and set_memory_rox's collapse goes back
 *	to them. 0 (the default) boots as nogbpages: 2 MiB leaves everywhere.
 *	It took reserved[0]'s place.
 * @kworker_latency_us: the modelled scheduling latency of the kworker, in
 *	microseconds, 0 to 1,000,000; default 0 (the host's own wake-up of the
 *	worker thread is the latency). Once schedule_work() has woken it, the
 *	worker waits this long before it clears pending and takes the list, so
 *	frees in that time join the run. svakit_deferred_work_flush() waits
 *	for it too; only svakit_machine_destroy() cuts it short. Unused with
 *	a MANUAL @work_mode. It took reserved[1]'s place, zero its default.
 * @hz: CONFIG_HZ: 100, 250, 300 or 1000; 0 for the default, 250 (Debian's
 *	amd64 kernels). The flush queue's timer waits msecs_to_jiffies(10 ms)
 *	(1 s for the single queue) in jiffies of this HZ: 3 jiffies at 250, so
 *	it fires 8 to 12 ms after it is armed. New in 0.5 (the struct grew to
 *	88 bytes).
 * @dma_debug: what an unmap that matches no live mapping (another size,
 *	direction or device, or no mapping at all) does. 0 (the default,
 *	beyond Linux): it is refused (-EINVAL or -ENOENT) and nothing changes.
 *	1: as Linux with CONFIG_DMA_API_DEBUG: the unmap goes ahead with the
 *	caller's address and size unless the address has no translation (its
 *	IOVA range is unmapped and freed as given, which can corrupt the IOVA
 *	allocator as it does in Linux), and dma-debug's complaint is logged
 *	(SVAKIT_EV_DMA_DEBUG_ERROR). New in 0.5.
 *
 * Start from svakit_config_default() and change fields: every field's zero
 * is its default.
 */
struct svakit_config {
	uint64_t frames;
	uint64_t seed;
	uint32_t paging_levels;
	uint32_t reuse_policy;
	uint32_t event_log_capacity;
	uint32_t kva_invalidation;
	uint32_t pasid_bits;
	uint32_t report_log_capacity;
	uint32_t free_mode;
	uint32_t work_mode;
	uint32_t max_pending;
	uint32_t dma_strict;
	uint32_t dma_quarantine;
	uint32_t cpus;
	uint32_t iommu_debug_pagealloc;
	uint32_t mitigation;
	uint32_t direct_gbpages;
	uint32_t kworker_latency_us;
	uint32_t hz;
	uint32_t dma_debug;
};

/**
 * enum svakit_mitigation - the design that keeps SVA walks off freed kernel
 *	page tables.
 * @SVAKIT_MITIGATION_BY_MODE: svakit_config.free_mode and
 *	svakit_config.kva_invalidation decide (what 0.2.0 did).
 * @SVAKIT_MITIGATION_NONE: the unfixed kernel; free_mode must be IMMEDIATE
 *	and kva_invalidation NONE (the defaults).
 * @SVAKIT_MITIGATION_DEFERRED_FREE: the merged series: kernel tables are
 *	freed by a work item after one invalidation of every SVA IOMMU.
 *	free_mode picks LINUX_6_19 or COMPLETE (IMMEDIATE means LINUX_6_19);
 *	kva_invalidation must be NONE.
 * @SVAKIT_MITIGATION_FLUSH_ON_KERNEL_TLB_FLUSH: seed 001 (v1-v3):
 *	flush_tlb_kernel_range() invalidates and fences every SVA IOMMU, and
 *	tables free right after; free_mode must be IMMEDIATE.
 * @SVAKIT_MITIGATION_KPTI_ROOT: each SVA mm's PASID entries point at an
 *	IOMMU-only root holding the mm's user-half top-level entries (kept in
 *	sync under the mm's page_table_lock) and no kernel half; kernel tables
 *	free at once with nothing to invalidate. One more root frame per SVA
 *	mm, freed when the mm is destroyed. free_mode IMMEDIATE and
 *	kva_invalidation NONE required.
 * @SVAKIT_MITIGATION_CLEAR_US: init_mm's table entries are written without
 *	U/S; tables free at once. Shown not to help: the IOMMU still walks,
 *	caches and sets A/D bits in the kernel half and only refuses at the
 *	leaf. free_mode IMMEDIATE and kva_invalidation NONE required.
 *
 * A value that disagrees with free_mode or kva_invalidation makes
 * svakit_machine_create() fail with -EINVAL. svakit_config_default() sets
 * BY_MODE.
 */
enum svakit_mitigation {
	SVAKIT_MITIGATION_BY_MODE = 0,
	SVAKIT_MITIGATION_NONE = 1,
	SVAKIT_MITIGATION_DEFERRED_FREE = 2,
	SVAKIT_MITIGATION_FLUSH_ON_KERNEL_TLB_FLUSH = 3,
	SVAKIT_MITIGATION_KPTI_ROOT = 4,
	SVAKIT_MITIGATION_CLEAR_US = 5,
};

/**
 * typedef svakit_machine - the handle of a machine.
 * @magic: private.
 * @iommu_sva_present: the static key: nonzero iff an IOMMU may walk an mm's
 *	tables (an SVA bond or a PASID attachment). Public for reading only,
 *	through svakit_iommu_sva_present().
 * @owner: private.
 * @check: private.
 * @iommu_debug_initialized: the sanitizer's static key: nonzero iff the
 *	machine was created with IOMMU_DEBUG_PAGEALLOC on; never turned off.
 *	Public for reading only, through svakit_iommu_debug_pagealloc_enabled().
 *
 * The layout is visible only because the static-inline gates below read
 * @iommu_sva_present and @iommu_debug_initialized at fixed offsets (4 and
 * 24, pinned in Sources/CSVAKit/abi_checks.c) without a call. @magic, @owner and @check
 * are private to the engine: their values mean nothing to a caller and may
 * change in any release. Undefined: writing any field (the key included:
 * only the engine turns it on and off), creating a handle other than through
 * svakit_machine_create(), or using a byte-for-byte copy of a handle. A
 * destroyed handle stays readable as a tombstone: every function given it
 * returns -EBADF and the gate reads a key of 0; a handle forged by hand fails
 * the private check and gets -EBADF as well.
 */
typedef struct svakit_machine {
	uint32_t magic;
	int32_t iommu_sva_present;
	void *owner;
	uint64_t check;
	int32_t iommu_debug_initialized;
} svakit_machine;

/**
 * svakit_config_default() - fill a configuration with the defaults.
 * @cfg: the configuration to fill; NULL is ignored.
 *
 * The defaults are the embedded default machine: 16 GiB, 4-level paging,
 * LIFO reuse, the unfixed kernel (SVAKIT_FREE_IMMEDIATE) and a worker thread.
 *
 * Context: Any context; takes no lock.
 */
void svakit_config_default(struct svakit_config *cfg);

/**
 * svakit_machine_create() - create and boot a machine.
 * @cfg: the configuration (see struct svakit_config).
 * @out: receives the handle; written only on success.
 *
 * Boots the kernel half and the 2 MiB direct map of all memory, and starts
 * the deferred-free worker in SVAKIT_WORK_THREAD mode.
 *
 * Context: Any thread; takes no lock of another machine.
 * Return: 0 on success.
 * -EFAULT: @cfg or @out is NULL.
 * -EINVAL: a field of @cfg is out of its range (see struct svakit_config),
 * @cfg->reserved is not zero, a boolean field (@cfg->dma_strict,
 * @cfg->dma_quarantine) is not 0 or 1, or an enum field names no value.
 * -ENOMEM: the host cannot reserve the simulated memory.
 */
int svakit_machine_create(const struct svakit_config *cfg, svakit_machine **out);

/**
 * svakit_machine_destroy() - destroy a machine.
 * @m: the machine; NULL, foreign and already destroyed handles are ignored.
 *
 * Stops the deferred-free worker, frees what is still queued (behind one
 * IOMMU invalidation per batch, as the worker would) and turns the handle
 * into a tombstone.
 *
 * Context: Sleeps until the worker thread has exited. Must not be called from
 * a callback of the same machine (TLB-flush hook, free hook, report handler,
 * IOMMU driver op), nor while another thread is still calling into @m: the
 * machine would go away under the call.
 */
void svakit_machine_destroy(svakit_machine *m);

/**
 * svakit_machine_reset() - return a machine to its state after boot.
 * @m: the machine.
 *
 * Afterwards @m is indistinguishable from a machine just created with the
 * same configuration: every call returns what it would return there (the
 * same frames, ids, PASIDs and addresses). Every frame written since boot
 * gets its boot bytes back, the descriptors and the allocator are boot's,
 * and everything created since is gone: address spaces, vmalloc ranges,
 * IOMMUs and devices, bonds and PASIDs, DMA domains and the quarantine, the
 * deferred list, reports, the events after boot's, counters, fail_nth, the
 * static key, and every hook and handler the caller installed (install them
 * again). The handle stays the same. The time it takes is proportional to
 * what changed since boot or the previous reset, not to the machine's size:
 * a fuzzer or a test suite can run each program on a reset machine instead
 * of creating one.
 *
 * Context: No other call may run on @m meanwhile, and not from a callback
 * of @m (as for svakit_machine_destroy()).
 * Return: 0; -EBUSY with a SVAKIT_WORK_THREAD @work_mode (the worker and
 * timer threads call in at any time, so the machine is never quiescent:
 * reset needs SVAKIT_WORK_MANUAL), nothing changed; -EFAULT for NULL;
 * -EBADF for a handle that is not a live machine.
 */
int svakit_machine_reset(svakit_machine *m);

/**
 * svakit_version() - the library's version.
 *
 * Context: Any context; takes no lock.
 * Return: a static string equal to SVAKIT_VERSION_STRING of the header it
 * was built with.
 */
const char *svakit_version(void);

/**
 * svakit_strerror() - describe a value returned by SVAKit.
 * @err: 0 or a negative errno returned by a function of this header.
 *
 * Context: Any context; takes no lock.
 * Return: a short static text; "unknown error" for a value SVAKit never
 * returns (a positive value among them).
 */
const char *svakit_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Physical memory and frames                                              */
/* ------------------------------------------------------------------------ */

#define SVAKIT_PAGE_SHIFT 12
#define SVAKIT_PAGE_SIZE (1ULL << SVAKIT_PAGE_SHIFT)
#define SVAKIT_PMD_SIZE (1ULL << 21)
#define SVAKIT_PUD_SIZE (1ULL << 30)
#define SVAKIT_MAX_ORDER 10              /* as MAX_PAGE_ORDER on x86 */
#define SVAKIT_SECTION_PAGES (1U << 15)  /* 128 MiB hotplug section, x86-64 */

/* A peer device's MMIO window (a PCI BAR) at 32 TiB, above any RAM the model
 * has: svakit_iommu_map() may map it for peer-to-peer DMA. No frame
 * descriptor backs it, so the sanitizer skips it (page_ext_from_phys() is
 * NULL for MMIO); a device access through such a mapping faults with
 * SVAKIT_FAULT_BAD_ADDRESS (the peer is not modelled). */
#define SVAKIT_MMIO_BASE 0x200000000000ULL
#define SVAKIT_MMIO_SIZE 0x40000000ULL
#define SVAKIT_NO_PFN 0xffffffffU        /* "no frame" in 32-bit pfn fields */

/**
 * enum svakit_frame_kind - what a frame is now (svakit_ptdesc.kind).
 * @SVAKIT_FRAME_FREE: on the allocator's free lists.
 * @SVAKIT_FRAME_PT_KERNEL: a table of init_mm (the shared kernel half).
 * @SVAKIT_FRAME_PT_USER: a table of a process address space.
 * @SVAKIT_FRAME_DATA: data, tagged with an owner.
 * @SVAKIT_FRAME_OFFLINE: hot-removed memory.
 * @SVAKIT_FRAME_PT_IOMMU: a table of an IOMMU DMA domain (the IOMMU's own
 * page table, reached by requests without PASID).
 */
enum svakit_frame_kind {
	SVAKIT_FRAME_FREE = 0,
	SVAKIT_FRAME_PT_KERNEL = 1,
	SVAKIT_FRAME_PT_USER = 2,
	SVAKIT_FRAME_DATA = 3,
	SVAKIT_FRAME_OFFLINE = 4,
	SVAKIT_FRAME_PT_IOMMU = 5,
};

/* svakit_ptdesc.flags */
#define SVAKIT_PTDESC_KERNEL  0x01u /* PT_kernel mark: free through pagetable_free_kernel() */
#define SVAKIT_PTDESC_BOOTMEM 0x02u /* allocated at boot (PageReserved on x86) */
#define SVAKIT_PTDESC_TAIL    0x04u /* a non-head frame of a multi-frame block */
#define SVAKIT_PTDESC_LINKED  0x08u /* a table that a live entry points to */
#define SVAKIT_PTDESC_DEFERRED 0x10u /* queued on the deferred-free list */
#define SVAKIT_PTDESC_SPLIT   0x20u /* a PTE table that set_memory split allocated */
#define SVAKIT_PTDESC_ROOT    0x40u /* the root (PGD) of an address space */

/**
 * struct svakit_ptdesc - the page descriptor of one frame (32 bytes).
 * @kind: enum svakit_frame_kind.
 * @level: table level, 1 (PTE) .. 5 (PML5); 0 for a frame that is no table.
 * @order: order of the block this frame heads.
 * @flags: SVAKIT_PTDESC_*.
 * @site: enum svakit_site of the last allocation.
 * @owner: owner tag of a data frame.
 * @generation: changes at every free, so a stale belief about a frame shows.
 * @alloc_step: event step (low 32 bits) of the last allocation.
 * @lru_next: allocator free-list link, SVAKIT_NO_PFN at the ends.
 * @lru_prev: allocator free-list link back.
 * @pt_list_next: deferred-free list link.
 * @map_count: IOMMU_DEBUG_PAGEALLOC mapping refcount slot.
 *
 * The size and offsets are checked at compile time in
 * Sources/CSVAKit/abi_checks.c and by the Swift tests. The allocator links
 * free blocks through @lru_next/@lru_prev; the deferred-free list uses its
 * own link, @pt_list_next (docs/KERNEL-MODEL.md §2.8: "don't use page->lru").
 */
struct svakit_ptdesc {
	uint8_t kind;
	uint8_t level;
	uint8_t order;
	uint8_t flags;
	uint16_t site;
	uint16_t owner;
	uint32_t generation;
	uint32_t alloc_step;
	uint32_t lru_next;
	uint32_t lru_prev;
	uint32_t pt_list_next;
	int32_t map_count;
};

/**
 * enum svakit_reuse - the allocator's frame reuse policy (per machine).
 * @SVAKIT_REUSE_LIFO: most recently freed first: the adversary's case.
 * @SVAKIT_REUSE_FIFO: least recently freed first.
 * @SVAKIT_REUSE_RANDOM: random, seeded by svakit_config.seed.
 */
enum svakit_reuse {
	SVAKIT_REUSE_LIFO = 0,
	SVAKIT_REUSE_FIFO = 1,
	SVAKIT_REUSE_RANDOM = 2,
};

/**
 * enum svakit_site - who allocated a frame, and which path freed it.
 * @SVAKIT_SITE_NONE: no site (a frame never allocated).
 * @SVAKIT_SITE_BOOT: boot-time tables: the direct map and the kernel half.
 * @SVAKIT_SITE_API: svakit_frame_alloc() or svakit_frame_free() by the caller.
 * @SVAKIT_SITE_MAP: a table allocated by svakit_mm_map().
 * @SVAKIT_SITE_UNMAP: svakit_mm_unmap() or svakit_vunmap().
 * @SVAKIT_SITE_VMALLOC: svakit_vmalloc() and svakit_vmalloc_huge().
 * @SVAKIT_SITE_VFREE: svakit_vfree().
 * @SVAKIT_SITE_PMD_FREE_PTE_PAGE: a huge vmap over a PTE table.
 * @SVAKIT_SITE_PUD_FREE_PMD_PAGE: a huge vmap over a PMD table.
 * @SVAKIT_SITE_SET_MEMORY_SPLIT: set_memory splitting a 2 MiB leaf.
 * @SVAKIT_SITE_SET_MEMORY_COLLAPSE: cpa_collapse_large_pages.
 * @SVAKIT_SITE_HOT_REMOVE: memory hot-remove.
 * @SVAKIT_SITE_HOT_ADD: memory hot-add.
 * @SVAKIT_SITE_MM_CREATE: svakit_mm_create().
 * @SVAKIT_SITE_MM_TEARDOWN: svakit_mm_destroy().
 * @SVAKIT_SITE_PGTABLE_WORK: kernel_pgtable_work_func: the deferred free.
 * @SVAKIT_SITE_ARCH: a caller's own arch code through the primitives.
 * @SVAKIT_SITE_VMAP_PURGE: __purge_vmap_area_lazy: the flush of the ranges
 *	svakit_vfree() left unflushed (svakit_vm_unmap_aliases(), or past
 *	lazy_max_pages()).
 * @SVAKIT_SITE_COUNT: the number of sites (not a site).
 *
 * Used by events (svakit_event.site) and descriptors (svakit_ptdesc.site).
 */
enum svakit_site {
	SVAKIT_SITE_NONE = 0,
	SVAKIT_SITE_BOOT = 1,
	SVAKIT_SITE_API = 2,
	SVAKIT_SITE_MAP = 3,
	SVAKIT_SITE_UNMAP = 4,
	SVAKIT_SITE_VMALLOC = 5,
	SVAKIT_SITE_VFREE = 6,
	SVAKIT_SITE_PMD_FREE_PTE_PAGE = 7,
	SVAKIT_SITE_PUD_FREE_PMD_PAGE = 8,
	SVAKIT_SITE_SET_MEMORY_SPLIT = 9,
	SVAKIT_SITE_SET_MEMORY_COLLAPSE = 10,
	SVAKIT_SITE_HOT_REMOVE = 11,
	SVAKIT_SITE_HOT_ADD = 12,
	SVAKIT_SITE_MM_CREATE = 13,
	SVAKIT_SITE_MM_TEARDOWN = 14,
	SVAKIT_SITE_PGTABLE_WORK = 15,
	SVAKIT_SITE_ARCH = 16,
	SVAKIT_SITE_VMAP_PURGE = 17,
	SVAKIT_SITE_COUNT
};

/**
 * svakit_frame_alloc() - allocate data frames.
 * @m: the machine.
 * @order: the block is 2^@order contiguous frames, 0 .. SVAKIT_MAX_ORDER.
 * @owner: the owner tag the frames' descriptors carry.
 * @pfn: receives the first frame of the block.
 *
 * Context: Takes the frame allocator's lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @pfn is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @order is past SVAKIT_MAX_ORDER.
 * -ENOMEM: no free block of that order.
 */
int svakit_frame_alloc(svakit_machine *m, unsigned int order, uint16_t owner,
		       uint64_t *pfn);

/**
 * svakit_frame_free() - free a block of data frames.
 * @m: the machine.
 * @pfn: the first frame of a block svakit_frame_alloc() returned.
 *
 * Page tables are freed through svakit_pagetable_free() and friends.
 *
 * Context: Takes the frame allocator's lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @pfn is past the end of memory.
 * -EALREADY: the block is already free (double free).
 * -ENXIO: @pfn is not the head of an allocated block (never allocated,
 * offline, or a tail frame).
 * -EPERM: @pfn is a page table (queued ones and roots included).
 */
int svakit_frame_free(svakit_machine *m, uint64_t pfn);

/* ------------------------------------------------------------------------ */
/* Page tables: address spaces and the primitives of a kernel-style arch   */
/* ------------------------------------------------------------------------ */

#define SVAKIT_PTE_P   (1ULL << 0)   /* present */
#define SVAKIT_PTE_RW  (1ULL << 1)   /* writable */
#define SVAKIT_PTE_US  (1ULL << 2)   /* user */
#define SVAKIT_PTE_PWT (1ULL << 3)   /* page write-through */
#define SVAKIT_PTE_PCD (1ULL << 4)   /* page cache disable */
#define SVAKIT_PTE_A   (1ULL << 5)   /* accessed */
#define SVAKIT_PTE_D   (1ULL << 6)   /* dirty */
#define SVAKIT_PTE_PS  (1ULL << 7)   /* page size: a leaf at level 2 or 3 */
#define SVAKIT_PTE_G   (1ULL << 8)   /* global */
#define SVAKIT_PTE_NX  (1ULL << 63)  /* no execute */
#define SVAKIT_PTE_PFN_MASK 0x000ffffffffff000ULL

/* The protection bits a caller may pass to svakit_mm_map and svakit_set_memory. */
#define SVAKIT_PROT_MASK (SVAKIT_PTE_RW | SVAKIT_PTE_US | SVAKIT_PTE_PWT | \
			  SVAKIT_PTE_PCD | SVAKIT_PTE_G | SVAKIT_PTE_NX)

/* Address space ids: 0 is init_mm, whose tables are the shared kernel half. */
#define SVAKIT_INIT_MM 0u

/**
 * struct svakit_translation - the result of a software walk.
 * @phys: physical address of the va (valid when svakit_mm_translate() returns 0).
 * @page_size: 4 KiB, 2 MiB or 1 GiB; 0 when nothing is mapped.
 * @entry: the leaf entry; 0 when nothing is mapped.
 * @level: level of the leaf (1, 2 or 3); on -ENOENT, the level whose entry
 *	was not present.
 * @reserved: zero.
 */
struct svakit_translation {
	uint64_t phys;
	uint64_t page_size;
	uint64_t entry;
	uint32_t level;
	uint32_t reserved;
};

/**
 * svakit_mm_create() - create an address space.
 * @m: the machine.
 * @mm: receives the new mm's id.
 *
 * A user root whose kernel half points at the shared kernel tables, as every
 * x86 mm has.
 *
 * Context: Takes the address-space list lock and the frame allocator's.
 * May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @mm is NULL.
 * -EBADF: @m is not a live machine.
 * -ENOMEM: no frame for the root.
 */
int svakit_mm_create(svakit_machine *m, uint32_t *mm);

/**
 * svakit_mm_destroy() - tear down an address space.
 * @m: the machine.
 * @mm: the mm; not init_mm, not bound or attached to a device.
 *
 * Frees the tables of its user mappings and its root (data frames stay the
 * caller's).
 *
 * Context: Takes the SVA lock (iommu_sva_lock) and, inside it, the IOMMU core
 * lock, the address-space list lock and the mm's page-table lock, then frees
 * with none held: calls the free hook for every table freed. May be called from
 * any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ESRCH: no mm has that id (double destroy included).
 * -EPERM: @mm is init_mm.
 * -EBUSY: @mm is bound to a device (SVA) or attached at a PASID.
 */
int svakit_mm_destroy(svakit_machine *m, uint32_t mm);

/**
 * svakit_mm_root() - the root table of an address space.
 * @m: the machine.
 * @mm: the mm (SVAKIT_INIT_MM for the kernel's).
 * @root_pfn: receives the root's frame (CR3 / the PASID-table pointer).
 *
 * Context: Takes the address-space list lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @root_pfn is NULL.
 * -EBADF: @m is not a live machine.
 * -ESRCH: no mm has that id.
 */
int svakit_mm_root(svakit_machine *m, uint32_t mm, uint64_t *root_pfn);

/**
 * svakit_mm_map() - map one leaf.
 * @m: the machine.
 * @mm: SVAKIT_INIT_MM for a kernel address, a process mm for a user one.
 * @va: the virtual address, aligned to @size.
 * @phys: the physical address, aligned to @size; inside memory.
 * @size: the leaf's size: 4 KiB, 2 MiB or 1 GiB.
 * @prot: a subset of SVAKIT_PROT_MASK.
 *
 * Maps [@va, @va + @size) to @phys with a single leaf. Missing tables are
 * allocated; existing tables are never replaced. A process mm maps only
 * frames a process could own: data frames and frames never allocated; a
 * page table of any kind (kernel, user or IOMMU, queued or not) and offline
 * memory are refused, as no Linux path gives a process a mapping of a
 * page-table page. init_mm maps any frame.
 *
 * Context: Takes the address-space list lock, the mm's page-table lock and
 * the frame allocator's. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ESRCH: no mm has that id.
 * -EINVAL: @va or @phys is not aligned to @size, @size is not a leaf size,
 * @prot has bits outside SVAKIT_PROT_MASK, or @va is in the other half of
 * @mm (a kernel va in a process mm, a user va in init_mm).
 * -ERANGE: @va is not canonical, or the leaf runs past the end of memory.
 * -EEXIST: a leaf maps there already, or a table sits where the leaf goes.
 * -ENOMEM: the tables needed cannot all be allocated (nothing is changed).
 * -EPERM: @mm is a process mm and [@phys, @phys + @size) holds a page table
 * or offline memory (checked after the errors above; nothing is changed).
 */
int svakit_mm_map(svakit_machine *m, uint32_t mm, uint64_t va, uint64_t phys,
	       uint64_t size, uint64_t prot);

/**
 * svakit_mm_unmap() - clear one leaf.
 * @m: the machine.
 * @mm: the mm that maps it.
 * @va: the leaf's address.
 * @size: the leaf's size: exactly the size it was mapped with.
 *
 * The tables stay, as vunmap leaves them in Linux.
 *
 * Context: Takes the address-space list lock and the mm's page-table lock.
 * May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ESRCH: no mm has that id.
 * -EINVAL: @va is not aligned, @size is not a leaf size, @va is in the other
 * half of @mm, or @size is not the size of the leaf there (a partial unmap of
 * a huge leaf, or a huge size over 4 KiB leaves).
 * -ERANGE: @va is not canonical.
 * -ENOENT: nothing is mapped at @va.
 */
int svakit_mm_unmap(svakit_machine *m, uint32_t mm, uint64_t va, uint64_t size);

/**
 * svakit_mm_translate() - walk an mm's tables in software.
 * @m: the machine.
 * @mm: the mm.
 * @va: the address.
 * @out: receives the translation; on -ENOENT, @out->level says where the walk
 *	stopped.
 *
 * Context: Takes the address-space list lock; the walk itself takes none.
 * May be called from any callback.
 * Return: 0 when @va is mapped.
 * -ENOENT: @va is not mapped (@out is written).
 * -EFAULT: @m or @out is NULL.
 * -EBADF: @m is not a live machine.
 * -ESRCH: no mm has that id.
 * -ERANGE: @va is not canonical.
 */
int svakit_mm_translate(svakit_machine *m, uint32_t mm, uint64_t va,
		     struct svakit_translation *out);

/**
 * svakit_pagetable_alloc_kernel() - allocate a kernel page-table frame.
 * @m: the machine.
 * @level: its level: 1 (PTE) up to one below the root.
 * @pfn: receives the frame.
 *
 * Zeroed, unlinked, and marked PT_kernel as the generic pgalloc helpers mark
 * init_mm's tables.
 *
 * Context: Takes the frame allocator's lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @pfn is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @level is 0, the root level or above.
 * -ENOMEM: no free frame.
 */
int svakit_pagetable_alloc_kernel(svakit_machine *m, unsigned int level, uint64_t *pfn);

/**
 * svakit_pagetable_read_entry() - read one entry of a table.
 * @m: the machine.
 * @table_pfn: an allocated page table.
 * @index: the entry, 0 .. 511.
 * @entry: receives it.
 *
 * Context: Takes no lock (an atomic load, as a walker's). May be called from
 * any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @entry is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @table_pfn is past the end of memory.
 * -ENXIO: @table_pfn is not the head of an allocated block.
 * -EALREADY: @table_pfn was freed (a stale pfn).
 * -EPERM: @table_pfn is not a page table.
 * -EINVAL: @index is past 511.
 */
int svakit_pagetable_read_entry(svakit_machine *m, uint64_t table_pfn, unsigned int index, uint64_t *entry);

/**
 * svakit_pagetable_write_entry() - write a leaf or clear an entry (set_pte, pte_clear).
 * @m: the machine.
 * @table_pfn: an allocated, unqueued page table.
 * @index: the entry, 0 .. 511.
 * @entry: a leaf the hardware accepts at the table's level, or 0.
 *
 * A table pointer must go through svakit_pagetable_link(), and an entry that
 * points to a table must be cleared through svakit_pagetable_unlink().
 *
 * Context: Takes the page-table lock of the table's mm. May be called from
 * any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @table_pfn is past the end of memory, or the leaf maps past it.
 * -ENXIO: @table_pfn is not the head of an allocated block.
 * -EALREADY: @table_pfn was freed (a stale pfn).
 * -EPERM: @table_pfn is not a page table, is on the deferred-free list, or
 * the entry is a root's kernel-half entry.
 * -EINVAL: @index is past 511, @entry is a table pointer, has PS where no
 * huge page can be, or has reserved bits set.
 * -EBUSY: the entry points to a table.
 */
int svakit_pagetable_write_entry(svakit_machine *m, uint64_t table_pfn, unsigned int index, uint64_t entry);

/**
 * svakit_pagetable_link() - pmd_populate and friends.
 * @m: the machine.
 * @parent_pfn: a page table above level 1.
 * @index: the entry of @parent_pfn, 0 .. 511; not present.
 * @child_pfn: an unlinked table one level down, of the same half.
 *
 * Points entry @index of @parent_pfn at @child_pfn. The parent need not be
 * linked itself: a subtree may be built bottom-up.
 *
 * Context: Takes the page-table lock of the tables' mm. May be called from
 * any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: a pfn is past the end of memory.
 * -ENXIO: a pfn is not the head of an allocated block.
 * -EALREADY: a pfn was freed (a stale pfn).
 * -EPERM: a frame is not a page table, either table is on the deferred-free
 * list, or the entry is a root's kernel-half entry.
 * -EINVAL: @index is past 511, @parent_pfn is a PTE table, @child_pfn is not
 * one level down, or the two tables are of different halves.
 * -EBUSY: @child_pfn is linked already.
 * -EEXIST: the entry is present.
 */
int svakit_pagetable_link(svakit_machine *m, uint64_t parent_pfn, unsigned int index, uint64_t child_pfn);

/**
 * svakit_pagetable_unlink() - pmd_clear and friends.
 * @m: the machine.
 * @parent_pfn: a page table.
 * @index: an entry of @parent_pfn that points to a table.
 * @child_pfn: receives the table the entry POINTS TO
 *	(page_ptdesc(pmd_page(*pmd))), now unlinked.
 *
 * The caller flushes (svakit_flush_tlb_kernel_range()) and then frees the
 * table (svakit_pagetable_free()), in the order x86 does it.
 *
 * Context: Takes the page-table lock of the tables' mm. May be called from
 * any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @child_pfn is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @parent_pfn is past the end of memory.
 * -ENXIO: @parent_pfn is not the head of an allocated block.
 * -EALREADY: @parent_pfn was freed (a stale pfn).
 * -EPERM: @parent_pfn is not a page table or is on the deferred-free list,
 * or the entry is a root's kernel-half entry.
 * -EINVAL: @index is past 511.
 * -ENOENT: the entry is empty or a leaf: no table under it.
 */
int svakit_pagetable_unlink(svakit_machine *m, uint64_t parent_pfn, unsigned int index, uint64_t *child_pfn);

/**
 * svakit_pagetable_free() - pagetable_free: free an unlinked table.
 * @m: the machine.
 * @pfn: an unlinked page table that points at no table.
 *
 * An unlinked kernel table goes to the deferred list when the machine's free
 * mode says so (PT_kernel-marked under linux-6.19, every kernel table under
 * complete), any other table back to the allocator at once.
 *
 * Context: Takes the deferred list's lock or the frame allocator's. A table
 * freed at once calls the free hook on this thread. With a BATCHED work
 * mode (beyond Linux), past max_pending queued frames this thread runs the
 * deferred work itself, which invalidates the IOMMUs (driver ops) and calls
 * the free hook; Linux's schedule never does. May be called from any
 * callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @pfn is past the end of memory.
 * -ENXIO: @pfn is not the head of an allocated block (never allocated).
 * -EALREADY: @pfn is already queued or freed.
 * -EPERM: @pfn is not a page table, or is a root.
 * -EBUSY: @pfn is still linked, or still points at tables (freeing the table
 * that HOLDS an entry: the v6 bug).
 */
int svakit_pagetable_free(svakit_machine *m, uint64_t pfn);

/* ------------------------------------------------------------------------ */
/* IOMMUs and devices (docs/KERNEL-MODEL.md §3)                            */
/* ------------------------------------------------------------------------ */

/**
 * enum svakit_iommu_caching - what an IOMMU caches.
 * @SVAKIT_CACHING_NONE: nothing: walk from the PASID table every time.
 * @SVAKIT_CACHING_LEAF_ONLY: an IOTLB of leaf translations only.
 * @SVAKIT_CACHING_FULL: the IOTLB and paging-structure caches per level.
 */
enum svakit_iommu_caching {
	SVAKIT_CACHING_NONE = 0,
	SVAKIT_CACHING_LEAF_ONLY = 1,
	SVAKIT_CACHING_FULL = 2,
};

/**
 * enum svakit_replacement - the caches' replacement policy.
 * @SVAKIT_REPLACE_LRU: least recently used.
 * @SVAKIT_REPLACE_FIFO: first in, first out.
 * @SVAKIT_REPLACE_RANDOM: random, seeded by svakit_iommu_config.seed.
 */
enum svakit_replacement {
	SVAKIT_REPLACE_LRU = 0,
	SVAKIT_REPLACE_FIFO = 1,
	SVAKIT_REPLACE_RANDOM = 2,
};

/**
 * enum svakit_iommu_profile - which IOMMU an IOMMU models.
 * @SVAKIT_IOMMU_GENERIC: SVAKit's generic IOMMU: one command per request
 *	that drops exactly its range.
 * @SVAKIT_IOMMU_VTD: Intel VT-d scalable-mode first stage: PASID-based
 *	IOTLB descriptors, page-selective with the driver's address-mask
 *	rounding and the IH hint, PASID-selective for everything; a wait
 *	descriptor per batch of up to 16.
 * @SVAKIT_IOMMU_SMMUV3: Arm SMMUv3: the SVA context descriptor sets EPD1,
 *	so upper-half addresses fault unwalked; CMD_TLBI_NH_VA per page with
 *	LEAF, CMD_TLBI_NH_ASID from 512 pages; CMD_SYNC.
 * @SVAKIT_IOMMU_AMD: AMD IOMMU with GCR3 tables: INVALIDATE_IOMMU_PAGES
 *	always with PDE=1, size-encoded or all-pages address; COMPLETION_WAIT.
 * @SVAKIT_IOMMU_RISCV: RISC-V IOMMU 1.0 first stage: IOTINVAL.VMA with an
 *	address drops only leaf entries, without one the whole PSCID;
 *	IOFENCE.C.
 *
 * docs/KERNEL-MODEL.md §3.6 gives each profile's sources and assumptions.
 */
enum svakit_iommu_profile {
	SVAKIT_IOMMU_GENERIC = 0,
	SVAKIT_IOMMU_VTD = 1,
	SVAKIT_IOMMU_SMMUV3 = 2,
	SVAKIT_IOMMU_AMD = 3,
	SVAKIT_IOMMU_RISCV = 4,
};

/**
 * struct svakit_iommu_config - the configuration of an IOMMU.
 * @caching: enum svakit_iommu_caching; default FULL.
 * @replacement: enum svakit_replacement; default LRU.
 * @iotlb_sets: IOTLB sets, a power of two; default 64.
 * @iotlb_ways: IOTLB ways, at least 1; default 4.
 * @psc_sets: paging-structure cache sets per level, a power of two; default 8.
 * @psc_ways: paging-structure cache ways per level, at least 1; default 4.
 * @sets_accessed_dirty: 1 when the walker writes A/D bits, 0 when not;
 *	default 1.
 * @deferred_flush: 1 when the driver can batch invalidations
 *	(IOMMU_CAP_DEFERRED_FLUSH), so a default DMA domain may be lazy; 0 makes
 *	every translated default domain strict (SVAKIT_POLICY_NO_DEFERRED_FLUSH);
 *	default 1.
 * @shadowed_flush: 1 when flushes are shadowed (virtio-iommu, s390): a lazy
 *	domain then uses one flush queue of 32768 entries with a 1 s timer
 *	instead of per-CPU queues of 256 with 10 ms (docs/KERNEL-MODEL.md §4.2);
 *	default 0.
 * @reserved: must be zero.
 * @seed: the seed of SVAKIT_REPLACE_RANDOM.
 * @profile: enum svakit_iommu_profile: which IOMMU's commands and walker
 *	this one models; default SVAKIT_IOMMU_GENERIC.
 * @reserved2: must be zero.
 *
 * Start from svakit_iommu_config_default(): @deferred_flush defaults to 1.
 */
struct svakit_iommu_config {
	uint32_t caching;
	uint32_t replacement;
	uint32_t iotlb_sets, iotlb_ways;
	uint32_t psc_sets, psc_ways;
	uint32_t sets_accessed_dirty;
	uint32_t deferred_flush;
	uint32_t shadowed_flush;
	uint32_t reserved;
	uint64_t seed;
	uint32_t profile;
	uint32_t reserved2;
};

/**
 * struct svakit_iommu_counters - what an IOMMU did.
 * @walks: translation requests.
 * @iotlb_hits: requests the IOTLB answered.
 * @full_walks: walks from the PASID table's root.
 * @faults: requests that faulted.
 * @psc_hits: paging-structure cache hits by level: [2] PDE, [3] PDPTE,
 *	[4] PML4E, [5] PML5E.
 * @range_invalidations: range invalidation commands.
 * @leaf_range_invalidations: those with the leaf-only hint.
 * @pasid_invalidations: PASID invalidation commands.
 * @global_invalidations: global invalidation commands.
 * @entries_dropped: cache entries the invalidations dropped.
 * @fences: invalidation waits.
 * @accessed_dirty_writes: A/D bits the walker wrote.
 */
struct svakit_iommu_counters {
	uint64_t walks, iotlb_hits, full_walks, faults;
	uint64_t psc_hits[6];
	uint64_t range_invalidations, leaf_range_invalidations;
	uint64_t pasid_invalidations, global_invalidations;
	uint64_t entries_dropped, fences, accessed_dirty_writes;
};

/**
 * svakit_iommu_config_default() - fill an IOMMU configuration with defaults.
 * @cfg: the configuration to fill; NULL is ignored.
 *
 * Context: Any context; takes no lock.
 */
void svakit_iommu_config_default(struct svakit_iommu_config *cfg);

/**
 * svakit_iommu_create() - add an IOMMU to the machine.
 * @m: the machine.
 * @cfg: its configuration.
 * @iommu: receives its id (0, 1, ... in creation order).
 *
 * Context: Takes the IOMMU core lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m, @cfg or @iommu is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: a field of @cfg is out of its range (see struct
 * svakit_iommu_config), @cfg->profile is not an enum svakit_iommu_profile,
 * @cfg->reserved or @cfg->reserved2 is not zero, or
 * @cfg->sets_accessed_dirty, @cfg->deferred_flush or @cfg->shadowed_flush is
 * not 0 or 1.
 */
int svakit_iommu_create(svakit_machine *m, const struct svakit_iommu_config *cfg, uint32_t *iommu);

/**
 * svakit_iommu_counters() - copy an IOMMU's counters.
 * @m: the machine.
 * @iommu: the IOMMU.
 * @out: receives the counters.
 *
 * Context: Takes the IOMMU's lock briefly. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @out is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no IOMMU has that id.
 */
int svakit_iommu_counters(svakit_machine *m, uint32_t iommu, struct svakit_iommu_counters *out);

/**
 * svakit_iommu_invalidate_range() - a range invalidation command.
 * @m: the machine.
 * @iommu: the IOMMU.
 * @pasid: the PASID, below 2^20.
 * @start: a page-aligned canonical address.
 * @end: the inclusive end: the last byte of a page, not below @start.
 * @leaf_only: 1 for the VT-d IH / SMMUv3 LEAF hint (paging-structure
 *	entries may stay), 0 otherwise.
 *
 * Context: Takes the IOMMU's lock; calls the IOMMU's driver op after it with
 * no lock held. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no IOMMU has that id.
 * -EINVAL: @pasid is 2^20 or more, @leaf_only is not 0 or 1, @start is not
 * page aligned, @end is not a page's last byte, or @end < @start.
 * -ERANGE: @start or @end is not canonical.
 */
int svakit_iommu_invalidate_range(svakit_machine *m, uint32_t iommu, uint32_t pasid,
				  uint64_t start, uint64_t end, int leaf_only);

/**
 * svakit_iommu_invalidate_pasid() - invalidate everything cached for a PASID.
 * @m: the machine.
 * @iommu: the IOMMU.
 * @pasid: the PASID, below 2^20.
 *
 * Context: As svakit_iommu_invalidate_range().
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no IOMMU has that id.
 * -EINVAL: @pasid is 2^20 or more.
 */
int svakit_iommu_invalidate_pasid(svakit_machine *m, uint32_t iommu, uint32_t pasid);

/**
 * svakit_iommu_invalidate_all() - invalidate everything an IOMMU caches.
 * @m: the machine.
 * @iommu: the IOMMU.
 *
 * Context: As svakit_iommu_invalidate_range().
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no IOMMU has that id.
 */
int svakit_iommu_invalidate_all(svakit_machine *m, uint32_t iommu);

/**
 * svakit_iommu_fence() - complete the walks in flight.
 * @m: the machine.
 * @iommu: the IOMMU.
 *
 * An invalidation wait / CMD_SYNC: returns when every walk that began before
 * it has finished.
 *
 * Context: Takes the IOMMU's fence lock, then its lock briefly; waits
 * (yielding) for walks in flight; calls the driver's fence op with no lock
 * held. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no IOMMU has that id.
 */
int svakit_iommu_fence(svakit_machine *m, uint32_t iommu);

/**
 * struct svakit_iommu_driver_ops - a C IOMMU driver.
 * @invalidate_range: a range invalidation of a PASID; @end is inclusive;
 *	leaf_only is the VT-d IH / SMMUv3 LEAF hint.
 * @invalidate_pasid: everything of a PASID.
 * @invalidate_all: everything.
 * @fence: an invalidation wait.
 *
 * Receives every invalidation command the built-in model of that IOMMU
 * receives, after the model has applied it, with no engine lock held, on
 * the thread that issued it (the deferred-free worker for the work's
 * invalidation). Any op may be NULL.
 */
struct svakit_iommu_driver_ops {
	void (*invalidate_range)(void *ctx, uint32_t pasid, uint64_t start, uint64_t end, int leaf_only);
	void (*invalidate_pasid)(void *ctx, uint32_t pasid);
	void (*invalidate_all)(void *ctx);
	void (*fence)(void *ctx);
};

/**
 * svakit_iommu_set_driver() - attach or detach a C IOMMU driver.
 * @m: the machine.
 * @iommu: the IOMMU.
 * @ops: the driver's ops, copied; NULL detaches.
 * @ctx: passed back to every op.
 *
 * Context: Takes the IOMMU's lock. May be called from any callback; a command
 * already issued may still reach the previous driver.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no IOMMU has that id.
 */
int svakit_iommu_set_driver(svakit_machine *m, uint32_t iommu, const struct svakit_iommu_driver_ops *ops,
			    void *ctx);

#define SVAKIT_DEV_SVA 0x1u /* the device can do SVA (PASID, PRI, ATS) */
#define SVAKIT_DEV_UNTRUSTED 0x2u /* dev->untrusted (an external port): strict DMA */

/**
 * svakit_device_create() - add a device behind an IOMMU.
 * @m: the machine.
 * @iommu: the IOMMU it sits behind.
 * @flags: 0, or SVAKIT_DEV_SVA and SVAKIT_DEV_UNTRUSTED or'ed.
 * @pasid_bits: it emits PASIDs 1 .. 2^@pasid_bits - 1; 1 to 20.
 * @dev: receives its id.
 *
 * An untrusted device (dev->untrusted, an external-facing port) always gets
 * a strict default domain from svakit_iommu_setup_default_domain(), and its unmaps are strict
 * even through a lazy domain it shares (docs/KERNEL-MODEL.md §4.1).
 *
 * Context: Takes the IOMMU core lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @dev is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no IOMMU has that id.
 * -EINVAL: @flags has an unknown bit, or @pasid_bits is 0 or past 20.
 */
int svakit_device_create(svakit_machine *m, uint32_t iommu, uint32_t flags,
			 uint32_t pasid_bits, uint32_t *dev);

/**
 * svakit_iommu_attach_device_pasid() - iommu_attach_device_pasid: an mm's tables at a PASID.
 * @m: the machine.
 * @dev: the device (SVA or not).
 * @pasid: a PASID the device can emit, not 0.
 * @mm: a process mm (not init_mm).
 *
 * The mm's tables stand for the domain Linux's iommu_attach_device_pasid()
 * takes. A non-SVA attachment, as iommufd lets a VMM make; an SVA bind
 * whose PASID collides gets -EBUSY. The IOMMU can walk the mm's kernel half through it,
 * so it turns the static key on and the kernel-address invalidation reaches
 * it like an SVA domain.
 *
 * Context: Takes the SVA lock (iommu_sva_lock) and, inside it, the
 * address-space list lock, the IOMMU core lock and the IOMMU's lock. May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no device has that id.
 * -EINVAL: @pasid is 0, or @mm is init_mm.
 * -EOVERFLOW: @pasid is wider than the device emits.
 * -ESRCH: no mm has that id.
 * -EBUSY: the device's @pasid is taken (by another attachment or a bond).
 */
int svakit_iommu_attach_device_pasid(svakit_machine *m, uint32_t dev, uint32_t pasid, uint32_t mm);

/**
 * svakit_iommu_detach_device_pasid() - iommu_detach_device_pasid: undo the attach.
 * @m: the machine.
 * @dev: the device.
 * @pasid: the PASID attached.
 *
 * Removes the PASID entry, then invalidates the PASID and fences; the last
 * attachment or bond turns the static key off.
 *
 * Context: Takes the SVA lock and, inside it, the IOMMU core lock, then (with
 * none held) the IOMMU's locks for the invalidation; calls driver ops with no
 * lock held. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no device has that id.
 * -ENOENT: nothing is attached at @pasid (an SVA bond's PASID, a PASID past
 * the device's width and a second detach included).
 */
int svakit_iommu_detach_device_pasid(svakit_machine *m, uint32_t dev, uint32_t pasid);

/* ------------------------------------------------------------------------ */
/* Device access: a device's DMA through its IOMMU                         */
/* ------------------------------------------------------------------------ */

#define SVAKIT_DMA_WRITE 0x1u /* a write (svakit_device_dma_write sets it itself) */
#define SVAKIT_DMA_PRIV  0x2u /* a supervisor request; SVA devices make user ones */
#define SVAKIT_DMA_FAULTED 1  /* returned when the translation faulted */

/**
 * enum svakit_fault_reason - why a DMA translation faulted.
 * @SVAKIT_FAULT_NOT_PRESENT: an entry on the walk was not present.
 * @SVAKIT_FAULT_PRIVILEGE: a user request met U/S = 0 (level >= 1), or a
 *	supervisor request went through a PASID entry that does not enable
 *	them: every SVA and attach PASID (level 0).
 * @SVAKIT_FAULT_WRITE: a write met a read-only entry.
 * @SVAKIT_FAULT_NO_PASID: nothing is attached at the PASID.
 * @SVAKIT_FAULT_BAD_ADDRESS: the translation left memory.
 * @SVAKIT_FAULT_TABLE_DISABLED: an SMMUv3 SVA context descriptor sets
 *	TCR.EPD1, so an upper-half (kernel) address faults without any table
 *	being read (SVAKIT_IOMMU_SMMUV3, level 0).
 */
enum svakit_fault_reason {
	SVAKIT_FAULT_NOT_PRESENT = 1,
	SVAKIT_FAULT_PRIVILEGE = 2,
	SVAKIT_FAULT_WRITE = 3,
	SVAKIT_FAULT_NO_PASID = 4,
	SVAKIT_FAULT_BAD_ADDRESS = 5,
	SVAKIT_FAULT_TABLE_DISABLED = 6,
};

/**
 * struct svakit_dma_fault - a DMA translation fault.
 * @reason: enum svakit_fault_reason.
 * @level: level of the entry that faulted (0: the PASID entry).
 * @address: the address that faulted.
 */
struct svakit_dma_fault {
	uint32_t reason;
	uint32_t level;
	uint64_t address;
};

/**
 * svakit_device_dma_read() - a device reads memory through its IOMMU.
 * @m: the machine.
 * @dev: the device.
 * @pasid: the PASID it emits, 1 .. its width, or 0 (IOMMU_NO_PASID) for a
 * request without PASID, which the device's default DMA domain translates
 * (with none attached it faults: SVAKIT_FAULT_NO_PASID at level 0).
 * @va: the address.
 * @buf: receives the bytes.
 * @len: how many.
 * @flags: 0 or SVAKIT_DMA_PRIV.
 * @fault: receives the fault when one happens; may be NULL.
 *
 * Translates page by page (the IOTLB and paging-structure caches first) and
 * stops at the first fault. The walk oracle reports a walk through a frame
 * that was not what the entry that led there believed.
 *
 * Context: Takes the IOMMU's lock for cache lookups; walks memory with no
 * lock, as hardware does; calls the report handler after the walk with no
 * lock held. May be called from any callback.
 * Return: 0 on success, SVAKIT_DMA_FAULTED when a translation faulted
 * (@fault is written).
 * -EFAULT: @m or @buf is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no device has that id.
 * -EINVAL: @flags has an unknown bit, or @len does not fit the
 * address space.
 * -EOVERFLOW: @pasid is wider than the device emits.
 * -ERANGE: the range is not canonical, or wraps past 2^64.
 */
int svakit_device_dma_read(svakit_machine *m, uint32_t dev, uint32_t pasid, uint64_t va,
		    void *buf, size_t len, uint32_t flags, struct svakit_dma_fault *fault);

/**
 * svakit_device_dma_write() - a device writes memory through its IOMMU.
 * @m: the machine.
 * @dev: the device.
 * @pasid: the PASID it emits, 1 .. its width, or 0 (IOMMU_NO_PASID) for a
 * request without PASID, which the device's default DMA domain translates
 * (with none attached it faults: SVAKIT_FAULT_NO_PASID at level 0).
 * @va: the address.
 * @buf: the bytes.
 * @len: how many.
 * @flags: 0, SVAKIT_DMA_WRITE or SVAKIT_DMA_PRIV (the write bit is implied).
 * @fault: receives the fault when one happens; may be NULL.
 *
 * As svakit_device_dma_read(), writing.
 *
 * Context: As svakit_device_dma_read().
 * Return: 0 on success, SVAKIT_DMA_FAULTED when a translation faulted
 * (@fault is written).
 * -EFAULT: @m or @buf is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no device has that id.
 * -EINVAL: @flags has an unknown bit, or @len does not fit the
 * address space.
 * -EOVERFLOW: @pasid is wider than the device emits.
 * -ERANGE: the range is not canonical, or wraps past 2^64.
 */
int svakit_device_dma_write(svakit_machine *m, uint32_t dev, uint32_t pasid, uint64_t va,
		     const void *buf, size_t len, uint32_t flags, struct svakit_dma_fault *fault);

/* ------------------------------------------------------------------------ */
/* SVA (docs/KERNEL-MODEL.md §1.4-1.6)                                     */
/* ------------------------------------------------------------------------ */

/**
 * svakit_iommu_sva_bind_device() - iommu_sva_bind_device: bind a device to an mm.
 * @m: the machine.
 * @dev: an SVA device.
 * @mm: a process mm (not init_mm).
 * @handle: receives the bond's handle.
 *
 * The mm gets one PASID for its whole life; one SVA domain per (mm, IOMMU)
 * is shared by the devices behind that IOMMU; binding the same (dev, mm)
 * again returns the same handle with its count raised. The first bond of
 * any mm turns iommu_sva_present on.
 *
 * Context: Takes the SVA lock (iommu_sva_lock) and, inside it, the
 * address-space list lock, the IOMMU core lock and the IOMMU's lock. May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @handle is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no device has that id.
 * -ESRCH: no mm has that id.
 * -EINVAL: @mm is init_mm.
 * -EOPNOTSUPP: the device does not support SVA.
 * -EOVERFLOW: the mm's PASID is wider than the device emits.
 * -ENOSPC: the mm needs a PASID and none is free below the device's width.
 * -EBUSY: the device's slot at the mm's PASID holds an attachment of
 * another mm.
 */
int svakit_iommu_sva_bind_device(svakit_machine *m, uint32_t dev, uint32_t mm, uint32_t *handle);

/**
 * svakit_iommu_sva_unbind_device() - iommu_sva_unbind_device: drop a bond.
 * @m: the machine.
 * @handle: a handle svakit_iommu_sva_bind_device() returned.
 *
 * Drops one reference; the last one detaches (invalidating the PASID),
 * frees the domain with its last user, and turns the key off with the last
 * SVA mm.
 *
 * Context: As svakit_iommu_detach_device_pasid().
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ESTALE: no live bond has that handle (a double unbind included).
 */
int svakit_iommu_sva_unbind_device(svakit_machine *m, uint32_t handle);

/**
 * svakit_iommu_sva_get_pasid() - iommu_sva_get_pasid: a bond's PASID.
 * @m: the machine.
 * @handle: a live bond.
 * @pasid: receives the mm's PASID.
 *
 * Context: Takes the SVA lock (iommu_sva_lock). May be called from any
 * callback.
 * Return: 0 on success.
 * -EFAULT: @m or @pasid is NULL.
 * -EBADF: @m is not a live machine.
 * -ESTALE: no live bond has that handle.
 */
int svakit_iommu_sva_get_pasid(svakit_machine *m, uint32_t handle, uint32_t *pasid);

/**
 * svakit_iommu_sva_mm_count() - the number of mms on the SVA list.
 * @m: the machine.
 * @count: receives the length of iommu_sva_mms.
 *
 * Context: Takes no lock (reads the published list). May be called from any
 * callback.
 * Return: 0 on success.
 * -EFAULT: @m or @count is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_iommu_sva_mm_count(svakit_machine *m, uint32_t *count);

/**
 * svakit_iommu_sva_invalidate_kva_range_slow() - the gate's out-of-line path.
 * @m: the machine; anything but a live machine is ignored.
 * @start: the first kernel address.
 * @end: the inclusive end.
 *
 * Invalidates [@start, @end], non-leaf entries included, for every SVA mm's
 * PASID on every IOMMU it is bound to (and every attachment), then fences.
 * Call it through svakit_iommu_sva_invalidate_kva_range().
 *
 * Context: Takes no global lock: reads the published SVA list, takes each
 * IOMMU's lock once for all its domains, and calls driver ops with no lock
 * held. May be called from any callback.
 */
void svakit_iommu_sva_invalidate_kva_range_slow(svakit_machine *m, uint64_t start, uint64_t end);

/**
 * svakit_iommu_sva_present() - read the static key iommu_sva_present.
 * @m: a live machine (or a destroyed one's tombstone, which reads 0).
 *
 * A relaxed load, no call (docs/KERNEL-MODEL.md §1.8: the branch belongs in
 * an inline wrapper guarding the call). No check of @m is made: NULL or a
 * pointer that is not a handle is undefined.
 *
 * Context: Any context; takes no lock.
 * Return: nonzero while an IOMMU may walk an mm's tables, 0 otherwise.
 */
static inline int svakit_iommu_sva_present(const svakit_machine *m)
{
	return __atomic_load_n(&m->iommu_sva_present, __ATOMIC_RELAXED);
}

/**
 * svakit_iommu_sva_invalidate_kva_range() - iommu_sva_invalidate_kva_range.
 * @m: a live machine (or a destroyed one's tombstone: then nothing happens).
 * @start: the first kernel address.
 * @end: the inclusive end.
 *
 * The gate: costs one load and a not-taken branch while no mm has SVA;
 * otherwise calls svakit_iommu_sva_invalidate_kva_range_slow(). No check of
 * @m is made: NULL is undefined.
 *
 * Context: As svakit_iommu_sva_invalidate_kva_range_slow().
 */
static inline void svakit_iommu_sva_invalidate_kva_range(svakit_machine *m, uint64_t start, uint64_t end)
{
	if (__builtin_expect(svakit_iommu_sva_present(m), 0))
		svakit_iommu_sva_invalidate_kva_range_slow(m, start, end);
}

/* ------------------------------------------------------------------------ */
/* Deferred freeing of kernel page tables (docs/KERNEL-MODEL.md §2)        */
/* ------------------------------------------------------------------------ */

/**
 * svakit_pagetable_free_kernel() - pagetable_free_kernel: queue a kernel table.
 * @m: the machine.
 * @pfn: an unlinked kernel page table that points at no table.
 *
 * Queues @pfn for the deferred work whatever its PT_kernel mark; in the
 * immediate mode frees it at once, as with CONFIG_ASYNC_KERNEL_PGTABLE_FREE
 * off.
 *
 * Context: As svakit_pagetable_free().
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @pfn is past the end of memory.
 * -ENXIO: @pfn is not the head of an allocated block (never allocated).
 * -EALREADY: @pfn is already queued or freed.
 * -EPERM: @pfn is not a kernel page table (data, a user table), or is a root.
 * -EBUSY: @pfn is still linked, or still points at tables.
 */
int svakit_pagetable_free_kernel(svakit_machine *m, uint64_t pfn);

/**
 * svakit_deferred_work_run() - run the deferred work now.
 * @m: the machine.
 *
 * kernel_pgtable_work_func, as the deterministic mode's kworker: takes the
 * whole list, makes one gated IOMMU invalidation over the kernel range, then
 * frees every frame. A no-op when nothing is queued.
 *
 * Context: Takes the deferred list's lock to splice the list, then none while
 * it invalidates (driver ops) and frees (the free hook, on this thread). May
 * be called from any callback, the free hook included (it runs what was
 * queued since).
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_deferred_work_run(svakit_machine *m);

/**
 * svakit_deferred_work_flush() - flush_work: wait for the deferred frees.
 * @m: the machine.
 *
 * Returns when everything queued before the call is freed. In
 * SVAKIT_WORK_MANUAL mode it runs the work on this thread.
 *
 * Context: May sleep until the worker thread finishes its run. Must not be
 * called from a callback running on the worker thread (the free hook for a
 * deferred frame, an IOMMU driver op for the work's invalidation): it would
 * wait for the run it is part of and never return. From other callbacks and
 * threads it may be called.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_deferred_work_flush(svakit_machine *m);

/**
 * struct svakit_deferred_stats - the deferred-free figures.
 * @pending: frames on the list now.
 * @frames_deferred: frames ever queued.
 * @batches: runs of the work that freed something.
 * @largest_batch: the most frames one run freed.
 * @peak_pending: the longest the list has been.
 * @invalidations: gated invalidations the work issued.
 */
struct svakit_deferred_stats {
	uint64_t pending;
	uint64_t frames_deferred;
	uint64_t batches;
	uint64_t largest_batch;
	uint64_t peak_pending;
	uint64_t invalidations;
};

/**
 * svakit_deferred_stats() - copy the deferred-free figures.
 * @m: the machine.
 * @out: receives them.
 *
 * Context: Takes the deferred list's lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @out is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_deferred_stats(svakit_machine *m, struct svakit_deferred_stats *out);

/**
 * typedef svakit_free_fn - the free hook.
 * @ctx: the context given to svakit_machine_set_free_hook().
 * @pfn: the page-table frame freed.
 * @level: its level.
 * @site: enum svakit_site of the path that freed it.
 *
 * Called when a page-table frame returns to the allocator, after it is back
 * on the free lists, with no engine lock held (it may call into the
 * machine, but see svakit_deferred_work_flush()). It runs on the thread that
 * freed the frame: the deferred-free worker for deferred frames.
 */
typedef void (*svakit_free_fn)(void *ctx, uint64_t pfn, unsigned int level, unsigned int site);

/**
 * svakit_machine_set_free_hook() - attach or detach the free hook.
 * @m: the machine.
 * @fn: the hook; NULL detaches.
 * @ctx: passed back to @fn.
 *
 * Context: Takes the hook slot's lock. May be called from any callback; a
 * free already running may still call the previous hook.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_machine_set_free_hook(svakit_machine *m, svakit_free_fn fn, void *ctx);

/* ------------------------------------------------------------------------ */
/* DMA domains and the IOMMU API (docs/KERNEL-MODEL.md §4)                 */
/* ------------------------------------------------------------------------ */

/**
 * enum svakit_domain_type - the type of a DMA domain (IOMMU_DOMAIN_*).
 * @SVAKIT_DOMAIN_IDENTITY: passthrough: the IOVA is the physical address; no
 *	tables.
 * @SVAKIT_DOMAIN_DMA: translated; every DMA API unmap is invalidated and
 *	synced before it returns (strict).
 * @SVAKIT_DOMAIN_DMA_FQ: translated; DMA API unmaps wait in the flush queue
 *	and are invalidated in batches (lazy).
 *
 * The names sysfs shows are "identity", "DMA" and "DMA-FQ"
 * (docs/KERNEL-MODEL.md §4.1).
 */
enum svakit_domain_type {
	SVAKIT_DOMAIN_IDENTITY = 0,
	SVAKIT_DOMAIN_DMA = 1,
	SVAKIT_DOMAIN_DMA_FQ = 2,
};

/* svakit_iommu_domain_alloc() pgsize_bitmap: byte sizes or'ed; 0 means the default. */
#define SVAKIT_PGSIZE_DEFAULT (SVAKIT_PAGE_SIZE | SVAKIT_PMD_SIZE | SVAKIT_PUD_SIZE)

/* svakit_iommu_map() prot, as Linux's IOMMU_READ and IOMMU_WRITE. */
#define SVAKIT_IOMMU_READ  0x1u
#define SVAKIT_IOMMU_WRITE 0x2u

/**
 * svakit_iommu_domain_alloc() - iommu_domain_alloc: a new DMA domain.
 * @m: the machine.
 * @iommu: the IOMMU whose tables it is.
 * @type: enum svakit_domain_type.
 * @pgsize_bitmap: the sizes it maps with, a mask of 4 KiB, 64 KiB, 2 MiB and
 *	1 GiB whose smallest is 4 KiB or 64 KiB (the granule); 0 for
 *	SVAKIT_PGSIZE_DEFAULT (4 KiB | 2 MiB | 1 GiB).
 * @domain: receives its id (ids are never reused).
 *
 * A translated domain gets a root table (a frame of kind
 * SVAKIT_FRAME_PT_IOMMU), an IOVA allocator and a flush queue; an identity
 * domain has none. The first SVAKIT_DOMAIN_DMA_FQ domain of a machine
 * taints it and logs the window lazy mode opens.
 *
 * Context: Takes the domain list lock and the frame
 * allocator's lock in turn. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @domain is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @type names no type, or @pgsize_bitmap has another size or no
 * 4 KiB or 64 KiB.
 * -ENODEV: no IOMMU has that id.
 * -ENOMEM: no frame for the root table.
 * -ENOSPC: 2^22 domains were allocated already.
 */
int svakit_iommu_domain_alloc(svakit_machine *m, uint32_t iommu, uint32_t type, uint64_t pgsize_bitmap,
			uint32_t *domain);

/**
 * svakit_iommu_domain_free() - iommu_domain_free: free a domain and its tables.
 * @m: the machine.
 * @domain: the domain; no device may be attached to it.
 *
 * Drains its flush queue, unlinks its tables, drops its IOMMU's cache lines
 * for it and fences, then frees every table and the root.
 *
 * Context: Takes the IOMMU core lock, the domain list lock, the domain's table
 * lock and the IOMMU's locks; calls the IOMMU's driver ops with no lock held.
 * May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no domain has that id (a freed one included: a double free).
 * -EBUSY: a device is attached to it, or the DMA API has live mappings in it.
 */
int svakit_iommu_domain_free(svakit_machine *m, uint32_t domain);

/**
 * svakit_iommu_attach_device() - iommu_attach_device: a device's default domain.
 * @m: the machine.
 * @domain: a domain of the device's IOMMU.
 * @dev: the device, with no default domain yet.
 *
 * The device's requests without PASID (svakit_device_dma_read() with PASID 0) go
 * through @domain from now on, and the DMA API maps into it.
 *
 * Context: Takes the domain list lock, then the IOMMU core lock and the
 * IOMMU's lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no domain or no device has that id.
 * -EINVAL: @domain belongs to another IOMMU than the device's.
 * -EBUSY: the device has a default domain already.
 */
int svakit_iommu_attach_device(svakit_machine *m, uint32_t domain, uint32_t dev);

/**
 * svakit_iommu_detach_device() - iommu_detach_device: drop a device's default domain.
 * @m: the machine.
 * @dev: the device.
 *
 * Its requests without PASID fault again; the domain's lines are dropped and
 * the walks in flight waited for. The domain stays, with its mappings.
 *
 * Context: Takes the IOMMU core lock, then (with none held) the IOMMU's
 * locks; calls the driver's ops with no lock held. May be called from any
 * callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no device has that id.
 * -ENOENT: the device has no default domain (a second detach included).
 */
int svakit_iommu_detach_device(svakit_machine *m, uint32_t dev);

/**
 * svakit_iommu_map() - iommu_map: map an IOVA range of a domain.
 * @m: the machine.
 * @domain: a translated domain.
 * @iova: the first IOVA, a multiple of the domain's granule.
 * @phys: the physical address it maps to, a multiple of the granule.
 * @size: the bytes, a nonzero multiple of the granule.
 * @prot: SVAKIT_IOMMU_READ, or SVAKIT_IOMMU_READ | SVAKIT_IOMMU_WRITE.
 *
 * Maps with the largest pages the domain's bitmap and the alignment of @iova
 * and @phys allow, allocating tables as needed. Nothing is invalidated: the
 * range was not mapped. On an SVAKIT_IOMMU_SMMUV3 IOMMU a page mapped where
 * a table is replaces it, as io-pgtable-arm does (docs/KERNEL-MODEL.md
 * §4.4b): the table is unlinked, its span invalidated (not leaf-only) and
 * synced, and it is freed, whatever it still mapped; there -EEXIST comes
 * from a leaf in the way only, after the tables before it in the same
 * map_pages step went.
 *
 * Context: Takes the domain list lock, then the domain's table lock and the
 * frame allocator's lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no domain has that id.
 * -EINVAL: @prot has an unknown bit or no SVAKIT_IOMMU_READ (the x86-64
 * format cannot express a write-only entry), @domain is an identity domain,
 * or @iova, @phys or @size is not a multiple of the granule (@size 0
 * included).
 * -ERANGE: the IOVA range runs past the 48-bit aperture, or the physical
 * range past the end of memory and not inside the MMIO window
 * (SVAKIT_MMIO_BASE, SVAKIT_MMIO_SIZE).
 * -EEXIST: part of the range is mapped already; nothing is mapped then
 * (tables allocated on the way stay, as in Linux).
 * -ENOMEM: a table cannot be allocated; nothing is mapped then.
 */
int svakit_iommu_map(svakit_machine *m, uint32_t domain, uint64_t iova, uint64_t phys, uint64_t size,
		     uint32_t prot);

/**
 * svakit_iommu_unmap() - iommu_unmap: unmap an IOVA range, strictly.
 * @m: the machine.
 * @domain: a translated domain.
 * @iova: the first IOVA, a multiple of the granule.
 * @size: the bytes, a nonzero multiple of the granule.
 * @unmapped: receives the bytes unmapped: more than @size when the range cut
 *	into a larger page (except on SVAKIT_IOMMU_SMMUV3, which splits it),
 *	less when it stopped at a hole.
 *
 * Clears the entries, invalidates the range on the domain's IOMMU (leaf-only
 * when no table was freed) and syncs, then frees the tables the unmap
 * unlinked: the IOMMU API is always strict. Per profile, as each Linux
 * driver (docs/KERNEL-MODEL.md §4.4b): SVAKIT_IOMMU_SMMUV3 invalidates each
 * unlinked table's span (not leaf-only) and syncs before freeing it, then
 * the range leaf-only; SVAKIT_IOMMU_AMD unlinks no table.
 *
 * Context: Takes the domain list lock, the domain's table lock, the IOMMU's
 * locks and the frame allocator's lock in turn; calls the driver's ops with
 * no lock held. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @unmapped is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no domain has that id.
 * -EINVAL: @domain is an identity domain, or @iova or @size is not a
 * multiple of the granule (@size 0 included).
 * -ERANGE: the range runs past the 48-bit aperture.
 * -ENOENT: nothing is mapped at @iova (a second unmap included).
 */
int svakit_iommu_unmap(svakit_machine *m, uint32_t domain, uint64_t iova, uint64_t size,
		       uint64_t *unmapped);

/**
 * svakit_iommu_iova_to_phys() - iommu_iova_to_phys: walk a domain's tables.
 * @m: the machine.
 * @domain: the domain.
 * @iova: the IOVA.
 * @phys: receives the physical address (@iova itself in an identity domain).
 *
 * The software walk; it reads no IOMMU cache, so it says what the tables
 * say, not what a device with a stale IOTLB entry reaches.
 *
 * Context: Takes the domain list lock, then the domain's table lock. May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @phys is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no domain has that id.
 * -ENOENT: nothing is mapped at @iova (an @iova past the 48-bit aperture
 * included).
 */
int svakit_iommu_iova_to_phys(svakit_machine *m, uint32_t domain, uint64_t iova, uint64_t *phys);

/**
 * enum svakit_dma_policy_reason - why a default domain got its type.
 * @SVAKIT_POLICY_LAZY_DEFAULT: lazy, the machine's default ("DMA domain TLB
 *	invalidation policy: lazy mode").
 * @SVAKIT_POLICY_STRICT_CONFIGURED: strict: svakit_config.dma_strict
 *	(iommu.strict=1).
 * @SVAKIT_POLICY_UNTRUSTED_DEVICE: strict: the device is untrusted
 *	(SVAKIT_DEV_UNTRUSTED).
 * @SVAKIT_POLICY_NO_DEFERRED_FLUSH: strict: the IOMMU cannot defer flushes
 *	(svakit_iommu_config.deferred_flush is 0).
 *
 * The boot log's line, as iommu_setup_default_domain decides it
 * (docs/KERNEL-MODEL.md §4.1).
 */
enum svakit_dma_policy_reason {
	SVAKIT_POLICY_LAZY_DEFAULT = 0,
	SVAKIT_POLICY_STRICT_CONFIGURED = 1,
	SVAKIT_POLICY_UNTRUSTED_DEVICE = 2,
	SVAKIT_POLICY_NO_DEFERRED_FLUSH = 3,
};

/**
 * svakit_iommu_setup_default_domain() - iommu_setup_default_domain: a device's default domain.
 * @m: the machine.
 * @dev: the device, with no default domain yet.
 * @identity: 1 for an identity (passthrough) domain, 0 for a translated one.
 * @domain: receives the domain's id.
 * @reason: receives the enum svakit_dma_policy_reason: why a translated
 *	domain is (or would be) strict or lazy.
 *
 * A translated domain is SVAKIT_DOMAIN_DMA_FQ (lazy) unless the machine is
 * strict (svakit_config.dma_strict), the device untrusted
 * (SVAKIT_DEV_UNTRUSTED) or its IOMMU unable to defer flushes
 * (svakit_iommu_config.deferred_flush 0); then SVAKIT_DOMAIN_DMA. The
 * domain is allocated with the default page sizes and attached.
 *
 * Context: As svakit_iommu_domain_alloc(), then svakit_iommu_attach_device(). May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m, @domain or @reason is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @identity is not 0 or 1.
 * -ENODEV: no device has that id.
 * -EBUSY: the device has a default domain already; nothing is allocated.
 * -ENOMEM: no frame for the domain's root table.
 * -ENOSPC: 2^22 domains were allocated already.
 */
int svakit_iommu_setup_default_domain(svakit_machine *m, uint32_t dev, int identity, uint32_t *domain, uint32_t *reason);

/* ------------------------------------------------------------------------ */
/* IOMMU_DEBUG_PAGEALLOC: the sanitizer (docs/KERNEL-MODEL.md §5)          */
/* ------------------------------------------------------------------------ */

/*
 * SVAKIT_CONFIG_IOMMU_DEBUG_PAGEALLOC is 0 when the library was built without
 * the sanitizer (CMake -DSVAKIT_IOMMU_DEBUG_PAGEALLOC=OFF defines it so for
 * its consumers; SwiftPM: the package trait IOMMUDebugPagealloc). The gates
 * below then compile to nothing, as the kernel's stubs do without
 * CONFIG_IOMMU_DEBUG_PAGEALLOC.
 */
#ifndef SVAKIT_CONFIG_IOMMU_DEBUG_PAGEALLOC
#define SVAKIT_CONFIG_IOMMU_DEBUG_PAGEALLOC 1
#endif

/**
 * enum svakit_iommu_debug_mode - the sanitizer, as iommu.debug_pagealloc=.
 * @SVAKIT_IOMMU_DEBUG_OFF: off (the default): no per-frame counts are
 *	allocated and the key stays off.
 * @SVAKIT_IOMMU_DEBUG_LINUX: as Linux 7.0 merged it: a 4-byte mapping count
 *	per frame (page_ext), raised after each successful iommu_map, lowered
 *	before each unmap through one iova_to_phys walk per granule, the tail
 *	of a short unmap raised again; a lazy unmap lowers it at once.
 * @SVAKIT_IOMMU_DEBUG_FAST: the same counts and checks, lowered inside the
 *	unmap's own walk (no walk per granule); beyond Linux.
 * @SVAKIT_IOMMU_DEBUG_WINDOW: FAST and window-aware: an unmapped granule
 *	counts until the invalidation that covers it has finished (at once
 *	for a strict unmap, at the covering flush for a lazy one), so a free in
 *	the lazy window is reported; beyond Linux.
 */
enum svakit_iommu_debug_mode {
	SVAKIT_IOMMU_DEBUG_OFF = 0,
	SVAKIT_IOMMU_DEBUG_LINUX = 1,
	SVAKIT_IOMMU_DEBUG_FAST = 2,
	SVAKIT_IOMMU_DEBUG_WINDOW = 3,
};

/**
 * enum svakit_report_kind - what a report is about.
 * @SVAKIT_REPORT_WALK: the walk oracle: a walk reached a freed frame.
 * @SVAKIT_REPORT_LEAK_AT_FREE: the sanitizer: a frame was freed while an
 *	IOMMU mapping counted it ("iommu: Detected page leak!").
 * @SVAKIT_REPORT_LEAK_AT_ALLOC: the sanitizer: a frame was allocated while
 *	an IOMMU mapping counted it (a mapping outlived its owner).
 * @SVAKIT_REPORT_LEAK_AT_CHECK: the sanitizer: svakit_iommu_debug_check_unmapped()
 *	found the frame counted.
 */
enum svakit_report_kind {
	SVAKIT_REPORT_WALK = 0,
	SVAKIT_REPORT_LEAK_AT_FREE = 1,
	SVAKIT_REPORT_LEAK_AT_ALLOC = 2,
	SVAKIT_REPORT_LEAK_AT_CHECK = 3,
};

/**
 * svakit_iommu_debug_pagealloc_built() - whether the sanitizer is compiled in.
 *
 * Context: Any context; takes no lock.
 * Return: 1 when the library was built with IOMMU_DEBUG_PAGEALLOC, 0 when it
 * was compiled out.
 */
int svakit_iommu_debug_pagealloc_built(void);

/**
 * svakit_iommu_debug_pagealloc_enabled() - read the sanitizer's static key.
 * @m: a live machine (or a destroyed one's tombstone, which reads 0).
 *
 * One relaxed load and a branch, or the constant 0 when the sanitizer is
 * compiled out. The engine's own map, unmap, alloc and free paths test this
 * same key before calling their slow paths.
 *
 * Context: Any context; takes no lock.
 * Return: nonzero when the machine runs the sanitizer, 0 otherwise.
 */
static inline int svakit_iommu_debug_pagealloc_enabled(const svakit_machine *m)
{
#if SVAKIT_CONFIG_IOMMU_DEBUG_PAGEALLOC
	return __builtin_expect(__atomic_load_n(&m->iommu_debug_initialized, __ATOMIC_RELAXED), 0);
#else
	(void)m;
	return 0;
#endif
}

/**
 * __svakit_iommu_debug_check_unmapped() - the slow path of the check.
 * @m: the machine.
 * @pfn: the first frame.
 * @npages: frames to check, at least 1.
 *
 * Call svakit_iommu_debug_check_unmapped() instead.
 *
 * Context: Takes no engine lock while checking; a report goes to the report
 * handler with no lock held. Must not be called from a report handler.
 * Return: the frames of the range still counted as mapped (each reported),
 * 0 when none is or the key is off; -EINVAL when @npages is 0, -ERANGE when
 * the range leaves memory, -EBADF for a bad handle.
 */
int __svakit_iommu_debug_check_unmapped(svakit_machine *m, uint64_t pfn, uint64_t npages);

/**
 * svakit_iommu_debug_check_unmapped() - iommu_debug_check_unmapped.
 * @m: a live machine.
 * @pfn: the first frame.
 * @npages: frames to check, at least 1.
 *
 * What the page allocator runs on every allocation and free when the key is
 * on: a frame still counted as mapped for DMA is a leak or a use-after-free
 * waiting to happen, and is reported with its page owner's history. The
 * engine runs it itself on its own allocations and frees; a harness may call
 * it for frames it is about to reuse. Costs one load and a branch when the
 * key is off.
 *
 * Context: as __svakit_iommu_debug_check_unmapped().
 * Return: as __svakit_iommu_debug_check_unmapped(); 0 when the key is off.
 */
static inline int svakit_iommu_debug_check_unmapped(svakit_machine *m, uint64_t pfn, uint64_t npages)
{
	if (svakit_iommu_debug_pagealloc_enabled(m))
		return __svakit_iommu_debug_check_unmapped(m, pfn, npages);
	return 0;
}

/**
 * svakit_iommu_debug_map_count() - read a frame's mapping count.
 * @m: the machine.
 * @pfn: the frame.
 * @count: set to the count: granules of IOMMU mappings (in window-aware mode
 *	also unmaps whose flush has not finished) that cover the frame.
 *
 * Context: Takes no lock.
 * Return: 0 on success; -ENODEV when the sanitizer is off (no counts exist),
 * -ERANGE for a frame past memory, -EFAULT for a NULL @count, -EBADF.
 */
int svakit_iommu_debug_map_count(svakit_machine *m, uint64_t pfn, int32_t *count);

/**
 * struct svakit_iommu_debug_stats - what the sanitizer counted.
 * @raised: frame counts raised by maps.
 * @lowered: frame counts lowered by unmaps (and, window-aware, flushes).
 * @reraised: counts raised again for the tail of a short unmap (linux mode).
 * @skipped: frames skipped because no descriptor backs them (MMIO, holes,
 *	offline memory), as page_ext_from_phys() returns NULL for them.
 * @overflows: raises refused at the count's maximum (warned, not wrapped).
 * @underflows: lowers refused at zero (warned: a double unmap).
 * @unmapped_more: unmaps that removed more than asked (warned once each
 *	machine in the log; counted every time).
 * @leaks: page-leak reports made.
 */
struct svakit_iommu_debug_stats {
	uint64_t raised;
	uint64_t lowered;
	uint64_t reraised;
	uint64_t skipped;
	uint64_t overflows;
	uint64_t underflows;
	uint64_t unmapped_more;
	uint64_t leaks;
};

/**
 * svakit_iommu_debug_stats() - read the sanitizer's counters.
 * @m: the machine.
 * @out: filled with the counters.
 *
 * Context: Takes no lock; the counters are read one by one.
 * Return: 0 on success; -ENODEV when the sanitizer is off, -EFAULT for a
 * NULL @out, -EBADF.
 */
int svakit_iommu_debug_stats(svakit_machine *m, struct svakit_iommu_debug_stats *out);

/* ------------------------------------------------------------------------ */
/* The DMA API over a device's default domain (docs/KERNEL-MODEL.md §4.3)  */
/* ------------------------------------------------------------------------ */

/**
 * enum svakit_dma_direction - the direction of a mapping (dma_data_direction).
 * @SVAKIT_DMA_BIDIRECTIONAL: DMA_BIDIRECTIONAL: the device reads and writes.
 * @SVAKIT_DMA_TO_DEVICE: DMA_TO_DEVICE: the device reads (a read-only entry).
 * @SVAKIT_DMA_FROM_DEVICE: DMA_FROM_DEVICE: the device writes.
 *
 * Linux's values; DMA_NONE (3) is refused.
 */
enum svakit_dma_direction {
	SVAKIT_DMA_BIDIRECTIONAL = 0,
	SVAKIT_DMA_TO_DEVICE = 1,
	SVAKIT_DMA_FROM_DEVICE = 2,
};

/* The cpu argument of the DMA API: the calling thread's simulated CPU. */
#define SVAKIT_CPU_CURRENT (-1)

/**
 * struct svakit_sg - one element of a scatter-gather list (struct scatterlist).
 * @phys: in: the physical address of the buffer.
 * @length: in: its length in bytes, not 0.
 * @dma_address: out: the DMA address of segment i (sg_dma_address), for i
 *	below the count svakit_dma_map_sg() returned; 0 past it.
 * @dma_length: out: the length of segment i (sg_dma_len); 0 past the count.
 *
 * svakit_dma_map_sg() reads @phys and @length of every element and writes
 * @dma_address and @dma_length of every element; svakit_dma_unmap_sg() reads
 * the segments back (up to the first @dma_length of 0), as
 * iommu_dma_unmap_sg does.
 */
struct svakit_sg {
	uint64_t phys;
	uint64_t length;
	uint64_t dma_address;
	uint64_t dma_length;
};

/**
 * svakit_dma_set_mask() - dma_set_mask_and_coherent: the device's DMA mask.
 * @m: the machine.
 * @dev: the device.
 * @mask: DMA_BIT_MASK(n) for n in 1..64: 2^n - 1, or UINT64_MAX.
 *
 * The device's IOVAs stay at or below @mask from the next map on, with
 * svakit_dma_map_page(), svakit_dma_map_sg() and svakit_dma_alloc_coherent()
 * alike (the model keeps one mask for streaming and coherent DMA). A device
 * starts with DMA_BIT_MASK(64), what the drivers of SVA-capable devices set.
 * Behind an IOMMU Linux accepts any mask; the model takes only the
 * DMA_BIT_MASK() form, which is what drivers pass. While PCI's 32-bit
 * workaround is on (as iommu_setup_dma_ops leaves it for a PCI device) and
 * the limit is above 4 GiB, an IOVA is tried below 4 GiB first; the first
 * such try that fails turns the workaround off for that device for good and
 * logs SVAKIT_EV_DMA_DAC_NOTICE. Identity domains ignore the mask (the
 * model has no swiotlb for dma-direct).
 *
 * Context: Takes the DMA layer's device-limits lock alone. May be called
 * from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @mask is 0 or not of the form 2^n - 1.
 * -ENODEV: no device has that id.
 */
int svakit_dma_set_mask(svakit_machine *m, uint32_t dev, uint64_t mask);

/**
 * svakit_dma_get_mask() - dma_get_mask: the device's DMA mask.
 * @m: the machine.
 * @dev: the device.
 * @mask: receives the mask (DMA_BIT_MASK(64) until svakit_dma_set_mask()).
 *
 * Context: Reads one word, no lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @mask is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no device has that id.
 */
int svakit_dma_get_mask(svakit_machine *m, uint32_t dev, uint64_t *mask);

/**
 * svakit_device_set_bus_dma_limit() - the limit the device's bus puts on it.
 * @m: the machine.
 * @dev: the device.
 * @limit: dev->bus_dma_limit, from firmware (ACPI _DMA, devicetree
 *	dma-ranges): 2^n - 1 for n in 1..64, or 0 for none (the default).
 *
 * iommu_dma_alloc_iova takes min_not_zero(mask, bus limit) as the
 * highest IOVA it may hand the device.
 *
 * Context: As svakit_dma_set_mask().
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @limit is neither 0 nor of the form 2^n - 1.
 * -ENODEV: no device has that id.
 */
int svakit_device_set_bus_dma_limit(svakit_machine *m, uint32_t dev, uint64_t limit);

/**
 * svakit_dma_map_page() - dma_map_page: map a buffer for a device.
 * @m: the machine.
 * @dev: a device with a default domain.
 * @phys: the buffer's physical address (page_to_phys(page) + offset).
 * @size: its length in bytes, not 0.
 * @dir: enum svakit_dma_direction.
 * @cpu: the simulated CPU the call runs on (its IOVA cache and flush
 *	queue), 0 .. svakit_config.cpus - 1, or SVAKIT_CPU_CURRENT.
 * @dma_addr: receives the DMA address; its offset in the granule is
 *	@phys's (0 for a bounced buffer, below). In an identity domain, @phys
 *	itself.
 *
 * Allocates an IOVA (below 4 GiB first while the device's PCI workaround
 * lasts, within its mask: svakit_dma_set_mask()) and maps the granules the buffer
 * touches; the mapping is recorded, as dma-debug does, for the unmap's
 * checks. For an untrusted device (SVAKIT_DEV_UNTRUSTED) a buffer that does
 * not start and end on the granule is bounced through swiotlb, as
 * iommu_dma_map_page does: copied into 2 KiB slots aligned to the granule,
 * the rest of the granule zeroed, and the slots mapped instead of the
 * buffer's page; svakit_dma_unmap_page() copies it back (DMA_FROM_DEVICE,
 * DMA_BIDIRECTIONAL) and frees the slots (docs/KERNEL-MODEL.md §4.3b). Not aliased under SVAKIT_KERNEL_NAMES: the kernel's takes a page
 * and an offset, and a call written for it would still compile here.
 *
 * Context: Takes the domain list lock, the IOVA cache locks of @cpu, the
 * domain's table lock, the frame allocator's lock and a mapping shard's
 * lock in turn. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @dma_addr is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @dir names no direction, or @cpu is neither SVAKIT_CPU_CURRENT
 * nor below the machine's CPU count.
 * -ERANGE: @size is 0, or the buffer runs past the end of memory.
 * -ENODEV: no device has that id.
 * -EOPNOTSUPP: the device has no default domain (svakit_iommu_setup_default_domain()).
 * -ENOSPC: the domain's IOVA space is exhausted.
 * -ENOMEM: a table cannot be allocated, or a bounce finds no free swiotlb
 * slots (DMA_MAPPING_ERROR); nothing is mapped then.
 */
int svakit_dma_map_page(svakit_machine *m, uint32_t dev, uint64_t phys, uint64_t size, uint32_t dir,
			int cpu, uint64_t *dma_addr);

/**
 * svakit_dma_unmap_page() - dma_unmap_page: unmap what dma_map_page mapped.
 * @m: the machine.
 * @dev: the device that mapped it.
 * @dma_addr: the DMA address svakit_dma_map_page() returned.
 * @size: the size it was given.
 * @dir: the direction it was given.
 * @cpu: as for svakit_dma_map_page().
 *
 * Strict (SVAKIT_DOMAIN_DMA, or an untrusted device): the entries are
 * cleared, the range invalidated and synced before it returns. Lazy
 * (SVAKIT_DOMAIN_DMA_FQ): the entries are cleared and the IOVA waits in
 * @cpu's flush queue until a flush (a full ring, svakit_dma_run_timers(),
 * svakit_dma_flush_queues()): until then a device with a cached translation
 * still reaches the buffer, which is the caller's again at once. With the
 * quarantine (svakit_config.dma_quarantine) a free of the buffer's frames is
 * parked until that flush. In an identity domain it does nothing.
 *
 * Context: Takes the domain list lock, a mapping shard's lock, the domain's
 * table lock, then strict: the IOMMU's locks and the IOVA cache locks; lazy:
 * the quarantine's lock and @cpu's flush-queue ring lock (a full ring
 * flushes with none held). Calls the driver's ops with no lock held. May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @dir names no direction, @cpu is out of range (as for
 * svakit_dma_map_page()), or @size, @dir or @dma_addr's offset in the
 * granule is not what the mapping was given, or another device mapped it
 * (dma-debug's checks); the mapping stays then.
 * -ERANGE: @dma_addr is past the 48-bit aperture.
 * -ENOENT: no live mapping starts at @dma_addr (a double unmap included).
 * -ENODEV: no device has that id.
 * -EOPNOTSUPP: the device has no default domain.
 */
int svakit_dma_unmap_page(svakit_machine *m, uint32_t dev, uint64_t dma_addr, uint64_t size, uint32_t dir,
			  int cpu);

/**
 * svakit_dma_map_sg() - dma_map_sg: map a scatter-gather list.
 * @m: the machine.
 * @dev: a device with a default domain.
 * @sg: the list: @phys and @length of each element are read, @dma_address
 *	and @dma_length of each written.
 * @nents: its elements, 1 .. INT_MAX.
 * @dir: enum svakit_dma_direction.
 * @cpu: as for svakit_dma_map_page().
 *
 * One IOVA range for the whole list, each element padded to the granule so
 * its offset is kept; elements whose DMA addresses touch merge into one
 * segment. For an untrusted device, as iommu_dma_map_sg_swiotlb: each
 * element mapped on its own by svakit_dma_map_page()'s path (bounced when it
 * does not fill its granules), one segment per element, none merged; a
 * failure unmaps the elements already mapped. @sg is written only on success.
 *
 * Context: As svakit_dma_map_page().
 * Return: the number of DMA segments (1 .. @nents) on success.
 * -EFAULT: @m or @sg is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @nents is 0 or past INT_MAX, @dir names no direction, or @cpu is
 * out of range.
 * -ERANGE: an element's @length is 0, or it runs past the end of memory.
 * -ENODEV: no device has that id.
 * -EOPNOTSUPP: the device has no default domain.
 * -ENOSPC: the domain's IOVA space is exhausted.
 * -ENOMEM: a table cannot be allocated; nothing is mapped then.
 */
int svakit_dma_map_sg(svakit_machine *m, uint32_t dev, struct svakit_sg *sg, size_t nents, uint32_t dir,
		      int cpu);

/**
 * svakit_dma_unmap_sg() - dma_unmap_sg: unmap what dma_map_sg mapped.
 * @m: the machine.
 * @dev: the device that mapped it.
 * @sg: the list svakit_dma_map_sg() wrote; its segments are read up to the
 *	first @dma_length of 0.
 * @nents: the @nents given to svakit_dma_map_sg().
 * @dir: the direction it was given.
 * @cpu: as for svakit_dma_map_page().
 *
 * Unmaps the one IOVA range the segments span, strictly or lazily as
 * svakit_dma_unmap_page() does.
 *
 * Context: As svakit_dma_unmap_page().
 * Return: 0 on success.
 * -EFAULT: @m or @sg is NULL.
 * -EINVAL: @nents is 0, the first segment's @dma_length is 0, @dir names no
 * direction, @cpu is out of range, or the span of the segments or @dir is
 * not what was mapped there (a segment changed or left out); the mapping
 * stays then.
 * -EBADF: @m is not a live machine.
 * -ERANGE: a segment runs past the 48-bit aperture.
 * -ENOENT: no live mapping starts where the first segment does (a double
 * unmap included).
 * -ENODEV: no device has that id.
 * -EOPNOTSUPP: the device has no default domain.
 */
int svakit_dma_unmap_sg(svakit_machine *m, uint32_t dev, const struct svakit_sg *sg, size_t nents,
			uint32_t dir, int cpu);

/**
 * svakit_dma_alloc_coherent() - dma_alloc_coherent: a zeroed, mapped buffer.
 * @m: the machine.
 * @dev: a device with a default domain.
 * @size: its length in bytes, 1 .. 4 MiB (a power-of-two block of frames).
 * @cpu: as for svakit_dma_map_page().
 * @dma_addr: receives the DMA address.
 * @pfn: receives the first frame of the buffer (owner tag 0xc0).
 *
 * Allocates the block, zeroes it, and maps it bidirectionally. Not aliased
 * under SVAKIT_KERNEL_NAMES: the kernel's returns the CPU address.
 *
 * Context: As svakit_frame_alloc(), then svakit_dma_map_page().
 * Return: 0 on success.
 * -EFAULT: @m, @dma_addr or @pfn is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @size is 0 or past 4 MiB, or @cpu is out of range.
 * -ENODEV: no device has that id.
 * -EOPNOTSUPP: the device has no default domain; nothing is allocated.
 * -ENOMEM: no free block of that size, or no frame for a table.
 * -ENOSPC: the domain's IOVA space is exhausted; the block is freed again.
 */
int svakit_dma_alloc_coherent(svakit_machine *m, uint32_t dev, uint64_t size, int cpu, uint64_t *dma_addr,
			      uint64_t *pfn);

/**
 * svakit_dma_free_coherent() - dma_free_coherent: unmap and free the buffer.
 * @m: the machine.
 * @dev: the device it was allocated for.
 * @size: the size it was allocated with.
 * @pfn: the first frame svakit_dma_alloc_coherent() returned.
 * @dma_addr: the DMA address it returned.
 * @cpu: as for svakit_dma_map_page().
 *
 * Unmaps as svakit_dma_unmap_page() does, then frees the block (parked in
 * the quarantine when it is on and the unmap was lazy).
 *
 * Context: As svakit_dma_unmap_page(), then svakit_frame_free().
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @pfn is past 32 bits, or @dma_addr past the 48-bit aperture.
 * -ENOENT: nothing is mapped at @dma_addr (a double free included).
 * -EINVAL: @dma_addr maps another frame than @pfn, @size is not the
 * allocation's, or @cpu is out of range; nothing changes then.
 * -ENODEV: no device has that id.
 * -EOPNOTSUPP: the device has no default domain.
 * -EALREADY: the block was freed already by other means; it is unmapped.
 * -ENXIO: @pfn is not the head of an allocated block; it is unmapped.
 * -EPERM: @pfn is a page table; it is unmapped.
 */
int svakit_dma_free_coherent(svakit_machine *m, uint32_t dev, uint64_t size, uint64_t pfn, uint64_t dma_addr,
			     int cpu);

/**
 * svakit_dma_flush_queues() - flush every lazy domain's queue now.
 * @m: the machine.
 *
 * What each DMA-FQ domain's timer does when it fires, early: one
 * domain-wide invalidation and sync per domain with entries waiting, then
 * every entry is released (its IOVA, the tables its unmap emptied, and the
 * frees the quarantine parked behind it). Entries the timer thread or another
 * CPU took off a ring before the call are waited for too, so on return every
 * unmap made before it is released (called from a driver op or a handler
 * inside a flush, it does not wait for that flush).
 *
 * Context: Takes each domain's flush-queue ring locks, the IOMMU's locks,
 * the IOVA cache locks, the quarantine's lock and the frame allocator's
 * lock in turn; calls the driver's ops with no lock held. May be called from
 * any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_dma_flush_queues(svakit_machine *m);

/**
 * svakit_dma_run_timers() - run the DMA layer's timers due at a time.
 * @m: the machine.
 * @now_ns: the monotonic time in nanoseconds (CLOCK_MONOTONIC).
 *
 * Each DMA-FQ domain whose flush-queue timer is due at @now_ns (10 ms after
 * its first waiting unmap, 1 s with shadowed flushes) is flushed, and each
 * IOVA depot due for reclaim is trimmed. A thread does this every
 * millisecond in SVAKIT_WORK_THREAD mode; in SVAKIT_WORK_MANUAL mode the
 * caller does.
 *
 * Context: As svakit_dma_flush_queues().
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_dma_run_timers(svakit_machine *m, uint64_t now_ns);

/**
 * struct svakit_flush_queue_stats - a domain's flush queue.
 * @pending: unmaps waiting for a flush now.
 * @flushes: domain-wide flushes so far.
 * @full_flushes: those a full ring forced.
 * @released: unmaps released after a covering flush.
 * @window_p50_ns: time from unmap to release, median (the upper bound of a
 *	log2 bucket).
 * @window_p99_ns: the 99th percentile, likewise.
 * @window_max_ns: the longest.
 * @quarantined_frames: frames the machine's quarantine holds now.
 */
struct svakit_flush_queue_stats {
	uint64_t pending;
	uint64_t flushes;
	uint64_t full_flushes;
	uint64_t released;
	uint64_t window_p50_ns;
	uint64_t window_p99_ns;
	uint64_t window_max_ns;
	uint64_t quarantined_frames;
};

/**
 * svakit_flush_queue_stats() - copy a translated domain's flush-queue figures.
 * @m: the machine.
 * @domain: a translated domain (a strict one has a queue that stays empty).
 * @stats: receives the figures.
 *
 * Context: Takes the domain list lock and the quarantine's lock briefly. May
 * be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @stats is NULL.
 * -EBADF: @m is not a live machine.
 * -ENODEV: no domain has that id.
 * -EINVAL: @domain is an identity domain (it has no queue).
 */
int svakit_flush_queue_stats(svakit_machine *m, uint32_t domain, struct svakit_flush_queue_stats *stats);

/**
 * struct svakit_map_benchmark - struct map_benchmark of the kernel's
 * dma_map_benchmark (include/linux/map_benchmark.h at 6.12.118), field for
 * field and byte for byte (136 bytes), so the kernel's user tool's struct
 * can be passed as it is.
 * @avg_map_100ns: out: the average map latency, in 100 ns units.
 * @map_stddev: out: its standard deviation, likewise.
 * @avg_unmap_100ns: out: the average unmap latency.
 * @unmap_stddev: out: its standard deviation.
 * @threads: threads mapping and unmapping in parallel, 1..1024.
 * @seconds: how long they run, 1..300.
 * @node: NUMA_NO_NODE (-1) or 0, the machine's one node.
 * @dma_bits: the device's DMA mask during the run is DMA_BIT_MASK(@dma_bits), 1..64.
 * @dma_dir: 0 DMA_MAP_BIDIRECTIONAL, 1 DMA_MAP_TO_DEVICE, 2 DMA_MAP_FROM_DEVICE.
 * @dma_trans_ns: ns spun between map and unmap, at most 10 ms.
 * @granule: pages per buffer, 1..1024.
 * @expansion: reserved; not read, not written.
 */
struct svakit_map_benchmark {
	uint64_t avg_map_100ns;
	uint64_t map_stddev;
	uint64_t avg_unmap_100ns;
	uint64_t unmap_stddev;
	uint32_t threads;
	uint32_t seconds;
	int32_t node;
	uint32_t dma_bits;
	uint32_t dma_dir;
	uint32_t dma_trans_ns;
	uint32_t granule;
	uint8_t expansion[76];
};

/**
 * svakit_dma_map_benchmark() - the DMA_MAP_BENCHMARK ioctl of kernel/dma/map_benchmark.c.
 * @m: the machine.
 * @dev: a device with a translated or identity default domain.
 * @map: in: the run's parameters; out: the four figures.
 *
 * Checks @map as the module's ioctl does, saves the device's DMA mask and
 * sets DMA_BIT_MASK(@map->dma_bits), runs @map->threads threads (thread t
 * on simulated CPU t modulo the machine's CPUs) for @map->seconds, each
 * mapping and unmapping its buffer of @map->granule pages with
 * svakit_dma_map_page() and svakit_dma_unmap_page() and timing both, then
 * writes the averages and standard deviations the module writes, and
 * restores the mask. Each thread finishes at least one loop (beyond the
 * module). The buffers are frames of the machine, allocated for the run
 * and freed after every flush queue is drained. tests-c/kernel/map_benchmark
 * runs the kernel's own tool against this function.
 *
 * Context: Blocks for @map->seconds. Takes what svakit_dma_map_page() and
 * svakit_dma_unmap_page() take, on its threads. Not from a callback.
 * Return: 0 on success.
 * -EFAULT: @m or @map is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: a parameter out of its range; nothing runs.
 * -ENODEV: no device has that id.
 * -EOPNOTSUPP: the device has no default domain.
 * -ENOMEM: no frames for the buffers (nothing runs), or a map failed (the
 * module's "dma_map_single failed", whatever the mapping error); the
 * figures are not written then.
 */
int svakit_dma_map_benchmark(svakit_machine *m, uint32_t dev, struct svakit_map_benchmark *map);

/* ------------------------------------------------------------------------ */
/* The IOVA allocator as a library (include/linux/iova.h's API)            */
/* ------------------------------------------------------------------------ */

/*
 * SVAKit's IOVA allocator, the one every DMA domain of a machine uses, on
 * its own: drivers/iommu/iova.c of Linux 6.12.118 (docs/KERNEL-MODEL.md
 * §4.5), checked against that file compiled in userspace by
 * tests-c/kernel/iova (docs/TESTING.md, "Against Linux's own code"). The
 * names mirror iova.h with a svakit_ prefix; there are no kernel-name
 * aliases. A domain has no clock: its depot work runs only when
 * svakit_iova_run_depot_work() says so. CPUs are numbered 0 .. cpus - 1
 * and are all online; the caller says which one each call runs on.
 */

/** SVAKIT_IOVA_RANGE_CACHE_MAX_SIZE - size classes of the rcache (orders 0..5). */
#define SVAKIT_IOVA_RANGE_CACHE_MAX_SIZE 6

/** SVAKIT_IOVA_MAG_SIZE - pfns per magazine. */
#define SVAKIT_IOVA_MAG_SIZE 127

/** SVAKIT_IOVA_MAX_CPUS - the most CPUs a standalone domain has. */
#define SVAKIT_IOVA_MAX_CPUS 1024

/**
 * struct svakit_iova_domain - an IOVA allocator (struct iova_domain).
 *
 * Opaque: made by svakit_iova_domain_create(), passed by pointer. A
 * destroyed domain's pointer is refused with -EBADF (the handle becomes a
 * tombstone that is never unmapped, as a machine's does).
 */
struct svakit_iova_domain;

/**
 * struct svakit_iova_stats - a domain's tree cache and depots.
 * @cached_node_lo: pfn_lo of cached_node (~0 for the anchor).
 * @cached32_node_lo: pfn_lo of cached32_node (~0 for the anchor).
 * @max32_alloc_size: max32_alloc_size.
 * @dma_32bit_pfn: dma_32bit_pfn, 1 << (32 - log2(granule)).
 * @depot_size: depot_size of each size class.
 * @depot_work_pending: 1 when that size class's depot work is pending.
 * @cpus: the domain's CPU count.
 * @nodes: allocated and reserved ranges in the tree (not the anchor).
 */
struct svakit_iova_stats {
	uint64_t cached_node_lo;
	uint64_t cached32_node_lo;
	uint64_t max32_alloc_size;
	uint64_t dma_32bit_pfn;
	uint32_t depot_size[SVAKIT_IOVA_RANGE_CACHE_MAX_SIZE];
	uint8_t depot_work_pending[SVAKIT_IOVA_RANGE_CACHE_MAX_SIZE];
	uint16_t reserved0;
	uint32_t cpus;
	uint64_t nodes;
};

/**
 * struct svakit_iova_cpu_stats - one CPU's magazines.
 * @loaded: pfns in the loaded magazine of each size class.
 * @prev: pfns in the prev magazine of each size class.
 */
struct svakit_iova_cpu_stats {
	uint32_t loaded[SVAKIT_IOVA_RANGE_CACHE_MAX_SIZE];
	uint32_t prev[SVAKIT_IOVA_RANGE_CACHE_MAX_SIZE];
};

/**
 * svakit_iova_domain_create() - init_iova_domain and iova_domain_init_rcaches.
 * @granule: bytes per IOVA page, a power of two from 1 to 4096 (PAGE_SIZE).
 * @start_pfn: the lowest pfn handed out, at least 1 (pfn 0 would read as
 *	alloc_iova_fast's failure).
 * @cpus: CPUs, 1 .. SVAKIT_IOVA_MAX_CPUS, each with a loaded and a prev
 *	magazine per size class.
 * @out: receives the domain.
 *
 * The domain spans start_pfn up to the anchor at ~0: dma_32bit_pfn is
 * 1 << (32 - log2(granule)), both cached nodes are the anchor and
 * max32_alloc_size is dma_32bit_pfn, as init_iova_domain sets them.
 *
 * Context: Any context; allocates. Not process-global: domains share
 * nothing.
 * Return: 0 on success.
 * -EFAULT: @out is NULL.
 * -EINVAL: @granule, @start_pfn or @cpus is out of range.
 */
int svakit_iova_domain_create(uint64_t granule, uint64_t start_pfn, uint32_t cpus,
			      struct svakit_iova_domain **out);

/**
 * svakit_iova_domain_destroy() - put_iova_domain: free the domain.
 * @iovad: the domain.
 *
 * Every range and cached pfn goes with it; the pending depot work is
 * cancelled (cancel_delayed_work_sync).
 *
 * Context: No other call may be running on @iovad.
 * Return: 0 on success.
 * -EFAULT: @iovad is NULL.
 * -EBADF: @iovad is not a live domain.
 */
int svakit_iova_domain_destroy(struct svakit_iova_domain *iovad);

/**
 * svakit_alloc_iova() - alloc_iova: allocate from the tree, bypassing the rcache.
 * @iovad: the domain.
 * @size: pages, 1 .. 2^62.
 * @limit_pfn: the highest pfn the range may use (inclusive), below ~0.
 * @size_aligned: 1 to align the start to @size rounded up to a power of
 *	two, 0 not to.
 * @pfn: receives the range's first pfn.
 *
 * Searches down from cached32_node (@limit_pfn + 1 at or below
 * dma_32bit_pfn) or cached_node, then once more from the limit down to
 * where that walk began, exactly as __alloc_and_insert_iova_range does; a
 * failure records @size in max32_alloc_size, and a later request at or
 * below dma_32bit_pfn at least that large fails at once.
 *
 * Context: Takes the tree lock.
 * Return: 0 on success.
 * -EFAULT: @iovad or @pfn is NULL.
 * -EBADF: @iovad is not a live domain.
 * -EINVAL: @size is 0 or above 2^62, @limit_pfn is ~0, or @size_aligned
 * is not 0 or 1.
 * -ENOSPC: nothing fits (alloc_iova's NULL); max32_alloc_size may change.
 */
int svakit_alloc_iova(struct svakit_iova_domain *iovad, uint64_t size, uint64_t limit_pfn,
		      int size_aligned, uint64_t *pfn);

/**
 * svakit_free_iova() - free_iova: remove the range containing a pfn.
 * @iovad: the domain.
 * @pfn: a pfn of an allocated or reserved range.
 *
 * The range leaves the tree whatever made it (iova.c keeps no kind), and
 * the cached nodes move past it (__cached_rbnode_delete_update). Freeing a
 * range the rcache holds is the caller's bug, as in Linux.
 *
 * Context: Takes the tree lock.
 * Return: 0 on success.
 * -EFAULT: @iovad is NULL.
 * -EBADF: @iovad is not a live domain.
 * -ENOENT: no range contains @pfn (Linux ignores such a call); nothing
 * changes.
 */
int svakit_free_iova(struct svakit_iova_domain *iovad, uint64_t pfn);

/**
 * svakit_alloc_iova_fast() - alloc_iova_fast: allocate through the rcache.
 * @iovad: the domain.
 * @cpu: the CPU the call runs on, below the domain's CPU count.
 * @size: pages, 1 .. 2^62; below 32 rounded up to a power of two.
 * @limit_pfn: the highest pfn the range may use (inclusive), below ~0.
 * @flush_rcache: 1 to flush every CPU's magazines and the depots and try
 *	the tree once more when it has nothing; 0 not to.
 * @pfn: receives the range's first pfn.
 *
 * Sizes of up to 32 pages are first popped from @cpu's loaded magazine
 * (prev swapped in, or a full magazine from the depot, when it is empty):
 * the topmost pfn at or below @limit_pfn + 1 - size. Then the tree, as
 * svakit_alloc_iova() with alignment.
 *
 * Context: Takes @cpu's rcache lock, a depot lock and the tree lock, in
 * that order; the flush takes each in turn.
 * Return: 0 on success.
 * -EFAULT: @iovad or @pfn is NULL.
 * -EBADF: @iovad is not a live domain.
 * -EINVAL: @cpu, @size, @limit_pfn or @flush_rcache is out of range.
 * -ENOSPC: nothing fits (alloc_iova_fast's 0); the flush, if asked for,
 * happened.
 */
int svakit_alloc_iova_fast(struct svakit_iova_domain *iovad, uint32_t cpu, uint64_t size,
			   uint64_t limit_pfn, int flush_rcache, uint64_t *pfn);

/**
 * svakit_free_iova_fast() - free_iova_fast: free a range into the rcache.
 * @iovad: the domain.
 * @cpu: the CPU the call runs on, below the domain's CPU count.
 * @pfn: the range's first pfn, as svakit_alloc_iova_fast() returned it.
 * @size: the size asked for (or that rounded up), 1 .. 2^62.
 *
 * Sizes of up to 32 pages go into @cpu's loaded magazine (prev swapped in
 * when it is full; when both are full, loaded goes to the depot, whose
 * work is scheduled, and an empty one replaces it); larger ones go back
 * to the tree, as svakit_free_iova().
 *
 * Context: Takes @cpu's rcache lock, then a depot lock or the tree lock.
 * Return: 0 on success.
 * -EFAULT: @iovad is NULL.
 * -EBADF: @iovad is not a live domain.
 * -EINVAL: @cpu or @size is out of range.
 * -ENOENT: no range of the tree contains @pfn; nothing changes. (A pfn
 * the rcache holds already is not detected: the caller's bug, as in
 * Linux.)
 */
int svakit_free_iova_fast(struct svakit_iova_domain *iovad, uint32_t cpu, uint64_t pfn, uint64_t size);

/**
 * svakit_reserve_iova() - reserve_iova: keep a range from ever being allocated.
 * @iovad: the domain.
 * @pfn_lo: the first pfn.
 * @pfn_hi: the last pfn, at least @pfn_lo.
 *
 * Ranges the reservation overlaps grow down to cover it and what is left
 * above them becomes a new range (__adjust_overlap_range); the cached
 * nodes do not move.
 *
 * Context: Takes the tree lock.
 * Return: 0 on success.
 * -EFAULT: @iovad is NULL.
 * -EBADF: @iovad is not a live domain.
 * -EINVAL: @pfn_lo > @pfn_hi, or either is above ULLONG_MAX >> log2(granule)
 * (iova.c's WARN_ON for "nonsensical pfns"), or @pfn_hi is ULLONG_MAX, the
 * anchor's pfn (a granule-1 domain's only such case; Linux would stretch
 * its anchor node over the range).
 */
int svakit_reserve_iova(struct svakit_iova_domain *iovad, uint64_t pfn_lo, uint64_t pfn_hi);

/**
 * svakit_free_cpu_cached_iovas() - free_cpu_cached_iovas: empty a CPU's magazines.
 * @iovad: the domain.
 * @cpu: the CPU, below the domain's CPU count.
 *
 * For each size class, the loaded then the prev magazine's pfns go back to
 * the tree in magazine order (what CPU hot-unplug does).
 *
 * Context: Takes @cpu's rcache locks and the tree lock.
 * Return: 0 on success.
 * -EFAULT: @iovad is NULL.
 * -EBADF: @iovad is not a live domain.
 * -EINVAL: @cpu is out of range.
 */
int svakit_free_cpu_cached_iovas(struct svakit_iova_domain *iovad, uint32_t cpu);

/**
 * svakit_iova_run_depot_work() - run each pending depot work once, now.
 * @iovad: the domain.
 *
 * For each size class in order whose work (iova_depot_work_func,
 * IOVA_DEPOT_DELAY) is pending: clear pending and run it; when the depot
 * holds more magazines than there are CPUs it returns one magazine's pfns
 * to the tree and schedules itself again.
 *
 * Context: Takes each depot lock and the tree lock in turn.
 * Return: how many works ran (0 .. 6).
 * -EFAULT: @iovad is NULL.
 * -EBADF: @iovad is not a live domain.
 */
int svakit_iova_run_depot_work(struct svakit_iova_domain *iovad);

/**
 * svakit_iova_stats() - read a domain's tree cache and depots.
 * @iovad: the domain.
 * @out: filled in.
 *
 * Context: Takes the tree lock and each depot lock in turn.
 * Return: 0 on success.
 * -EFAULT: @iovad or @out is NULL.
 * -EBADF: @iovad is not a live domain.
 */
int svakit_iova_stats(struct svakit_iova_domain *iovad, struct svakit_iova_stats *out);

/**
 * svakit_iova_cpu_stats() - read one CPU's magazine sizes.
 * @iovad: the domain.
 * @cpu: the CPU, below the domain's CPU count.
 * @out: filled in.
 *
 * Context: Takes @cpu's rcache locks in turn.
 * Return: 0 on success.
 * -EFAULT: @iovad or @out is NULL.
 * -EBADF: @iovad is not a live domain.
 * -EINVAL: @cpu is out of range.
 */
int svakit_iova_cpu_stats(struct svakit_iova_domain *iovad, uint32_t cpu, struct svakit_iova_cpu_stats *out);

/* ------------------------------------------------------------------------ */
/* Kernel paths that free kernel page-table frames (docs/KERNEL-MODEL.md §2.7)*/
/* ------------------------------------------------------------------------ */

/**
 * svakit_vmalloc_area() - the vmalloc area of the configured paging mode.
 * @m: the machine.
 * @start: receives the first address.
 * @end: receives the end of the area.
 *
 * Context: Takes no lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m, @start or @end is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_vmalloc_area(svakit_machine *m, uint64_t *start, uint64_t *end);

/**
 * svakit_vmalloc() - vmalloc: a virtual range backed by fresh data frames.
 * @m: the machine.
 * @size: a multiple of 4 KiB, no larger than the vmalloc area.
 * @va: receives the address.
 *
 * First fit at the lowest address; mapped with 4 KiB leaves. A range
 * svakit_vfree() left on the lazy list is not reused until a purge; when no
 * range fits, the lazy list is purged and the search retried once.
 *
 * Context: Takes the vmalloc area lock, init_mm's page-table lock and the
 * frame allocator's. A purge calls the TLB-flush hook. On failure what it
 * mapped goes back through svakit_vfree()'s path (the range goes lazy, as
 * __vmalloc_area_node's failure path calls vfree). May be called from any
 * callback.
 * Return: 0 on success.
 * -EFAULT: @m or @va is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @size is 0, not a multiple of 4 KiB, or larger than the area.
 * -ENOSPC: no free range of @size in the vmalloc area, even after a purge.
 * -ENOMEM: memory cannot back or map @size (the frames and leaves are
 * released; the range is left lazily freed).
 */
int svakit_vmalloc(svakit_machine *m, uint64_t size, uint64_t *va);

/**
 * svakit_vmalloc_huge() - vmalloc_huge: 2 MiB aligned, 2 MiB leaves.
 * @m: the machine.
 * @size: a multiple of 2 MiB, no larger than the vmalloc area.
 * @va: receives the address.
 *
 * A stale PTE table under a 2 MiB slot is freed through pmd_free_pte_page.
 *
 * Context: As svakit_vmalloc(); also frees page tables: calls the TLB-flush
 * hook, then the free hook, and may queue tables for the deferred work or,
 * with a BATCHED work mode, run it (past max_pending), which calls IOMMU
 * driver ops. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @va is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @size is 0, not a multiple of 2 MiB, or larger than the area.
 * -ENOSPC: no free 2 MiB-aligned range of @size in the vmalloc area.
 * -ENOMEM: memory cannot back or map @size (nothing is changed).
 */
int svakit_vmalloc_huge(svakit_machine *m, uint64_t size, uint64_t *va);

/**
 * svakit_vfree() - vfree: release a vmalloc area.
 * @m: the machine.
 * @va: the start of an area svakit_vmalloc() or svakit_vmalloc_huge()
 *	returned.
 *
 * As Linux 6.12's vfree: clears the leaves without a TLB flush (the tables
 * stay), puts the range on the lazy list, where it stays reserved, then frees
 * the data frames. The flush comes with the lazy purge: when the lazily freed
 * pages pass lazy_max_pages() (fls(cpus) * 8192) this call purges before it
 * returns; svakit_vm_unmap_aliases() and an allocation that finds no space
 * purge too.
 *
 * Context: Takes the vmalloc area lock, init_mm's page-table lock and the
 * frame allocator's; a purge calls the TLB-flush hook with none held. May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @va is not canonical.
 * -EINVAL: @va is not page aligned.
 * -ENOENT: no area starts at @va (0, the middle of an area, a freed area,
 * an address outside the vmalloc area).
 */
int svakit_vfree(svakit_machine *m, uint64_t va);

/**
 * svakit_vm_unmap_aliases() - vm_unmap_aliases: purge the lazily freed ranges.
 * @m: the machine.
 *
 * __purge_vmap_area_lazy: takes every range svakit_vfree() left on the lazy
 * list, flushes their union [lowest start, highest end) with one
 * flush_tlb_kernel_range (SVAKIT_SITE_VMAP_PURGE), then returns the ranges to
 * the vmalloc allocator. With nothing on the list it flushes nothing.
 *
 * Context: Takes the vmalloc area lock; calls the TLB-flush hook (and, with
 * SVAKIT_KVA_INV_ON_FLUSH, IOMMU driver ops) with no engine lock held. May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_vm_unmap_aliases(svakit_machine *m);

/**
 * svakit_vmap_huge() - an ioremap-style huge mapping at a chosen kernel va.
 * @m: the machine.
 * @va: a kernel address aligned to @size.
 * @phys: a physical address aligned to @size, inside memory.
 * @size: 2 MiB or 1 GiB.
 * @prot: a subset of SVAKIT_PROT_MASK.
 *
 * vmap_range with huge pages: a 1 GiB leaf replaces a PMD table through
 * pud_free_pmd_page, a 2 MiB leaf a PTE table through pmd_free_pte_page; a
 * replaced table is freed only when it maps nothing.
 *
 * Context: Takes init_mm's page-table lock and the frame allocator's; frees
 * the replaced tables with none held: calls the TLB-flush hook, then the free
 * hook, and may queue tables for the deferred work or, with a BATCHED work
 * mode, run it (past max_pending), which calls IOMMU driver ops. May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @size is not 2 MiB or 1 GiB, @va or @phys is not aligned to it,
 * @prot has bits outside SVAKIT_PROT_MASK, or @va is a user address.
 * -ERANGE: @va is not canonical, or the leaf runs past the end of memory.
 * -EEXIST: a leaf maps there already.
 * -EBUSY: the table the leaf would replace still maps pages.
 * -ENOMEM: the tables needed cannot be allocated.
 */
int svakit_vmap_huge(svakit_machine *m, uint64_t va, uint64_t phys,
		     uint64_t size, uint64_t prot);

/**
 * svakit_vunmap() - clear the kernel leaves of a range.
 * @m: the machine.
 * @va: a page-aligned kernel address.
 * @size: a multiple of 4 KiB; no huge leaf may straddle either end.
 *
 * vunmap_range: the TLB flush follows at once (nothing goes lazy, unlike
 * svakit_vfree()). The tables stay and the frames mapped stay the caller's.
 * Unmapped parts of the range are skipped.
 *
 * Context: Takes init_mm's page-table lock; calls the TLB-flush hook with
 * none held. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @size is 0, @va or @size is not page aligned, the range is in the
 * user half, or a huge leaf straddles an end (a partial unmap).
 * -ERANGE: an end is not canonical, or the range wraps past 2^64.
 */
int svakit_vunmap(svakit_machine *m, uint64_t va, uint64_t size);

/**
 * svakit_direct_map_va() - the direct-map address of a physical address.
 * @m: the machine.
 * @phys: an address inside memory.
 * @va: receives page_offset_base + @phys.
 *
 * Context: Takes no lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m or @va is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @phys is past the end of memory.
 */
int svakit_direct_map_va(svakit_machine *m, uint64_t phys, uint64_t *va);

/**
 * svakit_set_memory() - set_memory on the direct map.
 * @m: the machine.
 * @va: a page-aligned kernel address in the direct map or the vmalloc area.
 * @npages: pages from @va, at least 1, inside that area, every one mapped.
 * @set: protection bits to set, a subset of SVAKIT_PROT_MASK without
 *	SVAKIT_PTE_US (no set_memory_*() makes a kernel page user-accessible;
 *	refused since 0.6.1).
 * @clear: protection bits to clear, a subset of SVAKIT_PROT_MASK, none in @set.
 *
 * change_page_attr_set_clr(): first purges the lazily freed vmalloc ranges
 * (vm_unmap_aliases(), svakit_vm_unmap_aliases()); then splits 1 GiB and
 * 2 MiB leaves as needed (__split_large_page: tables marked
 * SVAKIT_PTDESC_SPLIT, which linux-6.19 frees at once, one of its holes, and
 * linked with _KERNPG_TABLE, without SVAKIT_PTE_US); then cpa_flush: one
 * flush per page up to 33 pages (flush_tlb_one_kernel, which no IOMMU design
 * hooks), flush_tlb_all beyond.
 *
 * Context: Takes init_mm's page-table lock and the frame allocator's; calls
 * the TLB-flush hook with none held. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @npages is 0, @va is not page aligned or is a user address, a bit
 * outside SVAKIT_PROT_MASK, SVAKIT_PTE_US in @set, or a bit both set and
 * cleared.
 * -ERANGE: @va is not canonical or in neither area, or the range runs past
 * the end of memory or of the vmalloc area.
 * -ENOENT: the range holds offline memory or an unmapped page (CPA's "zero
 * pte"); nothing is changed.
 * -ENOMEM: no frame for a split's PTE table (nothing is changed).
 */
int svakit_set_memory(svakit_machine *m, uint64_t va, uint64_t npages,
		      uint64_t set, uint64_t clear);

/**
 * svakit_set_memory_rox() - set_memory_rox(): read-only and executable, then collapse.
 * @m: the machine.
 * @va: a page-aligned kernel address in the direct map or the vmalloc area
 * (where execmem's ROX mappings live in the model).
 * @npages: pages from @va, at least 1, inside that area, every one mapped.
 *
 * svakit_set_memory() clearing SVAKIT_PTE_RW and SVAKIT_PTE_NX, with
 * CPA_COLLAPSE, the flag only set_memory_rox() sets in Linux: after the
 * flush, each 2 MiB region the range touches whose 512 PTEs are contiguous
 * with equal flags is collapsed back into a 2 MiB leaf
 * (cpa_collapse_large_pages); if any was, flush_tlb_all, then the PTE tables
 * go to pagetable_free (split tables are unmarked: linux-6.19 frees them at
 * once).
 *
 * Context: as svakit_set_memory(); frees the tables with no lock held, which
 * calls the free hook and may queue them for the deferred work.
 * Return: the number of regions collapsed (0 or more).
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @npages is 0, @va is not page aligned or is a user address.
 * -ERANGE: @va is not canonical or in neither area, or the range runs past
 * the end of memory or of the vmalloc area.
 * -ENOENT: the range holds offline memory or an unmapped page; nothing is
 * changed.
 * -ENOMEM: no frame for a split's table.
 */
int svakit_set_memory_rox(svakit_machine *m, uint64_t va, uint64_t npages);

/**
 * svakit_cpa_collapse_large_pages() - cpa_collapse_large_pages for one 2 MiB region.
 * @m: the machine.
 * @va: a kernel address in the region, in the direct map or the vmalloc area.
 *
 * When the region's 512 PTEs are contiguous with equal flags, the PTE table
 * is replaced by a 2 MiB leaf, flush_tlb_all runs, and the table is freed.
 * Linux calls this only from set_memory_rox() (CPA_COLLAPSE), on execmem's
 * ROX ranges; it is here for arch code that drives it itself.
 *
 * Context: Takes init_mm's page-table lock; frees the table with none held:
 * calls the TLB-flush hook (flush_tlb_all), then the free hook, and may
 * queue the table for the deferred work or, with a BATCHED work mode, run
 * it (past max_pending), which calls IOMMU driver ops. May be called from
 * any callback.
 * Return: 1 when it collapsed, 0 when it could not.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @va is a user address.
 * -ERANGE: @va is not canonical or in neither area.
 * -ENOENT: nothing maps the region (offline memory, an unmapped range).
 */
int svakit_cpa_collapse_large_pages(svakit_machine *m, uint64_t va);

/**
 * svakit_memory_hot_remove() - hot-remove whole sections.
 * @m: the machine.
 * @pfn: the first frame, section aligned (SVAKIT_SECTION_PAGES).
 * @nr_pages: a multiple of SVAKIT_SECTION_PAGES, at least one section.
 *
 * The frames go offline, then remove_pagetable over their direct map frees
 * the tables the range empties, boot-time ones included. In every mode but
 * SVAKIT_FREE_COMPLETE it runs in Linux's order (arch/x86/mm/init_64.c):
 * the PTEs of a PTE table are cleared and flush_tlb_all runs, then
 * free_pte_table / free_pmd_table / free_pud_table (5-level only) free an
 * emptied table *before* clearing the entry that points at it, and one
 * flush_tlb_all comes last; the free hook therefore runs while the entry
 * still names the freed frame. SVAKIT_FREE_COMPLETE (beyond Linux) clears,
 * flushes, then frees through the deferred work. A range that cuts a 1 GiB
 * direct-map leaf (direct_gbpages) is refused with -EBUSY.
 *
 * Context: Takes init_mm's page-table lock and the frame allocator's; frees
 * tables with none held: calls the TLB-flush hook (flush_tlb_all) and the
 * free hook, and may queue tables for the deferred work, which calls IOMMU
 * driver ops. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @nr_pages is 0, or @pfn or @nr_pages is not whole sections.
 * -ERANGE: the range runs past the end of memory or wraps.
 * -EBUSY: a frame of the range is allocated, or the range cuts a 1 GiB leaf.
 * -ENOENT: the range is already offline.
 */
int svakit_memory_hot_remove(svakit_machine *m, uint64_t pfn, uint64_t nr_pages);

/**
 * svakit_memory_hot_add() - hot-add whole offline sections.
 * @m: the machine.
 * @pfn: the first frame, section aligned.
 * @nr_pages: a multiple of SVAKIT_SECTION_PAGES, at least one section.
 *
 * The frames come back free and the direct map covers them again (with
 * tables linux-6.19 frees at once: one of its holes).
 *
 * Context: Takes init_mm's page-table lock and the frame allocator's. May be
 * called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @nr_pages is 0, or @pfn or @nr_pages is not whole sections.
 * -ERANGE: the range runs past the end of memory or wraps.
 * -EBUSY: part of the range is online.
 * -ENOMEM: no frame for a direct-map table the range needs.
 */
int svakit_memory_hot_add(svakit_machine *m, uint64_t pfn, uint64_t nr_pages);

/**
 * typedef svakit_tlb_flush_fn - the CPU TLB flush hook.
 * @ctx: the context given to svakit_machine_set_tlb_flush_hook().
 * @start: the first address flushed (0 for flush_tlb_all).
 * @end: the end of the range (UINT64_MAX for flush_tlb_all).
 *
 * flush_tlb_kernel_range(start, end) and flush_tlb_all call it after the
 * entry is cleared and before the table is freed, on the calling thread,
 * with no engine lock held.
 */
typedef void (*svakit_tlb_flush_fn)(void *ctx, uint64_t start, uint64_t end);

/**
 * svakit_machine_set_tlb_flush_hook() - attach or detach the TLB flush hook.
 * @m: the machine.
 * @fn: the hook; NULL detaches.
 * @ctx: passed back to @fn.
 *
 * Context: Takes the hook slot's lock. May be called from any callback; a
 * flush already running may still call the previous hook.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_machine_set_tlb_flush_hook(svakit_machine *m, svakit_tlb_flush_fn fn, void *ctx);

/**
 * svakit_flush_tlb_kernel_range() - flush_tlb_kernel_range, for arch code.
 * @m: the machine.
 * @start: a page-aligned kernel address; 0 with @end UINT64_MAX is
 *	flush_tlb_all.
 * @end: the end of the range, not below @start.
 *
 * Counts the flush, logs it, invalidates the IOMMUs when the machine's
 * kva_invalidation is SVAKIT_KVA_INV_ON_FLUSH, and calls the TLB flush hook.
 *
 * Context: Takes no engine lock across the calls out: may call IOMMU driver
 * ops and the TLB-flush hook. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 * -ERANGE: @start is not canonical.
 * -EINVAL: @start is not page aligned or is a user address, or @end < @start.
 */
int svakit_flush_tlb_kernel_range(svakit_machine *m, uint64_t start, uint64_t end);

/* ------------------------------------------------------------------------ */
/* Machine-level reports: counters and the walk oracle                     */
/* ------------------------------------------------------------------------ */

/**
 * struct svakit_stats - a machine's counters (svakit_machine_stats()).
 * @frames: total frames.
 * @frames_free: frames on the free lists.
 * @frames_offline: hot-removed frames.
 * @kernel_tables: frames holding kernel page tables.
 * @user_tables: frames holding process page tables.
 * @data_frames: frames holding data.
 * @allocs: frame allocations since boot.
 * @frees: frame frees since boot.
 * @kernel_tlb_flushes: flush_tlb_kernel_range + flush_tlb_all calls.
 * @metadata_bytes_per_frame: descriptor bytes per frame: the 32-byte ptdesc,
 *	and 8 of page_ext when the sanitizer is on.
 * @host_bytes_resident: host memory the frame contents occupy now.
 * @step: the event clock.
 */
struct svakit_stats {
	uint64_t frames;
	uint64_t frames_free;
	uint64_t frames_offline;
	uint64_t kernel_tables;
	uint64_t user_tables;
	uint64_t data_frames;
	uint64_t allocs;
	uint64_t frees;
	uint64_t kernel_tlb_flushes;
	uint64_t metadata_bytes_per_frame;
	uint64_t host_bytes_resident;
	uint64_t step;
};

/**
 * svakit_machine_stats() - copy a machine's counters.
 * @m: the machine.
 * @out: receives the counters.
 *
 * Context: Takes the frame allocator's lock briefly. May be called from any
 * callback.
 * Return: 0 on success.
 * -EFAULT: @m or @out is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_machine_stats(svakit_machine *m, struct svakit_stats *out);

/**
 * svakit_machine_counters() - copy a machine's counters, in constant time.
 * @m: the machine.
 * @out: receives the counters; @out->host_bytes_resident is 0.
 *
 * svakit_machine_stats() without host_bytes_resident, whose mincore() walk
 * costs time in proportion to the machine's memory: for a harness that
 * checks the counters after every call (tests-c/fuzz/fuzz_abi.c). New in
 * 0.6.1.
 *
 * Context: Takes the frame allocator's lock briefly. May be called from any
 * callback.
 * Return: 0 on success.
 * -EFAULT: @m or @out is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_machine_counters(svakit_machine *m, struct svakit_stats *out);

/**
 * struct svakit_uaf_report - a DMA use-after-free the walk oracle saw.
 * @step: event clock of the walk.
 * @va: the address translated.
 * @escalation_phys: where the stale walk translated to.
 * @freed_step: when the frame was last freed; UINT64_MAX when unknown.
 * @realloc_step: when it was allocated again; UINT64_MAX when it was not.
 * @device: the device that made the request.
 * @pasid: its PASID.
 * @iommu: the IOMMU that walked.
 * @frame: the frame the walk should not have reached.
 * @expected_generation: the frame's generation the walk believed;
 *	UINT32_MAX when only its kind and level were believed.
 * @found_generation: its generation now.
 * @corrupted_frame: where A/D bits were written; SVAKIT_NO_PFN if nowhere.
 * @freed_by: enum svakit_site of the free.
 * @realloc_site: enum svakit_site of the new allocation.
 * @realloc_owner: owner tag of the new allocation.
 * @stale_level: the cache level whose entry led there (1 = an IOTLB entry,
 *	2 = PDE, 3 = PDPTE, ...); 0 for a live entry.
 * @expected_level: the table level the walk believed; 0 for a data page: a
 *	stale IOTLB entry led the device to a frame freed since the entry was
 *	filled and no longer mapped there (the lazy-invalidation window).
 * @found_kind: enum svakit_frame_kind of the frame now.
 * @found_level: its level now.
 * @escalation: 1 when the walk translated through the stale frame.
 * @corruption: 1 when the walker wrote A/D bits into it (for a data page:
 *	when the device wrote into it).
 * @kind: enum svakit_report_kind: a walk (all the fields above) or a page
 *	leak of the IOMMU_DEBUG_PAGEALLOC sanitizer (@step, @frame,
 *	@found_kind, @found_level, @found_generation, @freed_by (the path that
 *	freed or allocated it) and the fields below; the others are zero or
 *	their "unknown" value).
 * @map_count: for a page leak, the frame's mapping count when checked.
 * @domain: for a page leak, a DMA domain that maps the frame now, or else
 *	(window-aware mode) the domain of an unmap whose flush has not
 *	finished and still counts it; UINT32_MAX when neither was found (and
 *	in a walk's report; domain ids start at 0).
 * @alloc_site: for a page leak, enum svakit_site of the frame's allocation
 *	(the page owner).
 * @alloc_owner: its owner tag.
 * @alloc_step: its event step (low 32 bits, as the ptdesc keeps it).
 * @iova: for a page leak, where @domain maps the frame (or the pending
 *	unmap was); UINT64_MAX when no mapping was found.
 * @mapped_step: the machine's step when the frame last became mapped (or,
 *	for a pending unmap, when that unmap was queued), low 32 bits;
 *	UINT64_MAX when unknown.
 *
 * For a walk: a walk read or wrote a frame that was not what the cache
 * entry (or live entry) that led there believed it was. For a page leak: a
 * frame was allocated or freed while an IOMMU mapping still counted it.
 */
struct svakit_uaf_report {
	uint64_t step;
	uint64_t va;
	uint64_t escalation_phys;
	uint64_t freed_step;
	uint64_t realloc_step;
	uint32_t device, pasid, iommu;
	uint32_t frame;
	uint32_t expected_generation;
	uint32_t found_generation;
	uint32_t corrupted_frame;
	uint16_t freed_by;
	uint16_t realloc_site;
	uint16_t realloc_owner;
	uint8_t stale_level;
	uint8_t expected_level;
	uint8_t found_kind;
	uint8_t found_level;
	uint8_t escalation;
	uint8_t corruption;
	uint32_t kind;
	int32_t map_count;
	uint32_t domain;
	uint16_t alloc_site;
	uint16_t alloc_owner;
	uint64_t alloc_step;
	uint64_t iova;
	uint64_t mapped_step;
};

/**
 * typedef svakit_report_fn - the report handler.
 * @ctx: the context given to svakit_machine_set_report_handler().
 * @r: the report; valid during the call only.
 * @text: its kernel-style text; valid during the call only.
 *
 * Called for every report, after the walk, on the thread that made the DMA
 * request, with no engine lock held.
 */
typedef void (*svakit_report_fn)(void *ctx, const struct svakit_uaf_report *r, const char *text);

/**
 * svakit_machine_set_report_handler() - attach or detach the report handler.
 * @m: the machine.
 * @fn: the handler; NULL detaches.
 * @ctx: passed back to @fn.
 *
 * Context: Takes the hook slot's lock. May be called from any callback.
 * Return: 0 on success.
 * -EFAULT: @m is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_machine_set_report_handler(svakit_machine *m, svakit_report_fn fn, void *ctx);

/**
 * svakit_report_count() - how many reports were ever made.
 * @m: the machine.
 * @total: receives the count (the log keeps the newest report_log_capacity).
 *
 * Context: Takes the report log's lock. May be called from any callback.
 * First delivers the sanitizer's page-leak reports found while a page
 * table was being allocated (under a page-table lock), which calls the
 * report handler with no lock held.
 * Return: 0 on success.
 * -EFAULT: @m or @total is NULL.
 * -EBADF: @m is not a live machine.
 */
int svakit_report_count(svakit_machine *m, uint64_t *total);

/**
 * svakit_report_read() - copy reports out of the log.
 * @m: the machine.
 * @first: the index of the first report wanted (0 is the first ever made).
 * @out: receives the reports, oldest first; may be NULL when @cap is 0.
 * @cap: room in @out, in reports.
 *
 * Reports the log no longer keeps are skipped.
 *
 * Context: Takes the report log's lock. May be called from any callback.
 * First delivers the sanitizer's page-leak reports found while a page
 * table was being allocated (under a page-table lock), which calls the
 * report handler with no lock held.
 * Return: the number copied (>= 0).
 * -EFAULT: @m is NULL, or @out is NULL with @cap not 0.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @cap is past SSIZE_MAX (a negative size).
 */
int svakit_report_read(svakit_machine *m, uint64_t first, struct svakit_uaf_report *out, size_t cap);

/**
 * svakit_report_text() - the kernel-style text of one report.
 * @m: the machine.
 * @index: the report's index.
 * @buf: receives the text (NUL-terminated, truncated).
 * @len: the size of @buf, the NUL included.
 *
 * Context: Takes the report log's lock. May be called from any callback.
 * First delivers the sanitizer's page-leak reports found while a page
 * table was being allocated (under a page-table lock), which calls the
 * report handler with no lock held.
 * Return: 0 on success.
 * -EFAULT: @m or @buf is NULL.
 * -EBADF: @m is not a live machine.
 * -EINVAL: @len is 0.
 * -ENOENT: the log holds no report @index (not made yet, or dropped).
 */
int svakit_report_text(svakit_machine *m, uint64_t index, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

/* Inspection and test-only calls, for every user of svakit.h; it ends with
 * svakit_deprecated.h, the 0.5 names (removed in 0.7.0), which need both. */
#include "svakit_debug.h"
#ifdef SVAKIT_KERNEL_NAMES
#include "svakit_kernel_names.h"
#endif

#endif /* SVAKIT_H */
