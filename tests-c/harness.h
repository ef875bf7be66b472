/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared fixtures for the cmocka suites: a small machine per test (1 GiB
 * unless a test needs more), created in setup and destroyed in teardown, so
 * every test starts from a freshly booted machine.
 */
#ifndef SVAKIT_TEST_HARNESS_H
#define SVAKIT_TEST_HARNESS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "svakit.h"

#define GIB_FRAMES (1ULL << 18)

static inline svakit_machine *machine_with(uint64_t frames, uint32_t levels, uint32_t reuse, uint64_t seed)
{
	struct svakit_config cfg;
	svakit_machine *m = NULL;

	svakit_config_default(&cfg);
	cfg.frames = frames;
	cfg.paging_levels = levels;
	cfg.reuse_policy = reuse;
	cfg.seed = seed;
	assert_int_equal(svakit_machine_create(&cfg, &m), 0);
	assert_non_null(m);
	return m;
}

static inline int setup_machine(void **state)
{
	*state = machine_with(GIB_FRAMES, 4, SVAKIT_REUSE_LIFO, 0);
	return 0;
}

static inline int setup_machine_4g(void **state)
{
	*state = machine_with(4 * GIB_FRAMES, 4, SVAKIT_REUSE_LIFO, 0);
	return 0;
}

static inline int setup_machine_5level(void **state)
{
	*state = machine_with(GIB_FRAMES, 5, SVAKIT_REUSE_LIFO, 0);
	return 0;
}

static inline int teardown_machine(void **state)
{
	svakit_machine_destroy(*state);
	return 0;
}

/* The machine check, as an assertion: on failure it prints the problems the
 * audit found (the library prints nothing itself) and fails the test. */
#define assert_machine_ok(m) assert_machine_ok_at((m), __FILE__, __LINE__)

static inline void assert_machine_ok_at(svakit_machine *m, const char *file, int line)
{
	static char text[16384];
	int rc = svakit_machine_check_text(m, text, sizeof(text));

	if (rc != 0) {
		print_error("%s:%d: svakit_machine_check: %s (%d)\n%s", file, line, svakit_strerror(rc), rc, text);
		_fail(file, line);
	}
}

static inline struct svakit_ptdesc info(svakit_machine *m, uint64_t pfn)
{
	struct svakit_ptdesc d;
	assert_int_equal(svakit_frame_info(m, pfn, &d), 0);
	return d;
}

static inline struct svakit_stats stats(svakit_machine *m)
{
	struct svakit_stats s;
	assert_int_equal(svakit_machine_stats(m, &s), 0);
	return s;
}

/* The table an entry of `table` at `index` points to. */
static inline uint64_t entry_of(svakit_machine *m, uint64_t table, unsigned index)
{
	uint64_t e;
	assert_int_equal(svakit_frame_read(m, table, index * 8, &e, sizeof(e)), 0);
	return e;
}

static inline unsigned idx(uint64_t va, unsigned level)
{
	return (unsigned)((va >> (12 + 9 * (level - 1))) & 511);
}

/* The table at `level` that maps va in mm (walks from the root). */
static inline uint64_t table_at(svakit_machine *m, uint32_t mm, uint64_t va, unsigned level, unsigned root_level)
{
	uint64_t t;
	assert_int_equal(svakit_mm_root(m, mm, &t), 0);
	for (unsigned l = root_level; l > level; l--) {
		uint64_t e = entry_of(m, t, idx(va, l));
		assert_true(e & SVAKIT_PTE_P);
		assert_false(e & SVAKIT_PTE_PS);
		t = (e & SVAKIT_PTE_PFN_MASK) >> 12;
	}
	return t;
}

/* The last event (of a type, or any when type is 0) about pfn, by history. */
static inline int last_event(svakit_machine *m, uint64_t pfn, uint16_t type, struct svakit_event *out)
{
	struct svakit_event ev[256];
	int n = svakit_frame_history(m, pfn, ev, 256);
	assert_true(n >= 0);
	for (int i = n - 1; i >= 0; i--) {
		if (type == 0 || ev[i].type == type) {
			*out = ev[i];
			return 1;
		}
	}
	return 0;
}

#endif
