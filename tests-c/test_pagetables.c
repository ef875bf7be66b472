// SPDX-License-Identifier: Apache-2.0
/*
 * Page tables through the C ABI: map/translate/unmap round trips at every
 * leaf size, in both paging modes, the kernel half shared by every mm, and
 * each bad mapping refused with the machine left consistent.
 */
#include "harness.h"

#define KVA 0xffffc90040000000ULL /* 1 GiB aligned, in the 4-level vmalloc area */
#define RW SVAKIT_PTE_RW
#define US SVAKIT_PTE_US

static void round_trip(svakit_machine *m, uint32_t mm, uint64_t va, uint64_t size, uint64_t prot, unsigned level)
{
	struct svakit_translation t;
	/* A process mm maps no page table (-EPERM): its leaves go to 256 MiB,
	 * which no allocation of these tests reaches. */
	uint64_t phys = mm != SVAKIT_INIT_MM ? 256ULL << 20 : size == SVAKIT_PUD_SIZE ? 0 : size;

	assert_int_equal(svakit_mm_map(m, mm, va, phys, size, prot), 0);
	assert_int_equal(svakit_mm_translate(m, mm, va + 0x123, &t), 0);
	assert_int_equal(t.phys, phys + 0x123);
	assert_int_equal(t.page_size, size);
	assert_int_equal(t.level, level);
	assert_int_equal(t.entry & (SVAKIT_PTE_US | SVAKIT_PTE_RW), prot & (SVAKIT_PTE_US | SVAKIT_PTE_RW));
	assert_int_equal(!!(t.entry & SVAKIT_PTE_PS), level > 1);
	assert_int_equal(svakit_mm_unmap(m, mm, va, size), 0);
	assert_int_equal(svakit_mm_translate(m, mm, va + 0x123, &t), -ENOENT);
	assert_int_equal(t.level, level);
}

static void test_kernel_round_trips(void **state)
{
	svakit_machine *m = *state;
	round_trip(m, SVAKIT_INIT_MM, KVA, SVAKIT_PAGE_SIZE, RW, 1);
	round_trip(m, SVAKIT_INIT_MM, KVA + (2ULL << 30), SVAKIT_PMD_SIZE, RW, 2);
	round_trip(m, SVAKIT_INIT_MM, KVA + (4ULL << 30), SVAKIT_PUD_SIZE, 0, 3);
	assert_machine_ok(m);
}

static void test_user_round_trips_5level(void **state)
{
	svakit_machine *m = *state;
	uint32_t mm;

	assert_int_equal(svakit_mm_create(m, &mm), 0);
	round_trip(m, mm, 0x7f0000000000ULL, SVAKIT_PAGE_SIZE, RW | US, 1);
	round_trip(m, mm, 0x00ff000000000000ULL, SVAKIT_PMD_SIZE, US, 2); /* only 57-bit can */
	assert_int_equal(svakit_mm_map(m, mm, 0x0100000000000000ULL, 0, 4096, US), -ERANGE);
	assert_int_equal(svakit_mm_destroy(m, mm), 0);
	assert_machine_ok(m);
}

static void test_kernel_half_is_shared(void **state)
{
	svakit_machine *m = *state;
	struct svakit_translation tk, t1, t2;
	uint32_t mm1, mm2;
	uint64_t va, r0, r1;

	assert_int_equal(svakit_mm_create(m, &mm1), 0);
	assert_int_equal(svakit_mm_create(m, &mm2), 0);
	assert_int_equal(svakit_vmalloc(m, 3 * 4096, &va), 0); /* mapped after the mms exist */
	assert_int_equal(svakit_mm_translate(m, SVAKIT_INIT_MM, va + 8192, &tk), 0);
	assert_int_equal(svakit_mm_translate(m, mm1, va + 8192, &t1), 0);
	assert_int_equal(svakit_mm_translate(m, mm2, va + 8192, &t2), 0);
	assert_int_equal(t1.phys, tk.phys);
	assert_int_equal(t2.phys, tk.phys);
	/* Every kernel-half root entry is init_mm's. */
	assert_int_equal(svakit_mm_root(m, SVAKIT_INIT_MM, &r0), 0);
	assert_int_equal(svakit_mm_root(m, mm1, &r1), 0);
	for (unsigned i = 256; i < 512; i++)
		assert_int_equal(entry_of(m, r1, i), entry_of(m, r0, i));
	/* User mappings stay private. */
	assert_int_equal(svakit_mm_map(m, mm1, 0x400000, 0x200000, 4096, US), 0);
	assert_int_equal(svakit_mm_translate(m, mm2, 0x400000, &t2), -ENOENT);
	assert_machine_ok(m);
}

static void test_mm_teardown_frees_user_tables(void **state)
{
	svakit_machine *m = *state;
	uint64_t before = stats(m).user_tables, root;
	uint32_t mm;

	assert_int_equal(svakit_mm_create(m, &mm), 0);
	for (uint64_t i = 0; i < 4; i++)
		assert_int_equal(svakit_mm_map(m, mm, i << 30, (GIB_FRAMES - 1 - i) << 12, 4096, US), 0);
	assert_int_equal(stats(m).user_tables, before + 2 + 4 * 2);
	assert_int_equal(svakit_mm_root(m, mm, &root), 0);
	assert_int_equal(svakit_mm_destroy(m, mm), 0);
	assert_int_equal(stats(m).user_tables, before);
	assert_int_equal(info(m, root).kind, SVAKIT_FRAME_FREE);
	assert_int_equal(svakit_mm_destroy(m, mm), -ESRCH);
	assert_int_equal(svakit_mm_destroy(m, SVAKIT_INIT_MM), -EPERM);
	assert_machine_ok(m);
}

static void test_bad_mappings(void **state)
{
	svakit_machine *m = *state;
	struct svakit_stats before;
	struct svakit_translation t;
	uint32_t mm;

	assert_int_equal(svakit_mm_create(m, &mm), 0);
	assert_int_equal(svakit_mm_map(m, 0, KVA, 0, 4096, RW), 0);
	assert_int_equal(svakit_mm_map(m, 0, KVA + (4 << 20), 2 << 20, SVAKIT_PMD_SIZE, RW), 0);
	before = stats(m);

	assert_int_equal(svakit_mm_map(m, 0, KVA, 0x1000, 4096, RW), -EEXIST);                  /* live mapping */
	assert_int_equal(svakit_mm_map(m, 0, KVA, 0, SVAKIT_PMD_SIZE, RW), -EEXIST);            /* over a table */
	assert_int_equal(svakit_mm_map(m, 0, KVA + (4 << 20) + 4096, 0, 4096, RW), -EEXIST);    /* under a huge leaf */
	assert_int_equal(svakit_mm_map(m, 0, KVA + 4096, 0, SVAKIT_PMD_SIZE, RW), -EINVAL);     /* unaligned va */
	assert_int_equal(svakit_mm_map(m, 0, KVA + (8 << 20), 4096, SVAKIT_PMD_SIZE, RW), -EINVAL); /* unaligned pa */
	assert_int_equal(svakit_mm_map(m, 0, KVA + 4096, 0, 8192, RW), -EINVAL);                /* no such size */
	assert_int_equal(svakit_mm_map(m, 0, KVA + 4096, 0, 4096, SVAKIT_PTE_PS), -EINVAL);     /* not a prot bit */
	assert_int_equal(svakit_mm_map(m, 0, 0x1000, 0, 4096, RW), -EINVAL);                    /* user va, init_mm */
	assert_int_equal(svakit_mm_map(m, mm, KVA + 4096, 0, 4096, RW), -EINVAL);               /* kernel va, an mm */
	assert_int_equal(svakit_mm_map(m, mm, 0x0000800000000000ULL, 0, 4096, US), -ERANGE);   /* non-canonical */
	assert_int_equal(svakit_mm_map(m, 0, KVA + 4096, GIB_FRAMES << 12, 4096, RW), -ERANGE); /* past memory */
	assert_int_equal(svakit_mm_map(m, 77, 0x1000, 0, 4096, US), -ESRCH);
	assert_int_equal(svakit_mm_unmap(m, 0, KVA + 4096, 4096), -ENOENT);
	assert_int_equal(svakit_mm_unmap(m, 0, KVA, SVAKIT_PMD_SIZE), -EINVAL);                 /* 4K leaves there */
	assert_int_equal(svakit_mm_unmap(m, 0, KVA + (4 << 20) + 4096, 4096), -EINVAL);         /* part of a huge leaf */
	assert_int_equal(svakit_mm_translate(m, 0, 0x0001000000000000ULL, &t), -ERANGE);

	struct svakit_stats after = stats(m);
	assert_int_equal(after.step, before.step);
	assert_int_equal(after.allocs, before.allocs);
	assert_int_equal(svakit_mm_translate(m, 0, KVA, &t), 0); /* the live mapping survived */
	assert_int_equal(t.phys, 0);
	assert_machine_ok(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kernel_round_trips, setup_machine, teardown_machine),
		cmocka_unit_test_setup_teardown(test_user_round_trips_5level, setup_machine_5level, teardown_machine),
		cmocka_unit_test_setup_teardown(test_kernel_half_is_shared, setup_machine, teardown_machine),
		cmocka_unit_test_setup_teardown(test_mm_teardown_frees_user_tables, setup_machine, teardown_machine),
		cmocka_unit_test_setup_teardown(test_bad_mappings, setup_machine, teardown_machine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
