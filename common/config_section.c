/* Opening a section of the configuration: its header trimmed and split, then the
 * opener of its kind (config_<section>.c), which names it and gives its defaults. */
#include "config_int.h"

#include <stdlib.h>
#include <string.h>

void *cfg_grow(void *arr, int *cap, int need, size_t elem)
{
	if (need <= *cap)
		return arr;
	int ncap = *cap ? *cap * 2 : 16;

	while (ncap < need)
		ncap *= 2;
	void *n = realloc(arr, (size_t)ncap * elem);

	if (!n)
		return NULL;
	memset((char *)n + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
	*cap = ncap;
	return n;
}

/* Starts a new section: ps->section is its trimmed text, nothing of it seen yet. */
static void begin_section(struct parser *ps, const char *section)
{
	/* inih keeps blanks inside the brackets; "[ broker ]" means [broker]. */
	snprintf(ps->section_raw, sizeof(ps->section_raw), "%s", section);
	while (*section == ' ' || *section == '\t')
		section++;
	size_t len = strlen(section);

	while (len && (section[len - 1] == ' ' || section[len - 1] == '\t'))
		len--;
	snprintf(ps->section, sizeof(ps->section), "%.*s", (int)len, section);
	ps->in_section = true;
	ps->section_header_line = ps->header_line;
	ps->seen = 0;
	ps->index = -1;
	ps->kind = K_NONE;
}

int cfg_open_section(struct parser *ps, const char *section)
{
	static int (*const open[])(struct parser *ps, int line, const char *name) = {
		[K_BROKER] = cfg_open_broker, [K_CELL] = cfg_open_cell, [K_FLOW] = cfg_open_flow,
		[K_WORKLOAD] = cfg_open_workload, [K_PLATFORM] = cfg_open_platform,
		[K_REMOTE] = cfg_open_remote, [K_HOST] = cfg_open_host,
	};
	int line = ps->header_line ? ps->header_line : ps->lineno;
	const char *name;
	enum kind k;

	begin_section(ps, section);
	if (!*ps->section) {
		if (ps->platform_only) {
			ps->kind = K_SKIP;
			return 0;
		}
		return cfg_fail(ps, ps->lineno, "key outside any section (expected a [broker], [cell "
						"NAME], [flow NAME], [workload NAME] or [platform] "
						"line first)");
	}
	k = cfg_split_section(ps, line, ps->section, &name);
	if (k == K_NONE)
		return ps->ret;
	ps->kind = k;
	if ((size_t)k < sizeof(open) / sizeof(open[0]) && open[k])
		return open[k](ps, line, name);
	return 0;
}
