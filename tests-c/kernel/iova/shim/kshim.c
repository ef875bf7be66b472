// SPDX-License-Identifier: Apache-2.0
/* The out-of-line part of the shim (kshim.h). */
#include "kshim.h"

unsigned long shim_warnings;
unsigned int shim_nr_cpus = 1;
unsigned int shim_current_cpu;

/* Per-CPU areas: a size word, then SHIM_MAX_CPUS slots of that size. */
void *shim_alloc_percpu(size_t size)
{
	size_t stride = (size + 63) & ~(size_t)63;
	char *p = calloc(1, 64 + stride * SHIM_MAX_CPUS);

	if (!p)
		return NULL;
	*(size_t *)p = stride;
	return p + 64;
}

void *shim_per_cpu_ptr(void *p, unsigned int cpu)
{
	char *base = (char *)p - 64;

	assert(cpu < shim_nr_cpus && cpu < SHIM_MAX_CPUS);
	return (char *)p + *(size_t *)base * cpu;
}

struct kmem_cache *kmem_cache_create(const char *name, unsigned int size, unsigned int align,
				     unsigned int flags, void (*ctor)(void *))
{
	struct kmem_cache *c = calloc(1, sizeof(*c));

	(void)name; (void)align; (void)flags; (void)ctor;
	if (c)
		c->size = size;
	return c;
}

void kmem_cache_destroy(struct kmem_cache *c)
{
	free(c);
}

#define SHIM_MAX_WORKS 64
static struct delayed_work *works[SHIM_MAX_WORKS];
static int nworks;

void shim_init_delayed_work(struct delayed_work *dw, work_func_t fn)
{
	dw->work.func = fn;
	dw->pending = 0;
	dw->delay = 0;
	assert(nworks < SHIM_MAX_WORKS);
	dw->registered = 1;
	works[nworks++] = dw;
}

bool schedule_delayed_work(struct delayed_work *dw, unsigned long delay)
{
	if (dw->pending)
		return false;
	dw->pending = 1;
	dw->delay = delay;
	return true;
}

bool cancel_delayed_work_sync(struct delayed_work *dw)
{
	bool was = dw->pending;

	dw->pending = 0;
	for (int i = 0; i < nworks; i++)
		if (works[i] == dw)
			works[i] = NULL;
	return was;
}

int shim_run_pending_works(void)
{
	int ran = 0;

	for (int i = 0; i < nworks; i++) {
		struct delayed_work *dw = works[i];

		if (dw && dw->pending) {
			dw->pending = 0;
			dw->work.func(&dw->work);
			ran++;
		}
	}
	return ran;
}

void shim_reset_works(void)
{
	nworks = 0;
}
