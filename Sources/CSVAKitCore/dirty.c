/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The frames written since boot or the last reset, and the boot image
 * (svakit_core.h, struct svk_dirty; docs/ARCHITECTURE.md, "Reset").
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "svakit_core.h"

#define FRAME 4096u

static void *reserve(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static uint64_t bitmap_bytes(uint64_t frames) { return (frames + 63) / 64 * 8; }

int svk_dirty_init(struct svk_dirty *d, uint64_t frames)
{
	memset(d, 0, sizeof(*d));
	d->frames = frames;
	d->bits = reserve(bitmap_bytes(frames));
	d->list = reserve(frames * sizeof(uint32_t));
	if (!d->bits || !d->list) {
		svk_dirty_destroy(d);
		return -1;
	}
	return 0;
}

void svk_dirty_destroy(struct svk_dirty *d)
{
	if (d->bits)
		munmap(d->bits, bitmap_bytes(d->frames));
	if (d->list)
		munmap(d->list, d->frames * sizeof(uint32_t));
	free(d->boot_slot);
	free(d->boot_copy);
	memset(d, 0, sizeof(*d));
}

void svk_dirty_mark_slow(struct svk_dirty *d, uint64_t pfn)
{
	uint64_t bit = 1ull << (pfn & 63);
	/* Whoever sets the bit appends the frame: each frame is listed once. */
	if (!(__atomic_fetch_or(&d->bits[pfn >> 6], bit, __ATOMIC_RELAXED) & bit))
		d->list[__atomic_fetch_add(&d->count, 1, __ATOMIC_RELAXED)] = (uint32_t)pfn;
}

/* Clears the marks and empties the list. */
static void clear_marks(struct svk_dirty *d)
{
	for (uint64_t i = 0; i < d->count; i++)
		d->bits[d->list[i] >> 6] = 0;
	d->count = 0;
}

int svk_dirty_take_boot_image(struct svk_dirty *d, const uint8_t *bytes, uint64_t boot_frames)
{
	uint64_t n = 0;

	free(d->boot_slot);
	free(d->boot_copy);
	d->boot_slot = NULL;
	d->boot_copy = NULL;
	d->boot_copies = 0;
	d->boot_frames = boot_frames;
	d->boot_slot = malloc((boot_frames ? boot_frames : 1) * sizeof(int32_t));
	d->boot_copy = malloc((d->count ? d->count : 1) * FRAME);
	if (!d->boot_slot || !d->boot_copy)
		return -1;
	for (uint64_t f = 0; f < boot_frames; f++)
		d->boot_slot[f] = -1;
	for (uint64_t i = 0; i < d->count; i++) {
		uint64_t pfn = d->list[i];
		if (pfn >= boot_frames)
			continue; /* boot writes only the frames it allocated */
		memcpy(d->boot_copy + n * FRAME, bytes + pfn * FRAME, FRAME);
		d->boot_slot[pfn] = (int32_t)n++;
	}
	d->boot_copies = n;
	clear_marks(d);
	return 0;
}

uint64_t svk_dirty_restore(struct svk_dirty *d, uint8_t *bytes)
{
	uint64_t n = d->count;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t pfn = d->list[i];
		int32_t slot = d->boot_slot && pfn < d->boot_frames ? d->boot_slot[pfn] : -1;
		if (slot >= 0)
			memcpy(bytes + pfn * FRAME, d->boot_copy + (uint64_t)slot * FRAME, FRAME);
		else
			memset(bytes + pfn * FRAME, 0, FRAME);
	}
	clear_marks(d);
	return n;
}

void svk_zero_table(uint64_t *table)
{
	for (int i = 0; i < 512; i++)
		__atomic_store_n(&table[i], 0, __ATOMIC_RELAXED);
}
