/* SPDX-License-Identifier: Apache-2.0 */
#include "svakit_core.h"

/* The simulated CPU this thread runs on (see DMA/CurrentCPU.swift); -1: none yet. */
static _Thread_local int64_t current_cpu = -1;

/* Round-robin tickets for threads that never chose a CPU. */
static int64_t next_ticket;

int64_t svk_current_cpu(void) { return current_cpu; }
void svk_set_current_cpu(int64_t cpu) { current_cpu = cpu; }
int64_t svk_next_cpu_ticket(void) { return __atomic_fetch_add(&next_ticket, 1, __ATOMIC_RELAXED); }
