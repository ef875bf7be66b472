/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svakit.h - the C ABI of SVAKit, a userspace model of how Linux stops DMA
 * use-after-free through IOMMUs that share the CPU's page tables (SVA).
 *
 * This hand-written header is the contract. The Swift core implements every
 * function declared here with `@c @implementation`, so the compiler checks each
 * definition against the prototype below.
 *
 * Conventions (kernel style):
 *   - every function that can fail returns 0 or a negative errno;
 *   - outputs go through pointer arguments, which may not be NULL;
 *   - a machine handle is created by svakit_machine_create() and released by
 *     svakit_machine_destroy(); two machines in one process share nothing.
 *
 * Errors (each names one kind of bad input; the machine is left unchanged):
 *   -EFAULT    a NULL handle or NULL output pointer
 *   -EBADF     a handle that is not a live SVAKit machine (foreign, forged or
 *              destroyed: a destroyed handle stays a readable tombstone)
 *   -ERANGE    a frame number past the end of memory, or a non-canonical address
 *   -EINVAL    an unaligned address/size, a bad flag, level or order, an
 *              address in the wrong half, a partial unmap of a huge leaf, a
 *              reserved config field not zero or a boolean not 0/1, an entry
 *              the hardware would reject (PS where no huge page can be,
 *              reserved bits 52-62), a PASID past 20 bits in a command, init_mm
 *              given to attach_pasid or bind
 *   -EEXIST    mapping over a live mapping or over an existing page table
 *   -ENOENT    nothing there: no mapping (unmap, translate), no vmalloc area,
 *              no table under the entry (unlink), a range already offline
 *              (hot-remove), no such report
 *   -EALREADY  double free: the frame was allocated once and is free now, or
 *              a table already on the deferred-free list
 *   -ENXIO     freeing a frame that is not the head of an allocated block
 *              (never allocated, offline, or the tail of a larger block)
 *   -EPERM     freeing a frame through the wrong API (a page table through
 *              svakit_frame_free, data through pagetable_free, a root table);
 *              linking, unlinking or writing a root's kernel-half entries
 *              (init_mm's, which every mm copies) or a queued table
 *   -EBUSY     freeing a table that is still linked into a live entry, a huge
 *              vmap over a table that still maps pages, hot-removing a range
 *              that holds allocated frames (hot-adding an online one), a
 *              device-PASID attached to another mm, destroying a bound mm,
 *              pagetable_free of a table that still points at tables
 *   -ESRCH     an unknown address-space (mm) id
 *   -ENOMEM    the simulated physical memory is exhausted (a vmalloc larger
 *              than memory, or a map whose tables cannot all be allocated,
 *              fails before changing anything)
 *   -ENOSPC    the vmalloc area or the PASID space is exhausted
 *   -ENODEV    an unknown IOMMU or device id
 *   -EOPNOTSUPP binding a device that does not support SVA
 *   -EOVERFLOW a PASID wider than the device supports (bind, attach, DMA)
 *   -ESTALE    an unknown or already released SVA handle
 */
#ifndef SVAKIT_H
#define SVAKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The package version; CMake reads these lines, Swift checks them in a test. */
#define SVAKIT_VERSION_MAJOR 0
#define SVAKIT_VERSION_MINOR 1
#define SVAKIT_VERSION_PATCH 0
#define SVAKIT_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Physical memory                                                          */
/* ------------------------------------------------------------------------ */

#define SVAKIT_PAGE_SHIFT 12
#define SVAKIT_PAGE_SIZE (1ULL << SVAKIT_PAGE_SHIFT)
#define SVAKIT_PMD_SIZE (1ULL << 21)
#define SVAKIT_PUD_SIZE (1ULL << 30)
#define SVAKIT_MAX_ORDER 10              /* as MAX_PAGE_ORDER on x86 */
#define SVAKIT_SECTION_PAGES (1U << 15)  /* 128 MiB hotplug section, x86-64 */
#define SVAKIT_NO_PFN 0xffffffffU

/* What a frame is now (svakit_ptdesc.kind). */
enum svakit_frame_kind {
	SVAKIT_FRAME_FREE = 0,
	SVAKIT_FRAME_PT_KERNEL = 1,  /* a table of init_mm (the shared kernel half) */
	SVAKIT_FRAME_PT_USER = 2,    /* a table of a process address space */
	SVAKIT_FRAME_DATA = 3,       /* data, tagged with an owner */
	SVAKIT_FRAME_OFFLINE = 4,    /* hot-removed memory */
};

/* svakit_ptdesc.flags */
#define SVAKIT_PTDESC_KERNEL  0x01u /* PT_kernel mark: free through pagetable_free_kernel() */
#define SVAKIT_PTDESC_BOOTMEM 0x02u /* allocated at boot (PageReserved on x86) */
#define SVAKIT_PTDESC_TAIL    0x04u /* a non-head frame of a multi-frame block */
#define SVAKIT_PTDESC_LINKED  0x08u /* a table that a live entry points to */
#define SVAKIT_PTDESC_DEFERRED 0x10u /* queued on the deferred-free list */
#define SVAKIT_PTDESC_SPLIT   0x20u /* a PTE table that set_memory split allocated */
#define SVAKIT_PTDESC_ROOT    0x40u /* the root (PGD) of an address space */

/*
 * The page descriptor of one frame: 32 bytes, checked at compile time in
 * Sources/CSVAKit/abi_checks.c and by the Swift tests. The allocator links free
 * blocks through lru_next/lru_prev; the deferred-free list uses its own link,
 * pt_list_next (docs/KERNEL-MODEL.md §2.8: "don't use page->lru").
 */
struct svakit_ptdesc {
	uint8_t kind;          /* enum svakit_frame_kind */
	uint8_t level;         /* table level, 1 (PTE) .. 5 (PML5); 0 otherwise */
	uint8_t order;         /* order of the block this frame heads */
	uint8_t flags;         /* SVAKIT_PTDESC_* */
	uint16_t site;         /* enum svakit_site of the last allocation */
	uint16_t owner;        /* owner tag of a data frame */
	uint32_t generation;   /* changes at every free */
	uint32_t alloc_step;   /* event step (low 32 bits) of the last allocation */
	uint32_t lru_next;     /* allocator free-list link, SVAKIT_NO_PFN at ends */
	uint32_t lru_prev;
	uint32_t pt_list_next; /* deferred-free list link */
	int32_t map_count;     /* IOMMU_DEBUG_PAGEALLOC mapping refcount slot */
};

/* Frame reuse policy of the allocator (per machine). */
enum svakit_reuse {
	SVAKIT_REUSE_LIFO = 0,   /* most recently freed first: the adversary's case */
	SVAKIT_REUSE_FIFO = 1,
	SVAKIT_REUSE_RANDOM = 2, /* seeded by svakit_config.seed */
};

/* Who allocated a frame, and which path freed it (events and ptdesc.site). */
enum svakit_site {
	SVAKIT_SITE_NONE = 0,
	SVAKIT_SITE_BOOT = 1,               /* boot-time tables: direct map, kernel half */
	SVAKIT_SITE_API = 2,                /* svakit_frame_alloc/free by the caller */
	SVAKIT_SITE_MAP = 3,                /* a table allocated by svakit_map */
	SVAKIT_SITE_UNMAP = 4,
	SVAKIT_SITE_VMALLOC = 5,
	SVAKIT_SITE_VFREE = 6,
	SVAKIT_SITE_PMD_FREE_PTE_PAGE = 7,  /* huge vmap over a PTE table */
	SVAKIT_SITE_PUD_FREE_PMD_PAGE = 8,  /* huge vmap over a PMD table */
	SVAKIT_SITE_SET_MEMORY_SPLIT = 9,
	SVAKIT_SITE_SET_MEMORY_COLLAPSE = 10,
	SVAKIT_SITE_HOT_REMOVE = 11,
	SVAKIT_SITE_HOT_ADD = 12,
	SVAKIT_SITE_MM_CREATE = 13,
	SVAKIT_SITE_MM_TEARDOWN = 14,
	SVAKIT_SITE_PGTABLE_WORK = 15,      /* kernel_pgtable_work_func: the deferred free */
	SVAKIT_SITE_ARCH = 16,              /* a caller's own arch code through the primitives */
	SVAKIT_SITE_COUNT
};

/* ------------------------------------------------------------------------ */
/* x86-64 page-table entries                                                */
/* ------------------------------------------------------------------------ */

#define SVAKIT_PTE_P   (1ULL << 0)   /* present */
#define SVAKIT_PTE_RW  (1ULL << 1)   /* writable */
#define SVAKIT_PTE_US  (1ULL << 2)   /* user */
#define SVAKIT_PTE_PWT (1ULL << 3)
#define SVAKIT_PTE_PCD (1ULL << 4)
#define SVAKIT_PTE_A   (1ULL << 5)   /* accessed */
#define SVAKIT_PTE_D   (1ULL << 6)   /* dirty */
#define SVAKIT_PTE_PS  (1ULL << 7)   /* page size: a leaf at level 2 or 3 */
#define SVAKIT_PTE_G   (1ULL << 8)   /* global */
#define SVAKIT_PTE_NX  (1ULL << 63)  /* no execute */
#define SVAKIT_PTE_PFN_MASK 0x000ffffffffff000ULL
/* The protection bits a caller may pass to svakit_map and svakit_set_memory. */
#define SVAKIT_PROT_MASK (SVAKIT_PTE_RW | SVAKIT_PTE_US | SVAKIT_PTE_PWT | \
			  SVAKIT_PTE_PCD | SVAKIT_PTE_G | SVAKIT_PTE_NX)

/* Address space ids: 0 is init_mm, whose tables are the shared kernel half. */
#define SVAKIT_INIT_MM 0u

/* Result of a software walk (svakit_translate). */
struct svakit_translation {
	uint64_t phys;        /* physical address of va (valid when 0 is returned) */
	uint64_t page_size;   /* 4 KiB, 2 MiB or 1 GiB */
	uint64_t entry;       /* the leaf entry */
	uint32_t level;       /* level of the leaf (1, 2 or 3); on -ENOENT, the level
			       * whose entry was not present */
	uint32_t reserved;
};

/* ------------------------------------------------------------------------ */
/* The machine                                                              */
/* ------------------------------------------------------------------------ */

/* Who invalidates IOMMUs for kernel addresses (the defence under test). */
enum svakit_kva_invalidation {
	SVAKIT_KVA_INV_NONE = 0,     /* the unfixed kernel: nobody does */
	SVAKIT_KVA_INV_ON_FLUSH = 1, /* v1 of the series: flush_tlb_kernel_range
				      * calls iommu_sva_invalidate_kva_range */
};

/* How kernel page-table frames are freed (the fix under test, docs/KERNEL-MODEL.md §2). */
enum svakit_free_mode {
	SVAKIT_FREE_IMMEDIATE = 0,  /* the unfixed kernel: free at once, no IOMMU
				     * invalidation */
	SVAKIT_FREE_LINUX_6_19 = 1, /* the merged series: tables marked PT_kernel
				     * (generic pgalloc) are deferred; set_memory
				     * split tables, boot-time and hot-added
				     * direct-map tables free at once (its holes) */
	SVAKIT_FREE_COMPLETE = 2,   /* every kernel table deferred */
};

/* Who runs the deferred-free work. */
enum svakit_work_mode {
	SVAKIT_WORK_THREAD = 0,     /* a background worker thread (default) */
	SVAKIT_WORK_MANUAL = 1,     /* the caller runs it (svakit_run_deferred_work):
				     * deterministic, for tests and the CLI */
};

struct svakit_config {
	uint64_t frames;             /* 4 KiB frames; default 4 Mi (16 GiB) */
	uint64_t seed;               /* for SVAKIT_REUSE_RANDOM */
	uint32_t paging_levels;      /* 4 (default) or 5 */
	uint32_t reuse_policy;       /* enum svakit_reuse; default LIFO */
	uint32_t event_log_capacity; /* ring size in events; default 65536 */
	uint32_t kva_invalidation;   /* enum svakit_kva_invalidation; default NONE */
	uint32_t pasid_bits;         /* machine-wide PASID space 1 .. 2^bits - 1; default 20 */
	uint32_t report_log_capacity;/* use-after-free reports kept; default 256 */
	uint32_t free_mode;          /* enum svakit_free_mode; default IMMEDIATE */
	uint32_t work_mode;          /* enum svakit_work_mode; default THREAD */
	uint32_t max_pending;        /* deferred frames past which the freeing caller
				      * runs the work itself; default 4096 */
	uint32_t reserved;
};

/*
 * The handle. Only the first fields are public: the static-inline fast paths
 * in this header read them without a call. Everything else is private to the
 * Swift core, reached through `owner`.
 */
typedef struct svakit_machine {
	uint32_t magic;              /* SVAKIT_MACHINE_MAGIC while the machine lives */
	int32_t iommu_sva_present;   /* the static key: nonzero iff an IOMMU may walk
				      * an mm's tables (SVA bond or PASID attach);
				      * read only with __atomic builtins */
	void *owner;                 /* private */
	uint64_t check;              /* private: ties owner to this handle */
} svakit_machine;

#define SVAKIT_MACHINE_MAGIC 0x53564b4du /* "SVKM" */
/* A destroyed machine's handle stays readable as a tombstone with this magic:
 * every function given it returns -EBADF (the inline gate reads a key of 0).
 * Handles forged by hand fail the private check and get -EBADF too; only a
 * byte-for-byte copy of a handle is undefined once its machine is gone. */
#define SVAKIT_MACHINE_DEAD 0x44454144u  /* "DEAD" */

/* Fills *cfg with the embedded default configuration. */
void svakit_config_default(struct svakit_config *cfg);

/* Creates a machine: boots the kernel half and the 2 MiB direct map of all
 * memory. -EINVAL for a bad configuration, -ENOMEM if memory cannot hold it. */
int svakit_machine_create(const struct svakit_config *cfg, svakit_machine **out);
/* Destroys a machine created by svakit_machine_create; NULL is ignored. */
void svakit_machine_destroy(svakit_machine *m);

const char *svakit_version(void);
/* A short, static description of a negative errno returned by SVAKit. */
const char *svakit_strerror(int err);

struct svakit_stats {
	uint64_t frames;             /* total frames */
	uint64_t frames_free;
	uint64_t frames_offline;
	uint64_t kernel_tables;      /* frames holding kernel page tables */
	uint64_t user_tables;
	uint64_t data_frames;
	uint64_t allocs;             /* frame allocations since boot */
	uint64_t frees;
	uint64_t kernel_tlb_flushes; /* flush_tlb_kernel_range + flush_tlb_all calls */
	uint64_t metadata_bytes_per_frame;
	uint64_t host_bytes_resident;/* host memory the frame contents occupy now */
	uint64_t step;               /* the event clock */
};
int svakit_machine_stats(svakit_machine *m, struct svakit_stats *out);

/* Audits every descriptor, free list and table link (O(frames), for tests):
 * 0 when consistent, -EUCLEAN otherwise (the problems go to stderr). */
int svakit_machine_check(svakit_machine *m);

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */
/* ------------------------------------------------------------------------ */

/* Allocates 2^order contiguous data frames tagged with owner. */
int svakit_frame_alloc(svakit_machine *m, unsigned int order, uint16_t owner,
		       uint64_t *pfn);
/* Frees a block allocated by svakit_frame_alloc (not a page table). */
int svakit_frame_free(svakit_machine *m, uint64_t pfn);
/* A copy of the frame's descriptor. */
int svakit_frame_info(svakit_machine *m, uint64_t pfn, struct svakit_ptdesc *out);
/* Byte access to a frame's contents; offset + len must stay in the frame.
 * Writing into a live page table is -EPERM: tables change through the mapping
 * calls and svakit_write_entry / svakit_link_table, which keep them valid. */
int svakit_frame_read(svakit_machine *m, uint64_t pfn, uint32_t offset,
		      void *buf, size_t len);
int svakit_frame_write(svakit_machine *m, uint64_t pfn, uint32_t offset,
		       const void *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Page tables                                                              */
/* ------------------------------------------------------------------------ */

/* A new address space: a user root whose kernel half points at the shared
 * kernel tables, as every x86 mm does. */
int svakit_mm_create(svakit_machine *m, uint32_t *mm);
/* Tears down an mm: frees its user mappings' tables and its root. */
int svakit_mm_destroy(svakit_machine *m, uint32_t mm);
/* The root table (CR3 / PASID-table pointer) of an mm. */
int svakit_mm_root(svakit_machine *m, uint32_t mm, uint64_t *root_pfn);

/*
 * Maps [va, va + size) to phys with a single leaf of that size (4 KiB, 2 MiB
 * or 1 GiB); prot is a subset of SVAKIT_PROT_MASK. Kernel addresses are mapped
 * through SVAKIT_INIT_MM, user addresses through a process mm. Missing tables
 * are allocated; existing tables are never replaced (-EEXIST).
 */
int svakit_map(svakit_machine *m, uint32_t mm, uint64_t va, uint64_t phys,
	       uint64_t size, uint64_t prot);
/* Clears the leaf that maps exactly [va, va + size). Tables stay, as vunmap
 * leaves them in Linux. */
int svakit_unmap(svakit_machine *m, uint32_t mm, uint64_t va, uint64_t size);
/* A software walk: 0 and *out on a mapping, -ENOENT (out->level says where)
 * when none. */
int svakit_translate(svakit_machine *m, uint32_t mm, uint64_t va,
		     struct svakit_translation *out);

/* ------------------------------------------------------------------------ */
/* Kernel paths that free kernel page-table frames (docs/KERNEL-MODEL.md §2.7)      */
/* ------------------------------------------------------------------------ */

/* The vmalloc area of the configured paging mode. */
int svakit_vmalloc_area(svakit_machine *m, uint64_t *start, uint64_t *end);
/* vmalloc: a virtual range (first fit, lowest address) backed by fresh data
 * frames mapped with 4 KiB leaves. size is a multiple of 4 KiB. */
int svakit_vmalloc(svakit_machine *m, uint64_t size, uint64_t *va);
/* vmalloc_huge: 2 MiB aligned, mapped with 2 MiB leaves; a stale PTE table
 * under a 2 MiB slot is freed through pmd_free_pte_page. */
int svakit_vmalloc_huge(svakit_machine *m, uint64_t size, uint64_t *va);
/* vfree: clears the leaves (the tables stay), flushes, frees the data. */
int svakit_vfree(svakit_machine *m, uint64_t va);
/*
 * ioremap-style huge mapping of phys at a caller-chosen kernel va (vmap_range
 * with huge pages): a 1 GiB leaf replaces a PMD table through
 * pud_free_pmd_page, a 2 MiB leaf a PTE table through pmd_free_pte_page.
 * size must be 2 MiB or 1 GiB and va, phys aligned to it.
 */
int svakit_vmap_huge(svakit_machine *m, uint64_t va, uint64_t phys,
		     uint64_t size, uint64_t prot);
/* Clears the leaves of [va, va + size) in the kernel half; tables stay. */
int svakit_vunmap(svakit_machine *m, uint64_t va, uint64_t size);

/* The direct-map address of a physical address (page_offset_base + pa). */
int svakit_direct_map_va(svakit_machine *m, uint64_t phys, uint64_t *va);
/*
 * set_memory on the direct map: sets and clears protection bits on npages
 * pages from va, splitting 2 MiB leaves into a PTE table as needed.
 */
int svakit_set_memory(svakit_machine *m, uint64_t va, uint64_t npages,
		      uint64_t set, uint64_t clear);
/* cpa_collapse_large_pages for the 2 MiB region holding va: when its 512 PTEs
 * are contiguous with equal protections, the PTE table is replaced by a 2 MiB
 * leaf and freed. Returns 1 when it collapsed, 0 when it could not. */
int svakit_cpa_collapse(svakit_machine *m, uint64_t va);
/* Memory hot-remove / hot-add of whole sections: remove_pagetable frees the
 * direct-map tables the range empties, boot-time ones included; the frames
 * go offline. All frames of the range must be free (-EBUSY). */
int svakit_memory_hot_remove(svakit_machine *m, uint64_t pfn, uint64_t nr_pages);
int svakit_memory_hot_add(svakit_machine *m, uint64_t pfn, uint64_t nr_pages);

/*
 * The CPU TLB flush hook: flush_tlb_kernel_range(start, end) and flush_tlb_all
 * (start 0, end UINT64_MAX) call it after the entry is cleared and before the
 * table is freed. It runs without the machine's lock held.
 */
typedef void (*svakit_tlb_flush_fn)(void *ctx, uint64_t start, uint64_t end);
int svakit_set_tlb_flush_hook(svakit_machine *m, svakit_tlb_flush_fn fn, void *ctx);
int svakit_flush_tlb_kernel_range(svakit_machine *m, uint64_t start, uint64_t end);

/* ------------------------------------------------------------------------ */
/* IOMMUs and devices                                                       */
/* ------------------------------------------------------------------------ */

enum svakit_iommu_caching {
	SVAKIT_CACHING_NONE = 0,      /* walk from the PASID table every time */
	SVAKIT_CACHING_LEAF_ONLY = 1, /* IOTLB of leaf translations only */
	SVAKIT_CACHING_FULL = 2,      /* IOTLB + paging-structure caches per level */
};

enum svakit_replacement {
	SVAKIT_REPLACE_LRU = 0,
	SVAKIT_REPLACE_FIFO = 1,
	SVAKIT_REPLACE_RANDOM = 2,
};

struct svakit_iommu_config {
	uint32_t caching;       /* enum svakit_iommu_caching; default FULL */
	uint32_t replacement;   /* enum svakit_replacement; default LRU */
	uint32_t iotlb_sets, iotlb_ways; /* sets a power of two; default 64 x 4 */
	uint32_t psc_sets, psc_ways;     /* each level; default 8 x 4 */
	uint32_t sets_accessed_dirty;    /* the walker writes A/D bits; default 1 */
	uint32_t reserved;
	uint64_t seed;          /* for SVAKIT_REPLACE_RANDOM */
};

struct svakit_iommu_counters {
	uint64_t walks, iotlb_hits, full_walks, faults;
	uint64_t psc_hits[6];   /* by level: [2] PDE, [3] PDPTE, [4] PML4E, [5] PML5E */
	uint64_t range_invalidations, leaf_range_invalidations;
	uint64_t pasid_invalidations, global_invalidations;
	uint64_t entries_dropped, fences, accessed_dirty_writes;
};

void svakit_iommu_config_default(struct svakit_iommu_config *cfg);
int svakit_iommu_create(svakit_machine *m, const struct svakit_iommu_config *cfg, uint32_t *iommu);
int svakit_iommu_counters(svakit_machine *m, uint32_t iommu, struct svakit_iommu_counters *out);
/* Invalidation commands; end is inclusive. leaf_only is the VT-d IH / SMMUv3
 * LEAF hint: paging-structure entries may stay. */
int svakit_iommu_invalidate_range(svakit_machine *m, uint32_t iommu, uint32_t pasid,
				  uint64_t start, uint64_t end, int leaf_only);
int svakit_iommu_invalidate_pasid(svakit_machine *m, uint32_t iommu, uint32_t pasid);
int svakit_iommu_invalidate_all(svakit_machine *m, uint32_t iommu);
/* Completes the walks in flight (an invalidation wait / CMD_SYNC). */
int svakit_iommu_fence(svakit_machine *m, uint32_t iommu);

#define SVAKIT_DEV_SVA 0x1u /* the device can do SVA (PASID, PRI, ATS) */

/* A device behind an IOMMU, with PASIDs 1 .. 2^pasid_bits - 1. */
int svakit_device_create(svakit_machine *m, uint32_t iommu, uint32_t flags,
			 uint32_t pasid_bits, uint32_t *dev);
/* A non-SVA attachment of mm's tables at a PASID the caller picks (as iommufd
 * lets a VMM do); an SVA bind whose PASID collides gets -EBUSY. The IOMMU can
 * walk the mm's kernel half through it, so it turns the static key on and the
 * kernel-address invalidation reaches it like an SVA domain. */
int svakit_device_attach_pasid(svakit_machine *m, uint32_t dev, uint32_t pasid, uint32_t mm);
int svakit_device_detach_pasid(svakit_machine *m, uint32_t dev, uint32_t pasid);

/* ------------------------------------------------------------------------ */
/* SVA (docs/KERNEL-MODEL.md §1.4-1.6)                                              */
/* ------------------------------------------------------------------------ */

/*
 * iommu_sva_bind_device: binds dev to mm. The mm gets one PASID for its whole
 * life; one SVA domain per (mm, IOMMU) is shared by the devices behind that
 * IOMMU; binding the same (dev, mm) again returns the same handle with its
 * count raised. The first bond of any mm turns iommu_sva_present on.
 */
int svakit_iommu_sva_bind_device(svakit_machine *m, uint32_t dev, uint32_t mm, uint32_t *handle);
/* Drops one reference; the last one detaches, frees the domain with its last
 * user, and turns the key off with the last SVA mm. */
int svakit_iommu_sva_unbind_device(svakit_machine *m, uint32_t handle);
int svakit_iommu_sva_get_pasid(svakit_machine *m, uint32_t handle, uint32_t *pasid);
/* Number of mms on the SVA list (iommu_sva_mms). */
int svakit_iommu_sva_mm_count(svakit_machine *m, uint32_t *count);

/* The out-of-line slow path: invalidates [start, end] (non-leaf entries
 * included) for every SVA mm's PASID on every IOMMU it is bound to, then
 * fences. Takes no global lock. Call it through the inline gate below. */
void svakit_iommu_sva_invalidate_kva_range_slow(svakit_machine *m, uint64_t start, uint64_t end);

/* The static key: a relaxed load, no call (docs/KERNEL-MODEL.md §1.8: the branch
 * belongs in an inline wrapper guarding the call). m must be a live machine. */
static inline int svakit_iommu_sva_present(const svakit_machine *m)
{
	return __atomic_load_n(&m->iommu_sva_present, __ATOMIC_RELAXED);
}

/* The gate: costs one load and a not-taken branch while no mm has SVA. */
static inline void svakit_iommu_sva_invalidate_kva_range(svakit_machine *m, uint64_t start, uint64_t end)
{
	if (__builtin_expect(svakit_iommu_sva_present(m), 0))
		svakit_iommu_sva_invalidate_kva_range_slow(m, start, end);
}

#ifndef SVAKIT_NO_KERNEL_NAMES
#define iommu_sva_bind_device svakit_iommu_sva_bind_device
#define iommu_sva_unbind_device svakit_iommu_sva_unbind_device
#define iommu_sva_get_pasid svakit_iommu_sva_get_pasid
#define iommu_sva_invalidate_kva_range svakit_iommu_sva_invalidate_kva_range
#endif

/* ------------------------------------------------------------------------ */
/* DMA                                                                      */
/* ------------------------------------------------------------------------ */

#define SVAKIT_DMA_WRITE 0x1u /* (dma_write sets it itself) */
#define SVAKIT_DMA_PRIV  0x2u /* a supervisor request; SVA devices make user ones */
#define SVAKIT_DMA_FAULTED 1  /* returned when the translation faulted */

enum svakit_fault_reason {
	SVAKIT_FAULT_NOT_PRESENT = 1,
	SVAKIT_FAULT_PRIVILEGE = 2,   /* a user request met U/S = 0 (level >= 1), or a
				       * supervisor request through a PASID entry that
				       * does not enable them: every SVA and attach
				       * PASID (level 0) */
	SVAKIT_FAULT_WRITE = 3,
	SVAKIT_FAULT_NO_PASID = 4,
	SVAKIT_FAULT_BAD_ADDRESS = 5,
};

struct svakit_dma_fault {
	uint32_t reason;   /* enum svakit_fault_reason */
	uint32_t level;    /* level of the entry that faulted */
	uint64_t address;
};

/* A device reads or writes len bytes at (pasid, va) through its IOMMU.
 * Returns 0, SVAKIT_DMA_FAULTED (and *fault, which may be NULL) when a
 * translation faulted, or a negative errno for bad input. */
int svakit_dma_read(svakit_machine *m, uint32_t dev, uint32_t pasid, uint64_t va,
		    void *buf, size_t len, uint32_t flags, struct svakit_dma_fault *fault);
int svakit_dma_write(svakit_machine *m, uint32_t dev, uint32_t pasid, uint64_t va,
		     const void *buf, size_t len, uint32_t flags, struct svakit_dma_fault *fault);

/* ------------------------------------------------------------------------ */
/* The walk oracle's reports                                                */
/* ------------------------------------------------------------------------ */

/* A DMA use-after-free: a walk read or wrote a frame that was not what the
 * cache entry (or live entry) that led there believed it was. */
struct svakit_uaf_report {
	uint64_t step;              /* event clock of the walk */
	uint64_t va;
	uint64_t escalation_phys;   /* where the stale walk translated to */
	uint64_t freed_step;        /* when the frame was last freed; UINT64_MAX unknown */
	uint64_t realloc_step;      /* when it was allocated again; UINT64_MAX if not */
	uint32_t device, pasid, iommu;
	uint32_t frame;             /* the frame the walk should not have reached */
	uint32_t expected_generation; /* UINT32_MAX when only kind/level were believed */
	uint32_t found_generation;
	uint32_t corrupted_frame;   /* where A/D bits were written; SVAKIT_NO_PFN if none */
	uint16_t freed_by;          /* enum svakit_site of the free */
	uint16_t realloc_site;      /* enum svakit_site of the new allocation */
	uint16_t realloc_owner;
	uint8_t stale_level;        /* the cache level whose entry led there (2 = PDE,
				     * 3 = PDPTE, ...); 0 = a live entry */
	uint8_t expected_level;
	uint8_t found_kind;         /* enum svakit_frame_kind now */
	uint8_t found_level;
	uint8_t escalation;         /* the walk translated through the stale frame */
	uint8_t corruption;         /* the walker wrote A/D bits into it */
};

/* Called for every report, after the walk, with no lock held. */
typedef void (*svakit_report_fn)(void *ctx, const struct svakit_uaf_report *r, const char *text);
int svakit_set_report_handler(svakit_machine *m, svakit_report_fn fn, void *ctx);
/* Reports ever made (the log keeps the newest report_log_capacity). */
int svakit_report_count(svakit_machine *m, uint64_t *total);
/* Copies up to cap reports with index >= first, oldest first; returns how many. */
int svakit_reports(svakit_machine *m, uint64_t first, struct svakit_uaf_report *out, size_t cap);
/* The kernel-style text of report `index` into buf (NUL-terminated, truncated). */
int svakit_report_text(svakit_machine *m, uint64_t index, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Deferred freeing of kernel page tables and the primitives of a kernel-   */
/* style arch (docs/KERNEL-MODEL.md §2)                                             */
/* ------------------------------------------------------------------------ */

/* A zeroed kernel page-table frame for `level` (1 = PTE .. 4/5), marked
 * PT_kernel as the generic pgalloc helpers mark init_mm's tables; unlinked. */
int svakit_pagetable_alloc_kernel(svakit_machine *m, unsigned int level, uint64_t *pfn);
/* Entry `index` of the table in `table_pfn`. */
int svakit_read_entry(svakit_machine *m, uint64_t table_pfn, unsigned int index, uint64_t *entry);
/* Writes a leaf or clears an entry (set_pte, pte_clear). A table pointer
 * must go through svakit_link_table (-EINVAL), and an entry that points to a
 * table through svakit_unlink_table (-EBUSY). */
int svakit_write_entry(svakit_machine *m, uint64_t table_pfn, unsigned int index, uint64_t entry);
/* pmd_populate and friends: points entry `index` of `parent_pfn` at the
 * unlinked table `child_pfn` one level down. */
int svakit_link_table(svakit_machine *m, uint64_t parent_pfn, unsigned int index, uint64_t child_pfn);
/* pmd_clear and friends: clears the entry and returns the table it pointed
 * to (page_ptdesc(pmd_page(*pmd)): the table the entry POINTS TO). */
int svakit_unlink_table(svakit_machine *m, uint64_t parent_pfn, unsigned int index, uint64_t *child_pfn);

/* pagetable_free(): an unlinked kernel table goes to the deferred list when
 * the machine's free mode says so (PT_kernel-marked under linux-6.19, every
 * kernel table under complete), any other table back to the allocator.
 * -EBUSY for a table still linked (freeing the table that HOLDS an entry:
 * the v6 bug), -EPERM for data or a root, -EALREADY for a queued table. */
int svakit_pagetable_free(svakit_machine *m, uint64_t pfn);
/* pagetable_free_kernel(): queue an unlinked kernel table (frees at once in
 * the immediate mode, as with CONFIG_ASYNC_KERNEL_PGTABLE_FREE off). */
int svakit_pagetable_free_kernel(svakit_machine *m, uint64_t pfn);
/* Runs the pending work now (the deterministic mode's kworker). */
int svakit_run_deferred_work(svakit_machine *m);
/* flush_work(): returns when everything queued before the call is freed. */
int svakit_flush_deferred_work(svakit_machine *m);

struct svakit_deferred_stats {
	uint64_t pending;        /* frames on the list now */
	uint64_t frames_deferred;/* ever queued */
	uint64_t batches;        /* runs of the work that freed something */
	uint64_t largest_batch;
	uint64_t peak_pending;
	uint64_t invalidations;  /* gated invalidations the work issued */
};
int svakit_deferred_stats(svakit_machine *m, struct svakit_deferred_stats *out);

/* Called when a page-table frame returns to the allocator, after it is back
 * on the free lists, with no engine lock held (it may call into the machine).
 * It runs on the thread that freed the frame: the deferred-free worker for
 * deferred frames. */
typedef void (*svakit_free_fn)(void *ctx, uint64_t pfn, unsigned int level, unsigned int site);
int svakit_set_free_hook(svakit_machine *m, svakit_free_fn fn, void *ctx);

/* A C IOMMU driver: receives every invalidation command the built-in model
 * of that IOMMU receives, after the model has applied it, with no lock held.
 * end is inclusive. Any callback may be NULL. */
struct svakit_iommu_driver_ops {
	void (*invalidate_range)(void *ctx, uint32_t pasid, uint64_t start, uint64_t end, int leaf_only);
	void (*invalidate_pasid)(void *ctx, uint32_t pasid);
	void (*invalidate_all)(void *ctx);
	void (*fence)(void *ctx);
};
/* Attaches (ops != NULL) or detaches a driver; ops is copied. */
int svakit_iommu_set_driver(svakit_machine *m, uint32_t iommu, const struct svakit_iommu_driver_ops *ops,
			    void *ctx);

#ifndef SVAKIT_NO_KERNEL_NAMES
#define pagetable_free svakit_pagetable_free
#define pagetable_free_kernel svakit_pagetable_free_kernel
#define flush_tlb_kernel_range svakit_flush_tlb_kernel_range
#endif

/* ------------------------------------------------------------------------ */
/* Event log                                                                */
/* ------------------------------------------------------------------------ */

enum svakit_event_type {
	SVAKIT_EV_FRAME_ALLOC = 1,
	SVAKIT_EV_FRAME_FREE = 2,
	SVAKIT_EV_TABLE_LINK = 3,    /* a table linked under an entry */
	SVAKIT_EV_TABLE_UNLINK = 4,  /* the entry pointing at a table cleared */
	SVAKIT_EV_TLB_FLUSH = 5,     /* va..aux, aux = UINT64_MAX for flush_tlb_all */
	SVAKIT_EV_HOT_REMOVE = 6,
	SVAKIT_EV_HOT_ADD = 7,
	SVAKIT_EV_DEFER_QUEUE = 8,   /* pagetable_free_kernel queued pfn */
	SVAKIT_EV_DEFER_BATCH = 9,   /* the work took aux frames off the list */
	SVAKIT_EV_KVA_INVALIDATE = 10, /* the work called the gate over va..aux */
	SVAKIT_EV_DMA_WALK = 11,     /* an IOMMU walk of va (only with walk tracing):
				      * aux = 0 or the fault reason, pfn = the frame */
	SVAKIT_EV_UAF_REPORT = 12,   /* the oracle reported a walk through pfn */
};

/* One step of the machine (40 bytes). */
struct svakit_event {
	uint64_t step;
	uint16_t type;       /* enum svakit_event_type */
	uint16_t site;       /* enum svakit_site: the path that did it */
	uint8_t level;       /* table level, for table events */
	uint8_t kind;        /* enum svakit_frame_kind of the frame at that step */
	uint16_t order;
	uint32_t pfn;
	uint32_t generation; /* the frame's generation after the step */
	uint64_t va;         /* the address whose entry changed, or range start */
	uint64_t aux;        /* range end, or the entry's old value */
};

/* Copies up to cap events with step >= since, oldest first; returns the number
 * copied (>= 0) or a negative errno. The ring keeps the newest
 * event_log_capacity events. */
int svakit_events(svakit_machine *m, uint64_t since, struct svakit_event *out,
		  size_t cap);
/* The same, restricted to events about one frame. */
int svakit_frame_history(svakit_machine *m, uint64_t pfn,
			 struct svakit_event *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* SVAKIT_H */
