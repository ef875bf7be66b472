// SPDX-License-Identifier: Apache-2.0
/*
 * The mitigations of docs/MITIGATIONS.md through the C ABI
 * (svakit_config.mitigation): seed 000 under each one on each IOMMU
 * profile, with the unfixed kernel as the negative control; clear-us shown
 * not to stop the stale walk nor the A/D write into a freed table;
 * kpti-root's IOMMU-only root kept in sync with the user half and freed
 * with the mm; and where each design's invalidations happen (in the
 * freeing caller, in the deferred work, or nowhere).
 */
#include "harness.h"

static const uint64_t SECRET = 0x2121544552434553ULL; /* "SECRET!!" */

static svakit_machine *machine_mitigated(uint32_t mitigation, uint32_t free_mode, uint32_t levels)
{
	struct svakit_config cfg;
	svakit_machine *m = NULL;

	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.paging_levels = levels;
	cfg.work_mode = SVAKIT_WORK_MANUAL;
	cfg.free_mode = free_mode;
	cfg.mitigation = mitigation;
	assert_int_equal(svakit_machine_create(&cfg, &m), 0);
	return m;
}

struct sva {
	uint32_t iommu, dev, mm, handle, pasid;
};

static struct sva sva_setup(svakit_machine *m, uint32_t profile)
{
	struct svakit_iommu_config ic;
	struct sva s;

	svakit_iommu_config_default(&ic);
	ic.profile = profile;
	assert_int_equal(svakit_iommu_create(m, &ic, &s.iommu), 0);
	assert_int_equal(svakit_device_create(m, s.iommu, SVAKIT_DEV_SVA, 20, &s.dev), 0);
	assert_int_equal(svakit_mm_create(m, &s.mm), 0);
	assert_int_equal(svakit_iommu_sva_bind_device(m, s.dev, s.mm, &s.handle), 0);
	assert_int_equal(svakit_iommu_sva_get_pasid(m, s.handle, &s.pasid), 0);
	return s;
}

static uint64_t reports(svakit_machine *m)
{
	uint64_t n;

	assert_int_equal(svakit_report_count(m, &n), 0);
	return n;
}

static struct svakit_iommu_counters counters(svakit_machine *m, uint32_t iommu)
{
	struct svakit_iommu_counters c;

	assert_int_equal(svakit_iommu_counters(m, iommu, &c), 0);
	return c;
}

/*
 * Seed 000: the device touches a vmalloc address, vfree, a huge vmalloc
 * over it frees the PTE table (the deferred work runs, as the kworker
 * would), the attacker takes the freed frame and plants a user leaf to the
 * secret, the device touches the address again. Returns what the second
 * read returned; *got gets its bytes.
 */
static int seed000(svakit_machine *m, uint32_t profile, uint64_t *got, struct svakit_dma_fault *fault)
{
	struct sva s = sva_setup(m, profile);
	struct svakit_dma_fault first;
	uint64_t secret, va, huge, attacker, entry;

	assert_int_equal(svakit_frame_alloc(m, 0, 0x5ec, &secret), 0);
	assert_int_equal(svakit_frame_write(m, secret, 0, &SECRET, 8), 0);
	assert_int_equal(svakit_vmalloc(m, 4096, &va), 0);
	assert_int_equal(svakit_device_dma_read(m, s.dev, s.pasid, va, got, 8, 0, &first), SVAKIT_DMA_FAULTED);
	assert_int_equal(svakit_vfree(m, va), 0);
	assert_int_equal(svakit_vm_unmap_aliases(m), 0); /* the lazily freed range returns */
	assert_int_equal(svakit_vmalloc_huge(m, SVAKIT_PMD_SIZE, &huge), 0);
	assert_int_equal(huge, va);
	assert_int_equal(svakit_deferred_work_flush(m), 0);
	assert_int_equal(svakit_frame_alloc(m, 0, 0xbad, &attacker), 0);
	entry = (secret << 12) | SVAKIT_PTE_P | SVAKIT_PTE_RW | SVAKIT_PTE_US;
	assert_int_equal(svakit_frame_write(m, attacker, idx(va, 1) * 8, &entry, 8), 0);
	*got = 0;
	return svakit_device_dma_read(m, s.dev, s.pasid, va, got, 8, 0, fault);
}

/* What seed 000 must end with, by mitigation, on an IOMMU that walks the kernel half. */
enum outcome { EXPLOITED, STALE_WALK, CLEAN };

struct design {
	const char *name;
	uint32_t mitigation, free_mode;
	enum outcome x86;
};

static const struct design designs[] = {
	{ "none", SVAKIT_MITIGATION_NONE, SVAKIT_FREE_IMMEDIATE, EXPLOITED },
	{ "deferred-free/linux-6.19", SVAKIT_MITIGATION_DEFERRED_FREE, SVAKIT_FREE_LINUX_6_19, CLEAN },
	{ "deferred-free/complete", SVAKIT_MITIGATION_DEFERRED_FREE, SVAKIT_FREE_COMPLETE, CLEAN },
	{ "flush-on-kernel-tlb-flush", SVAKIT_MITIGATION_FLUSH_ON_KERNEL_TLB_FLUSH, SVAKIT_FREE_IMMEDIATE, CLEAN },
	{ "kpti-root", SVAKIT_MITIGATION_KPTI_ROOT, SVAKIT_FREE_IMMEDIATE, CLEAN },
	{ "clear-us", SVAKIT_MITIGATION_CLEAR_US, SVAKIT_FREE_IMMEDIATE, STALE_WALK },
};

static const uint32_t profiles[] = {
	SVAKIT_IOMMU_GENERIC, SVAKIT_IOMMU_VTD, SVAKIT_IOMMU_SMMUV3, SVAKIT_IOMMU_AMD, SVAKIT_IOMMU_RISCV,
};

static void test_seed000_under_every_design_and_profile(void **state)
{
	(void)state;
	for (size_t d = 0; d < sizeof(designs) / sizeof(designs[0]); d++) {
		for (size_t p = 0; p < sizeof(profiles) / sizeof(profiles[0]); p++) {
			svakit_machine *m = machine_mitigated(designs[d].mitigation, designs[d].free_mode, 4);
			struct svakit_dma_fault fault = { 0 };
			uint64_t got;
			int rc = seed000(m, profiles[p], &got, &fault);
			/* SMMUv3's EPD1: the kernel half is never walked. */
			enum outcome want = profiles[p] == SVAKIT_IOMMU_SMMUV3 ? CLEAN : designs[d].x86;

			print_message("%s on profile %u: rc %d, reports %llu\n", designs[d].name, profiles[p], rc,
				      (unsigned long long)reports(m));
			switch (want) {
			case EXPLOITED:
				assert_int_equal(rc, 0);
				assert_int_equal(got, SECRET);
				assert_int_equal(reports(m), 1);
				break;
			case STALE_WALK:
				assert_int_equal(rc, SVAKIT_DMA_FAULTED);
				assert_int_equal(fault.reason, SVAKIT_FAULT_PRIVILEGE); /* refused at the planted leaf */
				assert_int_equal(fault.level, 1);
				assert_int_not_equal(got, SECRET);
				assert_int_equal(reports(m), 1); /* ... after walking the freed table */
				break;
			case CLEAN:
				assert_int_equal(rc, SVAKIT_DMA_FAULTED);
				assert_int_not_equal(got, SECRET);
				assert_int_equal(reports(m), 0);
				break;
			}
			assert_machine_ok(m);
			svakit_machine_destroy(m);
		}
	}
}

/* The negative control: the unfixed kernel is exploited in every run. */
static void test_none_is_exploited_every_time(void **state)
{
	(void)state;
	for (int run = 0; run < 16; run++) {
		svakit_machine *m = machine_mitigated(SVAKIT_MITIGATION_NONE, SVAKIT_FREE_IMMEDIATE, 4);
		struct svakit_dma_fault fault;
		uint64_t got;

		assert_int_equal(seed000(m, run % 2 ? SVAKIT_IOMMU_VTD : SVAKIT_IOMMU_GENERIC, &got, &fault), 0);
		assert_int_equal(got, SECRET);
		svakit_machine_destroy(m);
	}
}

/*
 * clear-us and a freed PMD table: the device caches the PDPTE of a 1 GiB
 * region, a 1 GiB vmap frees the PTE and PMD tables, the attacker plants a
 * table pointer in the freed frames. A walk of another 2 MiB of the region
 * starts in the freed PMD frame and sets A in the planted entry, a write
 * into the freed frame, before it refuses the leaf.
 */
static void test_clear_us_leaves_the_ad_write(void **state)
{
	(void)state;
	svakit_machine *m = machine_mitigated(SVAKIT_MITIGATION_CLEAR_US, SVAKIT_FREE_IMMEDIATE, 4);
	struct sva s = sva_setup(m, SVAKIT_IOMMU_VTD);
	struct svakit_dma_fault fault;
	struct svakit_uaf_report r;
	uint64_t start, end, base, va, got, freed[2], table, secret, e, ptr;

	assert_int_equal(svakit_frame_alloc(m, 0, 0x5ec, &secret), 0);
	assert_int_equal(svakit_frame_write(m, secret, 0, &SECRET, 8), 0);
	assert_int_equal(svakit_vmalloc_area(m, &start, &end), 0);
	base = start + (12ULL << 30);
	va = base + (5ULL << 21) + (3ULL << 12);
	assert_int_equal(svakit_mm_map(m, 0, base, 0x1000, SVAKIT_PAGE_SIZE, SVAKIT_PTE_RW), 0);
	assert_int_equal(svakit_device_dma_read(m, s.dev, s.pasid, base, &got, 8, 0, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_PRIVILEGE);
	assert_int_equal(svakit_vunmap(m, base, SVAKIT_PAGE_SIZE), 0);
	assert_int_equal(svakit_vmap_huge(m, base, 0, SVAKIT_PUD_SIZE, SVAKIT_PTE_RW), 0);

	assert_int_equal(svakit_frame_alloc(m, 0, 0xbad, &freed[0]), 0);
	assert_int_equal(svakit_frame_alloc(m, 0, 0xbad, &freed[1]), 0);
	assert_int_equal(svakit_frame_alloc(m, 0, 0xbad, &table), 0);
	e = (secret << 12) | SVAKIT_PTE_P | SVAKIT_PTE_RW | SVAKIT_PTE_US;
	assert_int_equal(svakit_frame_write(m, table, idx(va, 1) * 8, &e, 8), 0);
	ptr = (table << 12) | SVAKIT_PTE_P | SVAKIT_PTE_RW | SVAKIT_PTE_US;
	for (int i = 0; i < 2; i++)
		assert_int_equal(svakit_frame_write(m, freed[i], idx(va, 2) * 8, &ptr, 8), 0);

	got = 0;
	assert_int_equal(svakit_device_dma_read(m, s.dev, s.pasid, va, &got, 8, 0, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_PRIVILEGE);
	assert_int_not_equal(got, SECRET);
	assert_int_equal(reports(m), 1);
	assert_int_equal(svakit_report_read(m, 0, &r, 1), 1);
	assert_true(r.corruption);
	assert_true(r.corrupted_frame == freed[0] || r.corrupted_frame == freed[1]);
	/* The A bit is in the attacker's frame now. */
	assert_int_equal(svakit_frame_read(m, r.corrupted_frame, idx(va, 2) * 8, &e, 8), 0);
	assert_int_equal(e, ptr | SVAKIT_PTE_A);
	svakit_machine_destroy(m);
}

/* clear-us: every kernel entry of every mm lacks U/S; user entries keep it. */
static void test_clear_us_kernel_entries(void **state)
{
	(void)state;
	svakit_machine *m = machine_mitigated(SVAKIT_MITIGATION_CLEAR_US, SVAKIT_FREE_IMMEDIATE, 4);
	struct sva s = sva_setup(m, SVAKIT_IOMMU_GENERIC);
	uint64_t kroot, root, data;

	assert_int_equal(svakit_mm_root(m, 0, &kroot), 0);
	assert_int_equal(svakit_mm_root(m, s.mm, &root), 0);
	for (unsigned i = 256; i < 512; i++) {
		assert_true(entry_of(m, kroot, i) & SVAKIT_PTE_P);
		assert_false(entry_of(m, kroot, i) & SVAKIT_PTE_US);
		assert_int_equal(entry_of(m, root, i), entry_of(m, kroot, i));
	}
	assert_int_equal(svakit_frame_alloc(m, 0, 1, &data), 0);
	assert_int_equal(svakit_mm_map(m, s.mm, 1ULL << 30, data << 12, SVAKIT_PAGE_SIZE, SVAKIT_PTE_RW | SVAKIT_PTE_US), 0);
	assert_true(entry_of(m, root, idx(1ULL << 30, 4)) & SVAKIT_PTE_US);
	assert_machine_ok(m);
	svakit_machine_destroy(m);
}

/*
 * kpti-root: a user region mapped after the bind, in a new top-level slot,
 * is visible to the device at once; the kernel half faults at the root;
 * destroying the mm frees the extra root with every frame accounted.
 */
static void kpti_root(unsigned levels)
{
	svakit_machine *m = machine_mitigated(SVAKIT_MITIGATION_KPTI_ROOT, SVAKIT_FREE_IMMEDIATE, levels);
	struct svakit_stats before, bound, after;
	struct svakit_dma_fault fault;
	struct sva s;
	uint64_t data, word = 0xfeed, got, far, kva;

	assert_int_equal(svakit_machine_stats(m, &before), 0);
	s = sva_setup(m, SVAKIT_IOMMU_VTD);
	assert_int_equal(svakit_machine_stats(m, &bound), 0);
	assert_int_equal(bound.user_tables, before.user_tables + 2); /* the mm's root and the IOMMU's */

	assert_int_equal(svakit_frame_alloc(m, 0, 1, &data), 0);
	assert_int_equal(svakit_frame_write(m, data, 0, &word, 8), 0);
	far = 3ULL << (12 + 9 * (levels - 1)); /* root entry 3 */
	assert_int_equal(svakit_mm_map(m, s.mm, far, data << 12, SVAKIT_PAGE_SIZE, SVAKIT_PTE_RW | SVAKIT_PTE_US), 0);
	got = 0;
	assert_int_equal(svakit_device_dma_read(m, s.dev, s.pasid, far, &got, 8, 0, &fault), 0);
	assert_int_equal(got, word);

	assert_int_equal(svakit_vmalloc(m, 4096, &kva), 0);
	assert_int_equal(svakit_device_dma_read(m, s.dev, s.pasid, kva, &got, 8, 0, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_NOT_PRESENT);
	assert_int_equal(fault.level, levels);
	assert_machine_ok(m);

	assert_int_equal(svakit_iommu_sva_unbind_device(m, s.handle), 0);
	assert_int_equal(svakit_mm_unmap(m, s.mm, far, SVAKIT_PAGE_SIZE), 0);
	assert_int_equal(svakit_mm_destroy(m, s.mm), 0);
	assert_int_equal(svakit_vfree(m, kva), 0);
	assert_int_equal(svakit_frame_free(m, data), 0);
	assert_int_equal(svakit_machine_stats(m, &after), 0);
	assert_int_equal(after.user_tables, before.user_tables);
	assert_machine_ok(m);
	svakit_machine_destroy(m);
}

static void test_kpti_root_4level(void **state)
{
	(void)state;
	kpti_root(4);
}

static void test_kpti_root_5level(void **state)
{
	(void)state;
	kpti_root(5);
}

/*
 * Where the invalidations happen: flush-on-kernel-tlb-flush fences in the
 * caller of every kernel TLB flush; deferred-free only when the work runs;
 * kpti-root never.
 */
static void test_where_the_invalidations_happen(void **state)
{
	(void)state;
	svakit_machine *m;
	struct sva s;
	uint64_t va, huge, start, end;
	uint64_t fences;

	m = machine_mitigated(SVAKIT_MITIGATION_FLUSH_ON_KERNEL_TLB_FLUSH, SVAKIT_FREE_IMMEDIATE, 4);
	s = sva_setup(m, SVAKIT_IOMMU_GENERIC);
	assert_int_equal(svakit_vmalloc_area(m, &start, &end), 0);
	fences = counters(m, s.iommu).fences;
	for (int i = 0; i < 3; i++)
		assert_int_equal(svakit_flush_tlb_kernel_range(m, start, start + SVAKIT_PAGE_SIZE), 0);
	assert_int_equal(counters(m, s.iommu).fences, fences + 3);
	svakit_machine_destroy(m);

	m = machine_mitigated(SVAKIT_MITIGATION_DEFERRED_FREE, SVAKIT_FREE_COMPLETE, 4);
	s = sva_setup(m, SVAKIT_IOMMU_GENERIC);
	assert_int_equal(svakit_vmalloc(m, 4096, &va), 0);
	fences = counters(m, s.iommu).fences;
	assert_int_equal(svakit_vfree(m, va), 0);
	assert_int_equal(svakit_vm_unmap_aliases(m), 0);
	assert_int_equal(svakit_vmalloc_huge(m, SVAKIT_PMD_SIZE, &huge), 0);
	assert_int_equal(counters(m, s.iommu).fences, fences); /* the freeing caller waited for nothing */
	assert_int_equal(svakit_deferred_work_flush(m), 0);
	assert_int_equal(counters(m, s.iommu).fences, fences + 1);
	svakit_machine_destroy(m);

	m = machine_mitigated(SVAKIT_MITIGATION_KPTI_ROOT, SVAKIT_FREE_IMMEDIATE, 4);
	s = sva_setup(m, SVAKIT_IOMMU_GENERIC);
	assert_int_equal(svakit_vmalloc(m, 4096, &va), 0);
	fences = counters(m, s.iommu).fences;
	assert_int_equal(svakit_vfree(m, va), 0);
	assert_int_equal(svakit_vm_unmap_aliases(m), 0);
	assert_int_equal(svakit_vmalloc_huge(m, SVAKIT_PMD_SIZE, &huge), 0);
	assert_int_equal(svakit_deferred_work_flush(m), 0);
	assert_int_equal(counters(m, s.iommu).fences, fences);
	assert_int_equal(counters(m, s.iommu).range_invalidations, 0);
	svakit_machine_destroy(m);
}

/* A mitigation that disagrees with free_mode or kva_invalidation is refused. */
static void test_config_refusals(void **state)
{
	(void)state;
	static const struct {
		uint32_t mitigation, free_mode, kva;
		int rc;
	} rows[] = {
		{ 6, SVAKIT_FREE_IMMEDIATE, SVAKIT_KVA_INV_NONE, -EINVAL },
		{ SVAKIT_MITIGATION_NONE, SVAKIT_FREE_COMPLETE, SVAKIT_KVA_INV_NONE, -EINVAL },
		{ SVAKIT_MITIGATION_NONE, SVAKIT_FREE_IMMEDIATE, SVAKIT_KVA_INV_ON_FLUSH, -EINVAL },
		{ SVAKIT_MITIGATION_DEFERRED_FREE, SVAKIT_FREE_LINUX_6_19, SVAKIT_KVA_INV_ON_FLUSH, -EINVAL },
		{ SVAKIT_MITIGATION_FLUSH_ON_KERNEL_TLB_FLUSH, SVAKIT_FREE_LINUX_6_19, SVAKIT_KVA_INV_NONE, -EINVAL },
		{ SVAKIT_MITIGATION_KPTI_ROOT, SVAKIT_FREE_COMPLETE, SVAKIT_KVA_INV_NONE, -EINVAL },
		{ SVAKIT_MITIGATION_CLEAR_US, SVAKIT_FREE_IMMEDIATE, SVAKIT_KVA_INV_ON_FLUSH, -EINVAL },
		{ SVAKIT_MITIGATION_BY_MODE, SVAKIT_FREE_COMPLETE, SVAKIT_KVA_INV_ON_FLUSH, 0 },
		{ SVAKIT_MITIGATION_DEFERRED_FREE, SVAKIT_FREE_IMMEDIATE, SVAKIT_KVA_INV_NONE, 0 },
		{ SVAKIT_MITIGATION_FLUSH_ON_KERNEL_TLB_FLUSH, SVAKIT_FREE_IMMEDIATE, SVAKIT_KVA_INV_ON_FLUSH, 0 },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct svakit_config cfg;
		svakit_machine *m = NULL;
		int rc;

		svakit_config_default(&cfg);
		cfg.frames = GIB_FRAMES;
		cfg.mitigation = rows[i].mitigation;
		cfg.free_mode = rows[i].free_mode;
		cfg.kva_invalidation = rows[i].kva;
		rc = svakit_machine_create(&cfg, &m);
		print_message("row %zu: %d\n", i, rc);
		assert_int_equal(rc, rows[i].rc);
		if (rc == 0)
			svakit_machine_destroy(m);
		else
			assert_null(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed000_under_every_design_and_profile),
		cmocka_unit_test(test_none_is_exploited_every_time),
		cmocka_unit_test(test_clear_us_leaves_the_ad_write),
		cmocka_unit_test(test_clear_us_kernel_entries),
		cmocka_unit_test(test_kpti_root_4level),
		cmocka_unit_test(test_kpti_root_5level),
		cmocka_unit_test(test_where_the_invalidations_happen),
		cmocka_unit_test(test_config_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
