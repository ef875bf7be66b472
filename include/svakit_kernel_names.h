/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svakit_kernel_names.h - the kernel's names for SVAKit's calls (opt-in).
 *
 * A harness written like kernel code may call the kernel's names for the
 * functions that model them. They are opt-in: include this header, or
 * define SVAKIT_KERNEL_NAMES before including svakit.h (which then includes
 * this one). They are function-like macros, so only a call is rewritten: a
 * struct member, a local variable or a function pointer of the includer's
 * own called pagetable_free stays what it is. Calling through such a member
 * needs parentheses, (ops->pagetable_free)(...), and taking the address of a
 * kernel name needs the svakit_ name.
 *
 * Only functions named by rule 1 of svakit.h's naming rule (the kernel's own
 * name after svakit_) have a macro here, and only those whose arguments keep
 * the kernel's order: the machine first, outputs last, the DMA API's cpu
 * after the kernel's arguments. Not aliased: iommu_domain_alloc,
 * iommu_detach_device, iommu_attach_device_pasid and
 * iommu_setup_default_domain (other arguments), dma_map_page (a page and an
 * offset, where SVAKit takes one physical address), dma_alloc_coherent (it
 * returns the CPU address), cpa_collapse_large_pages (a cpa_data), and the
 * IOVA library (include/linux/iova.h's names take no machine, and iova.c
 * itself is compiled beside SVAKit by tests-c/kernel/iova).
 * SVAKIT_KERNEL_NAMES replaces the SVAKIT_NO_KERNEL_NAMES switch of 0.1.0,
 * whose object-like aliases were on by default; until 0.6.0 these macros
 * sat at the end of svakit.h.
 */
#ifndef SVAKIT_KERNEL_NAMES_H
#define SVAKIT_KERNEL_NAMES_H

#include "svakit.h"

/* SVA (iommu-sva.c) and the fix under test. */
#define iommu_sva_bind_device(...) svakit_iommu_sva_bind_device(__VA_ARGS__)
#define iommu_sva_unbind_device(...) svakit_iommu_sva_unbind_device(__VA_ARGS__)
#define iommu_sva_get_pasid(...) svakit_iommu_sva_get_pasid(__VA_ARGS__)
#define iommu_sva_invalidate_kva_range(...) svakit_iommu_sva_invalidate_kva_range(__VA_ARGS__)
/* Page tables and the kernel paths. */
#define pagetable_free(...) svakit_pagetable_free(__VA_ARGS__)
#define pagetable_free_kernel(...) svakit_pagetable_free_kernel(__VA_ARGS__)
#define flush_tlb_kernel_range(...) svakit_flush_tlb_kernel_range(__VA_ARGS__)
/* The IOMMU API over DMA domains. */
#define iommu_domain_free(...) svakit_iommu_domain_free(__VA_ARGS__)
#define iommu_attach_device(...) svakit_iommu_attach_device(__VA_ARGS__)
#define iommu_map(...) svakit_iommu_map(__VA_ARGS__)
#define iommu_unmap(...) svakit_iommu_unmap(__VA_ARGS__)
#define iommu_iova_to_phys(...) svakit_iommu_iova_to_phys(__VA_ARGS__)
/* The DMA API. */
#define dma_unmap_page(...) svakit_dma_unmap_page(__VA_ARGS__)
#define dma_map_sg(...) svakit_dma_map_sg(__VA_ARGS__)
#define dma_unmap_sg(...) svakit_dma_unmap_sg(__VA_ARGS__)
#define dma_free_coherent(...) svakit_dma_free_coherent(__VA_ARGS__)

#endif /* SVAKIT_KERNEL_NAMES_H */
