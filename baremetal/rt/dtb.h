/* Just enough of a flattened device tree to read /chosen/bootargs (the -append
 * string QEMU puts there on Arm and RISC-V virt machines). */
#ifndef RTVIO_BAREMETAL_DTB_H
#define RTVIO_BAREMETAL_DTB_H

#include <stdint.h>

/* The bootargs string inside the blob at `dtb`, or "" when the blob is not a DTB or
 * has none. The blob is the loader's and trusted no further than its own bounds. */
const char *dtb_bootargs(uintptr_t dtb);

#endif
