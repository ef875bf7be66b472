/* SPDX-License-Identifier: Apache-2.0 */
#include "svakit_core.h"

/* The audit's scan of a table (Machine+Audit.swift): most entries are empty,
 * and in C the scan is not instrumented for the fuzzer's coverage, which
 * made the same loop in Swift the fuzzer's largest cost. */
int svk_next_present(const uint64_t *table, int from, int end)
{
	for (int i = from; i < end; i++)
		if (__atomic_load_n(&table[i], __ATOMIC_ACQUIRE) & 1)
			return i;
	return end;
}
