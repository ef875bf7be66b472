/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_abi: a libFuzzer target over the C ABI of include/svakit.h.
 *
 * The input is a program. Its first bytes configure a small machine (16 MiB,
 * or 256 MiB so that a 128 MiB hotplug section can go; 4- or 5-level; free
 * mode mostly `complete`, sometimes `immediate` or `linux-6.19`; worker
 * always manual) with two IOMMUs and four devices. The rest is a sequence
 * of calls: an opcode byte, then argument bytes. Each argument is drawn
 * through a choice byte that mostly picks something that exists (an mm, a
 * bond, a mapped address, an allocated frame, a table the program has seen)
 * and sometimes a special value (0, one past the end, misaligned,
 * non-canonical, the top of the address space) or raw bytes.
 *
 * After every call:
 *   - the return value must be 0, an errno of the header's table, or what
 *     the call documents (a count, 1 from svakit_cpa_collapse_large_pages,
 *     SVAKIT_DMA_FAULTED); anything else aborts;
 *   - the counters must conserve (check_counters(), O(1)): every frame is
 *     free, offline, a table or data; live blocks fit in the allocated
 *     frames; the deferred list holds tables; counters that only grow grew;
 *   - the frames the program owns must still be its own (check_ownership());
 *   - svakit_machine_check (the full audit, O(frames + tables)) must pass
 *     after every SVAKIT_FUZZ_AUDIT_EVERY-th call (default 0: none) and at
 *     the end of every input, or the target aborts. SVAKIT_FUZZ_AUDIT_EVERY=1
 *     audits after every call: replay a failing input with it to find the
 *     call that broke the machine (tests-c/fuzz/README.md, "Cost");
 *   - in the `complete` mode (every kernel table deferred, the worker
 *     manual) an oracle report is a failure: the target aborts (the
 *     sanitizer's page-leak reports, a driver bug the input made, are not). In the other
 *     modes reports are the oracle doing its job: they are counted, and
 *     once one has been made the audit is no longer asserted (the stale walk
 *     may have written A/D bits or data into a reused frame, which is the
 *     corruption being modelled). So that the calls before the first report
 *     are still audited when audits are sparse, the input is then run again
 *     up to that call and audited there.
 *
 * Known-bad call shapes. The engine has crash classes and audit failures
 * that would stop every run at the same place (tests-c/fuzz/README.md lists
 * them with their reproducers). With SVAKIT_FUZZ_LENIENT=1 the decoder
 * skips those shapes (see skip_known()) so that the fuzzer goes deeper.
 *
 * SVAKIT_FUZZ_TRACE=1 prints every call and its result to stderr: run a
 * reproducer with it to read the call sequence.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sanitizer/lsan_interface.h>

#include "svakit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SZ_4K 0x1000ULL
#define SZ_2M 0x200000ULL
#define SZ_1G 0x40000000ULL
#define POOL 32

/* ------------------------------------------------------------------------ */
/* Where an input's time goes (SVAKIT_FUZZ_PROFILE=1 prints it at exit)     */
/* ------------------------------------------------------------------------ */

enum phase { PH_BOOT, PH_CALLS, PH_CHECKS, PH_AUDIT, PH_DESTROY, PH_COUNT };
static const char *const phase_name[PH_COUNT] = { "boot (pool or create)", "the calls",
						  "checks after each call", "full audits", "reset or destroy" };
static bool g_profile;
static uint64_t g_phase_ns[PH_COUNT], g_inputs, g_calls, g_creates, g_resets;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Charges the time since *t to phase `ph` and restarts *t. */
static void charge(enum phase ph, uint64_t *t)
{
	uint64_t n;
	if (!g_profile)
		return;
	n = now_ns();
	g_phase_ns[ph] += n - *t;
	*t = n;
}

static void print_profile(void)
{
	uint64_t total = 0;
	for (int i = 0; i < PH_COUNT; i++)
		total += g_phase_ns[i];
	fprintf(stderr, "fuzz_abi profile: %llu inputs (%llu machines created, %llu reset), %llu calls, %.1f us per input\n",
		(unsigned long long)g_inputs, (unsigned long long)g_creates, (unsigned long long)g_resets,
		(unsigned long long)g_calls,
		g_inputs ? (double)total / 1e3 / (double)g_inputs : 0.0);
	for (int i = 0; i < PH_COUNT; i++)
		fprintf(stderr, "  %-26s %8.1f us per input  %5.1f%%\n", phase_name[i],
			g_inputs ? (double)g_phase_ns[i] / 1e3 / (double)g_inputs : 0.0,
			total ? 100.0 * (double)g_phase_ns[i] / (double)total : 0.0);
}

/* ------------------------------------------------------------------------ */
/* Reading the input                                                        */
/* ------------------------------------------------------------------------ */

struct rd {
	const uint8_t *p;
	size_t n, i;
};

static uint8_t u8(struct rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
/* Little-endian; each read sequenced (the order of operands of | is not). */
static uint16_t u16(struct rd *r)
{
	uint16_t lo = u8(r);
	return (uint16_t)(lo | u8(r) << 8);
}

static uint32_t u32(struct rd *r)
{
	uint32_t lo = u16(r);
	return lo | (uint32_t)u16(r) << 16;
}

static uint64_t u64(struct rd *r)
{
	uint64_t lo = u32(r);
	return lo | (uint64_t)u32(r) << 32;
}

/* ------------------------------------------------------------------------ */
/* The program's view of the machine                                         */
/* ------------------------------------------------------------------------ */

struct fz {
	svakit_machine *m;
	struct rd r;
	bool strict, trace, tainted;
	uint32_t levels, free_mode;
	uint64_t frames, mem, vstart, vend, dm_base, kroot;
	uint64_t reports_allowed; /* reports seen so far (non-complete modes) */
	unsigned long tainted_at;  /* the call that made the first report */
	struct svakit_stats last;  /* counters after the previous call */
	struct svakit_deferred_stats last_deferred;
	uint32_t iommu[2];
	uint32_t dev[4], dev_bits[4];
	/* Pools: append-only rings; stale entries are stale ids on purpose. */
	uint32_t mm[POOL]; unsigned nmm;
	struct { uint32_t h, pasid, dev, mm; } bond[POOL]; unsigned nbond;
	struct { uint32_t dev, pasid, mm; } att[POOL]; unsigned natt;
	struct { uint64_t va, size; } vm[POOL]; unsigned nvm;     /* vmalloc areas */
	struct { uint64_t va, size; } vmap[POOL]; unsigned nvmap; /* vmap_huge ranges */
	struct { uint32_t mm; uint64_t va, size; } map[POOL]; unsigned nmap;
	uint64_t data[POOL]; unsigned ndata;                      /* data block heads */
	/* What the program owns, which only it may free: data blocks from
	 * svakit_frame_alloc (with their generation) and the mms' roots. */
	struct { uint64_t pfn; uint32_t gen; bool live; } own[POOL]; unsigned nown;
	struct { uint32_t mm; uint64_t root; bool live; } root[POOL]; unsigned nroot;
	uint64_t tab[POOL]; unsigned ntab;                        /* tables seen */
	uint64_t mytab[POOL]; unsigned nmytab;                    /* from pagetable_alloc_kernel */
	struct { uint64_t child, parent; } link[POOL]; unsigned nlink; /* our links */
	unsigned long calls;
};

#define PUSH(z, pool, n, v)                                                      \
	do {                                                                     \
		(z)->pool[(z)->n % POOL] = (v);                                  \
		(z)->n++;                                                        \
	} while (0)
#define COUNT(n) ((n) < POOL ? (n) : POOL)

static void add_table(struct fz *z, uint64_t pfn)
{
	for (unsigned i = 0; i < COUNT(z->ntab); i++)
		if (z->tab[i] == pfn)
			return;
	PUSH(z, tab, ntab, pfn);
}

/* ------------------------------------------------------------------------ */
/* Arguments, biased toward what exists                                      */
/* ------------------------------------------------------------------------ */

/* 0..n-1 when the choice byte says "pick from a pool of n", else -1. */
static int pick(struct fz *z, unsigned n)
{
	uint8_t c = u8(&z->r);
	if (n && c < 208)
		return (int)(u8(&z->r) % COUNT(n));
	return -(int)(c & 0x7) - 1; /* -1..-8: which special */
}

static uint64_t special_u64(struct fz *z, int which)
{
	switch (which) {
	case -1: return 0;
	case -2: return 1;
	case -3: return UINT32_MAX;
	case -4: return UINT64_MAX;
	case -5: return z->frames;
	case -6: return 999;
	case -7: return (uint64_t)u8(&z->r);
	default: return u64(&z->r);
	}
}

static uint32_t arg_mm(struct fz *z)
{
	int i = pick(z, z->nmm);
	if (i >= 0)
		return z->mm[i];
	return i == -1 ? SVAKIT_INIT_MM : (uint32_t)special_u64(z, i);
}

static uint32_t arg_dev(struct fz *z)
{
	uint8_t c = u8(&z->r);
	if (c < 240)
		return z->dev[c % 4];
	return c & 1 ? 99 : u32(&z->r);
}

static uint32_t arg_iommu(struct fz *z)
{
	uint8_t c = u8(&z->r);
	return c < 240 ? z->iommu[c & 1] : (c & 1 ? 7 : u32(&z->r));
}

static uint32_t arg_pasid(struct fz *z, uint32_t dev)
{
	uint8_t c = u8(&z->r);
	uint32_t bits = 20;

	for (unsigned i = 0; i < 4; i++)
		if (z->dev[i] == dev)
			bits = z->dev_bits[i];
	switch (c % 8) {
	case 0: case 1: case 2:
		if (z->nbond)
			return z->bond[u8(&z->r) % COUNT(z->nbond)].pasid;
		/* fall through */
	case 3:
		if (z->natt)
			return z->att[u8(&z->r) % COUNT(z->natt)].pasid;
		/* fall through */
	case 4: return 1 + u8(&z->r) % 8;
	case 5: return (1u << bits) - 1;
	case 6: return c & 0x80 ? 1u << bits : 0;
	default: return u32(&z->r);
	}
}

/* A page-aligned physical address inside memory, aligned to `align`. */
static uint64_t arg_phys(struct fz *z, uint64_t align)
{
	uint8_t c = u8(&z->r);
	if (c < 224) {
		uint64_t p = ((uint64_t)u16(&z->r) << 12) % z->mem;
		return p & ~(align - 1);
	}
	return c & 1 ? z->mem : u64(&z->r);
}

static uint64_t arg_size(struct fz *z)
{
	static const uint64_t sizes[] = { SZ_4K, SZ_4K, SZ_4K, SZ_2M, SZ_2M, SZ_1G, 0, 2 * SZ_4K };
	uint8_t c = u8(&z->r);
	return c < 248 ? sizes[c % ARRAY_SIZE(sizes)] : u64(&z->r);
}

static uint64_t arg_prot(struct fz *z)
{
	uint8_t c = u8(&z->r);
	uint64_t p = 0;
	if (c >= 250)
		return u64(&z->r);
	if (c & 1) p |= SVAKIT_PTE_RW;
	if (c & 2) p |= SVAKIT_PTE_US;
	if (c & 4) p |= SVAKIT_PTE_NX;
	if (c & 8) p |= SVAKIT_PTE_G;
	if (c & 16) p |= SVAKIT_PTE_PCD;
	if (c & 32) p |= SVAKIT_PTE_PWT;
	return p;
}

/* A kernel virtual address. */
static uint64_t arg_kva(struct fz *z)
{
	uint8_t c = u8(&z->r);
	switch (c % 10) {
	case 0: case 1:
		if (z->nvm) {
			unsigned i = u8(&z->r) % COUNT(z->nvm);
			return z->vm[i].va + (((uint64_t)u8(&z->r) << 12) % z->vm[i].size);
		}
		/* fall through */
	case 2:
		if (z->nvmap)
			return z->vmap[u8(&z->r) % COUNT(z->nvmap)].va;
		/* fall through */
	case 3: case 4:
		return z->dm_base + (((uint64_t)u16(&z->r) << 12) % z->mem);
	case 5: return z->vstart + (uint64_t)(u8(&z->r) % 64) * SZ_2M;
	case 6: return z->vstart + (uint64_t)(u8(&z->r) % 8) * SZ_1G;
	case 7: {
		static const uint64_t sp[] = { 0xffffffffffe00000ULL, 0xfffffffffffff000ULL,
					       0xffffffffc0000000ULL, 0x8000000000000000ULL,
					       0x0000800000000000ULL, 0, 1 };
		return sp[u8(&z->r) % ARRAY_SIZE(sp)];
	}
	case 8: return z->vstart + (u64(&z->r) & 0xfffffffff000ULL);
	default: return u64(&z->r);
	}
}

#define ANY_MM UINT32_MAX

/* A user virtual address of mm (ANY_MM: of any mm). */
static uint64_t arg_uva(struct fz *z, uint32_t mm)
{
	uint8_t c = u8(&z->r);
	switch (c % 8) {
	case 0: case 1: case 2:
		for (unsigned tries = 0; tries < 4 && z->nmap; tries++) {
			unsigned i = u8(&z->r) % COUNT(z->nmap);
			if (mm == ANY_MM || z->map[i].mm == mm || tries == 3)
				return z->map[i].va;
		}
		/* fall through */
	case 3: {
		uint64_t page = u8(&z->r) % 64;
		return 0x10000000ULL + page * SZ_4K + (uint64_t)(u8(&z->r) % 4) * SZ_2M;
	}
	case 4: return 0x40000000ULL * (1 + u8(&z->r) % 4);
	case 5: {
		static const uint64_t sp[] = { 0x00007ffffffff000ULL, 0x00007fffffe00000ULL,
					       0x0100000000000000ULL, 0x10000001ULL, 0 };
		return sp[u8(&z->r) % ARRAY_SIZE(sp)];
	}
	case 6: return arg_kva(z);
	default: return u64(&z->r);
	}
}

static uint64_t arg_pfn(struct fz *z)
{
	uint8_t c = u8(&z->r);
	switch (c % 6) {
	case 0: case 1:
		if (z->ntab)
			return z->tab[u8(&z->r) % COUNT(z->ntab)];
		/* fall through */
	case 2:
		if (z->ndata)
			return z->data[u8(&z->r) % COUNT(z->ndata)] + (c & 0x80 ? 1 : 0);
		/* fall through */
	case 3: return u16(&z->r) % z->frames;
	case 4: return c & 0x80 ? z->frames : z->frames - 1;
	default: return u64(&z->r);
	}
}

/* ------------------------------------------------------------------------ */
/* Checking each call                                                       */
/* ------------------------------------------------------------------------ */

static bool documented_errno(long rc)
{
	static const int errs[] = { EFAULT, EBADF, ERANGE, EINVAL, EEXIST, ENOENT, EALREADY, ENXIO,
				    EPERM, EBUSY, ESRCH, ENOMEM, ENOSPC, ENODEV, EOPNOTSUPP, EOVERFLOW,
				    ESTALE };
	for (size_t i = 0; i < ARRAY_SIZE(errs); i++)
		if (rc == -errs[i])
			return true;
	return false;
}

enum ret { RET_ERRNO, RET_COUNT, RET_BOOL, RET_DMA };

/* What the machine check found (the library prints nothing itself). */
static char check_text[16384];

static void die(struct fz *z, const char *op, const char *why, long rc)
{
	fprintf(stderr, "fuzz_abi: call %lu (%s) returned %ld: %s\n", z->calls, op, rc, why);
	abort();
}

/*
 * The harness's own invariants, which the audit does not cover: a data
 * block the program allocated stays allocated (same generation) until the
 * program frees it, and init_mm's and every live mm's root stay root tables.
 * (svakit_machine_check passes with init_mm's root on the free list.)
 */
static void check_ownership(struct fz *z, const char *op, long rc)
{
	struct svakit_ptdesc d;

	for (unsigned i = 0; i < COUNT(z->nown); i++) {
		if (!z->own[i].live)
			continue;
		if (svakit_frame_info(z->m, z->own[i].pfn, &d) != 0 || d.kind != SVAKIT_FRAME_DATA ||
		    d.generation != z->own[i].gen) {
			fprintf(stderr, "fuzz_abi: data block %#llx (generation %u) is now kind %u generation %u\n",
				(unsigned long long)z->own[i].pfn, z->own[i].gen, d.kind, d.generation);
			die(z, op, "freed or reused a data block the program still owns", rc);
		}
	}
	for (unsigned i = 0; i < COUNT(z->nroot); i++) {
		if (!z->root[i].live)
			continue;
		if (svakit_frame_info(z->m, z->root[i].root, &d) != 0 ||
		    (d.kind != SVAKIT_FRAME_PT_KERNEL && d.kind != SVAKIT_FRAME_PT_USER) ||
		    !(d.flags & SVAKIT_PTDESC_ROOT)) {
			fprintf(stderr, "fuzz_abi: mm %u's root %#llx is now kind %u flags %#x\n", z->root[i].mm,
				(unsigned long long)z->root[i].root, d.kind, d.flags);
			die(z, op, "an mm's root table is no longer a root table", rc);
		}
	}
}

/* A counter that may only grow. */
static void grows(struct fz *z, const char *op, long rc, const char *what, uint64_t before, uint64_t now)
{
	if (now < before) {
		fprintf(stderr, "fuzz_abi: %s went from %llu to %llu\n", what, (unsigned long long)before,
			(unsigned long long)now);
		die(z, op, "a counter that only grows went down", rc);
	}
}

/*
 * Conservation by the counters, after every call: O(1), unlike the audit.
 * It catches a frame lost between the allocator and the kinds, a block
 * counted twice, a deferred frame that is no longer a table, and a counter
 * that went backwards, but not a wrong descriptor, link or list member
 * (the audit's part).
 */
static void check_counters(struct fz *z, const char *op, long rc)
{
	struct svakit_stats s;
	struct svakit_deferred_stats d;
	uint64_t tables, used;

	/* svakit_machine_counters, not _stats: the O(1) check must not walk
	 * the host mapping (mincore) after every call. */
	if (svakit_machine_counters(z->m, &s) != 0 || svakit_deferred_stats(z->m, &d) != 0)
		die(z, op, "svakit_machine_counters or svakit_deferred_stats failed", rc);
	tables = s.kernel_tables + s.user_tables;
	used = tables + s.data_frames;
	if (s.frames != z->frames || s.frames_free + s.frames_offline + used != s.frames) {
		fprintf(stderr, "fuzz_abi: %llu frames: %llu free + %llu offline + %llu tables + %llu data\n",
			(unsigned long long)s.frames, (unsigned long long)s.frames_free,
			(unsigned long long)s.frames_offline, (unsigned long long)tables,
			(unsigned long long)s.data_frames);
		die(z, op, "the frames by kind do not add up to the machine's", rc);
	}
	if (s.frees > s.allocs || s.allocs - s.frees > used) {
		fprintf(stderr, "fuzz_abi: %llu allocations - %llu frees, %llu frames in use\n",
			(unsigned long long)s.allocs, (unsigned long long)s.frees, (unsigned long long)used);
		die(z, op, "more live blocks than allocated frames", rc);
	}
	if (d.pending > tables || d.pending > d.frames_deferred || d.pending > d.peak_pending) {
		fprintf(stderr, "fuzz_abi: %llu deferred (peak %llu, ever %llu), %llu tables\n",
			(unsigned long long)d.pending, (unsigned long long)d.peak_pending,
			(unsigned long long)d.frames_deferred, (unsigned long long)tables);
		die(z, op, "the deferred list holds more than the tables", rc);
	}
	grows(z, op, rc, "allocs", z->last.allocs, s.allocs);
	grows(z, op, rc, "frees", z->last.frees, s.frees);
	grows(z, op, rc, "kernel_tlb_flushes", z->last.kernel_tlb_flushes, s.kernel_tlb_flushes);
	grows(z, op, rc, "step", z->last.step, s.step);
	grows(z, op, rc, "frames_deferred", z->last_deferred.frames_deferred, d.frames_deferred);
	grows(z, op, rc, "batches", z->last_deferred.batches, d.batches);
	grows(z, op, rc, "invalidations", z->last_deferred.invalidations, d.invalidations);
	grows(z, op, rc, "peak_pending", z->last_deferred.peak_pending, d.peak_pending);
	z->last = s;
	z->last_deferred = d;
}

static unsigned long g_audit_every;
static bool g_reset_check;

/* Whether reports [from, to) are all the sanitizer's page-leak reports
 * (IOMMU_DEBUG_PAGEALLOC doing its job: nothing was walked or corrupted).
 * A report the log no longer holds counts as a walk's. */
static bool only_page_leaks(struct fz *z, uint64_t from, uint64_t to)
{
	struct svakit_uaf_report rep[16];
	int n;

	if (to - from > ARRAY_SIZE(rep))
		return false;
	n = svakit_report_read(z->m, from, rep, ARRAY_SIZE(rep));
	if (n < 0 || (uint64_t)n < to - from)
		return false;
	for (uint64_t i = 0; i < to - from; i++)
		if (rep[i].kind == SVAKIT_REPORT_WALK)
			return false;
	return true;
}

static uint64_t g_t; /* the profile's clock: the start of the current phase */

/* SVAKIT_FUZZ_RESET_CHECK: the run's trace, every call's name and result
 * (FNV-1a), compared between a reset machine and a new one. */
static uint64_t g_trace_hash;

static void trace_mix(uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		g_trace_hash ^= (v >> (8 * i)) & 0xff;
		g_trace_hash *= 0x100000001b3ull;
	}
}

static void checked(struct fz *z, const char *op, long rc, enum ret kind)
{
	uint64_t reports = 0;

	charge(PH_CALLS, &g_t);
	trace_mix((uint64_t)(uintptr_t)op);
	trace_mix((uint64_t)rc);

	if (z->trace)
		fprintf(stderr, "  [%lu] %s -> %ld\n", z->calls, op, rc);
	switch (kind) {
	case RET_COUNT:
		if (rc >= 0)
			break;
		/* fall through */
	case RET_ERRNO:
		if (rc != 0 && !documented_errno(rc))
			die(z, op, "not 0 nor an errno of the header's table", rc);
		break;
	case RET_BOOL:
		if (rc != 0 && rc != 1 && !documented_errno(rc))
			die(z, op, "not 0, 1 nor an errno of the header's table", rc);
		break;
	case RET_DMA:
		if (rc != 0 && rc != SVAKIT_DMA_FAULTED && !documented_errno(rc))
			die(z, op, "not 0, SVAKIT_DMA_FAULTED nor an errno of the header's table", rc);
		break;
	}
	if (svakit_report_count(z->m, &reports) != 0)
		die(z, op, "svakit_report_count failed", -1);
	if (reports > z->reports_allowed && only_page_leaks(z, z->reports_allowed, reports)) {
		if (z->trace)
			fprintf(stderr, "  [%lu] page-leak report(s): %llu in all\n", z->calls,
				(unsigned long long)reports);
		z->reports_allowed = reports;
	}
	if (reports > z->reports_allowed) {
		if (z->free_mode == SVAKIT_FREE_COMPLETE)
			die(z, op, "an oracle report in the complete free mode", (long)reports);
		if (z->trace)
			fprintf(stderr, "  [%lu] oracle report(s): %llu in all\n", z->calls,
				(unsigned long long)reports);
		z->reports_allowed = reports;
		if (!z->tainted)
			z->tainted_at = z->calls;
		z->tainted = true; /* the modelled corruption may have happened */
	}
	check_counters(z, op, rc);
	if (!z->tainted && g_audit_every && (z->calls + 1) % g_audit_every == 0) {
		charge(PH_CHECKS, &g_t);
		if (svakit_machine_check_text(z->m, check_text, sizeof(check_text)) != 0) {
			fputs(check_text, stderr);
			die(z, op, "svakit_machine_check failed after it (problems above)", rc);
		}
		charge(PH_AUDIT, &g_t);
	}
	if (!z->tainted)
		check_ownership(z, op, rc);
	z->calls++;
	charge(PH_CHECKS, &g_t);
}

#define CALL(z, kind, expr)                                                      \
	({                                                                       \
		long rc_ = (expr);                                               \
		checked((z), #expr, rc_, (kind));                               \
		rc_;                                                             \
	})

/* ------------------------------------------------------------------------ */
/* Call shapes skipped with SVAKIT_FUZZ_LENIENT=1 (see README.md)            */
/* ------------------------------------------------------------------------ */

static bool desc_of(struct fz *z, uint64_t pfn, struct svakit_ptdesc *d)
{
	return pfn < z->frames && svakit_frame_info(z->m, pfn, d) == 0;
}

static bool is_table(struct fz *z, uint64_t pfn, struct svakit_ptdesc *d)
{
	return desc_of(z, pfn, d) && (d->kind == SVAKIT_FRAME_PT_KERNEL || d->kind == SVAKIT_FRAME_PT_USER) &&
	       !(d->flags & SVAKIT_PTDESC_TAIL);
}

/* Whether a table is reachable from a root: a root, or linked, and when we
 * linked it ourselves, under a reachable parent. */
static bool reachable(struct fz *z, uint64_t pfn, int depth)
{
	struct svakit_ptdesc d;
	if (depth > 6 || !is_table(z, pfn, &d))
		return false;
	if (d.flags & SVAKIT_PTDESC_ROOT)
		return true;
	if (!(d.flags & SVAKIT_PTDESC_LINKED))
		return false;
	for (unsigned i = 0; i < COUNT(z->nlink); i++)
		if (z->link[i].child == pfn)
			return reachable(z, z->link[i].parent, depth + 1);
	return true; /* linked by the engine's own paths, from a root */
}

/* Whether the entry points at a table that itself points at tables. */
static bool unlink_takes_subtree(struct fz *z, uint64_t parent, unsigned index)
{
	struct svakit_ptdesc d;
	uint64_t e, child;

	if (svakit_pagetable_read_entry(z->m, parent, index, &e) != 0 || !(e & SVAKIT_PTE_P) || (e & SVAKIT_PTE_PS))
		return false;
	child = (e & SVAKIT_PTE_PFN_MASK) >> 12;
	if (!is_table(z, child, &d) || d.level < 2)
		return false;
	for (unsigned i = 0; i < 512; i++)
		if (svakit_pagetable_read_entry(z->m, child, i, &e) == 0 && (e & SVAKIT_PTE_P) && !(e & SVAKIT_PTE_PS))
			return true;
	return false;
}

/* Whether index of table is a kernel-half entry of a root (init_mm's or an
 * mm's copy of it): every mm's root holds the same kernel half. */
static bool shared_root_entry(struct fz *z, uint64_t table, unsigned index)
{
	struct svakit_ptdesc d;
	return index >= 256 && is_table(z, table, &d) && (d.flags & SVAKIT_PTDESC_ROOT);
}

/* The arguments of the next call, in the trace. */
__attribute__((format(printf, 2, 3))) static void tr(struct fz *z, const char *fmt, ...)
{
	va_list ap;
	if (!z->trace)
		return;
	fprintf(stderr, "  [%lu] ", z->calls);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void log_skip(struct fz *z, const char *why)
{
	if (z->trace)
		fprintf(stderr, "  [%lu] skipped (known engine problem): %s\n", z->calls, why);
}

/* ------------------------------------------------------------------------ */
/* The calls                                                                */
/* ------------------------------------------------------------------------ */

static uint8_t buf[3 * 4096];

static size_t arg_len(struct fz *z)
{
	uint8_t c = u8(&z->r);
	switch (c % 6) {
	case 0: case 1: return 1 + u8(&z->r) % 64;
	case 2: return 4096;
	case 3: return 8192;
	case 4: return 1 + u16(&z->r) % sizeof(buf);
	default: return c & 0x80 ? 0 : sizeof(buf);
	}
}

static void op_vmalloc(struct fz *z)
{
	uint8_t c = u8(&z->r);
	uint64_t size = c < 240 ? (1 + (uint64_t)u8(&z->r) % 64) * SZ_4K : u64(&z->r), va = 0;
	if (CALL(z, RET_ERRNO, svakit_vmalloc(z->m, size, &va)) == 0) {
		z->vm[z->nvm % POOL].va = va;
		z->vm[z->nvm++ % POOL].size = size;
	}
}

static void op_vmalloc_huge(struct fz *z)
{
	uint8_t c = u8(&z->r);
	uint64_t size = c < 240 ? (1 + (uint64_t)u8(&z->r) % 4) * SZ_2M : u64(&z->r), va = 0;
	if (!z->strict && size > (1ULL << 46)) {
		log_skip(z, "vmalloc_huge with a size that overflows VmallocSpace.reserve");
		return;
	}
	if (CALL(z, RET_ERRNO, svakit_vmalloc_huge(z->m, size, &va)) == 0) {
		z->vm[z->nvm % POOL].va = va;
		z->vm[z->nvm++ % POOL].size = size;
	}
}

static void op_vfree(struct fz *z)
{
	int i = pick(z, z->nvm);
	uint64_t va = i >= 0 ? z->vm[i].va : arg_kva(z);
	CALL(z, RET_ERRNO, svakit_vfree(z->m, va));
}

static void op_vmap_huge(struct fz *z)
{
	uint64_t size = u8(&z->r) & 1 ? SZ_1G : SZ_2M;
	uint64_t va = arg_kva(z) & ~(size - 1), phys = arg_phys(z, size), prot = arg_prot(z);
	if (u8(&z->r) >= 250)
		size = arg_size(z);
	tr(z, "vmap_huge va %#llx phys %#llx size %#llx prot %#llx", (unsigned long long)va,
	   (unsigned long long)phys, (unsigned long long)size, (unsigned long long)prot);
	if (CALL(z, RET_ERRNO, svakit_vmap_huge(z->m, va, phys, size, prot)) == 0) {
		z->vmap[z->nvmap % POOL].va = va;
		z->vmap[z->nvmap++ % POOL].size = size;
	}
}

static void op_vunmap(struct fz *z)
{
	uint8_t c = u8(&z->r);
	uint64_t va, size;
	if (c < 100 && z->nvmap) {
		unsigned i = u8(&z->r) % COUNT(z->nvmap);
		va = z->vmap[i].va;
		size = z->vmap[i].size;
	} else if (c < 200 && z->nvm) {
		unsigned i = u8(&z->r) % COUNT(z->nvm);
		va = z->vm[i].va;
		size = z->vm[i].size;
	} else {
		va = arg_kva(z);
		size = arg_size(z);
	}
	tr(z, "vunmap va %#llx size %#llx", (unsigned long long)va, (unsigned long long)size);
	CALL(z, RET_ERRNO, svakit_vunmap(z->m, va, size));
}

static void op_set_memory(struct fz *z)
{
	uint64_t va = arg_kva(z), n = 1 + u16(&z->r) % 1024, set = arg_prot(z), clear = arg_prot(z);
	if (u8(&z->r) & 1)
		clear &= ~set;
	tr(z, "set_memory va %#llx n %llu set %#llx clear %#llx", (unsigned long long)va, (unsigned long long)n,
	   (unsigned long long)set, (unsigned long long)clear);
	CALL(z, RET_ERRNO, svakit_set_memory(z->m, va, n, set, clear));
}

static void op_collapse(struct fz *z)
{
	CALL(z, RET_BOOL, svakit_cpa_collapse_large_pages(z->m, arg_kva(z)));
}

static void op_hotplug(struct fz *z)
{
	uint8_t c = u8(&z->r);
	uint64_t sec = SVAKIT_SECTION_PAGES, pfn, n;
	if (c < 224) {
		pfn = (u8(&z->r) % 2) * sec;
		n = sec * (1 + u8(&z->r) % 2);
	} else {
		pfn = u64(&z->r);
		n = u64(&z->r);
	}
	if (c & 1)
		CALL(z, RET_ERRNO, svakit_memory_hot_add(z->m, pfn, n));
	else
		CALL(z, RET_ERRNO, svakit_memory_hot_remove(z->m, pfn, n));
}

static void op_map(struct fz *z)
{
	uint32_t mm = arg_mm(z);
	uint64_t size = arg_size(z);
	uint64_t va = mm == SVAKIT_INIT_MM ? arg_kva(z) : arg_uva(z, mm);
	uint64_t phys, prot;
	if (size == SZ_4K || size == SZ_2M || size == SZ_1G)
		va &= ~(size - 1);
	phys = arg_phys(z, size <= SZ_1G && size ? size : SZ_4K);
	prot = arg_prot(z);
	tr(z, "map mm %u va %#llx phys %#llx size %#llx prot %#llx", mm, (unsigned long long)va,
	   (unsigned long long)phys, (unsigned long long)size, (unsigned long long)prot);
	if (CALL(z, RET_ERRNO, svakit_mm_map(z->m, mm, va, phys, size, prot)) == 0) {
		z->map[z->nmap % POOL].mm = mm;
		z->map[z->nmap % POOL].va = va;
		z->map[z->nmap++ % POOL].size = size;
	}
}

static void op_unmap(struct fz *z)
{
	int i = pick(z, z->nmap);
	uint32_t mm;
	uint64_t va, size;
	if (i >= 0) {
		mm = z->map[i].mm;
		va = z->map[i].va;
		size = z->map[i].size;
	} else {
		mm = arg_mm(z);
		va = arg_uva(z, mm);
		size = arg_size(z);
	}
	tr(z, "unmap mm %u va %#llx size %#llx", mm, (unsigned long long)va, (unsigned long long)size);
	CALL(z, RET_ERRNO, svakit_mm_unmap(z->m, mm, va, size));
}

static void op_translate(struct fz *z)
{
	struct svakit_translation t;
	uint32_t mm = arg_mm(z);
	uint64_t va = u8(&z->r) & 1 ? arg_kva(z) : arg_uva(z, mm);
	CALL(z, RET_ERRNO, svakit_mm_translate(z->m, mm, va, &t));
}

static void op_mm_create(struct fz *z)
{
	uint32_t mm;
	if (CALL(z, RET_ERRNO, svakit_mm_create(z->m, &mm)) == 0) {
		uint64_t root;
		PUSH(z, mm, nmm, mm);
		if (svakit_mm_root(z->m, mm, &root) == 0) {
			add_table(z, root);
			z->root[z->nroot % POOL].mm = mm;
			z->root[z->nroot % POOL].root = root;
			z->root[z->nroot++ % POOL].live = true;
		}
	}
}

static void op_mm_destroy(struct fz *z)
{
	uint32_t mm = arg_mm(z);
	long rc = svakit_mm_destroy(z->m, mm);
	for (unsigned i = 0; rc == 0 && i < COUNT(z->nroot); i++)
		if (z->root[i].mm == mm)
			z->root[i].live = false;
	checked(z, "svakit_mm_destroy(z->m, mm)", rc, RET_ERRNO);
}

static void op_bind(struct fz *z)
{
	uint32_t dev = arg_dev(z), mm = arg_mm(z), h, pasid = 0;
	tr(z, "bind dev %u mm %u", dev, mm);
	if (CALL(z, RET_ERRNO, svakit_iommu_sva_bind_device(z->m, dev, mm, &h)) == 0) {
		svakit_iommu_sva_get_pasid(z->m, h, &pasid);
		z->bond[z->nbond % POOL].h = h;
		z->bond[z->nbond % POOL].dev = dev;
		z->bond[z->nbond % POOL].mm = mm;
		z->bond[z->nbond++ % POOL].pasid = pasid;
	}
}

static void op_unbind(struct fz *z)
{
	int i = pick(z, z->nbond);
	uint32_t h = i >= 0 ? z->bond[i].h : (uint32_t)special_u64(z, i);
	CALL(z, RET_ERRNO, svakit_iommu_sva_unbind_device(z->m, h));
}

static void op_get_pasid(struct fz *z)
{
	int i = pick(z, z->nbond);
	uint32_t h = i >= 0 ? z->bond[i].h : (uint32_t)special_u64(z, i), pasid;
	CALL(z, RET_ERRNO, svakit_iommu_sva_get_pasid(z->m, h, &pasid));
}

static void op_attach(struct fz *z)
{
	uint32_t dev = arg_dev(z), pasid = arg_pasid(z, dev), mm = arg_mm(z);
	tr(z, "attach_pasid dev %u pasid %u mm %u", dev, pasid, mm);
	if (!z->strict && mm == SVAKIT_INIT_MM) {
		log_skip(z, "attach_pasid of init_mm (accepted; tests-c/test_bad_input.c att_init_mm)");
		return;
	}
	if (CALL(z, RET_ERRNO, svakit_iommu_attach_device_pasid(z->m, dev, pasid, mm)) == 0) {
		z->att[z->natt % POOL].dev = dev;
		z->att[z->natt % POOL].mm = mm;
		z->att[z->natt++ % POOL].pasid = pasid;
	}
}

static void op_detach(struct fz *z)
{
	int i = pick(z, z->natt);
	uint32_t dev, pasid;
	if (i >= 0) {
		dev = z->att[i].dev;
		pasid = z->att[i].pasid;
	} else {
		dev = arg_dev(z);
		pasid = arg_pasid(z, dev);
	}
	CALL(z, RET_ERRNO, svakit_iommu_detach_device_pasid(z->m, dev, pasid));
}

/* The mm a device reaches at pasid, as far as the program knows. */
static bool mm_at(struct fz *z, uint32_t dev, uint32_t pasid, uint32_t *mm)
{
	bool found = false;
	for (unsigned i = 0; i < COUNT(z->nbond); i++)
		if (z->bond[i].dev == dev && z->bond[i].pasid == pasid) {
			*mm = z->bond[i].mm;
			found = true;
		}
	for (unsigned i = 0; i < COUNT(z->natt); i++)
		if (z->att[i].dev == dev && z->att[i].pasid == pasid) {
			*mm = z->att[i].mm;
			found = true;
		}
	return found;
}

/*
 * Whether a DMA write would land, by the CPU's page tables, in a frame that
 * is not data: a user mapping the program made to any physical address (a
 * page table among them), or the direct map through a supervisor request.
 * That is the program corrupting the machine through the device, which the
 * audit then rightly reports; a write through a stale IOMMU cache entry is
 * different, and the oracle reports it.
 */
static bool dma_write_hits_non_data(struct fz *z, uint32_t dev, uint32_t pasid, uint64_t va, size_t len)
{
	uint32_t mm;
	if (!len || !mm_at(z, dev, pasid, &mm))
		return false;
	for (uint64_t a = va & ~0xfffULL; a < va + len && a >= (va & ~0xfffULL); a += SZ_4K) {
		struct svakit_translation t;
		struct svakit_ptdesc d;
		if (svakit_mm_translate(z->m, mm, a, &t) != 0)
			continue;
		if (!desc_of(z, t.phys >> 12, &d) || d.kind != SVAKIT_FRAME_DATA)
			return true;
	}
	return false;
}

static void op_dma(struct fz *z)
{
	struct svakit_dma_fault fault;
	uint32_t dev = arg_dev(z), pasid = arg_pasid(z, dev);
	uint8_t c = u8(&z->r);
	uint64_t va = c & 1 ? arg_kva(z) : arg_uva(z, ANY_MM);
	size_t len = arg_len(z);
	uint32_t flags = c & 2 ? SVAKIT_DMA_PRIV : 0;
	if (c >= 252)
		flags = u32(&z->r);
	if (len > sizeof(buf))
		len = sizeof(buf);
	if (z->trace)
		fprintf(stderr, "  [%lu] dma %s dev %u pasid %u va %#llx len %zu flags %#x\n", z->calls,
			c & 4 ? "write" : "read", dev, pasid, (unsigned long long)va, len, flags);
	if (!z->strict && len && va + len - 1 < va) {
		log_skip(z, "DMA whose range wraps past 2^64 (`va + off` traps in Machine.dma once the "
			    "first page translates)");
		return;
	}
	if (c & 4) {
		if (!z->strict && dma_write_hits_non_data(z, dev, pasid, va, len)) {
			log_skip(z, "dma_write that the CPU's tables send to a frame that is not data");
			return;
		}
		CALL(z, RET_DMA, svakit_device_dma_write(z->m, dev, pasid, va, buf, len, flags, c & 8 ? NULL : &fault));
	} else {
		CALL(z, RET_DMA, svakit_device_dma_read(z->m, dev, pasid, va, buf, len, flags, c & 8 ? NULL : &fault));
	}
}

static void op_frame_alloc(struct fz *z)
{
	uint8_t c = u8(&z->r);
	unsigned order = c < 200 ? c % 3 : c < 250 ? c % 11 : u32(&z->r);
	uint64_t pfn;
	struct svakit_ptdesc d;
	if (CALL(z, RET_ERRNO, svakit_frame_alloc(z->m, order, u16(&z->r), &pfn)) == 0) {
		PUSH(z, data, ndata, pfn);
		if (svakit_frame_info(z->m, pfn, &d) == 0) {
			z->own[z->nown % POOL].pfn = pfn;
			z->own[z->nown % POOL].gen = d.generation;
			z->own[z->nown++ % POOL].live = true;
		}
	}
}

static void op_frame_free(struct fz *z)
{
	uint64_t pfn = arg_pfn(z);
	long rc;
	tr(z, "frame_free pfn %#llx", (unsigned long long)pfn);
	rc = svakit_frame_free(z->m, pfn);
	for (unsigned i = 0; rc == 0 && i < COUNT(z->nown); i++)
		if (z->own[i].pfn == pfn)
			z->own[i].live = false;
	checked(z, "svakit_frame_free(z->m, pfn)", rc, RET_ERRNO);
}

static void op_frame_rw(struct fz *z)
{
	struct svakit_ptdesc d;
	uint64_t pfn = arg_pfn(z);
	uint8_t c = u8(&z->r);
	uint32_t off = c < 240 ? (uint32_t)(u16(&z->r) % 4096) : u32(&z->r);
	size_t len = arg_len(z);
	if (len > sizeof(buf))
		len = sizeof(buf);
	if (c & 1) {
		/* Writing bytes into a live page table is the caller corrupting it,
		 * which the audit rightly reports: write data frames only. */
		if (!z->strict && (!desc_of(z, pfn, &d) || d.kind != SVAKIT_FRAME_DATA)) {
			log_skip(z, "frame_write into a frame that is not data");
			return;
		}
		CALL(z, RET_ERRNO, svakit_frame_write(z->m, pfn, off, buf, len));
	} else {
		CALL(z, RET_ERRNO, svakit_frame_read(z->m, pfn, off, buf, len));
	}
}

static void op_pt_alloc(struct fz *z)
{
	uint8_t c = u8(&z->r);
	unsigned level = c < 240 ? 1 + c % (z->levels - 1) : c % 8;
	uint64_t pfn;
	if (CALL(z, RET_ERRNO, svakit_pagetable_alloc_kernel(z->m, level, &pfn)) == 0) {
		add_table(z, pfn);
		PUSH(z, mytab, nmytab, pfn);
	}
}

static void op_read_entry(struct fz *z)
{
	uint64_t t = arg_pfn(z), e = 0;
	unsigned index = u8(&z->r) < 250 ? u16(&z->r) % 512 : u32(&z->r);
	struct svakit_ptdesc d;
	if (CALL(z, RET_ERRNO, svakit_pagetable_read_entry(z->m, t, index, &e)) == 0 && (e & SVAKIT_PTE_P) &&
	    !(e & SVAKIT_PTE_PS) && is_table(z, (e & SVAKIT_PTE_PFN_MASK) >> 12, &d))
		add_table(z, (e & SVAKIT_PTE_PFN_MASK) >> 12); /* walk down next time */
}

static void op_write_entry(struct fz *z)
{
	uint64_t t = arg_pfn(z), e;
	unsigned index = u8(&z->r) < 250 ? u16(&z->r) % 512 : u32(&z->r);
	uint8_t c = u8(&z->r);
	struct svakit_ptdesc d;
	uint64_t size = c & 2 ? (c & 4 ? SZ_1G : SZ_2M) : SZ_4K;

	e = 0;
	if (!(c & 1)) {
		e = arg_phys(z, size) | SVAKIT_PTE_P | (size > SZ_4K ? SVAKIT_PTE_PS : 0);
		e |= arg_prot(z);
	}
	if (c >= 248)
		e = u64(&z->r);
	tr(z, "write_entry table %#llx index %u entry %#llx", (unsigned long long)t, index, (unsigned long long)e);
	if (!z->strict && index < 512 && shared_root_entry(z, t, index)) {
		log_skip(z, "write_entry into a root's kernel half (the mms' copies then differ)");
		return;
	}
	if (!z->strict && (e & SVAKIT_PTE_P) && is_table(z, t, &d)) {
		unsigned level = d.level;
		bool ps = e & SVAKIT_PTE_PS;
		uint64_t leaf = level == 3 ? SZ_1G : level == 2 ? SZ_2M : SZ_4K;
		uint64_t phys = e & SVAKIT_PTE_PFN_MASK;
		if ((ps && (level == 1 || level > 3)) || (ps && (phys & (leaf - 1))) ||
		    phys >= z->mem || leaf > z->mem - phys) {
			log_skip(z, "write_entry of an entry the hardware rejects (PS at level 1/4/5, "
				    "reserved bits, a PFN beyond memory): accepted by the engine");
			return;
		}
		if (d.flags & SVAKIT_PTDESC_DEFERRED) {
			log_skip(z, "write_entry into a table queued for freeing (accepted)");
			return;
		}
		bool mine = false;
		for (unsigned i = 0; i < COUNT(z->nmytab); i++)
			mine |= z->mytab[i] == t;
		if (d.kind == SVAKIT_FRAME_PT_KERNEL && !mine) {
			log_skip(z, "write_entry of a leaf into a kernel table the engine's paths manage "
				    "(vfree then frees whatever frame the leaf names)");
			return;
		}
	}
	CALL(z, RET_ERRNO, svakit_pagetable_write_entry(z->m, t, index, e));
}

static void op_link(struct fz *z)
{
	uint64_t parent = arg_pfn(z), child = arg_pfn(z);
	unsigned index = u8(&z->r) < 250 ? u16(&z->r) % 512 : u32(&z->r);
	struct svakit_ptdesc pd, cd;
	tr(z, "link_table parent %#llx index %u child %#llx", (unsigned long long)parent, index,
	   (unsigned long long)child);
	if (!z->strict && index < 512 && shared_root_entry(z, parent, index)) {
		log_skip(z, "link_table into a root's kernel half (the mms' copies then differ)");
		return;
	}
	if (!z->strict && is_table(z, parent, &pd) && is_table(z, child, &cd) && !reachable(z, parent, 0)) {
		log_skip(z, "link_table under a parent no root reaches (machine_check then fails)");
		return;
	}
	if (CALL(z, RET_ERRNO, svakit_pagetable_link(z->m, parent, index, child)) == 0) {
		z->link[z->nlink % POOL].child = child;
		z->link[z->nlink++ % POOL].parent = parent;
	}
}

static void op_unlink(struct fz *z)
{
	uint64_t parent = arg_pfn(z), child;
	unsigned index = u8(&z->r) < 250 ? u16(&z->r) % 512 : u32(&z->r);
	tr(z, "unlink_table parent %#llx index %u", (unsigned long long)parent, index);
	if (!z->strict && index < 512 && shared_root_entry(z, parent, index)) {
		log_skip(z, "unlink_table of a root's kernel-half entry (the mms' copies then differ)");
		return;
	}
	if (!z->strict && index < 512 && unlink_takes_subtree(z, parent, index)) {
		log_skip(z, "unlink_table of a table that holds tables (machine_check then fails)");
		return;
	}
	if (CALL(z, RET_ERRNO, svakit_pagetable_unlink(z->m, parent, index, &child)) == 0)
		add_table(z, child);
}

static void op_pt_free(struct fz *z)
{
	uint64_t pfn = arg_pfn(z);
	tr(z, "pagetable_free pfn %#llx", (unsigned long long)pfn);
	if (u8(&z->r) & 1)
		CALL(z, RET_ERRNO, svakit_pagetable_free_kernel(z->m, pfn));
	else
		CALL(z, RET_ERRNO, svakit_pagetable_free(z->m, pfn));
}

static void op_deferred(struct fz *z)
{
	struct svakit_deferred_stats ds;
	switch (u8(&z->r) % 3) {
	case 0: CALL(z, RET_ERRNO, svakit_deferred_work_run(z->m)); break;
	case 1: CALL(z, RET_ERRNO, svakit_deferred_work_flush(z->m)); break;
	default: CALL(z, RET_ERRNO, svakit_deferred_stats(z->m, &ds)); break;
	}
}

static void op_iommu_cmd(struct fz *z)
{
	uint32_t iommu = arg_iommu(z);
	uint8_t c = u8(&z->r);
	switch (c % 4) {
	case 0: {
		uint32_t pasid = arg_pasid(z, z->dev[0]);
		uint64_t start = u8(&z->r) & 1 ? arg_kva(z) : arg_uva(z, ANY_MM);
		uint64_t len = arg_size(z);
		CALL(z, RET_ERRNO, svakit_iommu_invalidate_range(z->m, iommu, pasid, start, start + len - 1, c >> 7));
		break;
	}
	case 1: CALL(z, RET_ERRNO, svakit_iommu_invalidate_pasid(z->m, iommu, arg_pasid(z, z->dev[0]))); break;
	case 2: CALL(z, RET_ERRNO, svakit_iommu_invalidate_all(z->m, iommu)); break;
	default: CALL(z, RET_ERRNO, svakit_iommu_fence(z->m, iommu)); break;
	}
}

static void op_flush(struct fz *z)
{
	uint8_t c = u8(&z->r);
	uint64_t start = arg_kva(z), end;
	if (c % 4 == 0) {
		start = 0;
		end = UINT64_MAX;
	} else {
		end = start + arg_size(z);
	}
	if (c & 0x80) {
		svakit_iommu_sva_invalidate_kva_range_slow(z->m, start, end);
		checked(z, "svakit_iommu_sva_invalidate_kva_range_slow", 0, RET_ERRNO);
	} else {
		CALL(z, RET_ERRNO, svakit_flush_tlb_kernel_range(z->m, start, end));
	}
}

static void op_inspect(struct fz *z)
{
	static struct svakit_event ev[8];
	static struct svakit_uaf_report rep[2];
	static char text[256];
	struct svakit_stats st;
	struct svakit_ptdesc d;
	struct svakit_iommu_counters ic;
	uint32_t n;
	uint64_t total;

	switch (u8(&z->r) % 8) {
	case 0: CALL(z, RET_COUNT, svakit_event_read(z->m, u64(&z->r) % 1024, ev, ARRAY_SIZE(ev))); break;
	case 1: CALL(z, RET_COUNT, svakit_frame_history(z->m, arg_pfn(z), ev, ARRAY_SIZE(ev))); break;
	case 2: CALL(z, RET_COUNT, svakit_report_read(z->m, u8(&z->r), rep, ARRAY_SIZE(rep))); break;
	case 3: {
		uint64_t index = u8(&z->r) % 4;
		size_t len = 1 + u8(&z->r);
		CALL(z, RET_ERRNO, svakit_report_text(z->m, index, text, len));
		break;
	}
	case 4: CALL(z, RET_ERRNO, svakit_frame_info(z->m, arg_pfn(z), &d)); break;
	case 5: CALL(z, RET_ERRNO, svakit_iommu_counters(z->m, arg_iommu(z), &ic)); break;
	case 6: CALL(z, RET_ERRNO, svakit_iommu_sva_mm_count(z->m, &n)); break;
	default:
		CALL(z, RET_ERRNO, svakit_machine_stats(z->m, &st));
		CALL(z, RET_ERRNO, svakit_report_count(z->m, &total));
		break;
	}
}

static void op_device_create(struct fz *z)
{
	uint32_t dev;
	uint8_t c = u8(&z->r);
	CALL(z, RET_ERRNO, svakit_device_create(z->m, arg_iommu(z), c & 1 ? SVAKIT_DEV_SVA : c & 2, c % 24, &dev));
}

typedef void (*op_fn)(struct fz *z);

/* Weighted: the kernel paths, mappings, SVA and DMA come up most. */
static const op_fn ops[] = {
	op_vmalloc, op_vmalloc, op_vmalloc_huge, op_vfree, op_vfree, op_vmap_huge, op_vunmap,
	op_set_memory, op_set_memory, op_collapse, op_hotplug,
	op_map, op_map, op_map, op_unmap, op_unmap, op_translate,
	op_mm_create, op_mm_destroy, op_bind, op_bind, op_unbind, op_get_pasid, op_attach, op_detach,
	op_dma, op_dma, op_dma, op_dma,
	op_frame_alloc, op_frame_free, op_frame_rw,
	op_pt_alloc, op_read_entry, op_read_entry, op_write_entry, op_link, op_unlink, op_pt_free,
	op_deferred, op_deferred, op_iommu_cmd, op_flush, op_inspect, op_device_create,
};

/* ------------------------------------------------------------------------ */
/* The target                                                               */
/* ------------------------------------------------------------------------ */

static bool env_on(const char *name)
{
	const char *s = getenv(name);
	return s && *s && strcmp(s, "0") != 0;
}

/*
 * The machines: one per configuration seen lately, reset after each input
 * (svakit_machine_reset: the state after boot, in time proportional to what
 * the input touched) instead of created and destroyed, which cost most of an
 * input's time. The least recently used goes when the pool is
 * full. SVAKIT_FUZZ_FRESH=1 creates a machine for every input, as before.
 */
#define POOL_MACHINES 64
static struct {
	struct svakit_config cfg;
	svakit_machine *m;
	uint64_t used;
} g_pool[POOL_MACHINES];
static uint64_t g_pool_clock;
static bool g_fresh;          /* SVAKIT_FUZZ_FRESH, or the reset check's fresh run */
static svakit_machine *g_lent; /* the machine the current input runs on, if pooled */

static svakit_machine *machine_for(const struct svakit_config *cfg)
{
	svakit_machine *m;
	int lru = 0;

	if (!g_fresh) {
		for (int i = 0; i < POOL_MACHINES; i++) {
			if (g_pool[i].m && memcmp(&g_pool[i].cfg, cfg, sizeof(*cfg)) == 0) {
				/* Reset when the previous input ended (machine_done). */
				g_pool[i].used = ++g_pool_clock;
				return g_lent = g_pool[i].m;
			}
			if (g_pool[i].used < g_pool[lru].used)
				lru = i;
		}
	}
	if (svakit_machine_create(cfg, &m) != 0)
		abort();
	g_creates++;
	if (g_fresh)
		return g_lent = NULL, m;
	if (g_pool[lru].m) {
		__lsan_unregister_root_region(g_pool[lru].m, sizeof(svakit_machine));
		svakit_machine_destroy(g_pool[lru].m);
	}
	/* The handle lives in its own mapping, which LeakSanitizer does not
	 * scan: without this, a pooled machine looks leaked at libFuzzer's
	 * per-input leak check. */
	__lsan_register_root_region(m, sizeof(svakit_machine));
	g_pool[lru].cfg = *cfg;
	g_pool[lru].m = m;
	g_pool[lru].used = ++g_pool_clock;
	return g_lent = m;
}

/* At exit: the pooled machines go (LeakSanitizer's check follows). */
static void destroy_pool(void)
{
	for (int i = 0; i < POOL_MACHINES; i++) {
		if (!g_pool[i].m)
			continue;
		__lsan_unregister_root_region(g_pool[i].m, sizeof(svakit_machine));
		svakit_machine_destroy(g_pool[i].m);
		g_pool[i].m = NULL;
	}
}

/* The end of an input: a pooled machine is reset for the next one now, so
 * that what the input allocated is freed within it (libFuzzer re-runs an
 * input whose mallocs and frees differ, to look for leaks). */
static void machine_done(svakit_machine *m)
{
	if (m != g_lent) {
		svakit_machine_destroy(m);
		return;
	}
	if (svakit_machine_reset(m) != 0)
		abort();
	g_resets++;
}

static void boot(struct fz *z)
{
	struct svakit_config cfg;
	struct svakit_iommu_config ic;
	uint8_t b0 = u8(&z->r), b1 = u8(&z->r), b2 = u8(&z->r);
	static const uint32_t modes[] = { SVAKIT_FREE_COMPLETE, SVAKIT_FREE_COMPLETE, SVAKIT_FREE_COMPLETE,
					  SVAKIT_FREE_COMPLETE, SVAKIT_FREE_COMPLETE, SVAKIT_FREE_COMPLETE,
					  SVAKIT_FREE_IMMEDIATE, SVAKIT_FREE_LINUX_6_19 };

	svakit_config_default(&cfg);
	/* 256 MiB (two 128 MiB hotplug sections) or 16 MiB: the audit costs
	 * O(frames), and small memory runs out, which the error paths want. */
	cfg.frames = (b0 & 0x30) == 0x30 ? 256ULL << 8 : 16ULL << 8;
	cfg.paging_levels = b0 & 0x8 ? 5 : 4;
	cfg.free_mode = modes[b0 & 7];
	cfg.work_mode = SVAKIT_WORK_MANUAL;
	cfg.reuse_policy = b1 % 4 == 3 ? SVAKIT_REUSE_RANDOM : b1 % 4 == 2 ? SVAKIT_REUSE_FIFO : SVAKIT_REUSE_LIFO;
	cfg.seed = b2;
	cfg.kva_invalidation = b1 & 0x4 ? SVAKIT_KVA_INV_ON_FLUSH : SVAKIT_KVA_INV_NONE;
	cfg.max_pending = b1 & 0x8 ? 1 + (b1 >> 4) : 4096;
	cfg.event_log_capacity = 1024;
	cfg.report_log_capacity = 64;
	/* The sanitizer in three inputs of four (off, linux, fast, window):
	 * every call's bad input must leave its counts consistent too. */
	cfg.iommu_debug_pagealloc = b2 & 3;
	/* The seed drives only the random reuse policy: the same machine
	 * otherwise, so one pooled machine serves every seed. */
	if (cfg.reuse_policy != SVAKIT_REUSE_RANDOM)
		cfg.seed = 0;
	z->m = machine_for(&cfg);
	z->levels = cfg.paging_levels;
	z->free_mode = cfg.free_mode;
	z->frames = cfg.frames;
	z->mem = cfg.frames << 12;
	svakit_vmalloc_area(z->m, &z->vstart, &z->vend);
	svakit_direct_map_va(z->m, 0, &z->dm_base);
	svakit_mm_root(z->m, SVAKIT_INIT_MM, &z->kroot);
	add_table(z, z->kroot);
	z->root[0].mm = SVAKIT_INIT_MM;
	z->root[0].root = z->kroot;
	z->root[0].live = true;
	z->nroot = 1;
	for (int i = 0; i < 2; i++) {
		uint8_t c = u8(&z->r);
		svakit_iommu_config_default(&ic);
		ic.caching = c % 3;
		ic.replacement = (c >> 2) % 3;
		ic.iotlb_sets = 1u << ((c >> 4) % 4);
		ic.iotlb_ways = 1 + (c >> 6);
		ic.psc_sets = 1;
		ic.psc_ways = 1 + (c >> 6);
		ic.sets_accessed_dirty = c & 0x20 ? 1 : 0;
		if (svakit_iommu_create(z->m, &ic, &z->iommu[i]) != 0)
			abort();
	}
	/* Two 20-bit SVA devices on different IOMMUs, a 2-bit SVA device, and
	 * a device without SVA for explicit attachments. */
	static const struct { int iommu; uint32_t flags, bits; } devs[4] = {
		{ 0, SVAKIT_DEV_SVA, 20 }, { 1, SVAKIT_DEV_SVA, 20 }, { 1, SVAKIT_DEV_SVA, 2 }, { 0, 0, 8 },
	};
	for (int i = 0; i < 4; i++) {
		if (svakit_device_create(z->m, z->iommu[devs[i].iommu], devs[i].flags, devs[i].bits, &z->dev[i]) != 0)
			abort();
		z->dev_bits[i] = devs[i].bits;
	}
	check_counters(z, "boot", 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static bool g_strict, g_trace;

/* ------------------------------------------------------------------------ */
/* The seed corpus (SVAKIT_FUZZ_GEN_CORPUS=DIR writes it and exits)          */
/* ------------------------------------------------------------------------ */

struct seed {
	uint8_t b[512];
	size_t n;
};

static void put(struct seed *s, int count, ...)
{
	va_list ap;
	va_start(ap, count);
	for (int i = 0; i < count && s->n < sizeof(s->b); i++)
		s->b[s->n++] = (uint8_t)va_arg(ap, int);
	va_end(ap);
}

/* The opcode byte of an op. */
static int opc(op_fn fn)
{
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (ops[i] == fn)
			return (int)i;
	abort();
}

#define OP0(s, fn) put((s), 1, opc(fn))
#define OP(s, fn, ...) put((s), 1 + (int)(sizeof((int[]){ __VA_ARGS__ }) / sizeof(int)), opc(fn), __VA_ARGS__)

static void write_seed(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n)
		abort();
	fclose(f);
}

/* boot: mode byte (free mode in bits 0-2, 5-level bit 3, 256 MiB when bits
 * 4-5 are set), reuse/kva byte, seed byte, one config byte per IOMMU
 * (0x20: caching full, A/D bits written, a 4-set 1-way IOTLB). */
static void seed_boot(struct seed *s, int mode)
{
	s->n = 0;
	put(s, 5, mode, 0, 0, 0x20, 0x20);
}

/* Inputs that reproduce the engine problems found by probing by hand
 * (tests-c/fuzz/README.md); SVAKIT_FUZZ_GEN_CRASHES=DIR writes them. */
static void gen_crashes(const char *dir)
{
	struct seed s;

	/* An explicit attachment; a 2 MiB kernel leaf at the top of the
	 * address space; a supervisor DMA read of 8 KiB from its last page:
	 * the range wraps past 2^64 and `va + off` traps (Machine+DMA.swift). */
	seed_boot(&s, 0);
	OP0(&s, op_mm_create);
	OP(&s, op_attach, /* dev 3 */ 3, /* pasid 3 */ 4, 2, /* mm */ 0, 0);
	OP(&s, op_vmap_huge, /* 2 MiB */ 0, /* kva 0xffffffffffe00000 */ 7, 0, /* phys 0 */ 0, 0, 0, /* RW */ 1, 0);
	OP(&s, op_dma, /* dev 3 */ 3, /* pasid: attachment */ 3, 0, /* read, kernel va, PRIV */ 3,
	   /* kva 0xfffffffffffff000 */ 7, 1, /* len 8192 */ 3);
	write_seed(dir, "dma-range-wraps-trap", &s);

	/* A PS entry at level 4 (an mm's root, entry 1) naming PFN 2^28, then
	 * a software walk of 0x8000000000: the walk treats the entry as a
	 * table pointer and reads outside the simulated memory (SEGV). */
	seed_boot(&s, 0);
	OP0(&s, op_mm_create);
	OP(&s, op_write_entry, /* the mm's root */ 0, 1, /* index 1 */ 0, 1, 0,
	   /* raw entry */ 0xf9, 0x81, 0, 0, 0, 0, 0x01, 0, 0);
	OP(&s, op_translate, /* mm */ 0, 0, /* user va */ 0, /* raw */ 7, 0, 0, 0, 0, 0x80, 0, 0, 0);
	write_seed(dir, "ps-at-level4-walk-outside-memory", &s);

	/* vmalloc one page; read down to its PTE table (kroot[402], PUD[0],
	 * PMD[0]); point the PTE at frame 0, init_mm's root; vfree: the root
	 * goes to the free list and machine_check still passes. */
	seed_boot(&s, 0);
	OP(&s, op_vmalloc, 0, 0);
	OP(&s, op_read_entry, 0, 0, 0, 0x92, 0x01);
	OP(&s, op_read_entry, 0, 1, 0, 0, 0);
	OP(&s, op_read_entry, 0, 2, 0, 0, 0);
	OP(&s, op_write_entry, 0, 3, 0, 0, 0, 0xf9, 0x03, 0, 0, 0, 0, 0, 0, 0);
	OP(&s, op_vfree, 0, 0);
	write_seed(dir, "vfree-frees-the-leaf-target", &s);

	/* vmalloc one page; unlink the vmalloc area's PMD table from its PUD
	 * table (pud_clear, as pud_free_pmd_page does first): the PTE table
	 * below keeps its LINKED mark and machine_check fails. */
	seed_boot(&s, 0);
	OP(&s, op_vmalloc, 0, 0);
	OP(&s, op_read_entry, 0, 0, 0, 0x92, 0x01);
	OP(&s, op_unlink, 0, 1, 0, 0, 0);
	write_seed(dir, "unlink-table-subtree", &s);
}

static void gen_corpus(const char *dir)
{
	struct seed s;

	/* vmalloc 3 pages, vfree it, run the deferred work. */
	seed_boot(&s, 0);
	OP(&s, op_vmalloc, 0, 2);
	OP(&s, op_vfree, 0, 0);
	OP(&s, op_deferred, 0);
	write_seed(dir, "vmalloc-vfree", &s);

	/* An mm with a 4 KiB user mapping, bound to dev 0, read by DMA. */
	seed_boot(&s, 0);
	OP0(&s, op_mm_create);
	OP(&s, op_map, 0, 0, /* size 4K */ 0, /* uva slot */ 3, 1, 0, /* phys */ 0, 0x10, 0x00, /* prot RW|US */ 3);
	OP(&s, op_bind, /* dev 0 */ 0, /* mm pool */ 0, 0);
	OP(&s, op_dma, /* dev 0 */ 0, /* pasid: bond */ 0, 0, /* read, user va */ 0, /* uva: map pool */ 0, 0,
	   /* len 1..64 */ 0, 7);
	OP(&s, op_unmap, 0, 0);
	OP(&s, op_unbind, 0, 0);
	OP(&s, op_mm_destroy, 0, 0);
	write_seed(dir, "sva-bind-dma", &s);

	/* A kernel address walked by an SVA device (faults at the leaf after
	 * caching the upper levels), then the PTE table replaced by a huge
	 * vmap: the deferred free, with and without the fix. */
	for (int mode = 0; mode < 8; mode += 6) {
		seed_boot(&s, mode);
		OP0(&s, op_mm_create);
		OP(&s, op_bind, 0, 0, 0);
		OP(&s, op_vmalloc, 0, 0);
		OP(&s, op_dma, 0, 0, 0, /* read, kernel va */ 1, /* vm pool */ 0, 0, 0, 0, 7);
		OP(&s, op_vfree, 0, 0);
		OP(&s, op_vmap_huge, /* 2 MiB */ 0, /* kva: vstart + k*2M */ 5, 0, /* phys */ 0, 0, 0x40, /* prot */ 1, 0);
		OP(&s, op_frame_alloc, 0, 0, 0);
		OP(&s, op_deferred, 0);
		OP(&s, op_dma, 0, 0, 0, 1, 5, 0, 0, 7);
		write_seed(dir, mode ? "huge-vmap-immediate" : "huge-vmap-complete", &s);
	}

	/* set_memory splits a direct-map leaf, collapse puts it back. */
	seed_boot(&s, 0);
	OP(&s, op_set_memory, /* kva: direct map 8 MiB */ 3, 0, 0x08, /* 512 pages */ 0xff, 0x01,
	   /* set RW */ 1, /* clear nothing */ 0, 1);
	OP(&s, op_set_memory, 3, 0, 0x08, 0xff, 0x01, 1, 0, 1);
	OP(&s, op_collapse, 3, 0, 0x08);
	OP(&s, op_deferred, 1);
	write_seed(dir, "set-memory-collapse", &s);

	/* The primitives, top-down as pgalloc does it: a level-2 table linked
	 * under the kernel PUD table of the vmalloc area (PML4 entry 402), a
	 * level-1 table under it; unlinked bottom-up, freed. Table pool: 0 is
	 * init_mm's root, then 1, 2 the new tables, 3 the PUD table. */
	seed_boot(&s, 0);
	OP(&s, op_pt_alloc, 1);                       /* a level-2 table */
	OP(&s, op_pt_alloc, 0);                       /* a level-1 table */
	OP(&s, op_read_entry, 0, 0, 0, 0x92, 0x01);   /* kroot[402]: the PUD table */
	OP(&s, op_link, 0, 3, 0, 1, 0, 100, 0);       /* PUD[100] -> level 2 */
	OP(&s, op_link, 0, 1, 0, 2, 0, 0, 0);         /* level 2 [0] -> level 1 */
	OP(&s, op_write_entry, 0, 2, 0, 5, 0, 0, 0, 0x10, 0, 0x03); /* a PTE */
	OP(&s, op_unlink, 0, 1, 0, 0, 0);
	OP(&s, op_unlink, 0, 3, 0, 100, 0);
	OP(&s, op_pt_free, 0, 2, 1);
	OP(&s, op_pt_free, 0, 1, 0);
	OP(&s, op_deferred, 0);
	write_seed(dir, "primitives", &s);

	/* 256 MiB: the top section goes offline and comes back. */
	seed_boot(&s, 0x30);
	OP(&s, op_hotplug, 0, 1, 0);
	OP(&s, op_deferred, 0);
	OP(&s, op_hotplug, 1, 1, 0);
	write_seed(dir, "hotplug", &s);

	/* Explicit PASID attach of a second mm on the plain device. */
	seed_boot(&s, 0x08);
	OP0(&s, op_mm_create);
	OP(&s, op_attach, /* dev 3 */ 3, /* pasid 1..8 */ 4, 2, /* mm pool */ 0, 0);
	OP(&s, op_detach, 0, 0);
	OP(&s, op_mm_destroy, 0, 0);
	write_seed(dir, "attach-detach-5level", &s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	g_strict = !env_on("SVAKIT_FUZZ_LENIENT");
	g_trace = env_on("SVAKIT_FUZZ_TRACE");
	g_profile = env_on("SVAKIT_FUZZ_PROFILE");
	g_fresh = env_on("SVAKIT_FUZZ_FRESH");
	g_reset_check = env_on("SVAKIT_FUZZ_RESET_CHECK");
	atexit(destroy_pool);
	if (g_profile)
		atexit(print_profile);
	if (getenv("SVAKIT_FUZZ_AUDIT_EVERY"))
		g_audit_every = strtoul(getenv("SVAKIT_FUZZ_AUDIT_EVERY"), NULL, 10);
	if (getenv("SVAKIT_FUZZ_GEN_CRASHES")) {
		gen_crashes(getenv("SVAKIT_FUZZ_GEN_CRASHES"));
		exit(0);
	}
	if (getenv("SVAKIT_FUZZ_GEN_CORPUS")) {
		gen_corpus(getenv("SVAKIT_FUZZ_GEN_CORPUS"));
		exit(0);
	}
	return 0;
}

/*
 * Boots the machine the input describes and runs its calls, at most
 * `limit`, then the full audit (unless an oracle report tainted the
 * machine). Returns the call that made the first report, or ULONG_MAX.
 */
static unsigned long run_program(const uint8_t *data, size_t size, unsigned long limit)
{
	static struct fz z;
	unsigned long tainted_at;

	memset(&z, 0, sizeof(z));
	/* The DMA and frame buffer too: what an earlier input read into it
	 * must not become what this one writes (an input must replay alone). */
	memset(buf, 0, sizeof(buf));
	z.r = (struct rd){ .p = data, .n = size };
	z.strict = g_strict;
	z.trace = g_trace;
	if (g_profile)
		g_t = now_ns();
	boot(&z);
	charge(PH_BOOT, &g_t);
	if (z.trace)
		fprintf(stderr, "fuzz_abi: %llu MiB, %u-level, free mode %u\n", (unsigned long long)(z.mem >> 20),
			z.levels, z.free_mode);
	/* A bounded program: 128 calls go deep enough, and keep an input's
	 * cost (and a reproducer's trace) small. */
	while (z.r.i < z.r.n && z.calls < limit) {
		uint8_t op = u8(&z.r);
		ops[op % ARRAY_SIZE(ops)](&z);
	}
	charge(PH_CALLS, &g_t);
	if (!z.tainted && svakit_machine_check_text(z.m, check_text, sizeof(check_text)) != 0) {
		fputs(check_text, stderr);
		fprintf(stderr, "fuzz_abi: the audit at the end of the input failed (problems above); "
				"SVAKIT_FUZZ_AUDIT_EVERY=1 finds the call\n");
		die(&z, "the end of the input", "svakit_machine_check failed", 0);
	}
	charge(PH_AUDIT, &g_t);
	tainted_at = z.tainted ? z.tainted_at : ULONG_MAX;
	/* What the reset check compares besides the calls' results: what the
	 * program saw (ids, addresses, frames), the machine's counters. */
	if (g_reset_check) {
		struct svakit_stats st;
		if (svakit_machine_counters(z.m, &st) != 0)
			abort();
		for (size_t i = 0; i < sizeof(st) / 8; i++)
			trace_mix(((uint64_t *)&st)[i]);
		for (unsigned i = 0; i < COUNT(z.nmm); i++)
			trace_mix(z.mm[i]);
		for (unsigned i = 0; i < COUNT(z.nvm); i++)
			trace_mix(z.vm[i].va);
		for (unsigned i = 0; i < COUNT(z.ndata); i++)
			trace_mix(z.data[i]);
		for (unsigned i = 0; i < COUNT(z.ntab); i++)
			trace_mix(z.tab[i]);
		for (unsigned i = 0; i < COUNT(z.nbond); i++)
			trace_mix((uint64_t)z.bond[i].h << 32 | z.bond[i].pasid);
		trace_mix(z.calls);
	}
	machine_done(z.m);
	charge(PH_DESTROY, &g_t);
	g_inputs++;
	g_calls += z.calls;
	return tainted_at;
}

/* Runs the input on a pooled (reset) machine and on a new one and
 * compares their traces (SVAKIT_FUZZ_RESET_CHECK=1): a reset must leave
 * nothing a program can see. */
static unsigned long run_checked(const uint8_t *data, size_t size, unsigned long limit)
{
	uint64_t pooled, fresh;
	unsigned long tainted_at;

	if (!g_reset_check)
		return run_program(data, size, limit);
	g_trace_hash = 0xcbf29ce484222325ull;
	tainted_at = run_program(data, size, limit);
	pooled = g_trace_hash;
	g_trace_hash = 0xcbf29ce484222325ull;
	g_fresh = true;
	run_program(data, size, limit);
	g_fresh = false;
	fresh = g_trace_hash;
	if (pooled != fresh) {
		fprintf(stderr, "fuzz_abi: the input ran differently on a reset machine (trace %016llx) "
				"and on a new one (%016llx): svakit_machine_reset left state behind\n",
			(unsigned long long)pooled, (unsigned long long)fresh);
		abort();
	}
	return tainted_at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned long tainted_at = run_checked(data, size, 128);

	/* A report stopped the audits: the machine before the reporting call
	 * must still have been consistent. Run the input again up to that call
	 * and audit there (every call was audited already when the audit runs
	 * after each). */
	if (tainted_at != ULONG_MAX && g_audit_every != 1) {
		if (g_trace)
			fprintf(stderr, "fuzz_abi: again, up to call %lu, to audit before the first report\n",
				tainted_at);
		run_checked(data, size, tainted_at);
	}
	return 0;
}
