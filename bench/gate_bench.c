// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel-address invalidation gate from C, as a kernel-style caller sees
 * it: with no SVA bound, iommu_sva_invalidate_kva_range() must cost a load
 * and a not-taken branch. Three loops do the same arithmetic; one also calls
 * the gate, one an empty function in another translation unit. Prints ns per
 * iteration (best of 5); under callgrind (scripts/bench-gate.sh) the three
 * loop functions give instructions per iteration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define SVAKIT_KERNEL_NAMES /* the gate under its kernel name */
#include "svakit.h"

void bench_noop(uint64_t a, uint64_t b);

#define STEP(s, i) do { (s) = (s) * 31 + (i); __asm__ volatile("" : "+r"(s)); } while (0)

__attribute__((noinline)) uint64_t loop_empty(svakit_machine *m, uint64_t n)
{
	uint64_t s = 0;
	(void)m;
	for (uint64_t i = 0; i < n; i++)
		STEP(s, i);
	return s;
}

__attribute__((noinline)) uint64_t loop_gate(svakit_machine *m, uint64_t n)
{
	uint64_t s = 0;
	for (uint64_t i = 0; i < n; i++) {
		STEP(s, i);
		iommu_sva_invalidate_kva_range(m, s, UINT64_MAX);
	}
	return s;
}

__attribute__((noinline)) uint64_t loop_call(svakit_machine *m, uint64_t n)
{
	uint64_t s = 0;
	(void)m;
	for (uint64_t i = 0; i < n; i++) {
		STEP(s, i);
		bench_noop(s, UINT64_MAX);
	}
	return s;
}

static double ns_per_iter(uint64_t (*loop)(svakit_machine *, uint64_t), svakit_machine *m, uint64_t n)
{
	double best = 1e30;
	for (int r = 0; r < 5; r++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		volatile uint64_t sink = loop(m, n);
		(void)sink;
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n;
		if (ns < best)
			best = ns;
	}
	return best;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 200000000ULL;
	struct svakit_config cfg;
	svakit_machine *m;

	svakit_config_default(&cfg);
	cfg.frames = 1 << 18;
	if (svakit_machine_create(&cfg, &m))
		return 1;
	double e = ns_per_iter(loop_empty, m, n), g = ns_per_iter(loop_gate, m, n), c = ns_per_iter(loop_call, m, n);
	printf("{\"bench\": \"gate-c\", \"config\": {\"iterations\": %llu, \"key\": %d}, \"metrics\": "
	       "{\"ns_empty_loop\": %.3f, \"ns_gate_key_off\": %.3f, \"ns_gate_cost_key_off\": %.3f, \"ns_direct_call\": %.3f}}\n",
	       (unsigned long long)n, svakit_iommu_sva_present(m), e, g, g - e, c);
	svakit_machine_destroy(m);
	return 0;
}
