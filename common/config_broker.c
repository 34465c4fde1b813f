/* The [broker] section: its keys and the checks that need the whole section. */
#include "config_int.h"
#include "units.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cfg_open_broker(struct parser *ps, int line, const char *name)
{
	(void)name;
	if (ps->broker_line)
		return cfg_fail(ps, line, "section [broker] given twice (first at line %d)",
				ps->broker_line);
	ps->broker_line = line;
	ps->cfg->broker.line = line;
	return 0;
}

/* "1,2,3": distinct cpus, one data-plane thread each. */
static int get_cpus(const struct keyctx *k, struct rtvio_broker_cfg *b)
{
	const char *p = k->value;
	int n = 0;

	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p || v < 0 || v > 1023)
			return cfg_key_fail(k, "'%s': expected a list of cpu numbers 0..1023, "
					    "separated by commas", k->value);
		if (n == RTVIO_MAX_BROKER_CORES)
			return cfg_key_fail(k, "'%s': at most %d cores", k->value,
					    RTVIO_MAX_BROKER_CORES);
		for (int i = 0; i < n; i++) {
			if (b->cpus[i] == (int)v)
				return cfg_key_fail(k, "'%s': cpu %ld is listed twice", k->value, v);
		}
		b->cpus[n++] = (int)v;
		p = end + strspn(end, " \t");
		if (*p == ',')
			p += 1 + strspn(p + 1, " \t");
		else if (*p)
			return cfg_key_fail(k, "'%s': expected a list of cpu numbers 0..1023, "
					    "separated by commas", k->value);
	}
	if (!n)
		return cfg_key_fail(k, "expected a list of cpu numbers (for example 1,2)");
	b->ncores = n;
	return 0;
}

/* "8/5ms": messages per period (vhost_user_budget, vhost_user_maps: per cell;
 * vhost_user_total, vhost_user_total_maps: for the whole broker). */
static int get_vhu_rate(const struct keyctx *k, uint32_t *count, uint64_t *period)
{
	static const char form[] = "expected MESSAGES/PERIOD, for example 8/5ms";
	char num[32], tm[64];
	const char *slash = strchr(k->value, '/'), *why = NULL;
	long long v;
	uint64_t ns;
	size_t n = slash ? (size_t)(slash - k->value) : 0;

	if (!slash || n == 0 || n >= sizeof(num) || strlen(slash + 1) >= sizeof(tm))
		return cfg_bad_value(k, form);
	memcpy(num, k->value, n);
	num[n] = '\0';
	snprintf(tm, sizeof(tm), "%s", slash + 1);
	if (rtvio_parse_int(num, 1, RTVIO_VHU_MSGS_MAX, &v, &why))
		return cfg_key_fail(k, "'%s': the message count must be a whole number from 1 "
				    "to %u (%s)", k->value, RTVIO_VHU_MSGS_MAX, form);
	if (rtvio_parse_time(tm, RTVIO_UNIT_REQUIRED, &ns, &why))
		return cfg_key_fail(k, "'%s': the period: %s (%s)", k->value, why, form);
	if (ns < RTVIO_VHU_PERIOD_MIN_NS || ns > 1000000000ull)
		return cfg_key_fail(k, "'%s': the period must be from 100us to 1s", k->value);
	*count = (uint32_t)v;
	*period = ns;
	return 0;
}

/* budget_period: a time from RTVIO_BUDGET_PERIOD_MIN_NS to _MAX_NS. Shorter, and
 * the per-period allowance would be charged so often that it alone could fill a
 * core; longer, and a deadline window would wait periods too long for it. */
static int get_budget_period(const struct keyctx *k, uint64_t *out)
{
	char a[32], b[32];
	uint64_t t;
	int ret = cfg_get_time(k, 1, &t);

	if (ret)
		return ret;
	if (t < RTVIO_BUDGET_PERIOD_MIN_NS || t > RTVIO_BUDGET_PERIOD_MAX_NS)
		return cfg_key_fail(k, "'%s': expected a time from %s to %s", k->value,
				    rtvio_fmt_time(a, sizeof(a), RTVIO_BUDGET_PERIOD_MIN_NS),
				    rtvio_fmt_time(b, sizeof(b), RTVIO_BUDGET_PERIOD_MAX_NS));
	*out = t;
	return 0;
}

int cfg_broker_key(struct parser *ps, const struct keyctx *k, int key)
{
	static const char *const policies[] = { "fp", "edf", "fifo", NULL };
	static const char *const defaults[] = { "deny", "best-effort", NULL };
	static const char *const copies[] = { "normal", "nt", NULL };
	struct rtvio_broker_cfg *b = &ps->cfg->broker;
	long long v;
	int w;

	switch (key) {
	case 0:
		if (cfg_get_word(k, policies, &w))
			return ps->ret;
		b->policy = (enum rtvio_policy)w;
		return 0;
	case 1:
		return cfg_get_size(k, 1, RTVIO_MAX_MSG_SIZE, &b->chunk);
	case 2:
		if (!*k->value)
			return cfg_key_fail(k, "expected a directory");
		if (cfg_text_value(k))
			return ps->ret;
		if (strlen(k->value) >= sizeof(b->socket_dir))
			return cfg_key_fail(k, "'%s': path too long (at most %zu characters)", k->value,
					sizeof(b->socket_dir) - 1);
		snprintf(b->socket_dir, sizeof(b->socket_dir), "%s", k->value);
		b->socket_dir_line = k->line;
		return 0;
	case 3:
		if (cfg_get_int(k, -1, 1023, &v))
			return ps->ret;
		b->cpu = (int)v;
		return 0;
	case 4:
		if (cfg_get_int(k, 0, 99, &v))
			return ps->ret;
		b->rt_priority = (int)v;
		return 0;
	case 5:
		return cfg_get_bool(k, &b->poll);
	case 6:
		if (cfg_get_word(k, defaults, &w))
			return ps->ret;
		b->default_best_effort = w == 1;
		return 0;
	case 7:
		return cfg_get_size(k, 0, UINT64_MAX, &b->regulation_budget);
	case 8:
		return cfg_get_time(k, 1, &b->regulation_period_ns);
	case 9:
		if (cfg_get_word(k, copies, &w))
			return ps->ret;
		b->copy = w == 1 ? RTVIO_COPY_NT : RTVIO_COPY_NORMAL;
		return 0;
	case 10:
		return cfg_get_bool(k, &b->pm_qos);
	case 11:
		if (cfg_get_int(k, 1, RTVIO_MAX_CELLS, &v))
			return ps->ret;
		b->max_cells = (int)v;
		return 0;
	case 12:
		if (cfg_get_int(k, 1, RTVIO_MAX_FLOWS, &v))
			return ps->ret;
		b->max_flows = (int)v;
		return 0;
	case 13:
		return get_cpus(k, b);
	case 14:
		if (cfg_get_int(k, 1, RTVIO_MAX_BROKER_CORES, &v))
			return ps->ret;
		b->copy_slots = (int)v;
		return 0;
	case 15:
		return get_vhu_rate(k, &b->vhu_msgs, &b->vhu_period_ns);
	case 16:
		return get_vhu_rate(k, &b->vhu_maps, &b->vhu_map_period_ns);
	case 17:
		return get_budget_period(k, &b->budget_period_ns);
	case 18:
		return get_vhu_rate(k, &b->vhu_total_msgs, &b->vhu_total_period_ns);
	case 19:
		return get_vhu_rate(k, &b->vhu_total_maps, &b->vhu_total_map_period_ns);
	}
	return 0;
}

/* The directory of the config file, absolute; false when it cannot be known. */
static bool config_dir(const char *file, char *dir, size_t len)
{
	const char *slash = strrchr(file, '/');
	size_t n = slash ? (size_t)(slash - file) : 0, have = 0;

	if (file[0] != '/') {
		if (!getcwd(dir, len))
			return false;
		have = strlen(dir);
		if (n && have > 1 && have + 1 < len)
			dir[have++] = '/';
	} else if (n == 0) {
		n = 1; /* the file is in / */
	}
	if (have + n >= len)
		return false;
	memcpy(dir + have, file, n);
	dir[have + n] = '\0';
	return true;
}

/* A relative socket_dir names a directory next to the config file, whatever the
 * current directory of the command that reads it (`rtvio stat CONFIG` from
 * anywhere). Every consumer sees the absolute path. */
static int resolve_socket_dir(struct parser *ps)
{
	struct rtvio_broker_cfg *b = &ps->cfg->broker;
	char dir[4096], rel[RTVIO_PATH_MAX], full[4096 + RTVIO_PATH_MAX];
	const char *r = rel;

	if (b->socket_dir[0] == '/')
		return 0;
	snprintf(rel, sizeof(rel), "%s", b->socket_dir);
	if (!config_dir(ps->file, dir, sizeof(dir)))
		return cfg_fail(ps, b->socket_dir_line, "[broker] key 'socket_dir': '%s': relative, and "
				"the config file's directory cannot be found", rel);
	while (r[0] == '.' && r[1] == '/')
		r += 2;
	if (strcmp(r, ".") == 0)
		r = "";
	snprintf(full, sizeof(full), "%s%s%s", dir, *r && strcmp(dir, "/") ? "/" : "", r);
	if (strlen(full) >= sizeof(b->socket_dir))
		return cfg_fail(ps, b->socket_dir_line, "[broker] key 'socket_dir': '%s' is relative "
				"to the config file's directory, and %s is too long (at most %zu "
				"characters)", rel, full, sizeof(b->socket_dir) - 1);
	memcpy(b->socket_dir, full, strlen(full) + 1); /* fits: checked above */
	return 0;
}

/* The broker creates socket_dir when it is missing; a path that cannot be a
 * directory at all is the config's error, said where the config says it. */
static int check_socket_dir(struct parser *ps)
{
	const struct rtvio_broker_cfg *b = &ps->cfg->broker;
	const char *given = b->socket_dir_line ? "" : " (the default)";
	struct stat st;

	if (stat(b->socket_dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return cfg_fail(ps, b->socket_dir_line, "[broker] key 'socket_dir'%s: %s exists and "
				"is not a directory", given, b->socket_dir);
	if (stat(b->socket_dir, &st) < 0 && errno == ENOTDIR)
		return cfg_fail(ps, b->socket_dir_line, "[broker] key 'socket_dir'%s: %s: a part of "
				"the path is not a directory", given, b->socket_dir);
	return 0;
}

int cfg_check_broker(struct parser *ps)
{
	struct rtvio_broker_cfg *b = &ps->cfg->broker;
	char a[32], c[32];

	if (b->regulation_budget && b->regulation_budget < b->chunk)
		return cfg_fail(ps, ps->broker_key_line[7], "[broker] key 'regulation_budget': %s is "
			    "smaller than chunk "
			    "(%s), so a chunk could never be copied (expected 0 or at least chunk)",
			    rtvio_fmt_size(a, sizeof(a), b->regulation_budget),
			    rtvio_fmt_size(c, sizeof(c), b->chunk));
	/* Room for cells and flows added at run time (broker/live.c); what the file
	 * itself configures must fit. */
	if (b->max_cells && b->max_cells < ps->cfg->ncells)
		return cfg_fail(ps, ps->broker_key_line[11], "[broker] key 'max_cells': %d is "
				"smaller than the %d cells configured", b->max_cells, ps->cfg->ncells);
	if (b->max_flows && b->max_flows < ps->cfg->nflows)
		return cfg_fail(ps, ps->broker_key_line[12], "[broker] key 'max_flows': %d is "
				"smaller than the %d flows configured", b->max_flows, ps->cfg->nflows);
	if (ps->broker_key_line[3] && ps->broker_key_line[13])
		return cfg_fail(ps, ps->broker_key_line[13], "[broker] key 'cpus': 'cpu' is given "
				"too (line %d): give one of them", ps->broker_key_line[3]);
	if (b->ncores)
		b->cpu = b->cpus[0];
	else
		b->ncores = 1, b->cpus[0] = b->cpu;
	if (b->copy_slots > b->ncores)
		return cfg_fail(ps, ps->broker_key_line[14], "[broker] key 'copy_slots': %d, but the "
				"broker has %d core%s (expected 1..%d: at most every core copies at "
				"once)", b->copy_slots, b->ncores, b->ncores == 1 ? "" : "s", b->ncores);
	if (!b->copy_slots)
		b->copy_slots = b->ncores;
	if (resolve_socket_dir(ps))
		return ps->ret;
	return check_socket_dir(ps);
}
