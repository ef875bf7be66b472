/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The 0.5 names still work in 0.6 (include/svakit_deprecated.h; removed in
 * 0.7.0): each call below goes through an old name and is checked against
 * the new one on the same machine. Built with -Wno-deprecated-declarations;
 * the ctest test_deprecated_warns compiles this file with the warning on and
 * checks that it names the replacement.
 */
#include "harness.h"
#include "svakit_debug.h"

#define OWNER 7
#define UVA 0x10000000ULL
#define IOVA 0x40000000ULL

static void test_page_tables_through_the_old_names(void **state)
{
	svakit_machine *m = *state;
	struct svakit_translation t_old, t_new;
	uint64_t pfn, table, entry_old = 0, entry_new = 1;
	uint32_t mm;

	assert_int_equal(svakit_mm_create(m, &mm), 0);
	assert_int_equal(svakit_frame_alloc(m, 0, OWNER, &pfn), 0);
	assert_int_equal(svakit_map(m, mm, UVA, pfn << SVAKIT_PAGE_SHIFT, SVAKIT_PAGE_SIZE,
				    SVAKIT_PTE_RW | SVAKIT_PTE_US), 0);
	assert_int_equal(svakit_translate(m, mm, UVA + 8, &t_old), 0);
	assert_int_equal(svakit_mm_translate(m, mm, UVA + 8, &t_new), 0);
	assert_memory_equal(&t_old, &t_new, sizeof(t_old));
	assert_int_equal(t_old.phys, (pfn << SVAKIT_PAGE_SHIFT) + 8);
	assert_int_equal(svakit_unmap(m, mm, UVA, SVAKIT_PAGE_SIZE), 0);
	assert_int_equal(svakit_translate(m, mm, UVA, &t_old), -ENOENT);

	/* The arch primitives: write an entry, read it back both ways. */
	assert_int_equal(svakit_pagetable_alloc_kernel(m, 1, &table), 0);
	assert_int_equal(svakit_write_entry(m, table, 3, (pfn << SVAKIT_PAGE_SHIFT) | SVAKIT_PTE_P), 0);
	assert_int_equal(svakit_read_entry(m, table, 3, &entry_old), 0);
	assert_int_equal(svakit_pagetable_read_entry(m, table, 3, &entry_new), 0);
	assert_int_equal(entry_old, entry_new);
	assert_int_equal(entry_old, (pfn << SVAKIT_PAGE_SHIFT) | SVAKIT_PTE_P);
	assert_int_equal(svakit_write_entry(m, table, 3, 0), 0);
	assert_int_equal(svakit_pagetable_free(m, table), 0);

	assert_int_equal(svakit_mm_destroy(m, mm), 0);
	assert_int_equal(svakit_frame_free(m, pfn), 0);
	assert_machine_ok(m);
}

static void test_iommu_api_through_the_old_names(void **state)
{
	svakit_machine *m = *state;
	struct svakit_iommu_config icfg;
	struct svakit_dma_fault fault;
	uint32_t iommu, dev, dom;
	uint64_t pfn, phys, word = 0x5a5a, got = 0, n;

	svakit_iommu_config_default(&icfg);
	assert_int_equal(svakit_iommu_create(m, &icfg, &iommu), 0);
	assert_int_equal(svakit_device_create(m, iommu, 0, 8, &dev), 0);
	assert_int_equal(svakit_domain_alloc(m, iommu, SVAKIT_DOMAIN_DMA, 0, &dom), 0);
	assert_int_equal(svakit_attach_device(m, dom, dev), 0);
	assert_int_equal(svakit_frame_alloc(m, 0, OWNER, &pfn), 0);
	assert_int_equal(svakit_frame_write(m, pfn, 0, &word, sizeof(word)), 0);
	assert_int_equal(svakit_iommu_map(m, dom, IOVA, pfn << SVAKIT_PAGE_SHIFT, SVAKIT_PAGE_SIZE,
					  SVAKIT_IOMMU_READ), 0);
	assert_int_equal(svakit_iommu_iova_to_phys(m, dom, IOVA, &phys), 0);
	assert_int_equal(phys, pfn << SVAKIT_PAGE_SHIFT);
	assert_int_equal(svakit_dma_read(m, dev, 0, IOVA, &got, sizeof(got), 0, &fault), 0);
	assert_int_equal(got, word);
	assert_int_equal(svakit_iommu_unmap(m, dom, IOVA, SVAKIT_PAGE_SIZE, &n), 0);
	assert_int_equal(svakit_domain_free(m, dom), -EBUSY);
	assert_int_equal(svakit_detach_device(m, dev), 0);
	assert_int_equal(svakit_domain_free(m, dom), 0);
	assert_int_equal(svakit_frame_free(m, pfn), 0);
	assert_machine_ok(m);
}

static void test_logs_and_hooks_through_the_old_names(void **state)
{
	svakit_machine *m = *state;
	struct svakit_event ev_old[4], ev_new[4];
	struct svakit_uaf_report r;
	int n_old, n_new;

	assert_int_equal(svakit_set_report_handler(m, NULL, NULL), 0);
	assert_int_equal(svakit_set_free_hook(m, NULL, NULL), 0);
	assert_int_equal(svakit_set_tlb_flush_hook(m, NULL, NULL), 0);
	assert_int_equal(svakit_flush_deferred_work(m), 0);
	n_old = svakit_events(m, 0, ev_old, 4);
	n_new = svakit_event_read(m, 0, ev_new, 4);
	assert_true(n_old > 0);
	assert_int_equal(n_old, n_new);
	assert_memory_equal(ev_old, ev_new, (size_t)n_old * sizeof(ev_old[0]));
	assert_int_equal(svakit_reports(m, 0, &r, 1), 0); /* no report made */
	assert_machine_ok(m);
}

static void test_run_deferred_work_through_the_old_name(void **state)
{
	struct svakit_config cfg;
	svakit_machine *m;

	(void)state;
	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.work_mode = SVAKIT_WORK_MANUAL;
	assert_int_equal(svakit_machine_create(&cfg, &m), 0);
	assert_true(svakit_run_deferred_work(m) >= 0);
	assert_machine_ok(m);
	svakit_machine_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_page_tables_through_the_old_names, setup_machine,
						teardown_machine),
		cmocka_unit_test_setup_teardown(test_iommu_api_through_the_old_names, setup_machine,
						teardown_machine),
		cmocka_unit_test_setup_teardown(test_logs_and_hooks_through_the_old_names, setup_machine,
						teardown_machine),
		cmocka_unit_test(test_run_deferred_work_through_the_old_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
