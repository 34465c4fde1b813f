/* The cells and flows a job's fragment declares, for the SPANK plugin (rtvio_spank.c). */
#ifndef RTVIO_SPANK_H
#define RTVIO_SPANK_H

#define RS_NAMES_MAX 1024

/* Space-separated names: every [cell] section, those with vm = yes, every [flow]. */
struct rs_cells {
	char all[RS_NAMES_MAX];
	char vm[RS_NAMES_MAX];
	char flows[RS_NAMES_MAX];
};

/* Reads FILE with libinih; 0, -ENOENT/-EINVAL (unreadable, bad INI) or -ENOSPC. */
int rs_cells_of(const char *file, struct rs_cells *out);

#endif
