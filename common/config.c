/* The configuration loader: libinih splits the file into (section, key, value) and
 * the handler here passes each key to its section (config_<section>.c); after the
 * file, the cross-section checks run. One clear message for the first thing that is
 * wrong. See config.h, config_int.h and docs/config.md. */
#include "config_int.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

/* Keys of each section, in the order docs/config.md lists them. The index of a key
 * is its bit in the "seen" masks. */
const char *const cfg_broker_keys[] = { "policy", "chunk", "socket_dir", "cpu",
	"rt_priority", "poll", "default", "regulation_budget", "regulation_period", "copy",
	"pm_qos", "max_cells", "max_flows", "cpus", "copy_slots", "vhost_user_budget",
	"vhost_user_maps", "budget_period", "vhost_user_total", "vhost_user_total_maps", NULL };
const char *const cfg_cell_keys[] = { "cid", "vm", "region", "memory", "rx_buf",
	"max_packet", "cpu", "rt_priority", "connections", "poll_us", "arch", "kind", "image", "args",
	"cpu_max", "broker_core", "allowance", NULL };
const char *const cfg_flow_keys[] = { "from", "to", "type", "size", "period",
	"deadline", "jitter", "priority", "class", NULL };
const char *const cfg_workload_keys[] = { "flow", "pattern", "size", "period", "offset",
	"count", NULL };
const char *const cfg_platform_keys[] = { "copy_bandwidth", "chunk_overhead",
	"packet_overhead", "ingest_latency", "notify_latency", "ingest_step", "batch_gap",
	"change_step", "vhost_user_msg", "vhost_user_map", "wake_write", NULL };
const char *const cfg_remote_keys[] = { "gateway", "domain", "peers", "network_budget",
	"remote_bound", NULL };
const char *const cfg_host_keys[] = { "uds_path", "connections", NULL };

#define NKEYS(keys) (sizeof(keys) / sizeof(keys[0]) - 1)
_Static_assert(NKEYS(cfg_cell_keys) <= CFG_MAX_KEYS && NKEYS(cfg_workload_keys) <= CFG_MAX_KEYS &&
	       NKEYS(cfg_flow_keys) == FK_COUNT && FK_COUNT <= CFG_MAX_KEYS,
	       "struct raw holds a line for every key");
_Static_assert(NKEYS(cfg_broker_keys) <= 24, "broker_key_line holds every [broker] key");

/* "from, to, type, ..." for "expected one of" messages. */
static const char *key_list(const char *const *keys, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; keys[i]; i++) {
		int w = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", keys[i]);

		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

static int key_index(const char *const *keys, const char *name)
{
	for (int i = 0; keys[i]; i++) {
		if (strcmp(keys[i], name) == 0)
			return i;
	}
	return -1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *ps = user;
	const char *const *keys;
	char list[256];

	if (ps->ret)
		return 0;
	/* A repeated header with the same text ([cell a] twice) is a new section too. */
	if (!ps->in_section || strcmp(section, ps->section_raw) != 0 ||
	    ps->header_line != ps->section_header_line) {
		if (cfg_open_section(ps, section))
			return 0;
	}
	ps->header_keys++;
	if (ps->kind == K_SKIP)
		return 1;

	switch (ps->kind) {
	case K_BROKER: keys = cfg_broker_keys; break;
	case K_CELL: keys = cfg_cell_keys; break;
	case K_FLOW: keys = cfg_flow_keys; break;
	case K_WORKLOAD: keys = cfg_workload_keys; break;
	case K_PLATFORM: keys = cfg_platform_keys; break;
	case K_REMOTE: keys = cfg_remote_keys; break;
	case K_HOST: keys = cfg_host_keys; break;
	default: return 0;
	}
	struct keyctx k = { ps, name, value, ps->lineno };
	int key = key_index(keys, name);

	if (key < 0 && ps->kind == K_PLATFORM && cfg_platform_removed(&k))
		return 0;
	if (key < 0) {
		cfg_key_fail(&k, "unknown key (expected one of: %s)", key_list(keys, list, sizeof(list)));
		return 0;
	}
	if (ps->seen & (1u << key)) {
		/* Also catches an indented line, which inih reads as a continuation. */
		cfg_key_fail(&k, "given twice in one section (an indented line continues the key above it)");
		return 0;
	}
	ps->seen |= 1u << key;

	switch (ps->kind) {
	case K_BROKER:
		ps->broker_set |= 1u << key;
		ps->broker_key_line[key] = k.line;
		cfg_broker_key(ps, &k, key);
		break;
	case K_CELL:
		ps->cell_raw[ps->index].set |= 1u << key;
		ps->cell_raw[ps->index].key_line[key] = k.line;
		cfg_cell_key(ps, &k, key);
		break;
	case K_FLOW:
		ps->flow_raw[ps->index].set |= 1u << key;
		ps->flow_raw[ps->index].key_line[key] = k.line;
		cfg_flow_key(ps, &k, key);
		break;
	case K_WORKLOAD:
		ps->wl_raw[ps->index].set |= 1u << key;
		ps->wl_raw[ps->index].key_line[key] = k.line;
		cfg_workload_key(ps, &k, key);
		break;
	case K_PLATFORM:
		cfg_platform_key(ps, &k, key);
		break;
	case K_REMOTE:
		ps->remote_raw[ps->index].set |= 1u << key;
		ps->remote_raw[ps->index].key_line[key] = k.line;
		cfg_remote_key(ps, &k, key);
		break;
	case K_HOST:
		cfg_host_key(ps, &k, key);
		break;
	default:
		break;
	}
	return ps->ret ? 0 : 1;
}

void cfg_defaults(struct rtvio_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->broker.policy = RTVIO_POLICY_FP;
	cfg->broker.chunk = 4096;
	snprintf(cfg->broker.socket_dir, sizeof(cfg->broker.socket_dir), "/tmp/rtvio");
	cfg->broker.cpu = -1;
	cfg->broker.cpus[0] = -1;
	cfg->broker.regulation_period_ns = 1000000;
	cfg->broker.budget_period_ns = RTVIO_BUDGET_PERIOD_DEFAULT_NS;
	cfg->broker.pm_qos = true;
	cfg->broker.vhu_msgs = RTVIO_VHU_MSGS_DEFAULT;
	cfg->broker.vhu_period_ns = RTVIO_VHU_PERIOD_DEFAULT_NS;
	cfg->broker.vhu_maps = RTVIO_VHU_MAPS_DEFAULT;
	cfg->broker.vhu_map_period_ns = RTVIO_VHU_MAP_PERIOD_DEFAULT_NS;
	cfg->broker.vhu_total_msgs = RTVIO_VHU_TOTAL_MSGS_DEFAULT;
	cfg->broker.vhu_total_period_ns = RTVIO_VHU_PERIOD_DEFAULT_NS;
	cfg->broker.vhu_total_maps = RTVIO_VHU_TOTAL_MAPS_DEFAULT;
	cfg->broker.vhu_total_map_period_ns = RTVIO_VHU_MAP_PERIOD_DEFAULT_NS;
	cfg->platform.vhost_user_msg = RTVIO_PLAT_VHU_MSG_DEFAULT_NS;
	cfg->platform.vhost_user_map = RTVIO_PLAT_VHU_MAP_DEFAULT_NS;
}

void cfg_parser_free(struct parser *ps)
{
	free(ps->cell_raw);
	free(ps->flow_raw);
	free(ps->wl_raw);
	free(ps->remote_raw);
}

int cfg_run(struct parser *ps)
{
	int line = ini_parse_stream(cfg_header_reader, ps, handler, ps);

	/* inih reports the first line its handler refused or it could not parse. Ours
	 * stop the reader at once, so an earlier line is a syntax error of inih's. */
	if (line > 0 && (!ps->ret || line < ps->lineno)) {
		ps->ret = 0;
		cfg_fail(ps, line, "syntax error (expected '[section]', 'key = value' or a comment)");
	} else if (line < 0 && !ps->ret) {
		cfg_fail(ps, 0, "out of memory");
	}
	return ps->ret;
}

static int load(struct parser *ps, struct rtvio_config *cfg)
{
	cfg_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", ps->file);
	ps->cfg = cfg;
	if (!cfg_run(ps) && !cfg_check_broker(ps) && !cfg_check_hosts(ps) &&
	    !cfg_check_cells(ps) && !cfg_check_remotes(ps) && !cfg_check_flows(ps))
		cfg_check_workloads(ps);
	if (!ps->ret && cfg->platform.line)
		snprintf(cfg->platform.path, sizeof(cfg->platform.path), "%s", ps->file);
	cfg_parser_free(ps);
	if (ps->ret) {
		rtvio_config_free(cfg);
		memset(cfg, 0, sizeof(*cfg));
	}
	return ps->ret;
}

int rtvio_config_load(const char *path, struct rtvio_config *cfg, char *err, size_t errlen)
{
	struct parser ps = { .file = path, .err = err, .errlen = errlen };
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	ps.f = fopen(path, "r");
	if (!ps.f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	ret = load(&ps, cfg);
	/* The read error outranks whatever the truncated text made the parser say. */
	if (ps.read_errno) {
		rtvio_config_free(cfg);
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ps.read_errno));
		ret = -ps.read_errno;
	}
	fclose(ps.f);
	return ret;
}

int rtvio_config_parse(const char *text, const char *name, struct rtvio_config *cfg, char *err,
		       size_t errlen)
{
	struct parser ps = { .file = name, .err = err, .errlen = errlen, .text = text };

	memset(cfg, 0, sizeof(*cfg));
	return load(&ps, cfg);
}

void rtvio_config_free(struct rtvio_config *cfg)
{
	free(cfg->cells);
	free(cfg->flows);
	free(cfg->workloads);
	free(cfg->remotes);
	cfg->remotes = NULL;
	cfg->nremotes = 0;
	cfg->cells = NULL;
	cfg->flows = NULL;
	cfg->workloads = NULL;
	cfg->ncells = cfg->nflows = cfg->nworkloads = 0;
}

int rtvio_config_find_cell(const struct rtvio_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->ncells; i++) {
		if (strcmp(cfg->cells[i].name, name) == 0)
			return i;
	}
	return -ENOENT;
}

int rtvio_config_find_cell_by_cid(const struct rtvio_config *cfg, uint32_t cid)
{
	for (int i = 0; i < cfg->ncells; i++) {
		if (cfg->cells[i].cid == cid)
			return i;
	}
	return -ENOENT;
}

int rtvio_config_find_flow(const struct rtvio_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nflows; i++) {
		if (strcmp(cfg->flows[i].name, name) == 0)
			return i;
	}
	return -ENOENT;
}

int rtvio_config_match_flow(const struct rtvio_config *cfg, int from_cell, uint32_t from_port,
			    int to_cell, uint32_t to_port)
{
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *fl = &cfg->flows[i];

		if (fl->from == from_cell && fl->to == to_cell && fl->to_port == to_port &&
		    (fl->from_port == RTVIO_PORT_ANY || fl->from_port == from_port))
			return i;
	}
	return -ENOENT;
}
