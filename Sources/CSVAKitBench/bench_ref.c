// SPDX-License-Identifier: Apache-2.0
#include "svakit_bench.h"

uint64_t svakit_bench_ref_walk(const void *mem, uint64_t root_pfn, unsigned levels,
			       const uint64_t *vas, size_t n, size_t rounds)
{
	const uint8_t *base = mem;
	uint64_t sum = 0;

	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < n; i++) {
			uint64_t va = vas[i], table = root_pfn, e = 0;
			for (unsigned level = levels; level >= 1; level--) {
				const uint64_t *t = (const uint64_t *)(base + (table << 12));
				e = t[(va >> (12 + 9 * (level - 1))) & 511];
				if (!(e & 1))
					break;
				if (level <= 3 && (e & 0x80))
					break;
				table = (e & 0x000ffffffffff000ULL) >> 12;
			}
			sum += e & 0x000ffffffffff000ULL;
		}
	}
	return sum;
}

void svakit_bench_noop(uint64_t a, uint64_t b)
{
	__asm__ volatile("" : : "r"(a), "r"(b) : "memory");
}
