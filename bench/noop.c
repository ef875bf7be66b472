// SPDX-License-Identifier: Apache-2.0
#include <stdint.h>

void bench_noop(uint64_t a, uint64_t b);
void bench_noop(uint64_t a, uint64_t b)
{
	__asm__ volatile("" : : "r"(a), "r"(b) : "memory");
}
