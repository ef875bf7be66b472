// SPDX-License-Identifier: Apache-2.0
/*
 * Kernel-style callers of SVAKit: a small fake x86 "arch" written against the
 * primitives (unlink the entry, flush_tlb_kernel_range, pagetable_free, in
 * the order x86 does it, docs/KERNEL-MODEL.md §2.6-2.7) and a C IOMMU driver plugged
 * in through struct svakit_iommu_driver_ops. Every seed scenario runs under
 * the three free modes:
 *
 *   immediate   the unfixed kernel: the walk oracle must report the UAF;
 *   linux-6.19  the merged series: reports exactly its holes (set_memory
 *               split tables and boot-time tables, which x86 allocates
 *               without the PT_kernel mark);
 *   complete    nothing.
 *
 * The driver must see the batch's invalidation (and the fence) before any
 * frame of the batch returns to the allocator: cmocka's call-order
 * expectations check it. With no SVA bound it must hear nothing at all.
 */
#define SVAKIT_KERNEL_NAMES /* pagetable_free(), flush_tlb_kernel_range() */
#include "harness.h"

#define PAGE_SIZE SVAKIT_PAGE_SIZE
#define PAGE_OFFSET 0xffff888000000000ULL
#define VMALLOC_START 0xffffc90000000000ULL
#define TLB_FLUSH_ALL UINT64_MAX
#define SECRET 0x2121544552434553ULL /* "SECRET!!" */

/* ------------------------------------------------------------------------ */
/* The C IOMMU driver and the free hook                                     */
/* ------------------------------------------------------------------------ */

struct driver {
	int armed;                 /* log driver calls: R(ange), P(ASID), A(ll), F(ence) */
	int free_armed;            /* log frees: f */
	struct hook_ctx hk;        /* the log; tests assert it after each call */
	int ranges, pasids, alls, fences;
	uint64_t last_start, last_end;
	int last_leaf_only;
};

static void drv_invalidate_range(void *ctx, uint32_t pasid, uint64_t start, uint64_t end, int leaf_only)
{
	struct driver *d = ctx;
	(void)pasid;
	d->ranges++;
	d->last_start = start;
	d->last_end = end;
	d->last_leaf_only = leaf_only;
	if (d->armed)
		hook_called(&d->hk, 'R');
}

static void drv_invalidate_pasid(void *ctx, uint32_t pasid)
{
	struct driver *d = ctx;
	(void)pasid;
	d->pasids++;
	if (d->armed)
		hook_called(&d->hk, 'P');
}

static void drv_invalidate_all(void *ctx)
{
	struct driver *d = ctx;
	d->alls++;
	if (d->armed)
		hook_called(&d->hk, 'A');
}

static void drv_fence(void *ctx)
{
	struct driver *d = ctx;
	d->fences++;
	if (d->armed)
		hook_called(&d->hk, 'F');
}

static const struct svakit_iommu_driver_ops driver_ops = {
	.invalidate_range = drv_invalidate_range,
	.invalidate_pasid = drv_invalidate_pasid,
	.invalidate_all = drv_invalidate_all,
	.fence = drv_fence,
};

static void free_hook(void *ctx, uint64_t pfn, unsigned int level, unsigned int site)
{
	struct driver *d = ctx;
	(void)pfn;
	(void)level;
	(void)site;
	if (d->free_armed)
		hook_called(&d->hk, 'f');
}

/* ------------------------------------------------------------------------ */
/* Fixture: a 4 GiB machine in the mode under test, one IOMMU with the C     */
/* driver, one SVA device bound to one process                              */
/* ------------------------------------------------------------------------ */

struct world {
	uint32_t mode;
	svakit_machine *m;
	struct driver drv;
	uint32_t iommu, dev, mm, handle, pasid;
	uint64_t secret;
	uint64_t root; /* init_mm's PGD */
};

static struct world worlds[3] = {
	{ .mode = SVAKIT_FREE_IMMEDIATE }, { .mode = SVAKIT_FREE_LINUX_6_19 }, { .mode = SVAKIT_FREE_COMPLETE },
};

static int setup_world(void **state)
{
	struct world *w = *state;
	struct svakit_config cfg;
	struct svakit_iommu_config ic;
	uint32_t mode = w->mode;

	memset(w, 0, sizeof(*w));
	w->mode = mode;
	svakit_config_default(&cfg);
	cfg.frames = 4 * GIB_FRAMES;
	cfg.free_mode = mode;
	cfg.work_mode = SVAKIT_WORK_MANUAL; /* deterministic: we run the kworker */
	assert_int_equal(svakit_machine_create(&cfg, &w->m), 0);
	svakit_iommu_config_default(&ic);
	assert_int_equal(svakit_iommu_create(w->m, &ic, &w->iommu), 0);
	assert_int_equal(svakit_iommu_set_driver(w->m, w->iommu, &driver_ops, &w->drv), 0);
	assert_int_equal(svakit_machine_set_free_hook(w->m, free_hook, &w->drv), 0);
	assert_int_equal(svakit_device_create(w->m, w->iommu, SVAKIT_DEV_SVA, 20, &w->dev), 0);
	assert_int_equal(svakit_mm_create(w->m, &w->mm), 0);
	assert_int_equal(iommu_sva_bind_device(w->m, w->dev, w->mm, &w->handle), 0);
	assert_int_equal(iommu_sva_get_pasid(w->m, w->handle, &w->pasid), 0);
	assert_int_equal(svakit_frame_alloc(w->m, 9, 0x5ec, &w->secret), 0); /* 2 MiB, aligned */
	uint64_t s = SECRET;
	assert_int_equal(svakit_frame_write(w->m, w->secret, 0, &s, 8), 0);
	assert_int_equal(svakit_mm_root(w->m, SVAKIT_INIT_MM, &w->root), 0);
	return 0;
}

static int teardown_world(void **state)
{
	struct world *w = *state;
	assert_machine_ok(w->m);
	svakit_machine_destroy(w->m);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The fake arch                                                            */
/* ------------------------------------------------------------------------ */

static uint64_t pfn_of(uint64_t entry)
{
	return (entry & SVAKIT_PTE_PFN_MASK) >> 12;
}

/* The table at `level` on the walk of va from init_mm's root. */
static uint64_t arch_table(struct world *w, uint64_t va, unsigned level)
{
	uint64_t t = w->root, e;
	for (unsigned l = 4; l > level; l--) {
		assert_int_equal(svakit_pagetable_read_entry(w->m, t, idx(va, l), &e), 0);
		assert_true(e & SVAKIT_PTE_P);
		t = pfn_of(e);
	}
	return t;
}

/* x86 pmd_free_pte_page(): the table the PMD entry POINTS TO is freed. */
static int arch_pmd_free_pte_page(struct world *w, uint64_t pmd_table, uint64_t addr)
{
	uint64_t pte;
	int err = svakit_pagetable_unlink(w->m, pmd_table, idx(addr, 2), &pte); /* pmd_clear */
	if (err)
		return err;
	assert_int_equal(flush_tlb_kernel_range(w->m, addr, addr + PAGE_SIZE - 1), 0);
	return pagetable_free(w->m, pte); /* pagetable_dtor_free */
}

/* v6 of the series: pmd_ptdesc(pmd) is the table that HOLDS the entry. */
static int arch_pmd_free_pte_page_v6(struct world *w, uint64_t pmd_table, uint64_t addr)
{
	assert_int_equal(flush_tlb_kernel_range(w->m, addr, addr + PAGE_SIZE - 1), 0);
	return pagetable_free(w->m, pmd_table);
}

/* x86 pud_free_pmd_page(): the PTE tables, then the PMD table itself. */
static void arch_pud_free_pmd_page(struct world *w, uint64_t pud_table, uint64_t addr)
{
	uint64_t pmd, e, saved[512];
	unsigned n = 0;

	assert_int_equal(svakit_pagetable_read_entry(w->m, pud_table, idx(addr, 3), &e), 0);
	pmd = pfn_of(e);
	for (unsigned i = 0; i < 512; i++) {
		assert_int_equal(svakit_pagetable_read_entry(w->m, pmd, i, &e), 0);
		if ((e & SVAKIT_PTE_P) && !(e & SVAKIT_PTE_PS))
			assert_int_equal(svakit_pagetable_unlink(w->m, pmd, i, &saved[n++]), 0);
	}
	assert_int_equal(svakit_pagetable_unlink(w->m, pud_table, idx(addr, 3), &e), 0); /* pud_clear */
	assert_int_equal(e, pmd);
	assert_int_equal(flush_tlb_kernel_range(w->m, addr, addr + PAGE_SIZE - 1), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(pagetable_free(w->m, saved[i]), 0);
	assert_int_equal(pagetable_free(w->m, pmd), 0); /* pmd_free(&init_mm, pmd) */
}

/* cpa_collapse_large_pages() for one 2 MiB region of the direct map. */
static void arch_cpa_collapse(struct world *w, uint64_t va)
{
	uint64_t pmd = arch_table(w, va, 2), pte, first, e;

	assert_int_equal(svakit_pagetable_read_entry(w->m, pmd, idx(va, 2), &e), 0);
	pte = pfn_of(e);
	assert_int_equal(svakit_pagetable_read_entry(w->m, pte, 0, &first), 0);
	for (unsigned i = 1; i < 512; i++) {
		assert_int_equal(svakit_pagetable_read_entry(w->m, pte, i, &e), 0);
		assert_int_equal(pfn_of(e), pfn_of(first) + i);
	}
	assert_int_equal(svakit_pagetable_unlink(w->m, pmd, idx(va, 2), &e), 0);
	assert_int_equal(svakit_pagetable_write_entry(w->m, pmd, idx(va, 2),
					    (first & ~(SVAKIT_PTE_A | SVAKIT_PTE_D)) | SVAKIT_PTE_PS), 0);
	assert_int_equal(flush_tlb_kernel_range(w->m, 0, TLB_FLUSH_ALL), 0); /* flush_tlb_all */
	assert_int_equal(pagetable_free(w->m, pte), 0);
}

/* ------------------------------------------------------------------------ */
/* Device and attacker                                                       */
/* ------------------------------------------------------------------------ */

static int touch(struct world *w, uint64_t va, uint64_t *out)
{
	struct svakit_dma_fault f;
	*out = 0;
	return svakit_device_dma_read(w->m, w->dev, w->pasid, va, out, 8, 0, &f);
}

/* The attacker takes the next free frame and points its entry for va at the
 * secret (a 4 KiB leaf at level 1, a 2 MiB one at level 2). */
static void attacker(struct world *w, uint64_t va, unsigned level)
{
	uint64_t frame, entry = (w->secret << 12) | SVAKIT_PTE_P | SVAKIT_PTE_RW | SVAKIT_PTE_US;
	if (level == 2)
		entry |= SVAKIT_PTE_PS;
	assert_int_equal(svakit_frame_alloc(w->m, 0, 0xbad, &frame), 0);
	assert_int_equal(svakit_frame_write(w->m, frame, idx(va, level) * 8, &entry, 8), 0);
}

static uint64_t reports(struct world *w)
{
	uint64_t n;
	assert_int_equal(svakit_report_count(w->m, &n), 0);
	return n;
}

/* The ending of every scenario: the kworker runs; the attacker reuses the
 * freed frames; the device touches va again. Returns whether it read the
 * secret; checks the oracle agrees. */
static int finish(struct world *w, uint64_t va, unsigned level, int frames)
{
	uint64_t got;
	assert_int_equal(svakit_deferred_work_flush(w->m), 0);
	for (int i = 0; i < frames; i++)
		attacker(w, va, level);
	int r = touch(w, va, &got);
	int leaked = r == 0 && got == SECRET;
	assert_int_equal(leaked, reports(w) > 0);
	return leaked;
}

/* finish() for a freed table whose entry lacks U/S: returns whether the
 * oracle reported the stale walk, which never reads the secret. */
static int finish_stale(struct world *w, uint64_t va, unsigned level, int frames)
{
	uint64_t got, before = reports(w);
	assert_int_equal(svakit_deferred_work_flush(w->m), 0);
	for (int i = 0; i < frames; i++)
		attacker(w, va, level);
	assert_int_equal(touch(w, va, &got), SVAKIT_DMA_FAULTED);
	return reports(w) > before;
}

static int exploitable(struct world *w, int hole)
{
	return w->mode == SVAKIT_FREE_IMMEDIATE || (w->mode == SVAKIT_FREE_LINUX_6_19 && hole);
}

/* ------------------------------------------------------------------------ */
/* Scenarios                                                                 */
/* ------------------------------------------------------------------------ */

static void test_huge_vmap_over_pte_table(void **state)
{
	struct world *w = *state;
	uint64_t va, got, pmd;

	assert_int_equal(svakit_vmalloc(w->m, PAGE_SIZE, &va), 0);
	assert_int_equal(touch(w, va, &got), SVAKIT_DMA_FAULTED); /* caches the PDE */
	assert_int_equal(svakit_vfree(w->m, va), 0);
	pmd = arch_table(w, va, 2);
	assert_int_equal(arch_pmd_free_pte_page(w, pmd, va), 0);
	assert_int_equal(svakit_pagetable_write_entry(w->m, pmd, idx(va, 2),
					    SVAKIT_PTE_P | SVAKIT_PTE_RW | SVAKIT_PTE_PS | (2ULL << 20)), 0);
	assert_int_equal(finish(w, va, 1, 1), exploitable(w, 0));
}

static void test_pud_free_pmd_page(void **state)
{
	struct world *w = *state;
	const uint64_t base = VMALLOC_START + (8ULL << 30);
	uint64_t got, pud;

	assert_int_equal(svakit_mm_map(w->m, SVAKIT_INIT_MM, base, 0x1000, PAGE_SIZE, SVAKIT_PTE_RW), 0);
	assert_int_equal(touch(w, base, &got), SVAKIT_DMA_FAULTED);
	assert_int_equal(svakit_mm_unmap(w->m, SVAKIT_INIT_MM, base, PAGE_SIZE), 0);
	pud = arch_table(w, base, 3);
	arch_pud_free_pmd_page(w, pud, base);
	assert_int_equal(svakit_pagetable_write_entry(w->m, pud, idx(base, 3), SVAKIT_PTE_P | SVAKIT_PTE_PS), 0);
	assert_int_equal(finish(w, base, 1, 2), exploitable(w, 0));
}

static void test_set_memory_collapse(void **state)
{
	struct world *w = *state;
	uint64_t va, got;

	assert_int_equal(svakit_direct_map_va(w->m, 64ULL << 20, &va), 0);
	assert_int_equal(svakit_set_memory(w->m, va, 1, 0, SVAKIT_PTE_RW), 0); /* split_large_page */
	assert_int_equal(touch(w, va, &got), SVAKIT_DMA_FAULTED);
	assert_int_equal(svakit_set_memory(w->m, va, 1, SVAKIT_PTE_RW, 0), 0);
	arch_cpa_collapse(w, va);
	/* x86 allocates split tables with alloc_pages(): no PT_kernel mark, so
	 * linux-6.19 frees them at once. Their PMD entry is _KERNPG_TABLE (no
	 * U/S): the stale walk reads the freed frame, a use-after-free, but a
	 * user request cannot complete, so nothing leaks. */
	assert_int_equal(finish_stale(w, va, 1, 1), exploitable(w, 1));
}

static void test_hot_remove_boot_tables_then_hot_add(void **state)
{
	struct world *w = *state;
	const uint64_t first = 3 * GIB_FRAMES;
	struct svakit_ptdesc d;
	uint64_t va, got, pmd;

	assert_int_equal(svakit_direct_map_va(w->m, first << 12, &va), 0);
	pmd = arch_table(w, va, 2);
	assert_int_equal(svakit_frame_info(w->m, pmd, &d), 0);
	assert_true(d.flags & SVAKIT_PTDESC_BOOTMEM);
	assert_int_equal(touch(w, va, &got), SVAKIT_DMA_FAULTED); /* caches the PDPTE */
	assert_int_equal(svakit_memory_hot_remove(w->m, first, GIB_FRAMES), 0);
	/* Boot-time tables go to free_reserved_pages() in linux-6.19. */
	assert_int_equal(finish(w, va, 2, 1), exploitable(w, 1));
	assert_int_equal(svakit_memory_hot_add(w->m, first, GIB_FRAMES), 0);
	assert_machine_ok(w->m);
}

static void test_vmalloc_storm(void **state)
{
	struct world *w = *state;
	uint64_t va, huge, got, leaks = 0;

	for (int round = 0; round < 32; round++) {
		assert_int_equal(svakit_vmalloc(w->m, PAGE_SIZE, &va), 0);
		/* Faults, unless a stale PDE from an earlier round still leads
		 * into the attacker's frame (the unfixed kernel). */
		(void)touch(w, va, &got);
		assert_int_equal(svakit_vfree(w->m, va), 0);
		assert_int_equal(svakit_vm_unmap_aliases(w->m), 0); /* the lazy range returns */
		assert_int_equal(svakit_vmalloc_huge(w->m, SVAKIT_PMD_SIZE, &huge), 0); /* pmd_free_pte_page */
		assert_int_equal(huge, va);
		assert_int_equal(svakit_deferred_work_flush(w->m), 0);
		attacker(w, va, 1);
		if (touch(w, va, &got) == 0 && got == SECRET)
			leaks++;
		assert_int_equal(svakit_vfree(w->m, huge), 0);
		assert_int_equal(svakit_vm_unmap_aliases(w->m), 0);
	}
	assert_int_equal(leaks > 0, exploitable(w, 0));
	assert_int_equal(reports(w) > 0, exploitable(w, 0));
	if (!exploitable(w, 0))
		assert_int_equal(leaks, 0);
}

/* ------------------------------------------------------------------------ */
/* Ordering, the key, bad input, the v6 bug                                  */
/* ------------------------------------------------------------------------ */

/* Three PTE tables freed through pmd_free_pte_page in one batch: the driver
 * hears one range invalidation and one fence, then the three frames free. */
static void test_driver_invalidates_before_any_free(void **state)
{
	struct world *w = *state;
	const uint64_t region = VMALLOC_START + (16ULL << 30);
	uint64_t pmd = 0;

	for (int i = 0; i < 3; i++)
		assert_int_equal(svakit_mm_map(w->m, SVAKIT_INIT_MM, region + ((uint64_t)i << 21), 0x1000, PAGE_SIZE, 0), 0);
	for (int i = 0; i < 3; i++) {
		uint64_t a = region + ((uint64_t)i << 21);
		assert_int_equal(svakit_mm_unmap(w->m, SVAKIT_INIT_MM, a, PAGE_SIZE), 0);
		pmd = arch_table(w, a, 2);
		w->drv.armed = w->drv.free_armed = 1;
		assert_int_equal(arch_pmd_free_pte_page(w, pmd, a), 0);
		w->drv.armed = w->drv.free_armed = 0;
		/* Immediate: freed at once, and no IOMMU hears of it; else queued. */
		assert_hook_calls(&w->drv.hk, w->mode == SVAKIT_FREE_IMMEDIATE ? "f" : "");
	}
	struct svakit_deferred_stats ds;
	assert_int_equal(svakit_deferred_stats(w->m, &ds), 0);
	assert_int_equal(ds.pending, w->mode == SVAKIT_FREE_IMMEDIATE ? 0 : 3);

	w->drv.armed = w->drv.free_armed = 1;
	assert_int_equal(svakit_deferred_work_run(w->m), 0);
	w->drv.armed = w->drv.free_armed = 0;
	/* The call order is the invariant: invalidate, fence, then free. */
	assert_hook_calls(&w->drv.hk, w->mode == SVAKIT_FREE_IMMEDIATE ? "" : "RFfff");
	if (w->mode != SVAKIT_FREE_IMMEDIATE) {
		assert_int_equal(w->drv.last_start, PAGE_OFFSET); /* the whole kernel range */
		assert_int_equal(w->drv.last_end, TLB_FLUSH_ALL);
		assert_int_equal(w->drv.last_leaf_only, 0);    /* non-leaf entries too */
		assert_int_equal(svakit_deferred_stats(w->m, &ds), 0);
		assert_int_equal(ds.batches, 1);
		assert_int_equal(ds.largest_batch, 3);
		assert_int_equal(ds.invalidations, 1);
	}
}

static void test_no_sva_bound_no_driver_call(void **state)
{
	struct world *w = *state;
	uint64_t va, huge;
	uint32_t present;

	assert_int_equal(iommu_sva_unbind_device(w->m, w->handle), 0);
	assert_false(svakit_iommu_sva_present(w->m)); /* the last unbind */
	assert_int_equal(svakit_iommu_sva_mm_count(w->m, &present), 0);
	assert_int_equal(present, 0);
	int before = w->drv.ranges + w->drv.pasids + w->drv.alls + w->drv.fences;

	w->drv.armed = 1; /* any driver call now is logged, and fails the test */
	for (int i = 0; i < 8; i++) {
		assert_int_equal(svakit_vmalloc(w->m, PAGE_SIZE, &va), 0);
		assert_int_equal(svakit_vfree(w->m, va), 0);
		assert_int_equal(svakit_vm_unmap_aliases(w->m), 0);
		assert_int_equal(svakit_vmalloc_huge(w->m, SVAKIT_PMD_SIZE, &huge), 0);
		assert_int_equal(svakit_deferred_work_flush(w->m), 0);
		assert_int_equal(svakit_vfree(w->m, huge), 0);
		assert_int_equal(svakit_vm_unmap_aliases(w->m), 0);
	}
	iommu_sva_invalidate_kva_range(w->m, PAGE_OFFSET, TLB_FLUSH_ALL);
	w->drv.armed = 0;
	assert_hook_calls(&w->drv.hk, "");
	assert_int_equal(w->drv.ranges + w->drv.pasids + w->drv.alls + w->drv.fences, before);
}

static void test_v6_bug_is_caught(void **state)
{
	struct world *w = *state;
	uint64_t va, pmd, got;
	struct svakit_stats before;

	assert_int_equal(svakit_vmalloc(w->m, PAGE_SIZE, &va), 0);
	assert_int_equal(touch(w, va, &got), SVAKIT_DMA_FAULTED);
	assert_int_equal(svakit_vfree(w->m, va), 0);
	pmd = arch_table(w, va, 2);
	before = stats(w->m);
	/* Freeing the PMD table that holds the entry: it is still linked. */
	assert_int_equal(arch_pmd_free_pte_page_v6(w, pmd, va), -EBUSY);
	assert_int_equal(stats(w->m).frees, before.frees);
	assert_machine_ok(w->m);
	/* The right table frees fine. */
	assert_int_equal(arch_pmd_free_pte_page(w, pmd, va), 0);
	assert_int_equal(svakit_deferred_work_flush(w->m), 0);
	assert_int_equal(reports(w), 0);
}

static void test_primitives_refuse_bad_input(void **state)
{
	struct world *w = *state;
	uint64_t t1, t2, e, data, before;

	assert_int_equal(svakit_pagetable_alloc_kernel(w->m, 1, &t1), 0);
	assert_int_equal(svakit_pagetable_alloc_kernel(w->m, 2, &t2), 0);
	assert_int_equal(svakit_frame_alloc(w->m, 0, 1, &data), 0);
	before = stats(w->m).step;

	assert_int_equal(svakit_pagetable_alloc_kernel(w->m, 0, &e), -EINVAL);
	assert_int_equal(svakit_pagetable_alloc_kernel(w->m, 4, &e), -EINVAL); /* roots are the mm's */
	assert_int_equal(svakit_pagetable_alloc_kernel(w->m, 1, NULL), -EFAULT);
	assert_int_equal(svakit_pagetable_read_entry(w->m, t1, 512, &e), -EINVAL);
	assert_int_equal(svakit_pagetable_read_entry(w->m, 4 * GIB_FRAMES, 0, &e), -ERANGE);
	assert_int_equal(svakit_pagetable_read_entry(w->m, data, 0, &e), -EPERM);       /* not a table */
	assert_int_equal(svakit_pagetable_write_entry(w->m, t2, 0, (t1 << 12) | SVAKIT_PTE_P), -EINVAL); /* use link */
	assert_int_equal(svakit_pagetable_link(w->m, t1, 0, t2), -EINVAL);        /* levels upside down */
	assert_int_equal(svakit_pagetable_link(w->m, t2, 0, w->root), -EINVAL);   /* a root */
	assert_int_equal(svakit_pagetable_unlink(w->m, t2, 0, &e), -ENOENT);      /* nothing linked */
	assert_int_equal(pagetable_free(w->m, data), -EPERM);
	assert_int_equal(pagetable_free(w->m, w->root), -EPERM);
	assert_int_equal(pagetable_free(w->m, 4 * GIB_FRAMES - 1), -ENXIO);   /* never allocated */
	assert_int_equal(pagetable_free_kernel(w->m, data), -EPERM);
	assert_int_equal(stats(w->m).step, before);

	assert_int_equal(svakit_pagetable_link(w->m, t2, 7, t1), 0);
	assert_int_equal(svakit_pagetable_link(w->m, t2, 8, t1), -EBUSY);         /* linked already */
	assert_int_equal(svakit_pagetable_write_entry(w->m, t2, 7, 0), -EBUSY);         /* use unlink */
	assert_int_equal(pagetable_free(w->m, t1), -EBUSY);                   /* still linked */
	assert_int_equal(svakit_pagetable_unlink(w->m, t2, 7, &e), 0);
	assert_int_equal(e, t1);
	assert_int_equal(pagetable_free_kernel(w->m, t1), 0);
	if (w->mode != SVAKIT_FREE_IMMEDIATE)
		assert_int_equal(pagetable_free(w->m, t1), -EALREADY);         /* queued already */
	assert_int_equal(svakit_deferred_work_flush(w->m), 0);
	assert_int_equal(pagetable_free(w->m, t1), -EALREADY);                /* freed already */
	assert_int_equal(pagetable_free(w->m, t2), 0);
	assert_int_equal(svakit_deferred_work_run(NULL), -EFAULT);
	assert_int_equal(svakit_deferred_stats(w->m, NULL), -EFAULT);
	assert_int_equal(svakit_iommu_set_driver(w->m, 99, &driver_ops, NULL), -ENODEV);
}

/* The kernel names are function-like: an arch's own ops table with a
 * pagetable_free member, or a local called pagetable_free, still compiles
 * and means what it says, next to calls of the kernel name. Calling through
 * such a member takes parentheses, (ops.pagetable_free)(...), or the macro
 * would rewrite the call. */
struct arch_free_ops {
	int (*pagetable_free)(svakit_machine *m, uint64_t pfn);
};

static void test_kernel_names_rewrite_only_calls(void **state)
{
	struct world *w = *state;
	struct arch_free_ops ops = { .pagetable_free = svakit_pagetable_free };
	uint64_t pagetable_free = 0;

	assert_int_equal(svakit_pagetable_alloc_kernel(w->m, 1, &pagetable_free), 0);
	assert_int_equal((ops.pagetable_free)(w->m, pagetable_free), 0);
	assert_int_equal(pagetable_free(w->m, pagetable_free), -EALREADY); /* the call is the kernel name */
}

/* ------------------------------------------------------------------------ */
/* When the work runs: Linux's schedule against the batched one             */
/* ------------------------------------------------------------------------ */

/* A complete-mode machine with max_pending 4, one SVA bind behind the C
 * driver, the work run by hand (MANUAL or MANUAL_BATCHED); 1,000 kernel
 * tables freed through pagetable_free(). */
static void free_1000_tables(uint32_t work_mode, struct driver *drv, struct svakit_deferred_stats *st,
			     int *ranges)
{
	struct svakit_config cfg;
	struct svakit_iommu_config ic;
	svakit_machine *m;
	uint32_t iommu, dev, mm, handle;

	memset(drv, 0, sizeof(*drv));
	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.free_mode = SVAKIT_FREE_COMPLETE;
	cfg.work_mode = work_mode;
	cfg.max_pending = 4;
	assert_int_equal(svakit_machine_create(&cfg, &m), 0);
	svakit_iommu_config_default(&ic);
	assert_int_equal(svakit_iommu_create(m, &ic, &iommu), 0);
	assert_int_equal(svakit_iommu_set_driver(m, iommu, &driver_ops, drv), 0);
	assert_int_equal(svakit_device_create(m, iommu, SVAKIT_DEV_SVA, 20, &dev), 0);
	assert_int_equal(svakit_mm_create(m, &mm), 0);
	assert_int_equal(iommu_sva_bind_device(m, dev, mm, &handle), 0);
	drv->ranges = 0;
	for (int i = 0; i < 1000; i++) {
		uint64_t pfn;
		assert_int_equal(svakit_pagetable_alloc_kernel(m, 1, &pfn), 0);
		assert_int_equal(pagetable_free(m, pfn), 0);
	}
	assert_int_equal(svakit_deferred_stats(m, st), 0);
	*ranges = drv->ranges; /* destroy drains the list, behind an invalidation */
	assert_machine_ok(m);
	svakit_machine_destroy(m);
}

/* linux-6.19 (mm/pgtable-generic.c, 5ba2f0a15564): pagetable_free_kernel()
 * queues and calls schedule_work(): no delay, no bound. The freeing caller
 * never runs the work nor invalidates, past max_pending included. */
static void test_linux_schedule_has_no_bound(void **state)
{
	struct driver drv;
	struct svakit_deferred_stats st;
	int ranges;
	(void)state;

	free_1000_tables(SVAKIT_WORK_MANUAL, &drv, &st, &ranges);
	assert_int_equal(st.pending, 1000);
	assert_int_equal(st.peak_pending, 1000);
	assert_int_equal(st.batches, 0);
	assert_int_equal(st.invalidations, 0);
	assert_int_equal(ranges, 0); /* the driver heard nothing from the caller */
}

/* The control, beyond Linux: MANUAL_BATCHED keeps the bound, and past it
 * the freeing caller runs the work, invalidation included. */
static void test_batched_schedule_bounds_the_list(void **state)
{
	struct driver drv;
	struct svakit_deferred_stats st;
	int ranges;
	(void)state;

	free_1000_tables(SVAKIT_WORK_MANUAL_BATCHED, &drv, &st, &ranges);
	assert_true(st.pending <= 4);
	assert_int_equal(st.peak_pending, 5);
	assert_int_equal(st.batches, 200);
	assert_int_equal(st.invalidations, 200);
	assert_int_equal(ranges, 200);
}

#define ALL_MODES(fn)                                                                          \
	cmocka_unit_test_prestate_setup_teardown(fn, setup_world, teardown_world, &worlds[0]), \
	cmocka_unit_test_prestate_setup_teardown(fn, setup_world, teardown_world, &worlds[1]), \
	cmocka_unit_test_prestate_setup_teardown(fn, setup_world, teardown_world, &worlds[2])

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linux_schedule_has_no_bound),
		cmocka_unit_test(test_batched_schedule_bounds_the_list),
		ALL_MODES(test_huge_vmap_over_pte_table),
		ALL_MODES(test_pud_free_pmd_page),
		ALL_MODES(test_set_memory_collapse),
		ALL_MODES(test_hot_remove_boot_tables_then_hot_add),
		ALL_MODES(test_vmalloc_storm),
		ALL_MODES(test_driver_invalidates_before_any_free),
		ALL_MODES(test_no_sva_bound_no_driver_call),
		ALL_MODES(test_v6_bug_is_caught),
		ALL_MODES(test_primitives_refuse_bad_input),
		ALL_MODES(test_kernel_names_rewrite_only_calls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
