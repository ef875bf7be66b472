/* SPDX-License-Identifier: Apache-2.0 */
/* Shim for <linux/types.h>: everything is in kshim.h. */
#include "../kshim.h"
