// SPDX-License-Identifier: Apache-2.0
/*
 * The ABI's edges: version, error strings, configuration checks, and a NULL
 * or foreign handle at every entry point. Each refusal must leave a real
 * machine untouched, which the last test checks through the event clock.
 */
#include "harness.h"

/* The kernel names are opt-in (SVAKIT_KERNEL_NAMES), and this file does not
 * opt in: none of them may be defined here. */
#if defined(pagetable_free) || defined(pagetable_free_kernel) || defined(flush_tlb_kernel_range) || \
	defined(iommu_sva_bind_device) || defined(iommu_sva_unbind_device) ||                     \
	defined(iommu_sva_get_pasid) || defined(iommu_sva_invalidate_kva_range)
#error "svakit.h defined a kernel name without SVAKIT_KERNEL_NAMES"
#endif

/* So an includer's own identifiers with those names are its own. */
struct my_arch_ops {
	int (*pagetable_free)(svakit_machine *m, uint64_t pfn);
	int flush_tlb_kernel_range;
};

static void test_kernel_names_are_opt_in(void **state)
{
	struct my_arch_ops ops = { .pagetable_free = svakit_pagetable_free, .flush_tlb_kernel_range = 1 };
	int iommu_sva_get_pasid = 2;

	(void)state;
	assert_ptr_equal(ops.pagetable_free, svakit_pagetable_free);
	assert_int_equal(ops.flush_tlb_kernel_range + iommu_sva_get_pasid, 3);
}

static void test_version_matches_header(void **state)
{
	(void)state;
	assert_string_equal(svakit_version(), SVAKIT_VERSION_STRING);
}

static void test_strerror_names_each_error(void **state)
{
	(void)state;
	const int errs[] = { -EFAULT, -EBADF, -ERANGE, -EINVAL, -EEXIST, -ENOENT, -EALREADY,
			     -ENXIO, -EPERM, -EBUSY, -ESRCH, -ENOMEM, -ENOSPC };
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		const char *s = svakit_strerror(errs[i]);
		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, svakit_strerror(errs[j]));
	}
	assert_string_equal(svakit_strerror(-E2BIG), "unknown error");
	assert_string_equal(svakit_strerror(0), "success");
}

static void test_bad_configs_are_refused(void **state)
{
	(void)state;
	struct svakit_config cfg;
	svakit_machine *m = (svakit_machine *)0x1;

	svakit_config_default(&cfg);
	assert_int_equal(cfg.frames, 4ULL << 20);
	assert_int_equal(cfg.paging_levels, 4);
	assert_int_equal(cfg.reuse_policy, SVAKIT_REUSE_LIFO);

	cfg.paging_levels = 3;
	assert_int_equal(svakit_machine_create(&cfg, &m), -EINVAL);
	svakit_config_default(&cfg);
	cfg.frames = 1000; /* not a multiple of the largest block */
	assert_int_equal(svakit_machine_create(&cfg, &m), -EINVAL);
	svakit_config_default(&cfg);
	cfg.reuse_policy = 7;
	assert_int_equal(svakit_machine_create(&cfg, &m), -EINVAL);
	svakit_config_default(&cfg);
	cfg.free_mode = 3;
	assert_int_equal(svakit_machine_create(&cfg, &m), -EINVAL);
	svakit_config_default(&cfg);
	cfg.max_pending = 0;
	assert_int_equal(svakit_machine_create(&cfg, &m), -EINVAL);
	assert_ptr_equal(m, (svakit_machine *)0x1); /* untouched on failure */
	assert_int_equal(svakit_machine_create(NULL, &m), -EFAULT);
	assert_int_equal(svakit_machine_create(&cfg, NULL), -EFAULT);
	svakit_machine_destroy(NULL); /* ignored, as kfree(NULL) */
}

/* Every entry point that takes a handle, called with h. */
static void every_entry_point(svakit_machine *h, int expect)
{
	uint64_t u = 0, u2 = 0;
	uint32_t mm = 0;
	char buf[8] = { 0 };
	struct svakit_ptdesc d;
	struct svakit_translation t;
	struct svakit_event ev[2];
	struct svakit_stats s;

	assert_int_equal(svakit_machine_stats(h, &s), expect);
	assert_int_equal(svakit_frame_alloc(h, 0, 0, &u), expect);
	assert_int_equal(svakit_frame_free(h, 1), expect);
	assert_int_equal(svakit_frame_info(h, 1, &d), expect);
	assert_int_equal(svakit_frame_read(h, 1, 0, buf, sizeof(buf)), expect);
	assert_int_equal(svakit_frame_write(h, 1, 0, buf, sizeof(buf)), expect);
	assert_int_equal(svakit_mm_create(h, &mm), expect);
	assert_int_equal(svakit_mm_destroy(h, 1), expect);
	assert_int_equal(svakit_mm_root(h, 0, &u), expect);
	assert_int_equal(svakit_mm_map(h, 0, 0xffffc90000000000ULL, 0, 4096, 0), expect);
	assert_int_equal(svakit_mm_unmap(h, 0, 0xffffc90000000000ULL, 4096), expect);
	assert_int_equal(svakit_mm_translate(h, 0, 0xffffc90000000000ULL, &t), expect);
	assert_int_equal(svakit_vmalloc_area(h, &u, &u2), expect);
	assert_int_equal(svakit_vmalloc(h, 4096, &u), expect);
	assert_int_equal(svakit_vm_unmap_aliases(h), expect);
	assert_int_equal(svakit_vmalloc_huge(h, 1 << 21, &u), expect);
	assert_int_equal(svakit_vfree(h, 0xffffc90000000000ULL), expect);
	assert_int_equal(svakit_vmap_huge(h, 0xffffc90000000000ULL, 0, 1 << 21, 0), expect);
	assert_int_equal(svakit_vunmap(h, 0xffffc90000000000ULL, 4096), expect);
	assert_int_equal(svakit_direct_map_va(h, 0, &u), expect);
	assert_int_equal(svakit_set_memory(h, 0xffff888000000000ULL, 1, 0, 0), expect);
	assert_int_equal(svakit_cpa_collapse_large_pages(h, 0xffff888000000000ULL), expect);
	assert_int_equal(svakit_memory_hot_remove(h, 0, SVAKIT_SECTION_PAGES), expect);
	assert_int_equal(svakit_memory_hot_add(h, 0, SVAKIT_SECTION_PAGES), expect);
	assert_int_equal(svakit_machine_set_tlb_flush_hook(h, NULL, NULL), expect);
	assert_int_equal(svakit_flush_tlb_kernel_range(h, 0, 1), expect);
	assert_int_equal(svakit_event_read(h, 0, ev, 2), expect);
	assert_int_equal(svakit_frame_history(h, 1, ev, 2), expect);
	assert_int_equal(svakit_machine_check(h), expect);
	assert_int_equal(svakit_machine_check_text(h, buf, sizeof(buf)), expect);

	struct svakit_iommu_config ic;
	struct svakit_iommu_counters ctr;
	struct svakit_dma_fault fault;
	struct svakit_uaf_report rep;
	uint32_t id = 0;
	svakit_iommu_config_default(&ic);
	assert_int_equal(svakit_iommu_create(h, &ic, &id), expect);
	assert_int_equal(svakit_iommu_counters(h, 0, &ctr), expect);
	assert_int_equal(svakit_iommu_invalidate_range(h, 0, 1, 0, 1, 0), expect);
	assert_int_equal(svakit_iommu_invalidate_pasid(h, 0, 1), expect);
	assert_int_equal(svakit_iommu_invalidate_all(h, 0), expect);
	assert_int_equal(svakit_iommu_fence(h, 0), expect);
	assert_int_equal(svakit_device_create(h, 0, SVAKIT_DEV_SVA, 20, &id), expect);
	assert_int_equal(svakit_iommu_attach_device_pasid(h, 0, 1, 1), expect);
	assert_int_equal(svakit_iommu_detach_device_pasid(h, 0, 1), expect);
	assert_int_equal(svakit_iommu_sva_bind_device(h, 0, 1, &id), expect);
	assert_int_equal(svakit_iommu_sva_unbind_device(h, 1), expect);
	assert_int_equal(svakit_iommu_sva_get_pasid(h, 1, &id), expect);
	assert_int_equal(svakit_iommu_sva_mm_count(h, &id), expect);
	svakit_iommu_sva_invalidate_kva_range_slow(h, 0, UINT64_MAX); /* refused silently */
	assert_int_equal(svakit_device_dma_read(h, 0, 1, 0, buf, 8, 0, &fault), expect);
	assert_int_equal(svakit_device_dma_write(h, 0, 1, 0, buf, 8, 0, &fault), expect);
	assert_int_equal(svakit_machine_set_report_handler(h, NULL, NULL), expect);
	assert_int_equal(svakit_report_count(h, &u), expect);
	assert_int_equal(svakit_report_read(h, 0, &rep, 1), expect);
	assert_int_equal(svakit_report_text(h, 0, buf, sizeof(buf)), expect);

	struct svakit_deferred_stats ds;
	assert_int_equal(svakit_pagetable_alloc_kernel(h, 1, &u), expect);
	assert_int_equal(svakit_pagetable_read_entry(h, 1, 0, &u), expect);
	assert_int_equal(svakit_pagetable_write_entry(h, 1, 0, 0), expect);
	assert_int_equal(svakit_pagetable_link(h, 1, 0, 2), expect);
	assert_int_equal(svakit_pagetable_unlink(h, 1, 0, &u), expect);
	assert_int_equal(svakit_pagetable_free(h, 1), expect);
	assert_int_equal(svakit_pagetable_free_kernel(h, 1), expect);
	assert_int_equal(svakit_deferred_work_run(h), expect);
	assert_int_equal(svakit_deferred_work_flush(h), expect);
	assert_int_equal(svakit_deferred_stats(h, &ds), expect);
	assert_int_equal(svakit_machine_set_free_hook(h, NULL, NULL), expect);
	assert_int_equal(svakit_iommu_set_driver(h, 0, NULL, NULL), expect);
}

static void test_null_handle_everywhere(void **state)
{
	(void)state;
	every_entry_point(NULL, -EFAULT);
}

static void test_foreign_handle_everywhere(void **state)
{
	(void)state;
	/* Memory that is readable but is no machine: a zeroed handle, and one
	 * whose magic is wrong. */
	svakit_machine zeroed;
	memset(&zeroed, 0, sizeof(zeroed));
	every_entry_point(&zeroed, -EBADF);

	struct { uint32_t magic; int32_t pad; void *owner; } other = { 0x12345678u, 0, &other };
	every_entry_point((svakit_machine *)&other, -EBADF);
	svakit_machine_destroy(&zeroed); /* refused silently, nothing freed */
}

static void test_null_outputs_leave_machine_unchanged(void **state)
{
	svakit_machine *m = *state;
	struct svakit_stats before = stats(m), after;

	assert_int_equal(svakit_frame_alloc(m, 0, 0, NULL), -EFAULT);
	assert_int_equal(svakit_mm_create(m, NULL), -EFAULT);
	assert_int_equal(svakit_vmalloc(m, 4096, NULL), -EFAULT);
	assert_int_equal(svakit_frame_info(m, 1, NULL), -EFAULT);
	assert_int_equal(svakit_mm_translate(m, 0, 0xffffc90000000000ULL, NULL), -EFAULT);
	assert_int_equal(svakit_frame_read(m, 1, 0, NULL, 8), -EFAULT);
	assert_int_equal(svakit_event_read(m, 0, NULL, 4), -EFAULT);
	assert_int_equal(svakit_event_read(m, 0, NULL, 0), 0);
	after = stats(m);
	assert_int_equal(after.step, before.step);
	assert_int_equal(after.allocs, before.allocs);
	assert_int_equal(after.frames_free, before.frames_free);
}

static void test_two_machines_do_not_interfere(void **state)
{
	svakit_machine *a = *state;
	svakit_machine *b = machine_with(GIB_FRAMES, 5, SVAKIT_REUSE_FIFO, 0);
	struct svakit_stats sb = stats(b);
	uint64_t va, start, end;

	assert_int_equal(svakit_vmalloc(a, 8 * 4096, &va), 0);
	assert_int_equal(stats(b).step, sb.step);
	assert_int_equal(stats(b).allocs, sb.allocs);
	assert_int_equal(svakit_vmalloc_area(b, &start, &end), 0);
	assert_int_equal(start, 0xffa0000000000000ULL); /* b is 5-level */
	assert_int_equal(svakit_vmalloc_area(a, &start, &end), 0);
	assert_int_equal(start, 0xffffc90000000000ULL);
	svakit_machine_destroy(b);
	/* a still works after b is gone */
	assert_int_equal(svakit_vfree(a, va), 0);
}

/* One program: an mm, an IOMMU and an SVA device bound to the mm, a vmalloc
 * area freed again, a user mapping. What it saw goes in out[]. */
static void run_program(svakit_machine *m, uint64_t out[6])
{
	struct svakit_iommu_config ic;
	uint32_t mm, iommu, dev, bond;
	uint64_t va, root;

	assert_int_equal(svakit_mm_create(m, &mm), 0);
	svakit_iommu_config_default(&ic);
	assert_int_equal(svakit_iommu_create(m, &ic, &iommu), 0);
	assert_int_equal(svakit_device_create(m, iommu, SVAKIT_DEV_SVA, 20, &dev), 0);
	assert_int_equal(svakit_iommu_sva_bind_device(m, dev, mm, &bond), 0);
	assert_int_equal(svakit_vmalloc(m, 4 * 4096, &va), 0);
	assert_int_equal(svakit_vfree(m, va), 0);
	/* The last frame, which no allocation reaches: never a table. */
	assert_int_equal(svakit_mm_map(m, mm, 0x10000000, (GIB_FRAMES - 1) << 12, 4096, SVAKIT_PTE_RW), 0);
	assert_int_equal(svakit_mm_root(m, mm, &root), 0);
	out[0] = mm;
	out[1] = iommu;
	out[2] = dev;
	out[3] = bond;
	out[4] = va;
	out[5] = root;
}

/* A 1 GiB machine without the worker thread (reset needs it quiescent). */
static svakit_machine *manual_machine(void)
{
	struct svakit_config cfg;
	svakit_machine *m = NULL;

	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.work_mode = SVAKIT_WORK_MANUAL;
	assert_int_equal(svakit_machine_create(&cfg, &m), 0);
	return m;
}

/* svakit_machine_reset: the same handle, then everything a program sees is
 * what a new machine shows (ResetTests.swift compares every frame). */
static void test_reset_returns_to_boot(void **state)
{
	svakit_machine *used = manual_machine(), *fresh;
	struct svakit_stats boot, after;
	uint64_t first[6], again[6], onfresh[6];

	assert_int_equal(svakit_machine_counters(used, &boot), 0);
	run_program(used, first);
	assert_int_equal(svakit_machine_reset(used), 0);
	assert_int_equal(svakit_machine_counters(used, &after), 0);
	assert_memory_equal(&after, &boot, sizeof(boot));
	assert_int_equal(svakit_iommu_sva_present(used), 0);
	assert_int_equal(svakit_machine_check(used), 0);
	run_program(used, again);
	assert_memory_equal(again, first, sizeof(first));
	fresh = manual_machine();
	run_program(fresh, onfresh);
	assert_memory_equal(onfresh, first, sizeof(first));
	svakit_machine_destroy(fresh);
	svakit_machine_destroy(used);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_names_are_opt_in),
		cmocka_unit_test(test_version_matches_header),
		cmocka_unit_test(test_strerror_names_each_error),
		cmocka_unit_test(test_bad_configs_are_refused),
		cmocka_unit_test(test_null_handle_everywhere),
		cmocka_unit_test(test_foreign_handle_everywhere),
		cmocka_unit_test_setup_teardown(test_null_outputs_leave_machine_unchanged, setup_machine, teardown_machine),
		cmocka_unit_test_setup_teardown(test_two_machines_do_not_interfere, setup_machine, teardown_machine),
		cmocka_unit_test(test_reset_returns_to_boot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
