/* The [platform] section: its keys, and reading, checking and writing it on its own
 * (`rtvio calibrate` writes it, `rtvio analyze` reads it). */
#include "config_int.h"
#include "units.h"

#include <errno.h>
#include <string.h>

int cfg_open_platform(struct parser *ps, int line, const char *name)
{
	(void)name;
	if (ps->platform_line)
		return cfg_fail(ps, line, "section [platform] given twice (first at line %d)",
				ps->platform_line);
	ps->platform_line = line;
	ps->cfg->platform.line = line;
	return 0;
}

int cfg_platform_key(struct parser *ps, const struct keyctx *k, int key)
{
	struct rtvio_platform_cfg *p = &ps->cfg->platform;
	uint64_t *const slot[] = { &p->copy_bandwidth, &p->chunk_overhead, &p->packet_overhead,
				   &p->ingest_latency, &p->notify_latency, &p->ingest_step,
				   &p->batch_gap, &p->change_step, &p->vhost_user_msg,
				   &p->vhost_user_map, &p->wake_write };

	if (key == 0) {
		const char *why = NULL;

		if (rtvio_parse_bandwidth(k->value, &p->copy_bandwidth, &why))
			return cfg_bad_value(k, why);
		if (p->copy_bandwidth == 0)
			return cfg_key_fail(k, "'%s': expected a bandwidth above zero", k->value);
	} else if (cfg_get_time(k, 0, slot[key])) {
		return ps->ret;
	}
	p->present |= 1u << key;
	return 0;
}

/* Keys [platform] no longer has, each with why: an old file that gives one fails
 * with the reason rather than as an unknown key. */
bool cfg_platform_removed(const struct keyctx *k)
{
	if (strcmp(k->key, "page_fault"))
		return false;
	cfg_key_fail(k, "no longer a key: the broker seals a process cell's memory and "
		     "touches no cell memory before its memory thread has faulted it in, so "
		     "the data path takes no page fault a cell can cause and none is charged "
		     "(docs/analysis.md, \"Page faults on cell memory\"): remove the line");
	return true;
}

int rtvio_platform_load(const char *path, struct rtvio_platform_cfg *plat, char *err,
			size_t errlen)
{
	struct rtvio_config cfg;
	struct parser ps = { .file = path, .err = err, .errlen = errlen, .platform_only = true };
	int ret;

	memset(plat, 0, sizeof(*plat));
	cfg_defaults(&cfg);
	ps.cfg = &cfg;
	ps.f = fopen(path, "r");
	if (!ps.f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	ret = cfg_run(&ps);
	if (ps.read_errno) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ps.read_errno));
		ret = -ps.read_errno;
	}
	fclose(ps.f);
	/* A file given for its platform costs that has none (a misspelt or missing
	 * section) must not silently leave the caller with whatever it had. */
	if (!ret && !ps.platform_line) {
		snprintf(err, errlen, "%s: no [platform] section", path);
		ret = -ENOENT;
	}
	cfg_parser_free(&ps);
	rtvio_config_free(&cfg);
	if (ret)
		return ret;
	*plat = cfg.platform;
	snprintf(plat->path, sizeof(plat->path), "%s", path);
	return 0;
}

int rtvio_platform_missing(const struct rtvio_platform_cfg *plat, char *buf, size_t len)
{
	int missing = 0;
	size_t n = 0;

	if (len)
		buf[0] = '\0';
	for (int i = 0; cfg_platform_keys[i]; i++) {
		if ((plat->present & (1u << i)) || !(RTVIO_PLAT_ALL & (1u << i)))
			continue;
		if (len > n) {
			int w = snprintf(buf + n, len - n, "%s%s", missing ? ", " : "", cfg_platform_keys[i]);

			if (w > 0)
				n += (size_t)w;
		}
		missing++;
	}
	return missing;
}

int rtvio_platform_write(FILE *f, const struct rtvio_platform_cfg *p)
{
	const uint64_t v[] = { p->copy_bandwidth, p->chunk_overhead, p->packet_overhead,
			       p->ingest_latency, p->notify_latency, p->ingest_step,
			       p->batch_gap, p->change_step, p->vhost_user_msg,
			       p->vhost_user_map, p->wake_write };
	char b[48];

	if (fprintf(f, "[platform]\n") < 0)
		return -EIO;
	for (int i = 0; cfg_platform_keys[i]; i++) {
		if (!(p->present & (1u << i)))
			continue;
		if (i == 0)
			rtvio_fmt_bandwidth(b, sizeof(b), v[i]);
		else
			rtvio_fmt_time(b, sizeof(b), v[i]);
		if (fprintf(f, "%s = %s\n", cfg_platform_keys[i], b) < 0)
			return -EIO;
	}
	return 0;
}
