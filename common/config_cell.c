/* [cell NAME] sections: defaults, keys, and the checks across cells (names, cids,
 * socket paths). */
#include "config_int.h"

#include <string.h>

int cfg_open_cell(struct parser *ps, int line, const char *name)
{
	struct rtvio_config *cfg = ps->cfg;
	int i = rtvio_config_find_cell(cfg, name);

	if (i >= 0)
		return cfg_fail(ps, line, "duplicate cell name '%s' (first at line %d)", name,
				cfg->cells[i].line);
	if (cfg->ncells >= RTVIO_MAX_CELLS)
		return cfg_fail(ps, line, "too many cells (at most %d)", RTVIO_MAX_CELLS);
	/* The cells and their raw records share one capacity, ps->cap_cells. */
	int cap = ps->cap_cells;
	struct rtvio_cell_cfg *c = cfg_grow(cfg->cells, &cap, cfg->ncells + 1, sizeof(*c));

	if (!c)
		return cfg_fail(ps, line, "out of memory");
	cfg->cells = c;
	struct raw *r = cfg_grow(ps->cell_raw, &ps->cap_cells, cfg->ncells + 1, sizeof(*r));

	if (!r)
		return cfg_fail(ps, line, "out of memory");
	ps->cell_raw = r;
	c = &cfg->cells[cfg->ncells];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->region = 2ull << 20;
	c->memory = 256ull << 20;
	c->rx_buf = 4096;
	c->max_packet = 65536;
	c->cpu = -1;
	c->broker_core = -1;
	c->connections = RTVIO_CONNECTIONS_DEFAULT;
	c->allowance = RTVIO_ALLOWANCE_DEFAULT;
	c->line = line;
	ps->index = cfg->ncells++;
	return 0;
}

int cfg_cell_key(struct parser *ps, const struct keyctx *k, int key)
{
	struct rtvio_cell_cfg *c = &ps->cfg->cells[ps->index];
	long long v;

	switch (key) {
	case CK_CID:
		if (cfg_get_int(k, RTVIO_MIN_CID, 0xfffffffell, &v))
			return ps->ret;
		c->cid = (uint32_t)v;
		return 0;
	case CK_VM:
		return cfg_get_bool(k, &c->vm);
	case CK_REGION:
		if (cfg_get_size(k, 64 * 1024, 1ull << 34, &c->region))
			return ps->ret;
		if (c->region % 4096)
			return cfg_key_fail(k, "'%s': expected a multiple of 4KiB (a whole number of pages)",
					k->value);
		return 0;
	case CK_MEMORY:
		if (cfg_get_size(k, 16ull << 20, 1ull << 40, &c->memory))
			return ps->ret;
		if (c->memory % (1ull << 20))
			return cfg_key_fail(k, "'%s': expected a multiple of 1MiB", k->value);
		return 0;
	case CK_RX_BUF:
		/* Large buffers cost the cell region only: the broker still copies at most
		 * `chunk` per step into any of them. */
		return cfg_get_size(k, 64, 1ull << 20, &c->rx_buf);
	case CK_MAX_PACKET:
		return cfg_get_size(k, 1, 65536, &c->max_packet);
	case CK_CPU:
		if (cfg_get_int(k, -1, 1023, &v))
			return ps->ret;
		c->cpu = (int)v;
		return 0;
	case CK_RT_PRIORITY:
		if (cfg_get_int(k, 0, 99, &v))
			return ps->ret;
		c->rt_priority = (int)v;
		return 0;
	case CK_POLL_US:
		/* Microseconds, as the key says: a spin is short; a second is plenty. */
		if (cfg_get_int(k, 0, 1000000, &v))
			return ps->ret;
		c->poll_us = (uint32_t)v;
		return 0;
	case CK_CONNECTIONS:
		if (cfg_get_int(k, 1, RTVIO_CONNECTIONS_MAX, &v))
			return ps->ret;
		c->connections = (uint32_t)v;
		return 0;
	case CK_BROKER_CORE:
		if (cfg_get_int(k, 0, RTVIO_MAX_BROKER_CORES - 1, &v))
			return ps->ret;
		c->broker_core = (int)v;
		return 0;
	case CK_ALLOWANCE:
		if (cfg_get_int(k, 1, RTVIO_ALLOWANCE_MAX, &v))
			return ps->ret;
		c->allowance = (uint32_t)v;
		return 0;
	}
	return cfg_vm_key(ps, k, key);
}

int cfg_check_cells(struct parser *ps)
{
	struct rtvio_config *cfg = ps->cfg;
	size_t dirlen = strlen(cfg->broker.socket_dir);

	if (cfg->ncells == 0)
		return cfg_fail(ps, 0, "no [cell NAME] section (a configuration needs at least one cell)");
	if (dirlen + sizeof("/control.sock") > RTVIO_PATH_MAX)
		return cfg_fail(ps, ps->broker_key_line[2], "[broker] key 'socket_dir': '%s' is too "
			    "long for "
			    "a socket path (at most %zu characters)", cfg->broker.socket_dir,
			    RTVIO_PATH_MAX - sizeof("/control.sock"));
	for (int i = 0; i < cfg->ncells; i++) {
		struct rtvio_cell_cfg *c = &cfg->cells[i];
		struct raw *r = &ps->cell_raw[i];

		if (!(r->set & (1u << CK_CID)))
			return cfg_fail(ps, c->line, "[cell %s]: missing key 'cid' (a vsock address, 3 or more)",
				    c->name);
		if (strcmp(c->name, "control") == 0)
			return cfg_fail(ps, c->line, "[cell control]: the name 'control' is reserved "
				    "(<socket_dir>/control.sock is the broker's control socket)");
		if (dirlen + 1 + strlen(c->name) + sizeof(".sock") > RTVIO_PATH_MAX)
			return cfg_fail(ps, c->line, "[cell %s]: socket path %s/%s.sock is too long "
				    "(at most %d characters)", c->name, cfg->broker.socket_dir, c->name,
				    RTVIO_PATH_MAX - 1);
		if (c->vm && (r->set & (1u << CK_REGION)))
			return cfg_fail(ps, r->key_line[CK_REGION], "[cell %s] key 'region': applies to "
				    "process cells only (this cell has vm = yes; use 'memory')", c->name);
		if (!c->vm && (r->set & (1u << CK_MEMORY)))
			return cfg_fail(ps, r->key_line[CK_MEMORY], "[cell %s] key 'memory': applies to "
				    "vm cells only (add vm = yes, or use 'region')", c->name);
		if (cfg_check_vm_keys(ps, i))
			return ps->ret;
		if (c->broker_core >= cfg->broker.ncores)
			return cfg_fail(ps, r->key_line[CK_BROKER_CORE], "[cell %s] key 'broker_core': "
				    "%d, but the broker has %d core%s (expected 0..%d: an index into "
				    "[broker] cpus)", c->name, c->broker_core, cfg->broker.ncores,
				    cfg->broker.ncores == 1 ? "" : "s", cfg->broker.ncores - 1);
		for (int j = 0; j < i; j++) {
			if (cfg->cells[j].cid == c->cid)
				return cfg_fail(ps, r->key_line[CK_CID], "[cell %s] key 'cid': duplicate "
					    "cid %u (already used by cell %s at line %d)", c->name,
					    c->cid, cfg->cells[j].name, cfg->cells[j].line);
		}
	}
	return 0;
}
