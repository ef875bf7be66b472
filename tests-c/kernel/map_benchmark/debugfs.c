// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel's own dma_map_benchmark tool
 * (tools/testing/selftests/dma/dma_map_benchmark.c of linux-source-6.12,
 * compiled unmodified) against SVAKit: this file stands in for debugfs and
 * the kernel/dma/map_benchmark.c module behind it. The program is linked
 * with -Wl,--wrap=open,--wrap=ioctl, so the tool's
 * open("/sys/kernel/debug/dma_map_benchmark", O_RDWR) and its
 * ioctl(fd, DMA_MAP_BENCHMARK, &map) arrive here; every other open and
 * ioctl goes to the C library.
 *
 * The ioctl is svakit_dma_map_benchmark() on a fresh machine: one IOMMU,
 * one device on its default DMA domain, lazy (DMA-FQ) as Debian's 6.12
 * kernel boots (CONFIG_IOMMU_DEFAULT_DMA_LAZY=y) unless SVAKIT_DMA_STRICT=1,
 * SVAKIT_CPUS simulated CPUs (default 4), enough frames for every buffer.
 * After the run the machine must pass its consistency check with every
 * buffer frame freed (the data frames as many as before; the IOMMU tables
 * the maps built may stay, as in Linux); otherwise the ioctl fails with EIO.
 * An error is returned as the module returns it: -1 with errno set, so the
 * tool's perror("ioctl") prints it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/types.h>
#define NSEC_PER_MSEC 1000000L
#include <linux/map_benchmark.h>

#include "svakit.h"

_Static_assert(sizeof(struct map_benchmark) == sizeof(struct svakit_map_benchmark),
	       "struct svakit_map_benchmark is struct map_benchmark");

#define DEBUGFS_PATH "/sys/kernel/debug/dma_map_benchmark"

int __real_open(const char *path, int flags, ...);
int __real_ioctl(int fd, unsigned long request, ...);

/* The fd open() handed out for the debugfs file, or -1. */
static int benchmark_fd = -1;

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (path && strcmp(path, DEBUGFS_PATH) == 0) {
		/* A real descriptor, so the number is the tool's to keep. */
		benchmark_fd = __real_open("/dev/null", O_RDWR);
		return benchmark_fd;
	}
	return __real_open(path, flags, mode);
}

static unsigned int env_uint(const char *name, unsigned int dflt)
{
	const char *s = getenv(name);

	return s && *s ? (unsigned int)strtoul(s, NULL, 0) : dflt;
}

/* map_benchmark_ioctl() on a machine made for the run. */
static int map_benchmark_ioctl(struct map_benchmark *map)
{
	struct svakit_config cfg;
	struct svakit_iommu_config icfg;
	struct svakit_stats before, after;
	svakit_machine *m;
	uint32_t iommu, dev, domain, reason;
	uint64_t pages = 1024ull * (map->threads ? map->threads : 1) + (1 << 16);
	int rc;

	svakit_config_default(&cfg);
	cfg.frames = (pages < (1 << 18) ? (1 << 18) : pages + 1023) & ~1023ull;
	cfg.cpus = env_uint("SVAKIT_CPUS", 4);
	cfg.dma_strict = env_uint("SVAKIT_DMA_STRICT", 0);
	rc = svakit_machine_create(&cfg, &m);
	if (rc)
		return rc;
	svakit_iommu_config_default(&icfg);
	rc = svakit_iommu_create(m, &icfg, &iommu);
	if (!rc)
		rc = svakit_device_create(m, iommu, 0, 8, &dev);
	if (!rc)
		rc = svakit_iommu_setup_default_domain(m, dev, 0, &domain, &reason);
	if (!rc)
		rc = svakit_machine_stats(m, &before);
	if (!rc) {
		rc = svakit_dma_map_benchmark(m, dev, (struct svakit_map_benchmark *)map);
		/* Whatever the outcome: consistent, and every buffer frame back. */
		char why[512] = "";

		if (svakit_machine_check_text(m, why, sizeof(why)) != 0 || svakit_machine_stats(m, &after) != 0 ||
		    after.data_frames != before.data_frames) {
			fprintf(stderr, "map_benchmark: after the run: %s (data frames %llu, before %llu)\n", why,
				(unsigned long long)after.data_frames, (unsigned long long)before.data_frames);
			rc = rc ? rc : -EIO;
		}
	}
	svakit_machine_destroy(m);
	return rc;
}

int __wrap_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;
	int rc;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != benchmark_fd || benchmark_fd < 0)
		return __real_ioctl(fd, request, arg);
	/* The system call takes the command as an unsigned int: the tool
	 * passes an int, which the C library's prototype sign-extends. */
	if ((unsigned int)request != DMA_MAP_BENCHMARK) {
		errno = EINVAL;
		return -1;
	}
	rc = map_benchmark_ioctl(arg);
	if (rc) {
		errno = -rc;
		return -1;
	}
	return 0;
}
