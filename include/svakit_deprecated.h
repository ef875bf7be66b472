/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svakit_deprecated.h - the 0.5 names of SVAKit's C ABI, kept for 0.6 only.
 *
 * 0.6.0 renamed the functions whose names broke svakit.h's naming rule
 * (docs/API.md, "Renamed in 0.6.0", says why each). The old names still
 * compile here as static inline wrappers of the new ones, with a deprecation
 * warning that names the replacement (gcc and clang:
 * -Wdeprecated-declarations, on by default; Swift imports them as
 * deprecated). They are not symbols of the library: an object compiled
 * against 0.5 must be rebuilt. The arguments and behaviour are the new
 * function's, which are 0.5's. Do not use them in new code: this header and
 * every name in it are removed in 0.7.0.
 *
 * Included by svakit_debug.h (so by svakit.h); not meant to be included on
 * its own.
 */
#ifndef SVAKIT_DEPRECATED_H
#define SVAKIT_DEPRECATED_H

#include "svakit.h"
#include "svakit_debug.h"

#if defined(__GNUC__) || defined(__clang__)
#define SVAKIT_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define SVAKIT_DEPRECATED(msg)
#endif

#ifdef __cplusplus
extern "C" {
#endif

SVAKIT_DEPRECATED("use svakit_mm_map()")
static inline int svakit_map(svakit_machine *m, uint32_t mm, uint64_t va, uint64_t phys, uint64_t size, uint64_t prot)
{
	return svakit_mm_map(m, mm, va, phys, size, prot);
}

SVAKIT_DEPRECATED("use svakit_mm_unmap()")
static inline int svakit_unmap(svakit_machine *m, uint32_t mm, uint64_t va, uint64_t size)
{
	return svakit_mm_unmap(m, mm, va, size);
}

SVAKIT_DEPRECATED("use svakit_mm_translate()")
static inline int svakit_translate(svakit_machine *m, uint32_t mm, uint64_t va, struct svakit_translation *out)
{
	return svakit_mm_translate(m, mm, va, out);
}

SVAKIT_DEPRECATED("use svakit_pagetable_read_entry()")
static inline int svakit_read_entry(svakit_machine *m, uint64_t table_pfn, unsigned int index, uint64_t *entry)
{
	return svakit_pagetable_read_entry(m, table_pfn, index, entry);
}

SVAKIT_DEPRECATED("use svakit_pagetable_write_entry()")
static inline int svakit_write_entry(svakit_machine *m, uint64_t table_pfn, unsigned int index, uint64_t entry)
{
	return svakit_pagetable_write_entry(m, table_pfn, index, entry);
}

SVAKIT_DEPRECATED("use svakit_pagetable_link()")
static inline int svakit_link_table(svakit_machine *m, uint64_t parent_pfn, unsigned int index, uint64_t child_pfn)
{
	return svakit_pagetable_link(m, parent_pfn, index, child_pfn);
}

SVAKIT_DEPRECATED("use svakit_pagetable_unlink()")
static inline int svakit_unlink_table(svakit_machine *m, uint64_t parent_pfn, unsigned int index, uint64_t *child_pfn)
{
	return svakit_pagetable_unlink(m, parent_pfn, index, child_pfn);
}

SVAKIT_DEPRECATED("use svakit_iommu_attach_device_pasid()")
static inline int svakit_device_attach_pasid(svakit_machine *m, uint32_t dev, uint32_t pasid, uint32_t mm)
{
	return svakit_iommu_attach_device_pasid(m, dev, pasid, mm);
}

SVAKIT_DEPRECATED("use svakit_iommu_detach_device_pasid()")
static inline int svakit_device_detach_pasid(svakit_machine *m, uint32_t dev, uint32_t pasid)
{
	return svakit_iommu_detach_device_pasid(m, dev, pasid);
}

SVAKIT_DEPRECATED("use svakit_device_dma_read()")
static inline int svakit_dma_read(svakit_machine *m, uint32_t dev, uint32_t pasid, uint64_t va, void *buf, size_t len, uint32_t flags, struct svakit_dma_fault *fault)
{
	return svakit_device_dma_read(m, dev, pasid, va, buf, len, flags, fault);
}

SVAKIT_DEPRECATED("use svakit_device_dma_write()")
static inline int svakit_dma_write(svakit_machine *m, uint32_t dev, uint32_t pasid, uint64_t va, const void *buf, size_t len, uint32_t flags, struct svakit_dma_fault *fault)
{
	return svakit_device_dma_write(m, dev, pasid, va, buf, len, flags, fault);
}

SVAKIT_DEPRECATED("use svakit_iommu_domain_alloc()")
static inline int svakit_domain_alloc(svakit_machine *m, uint32_t iommu, uint32_t type, uint64_t pgsize_bitmap, uint32_t *domain)
{
	return svakit_iommu_domain_alloc(m, iommu, type, pgsize_bitmap, domain);
}

SVAKIT_DEPRECATED("use svakit_iommu_domain_free()")
static inline int svakit_domain_free(svakit_machine *m, uint32_t domain)
{
	return svakit_iommu_domain_free(m, domain);
}

SVAKIT_DEPRECATED("use svakit_iommu_attach_device()")
static inline int svakit_attach_device(svakit_machine *m, uint32_t domain, uint32_t dev)
{
	return svakit_iommu_attach_device(m, domain, dev);
}

SVAKIT_DEPRECATED("use svakit_iommu_detach_device()")
static inline int svakit_detach_device(svakit_machine *m, uint32_t dev)
{
	return svakit_iommu_detach_device(m, dev);
}

SVAKIT_DEPRECATED("use svakit_iommu_setup_default_domain()")
static inline int svakit_dma_setup(svakit_machine *m, uint32_t dev, int identity, uint32_t *domain, uint32_t *reason)
{
	return svakit_iommu_setup_default_domain(m, dev, identity, domain, reason);
}

SVAKIT_DEPRECATED("use svakit_cpa_collapse_large_pages()")
static inline int svakit_cpa_collapse(svakit_machine *m, uint64_t va)
{
	return svakit_cpa_collapse_large_pages(m, va);
}

SVAKIT_DEPRECATED("use svakit_machine_set_tlb_flush_hook()")
static inline int svakit_set_tlb_flush_hook(svakit_machine *m, svakit_tlb_flush_fn fn, void *ctx)
{
	return svakit_machine_set_tlb_flush_hook(m, fn, ctx);
}

SVAKIT_DEPRECATED("use svakit_machine_set_free_hook()")
static inline int svakit_set_free_hook(svakit_machine *m, svakit_free_fn fn, void *ctx)
{
	return svakit_machine_set_free_hook(m, fn, ctx);
}

SVAKIT_DEPRECATED("use svakit_machine_set_report_handler()")
static inline int svakit_set_report_handler(svakit_machine *m, svakit_report_fn fn, void *ctx)
{
	return svakit_machine_set_report_handler(m, fn, ctx);
}

SVAKIT_DEPRECATED("use svakit_deferred_work_run()")
static inline int svakit_run_deferred_work(svakit_machine *m)
{
	return svakit_deferred_work_run(m);
}

SVAKIT_DEPRECATED("use svakit_deferred_work_flush()")
static inline int svakit_flush_deferred_work(svakit_machine *m)
{
	return svakit_deferred_work_flush(m);
}

SVAKIT_DEPRECATED("use svakit_report_read()")
static inline int svakit_reports(svakit_machine *m, uint64_t first, struct svakit_uaf_report *out, size_t cap)
{
	return svakit_report_read(m, first, out, cap);
}

SVAKIT_DEPRECATED("use svakit_event_read()")
static inline int svakit_events(svakit_machine *m, uint64_t since, struct svakit_event *out, size_t cap)
{
	return svakit_event_read(m, since, out, cap);
}

#ifdef __cplusplus
}
#endif

#endif /* SVAKIT_DEPRECATED_H */
