// SPDX-License-Identifier: Apache-2.0
/*
 * The io-pgtable-arm.c differential (docs/TESTING.md, "Against Linux's own
 * code" / "io-pgtable-arm.c").
 *
 * One seeded stream of IOMMU API operations runs against two page tables:
 *
 *  - Linux: drivers/iommu/io-pgtable-arm.c and io-pgtable.c of 6.12.118,
 *    compiled unchanged against ./shim: an ARM_64_LPAE_S1 table, 4 KiB
 *    granule, ias = oas = 48, pgsize_bitmap 4K | 2M | 1G, coherent walk.
 *    The driver plays drivers/iommu/iommu.c (6.12.118) around it:
 *    iommu_pgsize(), __iommu_map() with its unroll, __iommu_unmap() and
 *    iommu_unmap()'s gather and sync; and arm-smmu-v3.c's flush ops
 *    (arm_smmu_tlb_inv_walk: a synchronous non-leaf range invalidation;
 *    arm_smmu_tlb_inv_page_nosync: iommu_iotlb_gather_add_page();
 *    arm_smmu_iotlb_sync: a leaf range invalidation of the gather).
 *  - SVAKit: a DMA domain of an IOMMU with the smmuv3 profile, through the
 *    C API (svakit_iommu_map / _unmap / _iova_to_phys), its event log (table
 *    frames allocated and freed, with their level) and a C IOMMU driver
 *    (struct svakit_iommu_driver_ops) that records every invalidation.
 *
 * After every operation both sides must agree on: the return value, the
 * bytes unmapped, the translations of three probes (first, last and a random
 * granule of the range; a probe op's address), the table pages allocated and
 * freed (count by level), the walk flushes (the list of non-leaf range
 * invalidations) and the pages the leaf invalidations cover; that every
 * table SVAKit frees is freed after a fenced non-leaf (or whole-domain)
 * invalidation of the same operation, as io-pgtable-arm frees only after
 * its synchronous walk flush; and that the operation ends synced. At the end both
 * tables are freed whole and must free the same tables, and SVAKit's machine
 * check must pass. Whole-domain invalidations are shown, not compared: at
 * the free, free_io_pgtable_ops calls tlb_flush_all once, and SVAKit's
 * domain free drains the domain's flush queue (a flush) before dropping
 * its lines. The kernel's WARN_ONs are shown, not compared either
 * (__arm_lpae_unmap warns at every unmap of an unmapped range).
 *
 * The representations differ legitimately and are not compared: SVAKit's
 * tables are x86-64-format frames of its simulated memory, io-pgtable's are
 * LPAE descriptors in host memory; SVAKit's root is a frame of the machine,
 * io-pgtable's pgd a host page; SVAKit's invalidations reach the driver as
 * requests (the profile turns them into CMD_TLBI_NH_VA / _ASID), so the
 * command count is not compared, only what they cover.
 *
 * SVAKIT_SEED picks the seed (printed), SVAKIT_DIFF_OPS the operations per
 * stream (default 100000), SVAKIT_DIFF_DEBUG an IOMMU_DEBUG_PAGEALLOC mode
 * for SVAKit's machine (enum svakit_iommu_debug_mode; default off). --negative-control perturbs the physical address
 * of one map on the Linux side and succeeds only if that is caught. On a
 * mismatch the shortest stream found that shows it is printed (the prefix
 * to the failing operation, then chunks deleted ddmin-style, then single
 * operations greedily, while a mismatch persists) with both sides' answers,
 * and the program exits 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "shim/kshim.h"
#include <linux/io-pgtable.h>

#include "svakit.h"

/* ------------------------------------------------------------------ */
/* The Linux side's allocator: an arena, so a table's page index gives  */
/* its level (filled by walks, classify()) and double frees are caught.  */
/* ------------------------------------------------------------------ */

#define ARENA_PAGES (1u << 16)
static uint8_t *arena;
static int8_t arena_level[ARENA_PAGES];
static uint8_t arena_live[ARENA_PAGES];
static uint32_t arena_free[ARENA_PAGES];
static uint32_t arena_nfree, arena_next;
static uint32_t op_new[ARENA_PAGES], op_nnew; /* pages this op allocated */
static int8_t op_new_level[ARENA_PAGES];
unsigned long pgt_warnings;

#define MAX_EV 4096
struct side {
	int ret;                 /* 0 or -errno */
	uint64_t bytes;          /* unmapped bytes */
	uint64_t probe[3];       /* phys, or UINT64_MAX for none */
	uint32_t alloc[5], freed[5];      /* table pages by level 1..4 (0: unknown) */
	uint32_t nwalk;
	uint64_t walk[MAX_EV][2];         /* non-leaf invalidations [start, end] */
	uint32_t nleaf;
	uint64_t leaf[MAX_EV][2];         /* leaf invalidations [start, end], merged */
	uint32_t other;                   /* whole-PASID / all invalidations */
	bool synced;                      /* the last invalidation was followed by a sync */
	bool covering;                    /* SVAKit: a non-leaf or whole-PASID invalidation not yet fenced */
	uint64_t cover_clock;             /* SVAKit: the event clock at the first fence after one, or none */
	uint32_t unordered;               /* SVAKit: table frees that no such fence preceded */
	bool overflow;
	unsigned long warnings;
};

static struct side *cur; /* the side the callbacks record into */

static void note_inval(struct side *s, bool leaf, uint64_t start, uint64_t end)
{
	if (!s)
		return;
	if (leaf) {
		if (s->nleaf == MAX_EV) { s->overflow = true; return; }
		s->leaf[s->nleaf][0] = start;
		s->leaf[s->nleaf++][1] = end;
	} else {
		if (s->nwalk == MAX_EV) { s->overflow = true; return; }
		s->walk[s->nwalk][0] = start;
		s->walk[s->nwalk++][1] = end;
	}
	s->synced = false;
}

void *iommu_alloc_pages_node(int nid, gfp_t gfp, int order)
{
	(void)nid; (void)gfp;
	if (order != 0)
		return NULL; /* a 4K-granule 48-bit S1 table never asks for more */
	uint32_t i = arena_nfree ? arena_free[--arena_nfree] : arena_next < ARENA_PAGES ? arena_next++ : UINT32_MAX;
	if (i == UINT32_MAX)
		return NULL;
	void *p = arena + (size_t)i * 4096;
	memset(p, 0, 4096);
	arena_live[i] = 1;
	arena_level[i] = 0;
	if (op_nnew < ARENA_PAGES) {
		op_new[op_nnew] = i;
		op_new_level[op_nnew++] = -1;
	}
	return p;
}

void iommu_free_pages(void *virt, int order)
{
	uint32_t i = (uint32_t)(((uint8_t *)virt - arena) / 4096);
	if (order != 0 || i >= ARENA_PAGES || !arena_live[i]) {
		fprintf(stderr, "io-pgtable freed a page it does not own\n");
		abort();
	}
	arena_live[i] = 0;
	arena_free[arena_nfree++] = i;
	if (cur)
		cur->freed[arena_level[i]]++;
	/* One this op allocated: keep the level it had (for the op's alloc count). */
	for (uint32_t k = 0; k < op_nnew; k++)
		if (op_new[k] == i && op_new_level[k] < 0)
			op_new_level[k] = arena_level[i];
}

/* The op's allocations by level: freed ones by the level they had, live ones
 * by the level the walk after the op gave them. */
static void lx_count_allocs(struct side *s)
{
	for (uint32_t k = 0; k < op_nnew; k++)
		s->alloc[op_new_level[k] >= 0 ? op_new_level[k] : arena_level[op_new[k]]]++;
	op_nnew = 0;
}

/* Levels as SVAKit numbers them: 4 the root (ARM level 0) ... 1 the last. */
static void classify_walk(u64 *table, int lvl, u64 base, u64 lo, u64 hi)
{
	uint32_t i = (uint32_t)(((uint8_t *)table - arena) / 4096);
	arena_level[i] = (int8_t)(4 - lvl);
	if (lvl == 3)
		return;
	u64 span = 1ull << (39 - 9 * lvl);
	for (int e = 0; e < 512; e++) {
		u64 a = base + (u64)e * span;
		if (a + span - 1 < lo || a > hi)
			continue;
		u64 pte = table[e];
		if ((pte & 3) == 3)
			classify_walk((u64 *)(uintptr_t)(pte & GENMASK_ULL(47, 12)), lvl + 1, a, lo, hi);
	}
}

/* ------------------------------------------------------------------ */
/* The Linux side: io-pgtable-arm plus iommu.c's and arm-smmu-v3.c's    */
/* parts, re-stated from 6.12.118.                                      */
/* ------------------------------------------------------------------ */

static struct io_pgtable_ops *lx_ops;
static struct io_pgtable_cfg lx_cfg;
static struct iommu_iotlb_gather *lx_gather;
static const unsigned long lx_bitmap = SZ_4K | SZ_2M | SZ_1G;

/* arm_smmu_iotlb_sync: nothing for an empty gather, else a leaf invalidation. */
static void lx_iotlb_sync(struct iommu_iotlb_gather *g)
{
	if (!g->pgsize)
		return;
	note_inval(cur, true, g->start, g->end);
	if (cur)
		cur->synced = true;
}

static void lx_gather_init(struct iommu_iotlb_gather *g)
{
	memset(g, 0, sizeof(*g));
	g->start = ULONG_MAX;
}

static void lx_tlb_flush_all(void *cookie)
{
	(void)cookie;
	if (!cur)
		return;
	cur->other++;
	cur->synced = true;
}

/* arm_smmu_tlb_inv_walk: arm_smmu_tlb_inv_range_domain(leaf = false), synced. */
static void lx_tlb_flush_walk(unsigned long iova, size_t size, size_t granule, void *cookie)
{
	(void)granule; (void)cookie;
	note_inval(cur, false, iova, iova + size - 1);
	if (cur)
		cur->synced = true;
}

/* arm_smmu_tlb_inv_page_nosync -> iommu_iotlb_gather_add_page (include/linux/iommu.h). */
static void lx_tlb_add_page(struct iommu_iotlb_gather *g, unsigned long iova, size_t size, void *cookie)
{
	(void)cookie;
	unsigned long end = iova + size - 1;
	bool disjoint = g->end != 0 && (end + 1 < g->start || iova > g->end + 1); /* iommu_iotlb_gather_is_disjoint */
	if ((g->pgsize && g->pgsize != size) || disjoint) {
		lx_iotlb_sync(g);
		lx_gather_init(g);
	}
	g->pgsize = size;
	if (g->start > iova)
		g->start = iova;
	if (g->end < end)
		g->end = end;
}

static const struct iommu_flush_ops lx_flush_ops = {
	.tlb_flush_all = lx_tlb_flush_all,
	.tlb_flush_walk = lx_tlb_flush_walk,
	.tlb_add_page = lx_tlb_add_page,
};

/* drivers/iommu/iommu.c iommu_pgsize(). */
static size_t lx_pgsize(unsigned long iova, phys_addr_t paddr, size_t size, size_t *count)
{
	unsigned long addr_merge = paddr | iova, pgsizes;
	pgsizes = lx_bitmap & GENMASK(__fls(size), 0);
	if (addr_merge)
		pgsizes &= GENMASK(__ffs(addr_merge), 0);
	unsigned int idx = __fls(pgsizes);
	size_t pgsize = BIT(idx);
	pgsizes = lx_bitmap & ~GENMASK(idx, 0);
	if (pgsizes) {
		size_t next = BIT(__ffs(pgsizes));
		if (!((iova ^ paddr) & (next - 1))) {
			size_t offset = next - (addr_merge & (next - 1));
			if (offset + next <= size)
				size = offset;
		}
	}
	*count = size >> idx;
	return pgsize;
}

/* __iommu_unmap() + iommu_unmap(): gather, unmap in iommu_pgsize steps, sync. */
static size_t lx_unmap(unsigned long iova, size_t size)
{
	struct iommu_iotlb_gather g;
	size_t unmapped = 0;
	lx_gather_init(&g);
	lx_gather = &g;
	while (unmapped < size) {
		size_t count, pgsize = lx_pgsize(iova, iova, size - unmapped, &count);
		size_t u = lx_ops->unmap_pages(lx_ops, iova, pgsize, count, &g);
		if (!u)
			break;
		iova += u;
		unmapped += u;
	}
	lx_iotlb_sync(&g);
	lx_gather = NULL;
	return unmapped;
}

/* __iommu_map(): map_pages in iommu_pgsize steps; on an error unroll with iommu_unmap. */
static int lx_map(unsigned long iova, phys_addr_t paddr, size_t size, uint64_t lo, uint64_t hi)
{
	unsigned long orig_iova = iova;
	size_t orig_size = size;
	int ret = 0;
	while (size) {
		size_t count, mapped = 0, pgsize = lx_pgsize(iova, paddr, size, &count);
		ret = lx_ops->map_pages(lx_ops, iova, paddr, pgsize, count, IOMMU_READ | IOMMU_WRITE, GFP_KERNEL,
					&mapped);
		size -= mapped;
		if (ret)
			break;
		iova += mapped;
		paddr += mapped;
	}
	if (ret) {
		classify_walk((u64 *)(uintptr_t)lx_cfg.arm_lpae_s1_cfg.ttbr, 0, 0, lo, hi);
		lx_unmap(orig_iova, orig_size - size);
	}
	return ret;
}

static int lx_create(void)
{
	memset(&lx_cfg, 0, sizeof(lx_cfg));
	lx_cfg.pgsize_bitmap = lx_bitmap;
	lx_cfg.ias = 48;
	lx_cfg.oas = 48;
	lx_cfg.coherent_walk = true;
	lx_cfg.tlb = &lx_flush_ops;
	lx_ops = alloc_io_pgtable_ops(ARM_64_LPAE_S1, &lx_cfg, NULL);
	if (!lx_ops)
		return -ENOMEM;
	u64 pgd = lx_cfg.arm_lpae_s1_cfg.ttbr;
	arena_level[(pgd - (uintptr_t)arena) / 4096] = 4;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The SVAKit side.                                                     */
/* ------------------------------------------------------------------ */

static svakit_machine *sv_m;
static uint32_t sv_iommu, sv_dom;
static uint64_t sv_step;
static struct svakit_event sv_ev[1 << 15];

static void sv_inval_range(void *ctx, uint32_t pasid, uint64_t start, uint64_t end, int leaf_only)
{
	(void)ctx; (void)pasid;
	note_inval(cur, leaf_only != 0, start, end);
	if (cur && !leaf_only)
		cur->covering = true;
}
static void sv_other(void)
{
	if (!cur)
		return;
	cur->other++;
	cur->synced = false;
	cur->covering = true;
}
static void sv_inval_pasid(void *ctx, uint32_t pasid) { (void)ctx; (void)pasid; sv_other(); }
static void sv_inval_all(void *ctx) { (void)ctx; sv_other(); }
/* The event clock (the step the next event gets): read from the log, only
 * what was logged since the last call (svakit_machine_stats would give it
 * too, but measures the host's resident memory on every call). */
static struct svakit_event sv_clock_ev[1024];
static uint64_t sv_clock_since;

static uint64_t sv_clock(void)
{
	for (;;) {
		int k = svakit_event_read(sv_m, sv_clock_since, sv_clock_ev, sizeof(sv_clock_ev) / sizeof(sv_clock_ev[0]));
		if (k <= 0)
			break;
		sv_clock_since = sv_clock_ev[k - 1].step + 1;
		if ((size_t)k < sizeof(sv_clock_ev) / sizeof(sv_clock_ev[0]))
			break;
	}
	return sv_clock_since;
}

/* A fence after a table-covering invalidation: the event clock then, so
 * that sv_collect can check each table free came after one (the walk flush
 * and its sync before __arm_lpae_free_pgtable; the sync before
 * iommu_put_pages_list). The callback may call back into the machine. */
static void sv_fence(void *ctx)
{
	(void)ctx;
	if (!cur)
		return;
	cur->synced = true;
	if (cur->covering && cur->cover_clock == UINT64_MAX)
		cur->cover_clock = sv_clock();
	cur->covering = false;
}

static const struct svakit_iommu_driver_ops sv_driver = {
	.invalidate_range = sv_inval_range,
	.invalidate_pasid = sv_inval_pasid,
	.invalidate_all = sv_inval_all,
	.fence = sv_fence,
};

static int sv_create(void)
{
	struct svakit_config cfg;
	svakit_config_default(&cfg);
	cfg.frames = 1u << 20; /* 4 GiB */
	cfg.event_log_capacity = 1u << 16;
	/* SVAKIT_DIFF_DEBUG=1|2|3: the same stream with IOMMU_DEBUG_PAGEALLOC
	 * on in SVAKit (linux, fast, window-aware), whose unmap walks with a
	 * leaf sink: the tables must not change. */
	const char *dbg = getenv("SVAKIT_DIFF_DEBUG");
	if (dbg)
		cfg.iommu_debug_pagealloc = (uint32_t)strtoul(dbg, NULL, 0);
	int r = svakit_machine_create(&cfg, &sv_m);
	if (r)
		return r;
	struct svakit_iommu_config ic;
	svakit_iommu_config_default(&ic);
	ic.profile = SVAKIT_IOMMU_SMMUV3;
	if ((r = svakit_iommu_create(sv_m, &ic, &sv_iommu)) ||
	    (r = svakit_iommu_set_driver(sv_m, sv_iommu, &sv_driver, NULL)) ||
	    (r = svakit_iommu_domain_alloc(sv_m, sv_iommu, SVAKIT_DOMAIN_DMA, SVAKIT_PGSIZE_DEFAULT, &sv_dom)))
		return r;
	int n = svakit_event_read(sv_m, 0, NULL, 0);
	(void)n;
	sv_step = 0;
	/* Skip what boot and the domain's root logged. */
	for (;;) {
		int k = svakit_event_read(sv_m, sv_step, sv_ev, sizeof(sv_ev) / sizeof(sv_ev[0]));
		if (k <= 0)
			break;
		sv_step = sv_ev[k - 1].step + 1;
	}
	sv_clock_since = sv_step;
	return 0;
}

/* Table frames the op allocated and freed, from the event log. */
static void sv_collect(struct side *s)
{
	for (;;) {
		int k = svakit_event_read(sv_m, sv_step, sv_ev, sizeof(sv_ev) / sizeof(sv_ev[0]));
		if (k <= 0)
			break;
		for (int i = 0; i < k; i++) {
			const struct svakit_event *e = &sv_ev[i];
			if (e->kind != SVAKIT_FRAME_PT_IOMMU || e->level > 4)
				continue;
			if (e->type == SVAKIT_EV_FRAME_ALLOC)
				s->alloc[e->level]++;
			else if (e->type == SVAKIT_EV_FRAME_FREE) {
				s->freed[e->level]++;
				if (e->step < s->cover_clock)
					s->unordered++;
			}
		}
		sv_step = sv_ev[k - 1].step + 1;
	}
}

/* ------------------------------------------------------------------ */
/* The stream.                                                          */
/* ------------------------------------------------------------------ */

enum { OP_MAP, OP_UNMAP, OP_PROBE, OP_FREE };
struct op {
	uint8_t kind;
	uint8_t perturb; /* negative control: the Linux side maps phys + 4K */
	uint64_t iova, phys, size, probe;
};

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static uint64_t below(uint64_t n) { return rnd() % n; }

static const uint64_t zones[] = { 0, 3ull << 39, 1ull << 47, (1ull << 48) - (8ull << 30) };
#define MEM (4ull << 30)

static uint64_t gen_addr(uint64_t *align)
{
	uint64_t z = zones[below(4)], gig = below(8), a;
	unsigned c = (unsigned)below(10);
	if (c < 5) {
		*align = SZ_4K;
		a = gig * SZ_1G + below(16) * SZ_2M + below(512) * SZ_4K;
		if (below(4) == 0)
			a = gig * SZ_1G + below(16) * SZ_2M + (512 - 1 - below(4)) * SZ_4K;
	} else if (c < 8) {
		*align = SZ_2M;
		a = gig * SZ_1G + below(16) * SZ_2M;
	} else {
		*align = SZ_1G;
		a = gig * SZ_1G;
	}
	return z + a;
}

static uint64_t gen_size(uint64_t align)
{
	switch (below(10)) {
	case 0: case 1: case 2: return (1 + below(8)) * SZ_4K;
	case 3: return (1 + below(1024)) * SZ_4K;
	case 4: case 5: return (1 + below(3)) * SZ_2M;
	case 6: return SZ_2M + (1 + below(16)) * SZ_4K;
	case 7: return align == SZ_1G ? SZ_1G : SZ_2M;
	case 8: return (1 + below(2)) * SZ_1G;
	default: return SZ_1G + SZ_2M * (1 + below(3));
	}
}

static void gen_op(struct op *o)
{
	uint64_t align, pa;
	memset(o, 0, sizeof(*o));
	unsigned k = (unsigned)below(100);
	o->iova = gen_addr(&align);
	o->size = gen_size(align);
	uint64_t lim = zones[3] + (8ull << 30);
	if (o->iova + o->size > lim || (o->iova < zones[3] && o->iova + o->size > o->iova - o->iova % (8ull << 30) + (8ull << 30)))
		o->size = SZ_4K;
	o->probe = o->iova + below(o->size / SZ_4K) * SZ_4K;
	if (k < 45) {
		o->kind = OP_MAP;
		if (o->size > MEM - SZ_1G)
			o->size = SZ_1G;
		/* phys: the iova's alignment within 1G (large leaves) or any page. */
		if (below(10) < 7)
			pa = SZ_1G + (o->iova & (SZ_1G - 1));
		else
			pa = SZ_1G + below((MEM - 2 * SZ_1G) / SZ_4K) * SZ_4K;
		if (pa + o->size > MEM)
			pa = SZ_1G;
		o->phys = pa;
	} else if (k < 80) {
		o->kind = OP_UNMAP;
	} else {
		o->kind = OP_PROBE;
	}
}

/* ------------------------------------------------------------------ */
/* Running and comparing.                                               */
/* ------------------------------------------------------------------ */

static struct side lx_side, sv_side;

/* What the stream exercised (counted on agreeing ops, Linux's answers). */
static struct {
	uint64_t map_ok, map_eexist, map_replaced, unmap_ok, unmap_none, unmap_split, unmap_freed, probes_mapped,
		walk_flushes, table_allocs, table_frees;
} stats;

static void count_stats(const struct op *o)
{
	const struct side *s = &lx_side;
	uint32_t allocs = s->alloc[0] + s->alloc[1] + s->alloc[2] + s->alloc[3] + s->alloc[4];
	uint32_t frees = s->freed[0] + s->freed[1] + s->freed[2] + s->freed[3] + s->freed[4];
	stats.walk_flushes += s->nwalk;
	stats.table_allocs += allocs;
	stats.table_frees += frees;
	for (int i = 0; i < 3; i++)
		stats.probes_mapped += s->probe[i] != UINT64_MAX;
	if (o->kind == OP_MAP) {
		if (s->ret == 0)
			stats.map_ok++;
		else if (s->ret == -EEXIST)
			stats.map_eexist++;
		if (frees)
			stats.map_replaced++;
	} else if (o->kind == OP_UNMAP) {
		if (s->bytes)
			stats.unmap_ok++;
		else
			stats.unmap_none++;
		if (allocs)
			stats.unmap_split++;
		if (frees)
			stats.unmap_freed++;
	}
}

static void side_reset(struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->synced = true;
	s->cover_clock = UINT64_MAX;
}

static int cmp_range(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Sorts the walk list; sorts and merges the leaf list into disjoint ranges. */
static void side_normalise(struct side *s)
{
	qsort(s->walk, s->nwalk, sizeof(s->walk[0]), cmp_range);
	qsort(s->leaf, s->nleaf, sizeof(s->leaf[0]), cmp_range);
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->nleaf; i++) {
		if (n && s->leaf[i][0] <= s->leaf[n - 1][1] + 1) {
			if (s->leaf[i][1] > s->leaf[n - 1][1])
				s->leaf[n - 1][1] = s->leaf[i][1];
		} else {
			s->leaf[n][0] = s->leaf[i][0];
			s->leaf[n++][1] = s->leaf[i][1];
		}
	}
	s->nleaf = n;
}

static uint64_t lx_probe(uint64_t iova)
{
	phys_addr_t p = lx_ops->iova_to_phys(lx_ops, iova);
	return p ? p : UINT64_MAX;
}

static uint64_t sv_probe(uint64_t iova)
{
	uint64_t p;
	return svakit_iommu_iova_to_phys(sv_m, sv_dom, iova, &p) ? UINT64_MAX : p;
}

static int run_one(const struct op *o)
{
	side_reset(&lx_side);
	side_reset(&sv_side);
	uint64_t lo = o->iova, hi = o->iova + o->size - 1;
	uint64_t probes[3] = { o->iova, o->iova + o->size - SZ_4K, o->probe };
	if (o->kind == OP_PROBE)
		probes[0] = probes[1] = o->probe;

	/* Linux. */
	cur = &lx_side;
	unsigned long w0 = pgt_warnings;
	switch (o->kind) {
	case OP_MAP:
		lx_side.ret = lx_map(o->iova, o->phys + (o->perturb ? SZ_4K : 0), o->size, lo, hi);
		break;
	case OP_UNMAP:
		lx_side.bytes = lx_unmap(o->iova, o->size);
		lx_side.ret = lx_side.bytes ? 0 : -ENOENT;
		break;
	case OP_FREE:
		free_io_pgtable_ops(lx_ops);
		lx_ops = NULL;
		break;
	}
	if (lx_ops)
		classify_walk((u64 *)(uintptr_t)lx_cfg.arm_lpae_s1_cfg.ttbr, 0, 0, lo, hi);
	lx_side.warnings = pgt_warnings - w0;
	lx_count_allocs(&lx_side);
	for (int i = 0; i < 3 && o->kind != OP_FREE; i++)
		lx_side.probe[i] = lx_probe(probes[i]);
	cur = NULL;

	/* SVAKit. */
	cur = &sv_side;
	switch (o->kind) {
	case OP_MAP:
		sv_side.ret = svakit_iommu_map(sv_m, sv_dom, o->iova, o->phys, o->size,
					       SVAKIT_IOMMU_READ | SVAKIT_IOMMU_WRITE);
		break;
	case OP_UNMAP: {
		uint64_t u = 0;
		sv_side.ret = svakit_iommu_unmap(sv_m, sv_dom, o->iova, o->size, &u);
		sv_side.bytes = sv_side.ret ? 0 : u;
		break;
	}
	case OP_FREE:
		sv_side.ret = svakit_iommu_domain_free(sv_m, sv_dom);
		break;
	}
	for (int i = 0; i < 3 && o->kind != OP_FREE; i++)
		sv_side.probe[i] = sv_probe(probes[i]);
	sv_collect(&sv_side);
	if (o->kind == OP_FREE && svakit_machine_check(sv_m))
		sv_side.ret = -EUCLEAN;
	cur = NULL;
	return 0;
}

static bool side_equal(void)
{
	side_normalise(&lx_side);
	side_normalise(&sv_side);
	if (lx_side.ret != sv_side.ret || lx_side.bytes != sv_side.bytes)
		return false;
	if (memcmp(lx_side.probe, sv_side.probe, sizeof(lx_side.probe)))
		return false;
	if (memcmp(lx_side.alloc, sv_side.alloc, sizeof(lx_side.alloc)) ||
	    memcmp(lx_side.freed, sv_side.freed, sizeof(lx_side.freed)))
		return false;
	if (lx_side.nwalk != sv_side.nwalk || memcmp(lx_side.walk, sv_side.walk, lx_side.nwalk * sizeof(lx_side.walk[0])))
		return false;
	if (lx_side.nleaf != sv_side.nleaf || memcmp(lx_side.leaf, sv_side.leaf, lx_side.nleaf * sizeof(lx_side.leaf[0])))
		return false;
	/* lx_side.warnings is shown, not compared: __arm_lpae_unmap WARNs on
	 * every unmap of an unmapped range, which the stream does on purpose. */
	if (!sv_side.synced || sv_side.unordered || lx_side.overflow || sv_side.overflow)
		return false;
	return true;
}

static const char *op_name[] = { "map", "unmap", "probe", "free-domain" };

static void print_op(size_t i, const struct op *o)
{
	switch (o->kind) {
	case OP_MAP:
		printf("  #%zu map   iova %#" PRIx64 " size %#" PRIx64 " phys %#" PRIx64 "%s\n", i, o->iova, o->size,
		       o->phys, o->perturb ? "  (Linux side: phys + 4K, the negative control)" : "");
		break;
	case OP_UNMAP:
		printf("  #%zu unmap iova %#" PRIx64 " size %#" PRIx64 "\n", i, o->iova, o->size);
		break;
	case OP_PROBE:
		printf("  #%zu probe iova %#" PRIx64 "\n", i, o->probe);
		break;
	default:
		printf("  #%zu %s\n", i, op_name[o->kind]);
	}
}

static void print_side(const char *name, const struct side *s)
{
	printf("    %-7s ret %d bytes %#" PRIx64 " probes", name, s->ret, s->bytes);
	for (int i = 0; i < 3; i++)
		if (s->probe[i] == UINT64_MAX)
			printf(" -");
		else
			printf(" %#" PRIx64, s->probe[i]);
	printf(" | tables alloc L1..4 %u %u %u %u (?%u) freed %u %u %u %u (?%u)", s->alloc[1], s->alloc[2],
	       s->alloc[3], s->alloc[4], s->alloc[0], s->freed[1], s->freed[2], s->freed[3], s->freed[4], s->freed[0]);
	printf(" | walk flushes");
	for (uint32_t i = 0; i < s->nwalk && i < 8; i++)
		printf(" [%#" PRIx64 ",%#" PRIx64 "]", s->walk[i][0], s->walk[i][1]);
	if (s->nwalk > 8)
		printf(" ...(%u)", s->nwalk);
	printf(" | leaf");
	for (uint32_t i = 0; i < s->nleaf && i < 8; i++)
		printf(" [%#" PRIx64 ",%#" PRIx64 "]", s->leaf[i][0], s->leaf[i][1]);
	if (s->nleaf > 8)
		printf(" ...(%u)", s->nleaf);
	printf(" | other %u%s%s", s->other, s->synced ? "" : " NOT SYNCED", s->overflow ? " OVERFLOW" : "");
	if (s->unordered)
		printf(" | %u table frees before any fenced walk flush", s->unordered);
	if (s->warnings)
		printf(" | %lu kernel WARN_ON", s->warnings);
	printf("\n");
}

static void teardown(void)
{
	if (lx_ops)
		free_io_pgtable_ops(lx_ops);
	lx_ops = NULL;
	if (sv_m)
		svakit_machine_destroy(sv_m);
	sv_m = NULL;
	memset(arena_live, 0, sizeof(arena_live));
	arena_next = arena_nfree = 0;
	op_nnew = 0;
}

static int setup(void)
{
	teardown();
	cur = &lx_side;
	side_reset(&lx_side);
	int r = lx_create();
	op_nnew = 0;
	cur = NULL;
	if (r)
		return r;
	return sv_create();
}

/* Runs ops[0..n) and a final domain free; returns the index of the first
 * operation the sides disagree on (n for the free), or -1. */
static bool counting;
static uint8_t *map_ok; /* the negative control's pick: which maps succeed */

static long run_stream(const struct op *ops, size_t n, bool verbose)
{
	if (setup()) {
		fprintf(stderr, "setup failed\n");
		exit(2);
	}
	for (size_t i = 0; i <= n; i++) {
		struct op fin = { .kind = OP_FREE };
		const struct op *o = i < n ? &ops[i] : &fin;
		run_one(o);
		bool same = side_equal();
		if (map_ok && o->kind == OP_MAP)
			map_ok[i] = lx_side.ret == 0;
		if (same && counting)
			count_stats(o);
		if (!same) {
			if (verbose) {
				print_op(i, o);
				print_side("Linux", &lx_side);
				print_side("SVAKit", &sv_side);
			}
			teardown();
			return (long)i;
		}
	}
	teardown();
	return -1;
}

/* Delete chunks (halving their size down to one op) while the stream still
 * shows a mismatch; the prefix up to the first mismatch comes first. */
static size_t minimise(struct op *ops, size_t n)
{
	long f = run_stream(ops, n, false);
	if (f < 0)
		return n;
	n = (size_t)f < n ? (size_t)f + 1 : n;
	struct op *tmp = malloc(n * sizeof(*tmp));
	for (size_t chunk = n / 2; chunk >= 1; chunk /= 2) {
		for (size_t at = 0; at + chunk <= n;) {
			size_t m = 0;
			memcpy(tmp, ops, at * sizeof(*ops));
			m = at;
			memcpy(tmp + m, ops + at + chunk, (n - at - chunk) * sizeof(*ops));
			m += n - at - chunk;
			long g = run_stream(tmp, m, false);
			if (g >= 0) {
				size_t keep = (size_t)g < m ? (size_t)g + 1 : m;
				memcpy(ops, tmp, keep * sizeof(*ops));
				n = keep;
			} else {
				at += chunk;
			}
		}
		if (chunk == 1)
			break;
	}
	free(tmp);
	return n;
}

int main(int argc, char **argv)
{
	bool control = argc > 1 && !strcmp(argv[1], "--negative-control");
	const char *e = getenv("SVAKIT_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
	e = getenv("SVAKIT_DIFF_OPS");
	size_t n = e ? strtoull(e, NULL, 0) : 100000;
	printf("diff_pgtable: io-pgtable-arm.c (6.12.118, ARM_64_LPAE_S1, 4K granule, ias/oas 48) vs SVAKit smmuv3; "
	       "SVAKIT_SEED=%" PRIu64 ", %zu ops%s\n", seed, n, control ? ", negative control" : "");
	arena = mmap(NULL, (size_t)ARENA_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		     -1, 0);
	if (arena == MAP_FAILED)
		return 2;
	rng = seed * 0x9e3779b97f4a7c15ull + 1;
	struct op *ops = malloc((n ? n : 1) * sizeof(*ops));
	for (size_t i = 0; i < n; i++)
		gen_op(&ops[i]);
	size_t perturbed = SIZE_MAX;
	if (control) {
		/* The unperturbed stream must agree; then the first map from a
		 * third of the way on that succeeds gets phys + 4K on the Linux
		 * side, and the sides must disagree exactly there. */
		map_ok = calloc(n ? n : 1, 1);
		long clean = run_stream(ops, n, false);
		if (clean >= 0) {
			printf("the unperturbed stream already disagrees at op #%ld: no control\n", clean);
			return 1;
		}
		for (size_t i = n / 3; i < n && perturbed == SIZE_MAX; i++)
			if (ops[i].kind == OP_MAP && map_ok[i])
				perturbed = i;
		free(map_ok);
		map_ok = NULL;
		if (perturbed == SIZE_MAX) {
			printf("no successful map to perturb\n");
			return 1;
		}
		ops[perturbed].perturb = 1;
		printf("perturbing op #%zu on the Linux side\n", perturbed);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	counting = true;
	long f = run_stream(ops, n, false);
	counting = false;
	if (control && f >= 0 && (size_t)f != perturbed) {
		printf("perturbed stream disagrees at op #%ld, not at the perturbed #%zu\n", f, perturbed);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (f < 0) {
		printf("agree: %zu ops and the domain free, %.2f s\n", n, secs);
		printf("exercised: maps %" PRIu64 " (-EEXIST %" PRIu64 ", over a table %" PRIu64 "), unmaps %" PRIu64
		       " (of nothing %" PRIu64 ", splitting a block %" PRIu64 ", freeing tables %" PRIu64 "), "
		       "probes that hit %" PRIu64 ", walk flushes %" PRIu64 ", table pages allocated %" PRIu64
		       " and freed %" PRIu64 "\n",
		       stats.map_ok, stats.map_eexist, stats.map_replaced, stats.unmap_ok, stats.unmap_none,
		       stats.unmap_split, stats.unmap_freed, stats.probes_mapped, stats.walk_flushes, stats.table_allocs,
		       stats.table_frees);
		free(ops);
		if (control) {
			printf("NEGATIVE CONTROL NOT CAUGHT\n");
			return 1;
		}
		return 0;
	}
	printf("MISMATCH at op #%ld of %zu (%.2f s); minimising...\n", f, n, secs);
	size_t m = minimise(ops, n);
	printf("shortest stream found (%zu ops), then the disagreement:\n", m);
	for (size_t i = 0; i < m; i++)
		print_op(i, &ops[i]);
	run_stream(ops, m, true);
	free(ops);
	if (control) {
		printf("negative control caught\n");
		return 0;
	}
	return 1;
}
