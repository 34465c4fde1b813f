/* The [cell] sections of a job's fragment, read with libinih. Only the names and
 * `vm` are read here: every other rule of the format is the broker's loader's, which
 * sees the same file when the plugin asks for admission. */
#include <errno.h>
#include <string.h>
#include <stdbool.h>

#include <ini.h>

#include "rtvio_spank.h"
#include "units.h"

struct rs_parse {
	struct rs_cells *out;
	char last[128];
	int err;
};

static int append(char *list, const char *name)
{
	size_t n = strlen(list), m = strlen(name);
	if (n + m + 2 > RS_NAMES_MAX)
		return -ENOSPC;
	if (n)
		list[n++] = ' ';
	memcpy(list + n, name, m + 1);
	return 0;
}

static const char *name_of(const char *section, const char *kind)
{
	size_t n = strlen(kind);
	if (strncmp(section, kind, n) != 0 || section[n] != ' ')
		return NULL;
	section += n;
	while (*section == ' ')
		section++;
	return *section ? section : NULL;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct rs_parse *p = user;
	const char *name = name_of(section, "cell");
	const char *flow = name_of(section, "flow");
	if (!name && !flow)
		return 1;
	/* A section's first key is where libinih first shows it to us. */
	if (strcmp(section, p->last) != 0) {
		if (strlen(section) >= sizeof p->last)
			return p->err = -ENOSPC, 0;
		strcpy(p->last, section);
		if ((p->err = append(name ? p->out->all : p->out->flows, name ? name : flow)) < 0)
			return 0;
	}
	if (!name)
		return 1;
	bool vm = false;
	/* The loader's own reading of a boolean; a bad one is the loader's to report. */
	if (!strcmp(key, "vm") && rtvio_parse_bool(value, &vm, NULL) == 0 && vm)
		if ((p->err = append(p->out->vm, name)) < 0)
			return 0;
	return 1;
}

int rs_cells_of(const char *file, struct rs_cells *out)
{
	struct rs_parse p = { .out = out };
	memset(out, 0, sizeof *out);
	int r = ini_parse(file, on_key, &p);
	if (p.err)
		return p.err;
	if (r == -1)
		return -ENOENT;
	return r ? -EINVAL : 0;
}
