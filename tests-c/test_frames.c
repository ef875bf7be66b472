// SPDX-License-Identifier: Apache-2.0
/*
 * Frames through the C ABI: allocation, descriptors, reuse policies, byte
 * access, and every way a free can be wrong. Each refusal is followed by
 * svakit_machine_check(), which audits every descriptor and free list.
 */
#include "harness.h"

static void test_alloc_fills_descriptor_and_log(void **state)
{
	svakit_machine *m = *state;
	uint64_t step = stats(m).step, pfn;
	struct svakit_event ev;

	assert_int_equal(svakit_frame_alloc(m, 0, 42, &pfn), 0);
	struct svakit_ptdesc d = info(m, pfn);
	assert_int_equal(d.kind, SVAKIT_FRAME_DATA);
	assert_int_equal(d.owner, 42);
	assert_int_equal(d.site, SVAKIT_SITE_API);
	assert_int_equal(d.alloc_step, (uint32_t)step);
	assert_int_equal(d.pt_list_next, SVAKIT_NO_PFN);
	assert_true(last_event(m, pfn, 0, &ev));
	assert_int_equal(ev.type, SVAKIT_EV_FRAME_ALLOC);
	assert_int_equal(ev.step, step);
}

static void test_free_bumps_generation_and_lifo_reuses(void **state)
{
	svakit_machine *m = *state;
	uint64_t a, b, c;
	struct svakit_event ev;

	assert_int_equal(svakit_frame_alloc(m, 0, 1, &a), 0);
	assert_int_equal(svakit_frame_alloc(m, 0, 2, &b), 0);
	assert_int_equal(svakit_frame_free(m, a), 0);
	assert_int_equal(info(m, a).kind, SVAKIT_FRAME_FREE);
	assert_int_equal(info(m, a).generation, 1);
	assert_int_equal(info(m, a).owner, 1); /* history survives the free */
	assert_true(last_event(m, a, SVAKIT_EV_FRAME_FREE, &ev));
	assert_int_equal(ev.kind, SVAKIT_FRAME_DATA); /* what it was */
	assert_int_equal(ev.generation, 1);
	/* LIFO: the frame just freed is the next one handed out. */
	assert_int_equal(svakit_frame_alloc(m, 0, 3, &c), 0);
	assert_int_equal(c, a);
	assert_int_equal(info(m, c).generation, 1);
	assert_int_equal(svakit_frame_free(m, b), 0);
	assert_machine_ok(m);
}

static void test_random_reuse_replays_from_seed(void **state)
{
	(void)state;
	uint64_t seed = getenv("SVAKIT_SEED") ? strtoull(getenv("SVAKIT_SEED"), NULL, 0) : (uint64_t)time(NULL);
	uint64_t got[2][16];

	printf("test_random_reuse_replays_from_seed: seed %llu (replay with SVAKIT_SEED)\n",
	       (unsigned long long)seed);
	for (int run = 0; run < 2; run++) {
		svakit_machine *m = machine_with(GIB_FRAMES, 4, SVAKIT_REUSE_RANDOM, seed);
		uint64_t p[32];
		for (int i = 0; i < 32; i++)
			assert_int_equal(svakit_frame_alloc(m, 0, 0, &p[i]), 0);
		for (int i = 0; i < 32; i++)
			assert_int_equal(svakit_frame_free(m, p[i]), 0);
		for (int i = 0; i < 16; i++)
			assert_int_equal(svakit_frame_alloc(m, 0, 0, &got[run][i]), 0);
		assert_machine_ok(m);
		svakit_machine_destroy(m);
	}
	assert_memory_equal(got[0], got[1], sizeof(got[0]));
}

static void test_orders_are_aligned_blocks(void **state)
{
	svakit_machine *m = *state;
	for (unsigned order = 0; order <= SVAKIT_MAX_ORDER; order++) {
		uint64_t p;
		assert_int_equal(svakit_frame_alloc(m, order, 0, &p), 0);
		assert_int_equal(p % (1ULL << order), 0);
		assert_int_equal(info(m, p).order, order);
		if (order)
			assert_true(info(m, p + (1ULL << order) - 1).flags & SVAKIT_PTDESC_TAIL);
	}
	assert_machine_ok(m);
}

static void test_bad_frees(void **state)
{
	svakit_machine *m = *state;
	uint64_t p, blk, root;
	struct svakit_stats before;

	assert_int_equal(svakit_frame_alloc(m, 0, 0, &p), 0);
	assert_int_equal(svakit_frame_alloc(m, 3, 0, &blk), 0);
	assert_int_equal(svakit_frame_free(m, p), 0);
	assert_int_equal(svakit_mm_root(m, SVAKIT_INIT_MM, &root), 0);
	before = stats(m);

	assert_int_equal(svakit_frame_free(m, p), -EALREADY);           /* double free */
	assert_int_equal(svakit_frame_free(m, GIB_FRAMES - 1), -ENXIO); /* never allocated */
	assert_int_equal(svakit_frame_free(m, blk + 1), -ENXIO);        /* tail of a block */
	assert_int_equal(svakit_frame_free(m, GIB_FRAMES), -ERANGE);    /* past the end */
	assert_int_equal(svakit_frame_free(m, root), -EPERM);           /* a page table */
	assert_int_equal(svakit_frame_alloc(m, SVAKIT_MAX_ORDER + 1, 0, &p), -EINVAL);

	struct svakit_stats after = stats(m);
	assert_int_equal(after.step, before.step);
	assert_int_equal(after.frames_free, before.frames_free);
	assert_machine_ok(m);
}

static void test_out_of_memory_is_an_error(void **state)
{
	(void)state;
	svakit_machine *m = machine_with(1 << 12, 4, SVAKIT_REUSE_LIFO, 0);
	uint64_t p;
	int r, n = 0;

	while ((r = svakit_frame_alloc(m, 0, 0, &p)) == 0)
		n++;
	assert_int_equal(r, -ENOMEM);
	assert_true(n > 0);
	assert_int_equal(stats(m).frames_free, 0);
	assert_int_equal(svakit_vmalloc(m, 4096, &p), -ENOMEM);
	assert_machine_ok(m);
	svakit_machine_destroy(m);
}

static void test_frame_bytes(void **state)
{
	svakit_machine *m = *state;
	uint64_t p, v = 0x1122334455667788ULL, back = 0;

	assert_int_equal(svakit_frame_alloc(m, 0, 0, &p), 0);
	assert_int_equal(svakit_frame_write(m, p, 4088, &v, 8), 0);
	assert_int_equal(svakit_frame_read(m, p, 4088, &back, 8), 0);
	assert_int_equal(back, v);
	assert_int_equal(svakit_frame_write(m, p, 4089, &v, 8), -EINVAL);
	assert_int_equal(svakit_frame_read(m, GIB_FRAMES, 0, &back, 8), -ERANGE);
	assert_int_equal(svakit_frame_write(m, p, 0, NULL, 8), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_alloc_fills_descriptor_and_log, setup_machine, teardown_machine),
		cmocka_unit_test_setup_teardown(test_free_bumps_generation_and_lifo_reuses, setup_machine, teardown_machine),
		cmocka_unit_test(test_random_reuse_replays_from_seed),
		cmocka_unit_test_setup_teardown(test_orders_are_aligned_blocks, setup_machine, teardown_machine),
		cmocka_unit_test_setup_teardown(test_bad_frees, setup_machine, teardown_machine),
		cmocka_unit_test(test_out_of_memory_is_an_error),
		cmocka_unit_test_setup_teardown(test_frame_bytes, setup_machine, teardown_machine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
