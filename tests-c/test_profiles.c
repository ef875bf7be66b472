// SPDX-License-Identifier: Apache-2.0
/*
 * The IOMMU hardware profiles from C (docs/KERNEL-MODEL.md §3.6): the
 * commands a request becomes (svakit_iommu_commands), what a leaf-only
 * request leaves cached (seen as where the next walk starts: a PDE-cache hit
 * or a walk from the root), the 512-page SMMUv3 widening, EPD1, and seed 000
 * on every profile under the unfixed kernel.
 */
#include "harness.h"

#define UVA 0x7f0000000000ULL

struct prof {
	svakit_machine *m;
	uint32_t iommu, dev, mm, h, pasid;
};

static void prof_init(struct prof *p, uint32_t profile)
{
	struct svakit_iommu_config ic;

	p->m = machine_with(GIB_FRAMES, 4, SVAKIT_REUSE_LIFO, 0);
	svakit_iommu_config_default(&ic);
	assert_int_equal(ic.profile, SVAKIT_IOMMU_GENERIC);
	ic.profile = profile;
	assert_int_equal(svakit_iommu_create(p->m, &ic, &p->iommu), 0);
	assert_int_equal(svakit_device_create(p->m, p->iommu, SVAKIT_DEV_SVA, 20, &p->dev), 0);
	assert_int_equal(svakit_mm_create(p->m, &p->mm), 0);
	assert_int_equal(svakit_iommu_sva_bind_device(p->m, p->dev, p->mm, &p->h), 0);
	assert_int_equal(svakit_iommu_sva_get_pasid(p->m, p->h, &p->pasid), 0);
}

static void prof_exit(struct prof *p)
{
	assert_int_equal(svakit_iommu_sva_unbind_device(p->m, p->h), 0);
	assert_int_equal(svakit_machine_check(p->m), 0);
	svakit_machine_destroy(p->m);
}

static struct svakit_iommu_counters ctrs(struct prof *p)
{
	struct svakit_iommu_counters c;

	assert_int_equal(svakit_iommu_counters(p->m, p->iommu, &c), 0);
	return c;
}

static struct svakit_iommu_commands cmds(struct prof *p)
{
	struct svakit_iommu_commands c;

	assert_int_equal(svakit_iommu_commands(p->m, p->iommu, &c), 0);
	return c;
}

/* A user read of 8 bytes at va; returns svakit_device_dma_read's result. */
static int touch(struct prof *p, uint64_t va, struct svakit_dma_fault *fault)
{
	uint64_t word;

	return svakit_device_dma_read(p->m, p->dev, p->pasid, va, &word, 8, 0, fault);
}

/* The frame user pages map: the last of memory, never a page table (a
 * process mm refuses those, -EPERM). */
#define USER_PHYS ((GIB_FRAMES - 1) << 12)

/* Maps n user pages from va and touches each once. */
static void warm(struct prof *p, uint64_t va, unsigned n)
{
	struct svakit_dma_fault fault;

	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(svakit_mm_map(p->m, p->mm, va + i * 4096ULL, USER_PHYS, 4096, SVAKIT_PTE_US), 0);
		assert_int_equal(touch(p, va + i * 4096ULL, &fault), 0);
	}
}

/*
 * Where the next walk of UVA starts after an invalidation: 2 when the PDE
 * cache still held its entry (the walk resumed below it), 0 when it started
 * from the root. The IOTLB line is gone in both cases.
 */
static int walk_resumes_at(struct prof *p)
{
	struct svakit_iommu_counters before = ctrs(p), after;
	struct svakit_dma_fault fault;

	assert_int_equal(touch(p, UVA, &fault), 0);
	after = ctrs(p);
	assert_int_equal(after.iotlb_hits, before.iotlb_hits); /* the leaf was dropped */
	if (after.psc_hits[2] == before.psc_hits[2] + 1)
		return 2;
	assert_int_equal(after.full_walks, before.full_walks + 1);
	return 0;
}

static void test_vtd_ih_keeps_paging_structure_caches(void **state)
{
	struct svakit_iommu_commands c;
	struct prof p;

	(void)state;
	prof_init(&p, SVAKIT_IOMMU_VTD);
	warm(&p, UVA, 1);
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, UVA, UVA + 0xfff, 1), 0);
	assert_int_equal(walk_resumes_at(&p), 2); /* IH=1: the PDE stayed */
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, UVA, UVA + 0xfff, 0), 0);
	assert_int_equal(walk_resumes_at(&p), 0); /* IH=0: everything on the walk went */
	c = cmds(&p);
	assert_int_equal(c.vtd_page_selective_ih, 1);
	assert_int_equal(c.vtd_page_selective, 1);
	assert_int_equal(c.vtd_pasid_selective, 0);
	assert_int_equal(c.vtd_wait, 2); /* one wait descriptor per request */
	assert_int_equal(c.smmu_sync + c.amd_completion_wait + c.riscv_iofence, 0);

	/* The whole space is cache_tag_flush_all: PASID-selective. */
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, 0, UINT64_MAX, 0), 0);
	assert_int_equal(cmds(&p).vtd_pasid_selective, 1);
	prof_exit(&p);
}

static void test_vtd_mask_rounding_widens_a_misaligned_range(void **state)
{
	struct svakit_iommu_counters before, after;
	struct svakit_dma_fault fault;
	struct prof p;

	(void)state;
	prof_init(&p, SVAKIT_IOMMU_VTD);
	warm(&p, UVA, 4);
	/* Pages 1 and 2 are misaligned for a 2-page mask: the descriptor
	 * covers pages 0-3, so page 0 loses its IOTLB line too. */
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, UVA + 0x1000, UVA + 0x2fff, 1), 0);
	before = ctrs(&p);
	assert_int_equal(touch(&p, UVA, &fault), 0);
	after = ctrs(&p);
	assert_int_equal(after.iotlb_hits, before.iotlb_hits);
	prof_exit(&p);
}

static void test_smmu_widens_to_the_asid_at_512_pages(void **state)
{
	struct svakit_iommu_commands c;
	struct svakit_iommu_counters before, after;
	struct svakit_dma_fault fault;
	const uint64_t far = UVA + (1ULL << 30);
	struct prof p;
	uint64_t ns;

	(void)state;
	prof_init(&p, SVAKIT_IOMMU_SMMUV3);
	warm(&p, UVA, 1);
	ns = cmds(&p).modelled_device_ns;
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, far, far + 511 * 4096ULL - 1, 0), 0);
	c = cmds(&p);
	assert_int_equal(c.smmu_tlbi_nh_va, 511);
	assert_int_equal(c.smmu_tlbi_nh_asid, 0);
	assert_int_equal(c.smmu_sync, 1);
	assert_int_equal(c.modelled_device_ns - ns, 511 * 200 + 400); /* the default cost model */
	before = ctrs(&p);
	assert_int_equal(touch(&p, UVA, &fault), 0);
	after = ctrs(&p);
	assert_int_equal(after.iotlb_hits, before.iotlb_hits + 1); /* UVA untouched */

	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, far, far + 512 * 4096ULL - 1, 0), 0);
	c = cmds(&p);
	assert_int_equal(c.smmu_tlbi_nh_va, 511);
	assert_int_equal(c.smmu_tlbi_nh_asid, 1);
	assert_int_equal(c.smmu_sync, 2);
	assert_int_equal(walk_resumes_at(&p), 0); /* the ASID-wide command dropped UVA's walk */

	/* LEAF=1 keeps the walk cache. */
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, UVA, UVA + 0xfff, 1), 0);
	assert_int_equal(walk_resumes_at(&p), 2);
	assert_int_equal(cmds(&p).smmu_tlbi_nh_va_leaf, 1);
	prof_exit(&p);
}

static void test_smmu_epd1_faults_kernel_addresses_unwalked(void **state)
{
	struct svakit_iommu_counters before, after;
	struct svakit_dma_fault fault;
	struct prof p;
	uint64_t va;

	(void)state;
	prof_init(&p, SVAKIT_IOMMU_SMMUV3);
	assert_int_equal(svakit_vmalloc(p.m, 4096, &va), 0);
	for (int i = 0; i < 2; i++) {
		before = ctrs(&p);
		assert_int_equal(touch(&p, va, &fault), SVAKIT_DMA_FAULTED);
		assert_int_equal(fault.reason, SVAKIT_FAULT_TABLE_DISABLED);
		assert_int_equal(fault.level, 0);
		assert_int_equal(fault.address, va);
		after = ctrs(&p);
		/* Nothing was cached by the first: the second finds nothing either. */
		assert_int_equal(after.psc_hits[2] + after.psc_hits[3] + after.psc_hits[4],
				 before.psc_hits[2] + before.psc_hits[3] + before.psc_hits[4]);
		assert_int_equal(after.accessed_dirty_writes, before.accessed_dirty_writes);
	}
	prof_exit(&p);
}

static void test_amd_pde_drops_paging_structures_for_leaf_requests(void **state)
{
	struct svakit_iommu_commands c;
	struct prof p;

	(void)state;
	prof_init(&p, SVAKIT_IOMMU_AMD);
	warm(&p, UVA, 1);
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, UVA, UVA + 0xfff, 1), 0);
	assert_int_equal(walk_resumes_at(&p), 0); /* PDE=1 whatever the hint */
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, 0, UINT64_MAX, 0), 0);
	c = cmds(&p);
	assert_int_equal(c.amd_invalidate_pages, 1);
	assert_int_equal(c.amd_invalidate_all_pages, 1);
	assert_int_equal(c.amd_completion_wait, 2);
	prof_exit(&p);
}

static void test_riscv_an_address_drops_leaves_only(void **state)
{
	struct svakit_iommu_commands c;
	struct prof p;

	(void)state;
	prof_init(&p, SVAKIT_IOMMU_RISCV);
	warm(&p, UVA, 1);
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, UVA, UVA + 0xfff, 1), 0);
	assert_int_equal(walk_resumes_at(&p), 2); /* AV=1: the leaf only */
	assert_int_equal(svakit_iommu_invalidate_range(p.m, p.iommu, p.pasid, UVA, UVA + 0xfff, 0), 0);
	assert_int_equal(walk_resumes_at(&p), 0); /* non-leaf: AV=0, the whole PSCID */
	c = cmds(&p);
	assert_int_equal(c.riscv_inval_vma_addr, 1);
	assert_int_equal(c.riscv_inval_vma_pscid, 1);
	assert_int_equal(c.riscv_iofence, 2);
	prof_exit(&p);
}

static const uint64_t SECRET = 0x2121544552434553ULL; /* "SECRET!!" */

/* Seed 000 on the unfixed kernel (frees at once, never invalidates):
 * returns the word the device's last read got (0 if it faulted). */
static uint64_t seed000(uint32_t profile, struct svakit_dma_fault *fault)
{
	uint64_t secret, va, huge, attacker, entry, got = 0;
	struct prof p;

	prof_init(&p, profile);
	assert_int_equal(svakit_frame_alloc(p.m, 0, 0x5ec, &secret), 0);
	assert_int_equal(svakit_frame_write(p.m, secret, 0, &SECRET, 8), 0);
	assert_int_equal(svakit_vmalloc(p.m, 4096, &va), 0);
	assert_int_equal(touch(&p, va, fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(svakit_vfree(p.m, va), 0);
	assert_int_equal(svakit_vm_unmap_aliases(p.m), 0); /* the lazily freed range returns */
	assert_int_equal(svakit_vmalloc_huge(p.m, SVAKIT_PMD_SIZE, &huge), 0);
	assert_int_equal(svakit_frame_alloc(p.m, 0, 0xbad, &attacker), 0);
	entry = (secret << 12) | SVAKIT_PTE_P | SVAKIT_PTE_RW | SVAKIT_PTE_US;
	assert_int_equal(svakit_frame_write(p.m, attacker, idx(va, 1) * 8, &entry, 8), 0);
	if (svakit_device_dma_read(p.m, p.dev, p.pasid, va, &got, 8, 0, fault) != 0)
		got = 0;
	assert_int_equal(svakit_iommu_sva_unbind_device(p.m, p.h), 0);
	svakit_machine_destroy(p.m);
	return got;
}

static void test_seed000_per_profile_on_the_unfixed_kernel(void **state)
{
	static const uint32_t walked[] = { SVAKIT_IOMMU_GENERIC, SVAKIT_IOMMU_VTD, SVAKIT_IOMMU_AMD,
					   SVAKIT_IOMMU_RISCV };
	struct svakit_dma_fault fault;

	(void)state;
	/* Each of these walks the kernel half and caches its upper levels. */
	for (size_t i = 0; i < sizeof(walked) / sizeof(walked[0]); i++)
		assert_int_equal(seed000(walked[i], &fault), SECRET);
	/* SMMUv3's SVA context descriptor sets EPD1: never walked, never cached. */
	assert_int_equal(seed000(SVAKIT_IOMMU_SMMUV3, &fault), 0);
	assert_int_equal(fault.reason, SVAKIT_FAULT_TABLE_DISABLED);
}

static void test_bad_profile_is_refused(void **state)
{
	svakit_machine *m = *state;
	struct svakit_iommu_config ic;
	uint32_t id = 0xdead;

	svakit_iommu_config_default(&ic);
	ic.profile = SVAKIT_IOMMU_RISCV + 1;
	assert_int_equal(svakit_iommu_create(m, &ic, &id), -EINVAL);
	assert_int_equal(id, 0xdead);
	ic.profile = SVAKIT_IOMMU_VTD;
	ic.reserved2 = 1;
	assert_int_equal(svakit_iommu_create(m, &ic, &id), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vtd_ih_keeps_paging_structure_caches),
		cmocka_unit_test(test_vtd_mask_rounding_widens_a_misaligned_range),
		cmocka_unit_test(test_smmu_widens_to_the_asid_at_512_pages),
		cmocka_unit_test(test_smmu_epd1_faults_kernel_addresses_unwalked),
		cmocka_unit_test(test_amd_pde_drops_paging_structures_for_leaf_requests),
		cmocka_unit_test(test_riscv_an_address_drops_leaves_only),
		cmocka_unit_test(test_seed000_per_profile_on_the_unfixed_kernel),
		cmocka_unit_test_setup_teardown(test_bad_profile_is_refused, setup_machine, teardown_machine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
