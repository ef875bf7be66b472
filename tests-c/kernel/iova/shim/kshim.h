/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A userspace shim for compiling drivers/iommu/iova.c (Linux 6.12.118) and
 * tools/lib/rbtree.c outside the kernel, for the differential test
 * (tests-c/kernel/iova/iova_diff.c). Our own code, not the kernel's: it
 * provides just what those two files use. Every linux/*.h in this
 * directory includes this one.
 *
 * - Spinlocks and mutexes are counters (the driver is single-threaded);
 *   assert_spin_locked checks the count.
 * - Per-CPU data: __alloc_percpu gives SHIM_MAX_CPUS slots; the driver sets
 *   shim_nr_cpus (all online, all possible) and shim_current_cpu, which
 *   raw_cpu_ptr/this_cpu_ptr use.
 * - Delayed work is recorded, not timed: schedule_delayed_work sets pending
 *   (a no-op when already pending, as the kernel's); shim_run_pending_works()
 *   runs each pending work once, in the order they were initialised.
 * - kmem_cache and kzalloc/kcalloc are malloc/calloc (never fail).
 */
#ifndef KSHIM_H
#define KSHIM_H

#include <assert.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t s32;
typedef int64_t s64;
typedef unsigned int gfp_t;
typedef u64 dma_addr_t;
typedef u64 phys_addr_t;

#define __percpu
#define __always_inline inline __attribute__((always_inline))
#define __must_check
#define __init
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define barrier() __asm__ __volatile__("" ::: "memory")

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

#define EXPORT_SYMBOL(s)
#define EXPORT_SYMBOL_GPL(s)
#define MODULE_LICENSE(s)
#define MODULE_AUTHOR(s)
#define MODULE_DESCRIPTION(s)
/* iova.h declares the real API only when CONFIG_IOMMU_IOVA is reachable. */
#define IS_REACHABLE(option) 1

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)

#define ALIGN(x, a) (((x) + ((__typeof__(x))(a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))

#define min(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a < _b ? _a : _b; })
#define max(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a > _b ? _a : _b; })
#define swap(a, b) do { __typeof__(a) _t = (a); (a) = (b); (b) = _t; } while (0)

/* Failures of the kernel's own assertions end the test. */
#define BUG_ON(c) do { if (c) { fprintf(stderr, "BUG_ON(%s) at %s:%d\n", #c, __FILE__, __LINE__); abort(); } } while (0)
extern unsigned long shim_warnings;
#define WARN_ON(c) ({ int _w = !!(c); if (_w) { shim_warnings++; fprintf(stderr, "WARN_ON(%s) at %s:%d\n", #c, __FILE__, __LINE__); } _w; })
#define pr_err(...) fprintf(stderr, __VA_ARGS__)

#define ERR_PTR(e) ((void *)(long)(e))
#define ENOMEM 12
#define ENOTSUPP 524

/* bitops */
static inline unsigned long __ffs(unsigned long w) { return (unsigned long)__builtin_ctzl(w); }
static inline int fls_long(unsigned long x) { return x ? 64 - __builtin_clzl(x) : 0; }
static inline bool is_power_of_2(unsigned long n) { return n != 0 && (n & (n - 1)) == 0; }
static inline unsigned long roundup_pow_of_two(unsigned long n) { return 1UL << fls_long(n - 1); }
static inline int order_base_2(unsigned long n) { return n > 1 ? fls_long(n - 1) : 0; }

/* locks */
typedef struct { int held; } spinlock_t;
struct mutex { int held; };
#define DEFINE_MUTEX(m) struct mutex m = { 0 }
#define spin_lock_init(l) ((l)->held = 0)
#define spin_lock(l) do { assert((l)->held == 0); (l)->held = 1; } while (0)
#define spin_unlock(l) do { assert((l)->held == 1); (l)->held = 0; } while (0)
#define spin_lock_irqsave(l, f) do { (void)(f); spin_lock(l); } while (0)
#define spin_unlock_irqrestore(l, f) do { (void)(f); spin_unlock(l); } while (0)
#define assert_spin_locked(l) assert((l)->held)
#define mutex_lock(m) ((m)->held = 1)
#define mutex_unlock(m) ((m)->held = 0)

/* per-CPU data over simulated CPUs */
#define SHIM_MAX_CPUS 64
extern unsigned int shim_nr_cpus;
extern unsigned int shim_current_cpu;
void *shim_alloc_percpu(size_t size);
void *shim_per_cpu_ptr(void *p, unsigned int cpu);
#define __alloc_percpu(size, align) shim_alloc_percpu(size)
#define free_percpu(p) free((char *)(p) - 64)
#define per_cpu_ptr(p, cpu) ((__typeof__(p))shim_per_cpu_ptr((void *)(p), (cpu)))
#define raw_cpu_ptr(p) per_cpu_ptr(p, shim_current_cpu)
#define this_cpu_ptr(p) per_cpu_ptr(p, shim_current_cpu)
#define for_each_possible_cpu(cpu) for ((cpu) = 0; (cpu) < shim_nr_cpus; (cpu)++)
#define for_each_online_cpu(cpu) for ((cpu) = 0; (cpu) < shim_nr_cpus; (cpu)++)
#define num_online_cpus() (shim_nr_cpus)
#define cache_line_size() 64

/* slab */
#define GFP_KERNEL 0u
#define GFP_ATOMIC 1u
#define __GFP_NOWARN 2u
#define SLAB_HWCACHE_ALIGN 1u
struct kmem_cache { size_t size; };
struct kmem_cache *kmem_cache_create(const char *name, unsigned int size, unsigned int align,
				     unsigned int flags, void (*ctor)(void *));
void kmem_cache_destroy(struct kmem_cache *c);
#define kmem_cache_alloc(c, gfp) malloc((c)->size)
#define kmem_cache_zalloc(c, gfp) calloc(1, (c)->size)
#define kmem_cache_free(c, p) free(p)
#define kcalloc(n, size, gfp) calloc((n), (size))
#define kzalloc(size, gfp) calloc(1, (size))
#define kfree(p) free(p)
#define kmemleak_transient_leak(p) ((void)(p))

/* hlist, only as a member */
struct hlist_node { struct hlist_node *next, **pprev; };
#define hlist_entry_safe(ptr, type, member) ((ptr) ? container_of(ptr, type, member) : NULL)

/* cpu hotplug: nothing is ever unplugged */
enum cpuhp_state { CPUHP_IOMMU_IOVA_DEAD = 1 };
#define cpuhp_state_add_instance_nocalls(s, n) ((void)(n), 0)
#define cpuhp_state_remove_instance_nocalls(s, n) ((void)(n), 0)
#define cpuhp_setup_state_multi(s, name, up, down) ((void)(down), 0)
#define cpuhp_remove_multi_state(s) ((void)0)

/* delayed work */
struct work_struct;
typedef void (*work_func_t)(struct work_struct *);
struct work_struct { work_func_t func; };
struct delayed_work {
	struct work_struct work;
	int pending;
	int registered;
	unsigned long delay;
};
void shim_init_delayed_work(struct delayed_work *dw, work_func_t fn);
#define INIT_DELAYED_WORK(dw, fn) shim_init_delayed_work((dw), (fn))
bool schedule_delayed_work(struct delayed_work *dw, unsigned long delay);
bool cancel_delayed_work_sync(struct delayed_work *dw);
#define msecs_to_jiffies(ms) ((unsigned long)(ms))
/* Runs each pending work once (pending cleared first); returns how many. */
int shim_run_pending_works(void);
/* Forgets every work (a new domain). */
void shim_reset_works(void);

#endif
