/* SPDX-License-Identifier: Apache-2.0 */
#include "svakit_core.h"

/* The audit's scan of a table (Machine+Audit.swift): most entries are empty,
 * and in C the scan is not instrumented for the fuzzer's coverage, which
 * made the same loop in Swift the fuzzer's largest cost. */
/* Not instrumented by ASan and UBSan: they read only the simulated
 * memory and descriptors, the engine's own mappings, which ASan never
 * poisons, and its check on each of their loads was most of their cost. */
__attribute__((no_sanitize("address", "undefined"))) int svk_next_present(const uint64_t *table, int from, int end)
{
	int i = from;

	/* Eight entries at a time: one test of their OR instead of a branch
	 * per entry (the audit runs on a quiet machine, so relaxed loads; a
	 * table of the kernel half is mostly empty). */
	while (i < end && (i & 7))
		if (__atomic_load_n(&table[i++], __ATOMIC_RELAXED) & 1)
			return i - 1;
	for (; i + 8 <= end; i += 8) {
		uint64_t any = 0;
		for (int j = 0; j < 8; j++)
			any |= __atomic_load_n(&table[i + j], __ATOMIC_RELAXED);
		if (any & 1)
			break;
	}
	for (; i < end; i++)
		if (__atomic_load_n(&table[i], __ATOMIC_ACQUIRE) & 1)
			return i;
	return end;
}

/* The frame audit's loops over every descriptor (FrameMemory+Audit.swift),
 * in C for the same reason. */
__attribute__((no_sanitize("address", "undefined"))) uint64_t svk_census(const uint8_t *descs, uint64_t stride, uint64_t first,
							       uint64_t end, uint8_t free_kind, uint8_t offline_kind,
							       uint8_t tail_flag, uint64_t counts[8])
{
	uint64_t heads = 0;

	for (uint64_t i = first; i < end; i++) {
		const uint8_t *d = descs + i * stride;
		uint8_t kind = __atomic_load_n(&d[0], __ATOMIC_RELAXED);
		uint8_t flags = __atomic_load_n(&d[3], __ATOMIC_RELAXED);
		counts[kind < 8 ? kind : 7]++;
		if (kind != free_kind && kind != offline_kind && !(flags & tail_flag))
			heads++;
	}
	return heads;
}
