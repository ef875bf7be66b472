// SPDX-License-Identifier: Apache-2.0
/*
 * The SVA registry, its static key and the kernel-address invalidation gate,
 * through the C ABI and the kernel names, and seed 000 (Jann Horn's
 * sequence) both ways: the unfixed kernel is exploitable and the oracle says
 * so; with the invalidation on the CPU flush the walk faults cleanly.
 */
#define SVAKIT_KERNEL_NAMES /* iommu_sva_bind_device() and friends */
#include "harness.h"

struct sva_fixture {
	svakit_machine *m;
	uint32_t iommu[2], dev[3], plain, mm[3];
};

static int setup_sva(void **state)
{
	struct sva_fixture *f = calloc(1, sizeof(*f));
	struct svakit_iommu_config ic;

	f->m = machine_with(GIB_FRAMES, 4, SVAKIT_REUSE_LIFO, 0);
	svakit_iommu_config_default(&ic);
	for (int i = 0; i < 2; i++)
		assert_int_equal(svakit_iommu_create(f->m, &ic, &f->iommu[i]), 0);
	assert_int_equal(svakit_device_create(f->m, f->iommu[0], SVAKIT_DEV_SVA, 20, &f->dev[0]), 0);
	assert_int_equal(svakit_device_create(f->m, f->iommu[0], SVAKIT_DEV_SVA, 20, &f->dev[1]), 0);
	assert_int_equal(svakit_device_create(f->m, f->iommu[1], SVAKIT_DEV_SVA, 20, &f->dev[2]), 0);
	assert_int_equal(svakit_device_create(f->m, f->iommu[1], 0, 20, &f->plain), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(svakit_mm_create(f->m, &f->mm[i]), 0);
	*state = f;
	return 0;
}

static int teardown_sva(void **state)
{
	struct sva_fixture *f = *state;
	svakit_machine_destroy(f->m);
	free(f);
	return 0;
}

static struct svakit_iommu_counters counters(svakit_machine *m, uint32_t iommu)
{
	struct svakit_iommu_counters c;
	assert_int_equal(svakit_iommu_counters(m, iommu, &c), 0);
	return c;
}

static void test_key_follows_the_sva_list(void **state)
{
	struct sva_fixture *f = *state;
	uint32_t h0, h1, h2, again, n;

	assert_false(svakit_iommu_sva_present(f->m));
	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[0], f->mm[0], &h0), 0);
	assert_true(svakit_iommu_sva_present(f->m)); /* the first bind turns it on */
	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[1], f->mm[0], &h1), 0);
	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[2], f->mm[1], &h2), 0);
	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[0], f->mm[0], &again), 0);
	assert_int_equal(again, h0); /* same (dev, mm): same handle, count raised */
	assert_int_equal(svakit_iommu_sva_mm_count(f->m, &n), 0);
	assert_int_equal(n, 2);

	assert_int_equal(iommu_sva_unbind_device(f->m, h0), 0);
	assert_int_equal(iommu_sva_unbind_device(f->m, h0), 0);
	assert_int_equal(iommu_sva_unbind_device(f->m, h0), -ESTALE); /* released */
	assert_int_equal(iommu_sva_unbind_device(f->m, h2), 0);
	assert_true(svakit_iommu_sva_present(f->m)); /* mm[0] still bound through dev[1] */
	assert_int_equal(iommu_sva_unbind_device(f->m, h1), 0);
	assert_false(svakit_iommu_sva_present(f->m)); /* the last unbind turns it off */
	assert_int_equal(svakit_iommu_sva_mm_count(f->m, &n), 0);
	assert_int_equal(n, 0);
}

static void test_pasid_per_mm(void **state)
{
	struct sva_fixture *f = *state;
	uint32_t h0, h1, p0, p1, p0b;

	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[0], f->mm[0], &h0), 0);
	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[2], f->mm[1], &h1), 0);
	assert_int_equal(iommu_sva_get_pasid(f->m, h0, &p0), 0);
	assert_int_equal(iommu_sva_get_pasid(f->m, h1, &p1), 0);
	assert_int_not_equal(p0, p1);
	assert_int_equal(iommu_sva_unbind_device(f->m, h0), 0);
	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[1], f->mm[0], &h0), 0);
	assert_int_equal(iommu_sva_get_pasid(f->m, h0, &p0b), 0);
	assert_int_equal(p0b, p0); /* one PASID for the mm's whole life */
	assert_int_equal(svakit_mm_destroy(f->m, f->mm[0]), -EBUSY); /* still bound */
}

static void test_bind_errors(void **state)
{
	(void)state;
	struct svakit_config cfg;
	struct svakit_iommu_config ic;
	svakit_machine *m;
	uint32_t iommu, dev, narrow, plain, mm[4], h, p;

	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.pasid_bits = 2; /* PASIDs 1..3 */
	assert_int_equal(svakit_machine_create(&cfg, &m), 0);
	svakit_iommu_config_default(&ic);
	assert_int_equal(svakit_iommu_create(m, &ic, &iommu), 0);
	assert_int_equal(svakit_device_create(m, iommu, SVAKIT_DEV_SVA, 20, &dev), 0);
	assert_int_equal(svakit_device_create(m, iommu, SVAKIT_DEV_SVA, 1, &narrow), 0);
	assert_int_equal(svakit_device_create(m, iommu, 0, 20, &plain), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(svakit_mm_create(m, &mm[i]), 0);

	assert_int_equal(iommu_sva_bind_device(m, plain, mm[0], &h), -EOPNOTSUPP);
	assert_int_equal(iommu_sva_bind_device(m, 99, mm[0], &h), -ENODEV);
	assert_int_equal(iommu_sva_bind_device(m, dev, 99, &h), -ESRCH);
	assert_int_equal(iommu_sva_bind_device(m, dev, mm[0], NULL), -EFAULT);
	assert_int_equal(iommu_sva_bind_device(m, dev, mm[0], &h), 0);        /* PASID 1 */
	assert_int_equal(iommu_sva_bind_device(m, dev, mm[1], &h), 0);        /* PASID 2 */
	assert_int_equal(iommu_sva_get_pasid(m, h, &p), 0);
	assert_int_equal(p, 2);
	assert_int_equal(iommu_sva_bind_device(m, narrow, mm[1], &h), -EOVERFLOW);
	assert_int_equal(svakit_iommu_attach_device_pasid(m, dev, 3, mm[3]), 0); /* an iommufd-style PASID */
	assert_int_equal(iommu_sva_bind_device(m, dev, mm[2], &h), -EBUSY);   /* mm[2] got PASID 3 */
	assert_int_equal(iommu_sva_bind_device(m, dev, mm[3], &h), -ENOSPC);  /* 1..3 taken */
	assert_int_equal(iommu_sva_unbind_device(m, 12345), -ESTALE);
	assert_int_equal(svakit_device_create(m, 9, SVAKIT_DEV_SVA, 20, &h), -ENODEV);
	assert_int_equal(svakit_device_create(m, iommu, 0x80, 20, &h), -EINVAL);
	assert_machine_ok(m);
	svakit_machine_destroy(m);
}

static void test_gate_reaches_exactly_the_bound_pasids(void **state)
{
	struct sva_fixture *f = *state;
	struct svakit_iommu_counters a0 = counters(f->m, f->iommu[0]), b0 = counters(f->m, f->iommu[1]);
	uint32_t h;

	/* Key off: the gate costs a load and no IOMMU hears anything. */
	iommu_sva_invalidate_kva_range(f->m, 0xffff888000000000ULL, UINT64_MAX);
	assert_int_equal(counters(f->m, f->iommu[0]).range_invalidations, a0.range_invalidations);
	assert_int_equal(counters(f->m, f->iommu[1]).range_invalidations, b0.range_invalidations);

	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[0], f->mm[0], &h), 0);
	assert_int_equal(iommu_sva_bind_device(f->m, f->dev[1], f->mm[1], &h), 0); /* same IOMMU */
	iommu_sva_invalidate_kva_range(f->m, 0xffff888000000000ULL, UINT64_MAX);
	assert_int_equal(counters(f->m, f->iommu[0]).range_invalidations, a0.range_invalidations + 2);
	assert_int_equal(counters(f->m, f->iommu[0]).fences, a0.fences + 1 + 0 /* binds fence nothing */);
	assert_int_equal(counters(f->m, f->iommu[1]).range_invalidations, b0.range_invalidations); /* nothing bound there */
}

/* --- seed 000 in C ------------------------------------------------------- */

struct reports_seen {
	int n;
	struct svakit_uaf_report last;
	char text[1024];
};

static void on_report(void *ctx, const struct svakit_uaf_report *r, const char *text)
{
	struct reports_seen *seen = ctx;
	seen->n++;
	seen->last = *r;
	snprintf(seen->text, sizeof(seen->text), "%s", text);
}

static const uint64_t SECRET = 0x2121544552434553ULL; /* "SECRET!!" */

/* Returns the result of the device's second read; *out gets the bytes. */
static int run_seed000(svakit_machine *m, struct reports_seen *seen, uint64_t *out, struct svakit_dma_fault *fault)
{
	struct svakit_iommu_config ic;
	uint32_t iommu, dev, mm, h, pasid;
	uint64_t secret, va, huge, attacker, entry;

	assert_int_equal(svakit_machine_set_report_handler(m, on_report, seen), 0);
	assert_int_equal(svakit_frame_alloc(m, 0, 0x5ec, &secret), 0);
	assert_int_equal(svakit_frame_write(m, secret, 0, &SECRET, 8), 0);
	svakit_iommu_config_default(&ic);
	assert_int_equal(svakit_iommu_create(m, &ic, &iommu), 0);
	assert_int_equal(svakit_device_create(m, iommu, SVAKIT_DEV_SVA, 20, &dev), 0);
	assert_int_equal(svakit_mm_create(m, &mm), 0);
	assert_int_equal(iommu_sva_bind_device(m, dev, mm, &h), 0);
	assert_int_equal(iommu_sva_get_pasid(m, h, &pasid), 0);

	/* The device touches a kernel vmalloc address: a user request faults at
	 * the leaf, but PML4E, PDPTE and PDE stay cached. */
	assert_int_equal(svakit_vmalloc(m, 4096, &va), 0);
	assert_int_equal(svakit_device_dma_read(m, dev, pasid, va, out, 8, 0, fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault->reason, SVAKIT_FAULT_PRIVILEGE);
	assert_int_equal(fault->level, 1);

	/* A huge vmap replaces the PTE table: pmd_free_pte_page frees it. */
	assert_int_equal(svakit_vfree(m, va), 0);
	assert_int_equal(svakit_vm_unmap_aliases(m), 0); /* purge the lazily freed range */
	assert_int_equal(svakit_vmalloc_huge(m, SVAKIT_PMD_SIZE, &huge), 0);
	assert_int_equal(huge, va);

	/* The attacker gets the freed table (LIFO) and points its entry at the secret. */
	assert_int_equal(svakit_frame_alloc(m, 0, 0xbad, &attacker), 0);
	entry = (secret << 12) | SVAKIT_PTE_P | SVAKIT_PTE_RW | SVAKIT_PTE_US;
	assert_int_equal(svakit_frame_write(m, attacker, idx(va, 1) * 8, &entry, 8), 0);

	*out = 0;
	return svakit_device_dma_read(m, dev, pasid, va, out, 8, 0, fault);
}

static void test_seed000_unfixed_kernel_is_exploitable(void **state)
{
	(void)state;
	svakit_machine *m = machine_with(GIB_FRAMES, 4, SVAKIT_REUSE_LIFO, 0);
	struct reports_seen seen = { 0 };
	struct svakit_dma_fault fault;
	struct svakit_uaf_report r;
	uint64_t got, total;
	char text[1024];

	assert_int_equal(run_seed000(m, &seen, &got, &fault), 0);
	assert_int_equal(got, SECRET); /* the device read the secret */
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.last.stale_level, 2); /* the PDE cache entry */
	assert_int_equal(seen.last.freed_by, SVAKIT_SITE_PMD_FREE_PTE_PAGE);
	assert_int_equal(seen.last.found_kind, SVAKIT_FRAME_DATA);
	assert_int_equal(seen.last.realloc_owner, 0xbad);
	assert_true(seen.last.escalation);
	assert_true(seen.last.corruption);
	assert_non_null(strstr(seen.text, "BUG: SVAKit: DMA use-after-free"));
	assert_non_null(strstr(seen.text, "freed by pmd_free_pte_page"));

	assert_int_equal(svakit_report_count(m, &total), 0);
	assert_int_equal(total, 1);
	assert_int_equal(svakit_report_read(m, 0, &r, 1), 1);
	assert_memory_equal(&r, &seen.last, sizeof(r));
	assert_int_equal(svakit_report_text(m, 0, text, sizeof(text)), 0);
	assert_string_equal(text, seen.text);
	assert_int_equal(svakit_report_text(m, 1, text, sizeof(text)), -ENOENT);
	svakit_machine_destroy(m);
}

static void test_seed000_invalidation_on_flush_faults_cleanly(void **state)
{
	(void)state;
	struct svakit_config cfg;
	svakit_machine *m;
	struct reports_seen seen = { 0 };
	struct svakit_dma_fault fault;
	uint64_t got, total;

	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.kva_invalidation = SVAKIT_KVA_INV_ON_FLUSH;
	assert_int_equal(svakit_machine_create(&cfg, &m), 0);
	assert_int_equal(run_seed000(m, &seen, &got, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_PRIVILEGE); /* the kernel's huge leaf */
	assert_int_equal(fault.level, 2);
	assert_int_not_equal(got, SECRET);
	assert_int_equal(seen.n, 0);
	assert_int_equal(svakit_report_count(m, &total), 0);
	assert_int_equal(total, 0);
	svakit_machine_destroy(m);
}

static void test_dma_bad_input(void **state)
{
	struct sva_fixture *f = *state;
	uint64_t buf;
	struct svakit_dma_fault fault;

	assert_int_equal(svakit_device_dma_read(f->m, 99, 1, 0, &buf, 8, 0, &fault), -ENODEV);
	/* PASID 0 is a request without PASID: no DMA domain, so it faults. */
	assert_int_equal(svakit_device_dma_read(f->m, f->dev[0], 0, 0, &buf, 8, 0, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_NO_PASID);
	assert_int_equal(fault.level, 0);
	assert_int_equal(svakit_device_dma_read(f->m, f->dev[0], 1, 0, &buf, 8, 0x80, &fault), -EINVAL);
	assert_int_equal(svakit_device_dma_read(f->m, f->dev[0], 1, 0, NULL, 8, 0, &fault), -EFAULT);
	assert_int_equal(svakit_device_dma_read(f->m, f->dev[0], 1, 0x0000800000000000ULL, &buf, 8, 0, &fault), -ERANGE);
	assert_int_equal(svakit_device_dma_read(f->m, f->dev[0], 5, 0x1000, &buf, 8, 0, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_NO_PASID);
	assert_int_equal(svakit_iommu_invalidate_range(f->m, 7, 1, 0, 1, 0), -ENODEV);
	assert_int_equal(svakit_iommu_invalidate_range(f->m, f->iommu[0], 1, 2, 1, 0), -EINVAL);
	assert_int_equal(svakit_iommu_create(f->m, NULL, &f->iommu[0]), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_follows_the_sva_list, setup_sva, teardown_sva),
		cmocka_unit_test_setup_teardown(test_pasid_per_mm, setup_sva, teardown_sva),
		cmocka_unit_test(test_bind_errors),
		cmocka_unit_test_setup_teardown(test_gate_reaches_exactly_the_bound_pasids, setup_sva, teardown_sva),
		cmocka_unit_test(test_seed000_unfixed_kernel_is_exploitable),
		cmocka_unit_test(test_seed000_invalidation_on_flush_faults_cleanly),
		cmocka_unit_test_setup_teardown(test_dma_bad_input, setup_sva, teardown_sva),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
