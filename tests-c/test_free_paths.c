// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel paths that free kernel page-table frames, driven through the C
 * ABI the way x86 drives them (docs/KERNEL-MODEL.md §2.7). For each one the frame's
 * descriptor and the event log must tell what happened: which path unlinked
 * the table, that a CPU flush came between the unlink and the free, and that
 * the flush hook ran while the table was not yet free. The hook only checks
 * and logs (harness.h, struct hook_ctx); the tests assert after each call.
 */
#include "harness.h"

struct flush_log {
	svakit_machine *m;
	uint64_t watch[4];
	int nwatch;
	int flushes;
	uint64_t start, end;
	uint8_t kinds_at_flush[4]; /* kind of each watched frame when the hook ran */
	struct hook_ctx hk;        /* 'F' per flush; the hook's failed checks */
};

static void flush_hook(void *ctx, uint64_t start, uint64_t end)
{
	struct flush_log *log = ctx;

	hook_called(&log->hk, 'F');
	log->flushes++;
	log->start = start;
	log->end = end;
	/* The hook runs with no lock held: it may call back into the machine. */
	for (int i = 0; i < log->nwatch; i++) {
		struct svakit_ptdesc d;
		if (hook_check_int_equal(&log->hk, svakit_frame_info(log->m, log->watch[i], &d), 0))
			log->kinds_at_flush[i] = d.kind;
	}
}

static void hook(svakit_machine *m, struct flush_log *log)
{
	memset(log, 0, sizeof(*log));
	log->m = m;
	assert_int_equal(svakit_machine_set_tlb_flush_hook(m, flush_hook, log), 0);
}

/* No flush since the last assertion; the hook goes before log does. */
static void unhook(svakit_machine *m, struct flush_log *log)
{
	assert_hook_calls(&log->hk, "");
	assert_int_equal(svakit_machine_set_tlb_flush_hook(m, NULL, NULL), 0);
}

/* The table the entry at `level` for va (init_mm) points to. */
static uint64_t ktable(svakit_machine *m, uint64_t va, unsigned level)
{
	uint64_t t = table_at(m, SVAKIT_INIT_MM, va, level, 4);
	uint64_t e = entry_of(m, t, idx(va, level));
	assert_true(e & SVAKIT_PTE_P);
	assert_false(e & SVAKIT_PTE_PS);
	return (e & SVAKIT_PTE_PFN_MASK) >> 12;
}

/* Where a table's unlink and free are in the log, and the last flush
 * before the free and after the unlink. */
struct free_steps {
	struct svakit_event ev[4096];
	int unlink, freed, flush_before_free, flush_after_unlink;
};

static void free_steps(svakit_machine *m, uint64_t pfn, struct free_steps *s)
{
	int n = svakit_event_read(m, 0, s->ev, 4096);

	assert_true(n > 0);
	s->unlink = s->freed = s->flush_before_free = s->flush_after_unlink = -1;
	for (int i = 0; i < n; i++) {
		if (s->ev[i].pfn == pfn && s->ev[i].type == SVAKIT_EV_TABLE_UNLINK)
			s->unlink = i;
		if (s->ev[i].pfn == pfn && s->ev[i].type == SVAKIT_EV_FRAME_FREE)
			s->freed = i;
		if (s->ev[i].type != SVAKIT_EV_TLB_FLUSH)
			continue;
		if (s->freed < 0)
			s->flush_before_free = i;
		if (s->unlink >= 0)
			s->flush_after_unlink = i;
	}
}

/* Unlinked by `site`, then a flush, then freed by `site`. */
static void assert_freed_after_flush(svakit_machine *m, uint64_t pfn, uint16_t site)
{
	static struct free_steps s;

	free_steps(m, pfn, &s);
	assert_true(s.unlink >= 0 && s.freed > s.unlink);
	assert_true(s.flush_before_free > s.unlink);
	assert_int_equal(s.ev[s.unlink].site, site);
	assert_int_equal(s.ev[s.freed].site, site);
	assert_int_equal(s.ev[s.freed].kind, SVAKIT_FRAME_PT_KERNEL);
	assert_int_equal(info(m, pfn).kind, SVAKIT_FRAME_FREE);
}

static void test_pmd_free_pte_page(void **state)
{
	svakit_machine *m = *state;
	struct flush_log log;
	struct svakit_translation t;
	uint64_t va, huge, pte, again;

	assert_int_equal(svakit_vmalloc(m, 4096, &va), 0);
	pte = ktable(m, va, 2);
	assert_int_equal(info(m, pte).level, 1);
	assert_true(info(m, pte).flags & SVAKIT_PTDESC_KERNEL);
	assert_int_equal(info(m, pte).site, SVAKIT_SITE_VMALLOC);

	hook(m, &log);
	assert_int_equal(svakit_vfree(m, va), 0);
	assert_hook_calls(&log.hk, ""); /* vfree leaves the flush to the lazy purge (6.12) */
	assert_true(info(m, pte).flags & SVAKIT_PTDESC_LINKED); /* vunmap leaves tables */
	assert_int_equal(svakit_vm_unmap_aliases(m), 0);
	assert_hook_calls(&log.hk, "F"); /* the purge: one flush over the area and its guard page */
	assert_int_equal(log.start, va);
	assert_int_equal(log.end, va + 2 * SVAKIT_PAGE_SIZE);
	assert_int_equal(svakit_vm_unmap_aliases(m), 0);
	assert_hook_calls(&log.hk, ""); /* nothing lazy: no flush */

	log.watch[0] = pte;
	log.nwatch = 1;
	assert_int_equal(svakit_vmalloc_huge(m, SVAKIT_PMD_SIZE, &huge), 0);
	assert_hook_calls(&log.hk, "F"); /* exactly one flush, before the free */
	assert_int_equal(huge, va);
	assert_int_equal(log.start, va);
	assert_int_equal(log.end, va + SVAKIT_PAGE_SIZE - 1);
	assert_int_equal(log.kinds_at_flush[0], SVAKIT_FRAME_PT_KERNEL);
	assert_freed_after_flush(m, pte, SVAKIT_SITE_PMD_FREE_PTE_PAGE);
	assert_int_equal(info(m, pte).generation, 1);
	assert_int_equal(svakit_mm_translate(m, 0, va, &t), 0);
	assert_int_equal(t.page_size, SVAKIT_PMD_SIZE);

	/* LIFO reuse: the freed table is the next frame anyone gets. */
	assert_int_equal(svakit_frame_alloc(m, 0, 0xbad, &again), 0);
	assert_int_equal(again, pte);
	unhook(m, &log);
	assert_machine_ok(m);
}

static void test_pud_free_pmd_page(void **state)
{
	svakit_machine *m = *state;
	const uint64_t base = 0xffffc90100000000ULL; /* 1 GiB aligned */
	struct flush_log log;
	uint64_t pmd, pte0, pte1;

	assert_int_equal(svakit_mm_map(m, 0, base, 0x1000, 4096, SVAKIT_PTE_RW), 0);
	assert_int_equal(svakit_mm_map(m, 0, base + SVAKIT_PMD_SIZE, 0x2000, 4096, SVAKIT_PTE_RW), 0);
	pmd = ktable(m, base, 3);
	pte0 = ktable(m, base, 2);
	pte1 = ktable(m, base + SVAKIT_PMD_SIZE, 2);
	/* A PMD table that still maps pages cannot be replaced. */
	assert_int_equal(svakit_vmap_huge(m, base, 0, SVAKIT_PUD_SIZE, 0), -EBUSY);
	assert_machine_ok(m);

	hook(m, &log);
	assert_int_equal(svakit_vunmap(m, base, 2 * SVAKIT_PMD_SIZE), 0);
	assert_hook_calls(&log.hk, "F");
	log.watch[0] = pte0;
	log.watch[1] = pte1;
	log.watch[2] = pmd;
	log.nwatch = 3;
	assert_int_equal(svakit_vmap_huge(m, base, 0, SVAKIT_PUD_SIZE, SVAKIT_PTE_RW), 0);
	assert_hook_calls(&log.hk, "F");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(log.kinds_at_flush[i], SVAKIT_FRAME_PT_KERNEL);
		assert_freed_after_flush(m, log.watch[i], SVAKIT_SITE_PUD_FREE_PMD_PAGE);
	}
	unhook(m, &log);
	assert_machine_ok(m);
}

static void test_set_memory_split_and_collapse(void **state)
{
	svakit_machine *m = *state;
	struct flush_log log;
	struct svakit_translation t;
	uint64_t va, pte;

	assert_int_equal(svakit_direct_map_va(m, 8 << 20, &va), 0);
	hook(m, &log);
	/* cpa_flush: flush_tlb_one_kernel per page up to 33 pages. */
	assert_int_equal(svakit_set_memory(m, va + 0x5000, 2, SVAKIT_PTE_PCD, 0), 0);
	assert_hook_calls(&log.hk, "FF");
	pte = ktable(m, va, 2);
	/* __split_large_page links with _KERNPG_TABLE: no U/S. */
	assert_false(entry_of(m, ktable(m, va, 3), idx(va, 2)) & SVAKIT_PTE_US);
	assert_true(info(m, pte).flags & SVAKIT_PTDESC_SPLIT);
	assert_int_equal(info(m, pte).site, SVAKIT_SITE_SET_MEMORY_SPLIT);
	assert_int_equal(svakit_mm_translate(m, 0, va + 0x6000, &t), 0);
	assert_true(t.entry & SVAKIT_PTE_PCD);
	assert_int_equal(t.page_size, SVAKIT_PAGE_SIZE);
	assert_int_equal(svakit_cpa_collapse_large_pages(m, va), 0); /* mixed: stays split */

	assert_int_equal(svakit_set_memory(m, va + 0x5000, 2, 0, SVAKIT_PTE_PCD), 0);
	assert_hook_calls(&log.hk, "FF");
	log.watch[0] = pte;
	log.nwatch = 1;
	assert_int_equal(svakit_cpa_collapse_large_pages(m, va), 1);
	assert_hook_calls(&log.hk, "F"); /* flush_tlb_all */
	assert_int_equal(log.start, 0);
	assert_int_equal(log.end, UINT64_MAX);
	assert_int_equal(log.kinds_at_flush[0], SVAKIT_FRAME_PT_KERNEL);
	assert_freed_after_flush(m, pte, SVAKIT_SITE_SET_MEMORY_COLLAPSE);
	assert_int_equal(svakit_mm_translate(m, 0, va, &t), 0);
	assert_int_equal(t.page_size, SVAKIT_PMD_SIZE);

	assert_int_equal(svakit_set_memory(m, va + 1, 1, 0, 0), -EINVAL);
	assert_int_equal(svakit_set_memory(m, va, 1, SVAKIT_PTE_PS, 0), -EINVAL);
	assert_int_equal(svakit_set_memory(m, 0xffffc90000000000ULL, 1, 0, 0), -ENOENT); /* zero pte */
	assert_int_equal(svakit_set_memory(m, 0xffffc80000000000ULL, 1, 0, 0), -ERANGE); /* neither area */
	unhook(m, &log);
	assert_machine_ok(m);
}

/* set_memory_rox() (arch/x86/mm/pat/set_memory.c since 41d88484c71c): the one
 * caller of cpa_collapse_large_pages, on an execmem-style huge mapping. */
static void test_set_memory_rox_collapses(void **state)
{
	svakit_machine *m = *state;
	struct svakit_translation t;
	uint64_t va, pte;

	assert_int_equal(svakit_vmalloc_huge(m, SVAKIT_PMD_SIZE, &va), 0);
	assert_int_equal(svakit_set_memory(m, va + 0x3000, 1, 0, SVAKIT_PTE_RW), 0);
	pte = ktable(m, va, 2);
	assert_true(info(m, pte).flags & SVAKIT_PTDESC_SPLIT);
	assert_false(entry_of(m, ktable(m, va, 3), idx(va, 2)) & SVAKIT_PTE_US); /* _KERNPG_TABLE */
	/* RO + X on part of the region: nothing collapses. */
	assert_int_equal(svakit_set_memory_rox(m, va, 4), 0);
	assert_int_equal(info(m, pte).kind, SVAKIT_FRAME_PT_KERNEL);
	/* The whole region: 512 equal PTEs collapse, the table is freed. */
	assert_int_equal(svakit_set_memory_rox(m, va, 512), 1);
	assert_freed_after_flush(m, pte, SVAKIT_SITE_SET_MEMORY_COLLAPSE);
	assert_int_equal(svakit_mm_translate(m, 0, va + 0x3000, &t), 0);
	assert_int_equal(t.page_size, SVAKIT_PMD_SIZE);
	assert_false(t.entry & (SVAKIT_PTE_RW | SVAKIT_PTE_NX));
	assert_int_equal(svakit_set_memory_rox(m, va, 0), -EINVAL);
	assert_machine_ok(m);
}

/* Freed by `site` with the entry still pointing at it, then unlinked, then a
 * flush: Linux's hot-remove order. */
static void assert_freed_before_clear(svakit_machine *m, uint64_t pfn, uint16_t site)
{
	static struct free_steps s;

	free_steps(m, pfn, &s);
	assert_true(s.freed >= 0 && s.unlink > s.freed);
	assert_true(s.flush_after_unlink > s.unlink);
	assert_int_equal(s.ev[s.unlink].site, site);
	assert_int_equal(s.ev[s.freed].site, site);
}

/* The free hook reads the PUD entry over the table being freed. */
struct pud_at_free {
	svakit_machine *m;
	uint64_t pud, freed, entry_at_free;
	unsigned int index;
};

static void free_hook_reads_pud(void *ctx, uint64_t pfn, unsigned int level, unsigned int site)
{
	struct pud_at_free *p = ctx;

	if (level != 2 || site != SVAKIT_SITE_HOT_REMOVE)
		return;
	p->freed = pfn;
	(void)svakit_pagetable_read_entry(p->m, p->pud, p->index, &p->entry_at_free);
}

static void test_hot_remove_then_hot_add(void **state)
{
	svakit_machine *m = *state;
	const uint64_t first = 3 * GIB_FRAMES, n = GIB_FRAMES;
	struct flush_log log;
	struct pud_at_free pud_free = { 0 };
	struct svakit_translation t;
	uint64_t va, pmd, pmd2, p;

	assert_int_equal(svakit_direct_map_va(m, first << 12, &va), 0);
	pmd = ktable(m, va, 3);
	assert_true(info(m, pmd).flags & SVAKIT_PTDESC_BOOTMEM); /* allocated at boot */
	assert_int_equal(info(m, pmd).site, SVAKIT_SITE_BOOT);

	hook(m, &log);
	log.watch[0] = pmd;
	log.nwatch = 1;
	pud_free.m = m;
	pud_free.pud = ktable(m, va, 4);
	pud_free.index = idx(va, 3);
	assert_int_equal(svakit_machine_set_free_hook(m, free_hook_reads_pud, &pud_free), 0);
	assert_int_equal(svakit_memory_hot_remove(m, first, n), 0);
	assert_int_equal(svakit_machine_set_free_hook(m, NULL, NULL), 0);
	/* remove_pagetable (arch/x86/mm/init_64.c, 6.12): free_pmd_table frees
	 * the table while the PUD entry still points at it, pud_clear after,
	 * and the one flush_tlb_all comes last. */
	assert_int_equal(pud_free.freed, pmd);
	assert_int_equal((pud_free.entry_at_free & SVAKIT_PTE_PFN_MASK) >> 12, pmd);
	assert_true(pud_free.entry_at_free & SVAKIT_PTE_P);
	assert_hook_calls(&log.hk, "F");
	assert_int_equal(log.kinds_at_flush[0], SVAKIT_FRAME_FREE);
	assert_freed_before_clear(m, pmd, SVAKIT_SITE_HOT_REMOVE);
	assert_int_equal(svakit_mm_translate(m, 0, va, &t), -ENOENT);
	assert_int_equal(stats(m).frames_offline, n);
	assert_int_equal(info(m, first + 7).kind, SVAKIT_FRAME_OFFLINE);
	assert_int_equal(svakit_memory_hot_remove(m, first, n), -ENOENT);
	assert_int_equal(svakit_frame_free(m, first), -ENXIO);
	assert_machine_ok(m);

	assert_int_equal(svakit_memory_hot_add(m, first, n), 0);
	assert_int_equal(svakit_memory_hot_add(m, first, n), -EBUSY);
	pmd2 = ktable(m, va, 3);
	assert_false(info(m, pmd2).flags & SVAKIT_PTDESC_KERNEL); /* alloc_low_pages: unmarked */
	assert_false(info(m, pmd2).flags & SVAKIT_PTDESC_BOOTMEM);
	assert_int_equal(svakit_mm_translate(m, 0, va + 0x3000, &t), 0);
	assert_int_equal(t.phys, (first << 12) + 0x3000);
	assert_int_equal(stats(m).frames_offline, 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(svakit_frame_alloc(m, 0, 0, &p), 0);
	unhook(m, &log);
	assert_machine_ok(m);
}

static void test_hot_remove_refusals(void **state)
{
	svakit_machine *m = *state;
	uint64_t before = stats(m).step;

	assert_int_equal(svakit_memory_hot_remove(m, 0, SVAKIT_SECTION_PAGES), -EBUSY); /* boot tables */
	assert_int_equal(svakit_memory_hot_remove(m, 1, SVAKIT_SECTION_PAGES), -EINVAL);
	assert_int_equal(svakit_memory_hot_remove(m, GIB_FRAMES, 5), -EINVAL);
	assert_int_equal(svakit_memory_hot_remove(m, 4 * GIB_FRAMES, SVAKIT_SECTION_PAGES), -ERANGE);
	assert_int_equal(svakit_memory_hot_add(m, GIB_FRAMES, SVAKIT_SECTION_PAGES), -EBUSY);
	assert_int_equal(stats(m).step, before);
	assert_machine_ok(m);
}

static void test_bad_kernel_path_input(void **state)
{
	svakit_machine *m = *state;
	uint64_t va, start, end;

	assert_int_equal(svakit_vmalloc_area(m, &start, &end), 0);
	assert_int_equal(svakit_vmalloc(m, 0, &va), -EINVAL);
	assert_int_equal(svakit_vmalloc(m, 100, &va), -EINVAL);
	assert_int_equal(svakit_vmalloc_huge(m, 4096, &va), -EINVAL);
	assert_int_equal(svakit_vfree(m, start + 4096), -ENOENT);
	assert_int_equal(svakit_vmap_huge(m, start + 4096, 0, SVAKIT_PMD_SIZE, 0), -EINVAL);
	assert_int_equal(svakit_vmap_huge(m, start, 0, SVAKIT_PAGE_SIZE, 0), -EINVAL);
	assert_int_equal(svakit_vunmap(m, start + 1, 4096), -EINVAL);
	assert_int_equal(svakit_direct_map_va(m, 4 * GIB_FRAMES << 12, &va), -ERANGE);
	assert_int_equal(svakit_flush_tlb_kernel_range(m, 2, 1), -EINVAL);
	assert_machine_ok(m);
}

/* The pattern itself: a hook check that fails inside the engine's call is
 * recorded (the first one's place and text, and how many failed), the call
 * returns normally instead of longjmping out through Swift, and the test
 * sees the failure afterwards (assert_hook_ok would fail it there). */
struct failing_hook {
	struct hook_ctx hk;
	int line;
};

static void failing_flush_hook(void *ctx, uint64_t start, uint64_t end)
{
	struct failing_hook *f = ctx;

	hook_called(&f->hk, 'F');
	f->line = __LINE__ + 1;
	hook_check(&f->hk, start > end);          /* false: a flush range has start <= end */
	hook_check_int_equal(&f->hk, start, end); /* false too, but not the first */
}

static void test_a_failing_hook_check_is_reported_after_the_call(void **state)
{
	svakit_machine *m = *state;
	struct failing_hook f;
	uint64_t va;

	memset(&f, 0, sizeof(f));
	assert_int_equal(svakit_vmalloc(m, 4096, &va), 0);
	assert_int_equal(svakit_machine_set_tlb_flush_hook(m, failing_flush_hook, &f), 0);
	assert_int_equal(svakit_vfree(m, va), 0);
	assert_int_equal(svakit_vm_unmap_aliases(m), 0); /* the purge's flush; the call ran to its end */
	assert_int_equal(svakit_machine_set_tlb_flush_hook(m, NULL, NULL), 0);
	assert_false(hook_ok(&f.hk));
	assert_int_equal(f.hk.failed, 2);
	assert_string_equal(f.hk.file, __FILE__);
	assert_int_equal(f.hk.line, f.line);
	assert_string_equal(f.hk.msg, "start > end");
	assert_string_equal(f.hk.calls, "F");
	/* The engine finished the call and its bookkeeping; teardown destroys
	 * the machine as after any test. */
	assert_int_equal(svakit_mm_translate(m, SVAKIT_INIT_MM, va, &(struct svakit_translation){ 0 }), -ENOENT);
	assert_machine_ok(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pmd_free_pte_page, setup_machine_4g, teardown_machine),
		cmocka_unit_test_setup_teardown(test_pud_free_pmd_page, setup_machine_4g, teardown_machine),
		cmocka_unit_test_setup_teardown(test_set_memory_split_and_collapse, setup_machine_4g, teardown_machine),
		cmocka_unit_test_setup_teardown(test_set_memory_rox_collapses, setup_machine_4g, teardown_machine),
		cmocka_unit_test_setup_teardown(test_hot_remove_then_hot_add, setup_machine_4g, teardown_machine),
		cmocka_unit_test_setup_teardown(test_hot_remove_refusals, setup_machine_4g, teardown_machine),
		cmocka_unit_test_setup_teardown(test_bad_kernel_path_input, setup_machine_4g, teardown_machine),
		cmocka_unit_test_setup_teardown(test_a_failing_hook_check_is_reported_after_the_call, setup_machine,
						teardown_machine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
