/* A configuration written back as INI (the configs `rtvio demo` and `rtvio bench`
 * generate), and the names of its enumerations. */
#include "config.h"
#include "units.h"

#include <errno.h>
#include <string.h>

/* A VM cell's launch keys; image and args only when given (their defaults are the
 * launcher's). */
static int dump_vm(const struct rtvio_vm_cfg *v, FILE *f)
{
	char x[48], y[48];
	int rc = fprintf(f, "arch = %s\nkind = %s\n", rtvio_vm_arch_name(v->arch),
			 rtvio_vm_kind_name(v->kind));

	if (rc >= 0 && v->image[0])
		rc = fprintf(f, "image = %s\n", v->image);
	if (rc >= 0 && v->args[0])
		rc = fprintf(f, "args = %s\n", v->args);
	if (rc >= 0 && v->cpu_quota_ns)
		rc = fprintf(f, "cpu_max = %s/%s\n", rtvio_fmt_time(x, sizeof(x), v->cpu_quota_ns),
			     rtvio_fmt_time(y, sizeof(y), v->cpu_period_ns));
	return rc < 0 ? -EIO : 0;
}

static int dump_cpus(const struct rtvio_broker_cfg *b, FILE *f)
{
	int rc = fprintf(f, "cpus = ");

	for (int i = 0; rc >= 0 && i < b->ncores; i++)
		rc = fprintf(f, "%s%d", i ? "," : "", b->cpus[i]);
	if (rc >= 0)
		rc = fprintf(f, "\ncopy_slots = %d\n", b->copy_slots);
	return rc < 0;
}

int rtvio_config_dump(const struct rtvio_config *cfg, FILE *f)
{
	const struct rtvio_broker_cfg *b = &cfg->broker;
	char x[48], y[48], z[48];
	int ret = 0;

#define OUT(...) do { if (fprintf(f, __VA_ARGS__) < 0) ret = -EIO; } while (0)
	OUT("[broker]\npolicy = %s\nchunk = %s\nsocket_dir = %s\n", rtvio_policy_name(b->policy),
	    rtvio_fmt_size(x, sizeof(x), b->chunk), b->socket_dir);
	if (b->ncores > 1)
		ret = dump_cpus(b, f) ? -EIO : ret;
	else
		OUT("cpu = %d\n", b->cpu);
	OUT("rt_priority = %d\n"
	    "poll = %s\ndefault = %s\nregulation_budget = %s\nregulation_period = %s\ncopy = %s\n"
	    "pm_qos = %s\n",
	    b->rt_priority, b->poll ? "yes" : "no",
	    b->default_best_effort ? "best-effort" : "deny",
	    rtvio_fmt_size(y, sizeof(y), b->regulation_budget),
	    rtvio_fmt_time(z, sizeof(z), b->regulation_period_ns), rtvio_copy_name(b->copy),
	    b->pm_qos ? "yes" : "no");
	OUT("vhost_user_budget = %u/%s\n", (unsigned)b->vhu_msgs,
	    rtvio_fmt_time(z, sizeof(z), b->vhu_period_ns));
	OUT("vhost_user_maps = %u/%s\n", (unsigned)b->vhu_maps,
	    rtvio_fmt_time(z, sizeof(z), b->vhu_map_period_ns));
	OUT("vhost_user_total = %u/%s\n", (unsigned)b->vhu_total_msgs,
	    rtvio_fmt_time(z, sizeof(z), b->vhu_total_period_ns));
	OUT("vhost_user_total_maps = %u/%s\n", (unsigned)b->vhu_total_maps,
	    rtvio_fmt_time(z, sizeof(z), b->vhu_total_map_period_ns));
	OUT("budget_period = %s\n", rtvio_fmt_time(z, sizeof(z), b->budget_period_ns ?
							   b->budget_period_ns : RTVIO_BUDGET_PERIOD_DEFAULT_NS));
	if (b->max_cells)
		OUT("max_cells = %d\n", b->max_cells);
	if (b->max_flows)
		OUT("max_flows = %d\n", b->max_flows);
	for (int i = 0; i < cfg->ncells; i++) {
		const struct rtvio_cell_cfg *c = &cfg->cells[i];

		if (c->host) {
			OUT("\n[host %s]\nuds_path = %s\nconnections = %u\n", c->name, c->uds_path,
			    (unsigned)c->connections);
			continue;
		}
		OUT("\n[cell %s]\ncid = %u\nvm = %s\n", c->name, c->cid, c->vm ? "yes" : "no");
		if (c->vm)
			OUT("memory = %s\n", rtvio_fmt_size(x, sizeof(x), c->memory));
		else
			OUT("region = %s\n", rtvio_fmt_size(x, sizeof(x), c->region));
		OUT("rx_buf = %s\nmax_packet = %s\ncpu = %d\nrt_priority = %d\nconnections = %u\n"
		    "poll_us = %u\nallowance = %u\n",
		    rtvio_fmt_size(x, sizeof(x), c->rx_buf), rtvio_fmt_size(y, sizeof(y), c->max_packet),
		    c->cpu, c->rt_priority, (unsigned)c->connections, (unsigned)c->poll_us,
		    (unsigned)c->allowance);
		if (c->broker_core >= 0)
			OUT("broker_core = %d\n", c->broker_core);
		if (c->vm)
			ret = dump_vm(&c->vmc, f) ? -EIO : ret;
	}
	ret = rtvio_dump_remotes(cfg, f) ? -EIO : ret;
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *fl = &cfg->flows[i];

		OUT("\n[flow %s]\nfrom = ", fl->name);
		ret = rtvio_dump_flow_end(cfg, fl, false, f) ? -EIO : ret;
		OUT("\nto = ");
		ret = rtvio_dump_flow_end(cfg, fl, true, f) ? -EIO : ret;
		OUT("\ntype = %s\nsize = %s\nclass = %s\n",
		    rtvio_sock_type_name(fl->type), rtvio_fmt_size(x, sizeof(x), fl->size),
		    fl->best_effort ? "best-effort" : "real-time");
		if (!fl->best_effort) {
			OUT("period = %s\n", rtvio_fmt_time(x, sizeof(x), fl->period_ns));
			OUT("deadline = %s\n", rtvio_fmt_time(x, sizeof(x), fl->deadline_ns));
			OUT("jitter = %s\n", rtvio_fmt_time(x, sizeof(x), fl->jitter_ns));
			if (fl->priority)
				OUT("priority = %d\n", fl->priority);
		}
	}
	for (int i = 0; i < cfg->nworkloads; i++) {
		const struct rtvio_workload_cfg *w = &cfg->workloads[i];

		OUT("\n[workload %s]\nflow = %s\n", w->name, cfg->flows[w->flow].name);
		if (w->set & RTVIO_WL_PATTERN)
			OUT("pattern = %s\n", rtvio_pattern_name(w->pattern));
		if (w->set & RTVIO_WL_SIZE)
			OUT("size = %s\n", rtvio_fmt_size(x, sizeof(x), w->size));
		if (w->set & RTVIO_WL_PERIOD)
			OUT("period = %s\n", rtvio_fmt_time(x, sizeof(x), w->period_ns));
		if (w->set & RTVIO_WL_OFFSET)
			OUT("offset = %s\n", rtvio_fmt_time(x, sizeof(x), w->offset_ns));
		if (w->set & RTVIO_WL_COUNT)
			OUT("count = %llu\n", (unsigned long long)w->count);
	}
#undef OUT
	if (cfg->platform.line || cfg->platform.present) {
		if (fprintf(f, "\n") < 0)
			ret = -EIO;
		int r = rtvio_platform_write(f, &cfg->platform);

		if (r)
			ret = r;
	}
	return ret;
}

const char *rtvio_policy_name(enum rtvio_policy p)
{
	switch (p) {
	case RTVIO_POLICY_FP: return "fp";
	case RTVIO_POLICY_EDF: return "edf";
	case RTVIO_POLICY_FIFO: return "fifo";
	}
	return "?";
}

int rtvio_policy_parse(const char *s, enum rtvio_policy *p)
{
	static const enum rtvio_policy all[] = { RTVIO_POLICY_FP, RTVIO_POLICY_EDF,
						 RTVIO_POLICY_FIFO };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(s, rtvio_policy_name(all[i])) == 0) {
			*p = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

const char *rtvio_copy_name(enum rtvio_copy c)
{
	return c == RTVIO_COPY_NT ? "nt" : "normal";
}

const char *rtvio_sock_type_name(enum rtvio_sock_type t)
{
	return t == RTVIO_SEQPACKET ? "seqpacket" : "stream";
}

const char *rtvio_pattern_name(enum rtvio_pattern p)
{
	switch (p) {
	case RTVIO_PATTERN_PERIODIC: return "periodic";
	case RTVIO_PATTERN_BULK: return "bulk";
	case RTVIO_PATTERN_OFF: return "off";
	}
	return "?";
}
