// SPDX-License-Identifier: Apache-2.0
/*
 * iova_diff: Linux's drivers/iommu/iova.c (6.12.118, compiled in userspace by
 * kiova.c) and SVAKit's IOVA allocator (include/svakit.h, "The IOVA allocator
 * as a library") run the same seeded operation streams, and must agree at
 * every step: each returned pfn, and after each operation both cached nodes,
 * max32_alloc_size, every CPU's loaded and prev magazine sizes per size
 * class, each depot's size and whether its work is pending (and, every 256
 * operations, how many ranges the tree holds).
 *
 *   iova_diff [--ops N] [--perturb K]      SVAKIT_SEED=S picks the seed
 *
 * On a mismatch it replays the stream's prefix up to the failing operation,
 * deletes operations (chunks, then single ones) while the mismatch persists,
 * prints what is left with both sides' answers, and exits 1. --perturb K is
 * the negative control: the first alloc_iova_fast at or after operation K
 * asks SVAKit for twice the pages Linux is asked for (always another size
 * once alloc_iova_fast rounds it up: one page more was not, for 3 pages
 * against 4); the run must be caught and shrunk to a few operations
 * (exit 0), or it fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiova.h"
#include "svakit.h"

enum op_kind { OP_ALLOC_FAST, OP_FREE_FAST, OP_ALLOC, OP_FREE, OP_RESERVE, OP_RUN_WORK, OP_FREE_CPU };
static const char *const op_names[] = { "alloc_iova_fast", "free_iova_fast", "alloc_iova", "free_iova",
					"reserve_iova", "run_depot_work", "free_cpu_cached_iovas" };

struct op {
	uint8_t kind, cpu, flag;
	uint32_t id;   /* index in the generated stream */
	uint32_t ref;  /* frees: the id of the allocation freed */
	uint64_t a, b; /* size and limit_pfn; reserve: lo and hi */
};

struct shape {
	const char *name;
	unsigned long granule, start_pfn;
	unsigned int cpus;
	unsigned long limits[3];
	unsigned int limit_weight[3]; /* percent */
	unsigned long reserves[2][2];
	int nreserves;
	int hold_max;
	int reserve_ops, tiny_limits;
};

static const struct shape shapes[] = {
	{ "wide: 4 KiB granule, 4 CPUs, 32-bit and 36-bit limits", 4096, 1, 4,
	  { 0xFFFFFUL, (1UL << 36) - 1, 0 }, { 55, 45, 0 }, { { 0 } }, 0, 8000, 1, 0 },
	{ "tight: 2 CPUs, ~3000 pages under 4 GiB and 1024 above, most reserved", 4096, 1, 2,
	  { 0xFFFFFUL, 0x100000UL + 1023, 1500 }, { 50, 40, 10 },
	  { { 2048, 0xFFFFFUL - 1024 }, { 0x100000UL + 1024, 1UL << 40 } }, 2, 3000, 0, 0 },
	{ "small granule: 512 B, start_pfn 0x80, 3 CPUs, limits near 2^23", 512, 0x80, 3,
	  { (1UL << 23) - 1, (1UL << 23) + 5000, 300 }, { 50, 45, 5 }, { { 0 } }, 0, 5000, 1, 1 },
};
#define NSHAPES (int)(sizeof(shapes) / sizeof(shapes[0]))

/* SplitMix64 */
static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return rnd() % n; }

static char mismatch[1024];
static void why(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(mismatch, sizeof(mismatch), fmt, ap);
	va_end(ap);
}

struct run {
	const struct shape *sh;
	struct iova_domain *k;
	struct svakit_iova_domain *s;
	/* per allocation id: pfn (0: none live), asked size, how it was made */
	uint64_t *pfn, *size;
	uint8_t *fast;
	uint32_t *held; /* ids of live allocations, for the generator */
	int nheld;
	int *held_at;  /* id -> index in held, or -1 */
	uint64_t kres, sres; /* the answers of the last operation */
	unsigned long flushes_seen, fails, depot_max, works_run, mag_max;
	int held_max;
};

static void held_add(struct run *r, uint32_t id)
{
	r->held_at[id] = r->nheld;
	r->held[r->nheld++] = id;
}

static void held_del(struct run *r, uint32_t id)
{
	int i = r->held_at[id];
	uint32_t last = r->held[--r->nheld];

	r->held[i] = last;
	r->held_at[last] = i;
	r->held_at[id] = -1;
}

static void gen(struct run *r, struct op *o, uint32_t id, int phase_grow, unsigned int *last_cpu)
{
	const struct shape *sh = r->sh;
	uint64_t x = below(1000);
	int want_alloc = phase_grow ? x < 850 : x < 120;

	memset(o, 0, sizeof(*o));
	o->id = id;
	if (r->nheld >= sh->hold_max)
		want_alloc = 0;
	if (r->nheld == 0)
		want_alloc = 1;
	uint64_t y = below(1000);
	if (y < 15) {
		o->kind = OP_RUN_WORK;
		return;
	}
	if (y < 18) {
		o->kind = OP_FREE_CPU;
		o->cpu = (uint8_t)below(sh->cpus);
		return;
	}
	if (y < 20 && sh->reserve_ops) {
		uint64_t top = sh->limits[0];
		o->kind = OP_RESERVE;
		o->a = sh->start_pfn + below(top - sh->start_pfn);
		o->b = o->a + below(below(4) == 0 ? 200 : 8);
		return;
	}
	if (want_alloc) {
		uint64_t s = below(100), size;
		if (s < 50) size = 1;
		else if (s < 65) size = 2;
		else if (s < 75) size = 3 + below(2);
		else if (s < 82) size = 5 + below(4);
		else if (s < 88) size = 9 + below(8);
		else if (s < 92) size = 17 + below(16);
		else size = 33 + below(48);
		uint64_t l = below(100), limit;
		if (l < sh->limit_weight[0]) limit = sh->limits[0];
		else if (l < sh->limit_weight[0] + sh->limit_weight[1]) limit = sh->limits[1];
		else limit = sh->limits[2];
		if (sh->tiny_limits && below(100) < 2)
			limit = below(48);
		if (below(1000) < 999)
			o->cpu = (uint8_t)*last_cpu;
		else
			o->cpu = (uint8_t)(*last_cpu = (unsigned int)below(sh->cpus));
		o->a = size;
		o->b = limit;
		if (below(100) < 92) {
			o->kind = OP_ALLOC_FAST;
			o->flag = below(100) < 70;
		} else {
			o->kind = OP_ALLOC;
			o->flag = below(2);
		}
		return;
	}
	uint32_t ref = r->held[below(r->nheld)];
	o->ref = ref;
	/* Frees stick to one CPU for a while too, so its magazines fill and
	 * overflow into the depot. */
	if (below(1000) < 999)
		o->cpu = (uint8_t)*last_cpu;
	else
		o->cpu = (uint8_t)(*last_cpu = (unsigned int)below(sh->cpus));
	o->kind = r->fast[ref] && below(100) < 95 ? OP_FREE_FAST : OP_FREE;
	o->a = r->size[ref];
}

static void run_open(struct run *r, const struct shape *sh, uint32_t nids)
{
	memset(r, 0, sizeof(*r));
	r->sh = sh;
	r->k = kiova_create(sh->granule, sh->start_pfn, sh->cpus);
	if (svakit_iova_domain_create(sh->granule, sh->start_pfn, sh->cpus, &r->s)) {
		fprintf(stderr, "svakit_iova_domain_create failed\n");
		exit(2);
	}
	r->pfn = calloc(nids, sizeof(*r->pfn));
	r->size = calloc(nids, sizeof(*r->size));
	r->fast = calloc(nids, 1);
	r->held = calloc(nids, sizeof(*r->held));
	r->held_at = malloc(nids * sizeof(*r->held_at));
	for (uint32_t i = 0; i < nids; i++)
		r->held_at[i] = -1;
	for (int i = 0; i < sh->nreserves; i++) {
		kiova_reserve(r->k, sh->reserves[i][0], sh->reserves[i][1]);
		svakit_reserve_iova(r->s, sh->reserves[i][0], sh->reserves[i][1]);
	}
}

static void run_close(struct run *r)
{
	kiova_destroy(r->k);
	svakit_iova_domain_destroy(r->s);
	free(r->pfn);
	free(r->size);
	free(r->fast);
	free(r->held);
	free(r->held_at);
}

/* Compares the two sides' state; 0 when equal, else describes it. */
static int compare_state(struct run *r, int count_nodes)
{
	struct kiova_stats k;
	struct svakit_iova_stats s;
	struct svakit_iova_cpu_stats c;

	kiova_stats(r->k, &k, count_nodes);
	if (svakit_iova_stats(r->s, &s)) {
		why("svakit_iova_stats failed");
		return 1;
	}
	if (k.cached_node_lo != s.cached_node_lo) {
		why("cached_node: Linux pfn_lo %#lx, SVAKit %#lx", (unsigned long)k.cached_node_lo,
		    (unsigned long)s.cached_node_lo);
		return 1;
	}
	if (k.cached32_node_lo != s.cached32_node_lo) {
		why("cached32_node: Linux pfn_lo %#lx, SVAKit %#lx", (unsigned long)k.cached32_node_lo,
		    (unsigned long)s.cached32_node_lo);
		return 1;
	}
	if (k.max32_alloc_size != s.max32_alloc_size) {
		why("max32_alloc_size: Linux %lu, SVAKit %lu", (unsigned long)k.max32_alloc_size,
		    (unsigned long)s.max32_alloc_size);
		return 1;
	}
	if (k.dma_32bit_pfn != s.dma_32bit_pfn) {
		why("dma_32bit_pfn: Linux %#lx, SVAKit %#lx", (unsigned long)k.dma_32bit_pfn,
		    (unsigned long)s.dma_32bit_pfn);
		return 1;
	}
	for (int i = 0; i < 6; i++) {
		if (k.depot_size[i] > r->depot_max)
			r->depot_max = k.depot_size[i];
		if (k.depot_size[i] != s.depot_size[i]) {
			why("depot_size of order %d: Linux %u, SVAKit %u", i, k.depot_size[i], s.depot_size[i]);
			return 1;
		}
		if (k.depot_work_pending[i] != s.depot_work_pending[i]) {
			why("depot work of order %d pending: Linux %u, SVAKit %u", i, k.depot_work_pending[i],
			    s.depot_work_pending[i]);
			return 1;
		}
	}
	for (unsigned int cpu = 0; cpu < r->sh->cpus; cpu++) {
		if (svakit_iova_cpu_stats(r->s, cpu, &c)) {
			why("svakit_iova_cpu_stats failed");
			return 1;
		}
		for (int i = 0; i < 6; i++) {
			if (k.loaded[cpu][i] != c.loaded[i] || k.prev[cpu][i] != c.prev[i]) {
				why("CPU %u order %d: Linux loaded %u prev %u, SVAKit loaded %u prev %u", cpu, i,
				    k.loaded[cpu][i], k.prev[cpu][i], c.loaded[i], c.prev[i]);
				return 1;
			}
		}
	}
	for (unsigned int cpu = 0; cpu < r->sh->cpus; cpu++)
		for (int i = 0; i < 6; i++)
			if (k.loaded[cpu][i] + k.prev[cpu][i] > r->mag_max)
				r->mag_max = k.loaded[cpu][i] + k.prev[cpu][i];
	if (r->nheld > r->held_max)
		r->held_max = r->nheld;
	if (count_nodes && k.nodes != s.nodes) {
		why("ranges in the tree: Linux %lu, SVAKit %lu", (unsigned long)k.nodes, (unsigned long)s.nodes);
		return 1;
	}
	return 0;
}

/* Applies one operation to both sides; 0 when they agree. Frees of an
 * allocation that is not live (deleted by the minimiser, or failed) are
 * skipped on both sides. */
static int step(struct run *r, const struct op *o, uint32_t perturb_id, int count_nodes)
{
	uint64_t sp = 0;
	int rc = 0;

	r->kres = r->sres = 0;
	switch (o->kind) {
	case OP_ALLOC_FAST: {
		uint64_t ssize = o->id == perturb_id ? 2 * o->a : o->a;
		r->kres = kiova_alloc_fast(r->k, o->cpu, o->a, o->b, o->flag);
		rc = svakit_alloc_iova_fast(r->s, o->cpu, ssize, o->b, o->flag, &sp);
		if (rc != 0 && rc != -ENOSPC) {
			why("svakit_alloc_iova_fast returned %d", rc);
			return 1;
		}
		r->sres = rc ? 0 : sp;
		if (r->kres) {
			r->pfn[o->id] = r->kres;
			r->size[o->id] = o->a;
			r->fast[o->id] = 1;
			held_add(r, o->id);
		} else {
			r->fails++;
		}
		break;
	}
	case OP_ALLOC:
		r->kres = kiova_alloc(r->k, o->a, o->b, o->flag);
		rc = svakit_alloc_iova(r->s, o->a, o->b, o->flag, &sp);
		if (rc != 0 && rc != -ENOSPC) {
			why("svakit_alloc_iova returned %d", rc);
			return 1;
		}
		r->sres = rc ? 0 : sp;
		if (r->kres) {
			r->pfn[o->id] = r->kres;
			r->size[o->id] = o->a;
			r->fast[o->id] = 0;
			held_add(r, o->id);
		}
		break;
	case OP_FREE_FAST:
	case OP_FREE: {
		uint64_t pfn = r->pfn[o->ref];
		if (!pfn || r->held_at[o->ref] < 0)
			return 0;
		r->kres = r->sres = pfn;
		if (o->kind == OP_FREE_FAST) {
			kiova_free_fast(r->k, o->cpu, pfn, r->size[o->ref]);
			rc = svakit_free_iova_fast(r->s, o->cpu, pfn, r->size[o->ref]);
		} else {
			kiova_free(r->k, pfn);
			rc = svakit_free_iova(r->s, pfn);
		}
		r->pfn[o->ref] = 0;
		held_del(r, o->ref);
		if (rc) {
			why("SVAKit's %s(%#lx) returned %d", op_names[o->kind], (unsigned long)pfn, rc);
			return 1;
		}
		break;
	}
	case OP_RESERVE:
		r->kres = (uint64_t)kiova_reserve(r->k, o->a, o->b);
		r->sres = svakit_reserve_iova(r->s, o->a, o->b) == 0;
		break;
	case OP_RUN_WORK:
		r->kres = (uint64_t)kiova_run_works();
		r->sres = (uint64_t)svakit_iova_run_depot_work(r->s);
		r->works_run += r->kres;
		break;
	case OP_FREE_CPU:
		kiova_free_cpu_cached(r->k, o->cpu);
		if (svakit_free_cpu_cached_iovas(r->s, o->cpu)) {
			why("svakit_free_cpu_cached_iovas failed");
			return 1;
		}
		break;
	}
	if (r->kres != r->sres) {
		why("%s: Linux %#lx, SVAKit %#lx", op_names[o->kind], (unsigned long)r->kres, (unsigned long)r->sres);
		return 1;
	}
	if (kiova_warnings()) {
		why("iova.c warned (see above)");
		return 1;
	}
	return compare_state(r, count_nodes);
}

/* Replays ops[0..n); the index of the first mismatching one, or -1. */
static int replay(const struct shape *sh, const struct op *ops, int n, uint32_t nids, uint32_t perturb_id,
		  int verbose)
{
	struct run r;
	int bad = -1;

	run_open(&r, sh, nids);
	for (int i = 0; i < n; i++) {
		const struct op *o = &ops[i];
		int m = step(&r, o, perturb_id, (i & 255) == 255 || verbose);

		if (verbose) {
			if (o->kind == OP_FREE_FAST || o->kind == OP_FREE)
				printf("  #%-7u %-22s cpu %u  alloc #%u (size %lu)  -> pfn %#lx\n", o->id,
				       op_names[o->kind], o->cpu, o->ref, (unsigned long)o->a, (unsigned long)r.kres);
			else if (o->kind == OP_RESERVE)
				printf("  #%-7u %-22s [%#lx, %#lx]  -> Linux %lu, SVAKit %lu\n", o->id, op_names[o->kind],
				       (unsigned long)o->a, (unsigned long)o->b, (unsigned long)r.kres,
				       (unsigned long)r.sres);
			else if (o->kind == OP_RUN_WORK || o->kind == OP_FREE_CPU)
				printf("  #%-7u %-22s cpu %u  -> Linux %lu, SVAKit %lu\n", o->id, op_names[o->kind],
				       o->cpu, (unsigned long)r.kres, (unsigned long)r.sres);
			else
				printf("  #%-7u %-22s cpu %u size %lu limit %#lx %s %d  -> Linux %#lx, SVAKit %#lx%s\n",
				       o->id, op_names[o->kind], o->cpu, (unsigned long)o->a, (unsigned long)o->b,
				       o->kind == OP_ALLOC ? "size_aligned" : "flush_rcache", o->flag,
				       (unsigned long)r.kres, (unsigned long)r.sres,
				       o->id == perturb_id ? "  [perturbed: SVAKit asked twice the size]" : "");
		}
		if (m) {
			bad = i;
			break;
		}
	}
	run_close(&r);
	return bad;
}

/* Greedy delta debugging: delete chunks of halving size while the
 * mismatch persists; returns the new length. */
static int shrink(const struct shape *sh, struct op *ops, int n, uint32_t nids, uint32_t perturb_id)
{
	struct op *cand = malloc(sizeof(*ops) * (size_t)n);
	int tries = 0;

	for (int chunk = n / 2 > 0 ? n / 2 : 1; chunk >= 1; chunk /= 2) {
		int i = 0;
		while (i < n && n > 1) {
			int len = i + chunk > n ? n - i : chunk, m = 0;
			for (int j = 0; j < n; j++)
				if (j < i || j >= i + len)
					cand[m++] = ops[j];
			int bad = replay(sh, cand, m, nids, perturb_id, 0);
			tries++;
			if (bad >= 0) {
				n = bad + 1;
				memcpy(ops, cand, sizeof(*ops) * (size_t)n);
			} else {
				i += len;
			}
		}
	}
	free(cand);
	fprintf(stderr, "iova_diff: shrunk in %d replays\n", tries);
	return n;
}

int main(int argc, char **argv)
{
	long nops = 100000, perturb = -1;
	uint64_t seed;
	const char *env = getenv("SVAKIT_SEED");

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			nops = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--perturb") && i + 1 < argc)
			perturb = strtol(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "usage: iova_diff [--ops N] [--perturb K]   (SVAKIT_SEED=S)\n");
			return 2;
		}
	}
	if (env && *env)
		seed = strtoull(env, NULL, 0);
	else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
	}
	printf("iova_diff: SVAKIT_SEED=%" PRIu64 " (%ld operations per stream, %d streams%s)\n", seed, nops, NSHAPES,
	       perturb >= 0 ? ", negative control" : "");
	fflush(stdout);

	struct op *ops = malloc(sizeof(*ops) * (size_t)nops);
	for (int si = 0; si < NSHAPES; si++) {
		const struct shape *sh = &shapes[si];
		struct run r;
		int bad = -1, grow = 1;
		unsigned int last_cpu = 0;
		uint32_t perturb_id = UINT32_MAX;
		long phase_left = 3000;

		rng_state = seed ^ (0xA5A5A5A5ULL * (uint64_t)(si + 1));
		run_open(&r, sh, (uint32_t)nops);
		for (long i = 0; i < nops; i++) {
			if (--phase_left <= 0) {
				grow = !grow;
				phase_left = 3000 + (long)below(9000);
			}
			gen(&r, &ops[i], (uint32_t)i, grow, &last_cpu);
			if (perturb >= 0 && perturb_id == UINT32_MAX && i >= perturb && ops[i].kind == OP_ALLOC_FAST)
				perturb_id = (uint32_t)i;
			if (step(&r, &ops[i], perturb_id, (i & 255) == 255)) {
				bad = (int)i;
				break;
			}
		}
		printf("stream %d (%s): %s after %d operations; %lu failed allocations, up to %d held, %lu in one CPU's magazines, %lu in a depot, %lu depot works run\n",
		       si, sh->name, bad < 0 ? "agree" : "MISMATCH", bad < 0 ? (int)nops : bad + 1, r.fails,
		       r.held_max, r.mag_max, r.depot_max, r.works_run);
		fflush(stdout);
		run_close(&r);
		if (bad < 0) {
			if (perturb >= 0) {
				printf("negative control: the perturbed run was NOT caught\n");
				free(ops);
				return 1;
			}
			continue;
		}
		printf("  %s\n", mismatch);
		int n = shrink(sh, ops, bad + 1, (uint32_t)nops, perturb_id);
		printf("shortest stream found (%d operations; stream %d, seed %" PRIu64 "):\n", n, si, seed);
		replay(sh, ops, n, (uint32_t)nops, perturb_id, 1);
		printf("  mismatch: %s\n", mismatch);
		if (perturb >= 0) {
			int ok = n <= 10;
			printf("negative control: %s\n", ok ? "caught and shrunk, as it must be" : "caught but not shrunk to <= 10 operations");
			free(ops);
			return ok ? 0 : 1;
		}
		free(ops);
		return 1;
	}
	free(ops);
	if (perturb >= 0) {
		printf("negative control: nothing perturbed\n");
		return 1;
	}
	printf("iova_diff: Linux's iova.c and SVAKit agree\n");
	return 0;
}
