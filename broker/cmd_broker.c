/* `rtvio broker CONFIG [--verbose] [--strict]`: the broker daemon. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker_cmds.h"
#include "config.h"
#include "daemon.h"
#include "dataplane.h"
#include "model.h"
#include "verdict.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: rtvio broker CONFIG [--verbose] [--strict]\n"
		   "\n"
		   "Serves one vhost-user-vsock socket per configured cell at\n"
		   "<socket_dir>/<cell>.sock and moves vsock traffic between the cells\n"
		   "by the config's flows and policy; statistics on <socket_dir>/control.sock\n"
		   "(`rtvio stat`). Prints \"rtvio broker: ready, ...\" once it serves, and\n"
		   "stops cleanly on SIGTERM or SIGINT.\n"
		   "\n"
		   "At start the configuration goes through `rtvio analyze`'s analysis with\n"
		   "its own [platform] costs: a flow that would miss its deadline, an overload\n"
		   "or missing costs are reported as a warning.\n"
		   "\n"
		   "  --verbose   log connections, ring start/stop and refused messages\n"
		   "  --strict    refuse to start unless every real-time flow is schedulable\n"
		   "\n"
		   "Exit status: 0 after a clean stop, 2 bad usage or configuration (or no\n"
		   "platform costs under --strict), 1 failure or, under --strict, not\n"
		   "schedulable.\n");
}

/* The analysis's word on cfg before the broker serves it: -1 to go on, else the exit
 * status (--strict only refuses). */
static int check_schedulable(const struct rtvio_config *cfg, const char *path, bool strict)
{
	struct an_verdict v;
	int r = an_config_verdict(cfg, &v);
	const char *lead = strict ? "error" : "warning";

	if (r == 0)
		return -1;
	if (r == -ENODATA)
		fprintf(stderr, "rtvio broker: %s: %s cannot be checked for schedulability: %s "
			"(`rtvio calibrate` measures them)\n", lead, path, v.text);
	else if (r == 1)
		fprintf(stderr, "rtvio broker: %s: %s is not schedulable (`rtvio analyze %s`):\n%s",
			lead, path, path, v.text);
	else
		fprintf(stderr, "rtvio broker: %s: %s could not be analysed: %s\n%s", lead, path,
			strerror(-r), v.text);
	if (!strict)
		return -1;
	return r == 1 ? 1 : 2;
}

/* A cell that can take a data-plane core's cpu voids every bound: said at start. */
static void over_core_warning(const struct rtvio_config *cfg, const char *path)
{
	int c = model_cell_over_core(cfg);

	if (c >= 0)
		fprintf(stderr, "rtvio broker: warning: %s: cell %s runs on cpu %d, which a "
			"data-plane core shares without a real-time priority above the cell's: "
			"the cell can delay the broker, and no bound holds (give the broker "
			"rt_priority above its cells', or cpus of its own)\n", path,
			cfg->cells[c].name, cfg->cells[c].cpu);
}

int cmd_broker(int argc, char **argv)
{
	bool strict = false;
	struct broker_opts opts = { .verbose = false };
	struct rtvio_config cfg;
	const char *path = NULL;
	struct broker *b;
	char err[512];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
			opts.verbose = true;
		} else if (!strcmp(argv[i], "--strict")) {
			strict = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "rtvio broker: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (!path) {
			path = argv[i];
		} else {
			fprintf(stderr, "rtvio broker: more than one CONFIG given ('%s')\n", argv[i]);
			return 2;
		}
	}
	if (!path) {
		usage(stderr);
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	if (rtvio_config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "rtvio broker: %s\n", err);
		rtvio_config_free(&cfg);
		return 2;
	}
	over_core_warning(&cfg, path);
	rc = check_schedulable(&cfg, path, strict);
	if (rc >= 0) {
		rtvio_config_free(&cfg);
		return rc;
	}
	rc = broker_open(&cfg, &opts, &b, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "rtvio broker: %s\n", err);
		rtvio_config_free(&cfg);
		return rc == -EINVAL ? 2 : 1;
	}
	broker_apply_rt(b);
	printf("rtvio broker: ready, %d cells, %d flows, policy %s, poll %s, socket_dir %s\n",
	       cfg.ncells, cfg.nflows, rtvio_policy_name(cfg.broker.policy),
	       cfg.broker.poll ? "yes" : "no", cfg.broker.socket_dir);
	fflush(stdout);
	rc = broker_run(b);
	broker_close(b);
	rtvio_config_free(&cfg);
	if (rc < 0) {
		fprintf(stderr, "rtvio broker: stopped on an error: %s\n", strerror(-rc));
		return 1;
	}
	if (opts.verbose)
		fprintf(stderr, "rtvio broker: stopped\n");
	return 0;
}
