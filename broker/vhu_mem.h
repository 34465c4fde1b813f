/* A front end's memory in the broker (docs/broker.md, "No page fault a cell can
 * cause"): the memory table checked against the cell's limit, each region mapped
 * (a process cell's file whole, once, then sealed; a VM's region on its own), its
 * mappings handed to the memory thread (populate.h) and, when a table goes, released
 * to it; and the SIGBUS guard over every mapped range (vhost_user.h). Loop only. */
#ifndef RTVIO_BROKER_VHU_MEM_H
#define RTVIO_BROKER_VHU_MEM_H

#include "vhost_user.h"

/* The n regions of table t into nr[], mapped (or pointed into mappings the current
 * table has) and sealed, the descriptors fds[0..n) left open for the caller. 0, or
 * -errno with nothing of nr left mapped and every file unsealed. */
int vhu_mem_map(struct vhu_backend *b, const struct vhu_mem_table *t, unsigned int n,
		const int *fds, struct vhu_region *nr);

/* The table b->regions now holds is the front end's: its new mappings are guarded
 * and queued for the memory thread. */
void vhu_mem_start(struct vhu_backend *b);

/* regs[0..n) stop using their mappings; a mapping nobody uses any more goes to the
 * memory thread to be unmapped (its guard first). */
void vhu_mem_release(struct vhu_backend *b, struct vhu_region *regs, unsigned int n);

#endif
