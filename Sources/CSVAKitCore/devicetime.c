/* SPDX-License-Identifier: Apache-2.0 */
#include "svakit_core.h"

/* Modelled IOMMU device time this thread's commands cost, in ns (see IOMMU/DeviceCost.swift). */
static _Thread_local uint64_t device_ns;

uint64_t svk_device_ns(void) { return device_ns; }
void svk_device_ns_add(uint64_t ns) { device_ns += ns; }
void svk_device_ns_reset(void) { device_ns = 0; }
