/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IOMMU_DEBUG_PAGEALLOC from C, as a driver and the page allocator meet it
 * (docs/KERNEL-MODEL.md §5): a page freed while an IOMMU mapping still
 * counts it is reported ("iommu: Detected page leak!") with its page owner;
 * an unmap before the free is silent; the lazy window is seen only by the
 * window-aware mode; MMIO is skipped; the gate is a constant 0 with the key
 * off. The report handler only records (harness.h: no assertion in a
 * callback); the tests assert after the call that made the report.
 */
#define SVAKIT_KERNEL_NAMES
#include "harness.h"

#define OWNER_DRIVER 0xd1
#define IOVA 0x40000000ULL
#define SZ_4K 0x1000ULL

struct rig {
	svakit_machine *m;
	uint32_t iommu, domain, dev;
	int reports;
	struct svakit_uaf_report last;
	char text[1024];
};

static void record_report(void *ctx, const struct svakit_uaf_report *r, const char *text)
{
	struct rig *g = ctx;

	g->reports++;
	g->last = *r;
	snprintf(g->text, sizeof(g->text), "%s", text);
}

/* A build without the sanitizer (-DSVAKIT_IOMMU_DEBUG_PAGEALLOC=OFF): a
 * machine asking for it is refused, the gates are constant 0, and the rest
 * of the suite is skipped. */
static void test_compiled_out_refuses_the_sanitizer(void **state)
{
	struct svakit_config cfg;
	svakit_machine *m = NULL;

	(void)state;
	if (svakit_iommu_debug_pagealloc_built())
		skip();
	assert_int_equal(SVAKIT_CONFIG_IOMMU_DEBUG_PAGEALLOC, 0);
	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.iommu_debug_pagealloc = SVAKIT_IOMMU_DEBUG_LINUX;
	assert_int_equal(svakit_machine_create(&cfg, &m), -EOPNOTSUPP);
	assert_null(m);
	cfg.iommu_debug_pagealloc = SVAKIT_IOMMU_DEBUG_OFF;
	assert_int_equal(svakit_machine_create(&cfg, &m), 0);
	assert_false(svakit_iommu_debug_pagealloc_enabled(m));
	assert_int_equal(svakit_iommu_debug_check_unmapped(m, 0, 1), 0);
	svakit_machine_destroy(m);
}

static struct rig *rig_new(uint32_t mode, uint32_t strict)
{
	struct svakit_config cfg;
	struct svakit_iommu_config icfg;
	struct rig *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	svakit_iommu_config_default(&icfg);
	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.work_mode = SVAKIT_WORK_MANUAL;
	cfg.dma_strict = strict;
	cfg.iommu_debug_pagealloc = mode;
	assert_int_equal(svakit_machine_create(&cfg, &g->m), 0);
	assert_int_equal(svakit_iommu_create(g->m, &icfg, &g->iommu), 0);
	assert_int_equal(svakit_iommu_domain_alloc(g->m, g->iommu, SVAKIT_DOMAIN_DMA, 0, &g->domain), 0);
	assert_int_equal(svakit_device_create(g->m, g->iommu, 0, 8, &g->dev), 0);
	assert_int_equal(svakit_iommu_setup_default_domain(g->m, g->dev, 0, &g->domain, &(uint32_t){ 0 }), 0);
	assert_int_equal(svakit_machine_set_report_handler(g->m, record_report, g), 0);
	return g;
}

/* In a build without the sanitizer each setup leaves *state NULL and its
 * test skips itself (cmocka counts a skip in a setup as a failure). */
#define SETUP(name, mode, strict)                                               \
	static int name(void **state)                                           \
	{                                                                       \
		*state = !svakit_iommu_debug_pagealloc_built() && (mode) != SVAKIT_IOMMU_DEBUG_OFF \
				 ? NULL : rig_new((mode), (strict));            \
		return 0;                                                       \
	}
SETUP(setup_linux, SVAKIT_IOMMU_DEBUG_LINUX, 1)
SETUP(setup_fast, SVAKIT_IOMMU_DEBUG_FAST, 1)
SETUP(setup_linux_lazy, SVAKIT_IOMMU_DEBUG_LINUX, 0)
SETUP(setup_window_lazy, SVAKIT_IOMMU_DEBUG_WINDOW, 0)
SETUP(setup_off, SVAKIT_IOMMU_DEBUG_OFF, 1)

static int teardown_rig(void **state)
{
	struct rig *g = *state;

	if (!g)
		return 0;
	assert_machine_ok(g->m);
	svakit_machine_destroy(g->m);
	free(g);
	return 0;
}

/* The test's rig; skips the test in a build without the sanitizer. */
static struct rig *rig_of(void **state)
{
	if (!*state)
		skip();
	return *state;
}

static int32_t map_count(struct rig *g, uint64_t pfn)
{
	int32_t c = -1;

	assert_int_equal(svakit_iommu_debug_map_count(g->m, pfn, &c), 0);
	return c;
}

/* The key is in the handle and the gate is the header's inline. */
static void test_the_key_is_on_from_boot(void **state)
{
	struct rig *g = rig_of(state);

	struct svakit_stats st;

	assert_int_equal(svakit_iommu_debug_pagealloc_built(), 1);
	assert_true(svakit_iommu_debug_pagealloc_enabled(g->m));
	/* page_ext, only when on: the 4-byte count and the 4-byte "mapped since". */
	assert_int_equal(svakit_machine_stats(g->m, &st), 0);
	assert_int_equal(st.metadata_bytes_per_frame, 40);
}

static void test_the_key_off_checks_nothing(void **state)
{
	struct rig *g = rig_of(state);
	struct svakit_iommu_debug_stats st;
	uint64_t pfn, dma;

	struct svakit_stats ms;

	assert_false(svakit_iommu_debug_pagealloc_enabled(g->m));
	assert_int_equal(svakit_machine_stats(g->m, &ms), 0);
	assert_int_equal(ms.metadata_bytes_per_frame, 32);
	assert_int_equal(svakit_iommu_debug_stats(g->m, &st), -ENODEV);
	assert_int_equal(svakit_frame_alloc(g->m, 0, OWNER_DRIVER, &pfn), 0);
	assert_int_equal(svakit_dma_map_page(g->m, g->dev, pfn << 12, SZ_4K, SVAKIT_DMA_TO_DEVICE, 0, &dma), 0);
	/* The buggy free goes unseen: the negative control of the next test. */
	assert_int_equal(svakit_frame_free(g->m, pfn), 0);
	assert_int_equal(g->reports, 0);
	assert_int_equal(svakit_iommu_debug_check_unmapped(g->m, pfn, 1), 0);
}

/* The driver frees a page it still has mapped: reported at the free, with
 * the page owner and the domain and IOVA that map it. */
static void test_free_while_mapped_is_reported(void **state)
{
	struct rig *g = rig_of(state);
	uint64_t pfn, dma;
	struct svakit_iommu_debug_stats st;

	assert_int_equal(svakit_frame_alloc(g->m, 0, OWNER_DRIVER, &pfn), 0);
	assert_int_equal(svakit_dma_map_page(g->m, g->dev, pfn << 12, SZ_4K, SVAKIT_DMA_TO_DEVICE, 0, &dma), 0);
	assert_int_equal(map_count(g, pfn), 1);
	assert_int_equal(svakit_frame_free(g->m, pfn), 0);
	assert_int_equal(g->reports, 1);
	assert_int_equal(g->last.kind, SVAKIT_REPORT_LEAK_AT_FREE);
	assert_int_equal(g->last.frame, pfn);
	assert_int_equal(g->last.map_count, 1);
	assert_int_equal(g->last.domain, g->domain);
	assert_int_equal(g->last.iova, dma);
	assert_int_equal(g->last.alloc_owner, OWNER_DRIVER);
	assert_int_equal(g->last.alloc_site, SVAKIT_SITE_API);
	assert_true(g->last.mapped_step != UINT64_MAX);
	assert_non_null(strstr(g->text, "iommu: Detected page leak!"));
	assert_int_equal(svakit_iommu_debug_stats(g->m, &st), 0);
	assert_int_equal(st.leaks, 1);
	/* The explicit check says the same, and reports again. */
	assert_int_equal(svakit_iommu_debug_check_unmapped(g->m, pfn, 1), 1);
	assert_int_equal(g->last.kind, SVAKIT_REPORT_LEAK_AT_CHECK);
	assert_int_equal(svakit_dma_unmap_page(g->m, g->dev, dma, SZ_4K, SVAKIT_DMA_TO_DEVICE, 0), 0);
	assert_int_equal(map_count(g, pfn), 0);
}

/* Unmap, then free: silent, every count back to zero. */
static void test_unmap_then_free_is_silent(void **state)
{
	struct rig *g = rig_of(state);
	uint64_t pfn, dma;
	struct svakit_iommu_debug_stats st;

	assert_int_equal(svakit_frame_alloc(g->m, 4, OWNER_DRIVER, &pfn), 0);
	assert_int_equal(svakit_dma_map_page(g->m, g->dev, pfn << 12, 16 * SZ_4K, SVAKIT_DMA_BIDIRECTIONAL, 0, &dma), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(map_count(g, pfn + i), 1);
	assert_int_equal(svakit_dma_unmap_page(g->m, g->dev, dma, 16 * SZ_4K, SVAKIT_DMA_BIDIRECTIONAL, 0), 0);
	assert_int_equal(svakit_frame_free(g->m, pfn), 0);
	assert_int_equal(g->reports, 0);
	assert_int_equal(svakit_iommu_debug_stats(g->m, &st), 0);
	assert_int_equal(st.raised, 16);
	assert_int_equal(st.lowered, 16);
	assert_int_equal(st.underflows, 0);
}

/* Seed 003's window: a free right after a lazy unmap. Linux's sanitizer
 * lowered the count at the unmap and is silent; the window-aware mode
 * keeps it until the flush and reports the free. */
static void lazy_free(struct rig *g, int expected)
{
	uint64_t pfn, dma;

	assert_int_equal(svakit_frame_alloc(g->m, 0, OWNER_DRIVER, &pfn), 0);
	assert_int_equal(svakit_dma_map_page(g->m, g->dev, pfn << 12, SZ_4K, SVAKIT_DMA_FROM_DEVICE, 0, &dma), 0);
	assert_int_equal(svakit_dma_unmap_page(g->m, g->dev, dma, SZ_4K, SVAKIT_DMA_FROM_DEVICE, 0), 0);
	assert_int_equal(map_count(g, pfn), expected);
	assert_int_equal(svakit_frame_free(g->m, pfn), 0);
	assert_int_equal(g->reports, expected);
	assert_int_equal(svakit_dma_flush_queues(g->m), 0);
	assert_int_equal(map_count(g, pfn), 0);
}

static void test_lazy_window_linux_is_silent(void **state) { lazy_free(rig_of(state), 0); }

static void test_lazy_window_window_aware_reports(void **state)
{
	struct rig *g = rig_of(state);

	lazy_free(g, 1);
	assert_int_equal(g->last.kind, SVAKIT_REPORT_LEAK_AT_FREE);
	assert_int_equal(g->last.domain, g->domain);
	assert_non_null(strstr(g->text, "has not finished"));
}

/* A peer's BAR mapped for peer-to-peer: no frame, skipped, nothing lost. */
static void test_mmio_is_skipped(void **state)
{
	struct rig *g = rig_of(state);
	uint32_t d;
	uint64_t unmapped;
	struct svakit_iommu_debug_stats st;

	assert_int_equal(svakit_iommu_domain_alloc(g->m, g->iommu, SVAKIT_DOMAIN_DMA, 0, &d), 0);
	assert_int_equal(iommu_map(g->m, d, IOVA, SVAKIT_MMIO_BASE, 4 * SZ_4K, SVAKIT_IOMMU_READ | SVAKIT_IOMMU_WRITE), 0);
	assert_int_equal(iommu_unmap(g->m, d, IOVA, 4 * SZ_4K, &unmapped), 0);
	assert_int_equal(unmapped, 4 * SZ_4K);
	assert_int_equal(svakit_iommu_debug_stats(g->m, &st), 0);
	assert_int_equal(st.skipped, 8);
	assert_int_equal(st.raised, 0);
	assert_int_equal(st.underflows, 0);
	/* Past the window: refused as before. */
	assert_int_equal(iommu_map(g->m, d, IOVA, SVAKIT_MMIO_BASE + SVAKIT_MMIO_SIZE, SZ_4K, SVAKIT_IOMMU_READ),
			 -ERANGE);
	assert_int_equal(svakit_iommu_domain_free(g->m, d), 0);
}

/* An unmap cutting into a 2 MiB leaf removes it whole (warned once). The
 * fast mode lowers exactly what went; Linux's leaves the other 511 frames
 * counted, and reports each of them when the block is freed. */
static void cut_leaf(struct rig *g, int expected_reports)
{
	uint32_t d;
	uint64_t pfn, unmapped;
	struct svakit_iommu_debug_stats st;

	assert_int_equal(svakit_iommu_domain_alloc(g->m, g->iommu, SVAKIT_DOMAIN_DMA, 0, &d), 0);
	assert_int_equal(svakit_frame_alloc(g->m, 9, OWNER_DRIVER, &pfn), 0);
	assert_int_equal(iommu_map(g->m, d, IOVA, pfn << 12, 512 * SZ_4K, SVAKIT_IOMMU_READ), 0);
	assert_int_equal(iommu_unmap(g->m, d, IOVA, SZ_4K, &unmapped), 0);
	assert_int_equal(unmapped, 512 * SZ_4K);
	assert_int_equal(svakit_iommu_debug_stats(g->m, &st), 0);
	assert_int_equal(st.unmapped_more, 1);
	assert_int_equal(svakit_frame_free(g->m, pfn), 0);
	assert_int_equal(g->reports, expected_reports);
	assert_int_equal(svakit_iommu_domain_free(g->m, d), 0);
}

static void test_cut_leaf_linux_leaves_counts(void **state) { cut_leaf(rig_of(state), 511); }
static void test_cut_leaf_fast_is_exact(void **state) { cut_leaf(rig_of(state), 0); }

/* Bad input through the gate with the key on: clear errnos, nothing counted. */
static void test_bad_check_ranges(void **state)
{
	struct rig *g = rig_of(state);
	struct svakit_stats before, after;

	assert_int_equal(svakit_machine_stats(g->m, &before), 0);
	assert_int_equal(svakit_iommu_debug_check_unmapped(g->m, 0, 0), -EINVAL);
	assert_int_equal(svakit_iommu_debug_check_unmapped(g->m, GIB_FRAMES, 1), -ERANGE);
	assert_int_equal(svakit_iommu_debug_check_unmapped(g->m, GIB_FRAMES - 1, 2), -ERANGE);
	assert_int_equal(svakit_iommu_debug_check_unmapped(g->m, 0, UINT64_MAX), -ERANGE);
	assert_int_equal(svakit_iommu_debug_check_unmapped(g->m, 0, GIB_FRAMES), 0);
	assert_int_equal(svakit_machine_stats(g->m, &after), 0);
	assert_int_equal(after.frames_free, before.frames_free);
	assert_int_equal(g->reports, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compiled_out_refuses_the_sanitizer),
		cmocka_unit_test_setup_teardown(test_the_key_is_on_from_boot, setup_linux, teardown_rig),
		cmocka_unit_test_setup_teardown(test_the_key_off_checks_nothing, setup_off, teardown_rig),
		cmocka_unit_test_setup_teardown(test_free_while_mapped_is_reported, setup_linux, teardown_rig),
		cmocka_unit_test_setup_teardown(test_free_while_mapped_is_reported, setup_fast, teardown_rig),
		cmocka_unit_test_setup_teardown(test_unmap_then_free_is_silent, setup_linux, teardown_rig),
		cmocka_unit_test_setup_teardown(test_unmap_then_free_is_silent, setup_fast, teardown_rig),
		cmocka_unit_test_setup_teardown(test_lazy_window_linux_is_silent, setup_linux_lazy, teardown_rig),
		cmocka_unit_test_setup_teardown(test_lazy_window_window_aware_reports, setup_window_lazy, teardown_rig),
		cmocka_unit_test_setup_teardown(test_mmio_is_skipped, setup_fast, teardown_rig),
		cmocka_unit_test_setup_teardown(test_cut_leaf_linux_leaves_counts, setup_linux, teardown_rig),
		cmocka_unit_test_setup_teardown(test_cut_leaf_fast_is_exact, setup_fast, teardown_rig),
		cmocka_unit_test_setup_teardown(test_bad_check_ranges, setup_fast, teardown_rig),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
