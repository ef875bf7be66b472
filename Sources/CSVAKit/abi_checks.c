// SPDX-License-Identifier: Apache-2.0
/*
 * Compile-time checks that the layouts the C ABI shares with the Swift core
 * are what the header promises (as swift-nio's CNIOLinux does). The Swift side
 * repeats them with MemoryLayout in Tests/SVAKitTests/LayoutTests.swift.
 */
#include <stddef.h>
#include "svakit.h"

_Static_assert(sizeof(struct svakit_ptdesc) == 32, "ptdesc must stay 32 bytes");
_Static_assert(sizeof(struct svakit_queued_iova) == 32, "queued_iova");
/* struct map_benchmark of include/linux/map_benchmark.h, byte for byte. */
_Static_assert(sizeof(struct svakit_map_benchmark) == 136, "map_benchmark is 136 bytes");
_Static_assert(offsetof(struct svakit_map_benchmark, threads) == 32, "map_benchmark.threads");
_Static_assert(offsetof(struct svakit_map_benchmark, granule) == 56, "map_benchmark.granule");
_Static_assert(offsetof(struct svakit_map_benchmark, expansion) == 60, "map_benchmark.expansion");
_Static_assert(offsetof(struct svakit_ptdesc, generation) == 8, "ptdesc.generation");
_Static_assert(offsetof(struct svakit_ptdesc, lru_next) == 16, "ptdesc.lru_next");
_Static_assert(offsetof(struct svakit_ptdesc, pt_list_next) == 24, "ptdesc.pt_list_next");
_Static_assert(offsetof(struct svakit_ptdesc, map_count) == 28, "ptdesc.map_count");
_Static_assert(sizeof(struct svakit_event) == 40, "event must stay 40 bytes");
_Static_assert(sizeof(struct svakit_translation) == 32, "translation");
_Static_assert(sizeof(struct svakit_config) == 88, "config");
_Static_assert(offsetof(struct svakit_config, dma_strict) == 52, "config.dma_strict took reserved's place");
_Static_assert(offsetof(struct svakit_config, cpus) == 60, "config.cpus");
_Static_assert(offsetof(struct svakit_config, iommu_debug_pagealloc) == 64, "config.iommu_debug_pagealloc took reserved's place");
_Static_assert(offsetof(struct svakit_config, mitigation) == 68, "config.mitigation");
_Static_assert(offsetof(struct svakit_config, direct_gbpages) == 72, "config.direct_gbpages took reserved[0]'s place");
_Static_assert(offsetof(struct svakit_config, kworker_latency_us) == 76, "config.kworker_latency_us took reserved[1]'s place");
_Static_assert(offsetof(struct svakit_config, hz) == 80, "config.hz, new in 0.5");
_Static_assert(offsetof(struct svakit_config, dma_debug) == 84, "config.dma_debug, new in 0.5, in hz's padding");
/* MachineConfig reads work_mode as bit 0 (manual) and bit 1 (batched). */
_Static_assert(SVAKIT_WORK_THREAD_BATCHED == (SVAKIT_WORK_THREAD | 2), "work mode: batched is bit 1");
_Static_assert(SVAKIT_WORK_MANUAL_BATCHED == (SVAKIT_WORK_MANUAL | 2), "work mode: batched is bit 1");
_Static_assert(sizeof(struct svakit_iommu_config) == 56, "iommu config");
_Static_assert(offsetof(struct svakit_iommu_config, profile) == 48, "iommu config.profile");
_Static_assert(sizeof(struct svakit_iommu_commands) == 120, "iommu commands");
_Static_assert(offsetof(struct svakit_iommu_config, deferred_flush) == 28, "iommu config.deferred_flush");
_Static_assert(offsetof(struct svakit_iommu_config, seed) == 40, "iommu config.seed");
_Static_assert(sizeof(struct svakit_sg) == 32, "sg");
_Static_assert(sizeof(struct svakit_flush_queue_stats) == 8 * 8, "flush queue stats");
_Static_assert(offsetof(svakit_machine, iommu_sva_present) == 4, "the key sits in the public prefix");
_Static_assert(sizeof(struct svakit_uaf_report) == 120, "uaf report");
_Static_assert(offsetof(struct svakit_uaf_report, kind) == 80, "uaf report: the sanitizer's fields follow the walk's");
_Static_assert(sizeof(struct svakit_iommu_counters) == 17 * 8, "iommu counters");
_Static_assert(sizeof(struct svakit_dma_fault) == 16, "dma fault");
_Static_assert(sizeof(struct svakit_deferred_stats) == 6 * 8, "deferred stats");
_Static_assert(offsetof(svakit_machine, owner) == 8, "machine handle prefix");
_Static_assert(offsetof(svakit_machine, iommu_debug_initialized) == 24, "the sanitizer's key sits at 24");
_Static_assert(SVAKIT_SITE_COUNT <= 0xffff, "site fits ptdesc.site");

/* Keeps this translation unit non-empty for every compiler. */
int svakit__abi_checks_anchor(void);
int svakit__abi_checks_anchor(void) { return 0; }
