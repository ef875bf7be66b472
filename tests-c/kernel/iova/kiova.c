// SPDX-License-Identifier: Apache-2.0
/*
 * Linux's drivers/iommu/iova.c, compiled as it is (the #include below) with
 * the shim in shim/, and the accessors the differential needs: they read
 * iova.c's private structs (iova_rcache, iova_cpu_rcache, iova_magazine)
 * directly, which is why they live in the same translation unit.
 */
#include "kshim.h"
#include <iova.c>
#include "kiova.h"

struct iova_domain *kiova_create(unsigned long granule, unsigned long start_pfn, unsigned int cpus)
{
	struct iova_domain *d = calloc(1, sizeof(*d));

	BUG_ON(!d || cpus > SHIM_MAX_CPUS || cpus > 64);
	shim_nr_cpus = cpus;
	shim_current_cpu = 0;
	shim_reset_works();
	BUG_ON(iova_cache_get());
	init_iova_domain(d, granule, start_pfn);
	BUG_ON(iova_domain_init_rcaches(d));
	return d;
}

void kiova_destroy(struct iova_domain *d)
{
	put_iova_domain(d);
	iova_cache_put();
	free(d);
}

unsigned long kiova_alloc_fast(struct iova_domain *d, unsigned int cpu, unsigned long size,
			       unsigned long limit_pfn, int flush)
{
	shim_current_cpu = cpu;
	return alloc_iova_fast(d, size, limit_pfn, flush);
}

void kiova_free_fast(struct iova_domain *d, unsigned int cpu, unsigned long pfn, unsigned long size)
{
	shim_current_cpu = cpu;
	free_iova_fast(d, pfn, size);
}

unsigned long kiova_alloc(struct iova_domain *d, unsigned long size, unsigned long limit_pfn, int aligned)
{
	struct iova *iova = alloc_iova(d, size, limit_pfn, aligned);

	return iova ? iova->pfn_lo : 0;
}

void kiova_free(struct iova_domain *d, unsigned long pfn)
{
	free_iova(d, pfn);
}

int kiova_reserve(struct iova_domain *d, unsigned long lo, unsigned long hi)
{
	return reserve_iova(d, lo, hi) != NULL;
}

void kiova_free_cpu_cached(struct iova_domain *d, unsigned int cpu)
{
	free_cpu_cached_iovas(cpu, d);
}

int kiova_run_works(void)
{
	return shim_run_pending_works();
}

void kiova_stats(struct iova_domain *d, struct kiova_stats *s, int count_nodes)
{
	memset(s, 0, sizeof(*s));
	s->cached_node_lo = to_iova(d->cached_node)->pfn_lo;
	s->cached32_node_lo = to_iova(d->cached32_node)->pfn_lo;
	s->max32_alloc_size = d->max32_alloc_size;
	s->dma_32bit_pfn = d->dma_32bit_pfn;
	for (int i = 0; i < IOVA_RANGE_CACHE_MAX_SIZE; i++) {
		struct iova_rcache *rc = &d->rcaches[i];
		unsigned int cpu;

		s->depot_size[i] = rc->depot_size;
		s->depot_work_pending[i] = rc->work.pending;
		for_each_possible_cpu(cpu) {
			struct iova_cpu_rcache *c = per_cpu_ptr(rc->cpu_rcaches, cpu);

			s->loaded[cpu][i] = c->loaded->size;
			s->prev[cpu][i] = c->prev->size;
		}
	}
	if (count_nodes) {
		for (struct rb_node *n = rb_first(&d->rbroot); n; n = rb_next(n))
			s->nodes++;
		s->nodes--; /* the anchor */
	}
}

unsigned long kiova_warnings(void)
{
	return shim_warnings;
}
