/* `rtvio broker CONFIG [--verbose]`: the broker daemon. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker_cmds.h"
#include "config.h"
#include "daemon.h"
#include "dataplane.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: rtvio broker CONFIG [--verbose]\n"
		   "\n"
		   "Serves one vhost-user-vsock socket per configured cell at\n"
		   "<socket_dir>/<cell>.sock and moves vsock traffic between the cells\n"
		   "by the config's flows and policy; statistics on <socket_dir>/control.sock\n"
		   "(`rtvio stat`). Prints \"rtvio broker: ready, ...\" once it serves, and\n"
		   "stops cleanly on SIGTERM or SIGINT.\n"
		   "\n"
		   "  --verbose   log connections, ring start/stop and refused messages\n"
		   "\n"
		   "Exit status: 0 after a clean stop, 2 bad usage or configuration, 1 failure.\n");
}

int cmd_broker(int argc, char **argv)
{
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
