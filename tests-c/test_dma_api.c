/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DMA API from C, written as a kernel driver uses it (the kernel names
 * under SVAKIT_KERNEL_NAMES where SVAKit aliases them; svakit_ names where
 * it does not, see include/svakit_kernel_names.h).
 *
 * The driver maps a receive buffer, the device writes into it (requests
 * without PASID: PASID 0, through the device's default domain), the driver
 * unmaps it. The buggy driver then frees the buffer at once while the
 * device still writes (docs/KERNEL-MODEL.md §4.4):
 *   - strict (iommu.strict=1): the unmap invalidated the IOTLB, so the
 *     device faults and the page's new owner keeps its data;
 *   - lazy (DMA-FQ, x86's default): the IOTLB still holds the translation
 *     until the flush queue is flushed: the walk oracle reports a data-page
 *     use-after-free and the new owner's page is corrupted;
 *   - lazy with the quarantine: the free is parked until the flush, nobody
 *     else gets the page, nothing is reported; the free happens after
 *     svakit_dma_flush_queues().
 *
 * The report handler only records (harness.h: no assertion in a callback);
 * the test asserts after the call that made the report.
 */
#define SVAKIT_KERNEL_NAMES
#include "harness.h"

#define OWNER_DRIVER 0xd1
#define OWNER_NEXT 0x5ec
#define SECRET 0x2121544552434553ULL /* "SECRET!!" */
#define DEVICE_DATA 0x6464646464646464ULL

struct rig {
	svakit_machine *m;
	uint32_t iommu, dev, domain, reason;
	/* what the report handler saw */
	int reports;
	struct svakit_uaf_report last;
};

static void record_report(void *ctx, const struct svakit_uaf_report *r, const char *text)
{
	struct rig *g = ctx;

	(void)text;
	g->reports++;
	g->last = *r;
}

static struct rig *rig_new(uint32_t strict, uint32_t quarantine, uint32_t dev_flags, uint32_t deferred_flush)
{
	struct svakit_config cfg;
	struct svakit_iommu_config icfg;
	struct rig *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	svakit_config_default(&cfg);
	cfg.frames = GIB_FRAMES;
	cfg.work_mode = SVAKIT_WORK_MANUAL; /* no timer thread: the window stays open until we flush */
	cfg.dma_strict = strict;
	cfg.dma_quarantine = quarantine;
	assert_int_equal(svakit_machine_create(&cfg, &g->m), 0);
	svakit_iommu_config_default(&icfg);
	icfg.deferred_flush = deferred_flush;
	assert_int_equal(svakit_iommu_create(g->m, &icfg, &g->iommu), 0);
	assert_int_equal(svakit_device_create(g->m, g->iommu, dev_flags, 8, &g->dev), 0);
	assert_int_equal(svakit_iommu_setup_default_domain(g->m, g->dev, 0, &g->domain, &g->reason), 0);
	assert_int_equal(svakit_machine_set_report_handler(g->m, record_report, g), 0);
	return g;
}

static int setup_strict(void **state) { *state = rig_new(1, 0, 0, 1); return 0; }
static int setup_lazy(void **state) { *state = rig_new(0, 0, 0, 1); return 0; }
static int setup_quarantine(void **state) { *state = rig_new(0, 1, 0, 1); return 0; }

static int teardown_rig(void **state)
{
	struct rig *g = *state;

	svakit_machine_destroy(g->m);
	free(g);
	return 0;
}

static uint64_t word_at(svakit_machine *m, uint64_t pfn)
{
	uint64_t w = 0;
	assert_int_equal(svakit_frame_read(m, pfn, 0, &w, sizeof(w)), 0);
	return w;
}

static void put_word(svakit_machine *m, uint64_t pfn, uint64_t w)
{
	assert_int_equal(svakit_frame_write(m, pfn, 0, &w, sizeof(w)), 0);
}

/* The device writes 8 bytes at a DMA address, a request without PASID. */
static int device_writes(struct rig *g, uint64_t dma, uint64_t w, struct svakit_dma_fault *fault)
{
	return svakit_device_dma_write(g->m, g->dev, 0, dma, &w, sizeof(w), 0, fault);
}

/* The driver's receive path up to the bug: map the buffer, let the device
 * write into it, unmap, free the buffer at once; then someone else gets a
 * page and keeps a secret in it. Returns the buffer's DMA address. */
static uint64_t receive_then_free_early(struct rig *g, uint64_t *buf, uint64_t *next)
{
	struct svakit_dma_fault fault;
	uint64_t dma;

	assert_int_equal(svakit_frame_alloc(g->m, 0, OWNER_DRIVER, buf), 0);
	assert_int_equal(svakit_dma_map_page(g->m, g->dev, *buf << 12, SVAKIT_PAGE_SIZE, SVAKIT_DMA_FROM_DEVICE,
					     SVAKIT_CPU_CURRENT, &dma), 0);
	assert_int_equal(device_writes(g, dma, DEVICE_DATA, &fault), 0); /* the IOTLB now holds the page */
	assert_int_equal(word_at(g->m, *buf), DEVICE_DATA);
	assert_int_equal(dma_unmap_page(g->m, g->dev, dma, SVAKIT_PAGE_SIZE, SVAKIT_DMA_FROM_DEVICE,
					SVAKIT_CPU_CURRENT), 0);
	assert_int_equal(svakit_frame_free(g->m, *buf), 0); /* the bug: the device is not quiesced */
	assert_int_equal(svakit_frame_alloc(g->m, 0, OWNER_NEXT, next), 0);
	put_word(g->m, *next, SECRET);
	return dma;
}

static void test_strict_unmap_faults_the_late_write(void **state)
{
	struct rig *g = *state;
	struct svakit_dma_fault fault = { 0 };
	uint64_t buf, next, dma;

	assert_int_equal(g->reason, SVAKIT_POLICY_STRICT_CONFIGURED);
	dma = receive_then_free_early(g, &buf, &next);
	assert_int_equal(next, buf); /* LIFO: the freed buffer is the next page handed out */
	assert_int_equal(device_writes(g, dma, 0xbad, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_NOT_PRESENT);
	assert_int_equal(g->reports, 0);
	assert_int_equal(word_at(g->m, next), SECRET);
	assert_machine_ok(g->m);
}

static void test_lazy_unmap_lets_the_device_corrupt_the_new_owner(void **state)
{
	struct rig *g = *state;
	struct svakit_flush_queue_stats fq;
	struct svakit_dma_fault fault = { 0 };
	uint64_t buf, next, dma;

	assert_int_equal(g->reason, SVAKIT_POLICY_LAZY_DEFAULT);
	dma = receive_then_free_early(g, &buf, &next);
	assert_int_equal(next, buf);
	assert_int_equal(svakit_flush_queue_stats(g->m, g->domain, &fq), 0);
	assert_int_equal(fq.pending, 1); /* the unmap waits for a flush */

	assert_int_equal(device_writes(g, dma, 0xbad, &fault), 0); /* through the stale IOTLB entry */
	assert_int_equal(g->reports, 1);
	assert_int_equal(g->last.frame, buf);
	assert_int_equal(g->last.stale_level, 1);    /* an IOTLB entry led there */
	assert_int_equal(g->last.expected_level, 0); /* it believed a data page */
	assert_int_equal(g->last.realloc_owner, OWNER_NEXT);
	assert_int_equal(g->last.corruption, 1);
	assert_int_equal(g->last.device, g->dev);
	assert_int_equal(g->last.pasid, 0);
	assert_int_equal(word_at(g->m, next), 0xbad); /* the new owner's secret is gone */

	/* The timer has not fired at time 0; at the end of time it has. */
	assert_int_equal(svakit_dma_run_timers(g->m, 0), 0);
	assert_int_equal(svakit_flush_queue_stats(g->m, g->domain, &fq), 0);
	assert_int_equal(fq.pending, 1);
	assert_int_equal(svakit_dma_run_timers(g->m, UINT64_MAX), 0);
	assert_int_equal(svakit_flush_queue_stats(g->m, g->domain, &fq), 0);
	assert_int_equal(fq.pending, 0);
	assert_int_equal(fq.flushes, 1);
	assert_int_equal(fq.released, 1);
	assert_int_equal(device_writes(g, dma, 0xbad, &fault), SVAKIT_DMA_FAULTED);
	assert_machine_ok(g->m);
}

static void test_quarantine_parks_the_free_until_the_flush(void **state)
{
	struct rig *g = *state;
	struct svakit_flush_queue_stats fq;
	struct svakit_dma_fault fault = { 0 };
	struct svakit_stats before;
	uint64_t buf, next, dma;

	dma = receive_then_free_early(g, &buf, &next);
	assert_int_not_equal(next, buf); /* the buffer never went back to the allocator */
	assert_int_equal(info(g->m, buf).kind, SVAKIT_FRAME_DATA);
	assert_int_equal(svakit_flush_queue_stats(g->m, g->domain, &fq), 0);
	assert_int_equal(fq.quarantined_frames, 1);

	assert_int_equal(device_writes(g, dma, 0xbad, &fault), 0); /* into the old buffer, nobody else's */
	assert_int_equal(g->reports, 0);
	assert_int_equal(word_at(g->m, next), SECRET);

	before = stats(g->m);
	assert_int_equal(svakit_dma_flush_queues(g->m), 0);
	assert_int_equal(svakit_flush_queue_stats(g->m, g->domain, &fq), 0);
	assert_int_equal(fq.quarantined_frames, 0);
	assert_int_equal(info(g->m, buf).kind, SVAKIT_FRAME_FREE); /* the parked free happened */
	assert_int_equal(stats(g->m).frames_free, before.frames_free + 1);
	assert_int_equal(svakit_frame_free(g->m, buf), -EALREADY);
	assert_int_equal(device_writes(g, dma, 0xbad, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(g->reports, 0);
	assert_machine_ok(g->m);
}

/* A driver's scatter-gather transmit and its coherent descriptor ring. */
static void test_sg_and_coherent(void **state)
{
	struct rig *g = *state;
	struct svakit_dma_fault fault;
	struct svakit_sg sg[3];
	uint64_t p, w, ring_dma, ring_pfn;
	int n;

	assert_int_equal(svakit_frame_alloc(g->m, 2, OWNER_DRIVER, &p), 0);
	for (uint64_t i = 0; i < 4; i++)
		put_word(g->m, p + i, 100 + i);
	/* Two whole pages, then 1 KiB at an offset: the first two merge. */
	sg[0] = (struct svakit_sg){ .phys = p << 12, .length = SVAKIT_PAGE_SIZE };
	sg[1] = (struct svakit_sg){ .phys = (p + 1) << 12, .length = SVAKIT_PAGE_SIZE };
	sg[2] = (struct svakit_sg){ .phys = ((p + 3) << 12) + 0x800, .length = 0x400 };
	n = dma_map_sg(g->m, g->dev, sg, 3, SVAKIT_DMA_TO_DEVICE, SVAKIT_CPU_CURRENT);
	assert_int_equal(n, 2);
	assert_int_equal(sg[0].dma_length, 2 * SVAKIT_PAGE_SIZE);
	assert_int_equal(sg[1].dma_length, 0x400);
	assert_int_equal(sg[1].dma_address & 0xfff, 0x800);
	assert_int_equal(sg[2].dma_length, 0);
	assert_int_equal(svakit_device_dma_read(g->m, g->dev, 0, sg[0].dma_address + SVAKIT_PAGE_SIZE, &w, 8, 0, &fault), 0);
	assert_int_equal(w, 101);
	/* DMA_TO_DEVICE: the device may not write. */
	assert_int_equal(device_writes(g, sg[0].dma_address, 1, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_WRITE);
	assert_int_equal(dma_unmap_sg(g->m, g->dev, sg, 3, SVAKIT_DMA_TO_DEVICE, SVAKIT_CPU_CURRENT), 0);
	assert_int_equal(dma_unmap_sg(g->m, g->dev, sg, 3, SVAKIT_DMA_TO_DEVICE, SVAKIT_CPU_CURRENT), -ENOENT);
	assert_int_equal(svakit_dma_flush_queues(g->m), 0);
	assert_int_equal(svakit_device_dma_read(g->m, g->dev, 0, sg[0].dma_address, &w, 8, 0, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(svakit_frame_free(g->m, p), 0);

	assert_int_equal(svakit_dma_alloc_coherent(g->m, g->dev, 3 * SVAKIT_PAGE_SIZE, SVAKIT_CPU_CURRENT, &ring_dma,
						   &ring_pfn), 0);
	assert_int_equal(info(g->m, ring_pfn).order, 2);
	assert_int_equal(svakit_device_dma_read(g->m, g->dev, 0, ring_dma + 2 * SVAKIT_PAGE_SIZE, &w, 8, 0, &fault), 0);
	assert_int_equal(w, 0); /* coherent memory comes zeroed */
	assert_int_equal(device_writes(g, ring_dma, 42, &fault), 0);
	assert_int_equal(word_at(g->m, ring_pfn), 42);
	assert_int_equal(dma_free_coherent(g->m, g->dev, 3 * SVAKIT_PAGE_SIZE, ring_pfn, ring_dma,
					   SVAKIT_CPU_CURRENT), 0);
	assert_int_equal(svakit_dma_flush_queues(g->m), 0);
	assert_int_equal(info(g->m, ring_pfn).kind, SVAKIT_FRAME_FREE);
	assert_int_equal(g->reports, 0);
	assert_machine_ok(g->m);
}

/* A driver that owns an unmanaged domain (as VFIO does) and uses the IOMMU
 * API on it: always strict. */
static void test_iommu_api_on_an_unmanaged_domain(void **state)
{
	struct rig *g = *state;
	struct svakit_dma_fault fault;
	uint32_t dom, dev2;
	uint64_t p, phys, n, w;

	assert_int_equal(svakit_device_create(g->m, g->iommu, 0, 8, &dev2), 0);
	assert_int_equal(svakit_iommu_domain_alloc(g->m, g->iommu, SVAKIT_DOMAIN_DMA, 0, &dom), 0);
	assert_int_equal(iommu_attach_device(g->m, dom, dev2), 0);
	assert_int_equal(svakit_frame_alloc(g->m, 0, OWNER_DRIVER, &p), 0);
	put_word(g->m, p, 7);
	assert_int_equal(iommu_map(g->m, dom, 0x40000000, p << 12, SVAKIT_PAGE_SIZE, SVAKIT_IOMMU_READ), 0);
	assert_int_equal(iommu_iova_to_phys(g->m, dom, 0x40000008, &phys), 0);
	assert_int_equal(phys, (p << 12) + 8);
	assert_int_equal(svakit_device_dma_read(g->m, dev2, 0, 0x40000000, &w, 8, 0, &fault), 0);
	assert_int_equal(w, 7);
	assert_int_equal(svakit_device_dma_write(g->m, dev2, 0, 0x40000000, &w, 8, 0, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(fault.reason, SVAKIT_FAULT_WRITE);
	assert_int_equal(iommu_unmap(g->m, dom, 0x40000000, SVAKIT_PAGE_SIZE, &n), 0);
	assert_int_equal(n, SVAKIT_PAGE_SIZE);
	assert_int_equal(iommu_iova_to_phys(g->m, dom, 0x40000000, &phys), -ENOENT);
	assert_int_equal(svakit_device_dma_read(g->m, dev2, 0, 0x40000000, &w, 8, 0, &fault), SVAKIT_DMA_FAULTED);
	assert_int_equal(iommu_domain_free(g->m, dom), -EBUSY);
	assert_int_equal(svakit_iommu_detach_device(g->m, dev2), 0);
	assert_int_equal(iommu_domain_free(g->m, dom), 0);
	assert_int_equal(iommu_domain_free(g->m, dom), -ENODEV);
	assert_int_equal(svakit_frame_free(g->m, p), 0);
	assert_int_equal(g->reports, 0);
	assert_machine_ok(g->m);
}

/*
 * A DMA domain's IOVA space has no shared kernel half: iommu_domain_free
 * frees the tables that map IOVAs at and above 1 << 47 too (they used to
 * leak, still marked linked, and the machine check failed).
 */
static void test_domain_free_frees_upper_half_tables(void **state)
{
	struct rig *g = *state;
	struct svakit_stats before, after;
	uint32_t dom;

	assert_int_equal(svakit_machine_stats(g->m, &before), 0);
	assert_int_equal(svakit_iommu_domain_alloc(g->m, g->iommu, SVAKIT_DOMAIN_DMA, 0, &dom), 0);
	assert_int_equal(iommu_map(g->m, dom, 1ULL << 47, 0x1000, SVAKIT_PAGE_SIZE, SVAKIT_IOMMU_READ), 0);
	assert_int_equal(iommu_map(g->m, dom, (1ULL << 48) - SVAKIT_PAGE_SIZE, 0x2000, SVAKIT_PAGE_SIZE,
				   SVAKIT_IOMMU_READ), 0);
	assert_int_equal(iommu_domain_free(g->m, dom), 0);
	assert_int_equal(svakit_machine_stats(g->m, &after), 0);
	assert_int_equal(after.frames_free, before.frames_free); /* the root and all six tables */
	assert_machine_ok(g->m);
}

/* iommu_setup_default_domain's policy, as the boot log says it. */
/* What a lazy unmap leaves in the flush queue, from C: each entry's IOVA,
 * size and ring, until the flush releases them. */
static void test_flush_queue_entries(void **state)
{
	struct rig *g = *state;
	struct svakit_queued_iova q[4];
	uint64_t a, b;
	size_t n = 99;

	assert_int_equal(svakit_flush_queue_entries(g->m, g->domain, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(svakit_dma_map_page(g->m, g->dev, 0x10000, SVAKIT_PAGE_SIZE, SVAKIT_DMA_TO_DEVICE, 0, &a), 0);
	assert_int_equal(svakit_dma_map_page(g->m, g->dev, 0x20000, 3 * SVAKIT_PAGE_SIZE, SVAKIT_DMA_TO_DEVICE, 1, &b), 0);
	assert_int_equal(svakit_dma_unmap_page(g->m, g->dev, a, SVAKIT_PAGE_SIZE, SVAKIT_DMA_TO_DEVICE, 0), 0);
	assert_int_equal(svakit_dma_unmap_page(g->m, g->dev, b, 3 * SVAKIT_PAGE_SIZE, SVAKIT_DMA_TO_DEVICE, 1), 0);
	assert_int_equal(svakit_flush_queue_entries(g->m, g->domain, q, 1, &n), 0);
	assert_int_equal(n, 2); /* more than the room given */
	assert_int_equal(svakit_flush_queue_entries(g->m, g->domain, q, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(q[0].iova, a);
	assert_int_equal(q[0].size, SVAKIT_PAGE_SIZE);
	assert_int_equal(q[0].ring, 0);
	assert_int_equal(q[1].iova, b);
	assert_int_equal(q[1].size, 3 * SVAKIT_PAGE_SIZE);
	assert_int_equal(q[1].ring, 1);
	assert_int_equal(svakit_dma_flush_queues(g->m), 0);
	assert_int_equal(svakit_flush_queue_entries(g->m, g->domain, q, 4, &n), 0);
	assert_int_equal(n, 0);
}

/* fail_nth from C, walking every failure point of a domain's first map
 * (an IOVA, then the tables it needs): each fails as that allocation's
 * exhaustion does (-ENOSPC for the IOVA, -ENOMEM for a table frame), says
 * what it failed, and leaves the machine consistent; past the last point the
 * map succeeds. */
static void test_fail_nth_walks_a_maps_failure_points(void **state)
{
	struct rig *g = *state;
	uint64_t a, made = 0;
	uint32_t what = 99, n;
	int rc, iova_failures = 0, frame_failures = 0;

	for (n = 1; n < 16; n++) {
		assert_int_equal(svakit_fail_nth(g->m, n, &made), 0);
		rc = svakit_dma_map_page(g->m, g->dev, 0x10000, SVAKIT_PAGE_SIZE, SVAKIT_DMA_TO_DEVICE, 0, &a);
		assert_int_equal(svakit_fail_nth_injected(g->m, &what), 0);
		assert_int_equal(svakit_machine_check(g->m), 0);
		if (rc == 0) {
			assert_int_equal(what, SVAKIT_FAIL_NONE);
			break;
		}
		if (rc == -ENOSPC) {
			assert_int_equal(what, SVAKIT_FAIL_IOVA);
			iova_failures++;
		} else {
			assert_int_equal(rc, -ENOMEM);
			assert_int_equal(what, SVAKIT_FAIL_FRAME);
			frame_failures++;
		}
	}
	assert_int_equal(iova_failures, 1);
	assert_true(frame_failures >= 1); /* a first map allocates tables */
	assert_int_equal(svakit_fail_nth(g->m, 0, &made), 0);
	assert_int_equal(made, n - 1); /* the successful map made n - 1 allocations */
	assert_int_equal(svakit_dma_unmap_page(g->m, g->dev, a, SVAKIT_PAGE_SIZE, SVAKIT_DMA_TO_DEVICE, 0), 0);
}

static void test_policy_reasons(void **state)
{
	struct rig *untrusted = rig_new(0, 0, SVAKIT_DEV_UNTRUSTED, 1);
	struct rig *no_defer = rig_new(0, 0, 0, 0);
	uint32_t dev, dom, reason;

	(void)state;
	assert_int_equal(untrusted->reason, SVAKIT_POLICY_UNTRUSTED_DEVICE);
	assert_int_equal(no_defer->reason, SVAKIT_POLICY_NO_DEFERRED_FLUSH);
	/* identity: the DMA address is the physical one */
	assert_int_equal(svakit_device_create(untrusted->m, untrusted->iommu, 0, 8, &dev), 0);
	assert_int_equal(svakit_iommu_setup_default_domain(untrusted->m, dev, 1, &dom, &reason), 0);
	assert_int_equal(reason, SVAKIT_POLICY_LAZY_DEFAULT);
	{
		uint64_t dma;
		struct svakit_flush_queue_stats fq;
		assert_int_equal(svakit_dma_map_page(untrusted->m, dev, 0x5008, 8, SVAKIT_DMA_BIDIRECTIONAL, 0, &dma), 0);
		assert_int_equal(dma, 0x5008);
		assert_int_equal(svakit_flush_queue_stats(untrusted->m, dom, &fq), -EINVAL);
	}
	assert_machine_ok(untrusted->m);
	assert_machine_ok(no_defer->m);
	svakit_machine_destroy(untrusted->m);
	svakit_machine_destroy(no_defer->m);
	free(untrusted);
	free(no_defer);
}

/* docs/KERNEL-MODEL.md §4.3b: an untrusted device's 512-byte buffer is
 * bounced through swiotlb with the padding zeroed, so a read of the whole
 * granule returns the buffer and zeros; a trusted device mapping the same
 * buffer reads the secret beside it (the negative control, every run). */
static void test_untrusted_sub_page_map_sees_zeroed_padding(void **state)
{
	struct rig *untrusted = rig_new(0, 0, SVAKIT_DEV_UNTRUSTED, 1);
	struct rig *trusted = rig_new(0, 0, 0, 1);
	struct rig *rigs[2] = { untrusted, trusted };
	uint64_t page[512];

	(void)state;
	for (int i = 0; i < 512; i++)
		page[i] = i < 64 ? DEVICE_DATA : SECRET;
	for (int r = 0; r < 2; r++) {
		struct rig *g = rigs[r];
		struct svakit_dma_fault fault;
		uint64_t pfn, dma, seen[512];

		assert_int_equal(svakit_frame_alloc(g->m, 0, OWNER_DRIVER, &pfn), 0);
		assert_int_equal(svakit_frame_write(g->m, pfn, 0, page, sizeof(page)), 0);
		assert_int_equal(svakit_dma_map_page(g->m, g->dev, pfn << 12, 512, SVAKIT_DMA_TO_DEVICE,
						     SVAKIT_CPU_CURRENT, &dma), 0);
		assert_int_equal(svakit_device_dma_read(g->m, g->dev, 0, dma & ~0xfffull, seen, sizeof(seen), 0, &fault), 0);
		for (int i = 0; i < 512; i++)
			assert_int_equal(seen[i], i < 64 ? DEVICE_DATA : g == untrusted ? 0 : SECRET);
		assert_int_equal(dma_unmap_page(g->m, g->dev, dma, 512, SVAKIT_DMA_TO_DEVICE, SVAKIT_CPU_CURRENT), 0);
		assert_machine_ok(g->m);
		svakit_machine_destroy(g->m);
		free(g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_strict_unmap_faults_the_late_write, setup_strict, teardown_rig),
		cmocka_unit_test_setup_teardown(test_lazy_unmap_lets_the_device_corrupt_the_new_owner, setup_lazy,
						teardown_rig),
		cmocka_unit_test_setup_teardown(test_quarantine_parks_the_free_until_the_flush, setup_quarantine,
						teardown_rig),
		cmocka_unit_test_setup_teardown(test_sg_and_coherent, setup_lazy, teardown_rig),
		cmocka_unit_test_setup_teardown(test_iommu_api_on_an_unmanaged_domain, setup_lazy, teardown_rig),
		cmocka_unit_test_setup_teardown(test_domain_free_frees_upper_half_tables, setup_strict, teardown_rig),
		cmocka_unit_test(test_policy_reasons),
		cmocka_unit_test_setup_teardown(test_flush_queue_entries, setup_lazy, teardown_rig),
		cmocka_unit_test_setup_teardown(test_fail_nth_walks_a_maps_failure_points, setup_lazy, teardown_rig),
		cmocka_unit_test(test_untrusted_sub_page_map_sees_zeroed_padding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
