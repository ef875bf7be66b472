/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the SVAKit engine (not installed, not part of the C ABI): the
 * memory accesses a hardware walker and the CPU make to shared memory, as
 * single atomic operations, the per-thread set of held lock ranks, and the
 * per-thread simulated CPU.
 *
 * Swift's Synchronization cannot place an Atomic at an arbitrary address,
 * and the simulated RAM is one anonymous mapping, so page-table entries,
 * cache lines and the identity words of the ptdesc are reached through these
 * static inline functions, which Swift inlines like its own code.
 */
#ifndef SVAKIT_CORE_H
#define SVAKIT_CORE_H

#include <stdint.h>

/* 64-bit words: entries, cache lines, published tables. */
static inline uint64_t svk_load_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t svk_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void svk_store_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void svk_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t svk_exchange(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
/* The locked cmpxchg a walker uses to set A/D: only if the entry is unchanged. */
static inline int svk_cas(uint64_t *p, uint64_t expected, uint64_t desired)
{
	return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* 32-bit words: the ptdesc generation. */
static inline uint32_t svk_load32_acquire(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void svk_store32_release(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* The static key in the C handle: written by the registry, read by the gate. */
static inline void svk_store_key(int32_t *p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int32_t svk_load_key(const int32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* Bytes: the ptdesc kind, level and flags, which a walker reads lock-free. */
static inline uint8_t svk_load8(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void svk_store8(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uint8_t svk_or8(uint8_t *p, uint8_t v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
static inline uint8_t svk_and8(uint8_t *p, uint8_t v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }

/*
 * IOMMU_DEBUG_PAGEALLOC's per-frame mapping count (struct iommu_debug_metadata):
 * relaxed, as Linux's atomic_inc_return_relaxed (the count orders nothing;
 * only its value matters). Unlike Linux these refuse to wrap: a raise at
 * INT32_MAX and a lower at 0 change nothing and return the old value, which
 * the caller warns about. Both return the value before. The first attempt
 * guesses the common value (0 for a raise, 1 for a lower), so the usual case
 * is one locked cmpxchg and no separate load of a cold line.
 */
static inline int32_t svk_ref_raise(int32_t *p)
{
	int32_t v = 0;
	while (!__atomic_compare_exchange_n(p, &v, v + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		if (v == INT32_MAX)
			break;
	return v;
}
static inline int32_t svk_ref_lower(int32_t *p)
{
	int32_t v = 1;
	while (!__atomic_compare_exchange_n(p, &v, v - 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		if (v <= 0)
			break;
	return v;
}
static inline int32_t svk_ref_load(const int32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void svk_ref_store(int32_t *p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void svk_store32_relaxed(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uint32_t svk_load32_relaxed(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* A full fence (the seqcount reader's smp_rmb is an acquire load on x86). */
static inline void svk_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }

/* A fence waiting for walks in flight lets the walkers run. */
#include <sched.h>
static inline void sched_yield_(void) { (void)sched_yield(); }

/*
 * Lock ranks held by the calling thread, one bit per rank (lockrank.c).
 * Taking a lock whose rank is not above every held rank is a bug.
 */
uint64_t svk_held_ranks(void);
void svk_set_held_ranks(uint64_t ranks);

/*
 * The simulated CPU the calling thread runs on (currentcpu.c), for the IOVA
 * rcache's per-CPU magazines. -1 until the thread sets one or is given one.
 * svk_next_cpu_ticket() hands out 0, 1, 2, ... to threads that never set one.
 */
int64_t svk_current_cpu(void);
void svk_set_current_cpu(int64_t cpu);
int64_t svk_next_cpu_ticket(void);
/*
 * The schedule explorer's actor the calling thread plays (schedule.c): NULL
 * on every thread the explorer did not start, so a schedule point there does
 * nothing. Read only in builds with SVAKIT_SCHEDULE_POINTS.
 */
void *svk_sched_current(void);
void svk_sched_set_current(void *actor);
/* Flush-queue flushes the calling thread is inside (currentcpu.c). */
int svk_flush_depth(void);
void svk_flush_depth_add(int delta);
/* The first index in [from, end) of a table of 512 entries whose present bit
 * is set, or end (tables.c). */
int svk_next_present(const uint64_t *table, int from, int end);
/* The audits' census of descriptors [first, end) (tables.c): counts[k] gets
 * the frames whose kind byte (offset 0) is k (kinds past 7 count in
 * counts[7]); returns the allocated block heads among them: kind neither
 * free_kind nor offline_kind, and no tail_flag in the flags byte (offset 3). */
uint64_t svk_census(const uint8_t *descs, uint64_t stride, uint64_t first, uint64_t end, uint8_t free_kind,
		    uint8_t offline_kind, uint8_t tail_flag, uint64_t counts[8]);

/*
 * Modelled IOMMU device time (devicetime.c): nanoseconds the invalidation
 * commands and syncs this thread issued would take on the device, as each
 * IOMMU's cost model prices them. A plain thread-local add: no allocation.
 */
uint64_t svk_device_ns(void);
void svk_device_ns_add(uint64_t ns);
void svk_device_ns_reset(void);

/*
 * The frames whose bytes changed since boot or the last reset (dirty.c), so
 * that a reset (Machine.reset) costs what was touched, not what is
 * simulated: one bit per frame and the list of the set bits, in the order
 * they were set. Every write into a frame's bytes marks it first
 * (PhysicalMemory); the common case, a frame already marked, is one relaxed
 * load and a branch not taken. Marking is lock-free and may race with
 * itself (the fetch_or decides which marker appends); the list is read and
 * cleared only by a reset, which needs the machine quiescent.
 *
 * The boot image: the frames boot wrote (init_mm's root, the direct map's
 * tables), copied as boot left them. A frame nobody marked since holds its
 * boot bytes: its copy, or zeros.
 */
struct svk_dirty {
	uint64_t *bits;        /* one bit per frame */
	uint32_t *list;        /* the marked frames */
	uint64_t count;        /* entries in list (atomic) */
	uint64_t frames;       /* frames of memory */
	uint64_t boot_frames;  /* boot_slot covers [0, boot_frames) */
	int32_t *boot_slot;    /* per frame: its copy in boot_copy, or -1 */
	uint8_t *boot_copy;    /* 4 KiB per copied frame */
	uint64_t boot_copies;
};

/* Reserves the bit map and the list (MAP_NORESERVE): 0, or -1. */
int svk_dirty_init(struct svk_dirty *d, uint64_t frames);
void svk_dirty_destroy(struct svk_dirty *d);
void svk_dirty_mark_slow(struct svk_dirty *d, uint64_t pfn);

static inline void svk_dirty_mark(struct svk_dirty *d, uint64_t pfn)
{
	if (__builtin_expect(!(__atomic_load_n(&d->bits[pfn >> 6], __ATOMIC_RELAXED) & (1ull << (pfn & 63))), 0))
		svk_dirty_mark_slow(d, pfn);
}

/* Whether frame pfn may hold anything but zeros: written since the last
 * reset, or one of the frames boot wrote. */
static inline int svk_dirty_may_be_nonzero(const struct svk_dirty *d, uint64_t pfn)
{
	if (__atomic_load_n(&d->bits[pfn >> 6], __ATOMIC_RELAXED) & (1ull << (pfn & 63)))
		return 1;
	return d->boot_slot && pfn < d->boot_frames && d->boot_slot[pfn] >= 0;
}

/* Frames marked since the last reset (or since the boot image was taken). */
static inline uint64_t svk_dirty_count(const struct svk_dirty *d) { return __atomic_load_n(&d->count, __ATOMIC_RELAXED); }

/* At the end of boot: copies every frame marked so far (the frames boot
 * wrote) out of `bytes` into the boot image, and clears the marks. The
 * copies cover [0, boot_frames). 0, or -1 when the host has no memory. */
int svk_dirty_take_boot_image(struct svk_dirty *d, const uint8_t *bytes, uint64_t boot_frames);

/* The reset: gives every marked frame its boot bytes again (its copy, or
 * zeros) and clears the marks. Returns the frames restored. The machine is
 * quiescent. */
uint64_t svk_dirty_restore(struct svk_dirty *d, uint8_t *bytes);

/* Zeroes a 4 KiB table with relaxed 8-byte stores (a stale walker may read
 * it meanwhile; a byte-wise memset could tear an entry it reads). */
void svk_zero_table(uint64_t *table);

#endif
