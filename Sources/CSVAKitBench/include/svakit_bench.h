/* SPDX-License-Identifier: Apache-2.0 */
/* Plain-C references for `svakit bench`: the same work without the model. */
#ifndef SVAKIT_BENCH_H
#define SVAKIT_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* A 4-level x86-64 walk by pointer chasing over the simulated memory (mem is
 * frame 0): the reference a model walk is compared with. Returns the sum of
 * the physical addresses, so the work cannot be optimised away. */
uint64_t svakit_bench_ref_walk(const void *mem, uint64_t root_pfn, unsigned levels,
			       const uint64_t *vas, size_t n, size_t rounds);

/* An empty function in another translation unit: the cost of a call. */
void svakit_bench_noop(uint64_t a, uint64_t b);

#endif
