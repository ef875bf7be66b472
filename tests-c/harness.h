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
#include "svakit_debug.h" /* svakit_machine_check_text(), svakit_frame_info(), svakit_frame_history() */

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

/*
 * Checks inside hooks. The engine calls C back (the TLB-flush hook, the free
 * hook, the report handler, an IOMMU driver's ops) from Swift frames: a
 * cmocka assertion that fails there longjmps out through them, which is
 * unsound even with no engine lock held. So hooks never assert and never
 * call function_called(): they check with hook_check() and log their calls
 * with hook_called(), into a struct hook_ctx in their context, and the test
 * asserts after the engine call has returned (assert_hook_ok,
 * assert_hook_calls).
 */
struct hook_ctx {
	int failed;          /* hook checks that failed */
	const char *file;    /* the first failed check */
	int line;
	char msg[192];
	char calls[64];      /* one letter per logged call, in order */
	unsigned ncalls;
};

static inline int hook_check_at(struct hook_ctx *h, int ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static inline int hook_check_at(struct hook_ctx *h, int ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (ok || h->failed++)
		return ok;
	h->file = file;
	h->line = line;
	va_start(ap, fmt);
	vsnprintf(h->msg, sizeof(h->msg), fmt, ap);
	va_end(ap);
	return ok;
}

/* Records a failed condition (the first one's place and text); returns it. */
#define hook_check(h, cond) hook_check_at((h), !!(cond), __FILE__, __LINE__, "%s", #cond)
#define hook_check_int_equal(h, a, b)                                                              \
	({                                                                                         \
		unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);     \
		hook_check_at((h), a_ == b_, __FILE__, __LINE__, "%s == %s: %#llx != %#llx", #a, #b, a_, b_); \
	})

/* Logs a call (a letter per kind of call); overflowing the log is a failure. */
#define hook_called(h, tag)                                                                        \
	do {                                                                                       \
		struct hook_ctx *h_ = (h);                                                         \
		if (hook_check_at(h_, h_->ncalls + 1 < sizeof(h_->calls), __FILE__, __LINE__,       \
				  "more than %zu hook calls logged", sizeof(h_->calls) - 1)) {      \
			h_->calls[h_->ncalls++] = (tag);                                           \
			h_->calls[h_->ncalls] = 0;                                                 \
		}                                                                                  \
	} while (0)

static inline int hook_ok(const struct hook_ctx *h) { return h->failed == 0; }

/* After the engine call: fails the test, from the test's own frame, with the
 * first failed hook check. */
#define assert_hook_ok(h)                                                                          \
	do {                                                                                       \
		const struct hook_ctx *ho_ = (h);                                                  \
		if (!hook_ok(ho_))                                                                 \
			fail_msg("%s:%d: a hook check failed (%d in all): %s", ho_->file, ho_->line, \
				 ho_->failed, ho_->msg);                                           \
	} while (0)

/* The hook checks passed and the calls logged since the last assertion are
 * exactly `expected` (e.g. "RFfff"); clears the log. */
#define assert_hook_calls(h, expected)                                                             \
	do {                                                                                       \
		struct hook_ctx *hc_ = (h);                                                        \
		assert_hook_ok(hc_);                                                               \
		assert_string_equal(hc_->calls, (expected));                                      \
		hc_->ncalls = 0;                                                                   \
		hc_->calls[0] = 0;                                                                 \
	} while (0)

#endif
