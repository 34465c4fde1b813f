/* [host NAME] sections: the broker's host endpoint (broker/host.c). It is a cell of
 * the configuration like any other (flows name it as from/to, the analysis and the
 * data plane see an ordinary cell) with the host's CID and no vhost-user socket of
 * its own: the broker plays its driver side and bridges it to Unix sockets. */
#include "config_int.h"

#include <string.h>

enum { HK_UDS_PATH, HK_CONNECTIONS };

int cfg_open_host(struct parser *ps, int line, const char *name)
{
	if (cfg_open_cell(ps, line, name))
		return ps->ret;
	struct rtvio_cell_cfg *c = &ps->cfg->cells[ps->index];

	c->host = true;
	c->cid = RTVIO_HOST_CID;
	/* The CID is implied: the cross-cell checks must not ask for one. */
	ps->cell_raw[ps->index].set |= 1u << CK_CID;
	ps->cell_raw[ps->index].key_line[CK_CID] = line;
	return 0;
}

int cfg_host_key(struct parser *ps, const struct keyctx *k, int key)
{
	struct rtvio_cell_cfg *c = &ps->cfg->cells[ps->index];
	size_t len = strlen(k->value);

	if (key == HK_CONNECTIONS)
		return cfg_cell_key(ps, k, CK_CONNECTIONS);
	if (k->value[0] != '/')
		return cfg_key_fail(k, "'%s': expected an absolute path", k->value);
	if (cfg_text_value(k))
		return ps->ret;
	if (len > RTVIO_UDS_PATH_MAX)
		return cfg_key_fail(k, "'%s' is too long (at most %d characters, so that "
				    "<uds_path>_<port> fits a Unix socket path)", k->value,
				    RTVIO_UDS_PATH_MAX);
	memcpy(c->uds_path, k->value, len + 1);
	return 0;
}

int cfg_check_hosts(struct parser *ps)
{
	const struct rtvio_config *cfg = ps->cfg;
	int first = -1;

	for (int i = 0; i < cfg->ncells; i++) {
		const struct rtvio_cell_cfg *c = &cfg->cells[i];

		if (!c->host)
			continue;
		if (!c->uds_path[0])
			return cfg_fail(ps, c->line, "[host %s]: missing key 'uds_path'", c->name);
		if (first >= 0)
			return cfg_fail(ps, c->line, "[host %s]: only one [host] section (the host "
					"has one CID, 2; [host %s] is at line %d)", c->name,
					cfg->cells[first].name, cfg->cells[first].line);
		first = i;
	}
	return 0;
}
