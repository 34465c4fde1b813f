/* [remote NAME] sections and the flows that end on another broker (docs/gateway.md).
 *
 * A remote names another broker reached over DDS and the local gateway cell that
 * carries its flows. A flow with `to = BROKER/CELL:PORT` (outgoing) or
 * `from = BROKER/CELL[:PORT]` (incoming) runs, on this broker, between its local
 * cell and that gateway cell: the rest of rtvio sees an ordinary flow, and only the
 * gateway and the analysis look at flow->rem. */
#include "config_int.h"

#include "units.h"

#include <errno.h>
#include <string.h>

enum { RK_GATEWAY, RK_DOMAIN, RK_PEERS, RK_NETWORK_BUDGET, RK_REMOTE_BOUND };

int rtvio_config_find_remote(const struct rtvio_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nremotes; i++) {
		if (strcmp(cfg->remotes[i].name, name) == 0)
			return i;
	}
	return -1;
}

int cfg_open_remote(struct parser *ps, int line, const char *name)
{
	struct rtvio_config *cfg = ps->cfg;
	int i = rtvio_config_find_remote(cfg, name);

	if (i >= 0)
		return cfg_fail(ps, line, "duplicate remote name '%s' (first at line %d)", name,
				cfg->remotes[i].line);
	if (cfg->nremotes >= RTVIO_MAX_REMOTES)
		return cfg_fail(ps, line, "too many remotes (at most %d)", RTVIO_MAX_REMOTES);
	/* The remotes and their raw records share one capacity, ps->cap_remotes. */
	int cap = ps->cap_remotes;
	struct rtvio_remote_cfg *rm = cfg_grow(cfg->remotes, &cap, cfg->nremotes + 1, sizeof(*rm));

	if (!rm)
		return cfg_fail(ps, line, "out of memory");
	cfg->remotes = rm;
	struct raw *r = cfg_grow(ps->remote_raw, &ps->cap_remotes, cfg->nremotes + 1, sizeof(*r));

	if (!r)
		return cfg_fail(ps, line, "out of memory");
	ps->remote_raw = r;
	rm = &cfg->remotes[cfg->nremotes];
	snprintf(rm->name, sizeof(rm->name), "%s", name);
	rm->gateway = -1;
	snprintf(rm->peers, sizeof(rm->peers), "127.0.0.1");
	rm->line = line;
	ps->index = cfg->nremotes++;
	return 0;
}

/* Peers: addresses separated by blanks, each of [0-9A-Za-z.:-] (IPv4, IPv6, names). */
static int get_peers(const struct keyctx *k, char *out, size_t len)
{
	size_t n = strlen(k->value);

	if (n == 0 || n >= len)
		return cfg_key_fail(k, "'%s': expected 1 to %zu characters of addresses", k->value,
				    len - 1);
	for (size_t i = 0; i < n; i++) {
		char c = k->value[i];

		if (!(c == ' ' || c == '.' || c == ':' || c == '-' || (c >= '0' && c <= '9') ||
		      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return cfg_key_fail(k, "'%s': expected addresses separated by spaces "
					    "(such as 127.0.0.1)", k->value);
	}
	memcpy(out, k->value, n + 1);
	return 0;
}

int cfg_remote_key(struct parser *ps, const struct keyctx *k, int key)
{
	struct rtvio_remote_cfg *rm = &ps->cfg->remotes[ps->index];
	struct raw *r = &ps->remote_raw[ps->index];
	long long v;

	switch (key) {
	case RK_GATEWAY:
		if (!cfg_valid_name(k->value))
			return cfg_key_fail(k, "'%s': expected the name of a [cell NAME]", k->value);
		snprintf(r->to, sizeof(r->to), "%s", k->value);
		return 0;
	case RK_DOMAIN:
		if (cfg_get_int(k, 0, RTVIO_DDS_DOMAIN_MAX, &v))
			return ps->ret;
		rm->domain = (uint32_t)v;
		return 0;
	case RK_PEERS:
		return get_peers(k, rm->peers, sizeof(rm->peers));
	case RK_NETWORK_BUDGET:
		return cfg_get_time(k, 0, &rm->network_budget_ns);
	case RK_REMOTE_BOUND:
		return cfg_get_time(k, 0, &rm->remote_bound_ns);
	}
	return 0;
}

int cfg_check_remotes(struct parser *ps)
{
	struct rtvio_config *cfg = ps->cfg;

	for (int i = 0; i < cfg->nremotes; i++) {
		struct rtvio_remote_cfg *rm = &cfg->remotes[i];
		struct raw *r = &ps->remote_raw[i];

		if (!(r->set & (1u << RK_GATEWAY)))
			return cfg_fail(ps, rm->line, "[remote %s]: missing key 'gateway' (the local "
				    "process cell that carries this remote's flows)", rm->name);
		if (!(r->set & (1u << RK_NETWORK_BUDGET)))
			return cfg_fail(ps, rm->line, "[remote %s]: missing key 'network_budget' (the "
				    "declared one-way time across the network, such as 2ms)",
				    rm->name);
		rm->gateway = rtvio_config_find_cell(cfg, r->to);
		if (rm->gateway < 0)
			return cfg_fail(ps, r->key_line[RK_GATEWAY], "[remote %s] key 'gateway': "
				    "unknown cell '%s' (no [cell %s] section)", rm->name, r->to, r->to);
		if (cfg->cells[rm->gateway].vm)
			return cfg_fail(ps, r->key_line[RK_GATEWAY], "[remote %s] key 'gateway': "
				    "cell '%s' is a VM cell (the gateway is a process cell)",
				    rm->name, r->to);
		for (int j = 0; j < i; j++) {
			if (cfg->remotes[j].gateway == rm->gateway)
				return cfg_fail(ps, r->key_line[RK_GATEWAY], "[remote %s] key "
					    "'gateway': cell '%s' is already the gateway of remote "
					    "%s (line %d); each remote has its own", rm->name, r->to,
					    cfg->remotes[j].name, cfg->remotes[j].line);
		}
	}
	return 0;
}

/* `to = BROKER/CELL:PORT` or `from = BROKER/CELL[:PORT]`: the far end is kept in
 * flow->rem and the broker's name in the raw record until the remotes are known. */
int cfg_remote_flow_end(struct parser *ps, const struct keyctx *k, bool to)
{
	struct rtvio_flow_cfg *fl = &ps->cfg->flows[ps->index];
	struct raw *r = &ps->flow_raw[ps->index];
	const char *slash = strchr(k->value, '/');
	size_t blen = (size_t)(slash - k->value);
	struct keyctx rest = *k;
	bool has_port;

	if (r->remote[0])
		return cfg_key_fail(k, "'%s': a flow has at most one end on another broker",
				    k->value);
	if (blen == 0 || blen >= RTVIO_NAME_MAX)
		return cfg_key_fail(k, "'%s': expected BROKER/CELL%s (BROKER a [remote NAME])",
				    k->value, to ? ":PORT" : "[:PORT]");
	memcpy(r->remote, k->value, blen);
	r->remote[blen] = '\0';
	if (!cfg_valid_name(r->remote))
		return cfg_key_fail(k, "'%s': '%s' is not a valid remote name", k->value, r->remote);
	rest.value = slash + 1;
	if (cfg_get_endpoint(&rest, fl->rem.cell, &fl->rem.port, &has_port))
		return ps->ret;
	if (to && !has_port)
		return cfg_key_fail(k, "'%s': expected BROKER/CELL:PORT (the port the remote "
				    "receiver listens on)", k->value);
	fl->rem.incoming = !to;
	if (to)
		fl->to_port = fl->rem.port;
	return 0;
}

int cfg_remote_resolve_flow(struct parser *ps, int flow)
{
	struct rtvio_config *cfg = ps->cfg;
	struct rtvio_flow_cfg *fl = &cfg->flows[flow];
	struct raw *r = &ps->flow_raw[flow];
	int key = fl->rem.incoming ? FK_FROM : FK_TO;

	if (!r->remote[0])
		return 0;
	int i = rtvio_config_find_remote(cfg, r->remote);

	if (i < 0)
		return cfg_fail(ps, r->key_line[key], "[flow %s] key '%s': unknown remote '%s' (no "
			    "[remote %s] section)", fl->name, cfg_flow_keys[key], r->remote,
			    r->remote);
	const char *gw = cfg->cells[cfg->remotes[i].gateway].name;

	/* Locally the flow joins its cell and the gateway, from any source port. */
	snprintf(fl->rem.incoming ? r->from : r->to, RTVIO_NAME_MAX, "%s", gw);
	if (fl->rem.incoming)
		fl->from_port = RTVIO_PORT_ANY;
	fl->rem.remote = i;
	return 0;
}

/* The dump writes the far end back as BROKER/CELL[:PORT] (config_dump.c). */
int rtvio_dump_remotes(const struct rtvio_config *cfg, FILE *f)
{
	char x[48], y[48];

	for (int i = 0; i < cfg->nremotes; i++) {
		const struct rtvio_remote_cfg *rm = &cfg->remotes[i];

		if (fprintf(f, "\n[remote %s]\ngateway = %s\ndomain = %u\npeers = %s\n"
			    "network_budget = %s\nremote_bound = %s\n", rm->name,
			    cfg->cells[rm->gateway].name, rm->domain, rm->peers,
			    rtvio_fmt_time(x, sizeof(x), rm->network_budget_ns),
			    rtvio_fmt_time(y, sizeof(y), rm->remote_bound_ns)) < 0)
			return -EIO;
	}
	return 0;
}

int rtvio_dump_flow_end(const struct rtvio_config *cfg, const struct rtvio_flow_cfg *fl,
			bool to, FILE *f)
{
	bool far = fl->rem.remote >= 0 && fl->rem.incoming != to;
	uint32_t port = to ? fl->to_port : fl->from_port;
	int rc;

	if (far) {
		rc = fprintf(f, "%s/%s", cfg->remotes[fl->rem.remote].name, fl->rem.cell);
		port = fl->rem.port;
	} else {
		rc = fprintf(f, "%s", cfg->cells[to ? fl->to : fl->from].name);
	}
	if (rc >= 0 && port != RTVIO_PORT_ANY)
		rc = fprintf(f, ":%u", port);
	return rc < 0 ? -EIO : 0;
}
