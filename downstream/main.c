/* SPDX-License-Identifier: Apache-2.0 */
/* A C user of SVAKit: prints the library version and boots a machine. */
#include <stdio.h>
#include <string.h>
#include "svakit.h"

int main(void)
{
	struct svakit_config cfg;
	svakit_machine *m;
	uint64_t va;

	if (strcmp(svakit_version(), SVAKIT_VERSION_STRING) != 0) {
		fprintf(stderr, "version mismatch: library %s, header %s\n", svakit_version(),
			SVAKIT_VERSION_STRING);
		return 1;
	}
	svakit_config_default(&cfg);
	cfg.frames = 1u << 18;
	if (svakit_machine_create(&cfg, &m) || svakit_vmalloc(m, 4096, &va) || svakit_vfree(m, va))
		return 1;
	svakit_machine_destroy(m);
	printf("svakit %s\n", svakit_version());
	return 0;
}
