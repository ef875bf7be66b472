/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bad input at every function of include/svakit.h and svakit_debug.h, table-driven.
 *
 * One cmocka test per ABI function; inside it, a table of bad inputs. Each
 * row runs on a freshly built fixture (a small machine with an mm, IOMMUs,
 * devices, a bond, kernel tables in every state: see fixture_build) and
 * asserts three things:
 *
 *   (a) the call returns the errno of the header's error table (when the
 *       header is silent, the row's note says which errno we chose and why);
 *   (b) svakit_machine_check() passes afterwards;
 *   (c) nothing changed: the machine's stats (minus the event clock and the
 *       resident bytes), the deferred-free stats, every frame's descriptor,
 *       the contents of every allocated frame, the IOMMUs' counters, and the
 *       ids that resolve (mms, devices, IOMMUs, bonds, the SVA mm count, the
 *       static key, the report count) are the same before and after.
 *
 * Besides the per-function rows, every function that takes a machine is
 * called with a NULL handle (-EFAULT), a foreign handle (magic 0: -EBADF), a
 * forged handle (right magic, bogus owner: -EBADF) and a destroyed handle
 * (-EBADF); see handle_calls[].
 *
 * Known-failing rows. A row with .kf set fails on the current engine (the
 * text says what the engine does instead). By default such a row is run in
 * a forked child, so that a crash or an ASan report cannot take the suite
 * down, and its outcome is printed as
 *     KNOWN-FAILING <function>: <input>: expected X, got Y ...
 * without asserting. SVAKIT_STRICT=1 in the environment turns every such row
 * into a real assertion run in-process: the one switch to flip once the
 * engine is fixed (then delete the .kf texts that no longer apply; a row
 * that passes while still marked prints "KNOWN-FAILING ... now PASSES").
 * SVAKIT_BAD_INPUT_VERBOSE=1 shows the children's stderr.
 *
 * test_every_header_function_has_a_table parses include/svakit.h and
 * include/svakit_debug.h and fails when a function is declared there without
 * a table here, or when FUNCTIONS is not in the headers' order.
 */
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define SZ_4K 0x1000ULL
#define SZ_2M 0x200000ULL
#define SZ_1G 0x40000000ULL
#define MIB_FRAMES(n) ((uint64_t)(n) << 8)
#define SECTION ((uint64_t)SVAKIT_SECTION_PAGES)

/* User addresses of the fixture's mm (all under root entry 0, PUD entry 0). */
#define UVA 0x10000000ULL      /* a 4 KiB leaf to the fixture's data frame */
#define UVA_2M 0x20000000ULL   /* a 2 MiB leaf to phys 16 MiB */
#define UVA_FREE 0x30000000ULL /* nothing mapped; the PMD table exists */
/* Non-canonical with 4- and 5-level paging alike. */
#define NONCANON_K 0x8000000000000000ULL
#define NONCANON_U 0x0100000000000000ULL
#define RW SVAKIT_PTE_RW
#define US SVAKIT_PTE_US
#define P SVAKIT_PTE_P
#define PS SVAKIT_PTE_PS

enum variant {
	V64 = 0, /* 64 MiB, 4-level paging: most rows */
	V5L,     /* 64 MiB, 5-level paging */
	V256,    /* 256 MiB (two hotplug sections), 4-level */
};

/* ------------------------------------------------------------------------ */
/* The fixture                                                              */
/* ------------------------------------------------------------------------ */

struct fx {
	svakit_machine *m;
	enum variant variant;
	uint32_t levels;
	uint64_t frames, mem_bytes;
	uint64_t vstart, vend;
	uint32_t mm;          /* bound to dev_sva (bond); maps UVA and UVA_2M */
	uint32_t mm2;         /* explicitly attached to dev_plain at explicit_pasid */
	uint32_t dead_mm;     /* created, then destroyed */
	uint32_t iommu, iommu2;
	uint32_t dev_sva;     /* SVA, 20-bit PASIDs, behind iommu */
	uint32_t dev_sva2;    /* SVA, 20-bit PASIDs, behind iommu2 */
	uint32_t dev_narrow;  /* SVA, 1-bit PASIDs (PASID 1 only), behind iommu2 */
	uint32_t dev_plain;   /* not SVA, 8-bit PASIDs, behind iommu2 */
	uint32_t bond, pasid; /* dev_sva <-> mm, and mm's PASID */
	uint32_t dead_bond;   /* dev_sva2 <-> mm, unbound */
	uint32_t explicit_pasid;
	uint64_t data_pfn;    /* an allocated data frame, mapped at UVA */
	uint64_t block_pfn;   /* head of an order-1 data block; +1 is a tail */
	uint64_t freed_pfn;   /* a data frame allocated, then freed */
	uint64_t virgin_pfn;  /* a free frame never allocated */
	uint64_t pte_tab, pmd_tab, pud_tab; /* unlinked kernel tables, levels 1-3 */
	uint64_t kva_linked;  /* a kernel page mapped in init_mm through: */
	uint64_t kva_pud;     /*   the level-3 table, entry idx(kva_linked, 3) -> */
	uint64_t linked_parent, linked_child; /* the level-2 table -> the level-1 table */
	uint64_t queued_tab;  /* a kernel level-2 table on the deferred-free list */
	uint64_t freed_tab;   /* a kernel table freed through the deferred work */
	uint64_t kroot;       /* init_mm's root */
	uint64_t user_root, user_pud, user_pmd; /* mm's tables over UVA */
	uint64_t vm_va;       /* a 4-page vmalloc area */
	uint64_t huge_va;     /* a 2 MiB vmalloc_huge area */
	uint64_t dead_vm_va;  /* a vfreed area */
	uint64_t dm_va;       /* direct map of phys 8 MiB (a 2 MiB leaf) */
	uint64_t dm_base;     /* the direct map's start (page_offset_base) */
	uint64_t tmp;         /* set by some preps */
	/* DMA domains and the DMA API (behind iommu) */
	uint32_t dev_dma;     /* not SVA; its default domain is dma_dom (DMA-FQ: lazy) */
	uint32_t dma_dom;
	uint32_t dom;         /* a DMA domain of iommu, attached to nothing; maps IOVA_MAPPED */
	uint32_t dom_ident;   /* an identity domain of iommu */
	uint32_t dead_dom;    /* allocated, then freed */
	uint64_t dma_live;    /* dev_dma's live mapping of data_pfn (bidirectional, 4 KiB) */
	uint64_t dma_gone;    /* dev_dma's mapping of block_pfn, unmapped lazily: in the flush queue */
	struct svakit_sg sg[2]; /* dev_dma's live mapping of [data_pfn, block_pfn] (to-device) */
	int sg_count;
	uint64_t coh_pfn, coh_dma; /* a coherent buffer of 8 KiB for dev_dma */
	/* A standalone IOVA domain (4 KiB granule, start_pfn 1, 4 CPUs): one
	 * range allocated from the tree, one cached on CPU 0, one reserved. */
	struct svakit_iova_domain *iovad;
	uint64_t iova_pfn;     /* allocated, not cached */
};

/* IOVAs of the fixture's domain `dom`. */
#define IOVA_MAPPED 0x100000ULL /* a 4 KiB mapping of data_pfn */
#define IOVA_FREE 0x180000ULL   /* nothing mapped; the PTE table exists */
#define APERTURE (1ULL << 48)
#define DMA_BIDI SVAKIT_DMA_BIDIRECTIONAL
#define DMA_TODEV SVAKIT_DMA_TO_DEVICE
#define CPU_CUR SVAKIT_CPU_CURRENT

/* Setup failures: cmocka in the test process, a plain exit in a child. */
static bool in_child;

static void fixture_fail(const char *what, int rc, int line)
{
	if (in_child) {
		fprintf(stderr, "fixture: %s returned %d (line %d)\n", what, rc, line);
		_exit(97);
	}
	fail_msg("fixture: %s returned %d (line %d)", what, rc, line);
}

#define REQUIRE(cond)                                                    \
	do {                                                             \
		if (!(cond))                                             \
			fixture_fail(#cond, 0, __LINE__);                \
	} while (0)

#define REQUIRE0(call)                                                   \
	do {                                                             \
		int r_ = (call);                                         \
		if (r_ != 0)                                             \
			fixture_fail(#call, r_, __LINE__);               \
	} while (0)

static svakit_machine *new_machine(uint64_t frames, uint32_t levels)
{
	struct svakit_config cfg;
	svakit_machine *m = NULL;

	svakit_config_default(&cfg);
	cfg.frames = frames;
	cfg.paging_levels = levels;
	cfg.free_mode = SVAKIT_FREE_COMPLETE;
	cfg.work_mode = SVAKIT_WORK_MANUAL; /* no thread: fork-safe, deterministic */
	/* Every row runs with the sanitizer on, window-aware: bad input must
	 * leave its counts consistent too. */
	if (svakit_iommu_debug_pagealloc_built())
		cfg.iommu_debug_pagealloc = SVAKIT_IOMMU_DEBUG_WINDOW;
	REQUIRE0(svakit_machine_create(&cfg, &m));
	return m;
}

static uint64_t entry_pfn(svakit_machine *m, uint64_t table, unsigned index)
{
	uint64_t e = 0;
	REQUIRE0(svakit_pagetable_read_entry(m, table, index, &e));
	return (e & SVAKIT_PTE_PFN_MASK) >> 12;
}

static void fixture_build(struct fx *f, enum variant v)
{
	struct svakit_iommu_config icfg;
	svakit_machine *m;

	memset(f, 0, sizeof(*f));
	f->variant = v;
	f->levels = v == V5L ? 5 : 4;
	f->frames = MIB_FRAMES(v == V256 ? 256 : 64);
	f->mem_bytes = f->frames << 12;
	f->m = m = new_machine(f->frames, f->levels);
	REQUIRE0(svakit_vmalloc_area(m, &f->vstart, &f->vend));

	/* Allocations first: under LIFO reuse, anything allocated after a free
	 * would take the freed frame back. */
	svakit_iommu_config_default(&icfg);
	REQUIRE0(svakit_iommu_create(m, &icfg, &f->iommu));
	REQUIRE0(svakit_iommu_create(m, &icfg, &f->iommu2));
	REQUIRE0(svakit_device_create(m, f->iommu, SVAKIT_DEV_SVA, 20, &f->dev_sva));
	REQUIRE0(svakit_device_create(m, f->iommu2, SVAKIT_DEV_SVA, 20, &f->dev_sva2));
	REQUIRE0(svakit_device_create(m, f->iommu2, SVAKIT_DEV_SVA, 1, &f->dev_narrow));
	REQUIRE0(svakit_device_create(m, f->iommu2, 0, 8, &f->dev_plain));
	REQUIRE0(svakit_mm_create(m, &f->mm));
	REQUIRE0(svakit_mm_create(m, &f->mm2));
	REQUIRE0(svakit_mm_create(m, &f->dead_mm));
	REQUIRE0(svakit_frame_alloc(m, 0, 7, &f->data_pfn));
	REQUIRE0(svakit_frame_alloc(m, 1, 7, &f->block_pfn));
	REQUIRE0(svakit_frame_alloc(m, 0, 7, &f->freed_pfn));
	REQUIRE0(svakit_mm_map(m, f->mm, UVA, f->data_pfn << 12, SZ_4K, RW | US));
	REQUIRE0(svakit_mm_map(m, f->mm, UVA_2M, 16ULL << 20, SZ_2M, RW | US));
	REQUIRE0(svakit_mm_root(m, SVAKIT_INIT_MM, &f->kroot));
	REQUIRE0(svakit_mm_root(m, f->mm, &f->user_root));
	f->user_pud = entry_pfn(m, f->user_root, 0);
	if (f->levels == 5)
		f->user_pud = entry_pfn(m, f->user_pud, 0);
	f->user_pmd = entry_pfn(m, f->user_pud, 0);
	REQUIRE0(svakit_iommu_sva_bind_device(m, f->dev_sva, f->mm, &f->bond));
	REQUIRE0(svakit_iommu_sva_get_pasid(m, f->bond, &f->pasid));
	REQUIRE0(svakit_iommu_sva_bind_device(m, f->dev_sva2, f->mm, &f->dead_bond));
	f->explicit_pasid = 5;
	REQUIRE0(svakit_iommu_attach_device_pasid(m, f->dev_plain, f->explicit_pasid, f->mm2));
	REQUIRE0(svakit_pagetable_alloc_kernel(m, 1, &f->pte_tab));
	REQUIRE0(svakit_pagetable_alloc_kernel(m, 2, &f->pmd_tab));
	REQUIRE0(svakit_pagetable_alloc_kernel(m, 3, &f->pud_tab));
	REQUIRE0(svakit_pagetable_alloc_kernel(m, 2, &f->queued_tab));
	REQUIRE0(svakit_pagetable_alloc_kernel(m, 1, &f->freed_tab));
	REQUIRE0(svakit_vmalloc(m, 4 * SZ_4K, &f->vm_va));
	REQUIRE0(svakit_vmalloc_huge(m, SZ_2M, &f->huge_va));
	REQUIRE0(svakit_vmalloc(m, SZ_4K, &f->dead_vm_va));
	f->kva_linked = f->vstart + (128ULL << 30);
	REQUIRE0(svakit_mm_map(m, SVAKIT_INIT_MM, f->kva_linked, 0, SZ_4K, RW));
	f->kva_pud = f->kroot;
	for (unsigned l = f->levels; l > 3; l--)
		f->kva_pud = entry_pfn(m, f->kva_pud, idx(f->kva_linked, l));
	f->linked_parent = entry_pfn(m, f->kva_pud, idx(f->kva_linked, 3));
	f->linked_child = entry_pfn(m, f->linked_parent, idx(f->kva_linked, 2));
	REQUIRE0(svakit_direct_map_va(m, 8ULL << 20, &f->dm_va));
	REQUIRE0(svakit_direct_map_va(m, 0, &f->dm_base));
	REQUIRE0(svakit_device_create(m, f->iommu, 0, 8, &f->dev_dma));
	{
		uint32_t reason;
		REQUIRE0(svakit_iommu_setup_default_domain(m, f->dev_dma, 0, &f->dma_dom, &reason));
		REQUIRE(reason == SVAKIT_POLICY_LAZY_DEFAULT);
	}
	REQUIRE0(svakit_iommu_domain_alloc(m, f->iommu, SVAKIT_DOMAIN_DMA, 0, &f->dom));
	REQUIRE0(svakit_iommu_map(m, f->dom, IOVA_MAPPED, f->data_pfn << 12, SZ_4K,
				  SVAKIT_IOMMU_READ | SVAKIT_IOMMU_WRITE));
	REQUIRE0(svakit_iommu_domain_alloc(m, f->iommu, SVAKIT_DOMAIN_IDENTITY, 0, &f->dom_ident));
	REQUIRE0(svakit_iommu_domain_alloc(m, f->iommu, SVAKIT_DOMAIN_DMA, 0, &f->dead_dom));
	REQUIRE0(svakit_dma_map_page(m, f->dev_dma, f->data_pfn << 12, SZ_4K, DMA_BIDI, 0, &f->dma_live));
	REQUIRE0(svakit_dma_map_page(m, f->dev_dma, f->block_pfn << 12, SZ_4K, DMA_TODEV, 0, &f->dma_gone));
	f->sg[0] = (struct svakit_sg){ .phys = f->data_pfn << 12, .length = SZ_4K };
	f->sg[1] = (struct svakit_sg){ .phys = f->block_pfn << 12, .length = SZ_4K };
	f->sg_count = svakit_dma_map_sg(m, f->dev_dma, f->sg, 2, DMA_TODEV, 0);
	REQUIRE(f->sg_count == 1);
	REQUIRE0(svakit_dma_alloc_coherent(m, f->dev_dma, 2 * SZ_4K, 0, &f->coh_dma, &f->coh_pfn));

	/* Then the frees. */
	REQUIRE0(svakit_iommu_domain_free(m, f->dead_dom));
	REQUIRE0(svakit_dma_unmap_page(m, f->dev_dma, f->dma_gone, SZ_4K, DMA_TODEV, 0));
	REQUIRE0(svakit_frame_free(m, f->freed_pfn));
	REQUIRE0(svakit_vfree(m, f->dead_vm_va));
	/* vfree leaves its range lazy; purge it, so that no refused call's own
	 * vm_unmap_aliases (set_memory makes one first, as in Linux) flushes. */
	REQUIRE0(svakit_vm_unmap_aliases(m));
	REQUIRE0(svakit_iommu_sva_unbind_device(m, f->dead_bond));
	REQUIRE0(svakit_mm_destroy(m, f->dead_mm));
	REQUIRE0(svakit_pagetable_free_kernel(m, f->freed_tab));
	REQUIRE0(svakit_deferred_work_run(m));
	REQUIRE0(svakit_pagetable_free_kernel(m, f->queued_tab));

	for (uint64_t pfn = f->frames - 1; pfn > 0; pfn--) {
		struct svakit_ptdesc d;
		REQUIRE0(svakit_frame_info(m, pfn, &d));
		if (d.kind == SVAKIT_FRAME_FREE && d.generation == 0) {
			f->virgin_pfn = pfn;
			break;
		}
	}
	REQUIRE0(svakit_machine_check(m));
	REQUIRE0(svakit_iova_domain_create(4096, 1, 4, &f->iovad));
	REQUIRE0(svakit_alloc_iova(f->iovad, 8, 0xFFFFF, 1, &f->iova_pfn));
	REQUIRE0(svakit_alloc_iova_fast(f->iovad, 0, 1, 0xFFFFF, 0, &f->tmp));
	REQUIRE0(svakit_free_iova_fast(f->iovad, 0, f->tmp, 1));
	REQUIRE0(svakit_reserve_iova(f->iovad, 0x1000, 0x10ff));
	f->tmp = 0;
}

static void fixture_destroy(struct fx *f)
{
	svakit_iova_domain_destroy(f->iovad);
	f->iovad = NULL;
	svakit_machine_destroy(f->m);
	f->m = NULL;
}

/* Preparations some rows need on top of the fixture. */
static void prep_exhaust(struct fx *f)
{
	uint64_t pfn;
	while (svakit_frame_alloc(f->m, 0, 9, &pfn) == 0)
		;
}

/* Exactly one free frame left: enough for one table of the three a fresh
 * user mapping needs. */
static void prep_leave_one_frame(struct fx *f)
{
	uint64_t pfn, last = SVAKIT_NO_PFN;
	while (svakit_frame_alloc(f->m, 0, 9, &pfn) == 0)
		last = pfn;
	REQUIRE(last != SVAKIT_NO_PFN);
	REQUIRE0(svakit_frame_free(f->m, last));
}

static void prep_bind_mm2(struct fx *f) /* mm2 gets PASID 2 */
{
	uint32_t h;
	REQUIRE0(svakit_iommu_sva_bind_device(f->m, f->dev_sva, f->mm2, &h));
}

/* dev_sva2's slot at mm's PASID holds an explicit attachment of mm2. */
static void prep_attach_mm2_at_mm_pasid(struct fx *f)
{
	REQUIRE0(svakit_iommu_attach_device_pasid(f->m, f->dev_sva2, f->pasid, f->mm2));
}

static void prep_offline_top_section(struct fx *f)
{
	REQUIRE0(svakit_memory_hot_remove(f->m, SECTION, SECTION));
}

static void prep_detach_explicit(struct fx *f)
{
	REQUIRE0(svakit_iommu_detach_device_pasid(f->m, f->dev_plain, f->explicit_pasid));
}

/* A 2 MiB kernel leaf over the last 2 MiB of the address space. */
static void prep_map_top(struct fx *f)
{
	REQUIRE0(svakit_vmap_huge(f->m, 0xffffffffffe00000ULL, 0, SZ_2M, RW));
}

/* In f->tmp: the frame behind the vmalloc area's first page (vmalloc's, not
 * the caller's). */
static void prep_vmalloc_page(struct fx *f)
{
	struct svakit_translation t;
	REQUIRE0(svakit_mm_translate(f->m, SVAKIT_INIT_MM, f->vm_va, &t));
	f->tmp = t.phys >> 12;
}

/* An unlinked user table in f->tmp: the PTE table of mm over UVA (a leaf
 * table: unlinking a table with tables under it fails the audit, see
 * ul_subtree). */
static void prep_unlink_user_pte(struct fx *f)
{
	REQUIRE0(svakit_pagetable_unlink(f->m, f->user_pmd, (unsigned)idx(UVA, 2), &f->tmp));
}

/* dev_dma's default domain detached: its mappings stay, the DMA API refuses. */
static void prep_detach_dma(struct fx *f)
{
	REQUIRE0(svakit_iommu_detach_device(f->m, f->dev_dma));
}

/* dma_dom is also dev_sva's default domain: two devices share it. */
static void prep_share_dma_dom(struct fx *f)
{
	REQUIRE0(svakit_iommu_attach_device(f->m, f->dma_dom, f->dev_sva));
}

static void prep_iommu_unmap(struct fx *f)
{
	uint64_t n;
	REQUIRE0(svakit_iommu_unmap(f->m, f->dom, IOVA_MAPPED, SZ_4K, &n));
}

static void prep_unmap_sg(struct fx *f)
{
	REQUIRE0(svakit_dma_unmap_sg(f->m, f->dev_dma, f->sg, 2, DMA_TODEV, 0));
}

static void prep_free_coherent(struct fx *f)
{
	REQUIRE0(svakit_dma_free_coherent(f->m, f->dev_dma, 2 * SZ_4K, f->coh_pfn, f->coh_dma, 0));
}

/* ------------------------------------------------------------------------ */
/* Snapshots of the observable state                                        */
/* ------------------------------------------------------------------------ */

#define PROBE_IDS 32
#define PROBE_DOMAINS 8
#define PROBE_IOVAS 4

struct snap {
	struct svakit_stats st;
	struct svakit_deferred_stats ds;
	uint32_t niommu, ndev, sva_mms;
	int key;
	uint64_t reports;
	struct svakit_iommu_counters ic[8];
	int mm_rc[PROBE_IDS];
	uint64_t mm_root[PROBE_IDS];
	int bond_rc[PROBE_IDS];
	uint32_t bond_pasid[PROBE_IDS];
	int fq_rc[PROBE_DOMAINS];
	struct svakit_flush_queue_stats fq[PROBE_DOMAINS];
	int i2p_rc[PROBE_DOMAINS][PROBE_IOVAS];
	uint64_t i2p[PROBE_DOMAINS][PROBE_IOVAS];
	uint64_t nframes;
	struct svakit_ptdesc *desc;
	uint64_t *hash;
	/* IOMMU_DEBUG_PAGEALLOC: its counters and every frame's count. */
	struct svakit_iommu_debug_stats dbg;
	int32_t *count;
	/* The standalone IOVA domain. */
	struct svakit_iova_stats is;
	struct svakit_iova_cpu_stats ics[4];
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void snap_take(struct fx *f, struct snap *s)
{
	svakit_machine *m = f->m;
	static uint8_t page[4096];

	memset(s, 0, sizeof(*s));
	REQUIRE0(svakit_machine_stats(m, &s->st));
	s->st.step = 0;                /* the event clock may move */
	s->st.host_bytes_resident = 0; /* the host backs frames lazily */
	REQUIRE0(svakit_deferred_stats(m, &s->ds));
	REQUIRE0(svakit_iommu_sva_mm_count(m, &s->sva_mms));
	REQUIRE0(svakit_report_count(m, &s->reports));
	s->key = svakit_iommu_sva_present(m);
	while (s->niommu < ARRAY_SIZE(s->ic) && svakit_iommu_counters(m, s->niommu, &s->ic[s->niommu]) == 0)
		s->niommu++;
	while (s->ndev < 64 && svakit_iommu_detach_device_pasid(m, s->ndev, 0) != -ENODEV)
		s->ndev++;
	for (uint32_t i = 0; i < PROBE_IDS; i++) {
		s->mm_rc[i] = svakit_mm_root(m, i, &s->mm_root[i]);
		s->bond_rc[i] = svakit_iommu_sva_get_pasid(m, i, &s->bond_pasid[i]);
	}
	/* The DMA state: each domain's flush queue, and what its tables say at
	 * the fixture's DMA addresses (the IOTLBs are in the IOMMU counters). */
	for (uint32_t d = 0; d < PROBE_DOMAINS; d++) {
		const uint64_t iovas[PROBE_IOVAS] = { IOVA_MAPPED, f->dma_live, f->sg[0].dma_address, f->coh_dma };
		s->fq_rc[d] = svakit_flush_queue_stats(m, d, &s->fq[d]);
		for (int i = 0; i < PROBE_IOVAS; i++)
			s->i2p_rc[d][i] = svakit_iommu_iova_to_phys(m, d, iovas[i], &s->i2p[d][i]);
	}
	REQUIRE0(svakit_iova_stats(f->iovad, &s->is));
	for (uint32_t c = 0; c < 4; c++)
		REQUIRE0(svakit_iova_cpu_stats(f->iovad, c, &s->ics[c]));
	s->nframes = s->st.frames;
	s->desc = calloc(s->nframes, sizeof(*s->desc));
	s->hash = calloc(s->nframes, sizeof(*s->hash));
	s->count = calloc(s->nframes, sizeof(*s->count));
	REQUIRE(s->desc && s->hash && s->count);
	/* Compiled out (-DSVAKIT_IOMMU_DEBUG_PAGEALLOC=OFF): no counts to compare. */
	bool dbg = svakit_iommu_debug_pagealloc_built();
	if (dbg)
		REQUIRE0(svakit_iommu_debug_stats(m, &s->dbg));
	for (uint64_t pfn = 0; pfn < s->nframes; pfn++) {
		REQUIRE0(svakit_frame_info(m, pfn, &s->desc[pfn]));
		if (dbg)
			REQUIRE0(svakit_iommu_debug_map_count(m, pfn, &s->count[pfn]));
		if (s->desc[pfn].kind == SVAKIT_FRAME_FREE || s->desc[pfn].kind == SVAKIT_FRAME_OFFLINE)
			continue;
		REQUIRE0(svakit_frame_read(m, pfn, 0, page, sizeof(page)));
		s->hash[pfn] = fnv1a(page, sizeof(page));
	}
}

static void snap_free(struct snap *s)
{
	free(s->desc);
	free(s->hash);
	free(s->count);
	s->desc = NULL;
	s->hash = NULL;
	s->count = NULL;
}

#define DIFF_LEN 512

/* Describes what differs into out (empty when nothing does). With
 * dma_walked, the IOMMUs' counters may differ (a walk happened). */
static void snap_diff(const struct snap *a, const struct snap *b, bool dma_walked, char *out)
{
	size_t n = 0;
	int frames = 0;

#define NOTE_DIFF(...)                                                                   \
	do {                                                                             \
		if (n < DIFF_LEN - 1)                                                    \
			n += (size_t)snprintf(out + n, DIFF_LEN - n, __VA_ARGS__);       \
	} while (0)

	out[0] = 0;
	if (memcmp(&a->st, &b->st, sizeof(a->st)))
		NOTE_DIFF("stats (tables k %llu->%llu u %llu->%llu, data %llu->%llu, free %llu->%llu, "
			  "allocs %llu->%llu, frees %llu->%llu, flushes %llu->%llu); ",
			  (unsigned long long)a->st.kernel_tables, (unsigned long long)b->st.kernel_tables,
			  (unsigned long long)a->st.user_tables, (unsigned long long)b->st.user_tables,
			  (unsigned long long)a->st.data_frames, (unsigned long long)b->st.data_frames,
			  (unsigned long long)a->st.frames_free, (unsigned long long)b->st.frames_free,
			  (unsigned long long)a->st.allocs, (unsigned long long)b->st.allocs,
			  (unsigned long long)a->st.frees, (unsigned long long)b->st.frees,
			  (unsigned long long)a->st.kernel_tlb_flushes, (unsigned long long)b->st.kernel_tlb_flushes);
	if (memcmp(&a->ds, &b->ds, sizeof(a->ds)))
		NOTE_DIFF("deferred stats (pending %llu->%llu); ", (unsigned long long)a->ds.pending,
			  (unsigned long long)b->ds.pending);
	if (a->niommu != b->niommu)
		NOTE_DIFF("IOMMUs %u->%u; ", a->niommu, b->niommu);
	else if (!dma_walked && memcmp(a->ic, b->ic, sizeof(a->ic)))
		NOTE_DIFF("IOMMU counters; ");
	if (a->ndev != b->ndev)
		NOTE_DIFF("devices %u->%u; ", a->ndev, b->ndev);
	if (a->sva_mms != b->sva_mms || a->key != b->key)
		NOTE_DIFF("SVA mms %u->%u key %d->%d; ", a->sva_mms, b->sva_mms, a->key, b->key);
	if (a->reports != b->reports)
		NOTE_DIFF("reports %llu->%llu; ", (unsigned long long)a->reports, (unsigned long long)b->reports);
	if (memcmp(a->mm_rc, b->mm_rc, sizeof(a->mm_rc)) || memcmp(a->mm_root, b->mm_root, sizeof(a->mm_root)))
		NOTE_DIFF("mm ids; ");
	if (memcmp(a->bond_rc, b->bond_rc, sizeof(a->bond_rc)) ||
	    memcmp(a->bond_pasid, b->bond_pasid, sizeof(a->bond_pasid)))
		NOTE_DIFF("bond handles; ");
	for (int d = 0; d < PROBE_DOMAINS; d++) {
		if (a->fq_rc[d] != b->fq_rc[d] || memcmp(&a->fq[d], &b->fq[d], sizeof(a->fq[d])))
			NOTE_DIFF("domain %d flush queue (rc %d->%d, pending %llu->%llu, flushes %llu->%llu); ", d,
				  a->fq_rc[d], b->fq_rc[d], (unsigned long long)a->fq[d].pending,
				  (unsigned long long)b->fq[d].pending, (unsigned long long)a->fq[d].flushes,
				  (unsigned long long)b->fq[d].flushes);
		if (memcmp(a->i2p_rc[d], b->i2p_rc[d], sizeof(a->i2p_rc[d])) ||
		    memcmp(a->i2p[d], b->i2p[d], sizeof(a->i2p[d])))
			NOTE_DIFF("domain %d translations; ", d);
	}
	if (memcmp(&a->dbg, &b->dbg, sizeof(a->dbg)))
		NOTE_DIFF("sanitizer counters (raised %llu->%llu lowered %llu->%llu leaks %llu->%llu); ",
			  (unsigned long long)a->dbg.raised, (unsigned long long)b->dbg.raised,
			  (unsigned long long)a->dbg.lowered, (unsigned long long)b->dbg.lowered,
			  (unsigned long long)a->dbg.leaks, (unsigned long long)b->dbg.leaks);
	if (memcmp(&a->is, &b->is, sizeof(a->is)) || memcmp(a->ics, b->ics, sizeof(a->ics)))
		NOTE_DIFF("IOVA domain (ranges %llu->%llu, max32 %llu->%llu); ", (unsigned long long)a->is.nodes,
			  (unsigned long long)b->is.nodes, (unsigned long long)a->is.max32_alloc_size,
			  (unsigned long long)b->is.max32_alloc_size);
	for (uint64_t pfn = 0; pfn < a->nframes && pfn < b->nframes; pfn++) {
		bool d = memcmp(&a->desc[pfn], &b->desc[pfn], sizeof(a->desc[pfn])) != 0 ||
			 a->count[pfn] != b->count[pfn];
		bool c = a->hash[pfn] != b->hash[pfn];
		if (!d && !c)
			continue;
		if (frames++ < 6)
			NOTE_DIFF("frame %llu %s (kind %u->%u level %u->%u flags %#x->%#x map count %d->%d); ",
				  (unsigned long long)pfn, d ? "descriptor" : "contents",
				  a->desc[pfn].kind, b->desc[pfn].kind, a->desc[pfn].level,
				  b->desc[pfn].level, a->desc[pfn].flags, b->desc[pfn].flags,
				  a->count[pfn], b->count[pfn]);
	}
	if (frames > 6)
		NOTE_DIFF("... %d frames differ; ", frames);
#undef NOTE_DIFF
}

/* ------------------------------------------------------------------------ */
/* Running a row                                                            */
/* ------------------------------------------------------------------------ */

#define CASE_DMA 0x1u   /* a DMA walk happens: the IOMMUs' counters may move */
#define CASE_VALID 0x2u /* not bad input: a valid call, asserted to return the
			 * value and to pass the audit (the state changes) */

struct bad_case {
	const char *id;
	const char *desc;      /* the bad input */
	int (*call)(struct fx *f);
	int expect;            /* the return value required */
	const char *kf;        /* known-failing: what the current engine does */
	const char *note;      /* why this errno, where the header does not say */
	void (*prep)(struct fx *f);
	enum variant variant;
	unsigned flags;
};

struct outcome {
	int rc;
	int check;
	char check_text[512];    /* what the machine check found */
	int crashed;             /* the child died: a signal or a sanitizer exit */
	char diff[DIFF_LEN];
	char crash[256];         /* the first line of the child's report */
};

static bool strict_mode(void)
{
	const char *s = getenv("SVAKIT_STRICT");
	return s && *s && strcmp(s, "0") != 0;
}

static bool verbose_mode(void)
{
	const char *s = getenv("SVAKIT_BAD_INPUT_VERBOSE");
	return s && *s && strcmp(s, "0") != 0;
}

static const char *errname(int e)
{
	static char other[32];
	static const struct { int e; const char *n; } names[] = {
		{ 0, "0" }, { SVAKIT_DMA_FAULTED, "SVAKIT_DMA_FAULTED" },
		{ -EFAULT, "-EFAULT" }, { -EBADF, "-EBADF" }, { -ERANGE, "-ERANGE" },
		{ -EINVAL, "-EINVAL" }, { -EEXIST, "-EEXIST" }, { -ENOENT, "-ENOENT" },
		{ -EALREADY, "-EALREADY" }, { -ENXIO, "-ENXIO" }, { -EPERM, "-EPERM" },
		{ -EBUSY, "-EBUSY" }, { -ESRCH, "-ESRCH" }, { -ENOMEM, "-ENOMEM" },
		{ -ENOSPC, "-ENOSPC" }, { -ENODEV, "-ENODEV" }, { -EOPNOTSUPP, "-EOPNOTSUPP" },
		{ -EOVERFLOW, "-EOVERFLOW" }, { -ESTALE, "-ESTALE" }, { -EUCLEAN, "-EUCLEAN" },
		{ -ENOMSG, "-ENOMSG (no text)" }, { -ENOTRECOVERABLE, "-ENOTRECOVERABLE (*out written)" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].e == e)
			return names[i].n;
	snprintf(other, sizeof(other), "%d", e);
	return other;
}

/* The part of a row that may crash: the call, the audit, the second
 * snapshot. */
static void evaluate(struct fx *f, const struct bad_case *c, const struct snap *before, struct outcome *o)
{
	struct snap after;

	o->rc = c->call(f);
	o->check = svakit_machine_check_text(f->m, o->check_text, sizeof(o->check_text));
	snap_take(f, &after);
	if (!(c->flags & CASE_VALID))
		snap_diff(before, &after, c->flags & CASE_DMA, o->diff);
	snap_free(&after);
}

static bool outcome_ok(const struct bad_case *c, const struct outcome *o)
{
	return !o->crashed && o->rc == c->expect && o->check == 0 && o->diff[0] == 0;
}

/* Runs evaluate() in a child; a crash becomes o->crashed with the first
 * line of what the child printed. */
static void evaluate_in_child(struct fx *f, const struct bad_case *c, const struct snap *before,
			      struct outcome *o)
{
	int res[2], err[2], status = 0;
	char buf[16384];
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	REQUIRE0(pipe(res));
	REQUIRE0(pipe(err));
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		/* cmocka catches fatal signals and longjmps back into its runner:
		 * a crashing child would go on running the suite. Die instead,
		 * and do not hang forever either. */
		static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };
		for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
			signal(sigs[i], SIG_DFL);
		alarm(60);
		in_child = true;
		close(res[0]);
		close(err[0]);
		dup2(err[1], 2);
		memset(o, 0, sizeof(*o));
		evaluate(f, c, before, o);
		if (write(res[1], o, sizeof(*o)) != (ssize_t)sizeof(*o))
			_exit(98);
		_exit(0);
	}
	close(res[1]);
	close(err[1]);
	while ((r = read(err[0], buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += (size_t)r;
		if (got == sizeof(buf) - 1) { /* keep the head, drain the rest */
			char sink[4096];
			while (read(err[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	buf[got] = 0;
	close(err[0]);
	memset(o, 0, sizeof(*o));
	r = read(res[0], o, sizeof(*o));
	close(res[0]);
	waitpid(pid, &status, 0);
	if (r != (ssize_t)sizeof(*o) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		const char *keys[] = { "ERROR: AddressSanitizer", "runtime error", "Fatal error", "fixture:" };
		const char *line = NULL;
		o->crashed = 1;
		for (size_t k = 0; k < ARRAY_SIZE(keys) && !line; k++)
			line = strstr(buf, keys[k]);
		if (WIFSIGNALED(status))
			snprintf(o->crash, sizeof(o->crash), "signal %d", WTERMSIG(status));
		else
			snprintf(o->crash, sizeof(o->crash), "exit %d", WEXITSTATUS(status));
		if (line) {
			size_t len = strcspn(line, "\n");
			size_t at = strlen(o->crash);
			snprintf(o->crash + at, sizeof(o->crash) - at, ": %.*s", (int)(len > 160 ? 160 : len), line);
		}
	}
	if (verbose_mode() && got)
		fprintf(stderr, "--- child stderr (%s) ---\n%s--- end ---\n", c->id, buf);
}

static void print_outcome(const char *tag, const char *fn, const struct bad_case *c, const struct outcome *o)
{
	printf("%s %s: %s: expected %s", tag, fn, c->desc, errname(c->expect));
	if (o->crashed)
		printf(", CRASHED (%s)", o->crash);
	else
		printf(", got %s%s%s%s", errname(o->rc), o->check ? ", machine_check FAILED" : "",
		       o->diff[0] ? ", state changed: " : "", o->diff);
	printf("\n");
	if (!o->crashed && o->check)
		printf("%s", o->check_text);
}

static int n_rows, n_known_failing, n_now_passing;

static void run_case(const char *fn, const struct bad_case *c)
{
	struct fx f;
	struct snap before;
	struct outcome o;
	bool strict = strict_mode();

	n_rows++;
	fixture_build(&f, c->variant);
	if (c->prep)
		c->prep(&f);
	snap_take(&f, &before);
	memset(&o, 0, sizeof(o));
	if (c->kf && !strict) {
		evaluate_in_child(&f, c, &before, &o);
		if (outcome_ok(c, &o)) {
			n_now_passing++;
			print_outcome("KNOWN-FAILING case now PASSES (drop its .kf):", fn, c, &o);
		} else {
			n_known_failing++;
			print_outcome("KNOWN-FAILING", fn, c, &o);
			printf("    (%s)\n", c->kf);
		}
	} else {
		evaluate(&f, c, &before, &o);
		if (!outcome_ok(c, &o)) {
			print_outcome("FAILED", fn, c, &o);
			if (c->kf)
				printf("    (known: %s)\n", c->kf);
			snap_free(&before);
			fixture_destroy(&f);
			fail_msg("%s: %s", fn, c->desc);
		}
	}
	snap_free(&before);
	fixture_destroy(&f);
}

/* ------------------------------------------------------------------------ */
/* Helpers the rows call                                                    */
/* ------------------------------------------------------------------------ */

/* Scratch outputs of a call. */
struct scratch {
	uint64_t a, b;
	uint32_t u;
	uint8_t buf[64];
	char text[64];
	struct svakit_ptdesc d;
	struct svakit_translation t;
	struct svakit_stats st;
	struct svakit_deferred_stats ds;
	struct svakit_iommu_counters ic;
	struct svakit_iommu_commands icmd;
	struct svakit_dma_fault fault;
	struct svakit_uaf_report rep[2];
	struct svakit_event ev[2];
	struct svakit_iommu_driver_ops ops;
	struct svakit_iommu_config icfg;
	struct svakit_sg sg[4];
	struct svakit_flush_queue_stats fqs;
	struct svakit_iommu_debug_stats dbg;
	struct svakit_iova_stats is;
	struct svakit_iova_cpu_stats ics;
	struct svakit_queued_iova fqe[4];
	size_t n;
	int32_t i32;
};

/* svakit_dma_map_benchmark() with the tool's defaults but for one field. */
enum { MB_THREADS, MB_SECONDS, MB_NODE, MB_BITS, MB_DIR, MB_TRANS, MB_GRANULE, MB_NONE };
static int mapbench(svakit_machine *m, uint32_t dev, int field, int64_t value)
{
	struct svakit_map_benchmark b = { .threads = 1, .seconds = 1, .node = -1, .dma_bits = 32, .granule = 1 };

	switch (field) {
	case MB_THREADS: b.threads = (uint32_t)value; break;
	case MB_SECONDS: b.seconds = (uint32_t)value; break;
	case MB_NODE: b.node = (int32_t)value; break;
	case MB_BITS: b.dma_bits = (uint32_t)value; break;
	case MB_DIR: b.dma_dir = (uint32_t)value; break;
	case MB_TRANS: b.dma_trans_ns = (uint32_t)value; break;
	case MB_GRANULE: b.granule = (uint32_t)value; break;
	}
	return svakit_dma_map_benchmark(m, dev, &b);
}

#define MACHINE_SENTINEL ((svakit_machine *)0x5a5a5a5a)

/* svakit_machine_create with one configuration field changed: its result,
 * and -ENOTRECOVERABLE when a refusal wrote *out anyway. */
static int create_with(size_t offset, size_t size, uint64_t value)
{
	struct svakit_config cfg;
	svakit_machine *m = MACHINE_SENTINEL;
	int rc;

	svakit_config_default(&cfg);
	cfg.frames = MIB_FRAMES(64);
	cfg.work_mode = SVAKIT_WORK_MANUAL;
	if (size == 8)
		memcpy((char *)&cfg + offset, &value, 8);
	else {
		uint32_t v = (uint32_t)value;
		memcpy((char *)&cfg + offset, &v, 4);
	}
	rc = svakit_machine_create(&cfg, &m);
	if (rc == 0) {
		svakit_machine_destroy(m);
		return 0;
	}
	return m == MACHINE_SENTINEL ? rc : -ENOTRECOVERABLE;
}
#define CFG_WITH(field, value) \
	create_with(offsetof(struct svakit_config, field), sizeof(((struct svakit_config *)0)->field), (value))

/* A mitigation that disagrees with the knobs it stands for. */
static int create_mitigation_conflict(void)
{
	struct svakit_config cfg;
	svakit_machine *m = NULL;
	int rc;

	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.mitigation = SVAKIT_MITIGATION_KPTI_ROOT;
	cfg.kva_invalidation = SVAKIT_KVA_INV_ON_FLUSH;
	rc = svakit_machine_create(&cfg, &m);
	if (rc == 0)
		svakit_machine_destroy(m);
	return rc;
}

static int iommu_create_with(struct fx *f, size_t offset, size_t size, uint64_t value)
{
	struct svakit_iommu_config cfg;
	uint32_t id = 0xdead;
	int rc;

	svakit_iommu_config_default(&cfg);
	if (size == 8)
		memcpy((char *)&cfg + offset, &value, 8);
	else {
		uint32_t v = (uint32_t)value;
		memcpy((char *)&cfg + offset, &v, 4);
	}
	rc = svakit_iommu_create(f->m, &cfg, &id);
	return rc == 0 || id == 0xdead ? rc : -ENOTRECOVERABLE;
}
#define ICFG_WITH(field, value)                                                  \
	iommu_create_with(f, offsetof(struct svakit_iommu_config, field),       \
			  sizeof(((struct svakit_iommu_config *)0)->field), (value))

static int create_null_cfg(void)
{
	svakit_machine *m = MACHINE_SENTINEL;
	int rc = svakit_machine_create(NULL, &m);
	return m == MACHINE_SENTINEL ? rc : -ENOTRECOVERABLE;
}

static int iommu_create_null_out(struct fx *f)
{
	struct svakit_iommu_config cfg;
	svakit_iommu_config_default(&cfg);
	return svakit_iommu_create(f->m, &cfg, NULL);
}

static int create_null_out(void)
{
	struct svakit_config cfg;
	svakit_config_default(&cfg);
	cfg.frames = MIB_FRAMES(64);
	return svakit_machine_create(&cfg, NULL);
}

/* The sanitizer's calls on a machine without it (the fixture has it on). */
static int debug_off(int stats)
{
	struct svakit_config cfg;
	struct svakit_iommu_debug_stats st;
	svakit_machine *m;
	int32_t count;
	int rc;

	svakit_config_default(&cfg);
	cfg.frames = MIB_FRAMES(64);
	cfg.work_mode = SVAKIT_WORK_MANUAL;
	if (svakit_machine_create(&cfg, &m))
		return -ENOTRECOVERABLE;
	rc = stats ? svakit_iommu_debug_stats(m, &st) : svakit_iommu_debug_map_count(m, 1, &count);
	svakit_machine_destroy(m);
	return rc;
}

/* svakit_machine_reset of a machine with the worker thread: -EBUSY with its
 * counters and audit unchanged, -ENOTRECOVERABLE when they changed. */
static int reset_thread_machine(void)
{
	struct svakit_config cfg;
	struct svakit_stats before, after;
	svakit_machine *m;
	uint64_t va;
	int rc;

	svakit_config_default(&cfg);
	cfg.frames = MIB_FRAMES(64);
	cfg.free_mode = SVAKIT_FREE_COMPLETE;
	cfg.work_mode = SVAKIT_WORK_THREAD;
	if (svakit_machine_create(&cfg, &m))
		return -ENOTRECOVERABLE;
	if (svakit_vmalloc(m, SZ_4K, &va) || svakit_machine_counters(m, &before)) {
		svakit_machine_destroy(m);
		return -ENOTRECOVERABLE;
	}
	rc = svakit_machine_reset(m);
	if (svakit_machine_counters(m, &after) || memcmp(&before, &after, sizeof(before)) ||
	    svakit_machine_check(m))
		rc = -ENOTRECOVERABLE;
	svakit_machine_destroy(m);
	return rc;
}

/* 1 when svakit_strerror has a text of its own for err. */
static int has_text(int err)
{
	const char *s = svakit_strerror(err);
	return s && strcmp(s, "unknown error") != 0;
}

/* 0 when svakit_strerror(err) has a text exactly when want says so,
 * -ENOMSG otherwise. */
static int text_is(int err, int want)
{
	return has_text(err) == want ? 0 : -ENOMSG;
}

/* 0 when every errno of the header's table has a distinct text. */
static int table_errnos_have_text(void)
{
	static const int errs[] = { -EFAULT, -EBADF, -ERANGE, -EINVAL, -EEXIST, -ENOENT, -EALREADY,
				    -ENXIO, -EPERM, -EBUSY, -ESRCH, -ENOMEM, -ENOSPC, -ENODEV,
				    -EOPNOTSUPP, -EOVERFLOW, -ESTALE };
	for (size_t i = 0; i < ARRAY_SIZE(errs); i++) {
		if (!has_text(errs[i]))
			return -ENOMSG;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(svakit_strerror(errs[i]), svakit_strerror(errs[j])))
				return -ENOMSG;
	}
	return 0;
}

/* The machine check's text into a buffer of len bytes: its result, or
 * -ENOMSG when the text of a consistent machine is not empty. */
static int check_text_empty(struct fx *f, size_t len)
{
	char text[16];
	int rc;

	memset(text, 'x', sizeof(text));
	rc = svakit_machine_check_text(f->m, text, len);
	return rc == 0 && text[0] != 0 ? -ENOMSG : rc;
}

/* Big enough for any DMA the rows make. */
static uint8_t dma_buf[3 * 4096];

static int dma_rw(struct fx *f, int write, uint32_t dev, uint32_t pasid, uint64_t va, void *buf, size_t len,
		  uint32_t flags)
{
	struct svakit_dma_fault fault;
	return write ? svakit_device_dma_write(f->m, dev, pasid, va, buf, len, flags, &fault)
		     : svakit_device_dma_read(f->m, dev, pasid, va, buf, len, flags, &fault);
}

/* A present, writable entry to phys with extra bits (PS for a huge leaf). */
static uint64_t leaf(uint64_t phys, uint64_t bits) { return phys | P | RW | bits; }

/* dma_map_sg of two pages (data_pfn, block_pfn), the first element's length
 * and the second's physical address as given. */
static int map_sg_with(struct fx *f, uint32_t dev, uint64_t len0, uint64_t phys1, size_t nents, uint32_t dir,
		       int cpu)
{
	struct svakit_sg sg[2] = {
		{ .phys = f->data_pfn << 12, .length = len0 },
		{ .phys = phys1, .length = SZ_4K },
	};
	return svakit_dma_map_sg(f->m, dev, sg, nents, dir, cpu);
}

/* dma_unmap_sg of the fixture's mapped list, its first segment changed. */
static int unmap_sg_with(struct fx *f, uint32_t dev, size_t nents, uint64_t addr, uint64_t len, uint32_t dir,
			 int cpu)
{
	struct svakit_sg sg[2];

	memcpy(sg, f->sg, sizeof(sg));
	sg[0].dma_address = addr;
	sg[0].dma_length = len;
	return svakit_dma_unmap_sg(f->m, dev, sg, nents, dir, cpu);
}

/* ------------------------------------------------------------------------ */
/* The tables: X(id, expected, "bad input", options, call)                  */
/* ------------------------------------------------------------------------ */

/* Options of a row. */
#define NONE .kf = NULL
#define OPT(...) __VA_ARGS__
#define KF(text) .kf = (text)
#define NOTE(text) .note = (text)
#define PREP(fn) .prep = (fn)
#define VARIANT(v) .variant = (v)
#define DMA .flags = CASE_DMA
#define VALID .flags = CASE_VALID

#define M (f->m)

#define CASES_svakit_config_default(X)                                                              \
	X(cfgdef_null, 0, "NULL cfg (ignored)", NONE, (svakit_config_default(NULL), 0))

#define CASES_svakit_machine_create(X)                                                              \
	X(create_null_cfg, -EFAULT, "NULL cfg", NONE, create_null_cfg())                             \
	X(create_null_out, -EFAULT, "NULL out", NONE, create_null_out())                             \
	X(create_frames_0, -EINVAL, "frames = 0", NONE, CFG_WITH(frames, 0))                         \
	X(create_frames_odd, -EINVAL, "frames not a multiple of 1024", NONE, CFG_WITH(frames, 1000)) \
	X(create_frames_huge, -EINVAL, "frames = 2^40 (beyond 32-bit frame numbers)", NONE,          \
	  CFG_WITH(frames, 1ULL << 40))                                                              \
	X(create_frames_max, -EINVAL, "frames = UINT64_MAX", NONE, CFG_WITH(frames, UINT64_MAX))     \
	X(create_levels_3, -EINVAL, "paging_levels = 3", NONE, CFG_WITH(paging_levels, 3))           \
	X(create_levels_6, -EINVAL, "paging_levels = 6", NONE, CFG_WITH(paging_levels, 6))           \
	X(create_reuse_3, -EINVAL, "reuse_policy = 3 (no such policy)", NONE, CFG_WITH(reuse_policy, 3)) \
	X(create_log_0, -EINVAL, "event_log_capacity = 0", NONE, CFG_WITH(event_log_capacity, 0))    \
	X(create_kva_2, -EINVAL, "kva_invalidation = 2 (an enum of 0/1)", NONE,                      \
	  CFG_WITH(kva_invalidation, 2))                                                             \
	X(create_pasid_0, -EINVAL, "pasid_bits = 0", NONE, CFG_WITH(pasid_bits, 0))                  \
	X(create_pasid_21, -EINVAL, "pasid_bits = 21 (PCIe PASIDs are 20 bits)", NONE,               \
	  CFG_WITH(pasid_bits, 21))                                                                  \
	X(create_reports_0, -EINVAL, "report_log_capacity = 0", NONE, CFG_WITH(report_log_capacity, 0)) \
	X(create_free_3, -EINVAL, "free_mode = 3", NONE, CFG_WITH(free_mode, 3))                     \
	X(create_work_4, -EINVAL, "work_mode = 4 (an enum of 0 to 3)", NONE, CFG_WITH(work_mode, 4))  \
	X(create_work_max, -EINVAL, "work_mode = UINT32_MAX", NONE, CFG_WITH(work_mode, UINT32_MAX))  \
	X(create_work_3, 0, "work_mode = MANUAL_BATCHED (beyond Linux)", NONE,                       \
	  CFG_WITH(work_mode, SVAKIT_WORK_MANUAL_BATCHED))                                           \
	X(create_latency_over, -EINVAL, "kworker_latency_us = 1,000,001 (at most 1 s)", NONE,        \
	  CFG_WITH(kworker_latency_us, 1000001))                                                     \
	X(create_latency_max, -EINVAL, "kworker_latency_us = UINT32_MAX", NONE,                      \
	  CFG_WITH(kworker_latency_us, UINT32_MAX))                                                  \
	X(create_hz_99, -EINVAL, "hz = 99 (CONFIG_HZ is 100, 250, 300 or 1000)", NONE, CFG_WITH(hz, 99)) \
	X(create_hz_max, -EINVAL, "hz = UINT32_MAX", NONE, CFG_WITH(hz, UINT32_MAX))                 \
	X(create_dma_debug_2, -EINVAL, "dma_debug = 2 (0 refuse, 1 linux)", NONE, CFG_WITH(dma_debug, 2)) \
	X(create_pending_0, -EINVAL, "max_pending = 0", NONE, CFG_WITH(max_pending, 0))              \
	X(create_strict_2, -EINVAL, "dma_strict = 2 (a boolean)", NONE, CFG_WITH(dma_strict, 2))     \
	X(create_quarantine_2, -EINVAL, "dma_quarantine = 2 (a boolean)", NONE,                      \
	  CFG_WITH(dma_quarantine, 2))                                                               \
	X(create_cpus_257, -EINVAL, "cpus = 257 (at most 256)", NONE, CFG_WITH(cpus, 257))           \
	X(create_cpus_max, -EINVAL, "cpus = UINT32_MAX", NONE, CFG_WITH(cpus, UINT32_MAX))           \
	X(create_cpus_0, 0, "cpus = 0 (the default, 4: a field that was reserved)", NONE,            \
	  CFG_WITH(cpus, 0))                                                                         \
	X(create_debug_4, -EINVAL, "iommu_debug_pagealloc = 4 (no such mode)", NONE,                 \
	  CFG_WITH(iommu_debug_pagealloc, 4))                                                        \
	X(create_mitigation_6, -EINVAL, "mitigation = 6 (no such design)", NONE,                     \
	  CFG_WITH(mitigation, 6))                                                                   \
	X(create_mitigation_kpti_on_flush, -EINVAL, "mitigation = KPTI_ROOT with kva_invalidation ON_FLUSH", \
	  NONE, create_mitigation_conflict())                                                        \
	X(create_gbpages_2, -EINVAL, "direct_gbpages = 2 (a boolean)", NONE, CFG_WITH(direct_gbpages, 2)) \
	X(create_gbpages_max, -EINVAL, "direct_gbpages = UINT32_MAX", NONE,                          \
	  CFG_WITH(direct_gbpages, UINT32_MAX))

/* NULL, foreign, forged and destroyed (a double destroy) handles: the
 * handle rows; svakit_machine_destroy returns nothing, so it must ignore
 * each of them. */
#define CASES_svakit_machine_destroy(X)

#define CASES_svakit_machine_reset(X)                                                               \
	X(reset_thread_mode, -EBUSY,                                                                 \
	  "a machine with the worker thread (SVAKIT_WORK_THREAD), never quiescent: refused, "        \
	  "its counters and audit unchanged (our own machine; the fixture's is manual)", NONE,         \
	  reset_thread_machine())

#define CASES_svakit_version(X)                                                                     \
	X(version_string, 0, "no input: the header's version string", NONE,                          \
	  strcmp(svakit_version(), SVAKIT_VERSION_STRING))

#define CASES_svakit_strerror(X)                                                                    \
	X(strerror_unknown, 0, "an errno SVAKit never returns (-E2BIG): \"unknown error\"", NONE,    \
	  text_is(-E2BIG, 0))                                                                        \
	X(strerror_positive, 0, "a positive value (1): \"unknown error\"", NONE, text_is(1, 0))      \
	X(strerror_table, 0, "every errno of the header's table: a distinct text", NONE,             \
	  table_errnos_have_text())                                                                  \
	X(strerror_euclean, 0, "-EUCLEAN (what svakit_machine_check returns): a text",               \
	  NONE, text_is(-EUCLEAN, 1))

#define CASES_svakit_frame_alloc(X)                                                                 \
	X(falloc_order_11, -EINVAL, "order 11 (> SVAKIT_MAX_ORDER)", NONE,                           \
	  svakit_frame_alloc(M, SVAKIT_MAX_ORDER + 1, 0, &o.a))                                      \
	X(falloc_order_max, -EINVAL, "order UINT_MAX", NONE, svakit_frame_alloc(M, ~0u, 0, &o.a))    \
	X(falloc_null_out, -EFAULT, "NULL pfn", NONE, svakit_frame_alloc(M, 0, 0, NULL))             \
	X(falloc_oom, -ENOMEM, "memory exhausted", PREP(prep_exhaust), svakit_frame_alloc(M, 0, 0, &o.a)) \
	X(falloc_oom_order, -ENOMEM, "order 10 with only small blocks free", PREP(prep_leave_one_frame), \
	  svakit_frame_alloc(M, 10, 0, &o.a))

#define CASES_svakit_frame_free(X)                                                                  \
	X(ffree_beyond, -ERANGE, "pfn = frames (one past the end)", NONE, svakit_frame_free(M, f->frames)) \
	X(ffree_2_40, -ERANGE, "pfn = 2^40", NONE, svakit_frame_free(M, 1ULL << 40))                 \
	X(ffree_max, -ERANGE, "pfn = UINT64_MAX", NONE, svakit_frame_free(M, UINT64_MAX))            \
	X(ffree_nopfn, -ERANGE, "pfn = SVAKIT_NO_PFN", NONE, svakit_frame_free(M, SVAKIT_NO_PFN))    \
	X(ffree_double, -EALREADY, "double free", NONE, svakit_frame_free(M, f->freed_pfn))          \
	X(ffree_virgin, -ENXIO, "a frame never allocated", NONE, svakit_frame_free(M, f->virgin_pfn)) \
	X(ffree_tail, -ENXIO, "the tail of an order-1 block", NONE, svakit_frame_free(M, f->block_pfn + 1)) \
	X(ffree_ktable, -EPERM, "a kernel page table", NONE, svakit_frame_free(M, f->pte_tab))       \
	X(ffree_vmalloc_page, -EPERM, "a data page of a vmalloc area (vmalloc's, freed by vfree)",   \
	  OPT(PREP(prep_vmalloc_page),                                                               \
	      NOTE("the header: a block allocated by svakit_frame_alloc; freeing vmalloc's page "     \
		   "let it be reused (as an mm's root) and vfree then freed it again")),            \
	  svakit_frame_free(M, f->tmp))                                                              \
	X(ffree_queued, -EPERM, "a kernel table on the deferred list", NONE,                         \
	  svakit_frame_free(M, f->queued_tab))                                                       \
	X(ffree_uroot, -EPERM, "a user root table", NONE, svakit_frame_free(M, f->user_root))        \
	X(ffree_kroot, -EPERM, "init_mm's root table", NONE, svakit_frame_free(M, f->kroot))         \
	X(ffree_offline, -ENXIO, "an offline frame", OPT(VARIANT(V256), PREP(prep_offline_top_section)), \
	  svakit_frame_free(M, SECTION + 5))

#define CASES_svakit_mm_create(X)                                                                   \
	X(mmc_null, -EFAULT, "NULL out", NONE, svakit_mm_create(M, NULL))                            \
	X(mmc_oom, -ENOMEM, "memory exhausted", PREP(prep_exhaust), svakit_mm_create(M, &o.u))

#define CASES_svakit_mm_destroy(X)                                                                  \
	X(mmd_unknown, -ESRCH, "unknown mm id 999", NONE, svakit_mm_destroy(M, 999))                 \
	X(mmd_max, -ESRCH, "mm id UINT32_MAX", NONE, svakit_mm_destroy(M, UINT32_MAX))               \
	X(mmd_dead, -ESRCH, "an mm already destroyed (double destroy)", NONE,                        \
	  svakit_mm_destroy(M, f->dead_mm))                                                          \
	X(mmd_init, -EPERM, "init_mm", NONE, svakit_mm_destroy(M, SVAKIT_INIT_MM))                   \
	X(mmd_bound, -EBUSY, "an mm bound to a device (SVA)", NONE, svakit_mm_destroy(M, f->mm))     \
	X(mmd_attached, -EBUSY, "an mm attached at a PASID (explicit)", NONE,                        \
	  svakit_mm_destroy(M, f->mm2))

#define CASES_svakit_mm_root(X)                                                                     \
	X(mmr_unknown, -ESRCH, "unknown mm id", NONE, svakit_mm_root(M, 999, &o.a))                  \
	X(mmr_dead, -ESRCH, "a destroyed mm", NONE, svakit_mm_root(M, f->dead_mm, &o.a))             \
	X(mmr_null, -EFAULT, "NULL out", NONE, svakit_mm_root(M, f->mm, NULL))

#define CASES_svakit_mm_map(X)                                                                         \
	X(map_unknown_mm, -ESRCH, "unknown mm", NONE, svakit_mm_map(M, 999, UVA_FREE, 0, SZ_4K, RW))    \
	X(map_dead_mm, -ESRCH, "a destroyed mm", NONE, svakit_mm_map(M, f->dead_mm, UVA_FREE, 0, SZ_4K, RW)) \
	X(map_va_misaligned, -EINVAL, "va not 4 KiB aligned", NONE,                                  \
	  svakit_mm_map(M, f->mm, UVA_FREE + 8, 0, SZ_4K, RW))                                          \
	X(map_phys_misaligned, -EINVAL, "phys not 4 KiB aligned", NONE,                              \
	  svakit_mm_map(M, f->mm, UVA_FREE, 0x10, SZ_4K, RW))                                           \
	X(map_2m_va_misaligned, -EINVAL, "2 MiB leaf at a 4 KiB-aligned va", NONE,                   \
	  svakit_mm_map(M, f->mm, UVA_FREE + SZ_4K, 0, SZ_2M, RW))                                      \
	X(map_2m_phys_misaligned, -EINVAL, "2 MiB leaf at a 4 KiB-aligned phys", NONE,               \
	  svakit_mm_map(M, f->mm, UVA_FREE, SZ_4K, SZ_2M, RW))                                          \
	X(map_size_0, -EINVAL, "size 0", NONE, svakit_mm_map(M, f->mm, UVA_FREE, 0, 0, RW))             \
	X(map_size_8k, -EINVAL, "size 8 KiB (not a leaf size)", NONE,                                \
	  svakit_mm_map(M, f->mm, UVA_FREE, 0, 2 * SZ_4K, RW))                                          \
	X(map_prot_p, -EINVAL, "prot with P (outside SVAKIT_PROT_MASK)", NONE,                       \
	  svakit_mm_map(M, f->mm, UVA_FREE, 0, SZ_4K, RW | P))                                          \
	X(map_prot_ps, -EINVAL, "prot with PS", NONE, svakit_mm_map(M, f->mm, UVA_FREE, 0, SZ_4K, PS))  \
	X(map_prot_pfn, -EINVAL, "prot with PFN bits", NONE,                                         \
	  svakit_mm_map(M, f->mm, UVA_FREE, 0, SZ_4K, 0x5000))                                          \
	X(map_noncanon_u, -ERANGE, "non-canonical va (user mm)", NONE,                               \
	  svakit_mm_map(M, f->mm, NONCANON_U, 0, SZ_4K, RW))                                            \
	X(map_noncanon_k, -ERANGE, "non-canonical va (init_mm)", NONE,                               \
	  svakit_mm_map(M, SVAKIT_INIT_MM, NONCANON_K, 0, SZ_4K, RW))                                   \
	X(map_kernel_in_user, -EINVAL, "kernel va in a user mm", NONE,                               \
	  svakit_mm_map(M, f->mm, f->vstart + (64ULL << 30), 0, SZ_4K, RW))                             \
	X(map_user_in_init, -EINVAL, "user va in init_mm", NONE,                                     \
	  svakit_mm_map(M, SVAKIT_INIT_MM, UVA_FREE, 0, SZ_4K, RW))                                     \
	X(map_phys_beyond, -ERANGE, "phys = end of memory", NONE,                                    \
	  svakit_mm_map(M, f->mm, UVA_FREE, f->mem_bytes, SZ_4K, RW))                                   \
	X(map_phys_max, -ERANGE, "phys = 2^51 (PFN field full)", NONE,                               \
	  svakit_mm_map(M, f->mm, UVA_FREE, 1ULL << 51, SZ_4K, RW))                                     \
	X(map_1g_past_end, -ERANGE, "1 GiB leaf at phys 0 on 64 MiB", NONE,                          \
	  svakit_mm_map(M, f->mm, SZ_1G * 4, 0, SZ_1G, RW))                                             \
	X(map_user_kroot, -EPERM, "init_mm's root into a process mm", NONE,                          \
	  svakit_mm_map(M, f->mm, UVA_FREE, f->kroot << 12, SZ_4K, RW | US))                            \
	X(map_user_table, -EPERM, "a kernel PTE table into a process mm", NONE,                      \
	  svakit_mm_map(M, f->mm, UVA_FREE, f->pte_tab << 12, SZ_4K, RW | US))                          \
	X(map_user_2m_over_table, -EPERM, "a 2 MiB leaf over the boot tables", NONE,                 \
	  svakit_mm_map(M, f->mm, UVA_FREE, 0, SZ_2M, RW | US))                                         \
	X(map_exists, -EEXIST, "over a live 4 KiB mapping", NONE,                                    \
	  svakit_mm_map(M, f->mm, UVA, 0, SZ_4K, RW))                                                   \
	X(map_under_huge, -EEXIST, "4 KiB inside a 2 MiB leaf", NONE,                                \
	  svakit_mm_map(M, f->mm, UVA_2M + SZ_4K, 0, SZ_4K, RW))                                        \
	X(map_over_table, -EEXIST, "2 MiB leaf over a PTE table", NONE,                              \
	  svakit_mm_map(M, f->mm, UVA, 0, SZ_2M, RW))                                                   \
	X(map_oom, -ENOMEM, "memory exhausted, tables needed", PREP(prep_exhaust),                   \
	  svakit_mm_map(M, f->mm, 0x8000000000ULL, 0, SZ_4K, RW))                                       \
	X(map_oom_partial, -ENOMEM, "memory for one of the three tables needed",                     \
	  OPT(PREP(prep_leave_one_frame)), \
	  svakit_mm_map(M, f->mm, 0x8000000000ULL, 0, SZ_4K, RW))

#define CASES_svakit_mm_unmap(X)                                                                       \
	X(unmap_unknown_mm, -ESRCH, "unknown mm", NONE, svakit_mm_unmap(M, 999, UVA, SZ_4K))            \
	X(unmap_dead_mm, -ESRCH, "a destroyed mm", NONE, svakit_mm_unmap(M, f->dead_mm, UVA, SZ_4K))    \
	X(unmap_misaligned, -EINVAL, "va not aligned", NONE, svakit_mm_unmap(M, f->mm, UVA + 1, SZ_4K)) \
	X(unmap_size_bad, -EINVAL, "size 12 KiB", NONE, svakit_mm_unmap(M, f->mm, UVA, 3 * SZ_4K))      \
	X(unmap_noncanon, -ERANGE, "non-canonical va", NONE, svakit_mm_unmap(M, f->mm, NONCANON_U, SZ_4K)) \
	X(unmap_wrong_half, -EINVAL, "kernel va in a user mm", NONE,                                 \
	  svakit_mm_unmap(M, f->mm, f->vm_va, SZ_4K))                                                   \
	X(unmap_none, -ENOENT, "nothing mapped", NONE, svakit_mm_unmap(M, f->mm, UVA_FREE, SZ_4K))      \
	X(unmap_partial_huge, -EINVAL, "4 KiB of a 2 MiB leaf (partial unmap)", NONE,                \
	  svakit_mm_unmap(M, f->mm, UVA_2M, SZ_4K))                                                     \
	X(unmap_2m_over_ptes, -EINVAL, "2 MiB where 4 KiB leaves map", NONE,                         \
	  svakit_mm_unmap(M, f->mm, UVA, SZ_2M))

#define CASES_svakit_mm_translate(X)                                                                   \
	X(tr_unknown_mm, -ESRCH, "unknown mm", NONE, svakit_mm_translate(M, 999, UVA, &o.t))            \
	X(tr_dead_mm, -ESRCH, "a destroyed mm", NONE, svakit_mm_translate(M, f->dead_mm, UVA, &o.t))    \
	X(tr_noncanon, -ERANGE, "non-canonical va", NONE, svakit_mm_translate(M, f->mm, NONCANON_U, &o.t)) \
	X(tr_null, -EFAULT, "NULL out", NONE, svakit_mm_translate(M, f->mm, UVA, NULL))                 \
	X(tr_unmapped, -ENOENT, "nothing mapped", NONE, svakit_mm_translate(M, f->mm, UVA_FREE, &o.t))

#define CASES_svakit_pagetable_alloc_kernel(X)                                                      \
	X(ptalloc_0, -EINVAL, "level 0", NONE, svakit_pagetable_alloc_kernel(M, 0, &o.a))            \
	X(ptalloc_root, -EINVAL, "level 4 (the root level)", NONE, svakit_pagetable_alloc_kernel(M, 4, &o.a)) \
	X(ptalloc_6, -EINVAL, "level 6", NONE, svakit_pagetable_alloc_kernel(M, 6, &o.a))            \
	X(ptalloc_root5, -EINVAL, "level 5 with 5-level paging", VARIANT(V5L),                       \
	  svakit_pagetable_alloc_kernel(M, 5, &o.a))                                                 \
	X(ptalloc_max, -EINVAL, "level UINT_MAX", NONE, svakit_pagetable_alloc_kernel(M, ~0u, &o.a)) \
	X(ptalloc_null, -EFAULT, "NULL out", NONE, svakit_pagetable_alloc_kernel(M, 1, NULL))        \
	X(ptalloc_oom, -ENOMEM, "memory exhausted", PREP(prep_exhaust), svakit_pagetable_alloc_kernel(M, 1, &o.a))

#define NOTE_WRONG_KIND NOTE("header silent; the engine's errno for a frame of the wrong kind")

#define CASES_svakit_pagetable_read_entry(X)                                                                  \
	X(rd_beyond, -ERANGE, "table = frames", NONE, svakit_pagetable_read_entry(M, f->frames, 0, &o.a))      \
	X(rd_max, -ERANGE, "table = UINT64_MAX", NONE, svakit_pagetable_read_entry(M, UINT64_MAX, 0, &o.a))    \
	X(rd_data, -EPERM, "a data frame", NOTE_WRONG_KIND, svakit_pagetable_read_entry(M, f->data_pfn, 0, &o.a)) \
	X(rd_virgin, -ENXIO, "a frame never allocated", NONE, svakit_pagetable_read_entry(M, f->virgin_pfn, 0, &o.a)) \
	X(rd_freed, -EALREADY, "a freed table (stale pfn)",                                          \
	  NOTE("header silent; the engine's errno for a frame freed once"),                          \
	  svakit_pagetable_read_entry(M, f->freed_tab, 0, &o.a))                                               \
	X(rd_index, -EINVAL, "index 512", NONE, svakit_pagetable_read_entry(M, f->pte_tab, 512, &o.a))         \
	X(rd_null, -EFAULT, "NULL out", NONE, svakit_pagetable_read_entry(M, f->pte_tab, 0, NULL))

#define CASES_svakit_pagetable_write_entry(X)                                                                 \
	X(wr_beyond, -ERANGE, "table = frames", NONE, svakit_pagetable_write_entry(M, f->frames, 0, 0))        \
	X(wr_data, -EPERM, "a data frame", NOTE_WRONG_KIND, svakit_pagetable_write_entry(M, f->data_pfn, 0, 0)) \
	X(wr_virgin, -ENXIO, "a frame never allocated", NONE, svakit_pagetable_write_entry(M, f->virgin_pfn, 0, 0)) \
	X(wr_freed, -EALREADY, "a freed table (stale pfn)", NOTE("header silent"),                   \
	  svakit_pagetable_write_entry(M, f->freed_tab, 0, leaf(0, 0)))                                        \
	X(wr_queued, -EPERM, "a table on the deferred-free list",                                    \
	  OPT(                 \
	      NOTE("header silent; as svakit_pagetable_link refuses a queued child")),                   \
	  svakit_pagetable_write_entry(M, f->queued_tab, 0, leaf(0, PS)))                                       \
	X(wr_index, -EINVAL, "index 512", NONE, svakit_pagetable_write_entry(M, f->pte_tab, 512, 0))           \
	X(wr_table_ptr, -EINVAL, "a table pointer (use svakit_pagetable_link)", NONE,                    \
	  svakit_pagetable_write_entry(M, f->pmd_tab, 0, leaf(f->pte_tab << 12, 0)))                           \
	X(wr_over_table, -EBUSY, "over an entry that points to a table", NONE,                       \
	  svakit_pagetable_write_entry(M, f->linked_parent, 0, 0))                                             \
	X(wr_ps_l1, -EINVAL, "PS in a PTE (level 1)", NONE,                                \
	  svakit_pagetable_write_entry(M, f->pte_tab, 0, leaf(0, PS)))                                         \
	X(wr_ps_l4, -EINVAL, "PS in a PML4 entry (level 4)", NONE,                         \
	  svakit_pagetable_write_entry(M, f->user_root, 1, leaf(0, PS)))                                       \
	X(wr_ps_l5, -EINVAL, "PS in a PML5 entry (level 5)", OPT(VARIANT(V5L)),      \
	  svakit_pagetable_write_entry(M, f->user_root, 1, leaf(0, PS)))                                       \
	X(wr_rsvd_2m, -EINVAL, "a 2 MiB leaf with reserved bits 20:13 set", NONE,          \
	  svakit_pagetable_write_entry(M, f->pmd_tab, 0, leaf(SZ_2M + 0x2000, PS)))                            \
	X(wr_rsvd_1g, -EINVAL, "a 1 GiB leaf with reserved bits 29:13 set", NONE,          \
	  svakit_pagetable_write_entry(M, f->pud_tab, 0, leaf(SZ_2M, PS)))                                     \
	X(wr_pfn_beyond, -ERANGE, "a 4 KiB leaf to the frame past memory", NONE,           \
	  svakit_pagetable_write_entry(M, f->pte_tab, 0, leaf(f->mem_bytes, 0)))                               \
	X(wr_pfn_far, -ERANGE, "a 4 KiB leaf to PFN 2^40 - 1", NONE,                       \
	  svakit_pagetable_write_entry(M, f->pte_tab, 0, leaf(0x000ffffffffff000ULL, 0)))                      \
	X(wr_1g_past_end, -ERANGE, "a 1 GiB leaf at phys 0 on 64 MiB", NONE,               \
	  svakit_pagetable_write_entry(M, f->pud_tab, 0, leaf(0, PS)))

#define CASES_svakit_pagetable_link(X)                                                                  \
	X(ln_parent_beyond, -ERANGE, "parent = frames", NONE, svakit_pagetable_link(M, f->frames, 0, f->pte_tab)) \
	X(ln_child_beyond, -ERANGE, "child = frames", NONE, svakit_pagetable_link(M, f->pmd_tab, 0, f->frames)) \
	X(ln_parent_data, -EPERM, "parent is a data frame", NOTE_WRONG_KIND,                         \
	  svakit_pagetable_link(M, f->data_pfn, 0, f->pte_tab))                                          \
	X(ln_child_data, -EPERM, "child is a data frame", NOTE_WRONG_KIND,                           \
	  svakit_pagetable_link(M, f->pmd_tab, 0, f->data_pfn))                                          \
	X(ln_level, -EINVAL, "child two levels down", NONE, svakit_pagetable_link(M, f->pud_tab, 0, f->pte_tab)) \
	X(ln_parent_l1, -EINVAL, "parent is a PTE table", NONE, svakit_pagetable_link(M, f->pte_tab, 0, f->pte_tab)) \
	X(ln_linked, -EBUSY, "child already linked", NONE, svakit_pagetable_link(M, f->pmd_tab, 0, f->linked_child)) \
	X(ln_queued, -EPERM, "child on the deferred-free list", NOTE("header silent"),               \
	  svakit_pagetable_link(M, f->pud_tab, 0, f->queued_tab))                                        \
	X(ln_freed, -EALREADY, "child freed (stale pfn)", NOTE("header silent"),                     \
	  svakit_pagetable_link(M, f->pmd_tab, 0, f->freed_tab))                                         \
	X(ln_queued_parent, -EPERM, "parent on the deferred-free list",                              \
	  OPT(NOTE("header silent")), \
	  svakit_pagetable_link(M, f->queued_tab, 0, f->pte_tab))                                    \
	X(ln_index, -EINVAL, "index 512", NONE, svakit_pagetable_link(M, f->pmd_tab, 512, f->pte_tab))   \
	X(ln_present, -EEXIST, "over a present entry", NONE,                                         \
	  svakit_pagetable_link(M, f->linked_parent, 0, f->pte_tab))                                     \
	X(ln_kind, -EINVAL, "a kernel table under a user table", NONE,                               \
	  svakit_pagetable_link(M, f->user_pmd, 384, f->pte_tab))                                        \
	X(ln_bottom_up, 0, "(valid) under a parent not linked yet: building a subtree bottom-up",    \
	  OPT(VALID),          \
	  svakit_pagetable_link(M, f->pmd_tab, 0, f->pte_tab))

#define CASES_svakit_pagetable_unlink(X)                                                                \
	X(ul_beyond, -ERANGE, "parent = frames", NONE, svakit_pagetable_unlink(M, f->frames, 0, &o.a))   \
	X(ul_data, -EPERM, "a data frame", NOTE_WRONG_KIND, svakit_pagetable_unlink(M, f->data_pfn, 0, &o.a)) \
	X(ul_empty, -ENOENT, "an empty entry", NONE, svakit_pagetable_unlink(M, f->pmd_tab, 0, &o.a))    \
	X(ul_leaf, -ENOENT, "a 2 MiB leaf (no table under it)", NONE,                                \
	  svakit_pagetable_unlink(M, f->user_pmd, 256, &o.a))                                            \
	X(ul_index, -EINVAL, "index 512", NONE, svakit_pagetable_unlink(M, f->linked_parent, 512, &o.a)) \
	X(ul_null, -EFAULT, "NULL out", NONE, svakit_pagetable_unlink(M, f->linked_parent, 0, NULL))    \
	X(ul_kroot_shared, -EPERM, "a kernel-half entry of init_mm's root (every mm's root copies it)",    \
	  OPT(              \
	      NOTE("header silent; the shared kernel half is not the primitives' to change, "         \
		   "as -EPERM refuses a root table to pagetable_free")),                              \
	  svakit_pagetable_unlink(M, f->kroot, 300, &o.a))                                               \
	X(ul_uroot_kernel, -EPERM, "a kernel-half entry of an mm's root (its copy of init_mm's)",    \
	  OPT(   \
	      NOTE("header silent")),                                                                \
	  svakit_pagetable_unlink(M, f->user_root, 300, &o.a))                                           \
	X(ul_subtree, 0, "(valid) a table that still holds a table, as pud_free_pmd_page clears the PUD first", \
	  OPT(VALID),              \
	  svakit_pagetable_unlink(M, f->kva_pud, (unsigned)idx(f->kva_linked, 3), &o.a))

#define CASES_svakit_pagetable_free(X)                                                              \
	X(ptf_beyond, -ERANGE, "pfn = frames", NONE, svakit_pagetable_free(M, f->frames))            \
	X(ptf_data, -EPERM, "a data frame", NONE, svakit_pagetable_free(M, f->data_pfn))             \
	X(ptf_uroot, -EPERM, "a user root", NONE, svakit_pagetable_free(M, f->user_root))            \
	X(ptf_kroot, -EPERM, "init_mm's root", NONE, svakit_pagetable_free(M, f->kroot))             \
	X(ptf_linked, -EBUSY, "a linked table", NONE, svakit_pagetable_free(M, f->linked_child))     \
	X(ptf_holder, -EBUSY, "a linked table that holds a link (the v6 bug)", NONE,                 \
	  svakit_pagetable_free(M, f->linked_parent))                                                \
	X(ptf_queued, -EALREADY, "a table already queued", NONE, svakit_pagetable_free(M, f->queued_tab)) \
	X(ptf_freed, -EALREADY, "a table already freed", NONE, svakit_pagetable_free(M, f->freed_tab)) \
	X(ptf_virgin, -ENXIO, "a frame never allocated", NONE, svakit_pagetable_free(M, f->virgin_pfn))

#define CASES_svakit_iommu_config_default(X)                                                        \
	X(icfgdef_null, 0, "NULL cfg (ignored)", NONE, (svakit_iommu_config_default(NULL), 0))

#define CASES_svakit_iommu_create(X)                                                                \
	X(ic_null_cfg, -EFAULT, "NULL cfg", NONE, svakit_iommu_create(M, NULL, &o.u))                \
	X(ic_null_out, -EFAULT, "NULL out", NONE, iommu_create_null_out(f))                          \
	X(ic_caching_3, -EINVAL, "caching = 3", NONE, ICFG_WITH(caching, 3))                         \
	X(ic_repl_3, -EINVAL, "replacement = 3", NONE, ICFG_WITH(replacement, 3))                    \
	X(ic_sets_0, -EINVAL, "iotlb_sets = 0", NONE, ICFG_WITH(iotlb_sets, 0))                      \
	X(ic_sets_3, -EINVAL, "iotlb_sets = 3 (not a power of two)", NONE, ICFG_WITH(iotlb_sets, 3)) \
	X(ic_ways_0, -EINVAL, "iotlb_ways = 0", NONE, ICFG_WITH(iotlb_ways, 0))                      \
	X(ic_ways_big, -EINVAL, "iotlb_ways = 2^20", NONE, ICFG_WITH(iotlb_ways, 1u << 20))          \
	X(ic_psc_sets_6, -EINVAL, "psc_sets = 6", NONE, ICFG_WITH(psc_sets, 6))                      \
	X(ic_psc_ways_0, -EINVAL, "psc_ways = 0", NONE, ICFG_WITH(psc_ways, 0))                      \
	X(ic_ad_2, -EINVAL, "sets_accessed_dirty = 2 (a boolean)",                                   \
	  OPT(NOTE("header silent; a boolean field takes 0 or 1")), \
	  ICFG_WITH(sets_accessed_dirty, 2))                                                         \
	X(ic_reserved, -EINVAL, "reserved = 1 (must be zero)",                                       \
	  OPT(NOTE("header silent")),         \
	  ICFG_WITH(reserved, 1))                                                                    \
	X(ic_deferred_2, -EINVAL, "deferred_flush = 2 (a boolean)", NONE, ICFG_WITH(deferred_flush, 2)) \
	X(ic_shadowed_2, -EINVAL, "shadowed_flush = 2 (a boolean)", NONE, ICFG_WITH(shadowed_flush, 2)) \
	X(ic_profile_5, -EINVAL, "profile = 5 (no such profile)", NONE, ICFG_WITH(profile, 5))         \
	X(ic_profile_max, -EINVAL, "profile = UINT32_MAX", NONE, ICFG_WITH(profile, UINT32_MAX))       \
	X(ic_reserved2, -EINVAL, "reserved2 = 1 (must be zero)", NONE, ICFG_WITH(reserved2, 1))

#define CASES_svakit_iommu_counters(X)                                                              \
	X(icnt_unknown, -ENODEV, "unknown IOMMU id", NONE, svakit_iommu_counters(M, 7, &o.ic))       \
	X(icnt_max, -ENODEV, "IOMMU id UINT32_MAX", NONE, svakit_iommu_counters(M, UINT32_MAX, &o.ic)) \
	X(icnt_null, -EFAULT, "NULL out", NONE, svakit_iommu_counters(M, f->iommu, NULL))

#define CASES_svakit_iommu_invalidate_range(X)                                                      \
	X(iinv_unknown, -ENODEV, "unknown IOMMU", NONE, svakit_iommu_invalidate_range(M, 7, f->pasid, UVA, UVA + 0xfff, 0)) \
	X(iinv_reversed, -EINVAL, "start > end", NONE,                                               \
	  svakit_iommu_invalidate_range(M, f->iommu, f->pasid, UVA + SZ_4K, UVA, 0))                 \
	X(iinv_noncanon, -ERANGE, "non-canonical start", NONE,    \
	  svakit_iommu_invalidate_range(M, f->iommu, f->pasid, NONCANON_U, NONCANON_U + 0xfff, 0))   \
	X(iinv_start_misaligned, -EINVAL, "start not page aligned", NONE, \
	  svakit_iommu_invalidate_range(M, f->iommu, f->pasid, UVA + 8, UVA + 0xfff, 0))             \
	X(iinv_end_misaligned, -EINVAL, "inclusive end not at a page's last byte",                   \
	  NONE,                                                   \
	  svakit_iommu_invalidate_range(M, f->iommu, f->pasid, UVA, UVA + SZ_4K, 0))                 \
	X(iinv_leaf_2, -EINVAL, "leaf_only = 2 (a boolean)", OPT(NOTE("header silent")), \
	  svakit_iommu_invalidate_range(M, f->iommu, f->pasid, UVA, UVA + 0xfff, 2))                 \
	X(iinv_pasid_wide, -EINVAL, "PASID 2^20 (wider than a PASID)",                               \
	  OPT(NOTE("header silent; the command cannot encode it")), \
	  svakit_iommu_invalidate_range(M, f->iommu, 1u << 20, UVA, UVA + 0xfff, 0))

#define CASES_svakit_iommu_invalidate_pasid(X)                                                      \
	X(ipinv_unknown, -ENODEV, "unknown IOMMU", NONE, svakit_iommu_invalidate_pasid(M, 7, f->pasid)) \
	X(ipinv_pasid_wide, -EINVAL, "PASID 2^20", OPT(NOTE("header silent")), \
	  svakit_iommu_invalidate_pasid(M, f->iommu, 1u << 20))

#define CASES_svakit_iommu_invalidate_all(X)                                                        \
	X(iainv_unknown, -ENODEV, "unknown IOMMU", NONE, svakit_iommu_invalidate_all(M, 7))          \
	X(iainv_max, -ENODEV, "IOMMU UINT32_MAX", NONE, svakit_iommu_invalidate_all(M, UINT32_MAX))

#define CASES_svakit_iommu_fence(X)                                                                 \
	X(fence_unknown, -ENODEV, "unknown IOMMU", NONE, svakit_iommu_fence(M, 7))

#define CASES_svakit_iommu_set_driver(X)                                                            \
	X(drv_unknown, -ENODEV, "unknown IOMMU", NONE, svakit_iommu_set_driver(M, 7, &o.ops, NULL))  \
	X(drv_null_ops, 0, "NULL ops (detaches; not an error)", NONE, svakit_iommu_set_driver(M, f->iommu, NULL, NULL))

#define CASES_svakit_device_create(X)                                                               \
	X(dc_unknown_iommu, -ENODEV, "unknown IOMMU", NONE, svakit_device_create(M, 7, SVAKIT_DEV_SVA, 20, &o.u)) \
	X(dc_flags, -EINVAL, "flags 0x4 (unknown flag)", NONE, svakit_device_create(M, f->iommu, 4, 20, &o.u)) \
	X(dc_bits_0, -EINVAL, "pasid_bits 0", NONE, svakit_device_create(M, f->iommu, SVAKIT_DEV_SVA, 0, &o.u)) \
	X(dc_bits_21, -EINVAL, "pasid_bits 21", NONE, svakit_device_create(M, f->iommu, SVAKIT_DEV_SVA, 21, &o.u)) \
	X(dc_null, -EFAULT, "NULL out", NONE, svakit_device_create(M, f->iommu, SVAKIT_DEV_SVA, 20, NULL))

#define CASES_svakit_iommu_attach_device_pasid(X)                                                         \
	X(att_unknown_dev, -ENODEV, "unknown device", NONE, svakit_iommu_attach_device_pasid(M, 99, 6, f->mm2)) \
	X(att_pasid_0, -EINVAL, "PASID 0", NONE, svakit_iommu_attach_device_pasid(M, f->dev_plain, 0, f->mm2)) \
	X(att_pasid_wide, -EOVERFLOW, "PASID 256 on an 8-bit device", NONE,                          \
	  svakit_iommu_attach_device_pasid(M, f->dev_plain, 256, f->mm2))                                  \
	X(att_pasid_max, -EOVERFLOW, "PASID UINT32_MAX", NONE,                                       \
	  svakit_iommu_attach_device_pasid(M, f->dev_plain, UINT32_MAX, f->mm2))                           \
	X(att_unknown_mm, -ESRCH, "unknown mm", NONE, svakit_iommu_attach_device_pasid(M, f->dev_plain, 6, 999)) \
	X(att_dead_mm, -ESRCH, "a destroyed mm", NONE,                                               \
	  svakit_iommu_attach_device_pasid(M, f->dev_plain, 6, f->dead_mm))                                \
	X(att_init_mm, -EINVAL, "init_mm", OPT(\
	  NOTE("as svakit_iommu_sva_bind_device refuses init_mm")),                                  \
	  svakit_iommu_attach_device_pasid(M, f->dev_plain, 6, SVAKIT_INIT_MM))                            \
	X(att_busy, -EBUSY, "a PASID attached to another mm", NONE,                                  \
	  svakit_iommu_attach_device_pasid(M, f->dev_plain, f->explicit_pasid, f->mm))                     \
	X(att_sva_busy, -EBUSY, "the PASID of an SVA bond", NONE,                                    \
	  svakit_iommu_attach_device_pasid(M, f->dev_sva, f->pasid, f->mm2))

#define CASES_svakit_iommu_detach_device_pasid(X)                                                         \
	X(det_unknown_dev, -ENODEV, "unknown device", NONE, svakit_iommu_detach_device_pasid(M, 99, f->explicit_pasid)) \
	X(det_none, -ENOENT, "a PASID not attached", NONE, svakit_iommu_detach_device_pasid(M, f->dev_plain, 6)) \
	X(det_wide, -ENOENT, "PASID 256 on an 8-bit device",                                         \
	  NOTE("header silent; nothing can be attached there"),                                      \
	  svakit_iommu_detach_device_pasid(M, f->dev_plain, 256))                                          \
	X(det_sva, -ENOENT, "the PASID of an SVA bond (not an explicit attachment)",                 \
	  NOTE("header silent; detach_pasid undoes attach_pasid only"),                              \
	  svakit_iommu_detach_device_pasid(M, f->dev_sva, f->pasid))                                       \
	X(det_twice, -ENOENT, "double detach", PREP(prep_detach_explicit),                           \
	  svakit_iommu_detach_device_pasid(M, f->dev_plain, f->explicit_pasid))

#define DMA_CASES(X, fn, w)                                                                            \
	X(fn##_unknown_dev, -ENODEV, "unknown device", NONE, dma_rw(f, w, 99, f->pasid, UVA, o.buf, 8, 0)) \
	X(fn##_pasid_wide, -EOVERFLOW, "PASID 2^20 on a 20-bit device",                              \
	  OPT(NONE), \
	  dma_rw(f, w, f->dev_sva, 1u << 20, UVA, o.buf, 8, 0))                                      \
	X(fn##_pasid_narrow, -EOVERFLOW, "PASID 2 on a 1-bit device", NONE,         \
	  dma_rw(f, w, f->dev_narrow, 2, UVA, o.buf, 8, 0))                                          \
	X(fn##_null_buf, -EFAULT, "NULL buf", NONE, dma_rw(f, w, f->dev_sva, f->pasid, UVA, NULL, 8, 0)) \
	X(fn##_len_max, -EINVAL, "len SIZE_MAX", NONE, dma_rw(f, w, f->dev_sva, f->pasid, UVA, o.buf, SIZE_MAX, 0)) \
	X(fn##_flags, -EINVAL, "flags 0x4 (unknown flag)", NONE,                                     \
	  dma_rw(f, w, f->dev_sva, f->pasid, UVA, o.buf, 8, 0x4))                                    \
	X(fn##_noncanon, -ERANGE, "non-canonical va", NONE,                                          \
	  dma_rw(f, w, f->dev_sva, f->pasid, NONCANON_U, o.buf, 8, 0))                               \
	X(fn##_into_noncanon, -ERANGE, "a range running into non-canonical space", NONE,             \
	  dma_rw(f, w, f->dev_sva, f->pasid, 0x00007ffffffff000ULL, o.buf, 2 * SZ_4K, 0))            \
	X(fn##_wraps, -ERANGE, "a range that wraps past 2^64",                                       \
	  OPT(DMA),  \
	  dma_rw(f, w, f->dev_sva, f->pasid, 0xfffffffffffff000ULL, o.buf, 2 * SZ_4K, 0))           \
	X(fn##_to_the_top, SVAKIT_DMA_FAULTED, "a range ending exactly at 2^64 (the last page, unmapped)",  \
	  OPT(DMA, NOTE("va + len is 2^64 but the range does not wrap: it is walked (and faults), "     \
			"not refused; the range check once computed va + len - 1 left to right and trapped")), \
	  dma_rw(f, w, f->dev_sva, f->pasid, 0xfffffffffffff000ULL, o.buf, SZ_4K, 0))               \
	X(fn##_wraps_mapped, -ERANGE, "a range that wraps past 2^64 from a mapped last page (supervisor, explicit attachment)", \
	  OPT(PREP(prep_map_top), DMA,                                                               \
	      NONE), \
	  dma_rw(f, w, f->dev_plain, f->explicit_pasid, 0xfffffffffffff000ULL, dma_buf, 2 * SZ_4K, SVAKIT_DMA_PRIV)) \
	X(fn##_priv_sva, SVAKIT_DMA_FAULTED, "a supervisor request through an SVA PASID (to the direct map)", \
	  OPT(DMA,              \
	      NOTE("SVA binds user address spaces; a PASID entry for SVA does not allow "           \
		   "supervisor requests, so the walk must fault")),                                  \
	  dma_rw(f, w, f->dev_sva, f->pasid, f->dm_va, o.buf, 8, SVAKIT_DMA_PRIV))

#define CASES_svakit_device_dma_read(X) DMA_CASES(X, dmar, 0)
#define CASES_svakit_device_dma_write(X) DMA_CASES(X, dmaw, 1)

#define CASES_svakit_iommu_sva_bind_device(X)                                                       \
	X(bind_unknown_dev, -ENODEV, "unknown device", NONE, svakit_iommu_sva_bind_device(M, 99, f->mm, &o.u)) \
	X(bind_unknown_mm, -ESRCH, "unknown mm", NONE, svakit_iommu_sva_bind_device(M, f->dev_sva, 999, &o.u)) \
	X(bind_dead_mm, -ESRCH, "a destroyed mm", NONE,                                              \
	  svakit_iommu_sva_bind_device(M, f->dev_sva, f->dead_mm, &o.u))                             \
	X(bind_init_mm, -EINVAL, "init_mm", NONE,                                                    \
	  svakit_iommu_sva_bind_device(M, f->dev_sva, SVAKIT_INIT_MM, &o.u))                         \
	X(bind_not_sva, -EOPNOTSUPP, "a device without SVA", NONE,                                   \
	  svakit_iommu_sva_bind_device(M, f->dev_plain, f->mm, &o.u))                                \
	X(bind_overflow, -EOVERFLOW, "an mm whose PASID (2) the 1-bit device cannot emit",           \
	  PREP(prep_bind_mm2), svakit_iommu_sva_bind_device(M, f->dev_narrow, f->mm2, &o.u))         \
	X(bind_nospc, -ENOSPC, "a new mm on a 1-bit device whose only PASID is taken", NONE,         \
	  svakit_iommu_sva_bind_device(M, f->dev_narrow, f->mm2, &o.u))                              \
	X(bind_busy, -EBUSY, "the device-PASID is attached to another mm",                           \
	  PREP(prep_attach_mm2_at_mm_pasid), svakit_iommu_sva_bind_device(M, f->dev_sva2, f->mm, &o.u)) \
	X(bind_null, -EFAULT, "NULL handle out", NONE, svakit_iommu_sva_bind_device(M, f->dev_sva2, f->mm, NULL))

#define CASES_svakit_iommu_sva_unbind_device(X)                                                     \
	X(unbind_unknown, -ESTALE, "unknown handle", NONE, svakit_iommu_sva_unbind_device(M, 999))   \
	X(unbind_max, -ESTALE, "handle UINT32_MAX", NONE, svakit_iommu_sva_unbind_device(M, UINT32_MAX)) \
	X(unbind_double, -ESTALE, "a released handle (double unbind)", NONE,                         \
	  svakit_iommu_sva_unbind_device(M, f->dead_bond))

#define CASES_svakit_iommu_sva_get_pasid(X)                                                         \
	X(gp_unknown, -ESTALE, "unknown handle", NONE, svakit_iommu_sva_get_pasid(M, 999, &o.u))     \
	X(gp_stale, -ESTALE, "a released handle", NONE, svakit_iommu_sva_get_pasid(M, f->dead_bond, &o.u)) \
	X(gp_null, -EFAULT, "NULL out", NONE, svakit_iommu_sva_get_pasid(M, f->bond, NULL))

#define CASES_svakit_iommu_sva_mm_count(X)                                                          \
	X(mmcount_null, -EFAULT, "NULL out", NONE, svakit_iommu_sva_mm_count(M, NULL))

#define CASES_svakit_iommu_sva_invalidate_kva_range_slow(X)                                         \
	X(kvaslow_null, 0, "NULL machine (returns, changes nothing)", NONE,                          \
	  (svakit_iommu_sva_invalidate_kva_range_slow(NULL, f->vm_va, f->vm_va + SZ_4K), 0))

#define CASES_svakit_pagetable_free_kernel(X)                                                       \
	X(ptfk_beyond, -ERANGE, "pfn = frames", NONE, svakit_pagetable_free_kernel(M, f->frames))    \
	X(ptfk_data, -EPERM, "a data frame", NONE, svakit_pagetable_free_kernel(M, f->data_pfn))     \
	X(ptfk_user, -EPERM, "an unlinked user table", PREP(prep_unlink_user_pte),                   \
	  svakit_pagetable_free_kernel(M, f->tmp))                                                   \
	X(ptfk_uroot, -EPERM, "a user root", NONE, svakit_pagetable_free_kernel(M, f->user_root))    \
	X(ptfk_kroot, -EPERM, "init_mm's root", NONE, svakit_pagetable_free_kernel(M, f->kroot))     \
	X(ptfk_linked, -EBUSY, "a linked table", NONE, svakit_pagetable_free_kernel(M, f->linked_child)) \
	X(ptfk_queued, -EALREADY, "a table already queued", NONE, svakit_pagetable_free_kernel(M, f->queued_tab)) \
	X(ptfk_freed, -EALREADY, "a table already freed", NONE, svakit_pagetable_free_kernel(M, f->freed_tab)) \
	X(ptfk_virgin, -ENXIO, "a frame never allocated", NONE, svakit_pagetable_free_kernel(M, f->virgin_pfn))

#define CASES_svakit_deferred_work_run(X)
#define CASES_svakit_deferred_work_flush(X)

#define CASES_svakit_deferred_stats(X)                                                              \
	X(dstats_null, -EFAULT, "NULL out", NONE, svakit_deferred_stats(M, NULL))

#define CASES_svakit_machine_set_free_hook(X)                                                               \
	X(freehook_null, 0, "NULL fn (detaches; not an error)", NONE, svakit_machine_set_free_hook(M, NULL, NULL))

#define CASES_svakit_iommu_domain_alloc(X)                                                                \
	X(dalloc_null, -EFAULT, "NULL domain out", NONE,                                             \
	  svakit_iommu_domain_alloc(M, f->iommu, SVAKIT_DOMAIN_DMA, 0, NULL))                              \
	X(dalloc_type_3, -EINVAL, "type 3 (no such type)", NONE, svakit_iommu_domain_alloc(M, f->iommu, 3, 0, &o.u)) \
	X(dalloc_type_max, -EINVAL, "type UINT32_MAX", NONE,                                         \
	  svakit_iommu_domain_alloc(M, f->iommu, UINT32_MAX, 0, &o.u))                                     \
	X(dalloc_unknown_iommu, -ENODEV, "unknown IOMMU", NONE,                                      \
	  svakit_iommu_domain_alloc(M, 7, SVAKIT_DOMAIN_DMA, 0, &o.u))                                     \
	X(dalloc_bitmap_2m, -EINVAL, "pgsize_bitmap 2 MiB only (no 4 KiB or 64 KiB granule)", NONE,  \
	  svakit_iommu_domain_alloc(M, f->iommu, SVAKIT_DOMAIN_DMA, SZ_2M, &o.u))                          \
	X(dalloc_bitmap_8k, -EINVAL, "pgsize_bitmap 4 KiB | 8 KiB (8 KiB is no page size)", NONE,    \
	  svakit_iommu_domain_alloc(M, f->iommu, SVAKIT_DOMAIN_DMA, SZ_4K | 2 * SZ_4K, &o.u))              \
	X(dalloc_oom, -ENOMEM, "memory exhausted (no root table)", PREP(prep_exhaust),               \
	  svakit_iommu_domain_alloc(M, f->iommu, SVAKIT_DOMAIN_DMA_FQ, 0, &o.u))

#define CASES_svakit_iommu_domain_free(X)                                                                 \
	X(dfree_unknown, -ENODEV, "unknown domain", NONE, svakit_iommu_domain_free(M, 99))                 \
	X(dfree_double, -ENODEV, "a freed domain (double free)", NONE, svakit_iommu_domain_free(M, f->dead_dom)) \
	X(dfree_attached, -EBUSY, "a device's default domain", NONE, svakit_iommu_domain_free(M, f->dma_dom)) \
	X(dfree_mapped, -EBUSY, "a detached domain that still holds DMA API mappings",               \
	  PREP(prep_detach_dma), svakit_iommu_domain_free(M, f->dma_dom))

#define CASES_svakit_iommu_attach_device(X)                                                               \
	X(attd_unknown_dom, -ENODEV, "unknown domain", NONE, svakit_iommu_attach_device(M, 99, f->dev_sva)) \
	X(attd_dead_dom, -ENODEV, "a freed domain (stale)", NONE,                                    \
	  svakit_iommu_attach_device(M, f->dead_dom, f->dev_sva))                                          \
	X(attd_unknown_dev, -ENODEV, "unknown device", NONE, svakit_iommu_attach_device(M, f->dom, 99))    \
	X(attd_other_iommu, -EINVAL, "a device behind another IOMMU", NONE,                          \
	  svakit_iommu_attach_device(M, f->dom, f->dev_plain))                                             \
	X(attd_busy, -EBUSY, "a device that has a default domain", NONE,                             \
	  svakit_iommu_attach_device(M, f->dom, f->dev_dma))

#define CASES_svakit_iommu_detach_device(X)                                                               \
	X(detd_unknown, -ENODEV, "unknown device", NONE, svakit_iommu_detach_device(M, 99))                \
	X(detd_none, -ENOENT, "a device with no default domain", NONE, svakit_iommu_detach_device(M, f->dev_plain)) \
	X(detd_twice, -ENOENT, "double detach", PREP(prep_detach_dma), svakit_iommu_detach_device(M, f->dev_dma))

#define IMAP(dom, iova, phys, size, prot) svakit_iommu_map(M, dom, iova, phys, size, prot)
#define RDWR (SVAKIT_IOMMU_READ | SVAKIT_IOMMU_WRITE)
#define CASES_svakit_iommu_map(X)                                                                   \
	X(imap_unknown, -ENODEV, "unknown domain", NONE, IMAP(99, IOVA_FREE, 0, SZ_4K, RDWR))        \
	X(imap_dead, -ENODEV, "a freed domain (stale)", NONE, IMAP(f->dead_dom, IOVA_FREE, 0, SZ_4K, RDWR)) \
	X(imap_prot_0, -EINVAL, "prot 0", NONE, IMAP(f->dom, IOVA_FREE, 0, SZ_4K, 0))                \
	X(imap_prot_w, -EINVAL, "prot WRITE without READ (the format has no write-only entry)", NONE, \
	  IMAP(f->dom, IOVA_FREE, 0, SZ_4K, SVAKIT_IOMMU_WRITE))                                     \
	X(imap_prot_bits, -EINVAL, "prot with an unknown bit (0x4)", NONE,                           \
	  IMAP(f->dom, IOVA_FREE, 0, SZ_4K, RDWR | 0x4))                                             \
	X(imap_identity, -EINVAL, "an identity domain (no tables)", NONE,                            \
	  IMAP(f->dom_ident, IOVA_FREE, 0, SZ_4K, RDWR))                                             \
	X(imap_iova_misaligned, -EINVAL, "iova not 4 KiB aligned", NONE,                             \
	  IMAP(f->dom, IOVA_FREE + 8, 0, SZ_4K, RDWR))                                               \
	X(imap_phys_misaligned, -EINVAL, "phys not 4 KiB aligned", NONE,                             \
	  IMAP(f->dom, IOVA_FREE, 0x10, SZ_4K, RDWR))                                                \
	X(imap_size_0, -EINVAL, "size 0", NONE, IMAP(f->dom, IOVA_FREE, 0, 0, RDWR))                 \
	X(imap_size_odd, -EINVAL, "size 6 KiB (not a multiple of the granule)", NONE,                \
	  IMAP(f->dom, IOVA_FREE, 0, 0x1800, RDWR))                                                  \
	X(imap_aperture, -ERANGE, "iova 2^48 (past the aperture)", NONE,                             \
	  IMAP(f->dom, APERTURE, 0, SZ_4K, RDWR))                                                    \
	X(imap_aperture_end, -ERANGE, "a range running past the aperture", NONE,                     \
	  IMAP(f->dom, APERTURE - SZ_4K, 0, 2 * SZ_4K, RDWR))                                        \
	X(imap_phys_beyond, -ERANGE, "phys = end of memory", NONE,                                   \
	  IMAP(f->dom, IOVA_FREE, f->mem_bytes, SZ_4K, RDWR))                                        \
	X(imap_phys_wraps, -ERANGE, "a physical range that wraps", NONE,                             \
	  IMAP(f->dom, IOVA_FREE, 0xfffffffffffff000ULL, 2 * SZ_4K, RDWR))                           \
	X(imap_exists, -EEXIST, "over a live mapping", NONE, IMAP(f->dom, IOVA_MAPPED, 0, SZ_4K, RDWR)) \
	X(imap_oom, -ENOMEM, "memory exhausted, tables needed", PREP(prep_exhaust),                  \
	  IMAP(f->dom, 1ULL << 39, 0, SZ_4K, RDWR))

#define CASES_svakit_iommu_unmap(X)                                                                 \
	X(iunmap_null, -EFAULT, "NULL unmapped out", NONE, svakit_iommu_unmap(M, f->dom, IOVA_MAPPED, SZ_4K, NULL)) \
	X(iunmap_unknown, -ENODEV, "unknown domain", NONE, svakit_iommu_unmap(M, 99, IOVA_MAPPED, SZ_4K, &o.a)) \
	X(iunmap_dead, -ENODEV, "a freed domain (stale)", NONE,                                      \
	  svakit_iommu_unmap(M, f->dead_dom, IOVA_MAPPED, SZ_4K, &o.a))                              \
	X(iunmap_identity, -EINVAL, "an identity domain", NONE,                                      \
	  svakit_iommu_unmap(M, f->dom_ident, IOVA_MAPPED, SZ_4K, &o.a))                             \
	X(iunmap_misaligned, -EINVAL, "iova not aligned", NONE,                                      \
	  svakit_iommu_unmap(M, f->dom, IOVA_MAPPED + 1, SZ_4K, &o.a))                               \
	X(iunmap_size_0, -EINVAL, "size 0", NONE, svakit_iommu_unmap(M, f->dom, IOVA_MAPPED, 0, &o.a)) \
	X(iunmap_size_odd, -EINVAL, "size 100", NONE, svakit_iommu_unmap(M, f->dom, IOVA_MAPPED, 100, &o.a)) \
	X(iunmap_aperture, -ERANGE, "iova 2^48", NONE, svakit_iommu_unmap(M, f->dom, APERTURE, SZ_4K, &o.a)) \
	X(iunmap_wraps, -ERANGE, "a range that wraps", NONE,                                         \
	  svakit_iommu_unmap(M, f->dom, IOVA_MAPPED, 0xfffffffffff00000ULL, &o.a))                   \
	X(iunmap_none, -ENOENT, "nothing mapped", NONE, svakit_iommu_unmap(M, f->dom, IOVA_FREE, SZ_4K, &o.a)) \
	X(iunmap_twice, -ENOENT, "double unmap", PREP(prep_iommu_unmap),                             \
	  svakit_iommu_unmap(M, f->dom, IOVA_MAPPED, SZ_4K, &o.a))

#define CASES_svakit_iommu_iova_to_phys(X)                                                          \
	X(i2p_null, -EFAULT, "NULL phys out", NONE, svakit_iommu_iova_to_phys(M, f->dom, IOVA_MAPPED, NULL)) \
	X(i2p_unknown, -ENODEV, "unknown domain", NONE, svakit_iommu_iova_to_phys(M, 99, IOVA_MAPPED, &o.a)) \
	X(i2p_dead, -ENODEV, "a freed domain (stale)", NONE,                                         \
	  svakit_iommu_iova_to_phys(M, f->dead_dom, IOVA_MAPPED, &o.a))                              \
	X(i2p_unmapped, -ENOENT, "nothing mapped", NONE, svakit_iommu_iova_to_phys(M, f->dom, IOVA_FREE, &o.a)) \
	X(i2p_aperture, -ENOENT, "iova 2^48 (past the aperture: nothing mapped)", NONE,              \
	  svakit_iommu_iova_to_phys(M, f->dom, APERTURE, &o.a))                                      \
	X(i2p_lazy, -ENOENT, "a DMA address unmapped lazily (its flush still owed)", NONE,           \
	  svakit_iommu_iova_to_phys(M, f->dma_dom, f->dma_gone, &o.a))

#define CASES_svakit_iommu_setup_default_domain(X)                                                                   \
	X(dsetup_null_domain, -EFAULT, "NULL domain out", NONE, svakit_iommu_setup_default_domain(M, f->dev_sva, 0, NULL, &o.u)) \
	X(dsetup_null_reason, -EFAULT, "NULL reason out", NONE, svakit_iommu_setup_default_domain(M, f->dev_sva, 0, &o.u, NULL)) \
	X(dsetup_identity_2, -EINVAL, "identity 2 (a boolean)", NONE,                                \
	  svakit_iommu_setup_default_domain(M, f->dev_sva, 2, &o.u, &o.u))                                            \
	X(dsetup_unknown, -ENODEV, "unknown device", NONE, svakit_iommu_setup_default_domain(M, 99, 0, &o.u, &o.u))   \
	X(dsetup_busy, -EBUSY, "a device that has a default domain (nothing allocated)", NONE,       \
	  svakit_iommu_setup_default_domain(M, f->dev_dma, 0, &o.u, &o.u))                                            \
	X(dsetup_oom, -ENOMEM, "memory exhausted (no root table)", PREP(prep_exhaust),               \
	  svakit_iommu_setup_default_domain(M, f->dev_sva, 0, &o.u, &o.u))

#define CASES_svakit_iommu_debug_pagealloc_built(X)                                                \
	X(dbgbuilt, 0, "no input: agrees with the header's SVAKIT_CONFIG_IOMMU_DEBUG_PAGEALLOC", NONE, \
	  svakit_iommu_debug_pagealloc_built() != SVAKIT_CONFIG_IOMMU_DEBUG_PAGEALLOC)

#define CASES_svakit_iommu_debug_map_count(X)                                                       \
	X(dbgcount_null, -EFAULT, "NULL count", NONE, svakit_iommu_debug_map_count(M, f->data_pfn, NULL)) \
	X(dbgcount_beyond, -ERANGE, "pfn = frames", NONE, svakit_iommu_debug_map_count(M, f->frames, &o.i32)) \
	X(dbgcount_max, -ERANGE, "pfn = UINT64_MAX", NONE, svakit_iommu_debug_map_count(M, UINT64_MAX, &o.i32)) \
	X(dbgcount_off, -ENODEV, "a machine without the sanitizer", NONE, debug_off(0))

#define CASES_svakit_iommu_debug_stats(X)                                                           \
	X(dbgstats_null, -EFAULT, "NULL out", NONE, svakit_iommu_debug_stats(M, NULL))               \
	X(dbgstats_off, -ENODEV, "a machine without the sanitizer", NONE, debug_off(1))

#define CASES_svakit_dma_set_mask(X)                                                                \
	X(dmask_zero, -EINVAL, "mask 0", NONE, svakit_dma_set_mask(M, f->dev_dma, 0))                \
	X(dmask_holes, -EINVAL, "mask 0xff00ffff (not 2^n - 1)", NONE,                               \
	  svakit_dma_set_mask(M, f->dev_dma, 0xff00ffffull))                                         \
	X(dmask_unknown, -ENODEV, "unknown device", NONE, svakit_dma_set_mask(M, 99, 0xffffffffull))  \
	X(dmask_valid, 0, "not bad input: DMA_BIT_MASK(40)", VALID,                                  \
	  svakit_dma_set_mask(M, f->dev_dma, (1ull << 40) - 1))

#define CASES_svakit_dma_get_mask(X)                                                                \
	X(dgmask_null, -EFAULT, "NULL mask out", NONE, svakit_dma_get_mask(M, f->dev_dma, NULL))     \
	X(dgmask_unknown, -ENODEV, "unknown device", NONE, svakit_dma_get_mask(M, 99, &o.a))

#define CASES_svakit_device_set_bus_dma_limit(X)                                                    \
	X(buslim_holes, -EINVAL, "limit 0x1234 (not 2^n - 1)", NONE,                                \
	  svakit_device_set_bus_dma_limit(M, f->dev_dma, 0x1234))                                    \
	X(buslim_unknown, -ENODEV, "unknown device", NONE,                                          \
	  svakit_device_set_bus_dma_limit(M, 99, 0xffffffffull))

#define DMAP(dev, phys, size, dir, cpu) svakit_dma_map_page(M, dev, phys, size, dir, cpu, &o.a)
#define CASES_svakit_dma_map_page(X)                                                                \
	X(dmap_null, -EFAULT, "NULL dma_addr out", NONE,                                             \
	  svakit_dma_map_page(M, f->dev_dma, 0, SZ_4K, DMA_BIDI, 0, NULL))                           \
	X(dmap_dir_none, -EINVAL, "direction 3 (DMA_NONE)", NONE, DMAP(f->dev_dma, 0, SZ_4K, 3, 0))  \
	X(dmap_cpu_4, -EINVAL, "cpu 4 on a 4-CPU machine", NONE, DMAP(f->dev_dma, 0, SZ_4K, DMA_BIDI, 4)) \
	X(dmap_cpu_neg2, -EINVAL, "cpu -2 (only -1 means the current CPU)", NONE,                    \
	  DMAP(f->dev_dma, 0, SZ_4K, DMA_BIDI, -2))                                                  \
	X(dmap_size_0, -ERANGE, "size 0",                                                            \
	  NOTE("the Swift API's choice (DMAAPITests.badUnmapsChangeNothing): an empty range"),       \
	  DMAP(f->dev_dma, 0, 0, DMA_BIDI, 0))                                                       \
	X(dmap_beyond, -ERANGE, "phys = end of memory", NONE,                                        \
	  DMAP(f->dev_dma, f->mem_bytes, SZ_4K, DMA_BIDI, 0))                                        \
	X(dmap_straddle, -ERANGE, "a buffer running past the end of memory", NONE,                   \
	  DMAP(f->dev_dma, f->mem_bytes - 8, 16, DMA_BIDI, 0))                                       \
	X(dmap_unknown_dev, -ENODEV, "unknown device", NONE, DMAP(99, 0, SZ_4K, DMA_BIDI, 0))        \
	X(dmap_no_domain, -EOPNOTSUPP, "a device with no default domain", NONE,                      \
	  DMAP(f->dev_plain, 0, SZ_4K, DMA_BIDI, 0))                                                 \
	X(dmap_stale, -EOPNOTSUPP, "a device whose domain was detached", PREP(prep_detach_dma),      \
	  DMAP(f->dev_dma, 0, SZ_4K, DMA_BIDI, 0))

#define DUNMAP(dev, addr, size, dir, cpu) svakit_dma_unmap_page(M, dev, addr, size, dir, cpu)
#define CASES_svakit_dma_unmap_page(X)                                                              \
	X(dunmap_unknown_dev, -ENODEV, "unknown device", NONE, DUNMAP(99, f->dma_live, SZ_4K, DMA_BIDI, 0)) \
	X(dunmap_no_domain, -EOPNOTSUPP, "a device with no default domain", NONE,                    \
	  DUNMAP(f->dev_plain, f->dma_live, SZ_4K, DMA_BIDI, 0))                                     \
	X(dunmap_stale, -EOPNOTSUPP, "a device whose domain was detached", PREP(prep_detach_dma),    \
	  DUNMAP(f->dev_dma, f->dma_live, SZ_4K, DMA_BIDI, 0))                                       \
	X(dunmap_dir_none, -EINVAL, "direction 3 (DMA_NONE)", NONE,                                  \
	  DUNMAP(f->dev_dma, f->dma_live, SZ_4K, 3, 0))                                              \
	X(dunmap_wrong_dir, -EINVAL, "another direction than the map's", NONE,                       \
	  DUNMAP(f->dev_dma, f->dma_live, SZ_4K, DMA_TODEV, 0))                                      \
	X(dunmap_wrong_size, -EINVAL, "another size than the map's", NONE,                           \
	  DUNMAP(f->dev_dma, f->dma_live, 100, DMA_BIDI, 0))                                         \
	X(dunmap_wrong_offset, -EINVAL, "the DMA address plus 8 (another offset)", NONE,             \
	  DUNMAP(f->dev_dma, f->dma_live + 8, SZ_4K, DMA_BIDI, 0))                                   \
	X(dunmap_cpu_4, -EINVAL, "cpu 4 on a 4-CPU machine", NONE,                                   \
	  DUNMAP(f->dev_dma, f->dma_live, SZ_4K, DMA_BIDI, 4))                                       \
	X(dunmap_other_dev, -EINVAL, "another device's mapping in a shared domain", PREP(prep_share_dma_dom), \
	  DUNMAP(f->dev_sva, f->dma_live, SZ_4K, DMA_BIDI, 0))                                       \
	X(dunmap_aperture, -ERANGE, "DMA address 2^48", NONE, DUNMAP(f->dev_dma, APERTURE, SZ_4K, DMA_BIDI, 0)) \
	X(dunmap_never, -ENOENT, "a DMA address never mapped", NONE,                                 \
	  DUNMAP(f->dev_dma, SZ_4K, SZ_4K, DMA_BIDI, 0))                                             \
	X(dunmap_double, -ENOENT, "double unmap (the first still in the flush queue)", NONE,         \
	  DUNMAP(f->dev_dma, f->dma_gone, SZ_4K, DMA_TODEV, 0))

#define CASES_svakit_dma_map_sg(X)                                                                  \
	X(dmsg_null, -EFAULT, "NULL sg", NONE, svakit_dma_map_sg(M, f->dev_dma, NULL, 2, DMA_BIDI, 0)) \
	X(dmsg_nents_0, -EINVAL, "nents 0", NONE, map_sg_with(f, f->dev_dma, SZ_4K, 0, 0, DMA_BIDI, 0)) \
	X(dmsg_nents_huge, -EINVAL, "nents past INT_MAX (the count must fit the return value)", NONE, \
	  map_sg_with(f, f->dev_dma, SZ_4K, 0, (size_t)INT32_MAX + 1, DMA_BIDI, 0))                  \
	X(dmsg_len_0, -ERANGE, "an element of length 0", NONE, map_sg_with(f, f->dev_dma, 0, 0, 2, DMA_BIDI, 0)) \
	X(dmsg_beyond, -ERANGE, "an element at the end of memory", NONE,                             \
	  map_sg_with(f, f->dev_dma, SZ_4K, f->mem_bytes, 2, DMA_BIDI, 0))                           \
	X(dmsg_dir_none, -EINVAL, "direction 3 (DMA_NONE)", NONE, map_sg_with(f, f->dev_dma, SZ_4K, 0, 2, 3, 0)) \
	X(dmsg_cpu_4, -EINVAL, "cpu 4 on a 4-CPU machine", NONE,                                     \
	  map_sg_with(f, f->dev_dma, SZ_4K, 0, 2, DMA_BIDI, 4))                                      \
	X(dmsg_unknown_dev, -ENODEV, "unknown device", NONE, map_sg_with(f, 99, SZ_4K, 0, 2, DMA_BIDI, 0)) \
	X(dmsg_no_domain, -EOPNOTSUPP, "a device with no default domain", NONE,                      \
	  map_sg_with(f, f->dev_plain, SZ_4K, 0, 2, DMA_BIDI, 0))

#define USG(dev, n, addr, len, dir, cpu) unmap_sg_with(f, dev, n, addr, len, dir, cpu)
#define CASES_svakit_dma_unmap_sg(X)                                                                \
	X(dusg_null, -EFAULT, "NULL sg", NONE, svakit_dma_unmap_sg(M, f->dev_dma, NULL, 2, DMA_TODEV, 0)) \
	X(dusg_nents_0, -EINVAL, "nents 0", NONE,                                                    \
	  USG(f->dev_dma, 0, f->sg[0].dma_address, f->sg[0].dma_length, DMA_TODEV, 0))              \
	X(dusg_no_segment, -EINVAL, "the first segment's dma_length 0 (nothing mapped)", NONE,       \
	  USG(f->dev_dma, 2, f->sg[0].dma_address, 0, DMA_TODEV, 0))                                 \
	X(dusg_short, -EINVAL, "a segment 4 KiB shorter than mapped (another span)", NONE,           \
	  USG(f->dev_dma, 2, f->sg[0].dma_address, f->sg[0].dma_length - SZ_4K, DMA_TODEV, 0))      \
	X(dusg_wrong_dir, -EINVAL, "another direction than the map's", NONE,                         \
	  USG(f->dev_dma, 2, f->sg[0].dma_address, f->sg[0].dma_length, DMA_BIDI, 0))               \
	X(dusg_cpu_4, -EINVAL, "cpu 4 on a 4-CPU machine", NONE,                                     \
	  USG(f->dev_dma, 2, f->sg[0].dma_address, f->sg[0].dma_length, DMA_TODEV, 4))              \
	X(dusg_aperture, -ERANGE, "a segment at 2^48", NONE,                                         \
	  USG(f->dev_dma, 2, APERTURE, f->sg[0].dma_length, DMA_TODEV, 0))                           \
	X(dusg_unknown_dev, -ENODEV, "unknown device", NONE,                                         \
	  USG(99, 2, f->sg[0].dma_address, f->sg[0].dma_length, DMA_TODEV, 0))                       \
	X(dusg_no_domain, -EOPNOTSUPP, "a device with no default domain", NONE,                      \
	  USG(f->dev_plain, 2, f->sg[0].dma_address, f->sg[0].dma_length, DMA_TODEV, 0))             \
	X(dusg_twice, -ENOENT, "double unmap", PREP(prep_unmap_sg),                                  \
	  USG(f->dev_dma, 2, f->sg[0].dma_address, f->sg[0].dma_length, DMA_TODEV, 0))

#define CASES_svakit_dma_alloc_coherent(X)                                                          \
	X(dac_null_addr, -EFAULT, "NULL dma_addr out", NONE,                                         \
	  svakit_dma_alloc_coherent(M, f->dev_dma, SZ_4K, 0, NULL, &o.b))                            \
	X(dac_null_pfn, -EFAULT, "NULL pfn out", NONE,                                               \
	  svakit_dma_alloc_coherent(M, f->dev_dma, SZ_4K, 0, &o.a, NULL))                            \
	X(dac_size_0, -EINVAL, "size 0", NONE, svakit_dma_alloc_coherent(M, f->dev_dma, 0, 0, &o.a, &o.b)) \
	X(dac_size_big, -EINVAL, "size 4 MiB + 1 (past the largest block)", NONE,                    \
	  svakit_dma_alloc_coherent(M, f->dev_dma, (4ULL << 20) + 1, 0, &o.a, &o.b))                 \
	X(dac_cpu_4, -EINVAL, "cpu 4 on a 4-CPU machine (nothing allocated)", NONE,                  \
	  svakit_dma_alloc_coherent(M, f->dev_dma, SZ_4K, 4, &o.a, &o.b))                            \
	X(dac_unknown_dev, -ENODEV, "unknown device", NONE,                                          \
	  svakit_dma_alloc_coherent(M, 99, SZ_4K, 0, &o.a, &o.b))                                    \
	X(dac_no_domain, -EOPNOTSUPP, "a device with no default domain (nothing allocated)", NONE,   \
	  svakit_dma_alloc_coherent(M, f->dev_plain, SZ_4K, 0, &o.a, &o.b))                          \
	X(dac_oom, -ENOMEM, "memory exhausted", PREP(prep_exhaust),                                  \
	  svakit_dma_alloc_coherent(M, f->dev_dma, SZ_4K, 0, &o.a, &o.b))

#define DFC(dev, size, pfn, addr, cpu) svakit_dma_free_coherent(M, dev, size, pfn, addr, cpu)
#define CASES_svakit_dma_free_coherent(X)                                                           \
	X(dfc_pfn_huge, -ERANGE, "pfn 2^40", NONE, DFC(f->dev_dma, 2 * SZ_4K, 1ULL << 40, f->coh_dma, 0)) \
	X(dfc_aperture, -ERANGE, "DMA address 2^48", NONE, DFC(f->dev_dma, 2 * SZ_4K, f->coh_pfn, APERTURE, 0)) \
	X(dfc_never, -ENOENT, "a DMA address never mapped", NONE,                                    \
	  DFC(f->dev_dma, 2 * SZ_4K, f->coh_pfn, SZ_4K, 0))                                          \
	X(dfc_wrong_pfn, -EINVAL, "another frame than the buffer's", NONE,                           \
	  DFC(f->dev_dma, 2 * SZ_4K, f->data_pfn, f->coh_dma, 0))                                    \
	X(dfc_wrong_size, -EINVAL, "another size than the allocation's", NONE,                       \
	  DFC(f->dev_dma, SZ_4K, f->coh_pfn, f->coh_dma, 0))                                         \
	X(dfc_cpu_4, -EINVAL, "cpu 4 on a 4-CPU machine", NONE, DFC(f->dev_dma, 2 * SZ_4K, f->coh_pfn, f->coh_dma, 4)) \
	X(dfc_unknown_dev, -ENODEV, "unknown device", NONE, DFC(99, 2 * SZ_4K, f->coh_pfn, f->coh_dma, 0)) \
	X(dfc_no_domain, -EOPNOTSUPP, "a device with no default domain", NONE,                       \
	  DFC(f->dev_plain, 2 * SZ_4K, f->coh_pfn, f->coh_dma, 0))                                   \
	X(dfc_double, -ENOENT, "double free", PREP(prep_free_coherent),                              \
	  DFC(f->dev_dma, 2 * SZ_4K, f->coh_pfn, f->coh_dma, 0))

#define CASES_svakit_dma_flush_queues(X)                                                            \
	X(dflush_valid, 0, "not bad input: flushes the fixture's pending unmap", VALID,              \
	  svakit_dma_flush_queues(M))

#define CASES_svakit_dma_run_timers(X)                                                              \
	X(dtimers_zero, 0, "now 0: nothing is due, nothing changes", NONE, svakit_dma_run_timers(M, 0)) \
	X(dtimers_max, 0, "not bad input: now UINT64_MAX, every timer due", VALID,                   \
	  svakit_dma_run_timers(M, UINT64_MAX))

#define CASES_svakit_flush_queue_stats(X)                                                           \
	X(fqs_null, -EFAULT, "NULL stats out", NONE, svakit_flush_queue_stats(M, f->dma_dom, NULL))  \
	X(fqs_unknown, -ENODEV, "unknown domain", NONE, svakit_flush_queue_stats(M, 99, &o.fqs))     \
	X(fqs_dead, -ENODEV, "a freed domain (stale)", NONE, svakit_flush_queue_stats(M, f->dead_dom, &o.fqs)) \
	X(fqs_identity, -EINVAL, "an identity domain (no queue)", NONE,                              \
	  svakit_flush_queue_stats(M, f->dom_ident, &o.fqs))

#define CASES_svakit_dma_map_benchmark(X)                                                           \
	X(mbench_null, -EFAULT, "NULL map", NONE, svakit_dma_map_benchmark(M, f->dev_dma, NULL))      \
	X(mbench_threads_0, -EINVAL, "threads 0", NONE, mapbench(M, f->dev_dma, MB_THREADS, 0))      \
	X(mbench_threads_1025, -EINVAL, "threads 1025 (DMA_MAP_MAX_THREADS 1024)", NONE,             \
	  mapbench(M, f->dev_dma, MB_THREADS, 1025))                                                 \
	X(mbench_seconds_0, -EINVAL, "seconds 0", NONE, mapbench(M, f->dev_dma, MB_SECONDS, 0))      \
	X(mbench_seconds_301, -EINVAL, "seconds 301 (DMA_MAP_MAX_SECONDS 300)", NONE,                \
	  mapbench(M, f->dev_dma, MB_SECONDS, 301))                                                  \
	X(mbench_trans, -EINVAL, "dma_trans_ns 10 ms + 1", NONE, mapbench(M, f->dev_dma, MB_TRANS, 10000001)) \
	X(mbench_node_1, -EINVAL, "node 1 (the machine has node 0 only)", NONE,                      \
	  mapbench(M, f->dev_dma, MB_NODE, 1))                                                       \
	X(mbench_node_neg2, -EINVAL, "node -2", NONE, mapbench(M, f->dev_dma, MB_NODE, -2))          \
	X(mbench_bits_0, -EINVAL, "dma_bits 0", NONE, mapbench(M, f->dev_dma, MB_BITS, 0))           \
	X(mbench_bits_65, -EINVAL, "dma_bits 65", NONE, mapbench(M, f->dev_dma, MB_BITS, 65))        \
	X(mbench_dir_3, -EINVAL, "dma_dir 3", NONE, mapbench(M, f->dev_dma, MB_DIR, 3))              \
	X(mbench_granule_0, -EINVAL, "granule 0", NONE, mapbench(M, f->dev_dma, MB_GRANULE, 0))      \
	X(mbench_granule_1025, -EINVAL, "granule 1025", NONE, mapbench(M, f->dev_dma, MB_GRANULE, 1025)) \
	X(mbench_unknown, -ENODEV, "unknown device", NONE, mapbench(M, 99, MB_NONE, 0))              \
	X(mbench_no_domain, -EOPNOTSUPP, "a device with no default domain", NONE,                   \
	  mapbench(M, f->dev_sva, MB_NONE, 0))                                                       \
	X(mbench_oom, -ENOMEM, "memory exhausted (no buffer; nothing runs)", PREP(prep_exhaust),     \
	  mapbench(M, f->dev_dma, MB_GRANULE, 1024))


/* The IOVA allocator as a library: a destroyed domain and a forged one. */
static struct svakit_iova_domain *dead_iovad(void)
{
	struct svakit_iova_domain *d = NULL;
	REQUIRE0(svakit_iova_domain_create(4096, 1, 1, &d));
	REQUIRE0(svakit_iova_domain_destroy(d));
	return d;
}
static uint64_t forged_iovad_bytes[512];
#define FORGED_IOVAD ((struct svakit_iova_domain *)forged_iovad_bytes)
#define IOVAD (f->iovad)
#define NO_SUCH_CPU 4
#define PFN_MAX UINT64_MAX

static int iova_create_with(uint64_t granule, uint64_t start, uint32_t cpus)
{
	struct svakit_iova_domain *d = NULL;
	int rc = svakit_iova_domain_create(granule, start, cpus, &d);
	if (rc == 0)
		svakit_iova_domain_destroy(d);
	return rc == 0 ? -ENOTRECOVERABLE : rc;
}

#define CASES_svakit_iova_domain_create(X)                                                          \
	X(icreate_null, -EFAULT, "NULL out", NONE, svakit_iova_domain_create(4096, 1, 1, NULL))       \
	X(icreate_granule_3, -EINVAL, "granule 3 (not a power of two)", NONE, iova_create_with(3, 1, 1)) \
	X(icreate_granule_0, -EINVAL, "granule 0", NONE, iova_create_with(0, 1, 1))                    \
	X(icreate_granule_8k, -EINVAL, "granule 8 KiB (above PAGE_SIZE: iova.c's BUG_ON)", NONE,      \
	  iova_create_with(8192, 1, 1))                                                                \
	X(icreate_start_0, -EINVAL, "start_pfn 0", NONE, iova_create_with(4096, 0, 1))                 \
	X(icreate_cpus_0, -EINVAL, "0 CPUs", NONE, iova_create_with(4096, 1, 0))                       \
	X(icreate_cpus_many, -EINVAL, "SVAKIT_IOVA_MAX_CPUS + 1 CPUs", NONE,                           \
	  iova_create_with(4096, 1, SVAKIT_IOVA_MAX_CPUS + 1))

#define CASES_svakit_iova_domain_destroy(X)                                                         \
	X(idestroy_null, -EFAULT, "NULL domain", NONE, svakit_iova_domain_destroy(NULL))               \
	X(idestroy_dead, -EBADF, "a destroyed domain", NONE, svakit_iova_domain_destroy(dead_iovad())) \
	X(idestroy_forged, -EBADF, "a forged domain", NONE, svakit_iova_domain_destroy(FORGED_IOVAD))

#define CASES_svakit_alloc_iova(X)                                                                  \
	X(ialloc_null, -EFAULT, "NULL domain", NONE, svakit_alloc_iova(NULL, 1, 0xFFFFF, 0, &o.a))     \
	X(ialloc_dead, -EBADF, "a destroyed domain", NONE, svakit_alloc_iova(dead_iovad(), 1, 0xFFFFF, 0, &o.a)) \
	X(ialloc_null_out, -EFAULT, "NULL pfn", NONE, svakit_alloc_iova(IOVAD, 1, 0xFFFFF, 0, NULL))   \
	X(ialloc_size_0, -EINVAL, "size 0", NONE, svakit_alloc_iova(IOVAD, 0, 0xFFFFF, 0, &o.a))       \
	X(ialloc_size_huge, -EINVAL, "size 2^62 + 1", NONE,                                            \
	  svakit_alloc_iova(IOVAD, (1ULL << 62) + 1, 0xFFFFF, 0, &o.a))                                \
	X(ialloc_limit_max, -EINVAL, "limit_pfn ~0 (limit_pfn + 1 would wrap)", NONE,                 \
	  svakit_alloc_iova(IOVAD, 1, PFN_MAX, 0, &o.a))                                               \
	X(ialloc_aligned_2, -EINVAL, "size_aligned 2 (a boolean)", NONE,                               \
	  svakit_alloc_iova(IOVAD, 1, 0xFFFFF, 2, &o.a))

#define CASES_svakit_free_iova(X)                                                                   \
	X(ifree_null, -EFAULT, "NULL domain", NONE, svakit_free_iova(NULL, f->iova_pfn))               \
	X(ifree_forged, -EBADF, "a forged domain", NONE, svakit_free_iova(FORGED_IOVAD, f->iova_pfn))  \
	X(ifree_none, -ENOENT, "a pfn in no range", NONE, svakit_free_iova(IOVAD, 5))                  \
	X(ifree_anchor, -ENOENT, "the anchor's pfn ~0", NONE, svakit_free_iova(IOVAD, PFN_MAX))

#define CASES_svakit_alloc_iova_fast(X)                                                             \
	X(iafast_null, -EFAULT, "NULL domain", NONE, svakit_alloc_iova_fast(NULL, 0, 1, 0xFFFFF, 0, &o.a)) \
	X(iafast_dead, -EBADF, "a destroyed domain", NONE,                                             \
	  svakit_alloc_iova_fast(dead_iovad(), 0, 1, 0xFFFFF, 0, &o.a))                                \
	X(iafast_null_out, -EFAULT, "NULL pfn", NONE, svakit_alloc_iova_fast(IOVAD, 0, 1, 0xFFFFF, 0, NULL)) \
	X(iafast_cpu, -EINVAL, "cpu 4 of 4", NONE, svakit_alloc_iova_fast(IOVAD, NO_SUCH_CPU, 1, 0xFFFFF, 0, &o.a)) \
	X(iafast_size_0, -EINVAL, "size 0", NONE, svakit_alloc_iova_fast(IOVAD, 0, 0, 0xFFFFF, 0, &o.a)) \
	X(iafast_limit_max, -EINVAL, "limit_pfn ~0", NONE, svakit_alloc_iova_fast(IOVAD, 0, 1, PFN_MAX, 0, &o.a)) \
	X(iafast_flush_2, -EINVAL, "flush_rcache 2 (a boolean)", NONE,                                 \
	  svakit_alloc_iova_fast(IOVAD, 0, 1, 0xFFFFF, 2, &o.a))

#define CASES_svakit_free_iova_fast(X)                                                              \
	X(iffast_null, -EFAULT, "NULL domain", NONE, svakit_free_iova_fast(NULL, 0, f->iova_pfn, 8))   \
	X(iffast_forged, -EBADF, "a forged domain", NONE, svakit_free_iova_fast(FORGED_IOVAD, 0, f->iova_pfn, 8)) \
	X(iffast_cpu, -EINVAL, "cpu 4 of 4", NONE, svakit_free_iova_fast(IOVAD, NO_SUCH_CPU, f->iova_pfn, 8)) \
	X(iffast_size_0, -EINVAL, "size 0", NONE, svakit_free_iova_fast(IOVAD, 0, f->iova_pfn, 0))     \
	X(iffast_none, -ENOENT, "a pfn in no range", NONE, svakit_free_iova_fast(IOVAD, 0, 5, 1))

/* svakit_reserve_iova on a fresh granule-1 domain, destroyed after. */
static int reserve_on_granule1(uint64_t hi)
{
	struct svakit_iova_domain *d = NULL;
	int rc = svakit_iova_domain_create(1, 1, 1, &d);

	if (rc)
		return rc;
	rc = svakit_reserve_iova(d, 10, hi);
	svakit_iova_domain_destroy(d);
	return rc;
}

#define CASES_svakit_reserve_iova(X)                                                                \
	X(ires_null, -EFAULT, "NULL domain", NONE, svakit_reserve_iova(NULL, 10, 20))                  \
	X(ires_dead, -EBADF, "a destroyed domain", NONE, svakit_reserve_iova(dead_iovad(), 10, 20))    \
	X(ires_empty, -EINVAL, "pfn_lo > pfn_hi", NONE, svakit_reserve_iova(IOVAD, 20, 10))            \
	X(ires_huge, -EINVAL, "pfn_hi past ULLONG_MAX >> 12", NONE,                                    \
	  svakit_reserve_iova(IOVAD, 10, (UINT64_MAX >> 12) + 1))                                     \
	X(ires_anchor, -EINVAL, "pfn_hi ULLONG_MAX on a granule-1 domain (the anchor)", NONE,          \
	  reserve_on_granule1(UINT64_MAX))

#define CASES_svakit_free_cpu_cached_iovas(X)                                                       \
	X(ifcpu_null, -EFAULT, "NULL domain", NONE, svakit_free_cpu_cached_iovas(NULL, 0))             \
	X(ifcpu_forged, -EBADF, "a forged domain", NONE, svakit_free_cpu_cached_iovas(FORGED_IOVAD, 0)) \
	X(ifcpu_cpu, -EINVAL, "cpu 4 of 4", NONE, svakit_free_cpu_cached_iovas(IOVAD, NO_SUCH_CPU))

#define CASES_svakit_iova_run_depot_work(X)                                                         \
	X(iwork_null, -EFAULT, "NULL domain", NONE, svakit_iova_run_depot_work(NULL))                  \
	X(iwork_dead, -EBADF, "a destroyed domain", NONE, svakit_iova_run_depot_work(dead_iovad()))    \
	X(iwork_idle, 0, "no work pending: nothing runs", OPT(NOTE("a valid call that must change nothing")), \
	  svakit_iova_run_depot_work(IOVAD))

#define CASES_svakit_iova_stats(X)                                                                  \
	X(istats_null, -EFAULT, "NULL domain", NONE, svakit_iova_stats(NULL, &o.is))                   \
	X(istats_forged, -EBADF, "a forged domain", NONE, svakit_iova_stats(FORGED_IOVAD, &o.is))      \
	X(istats_null_out, -EFAULT, "NULL out", NONE, svakit_iova_stats(IOVAD, NULL))

#define CASES_svakit_iova_cpu_stats(X)                                                              \
	X(icstats_null, -EFAULT, "NULL domain", NONE, svakit_iova_cpu_stats(NULL, 0, &o.ics))          \
	X(icstats_dead, -EBADF, "a destroyed domain", NONE, svakit_iova_cpu_stats(dead_iovad(), 0, &o.ics)) \
	X(icstats_cpu, -EINVAL, "cpu 4 of 4", NONE, svakit_iova_cpu_stats(IOVAD, NO_SUCH_CPU, &o.ics))  \
	X(icstats_null_out, -EFAULT, "NULL out", NONE, svakit_iova_cpu_stats(IOVAD, 0, NULL))

#define CASES_svakit_vmalloc_area(X)                                                                \
	X(varea_null_start, -EFAULT, "NULL start", NONE, svakit_vmalloc_area(M, NULL, &o.b))         \
	X(varea_null_end, -EFAULT, "NULL end", NONE, svakit_vmalloc_area(M, &o.a, NULL))

#define CASES_svakit_vmalloc(X)                                                                     \
	X(vm_size_0, -EINVAL, "size 0", NONE, svakit_vmalloc(M, 0, &o.a))                            \
	X(vm_size_odd, -EINVAL, "size 100 (not page-sized)", NONE, svakit_vmalloc(M, 100, &o.a))     \
	X(vm_size_area, -EINVAL, "size larger than the vmalloc area",                                \
	  NOTE("header silent: a size no area can hold is a bad size"),                              \
	  svakit_vmalloc(M, f->vend - f->vstart + SZ_4K, &o.a))                                      \
	X(vm_size_max, -EINVAL, "size UINT64_MAX & ~0xfff", NONE, svakit_vmalloc(M, ~0xfffULL, &o.a)) \
	X(vm_null, -EFAULT, "NULL va", NONE, svakit_vmalloc(M, SZ_4K, NULL))                         \
	X(vm_oom, -ENOMEM, "memory exhausted", PREP(prep_exhaust), svakit_vmalloc(M, SZ_4K, &o.a))   \
	X(vm_bigger_than_memory, -ENOMEM, "size twice the memory",                                   \
	  NONE,          \
	  svakit_vmalloc(M, 2 * f->mem_bytes, &o.a))

#define CASES_svakit_vmalloc_huge(X)                                                                \
	X(vmh_size_0, -EINVAL, "size 0", NONE, svakit_vmalloc_huge(M, 0, &o.a))                      \
	X(vmh_size_4k, -EINVAL, "size 4 KiB (not 2 MiB-sized)", NONE, svakit_vmalloc_huge(M, SZ_4K, &o.a)) \
	X(vmh_size_3m, -EINVAL, "size 3 MiB", NONE, svakit_vmalloc_huge(M, 3 * SZ_2M / 2, &o.a))    \
	X(vmh_null, -EFAULT, "NULL va", NONE, svakit_vmalloc_huge(M, SZ_2M, NULL))                   \
	X(vmh_bigger_than_memory, -ENOMEM, "size twice the memory",                                  \
	  NONE,                                   \
	  svakit_vmalloc_huge(M, 2 * f->mem_bytes, &o.a))                                            \
	X(vmh_size_area, -EINVAL, "size larger than the vmalloc area",                               \
	  OPT(         \
	      NOTE("header silent; one errno for one kind of bad input, as svakit_vmalloc")),        \
	  svakit_vmalloc_huge(M, f->vend - f->vstart + SZ_2M, &o.a))                                 \
	X(vmh_size_max, -EINVAL, "size 2^64 - 2 MiB (wraps the area)",                               \
	  NONE,             \
	  svakit_vmalloc_huge(M, ~(SZ_2M - 1), &o.a))

#define CASES_svakit_vfree(X)                                                                       \
	X(vfree_zero, -ENOENT, "va 0 (vfree(NULL))",                                                 \
	  NOTE("vfree(NULL) is a no-op in Linux; here it names no vmalloc area"), svakit_vfree(M, 0))                                                                        \
	X(vfree_double, -ENOENT, "an area already freed (double vfree)", NONE, svakit_vfree(M, f->dead_vm_va)) \
	X(vfree_middle, -ENOENT, "the middle of an area", NONE, svakit_vfree(M, f->vm_va + SZ_4K))   \
	X(vfree_misaligned, -EINVAL, "an unaligned va inside an area", NONE,        \
	  svakit_vfree(M, f->vm_va + 8))                                                             \
	X(vfree_noncanon, -ERANGE, "a non-canonical va", NONE, svakit_vfree(M, NONCANON_K)) \
	X(vfree_direct_map, -ENOENT, "a direct-map va (not a vmalloc area)", NONE, svakit_vfree(M, f->dm_va))

/* Only @m: the handle rows (NULL, destroyed) cover it. */
#define CASES_svakit_vm_unmap_aliases(X)

#define CASES_svakit_vmap_huge(X)                                                                   \
	X(vmap_size_4k, -EINVAL, "size 4 KiB", NONE,                                                 \
	  svakit_vmap_huge(M, f->vstart + (64ULL << 30), 0, SZ_4K, RW))                              \
	X(vmap_size_4m, -EINVAL, "size 4 MiB", NONE,                                                 \
	  svakit_vmap_huge(M, f->vstart + (64ULL << 30), 0, 2 * SZ_2M, RW))                          \
	X(vmap_va_misaligned, -EINVAL, "va 4 KiB aligned only", NONE,                                \
	  svakit_vmap_huge(M, f->vstart + (64ULL << 30) + SZ_4K, 0, SZ_2M, RW))                      \
	X(vmap_phys_misaligned, -EINVAL, "phys 4 KiB aligned only", NONE,                            \
	  svakit_vmap_huge(M, f->vstart + (64ULL << 30), SZ_4K, SZ_2M, RW))                          \
	X(vmap_prot, -EINVAL, "prot with PS", NONE, svakit_vmap_huge(M, f->vstart + (64ULL << 30), 0, SZ_2M, PS)) \
	X(vmap_noncanon, -ERANGE, "non-canonical va", NONE, svakit_vmap_huge(M, NONCANON_K, 0, SZ_2M, RW)) \
	X(vmap_user, -EINVAL, "a user va", NONE, svakit_vmap_huge(M, UVA_FREE, 0, SZ_2M, RW))        \
	X(vmap_phys_beyond, -ERANGE, "phys = end of memory", NONE,                                   \
	  svakit_vmap_huge(M, f->vstart + (64ULL << 30), f->mem_bytes, SZ_2M, RW))                   \
	X(vmap_1g_past_end, -ERANGE, "1 GiB at phys 0 on 64 MiB", NONE,                              \
	  svakit_vmap_huge(M, f->vstart + (64ULL << 30), 0, SZ_1G, RW))                              \
	X(vmap_over_leaf, -EEXIST, "over the direct map's 2 MiB leaf", NONE,                         \
	  svakit_vmap_huge(M, f->dm_va, 0, SZ_2M, RW))                                               \
	X(vmap_over_huge, -EEXIST, "over a vmalloc_huge leaf", NONE,                                 \
	  svakit_vmap_huge(M, f->huge_va, 0, SZ_2M, RW))                                             \
	X(vmap_over_live_table, -EBUSY, "over a PTE table that still maps pages", NONE,              \
	  svakit_vmap_huge(M, f->vm_va & ~(SZ_2M - 1), 0, SZ_2M, RW))                                \
	X(vmap_oom, -ENOMEM, "memory exhausted, tables needed", PREP(prep_exhaust),                  \
	  svakit_vmap_huge(M, f->vstart + (64ULL << 30), 0, SZ_2M, RW))

#define CASES_svakit_vunmap(X)                                                                      \
	X(vunmap_size_0, -EINVAL, "size 0", NONE, svakit_vunmap(M, f->vm_va, 0))                     \
	X(vunmap_va_misaligned, -EINVAL, "va not aligned", NONE, svakit_vunmap(M, f->vm_va + 1, SZ_4K)) \
	X(vunmap_size_misaligned, -EINVAL, "size 100", NONE, svakit_vunmap(M, f->vm_va, 100))        \
	X(vunmap_noncanon, -ERANGE, "non-canonical va", NONE, svakit_vunmap(M, NONCANON_K, SZ_4K))   \
	X(vunmap_user, -EINVAL, "a user va", NONE, svakit_vunmap(M, UVA, SZ_4K))                     \
	X(vunmap_partial_huge, -EINVAL, "4 KiB of a 2 MiB leaf", NONE, svakit_vunmap(M, f->huge_va, SZ_4K)) \
	X(vunmap_wraps, -ERANGE, "a range that wraps past 2^64 (as DMA)", NONE,                               \
	  svakit_vunmap(M, 0xfffffffffffff000ULL, 2 * SZ_4K))

#define CASES_svakit_direct_map_va(X)                                                               \
	X(dmva_beyond, -ERANGE, "phys = end of memory", NONE, svakit_direct_map_va(M, f->mem_bytes, &o.a)) \
	X(dmva_max, -ERANGE, "phys = UINT64_MAX", NONE, svakit_direct_map_va(M, UINT64_MAX, &o.a))   \
	X(dmva_null, -EFAULT, "NULL out", NONE, svakit_direct_map_va(M, 0, NULL))

#define CASES_svakit_set_memory(X)                                                                  \
	X(setmem_0, -EINVAL, "npages 0", NONE, svakit_set_memory(M, f->dm_va, 0, 0, RW))             \
	X(setmem_misaligned, -EINVAL, "va not aligned", NONE, svakit_set_memory(M, f->dm_va + 1, 1, 0, RW)) \
	X(setmem_set_p, -EINVAL, "set P (outside SVAKIT_PROT_MASK)", NONE,                           \
	  svakit_set_memory(M, f->dm_va, 1, P, 0))                                                   \
	X(setmem_set_ps, -EINVAL, "set PS", NONE, svakit_set_memory(M, f->dm_va, 1, PS, 0))          \
	X(setmem_clear_p, -EINVAL, "clear P", NONE, svakit_set_memory(M, f->dm_va, 1, 0, P))         \
	X(setmem_set_us, -EINVAL,                                                                    \
	  "set U/S: no set_memory_*() makes a kernel page user-accessible (fuzzer class 14)", NONE,  \
	  svakit_set_memory(M, f->vm_va, 1, SVAKIT_PTE_US, 0))                                       \
	X(setmem_overlap, -EINVAL, "the same bit set and cleared", NONE,                             \
	  svakit_set_memory(M, f->dm_va, 1, RW, RW))                                                 \
	X(setmem_hole, -ERANGE, "a kernel va in neither the direct map nor the vmalloc area", NONE, \
	  svakit_set_memory(M, f->dm_base - SZ_1G, 1, 0, RW))                                        \
	X(setmem_unmapped, -ENOENT, "an unmapped vmalloc-area page (CPA's zero pte)", NONE,          \
	  svakit_set_memory(M, f->vm_va + 3 * SZ_1G + 5 * SZ_2M, 1, 0, RW))                          \
	X(setmem_user, -EINVAL, "a user va", NONE, svakit_set_memory(M, UVA, 1, 0, RW)) \
	X(setmem_noncanon, -ERANGE, "non-canonical va", NONE, svakit_set_memory(M, NONCANON_K, 1, 0, RW)) \
	X(setmem_noncanon_low, -ERANGE, "non-canonical va, bit 63 clear", NONE,                      \
	  svakit_set_memory(M, NONCANON_U, 1, 0, RW))                                                \
	X(setmem_past_end, -ERANGE, "a range past the end of memory", NONE,                          \
	  svakit_set_memory(M, f->dm_base + f->mem_bytes - SZ_4K, 2, 0, RW))           \
	X(setmem_npages_huge, -ERANGE, "npages 2^52", NONE, svakit_set_memory(M, f->dm_va, 1ULL << 52, 0, RW)) \
	X(setmem_oom, -ENOMEM, "memory exhausted, a split needed", PREP(prep_exhaust),               \
	  svakit_set_memory(M, f->dm_va, 1, 0, RW))                                                  \
	X(setmem_offline, -ENOENT, "offline memory", OPT(VARIANT(V256), PREP(prep_offline_top_section)), \
	  svakit_set_memory(M, f->dm_base + (SECTION << 12), 1, 0, RW))

#define CASES_svakit_set_memory_rox(X)                                                              \
	X(rox_0, -EINVAL, "npages 0", NONE, svakit_set_memory_rox(M, f->dm_va, 0))                    \
	X(rox_misaligned, -EINVAL, "va not aligned", NONE, svakit_set_memory_rox(M, f->dm_va + 1, 1)) \
	X(rox_user, -EINVAL, "a user va", NONE, svakit_set_memory_rox(M, UVA, 1))                    \
	X(rox_noncanon, -ERANGE, "non-canonical va", NONE, svakit_set_memory_rox(M, NONCANON_U, 1))  \
	X(rox_hole, -ERANGE, "a kernel va in neither the direct map nor the vmalloc area", NONE,     \
	  svakit_set_memory_rox(M, f->dm_base - SZ_1G, 1))                                            \
	X(rox_past_end, -ERANGE, "a range past the end of memory", NONE,                             \
	  svakit_set_memory_rox(M, f->dm_base + f->mem_bytes - SZ_4K, 2))                             \
	X(rox_unmapped, -ENOENT, "an unmapped vmalloc-area page", NONE,                               \
	  svakit_set_memory_rox(M, f->vm_va + 3 * SZ_1G + 5 * SZ_2M, 1))

#define CASES_svakit_cpa_collapse_large_pages(X)                                                                \
	X(collapse_hole, -ERANGE, "a kernel va in neither the direct map nor the vmalloc area", NONE, \
	  svakit_cpa_collapse_large_pages(M, f->dm_base - SZ_1G))                                                \
	X(collapse_noncanon, -ERANGE, "non-canonical va", NONE, svakit_cpa_collapse_large_pages(M, NONCANON_K))  \
	X(collapse_noncanon_low, -ERANGE, "non-canonical va, bit 63 clear", NONE,                    \
	  svakit_cpa_collapse_large_pages(M, NONCANON_U))                                                        \
	X(collapse_user, -EINVAL, "a user va", NONE, svakit_cpa_collapse_large_pages(M, UVA))   \
	X(collapse_past_end, -ERANGE, "the direct-map va one past memory", NONE,                     \
	  svakit_cpa_collapse_large_pages(M, f->dm_base + f->mem_bytes))                           \
	X(collapse_offline, -ENOENT, "offline memory", OPT(VARIANT(V256), PREP(prep_offline_top_section)), \
	  svakit_cpa_collapse_large_pages(M, f->dm_base + (SECTION << 12)))

#define CASES_svakit_memory_hot_remove(X)                                                           \
	X(hrm_small_machine, -ERANGE, "a section past 64 MiB", NONE, svakit_memory_hot_remove(M, 0, SECTION)) \
	X(hrm_zero, -EINVAL, "nr_pages 0", VARIANT(V256), svakit_memory_hot_remove(M, SECTION, 0))   \
	X(hrm_pfn_misaligned, -EINVAL, "pfn not section aligned", VARIANT(V256),                     \
	  svakit_memory_hot_remove(M, SECTION + 1024, SECTION))                                      \
	X(hrm_size_misaligned, -EINVAL, "nr_pages not whole sections", VARIANT(V256),                \
	  svakit_memory_hot_remove(M, SECTION, 1024))                                                \
	X(hrm_beyond, -ERANGE, "pfn past the end", VARIANT(V256), svakit_memory_hot_remove(M, 2 * SECTION, SECTION)) \
	X(hrm_past_end, -ERANGE, "a range past the end", VARIANT(V256),                              \
	  svakit_memory_hot_remove(M, SECTION, 2 * SECTION))                                         \
	X(hrm_wrap, -ERANGE, "pfn + nr_pages wraps", VARIANT(V256),                                  \
	  svakit_memory_hot_remove(M, 1ULL << 63, 1ULL << 63))                                       \
	X(hrm_busy, -EBUSY, "a section with allocated frames", VARIANT(V256),                        \
	  svakit_memory_hot_remove(M, 0, SECTION))                                                   \
	X(hrm_offline, -ENOENT, "a section already offline", OPT(VARIANT(V256), PREP(prep_offline_top_section)), \
	  svakit_memory_hot_remove(M, SECTION, SECTION))

#define CASES_svakit_memory_hot_add(X)                                                              \
	X(hadd_online, -EBUSY, "an online section", VARIANT(V256), svakit_memory_hot_add(M, SECTION, SECTION)) \
	X(hadd_partly, -EBUSY, "a range only partly offline", OPT(VARIANT(V256), PREP(prep_offline_top_section)), \
	  svakit_memory_hot_add(M, 0, 2 * SECTION))                                                  \
	X(hadd_zero, -EINVAL, "nr_pages 0", OPT(VARIANT(V256), PREP(prep_offline_top_section)),      \
	  svakit_memory_hot_add(M, SECTION, 0))                                                      \
	X(hadd_misaligned, -EINVAL, "pfn not section aligned", OPT(VARIANT(V256), PREP(prep_offline_top_section)), \
	  svakit_memory_hot_add(M, SECTION + 1024, SECTION))                                         \
	X(hadd_beyond, -ERANGE, "a range past the end", OPT(VARIANT(V256), PREP(prep_offline_top_section)), \
	  svakit_memory_hot_add(M, SECTION, 2 * SECTION))                                            \
	X(hadd_wrap, -ERANGE, "pfn + nr_pages wraps", VARIANT(V256),                                 \
	  svakit_memory_hot_add(M, 1ULL << 63, 1ULL << 63))

#define CASES_svakit_machine_set_tlb_flush_hook(X)                                                          \
	X(tlbhook_null, 0, "NULL fn (detaches; not an error)", NONE, svakit_machine_set_tlb_flush_hook(M, NULL, NULL))

#define CASES_svakit_flush_tlb_kernel_range(X)                                                      \
	X(flush_reversed, -EINVAL, "start > end", NONE, svakit_flush_tlb_kernel_range(M, f->vm_va + SZ_4K, f->vm_va)) \
	X(flush_noncanon, -ERANGE, "non-canonical start", NONE, \
	  svakit_flush_tlb_kernel_range(M, NONCANON_K, NONCANON_K + SZ_4K))                          \
	X(flush_misaligned, -EINVAL, "start not page aligned", NONE, \
	  svakit_flush_tlb_kernel_range(M, f->vm_va + 8, f->vm_va + SZ_4K))                          \
	X(flush_user, -EINVAL, "a user-half range", NONE,      \
	  svakit_flush_tlb_kernel_range(M, UVA, UVA + SZ_4K))

#define CASES_svakit_machine_stats(X)                                                               \
	X(stats_null_out, -EFAULT, "NULL out", NONE, svakit_machine_stats(M, NULL))

#define CASES_svakit_machine_counters(X)                                                            \
	X(counters_null_out, -EFAULT, "NULL out", NONE, svakit_machine_counters(M, NULL))

#define CASES_svakit_machine_set_report_handler(X)                                                          \
	X(rephandler_null, 0, "NULL fn (detaches; not an error)", NONE, svakit_machine_set_report_handler(M, NULL, NULL))

#define CASES_svakit_report_count(X)                                                                \
	X(repcount_null, -EFAULT, "NULL out", NONE, svakit_report_count(M, NULL))

#define CASES_svakit_report_read(X)                                                                     \
	X(reports_null, -EFAULT, "NULL out, cap 2", NONE, svakit_report_read(M, 0, NULL, 2))             \
	X(reports_cap_max, -EINVAL, "cap SIZE_MAX", NONE, svakit_report_read(M, 0, o.rep, SIZE_MAX))

#define CASES_svakit_report_text(X)                                                                 \
	X(rtext_null, -EFAULT, "NULL buf", NONE, svakit_report_text(M, 0, NULL, 16))                 \
	X(rtext_len_0, -EINVAL, "len 0", NONE, svakit_report_text(M, 0, o.text, 0))                  \
	X(rtext_none, -ENOENT, "no such report", NONE, svakit_report_text(M, 0, o.text, sizeof(o.text))) \
	X(rtext_max, -ENOENT, "index UINT64_MAX", NONE,                                              \
	  svakit_report_text(M, UINT64_MAX, o.text, sizeof(o.text)))

#define CASES_svakit_machine_check(X)

#define CASES_svakit_machine_check_text(X)                                                          \
	X(chktext_null, -EFAULT, "NULL buf", NONE, svakit_machine_check_text(M, NULL, 16))           \
	X(chktext_len_0, -EINVAL, "len 0 (no room for the NUL)", NONE, svakit_machine_check_text(M, o.text, 0)) \
	X(chktext_len_1, 0, "len 1: a consistent machine's text is empty", NONE,                     \
	  check_text_empty(f, 1))

#define CASES_svakit_fail_nth(X)                                                                    \
	X(failnth_disarm, 0, "not bad input: 0 disarms, no count wanted", VALID, svakit_fail_nth(M, 0, NULL))

#define CASES_svakit_fail_nth_injected(X)                                                           \
	X(failinj_null, -EFAULT, "NULL what out", NONE, svakit_fail_nth_injected(M, NULL))

#define CASES_svakit_frame_info(X)                                                                  \
	X(finfo_beyond, -ERANGE, "pfn = frames", NONE, svakit_frame_info(M, f->frames, &o.d))        \
	X(finfo_max, -ERANGE, "pfn = UINT64_MAX", NONE, svakit_frame_info(M, UINT64_MAX, &o.d))      \
	X(finfo_null, -EFAULT, "NULL out", NONE, svakit_frame_info(M, f->data_pfn, NULL))

#define CASES_svakit_frame_read(X)                                                                  \
	X(fread_beyond, -ERANGE, "pfn = frames", NONE, svakit_frame_read(M, f->frames, 0, o.buf, 8)) \
	X(fread_null, -EFAULT, "NULL buf", NONE, svakit_frame_read(M, f->data_pfn, 0, NULL, 8))      \
	X(fread_null_0, -EFAULT, "NULL buf, len 0", NONE, svakit_frame_read(M, f->data_pfn, 0, NULL, 0)) \
	X(fread_off_4096, -EINVAL, "offset 4096, len 1", NONE,                                       \
	  svakit_frame_read(M, f->data_pfn, 4096, o.buf, 1))                                         \
	X(fread_straddle, -EINVAL, "offset 4090, len 8 (past the frame)", NONE,                      \
	  svakit_frame_read(M, f->data_pfn, 4090, o.buf, 8))                                         \
	X(fread_off_max, -EINVAL, "offset UINT32_MAX", NONE,                                         \
	  svakit_frame_read(M, f->data_pfn, UINT32_MAX, o.buf, 1))                                   \
	X(fread_len_max, -EINVAL, "len SIZE_MAX", NONE,                                              \
	  svakit_frame_read(M, f->data_pfn, 0, o.buf, SIZE_MAX))

#define CASES_svakit_frame_write(X)                                                                 \
	X(fwrite_beyond, -ERANGE, "pfn = frames", NONE, svakit_frame_write(M, f->frames, 0, o.buf, 8)) \
	X(fwrite_null, -EFAULT, "NULL buf", NONE, svakit_frame_write(M, f->data_pfn, 0, NULL, 8))    \
	X(fwrite_off_4096, -EINVAL, "offset 4096, len 1", NONE,                                      \
	  svakit_frame_write(M, f->data_pfn, 4096, o.buf, 1))                                        \
	X(fwrite_straddle, -EINVAL, "offset 4090, len 8 (no partial write)", NONE,                   \
	  svakit_frame_write(M, f->data_pfn, 4090, "abcdefgh", 8))                                   \
	X(fwrite_len_max, -EINVAL, "len SIZE_MAX", NONE,                                             \
	  svakit_frame_write(M, f->data_pfn, 0, o.buf, SIZE_MAX))                                    \
	X(fwrite_table, -EPERM, "init_mm's root, a live page table (fuzzer find)", NONE,             \
	  svakit_frame_write(M, 0, 0, "abcdefgh", 8))

#define CASES_svakit_iommu_commands(X)                                                              \
	X(icmd_unknown, -ENODEV, "unknown IOMMU id", NONE, svakit_iommu_commands(M, 7, &o.icmd))     \
	X(icmd_max, -ENODEV, "IOMMU id UINT32_MAX", NONE, svakit_iommu_commands(M, UINT32_MAX, &o.icmd)) \
	X(icmd_null, -EFAULT, "NULL out", NONE, svakit_iommu_commands(M, f->iommu, NULL))

#define CASES_svakit_flush_queue_entries(X)                                                         \
	X(fqe_null_count, -EFAULT, "NULL count out", NONE,                                          \
	  svakit_flush_queue_entries(M, f->dma_dom, o.fqe, 4, NULL))                                 \
	X(fqe_null_out, -EFAULT, "NULL out with room 4", NONE,                                      \
	  svakit_flush_queue_entries(M, f->dma_dom, NULL, 4, &o.n))                                 \
	X(fqe_unknown, -ENODEV, "unknown domain", NONE, svakit_flush_queue_entries(M, 99, o.fqe, 4, &o.n)) \
	X(fqe_cap_max, -EINVAL, "cap SIZE_MAX", NONE, svakit_flush_queue_entries(M, f->dma_dom, o.fqe, SIZE_MAX, &o.n)) \
	X(fqe_dead, -ENODEV, "a freed domain (stale)", NONE,                                        \
	  svakit_flush_queue_entries(M, f->dead_dom, o.fqe, 4, &o.n))                                \
	X(fqe_identity, -EINVAL, "an identity domain (no queue)", NONE,                             \
	  svakit_flush_queue_entries(M, f->dom_ident, o.fqe, 4, &o.n))

#define CASES_svakit_event_read(X)                                                                      \
	X(ev_null, -EFAULT, "NULL out, cap 2", NONE, svakit_event_read(M, 0, NULL, 2))                   \
	X(ev_cap_max, -EINVAL, "cap SIZE_MAX", NONE, svakit_event_read(M, 0, o.ev, SIZE_MAX))

#define CASES_svakit_frame_history(X)                                                               \
	X(fh_beyond, -ERANGE, "pfn = frames", NONE, svakit_frame_history(M, f->frames, o.ev, 2))     \
	X(fh_null, -EFAULT, "NULL out, cap 2", NONE, svakit_frame_history(M, f->data_pfn, NULL, 2))  \
	X(fh_cap_max, -EINVAL, "cap SIZE_MAX", NONE, svakit_frame_history(M, f->data_pfn, o.ev, SIZE_MAX))

/* Every function of svakit.h, then of svakit_debug.h, in their order (checked). */
#define FUNCTIONS(F)                                                                                    \
	F(svakit_config_default) F(svakit_machine_create) F(svakit_machine_destroy) F(svakit_machine_reset) F(svakit_version)  \
	F(svakit_strerror) F(svakit_frame_alloc) F(svakit_frame_free) F(svakit_mm_create)              \
	F(svakit_mm_destroy) F(svakit_mm_root) F(svakit_mm_map) F(svakit_mm_unmap)                     \
	F(svakit_mm_translate) F(svakit_pagetable_alloc_kernel) F(svakit_pagetable_read_entry)         \
	F(svakit_pagetable_write_entry) F(svakit_pagetable_link) F(svakit_pagetable_unlink)            \
	F(svakit_pagetable_free) F(svakit_iommu_config_default) F(svakit_iommu_create)                 \
	F(svakit_iommu_counters) F(svakit_iommu_invalidate_range) F(svakit_iommu_invalidate_pasid)     \
	F(svakit_iommu_invalidate_all) F(svakit_iommu_fence) F(svakit_iommu_set_driver)                \
	F(svakit_device_create) F(svakit_iommu_attach_device_pasid)                                    \
	F(svakit_iommu_detach_device_pasid) F(svakit_device_dma_read) F(svakit_device_dma_write)       \
	F(svakit_iommu_sva_bind_device) F(svakit_iommu_sva_unbind_device)                              \
	F(svakit_iommu_sva_get_pasid) F(svakit_iommu_sva_mm_count)                                     \
	F(svakit_iommu_sva_invalidate_kva_range_slow) F(svakit_pagetable_free_kernel)                  \
	F(svakit_deferred_work_run) F(svakit_deferred_work_flush) F(svakit_deferred_stats)             \
	F(svakit_machine_set_free_hook) F(svakit_iommu_domain_alloc) F(svakit_iommu_domain_free)       \
	F(svakit_iommu_attach_device) F(svakit_iommu_detach_device) F(svakit_iommu_map)                \
	F(svakit_iommu_unmap) F(svakit_iommu_iova_to_phys) F(svakit_iommu_setup_default_domain)        \
	F(svakit_iommu_debug_pagealloc_built) F(svakit_iommu_debug_map_count)                          \
	F(svakit_iommu_debug_stats) F(svakit_dma_set_mask) F(svakit_dma_get_mask)                      \
	F(svakit_device_set_bus_dma_limit) F(svakit_dma_map_page) F(svakit_dma_unmap_page)             \
	F(svakit_dma_map_sg) F(svakit_dma_unmap_sg) F(svakit_dma_alloc_coherent)                       \
	F(svakit_dma_free_coherent) F(svakit_dma_flush_queues) F(svakit_dma_run_timers)                \
	F(svakit_flush_queue_stats) F(svakit_dma_map_benchmark) F(svakit_iova_domain_create)           \
	F(svakit_iova_domain_destroy) F(svakit_alloc_iova) F(svakit_free_iova)                         \
	F(svakit_alloc_iova_fast) F(svakit_free_iova_fast) F(svakit_reserve_iova)                      \
	F(svakit_free_cpu_cached_iovas) F(svakit_iova_run_depot_work) F(svakit_iova_stats)             \
	F(svakit_iova_cpu_stats) F(svakit_vmalloc_area) F(svakit_vmalloc) F(svakit_vmalloc_huge)       \
	F(svakit_vfree) F(svakit_vm_unmap_aliases) F(svakit_vmap_huge) F(svakit_vunmap)                \
	F(svakit_direct_map_va) F(svakit_set_memory) F(svakit_set_memory_rox)                          \
	F(svakit_cpa_collapse_large_pages) F(svakit_memory_hot_remove) F(svakit_memory_hot_add)        \
	F(svakit_machine_set_tlb_flush_hook) F(svakit_flush_tlb_kernel_range) F(svakit_machine_stats)  \
	F(svakit_machine_counters)                                                                     \
	F(svakit_machine_set_report_handler) F(svakit_report_count) F(svakit_report_read)              \
	F(svakit_report_text) F(svakit_machine_check) F(svakit_machine_check_text) F(svakit_fail_nth)  \
	F(svakit_fail_nth_injected) F(svakit_frame_info) F(svakit_frame_read) F(svakit_frame_write)    \
	F(svakit_iommu_commands) F(svakit_flush_queue_entries) F(svakit_event_read)                    \
	F(svakit_frame_history)

/*
 * Declared in the header but exempt: the inline fast paths read the handle
 * with no call and the header requires a live machine of their callers, so
 * they cannot refuse anything.
 */
static const char *const exempt[] = {
	"svakit_iommu_sva_present",
	"svakit_iommu_sva_invalidate_kva_range",
	/* The sanitizer's key test and its gate: with the key off the gate checks
	 * nothing, not even the range; __svakit_iommu_debug_check_unmapped, which
	 * it calls with the key on, has the handle rows and test_iommu_debug.c. */
	"svakit_iommu_debug_pagealloc_enabled",
	"svakit_iommu_debug_check_unmapped",
};

/* ------------------------------------------------------------------------ */
/* Every function with a handle that is not a live machine                   */
/* ------------------------------------------------------------------------ */

/* Otherwise valid calls through h (the fixture gives the other arguments). */
#define HANDLE_CALLS(H)                                                                             \
	H(svakit_machine_destroy, 1, (svakit_machine_destroy(h), 0))                            \
	H(svakit_machine_reset, 0, svakit_machine_reset(h))                                     \
	H(svakit_frame_alloc, 0, svakit_frame_alloc(h, 0, 0, &o.a))                             \
	H(svakit_frame_free, 0, svakit_frame_free(h, f->data_pfn))                              \
	H(svakit_mm_create, 0, svakit_mm_create(h, &o.u))                                       \
	H(svakit_mm_destroy, 0, svakit_mm_destroy(h, f->mm2))                                   \
	H(svakit_mm_root, 0, svakit_mm_root(h, f->mm, &o.a))                                    \
	H(svakit_mm_map, 0, svakit_mm_map(h, f->mm, UVA_FREE, 0, SZ_4K, RW))                    \
	H(svakit_mm_unmap, 0, svakit_mm_unmap(h, f->mm, UVA, SZ_4K))                            \
	H(svakit_mm_translate, 0, svakit_mm_translate(h, f->mm, UVA, &o.t))                     \
	H(svakit_pagetable_alloc_kernel, 0, svakit_pagetable_alloc_kernel(h, 1, &o.a))          \
	H(svakit_pagetable_read_entry, 0, svakit_pagetable_read_entry(h, f->pte_tab, 0, &o.a))  \
	H(svakit_pagetable_write_entry, 0, svakit_pagetable_write_entry(h, f->pte_tab, 0, leaf(0, 0))) \
	H(svakit_pagetable_link, 0, svakit_pagetable_link(h, f->pmd_tab, 0, f->pte_tab))        \
	H(svakit_pagetable_unlink, 0, svakit_pagetable_unlink(h, f->linked_parent, 0, &o.a))    \
	H(svakit_pagetable_free, 0, svakit_pagetable_free(h, f->pte_tab))                       \
	H(svakit_iommu_create, 0, (svakit_iommu_config_default(&o.icfg), svakit_iommu_create(h, &o.icfg, &o.u))) \
	H(svakit_iommu_counters, 0, svakit_iommu_counters(h, f->iommu, &o.ic))                  \
	H(svakit_iommu_invalidate_range, 0, svakit_iommu_invalidate_range(h, f->iommu, f->pasid, UVA, UVA + 0xfff, 0)) \
	H(svakit_iommu_invalidate_pasid, 0, svakit_iommu_invalidate_pasid(h, f->iommu, f->pasid)) \
	H(svakit_iommu_invalidate_all, 0, svakit_iommu_invalidate_all(h, f->iommu))             \
	H(svakit_iommu_fence, 0, svakit_iommu_fence(h, f->iommu))                               \
	H(svakit_iommu_set_driver, 0, svakit_iommu_set_driver(h, f->iommu, NULL, NULL))         \
	H(svakit_device_create, 0, svakit_device_create(h, f->iommu, SVAKIT_DEV_SVA, 20, &o.u)) \
	H(svakit_iommu_attach_device_pasid, 0, svakit_iommu_attach_device_pasid(h, f->dev_plain, 6, f->mm2)) \
	H(svakit_iommu_detach_device_pasid, 0, svakit_iommu_detach_device_pasid(h, f->dev_plain, f->explicit_pasid)) \
	H(svakit_device_dma_read, 0, svakit_device_dma_read(h, f->dev_sva, f->pasid, UVA, o.buf, 8, 0, &o.fault)) \
	H(svakit_device_dma_write, 0, svakit_device_dma_write(h, f->dev_sva, f->pasid, UVA, o.buf, 8, 0, &o.fault)) \
	H(svakit_iommu_sva_bind_device, 0, svakit_iommu_sva_bind_device(h, f->dev_sva2, f->mm, &o.u)) \
	H(svakit_iommu_sva_unbind_device, 0, svakit_iommu_sva_unbind_device(h, f->bond))        \
	H(svakit_iommu_sva_get_pasid, 0, svakit_iommu_sva_get_pasid(h, f->bond, &o.u))          \
	H(svakit_iommu_sva_mm_count, 0, svakit_iommu_sva_mm_count(h, &o.u))                     \
	H(svakit_iommu_sva_invalidate_kva_range_slow, 1,                                        \
	  (svakit_iommu_sva_invalidate_kva_range_slow(h, f->vm_va, f->vm_va + SZ_4K), 0))       \
	H(svakit_pagetable_free_kernel, 0, svakit_pagetable_free_kernel(h, f->pte_tab))         \
	H(svakit_deferred_work_run, 0, svakit_deferred_work_run(h))                             \
	H(svakit_deferred_work_flush, 0, svakit_deferred_work_flush(h))                         \
	H(svakit_deferred_stats, 0, svakit_deferred_stats(h, &o.ds))                            \
	H(svakit_machine_set_free_hook, 0, svakit_machine_set_free_hook(h, NULL, NULL))         \
	H(svakit_iommu_domain_alloc, 0, svakit_iommu_domain_alloc(h, f->iommu, SVAKIT_DOMAIN_DMA, 0, &o.u)) \
	H(svakit_iommu_domain_free, 0, svakit_iommu_domain_free(h, f->dom))                     \
	H(svakit_iommu_attach_device, 0, svakit_iommu_attach_device(h, f->dom, f->dev_sva))     \
	H(svakit_iommu_detach_device, 0, svakit_iommu_detach_device(h, f->dev_dma))             \
	H(svakit_iommu_map, 0, svakit_iommu_map(h, f->dom, IOVA_FREE, 0, SZ_4K, SVAKIT_IOMMU_READ)) \
	H(svakit_iommu_unmap, 0, svakit_iommu_unmap(h, f->dom, IOVA_MAPPED, SZ_4K, &o.a))       \
	H(svakit_iommu_iova_to_phys, 0, svakit_iommu_iova_to_phys(h, f->dom, IOVA_MAPPED, &o.a)) \
	H(svakit_iommu_setup_default_domain, 0, svakit_iommu_setup_default_domain(h, f->dev_sva, 0, &o.u, &o.u)) \
	H(__svakit_iommu_debug_check_unmapped, 0, __svakit_iommu_debug_check_unmapped(h, f->data_pfn, 1)) \
	H(svakit_iommu_debug_map_count, 0, svakit_iommu_debug_map_count(h, f->data_pfn, &o.i32)) \
	H(svakit_iommu_debug_stats, 0, svakit_iommu_debug_stats(h, &o.dbg))                     \
	H(svakit_dma_set_mask, 0, svakit_dma_set_mask(h, f->dev_dma, 0xffffffffull))            \
	H(svakit_dma_get_mask, 0, svakit_dma_get_mask(h, f->dev_dma, &o.a))                     \
	H(svakit_device_set_bus_dma_limit, 0, svakit_device_set_bus_dma_limit(h, f->dev_dma, 0)) \
	H(svakit_dma_map_page, 0, svakit_dma_map_page(h, f->dev_dma, 0, SZ_4K, DMA_BIDI, 0, &o.a)) \
	H(svakit_dma_unmap_page, 0, svakit_dma_unmap_page(h, f->dev_dma, f->dma_live, SZ_4K, DMA_BIDI, 0)) \
	H(svakit_dma_map_sg, 0,                                                                 \
	  (o.sg[0] = (struct svakit_sg){ .phys = 0, .length = SZ_4K },                          \
	   svakit_dma_map_sg(h, f->dev_dma, o.sg, 1, DMA_BIDI, 0)))                             \
	H(svakit_dma_unmap_sg, 0, svakit_dma_unmap_sg(h, f->dev_dma, f->sg, 2, DMA_TODEV, 0))   \
	H(svakit_dma_alloc_coherent, 0, svakit_dma_alloc_coherent(h, f->dev_dma, SZ_4K, 0, &o.a, &o.b)) \
	H(svakit_dma_free_coherent, 0,                                                          \
	  svakit_dma_free_coherent(h, f->dev_dma, 2 * SZ_4K, f->coh_pfn, f->coh_dma, 0))        \
	H(svakit_dma_flush_queues, 0, svakit_dma_flush_queues(h))                               \
	H(svakit_dma_run_timers, 0, svakit_dma_run_timers(h, UINT64_MAX))                       \
	H(svakit_flush_queue_stats, 0, svakit_flush_queue_stats(h, f->dma_dom, &o.fqs))         \
	H(svakit_dma_map_benchmark, 0, mapbench(h, f->dev_dma, MB_NONE, 0))                     \
	H(svakit_vmalloc_area, 0, svakit_vmalloc_area(h, &o.a, &o.b))                           \
	H(svakit_vmalloc, 0, svakit_vmalloc(h, SZ_4K, &o.a))                                    \
	H(svakit_vmalloc_huge, 0, svakit_vmalloc_huge(h, SZ_2M, &o.a))                          \
	H(svakit_vfree, 0, svakit_vfree(h, f->vm_va))                                           \
	H(svakit_vm_unmap_aliases, 0, svakit_vm_unmap_aliases(h))                               \
	H(svakit_vmap_huge, 0, svakit_vmap_huge(h, f->vstart + (64ULL << 30), 0, SZ_2M, RW))    \
	H(svakit_vunmap, 0, svakit_vunmap(h, f->vm_va, SZ_4K))                                  \
	H(svakit_direct_map_va, 0, svakit_direct_map_va(h, 0, &o.a))                            \
	H(svakit_set_memory, 0, svakit_set_memory(h, f->dm_va, 1, 0, RW))                       \
	H(svakit_set_memory_rox, 0, svakit_set_memory_rox(h, f->dm_va, 1))                      \
	H(svakit_cpa_collapse_large_pages, 0, svakit_cpa_collapse_large_pages(h, f->dm_va))     \
	H(svakit_memory_hot_remove, 0, svakit_memory_hot_remove(h, 0, SECTION))                 \
	H(svakit_memory_hot_add, 0, svakit_memory_hot_add(h, 0, SECTION))                       \
	H(svakit_machine_set_tlb_flush_hook, 0, svakit_machine_set_tlb_flush_hook(h, NULL, NULL)) \
	H(svakit_flush_tlb_kernel_range, 0, svakit_flush_tlb_kernel_range(h, f->vm_va, f->vm_va + SZ_4K)) \
	H(svakit_machine_stats, 0, svakit_machine_stats(h, &o.st))                              \
	H(svakit_machine_counters, 0, svakit_machine_counters(h, &o.st))                        \
	H(svakit_machine_set_report_handler, 0, svakit_machine_set_report_handler(h, NULL, NULL)) \
	H(svakit_report_count, 0, svakit_report_count(h, &o.a))                                 \
	H(svakit_report_read, 0, svakit_report_read(h, 0, o.rep, 2))                            \
	H(svakit_report_text, 0, svakit_report_text(h, 0, o.text, sizeof(o.text)))              \
	H(svakit_machine_check, 0, svakit_machine_check(h))                                     \
	H(svakit_machine_check_text, 0, svakit_machine_check_text(h, o.text, sizeof(o.text)))   \
	H(svakit_fail_nth, 0, svakit_fail_nth(h, 0, NULL))                                      \
	H(svakit_fail_nth_injected, 0, svakit_fail_nth_injected(h, &o.u))                       \
	H(svakit_frame_info, 0, svakit_frame_info(h, f->data_pfn, &o.d))                        \
	H(svakit_frame_read, 0, svakit_frame_read(h, f->data_pfn, 0, o.buf, 8))                 \
	H(svakit_frame_write, 0, svakit_frame_write(h, f->data_pfn, 0, o.buf, 8))               \
	H(svakit_iommu_commands, 0, svakit_iommu_commands(h, f->iommu, &o.icmd))                \
	H(svakit_flush_queue_entries, 0, svakit_flush_queue_entries(h, f->dma_dom, o.fqe, 4, &o.n)) \
	H(svakit_event_read, 0, svakit_event_read(h, 0, o.ev, 2))                               \
	H(svakit_frame_history, 0, svakit_frame_history(h, f->data_pfn, o.ev, 2))

enum handle_kind { H_NULL, H_FOREIGN, H_FORGED, H_DESTROYED, H_KINDS };

struct handle_call {
	const char *fn;
	int is_void; /* returns nothing: a bad handle must be ignored */
	int (*call)(struct fx *f, svakit_machine *h);
};

#define DEFINE_HANDLE_CALL(fn, v, expr)                                          \
	static int hcall_##fn(struct fx *f, svakit_machine *h)                   \
	{                                                                        \
		struct scratch o;                                                \
		memset(&o, 0, sizeof(o));                                        \
		(void)f;                                                         \
		return (expr);                                                   \
	}
HANDLE_CALLS(DEFINE_HANDLE_CALL)

#define HANDLE_ROW(fn, v, expr) { #fn, v, hcall_##fn },
static const struct handle_call handle_calls[] = { HANDLE_CALLS(HANDLE_ROW) };

/* The handle under test, for the current row (the call functions take only
 * the fixture). */
static svakit_machine *current_handle;
static const struct handle_call *current_hcall;

static int call_with_handle(struct fx *f) { return current_hcall->call(f, current_handle); }

static svakit_machine *destroyed_machine(void)
{
	svakit_machine *m = new_machine(MIB_FRAMES(4), 4);
	svakit_machine_destroy(m);
	return m; /* a tombstone: what a caller holding a stale handle passes */
}

/* The magic of a live handle: private to the engine, so not in the header;
 * a forger copies it from a handle it has seen. */
static uint32_t live_magic(void)
{
	svakit_machine *m = new_machine(MIB_FRAMES(4), 4);
	uint32_t magic = m->magic;

	svakit_machine_destroy(m);
	return magic;
}

static void run_handle_cases(const char *fn)
{
	static const char *const what[H_KINDS] = {
		"NULL machine", "a foreign handle (magic 0)",
		"a forged handle (magic right, owner bogus)", "a destroyed machine",
	};
	static const int expect[H_KINDS] = { -EFAULT, -EBADF, -EBADF, -EBADF };
	/* Destroyed handles are tombstones and forged ones fail the
	 * handle's check (svakit.h, struct svakit_machine): no known failures. */
	static const char *const kf[H_KINDS] = { NULL, NULL, NULL, NULL };
	const struct handle_call *hc = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(handle_calls); i++)
		if (!strcmp(handle_calls[i].fn, fn))
			hc = &handle_calls[i];
	if (!hc)
		return;
	for (int k = 0; k < H_KINDS; k++) {
		struct bad_case c = {
			.id = "handle", .desc = what[k], .call = call_with_handle,
			.expect = hc->is_void ? 0 : expect[k], .kf = kf[k],
		};
		/* The handle lives outside the fixture run_case builds, so the
		 * forged and foreign ones are static and the dead one fresh. */
		static svakit_machine foreign, forged;
		static uint64_t bogus[64];

		foreign = (svakit_machine){ .magic = 0, .owner = NULL };
		forged = (svakit_machine){ .magic = live_magic(), .owner = bogus };
		current_hcall = hc;
		switch (k) {
		case H_NULL: current_handle = NULL; break;
		case H_FOREIGN: current_handle = &foreign; break;
		case H_FORGED: current_handle = &forged; break;
		default: current_handle = destroyed_machine(); break;
		}
		run_case(fn, &c);
	}
}

/* ------------------------------------------------------------------------ */
/* The tests                                                                */
/* ------------------------------------------------------------------------ */

#define DEFINE_CALL(id, expect, desc, opts, expr)                                \
	static int bad_##id(struct fx *f)                                        \
	{                                                                        \
		struct scratch o;                                                \
		memset(&o, 0, sizeof(o));                                        \
		(void)f;                                                         \
		(void)o;                                                         \
		return (expr);                                                   \
	}
#define TABLE_ROW(cid, exp, text, opts, expr) { .id = #cid, .desc = text, .call = bad_##cid, .expect = exp, opts },

static void run_function(const char *fn, const struct bad_case *cases)
{
	for (const struct bad_case *c = cases; c->desc; c++)
		run_case(fn, c);
	run_handle_cases(fn);
}

#define DEFINE_TEST(fn)                                                          \
	CASES_##fn(DEFINE_CALL)                                                  \
	static const struct bad_case cases_##fn[] = { CASES_##fn(TABLE_ROW){ .desc = NULL } }; \
	static void test_##fn(void **state)                                      \
	{                                                                        \
		(void)state;                                                     \
		run_function(#fn, cases_##fn);                                   \
	}
FUNCTIONS(DEFINE_TEST)

#define FUNCTION_NAME(fn) #fn,
static const char *const tested[] = { FUNCTIONS(FUNCTION_NAME) };

/* Every function svakit.h and svakit_debug.h declare has a table here, or is
 * exempt, and FUNCTIONS lists them in the headers' order: svakit.h's, in
 * layer order, then svakit_debug.h's (svakit_deprecated.h's aliases are
 * not the contract, and test_deprecated.c covers them). */
static void test_every_header_function_has_a_table(void **state)
{
	static const char *const starts[] = { "int svakit_", "void svakit_", "const char *svakit_",
					      "static inline int svakit_", "static inline void svakit_" };
	static const char *const headers[] = { SVAKIT_HEADER_PATH, SVAKIT_DEBUG_HEADER_PATH };
	char line[512];
	int declared = 0, missing = 0, next = 0, misplaced = 0;

	(void)state;
	for (size_t hi = 0; hi < ARRAY_SIZE(headers); hi++) {
		FILE *h = fopen(headers[hi], "r");

		assert_non_null(h);
		while (fgets(line, sizeof(line), h)) {
			const char *name = NULL;
			char fn[128];
			size_t len;
			int at = -1;
			bool found = false;

			for (size_t i = 0; i < ARRAY_SIZE(starts) && !name; i++)
				if (!strncmp(line, starts[i], strlen(starts[i])))
					name = line + strlen(starts[i]) - strlen("svakit_");
			if (!name)
				continue;
			len = strcspn(name, "(");
			if (name[len] != '(' || len >= sizeof(fn))
				continue;
			memcpy(fn, name, len);
			fn[len] = 0;
			declared++;
			for (size_t i = 0; i < ARRAY_SIZE(tested) && at < 0; i++)
				if (!strcmp(tested[i], fn))
					at = (int)i;
			for (size_t i = 0; i < ARRAY_SIZE(exempt) && !found; i++)
				found = !strcmp(exempt[i], fn);
			if (at < 0 && !found) {
				printf("%s declares %s, which has no bad-input table here\n", headers[hi], fn);
				missing++;
			} else if (at >= 0 && at != next++) {
				printf("%s: %s is at %d in FUNCTIONS, at %d in the headers' order\n", headers[hi], fn,
				       at, next - 1);
				misplaced++;
			}
		}
		fclose(h);
	}
	assert_true(declared >= (int)ARRAY_SIZE(tested));
	assert_int_equal(missing, 0);
	assert_int_equal(misplaced, 0);
	assert_int_equal(next, (int)ARRAY_SIZE(tested));
}

/* Last: the tally of known-failing rows. */
static void test_summary(void **state)
{
	(void)state;
	printf("bad input: %d rows, %d known-failing rows still fail, %d now pass%s\n", n_rows, n_known_failing,
	       n_now_passing,
	       strict_mode() ? " (SVAKIT_STRICT: none skipped)" : "; SVAKIT_STRICT=1 asserts them");
}

int main(void)
{
#define TEST_ENTRY(fn) cmocka_unit_test(test_##fn),
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_header_function_has_a_table),
		FUNCTIONS(TEST_ENTRY)
		cmocka_unit_test(test_summary),
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
