/* The [broker] section: its keys and the checks that need the whole section. */
#include "config_int.h"
#include "units.h"

#include <stdint.h>
#include <string.h>

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
		if (strlen(k->value) >= sizeof(b->socket_dir))
			return cfg_key_fail(k, "'%s': path too long (at most %zu characters)", k->value,
					sizeof(b->socket_dir) - 1);
		snprintf(b->socket_dir, sizeof(b->socket_dir), "%s", k->value);
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
	}
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
	return 0;
}
