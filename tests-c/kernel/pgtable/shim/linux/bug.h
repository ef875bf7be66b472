/* SPDX-License-Identifier: Apache-2.0 */
/* Linux header stand-in: everything is in ../kshim.h. */
#include "../kshim.h"
