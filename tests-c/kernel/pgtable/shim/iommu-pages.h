/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stands in for drivers/iommu/iommu-pages.h (not extracted): io-pgtable-arm.c
 * includes it as "iommu-pages.h", which finds this file through the include
 * path. iommu_alloc_pages_node() and iommu_free_pages() are the driver's
 * recording allocator (tests-c/kernel/pgtable/diff_pgtable.c).
 */
#include "kshim.h"
