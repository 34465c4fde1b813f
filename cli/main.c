/* rtvio: one binary, one subcommand per job. Each component exports its commands
 * through its own header; this table is the only place that knows them all. */
#include <stdio.h>
#include <string.h>

#include "analyze_cmd.h"
#include "bench_cmd.h"
#include "broker_cmds.h"
#include "cell_cmd.h"
#include "cmd_demo.h"
#include "gateway_cmd.h"
#include "platform_cmds.h"

/* `rtvio cell add|remove` changes a running broker; any other `rtvio cell` runs one. */
static int cmd_cell_or_change(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "add") || !strcmp(argv[1], "remove")))
		return cmd_change("cell", argc, argv);
	return cmd_cell(argc, argv);
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "broker", cmd_broker, "run the broker daemon on a config" },
	{ "cell", cmd_cell_or_change, "run a process cell's workload; cell add|remove: change a broker" },
	{ "flow", cmd_flow, "flow add|remove: change a running broker's flows" },
	{ "config", cmd_config, "config dump: the configuration a running broker has in force" },
	{ "demo", cmd_demo, "broker + process cells on a config, with a per-flow table" },
	{ "gateway", cmd_gateway, "carry a [remote]'s flows over Cyclone DDS" },
	{ "stat", cmd_stat, "statistics of a running broker" },
	{ "analyze", cmd_analyze, "latency bound for every configured flow" },
	{ "calibrate", cmd_calibrate, "measure the platform costs the analysis needs" },
	{ "membench", cmd_membench, "find how much DRAM bandwidth can be budgeted" },
	{ "hostile", cmd_hostile, "a cell that misbehaves on purpose, for tests and bench" },
	{ "hog", cmd_hog, "throttled memory-traffic generator" },
	{ "bench", cmd_bench, "evaluation against the alternatives, with reports" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: rtvio COMMAND [ARGS...]   (rtvio COMMAND --help for more)\n\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "rtvio: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
