/* SPDX-License-Identifier: Apache-2.0 */
#include "svakit_core.h"

/* The ranks of the engine locks this thread holds (see LockRank.swift). */
static _Thread_local uint64_t held_ranks;

uint64_t svk_held_ranks(void) { return held_ranks; }
void svk_set_held_ranks(uint64_t ranks) { held_ranks = ranks; }
