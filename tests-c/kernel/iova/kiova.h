/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The differential's window on Linux's drivers/iommu/iova.c (6.12.118),
 * compiled by kiova.c with the shim: one entry per operation the streams
 * use, and the kernel's own struct fields read back. Names are kiova_ so
 * nothing collides with iova.c's or svakit.h's symbols.
 */
#ifndef KIOVA_H
#define KIOVA_H
#include <stdint.h>

struct iova_domain;

struct kiova_stats {
	uint64_t cached_node_lo, cached32_node_lo, max32_alloc_size, dma_32bit_pfn;
	uint32_t depot_size[6];
	uint8_t depot_work_pending[6];
	uint32_t loaded[64][6], prev[64][6];
	uint64_t nodes; /* only when asked: a walk of the tree */
};

struct iova_domain *kiova_create(unsigned long granule, unsigned long start_pfn, unsigned int cpus);
void kiova_destroy(struct iova_domain *d);
unsigned long kiova_alloc_fast(struct iova_domain *d, unsigned int cpu, unsigned long size,
			       unsigned long limit_pfn, int flush);
void kiova_free_fast(struct iova_domain *d, unsigned int cpu, unsigned long pfn, unsigned long size);
unsigned long kiova_alloc(struct iova_domain *d, unsigned long size, unsigned long limit_pfn, int aligned);
void kiova_free(struct iova_domain *d, unsigned long pfn);
int kiova_reserve(struct iova_domain *d, unsigned long lo, unsigned long hi);
void kiova_free_cpu_cached(struct iova_domain *d, unsigned int cpu);
int kiova_run_works(void);
void kiova_stats(struct iova_domain *d, struct kiova_stats *s, int count_nodes);
unsigned long kiova_warnings(void);
#endif
