/* SPDX-License-Identifier: Apache-2.0 */
#include "svakit_core.h"

/* The schedule explorer's actor this thread plays (SVAKitBase/Schedule); NULL
 * on threads the explorer did not start. Per thread, never shared: two
 * explorations in one process each set it only on their own actor threads. */
static _Thread_local void *current_actor;

void *svk_sched_current(void) { return current_actor; }
void svk_sched_set_current(void *actor) { current_actor = actor; }
