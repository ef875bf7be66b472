/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The userspace shim that drivers/iommu/io-pgtable-arm.c and io-pgtable.c
 * (linux-source-6.12, 6.12.118) compile against in the differential test
 * (tests-c/kernel/pgtable/diff_pgtable.c). Every header those files include,
 * other than include/linux/io-pgtable.h and io-pgtable-arm.h themselves,
 * resolves to a file of this directory that includes this one.
 *
 * What the kernel code gets:
 *  - iommu_alloc_pages_node() / iommu_free_pages() (drivers/iommu/iommu-pages.h,
 *    which shim/iommu-pages.h replaces) allocate zeroed, page-aligned
 *    memory and report each table page to the driver (pgt_note_alloc /
 *    pgt_note_free), so every table page allocated and freed is recorded;
 *  - virt_to_phys / __pa / __va are the identity: a table's "physical address"
 *    is its userspace address (below 2^47 on x86-64, inside the descriptors'
 *    GENMASK(47, 12) address field);
 *  - dma_map_single & co. exist but trap: the driver sets cfg.coherent_walk,
 *    so io-pgtable-arm.c never calls them;
 *  - WARN_ON counts (pgt_warnings) instead of printing a backtrace: the
 *    driver reports the count, and a WARN the kernel would print is a finding;
 *  - barriers are compiler barriers, cmpxchg64_relaxed a GCC builtin.
 */
#ifndef SVAKIT_PGTABLE_KSHIM_H
#define SVAKIT_PGTABLE_KSHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
typedef u64 phys_addr_t;
typedef u64 dma_addr_t;
typedef unsigned int gfp_t;

struct device;
struct list_head { struct list_head *next, *prev; };
struct iommu_dirty_bitmap;

#define __init
#define __exit
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define __maybe_unused __attribute__((unused))
#define EXPORT_SYMBOL_GPL(x)
#define EXPORT_SYMBOL(x)
#define subsys_initcall(x)
#define late_initcall(x)
#define pr_fmt(fmt) fmt
#define pr_err(...) ((void)0)
#define pr_info(...) ((void)0)
#define pr_warn(...) ((void)0)
#define dev_err(...) ((void)0)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define likely(x) __builtin_expect(!!(x), 1)

#define GFP_KERNEL 0u
#define GFP_ATOMIC 1u
#define __GFP_HIGHMEM 2u
#define __GFP_ZERO 4u
#define NUMA_NO_NODE (-1)
#define dev_to_node(dev) NUMA_NO_NODE

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))

#define SZ_4K 0x00001000UL
#define SZ_16K 0x00004000UL
#define SZ_64K 0x00010000UL
#define SZ_2M 0x00200000UL
#define SZ_32M 0x02000000UL
#define SZ_512M 0x20000000UL
#define SZ_1G 0x40000000UL

#define BITS_PER_LONG 64
#define BIT(n) (1UL << (n))
#define BIT_ULL(n) (1ULL << (n))
#define GENMASK(h, l) (((~0UL) - (1UL << (l)) + 1) & (~0UL >> (BITS_PER_LONG - 1 - (h))))
#define GENMASK_ULL(h, l) (((~0ULL) - (1ULL << (l)) + 1) & (~0ULL >> (63 - (h))))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#define min_t(t, a, b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b) ((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define IS_ALIGNED(x, a) (((x) & ((typeof(x))(a) - 1)) == 0)
#define ALIGN(x, a) (((x) + ((typeof(x))(a) - 1)) & ~((typeof(x))(a) - 1))

static inline unsigned long __ffs(unsigned long w) { return (unsigned long)__builtin_ctzl(w); }
static inline unsigned long __fls(unsigned long w) { return 63UL - (unsigned long)__builtin_clzl(w); }
static inline int fls(unsigned int x) { return x ? 32 - __builtin_clz(x) : 0; }
static inline int fls64(u64 x) { return x ? 64 - __builtin_clzll(x) : 0; }
#define ilog2(n) ((int)(63 - __builtin_clzll((unsigned long long)(n))))
static inline void set_bit(long nr, volatile unsigned long *addr)
{
	__atomic_fetch_or(&addr[nr / BITS_PER_LONG], 1UL << (nr % BITS_PER_LONG), __ATOMIC_RELAXED);
}
#define is_power_of_2(n) ((n) != 0 && (((n) & ((n) - 1)) == 0))
static inline int get_order(unsigned long size)
{
	return size <= PAGE_SIZE ? 0 : fls64((size - 1) >> PAGE_SHIFT);
}

/* WARN_ON: counted, reported by the driver. */
extern unsigned long pgt_warnings;
#define WARN_ON(c) ({ int __c = !!(c); if (__c) pgt_warnings++; __c; })
#define WARN_ON_ONCE(c) WARN_ON(c)
#define WARN(c, ...) WARN_ON(c)
#define BUG_ON(c) do { if (c) __builtin_trap(); } while (0)
#define VM_BUG_ON(c) BUG_ON(c)
#define BUILD_BUG_ON(c) _Static_assert(!(c), #c)

/* Barriers and atomics (x86-64 host, coherent walk: compiler barriers). */
#define barrier() __asm__ __volatile__("" ::: "memory")
#define dma_wmb() barrier()
#define wmb() __sync_synchronize()
#define smp_wmb() barrier()
#define READ_ONCE(x) (*(const volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
static inline u64 cmpxchg64_relaxed(u64 *p, u64 old, u64 new)
{
	__atomic_compare_exchange_n(p, &old, new, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	return old;
}

/* The identity "physical" map. */
#define virt_to_phys(p) ((phys_addr_t)(uintptr_t)(p))
#define __pa(p) ((phys_addr_t)(uintptr_t)(p))
#define __va(p) ((void *)(uintptr_t)(p))

/* kmalloc and friends. */
static inline void *kzalloc(size_t n, gfp_t gfp) { (void)gfp; return calloc(1, n); }
static inline void *kmalloc(size_t n, gfp_t gfp) { (void)gfp; return malloc(n); }
static inline void kfree(const void *p) { free((void *)p); }

/* drivers/iommu/iommu-pages.h's allocator, recorded by the driver. */
void *iommu_alloc_pages_node(int nid, gfp_t gfp, int order);
void iommu_free_pages(void *virt, int order);

/* The DMA API: never reached with cfg.coherent_walk (trap if it is). */
enum dma_data_direction { DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_NONE };
static inline dma_addr_t dma_map_single(struct device *d, void *p, size_t n, int dir)
{ (void)d; (void)p; (void)n; (void)dir; __builtin_trap(); }
static inline void dma_unmap_single(struct device *d, dma_addr_t a, size_t n, int dir)
{ (void)d; (void)a; (void)n; (void)dir; __builtin_trap(); }
static inline void dma_sync_single_for_device(struct device *d, dma_addr_t a, size_t n, int dir)
{ (void)d; (void)a; (void)n; (void)dir; __builtin_trap(); }
static inline int dma_mapping_error(struct device *d, dma_addr_t a) { (void)d; (void)a; __builtin_trap(); }

/* include/linux/iommu.h: what io-pgtable.h and io-pgtable-arm.c use. */
#define IOMMU_READ (1 << 0)
#define IOMMU_WRITE (1 << 1)
#define IOMMU_CACHE (1 << 2)
#define IOMMU_NOEXEC (1 << 3)
#define IOMMU_MMIO (1 << 4)
#define IOMMU_PRIV (1 << 5)
#define IOMMU_DIRTY_NO_CLEAR (1 << 0)

/* As include/linux/iommu.h (6.12): the gather, minus the freelist's type. */
struct iommu_iotlb_gather {
	unsigned long start;
	unsigned long end;
	size_t pgsize;
	struct list_head freelist;
	bool queued;
};
static inline bool iommu_iotlb_gather_queued(struct iommu_iotlb_gather *gather)
{
	return gather && gather->queued;
}
struct iommu_dirty_bitmap { void *bitmap; void *gather; };
static inline void iommu_dirty_bitmap_record(struct iommu_dirty_bitmap *d, unsigned long iova, unsigned long len)
{ (void)d; (void)iova; (void)len; }

#endif
