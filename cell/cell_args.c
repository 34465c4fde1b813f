/* `rtvio cell`'s command line, and the check that the cell's region holds its rings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>

#include "units.h"
#include "cell_run.h"

static void cell_usage(FILE *f)
{
	fprintf(f,
		"usage: rtvio cell CONFIG NAME [--duration S] [--json] [--ready-fd N] [--wait S]\n"
		"\n"
		"Runs process cell NAME of CONFIG: attaches to the broker on\n"
		"<socket_dir>/NAME.sock, receives and checks every flow to NAME, sends every\n"
		"flow from NAME (periodic: one message per period; bulk: as fast as credit\n"
		"allows), then prints per-flow results.\n"
		"\n"
		"  --duration S   stop after S seconds (default: at SIGTERM/SIGINT, or when\n"
		"                 every flow has finished)\n"
		"  --json         print one JSON document instead of a table\n"
		"  --ready-fd N   write \"ready\\n\" to descriptor N once attached and listening,\n"
		"                 then close it\n"
		"  --wait S       wait up to S seconds for the broker's socket (default 10)\n"
		"\n"
		"Exit status: 0 every message intact and in order; 1 broker unreachable or gone,\n"
		"a flow could not run, or messages lost/reordered/duplicated/corrupt; 2 bad usage\n"
		"or config.\n");
}

int cell_parse_args(int argc, char **argv, double *duration, bool *json, int *ready_fd,
		    double *wait, const char **conf, const char **name)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "wait", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	/* 0, not 1: glibc then resets all of getopt's state (the command may run
	 * more than once in one process, as in tests). */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "d:jr:w:h", opts, NULL)) != -1) {
		char *end;
		long v;

		switch (ch) {
		case 'd':
			*duration = strtod(optarg, &end);
			if (*end || !(*duration > 0) || *duration > 86400 * 365) {
				fprintf(stderr, "rtvio cell: --duration '%s': expected a positive "
						"number of seconds\n", optarg);
				return 2;
			}
			break;
		case 'j':
			*json = true;
			break;
		case 'w':
			*wait = strtod(optarg, &end);
			if (*end || !(*wait >= 0) || *wait > 3600) {
				fprintf(stderr, "rtvio cell: --wait '%s': expected seconds (0 to "
						"3600)\n", optarg);
				return 2;
			}
			break;
		case 'r':
			v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 1 << 20) {
				fprintf(stderr, "rtvio cell: --ready-fd '%s': expected a descriptor "
						"number\n", optarg);
				return 2;
			}
			*ready_fd = (int)v;
			break;
		case 'h':
			cell_usage(stdout);
			return 0;
		default:
			cell_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "rtvio cell: expected CONFIG and NAME\n");
		cell_usage(stderr);
		return 2;
	}
	*conf = argv[optind];
	*name = argv[optind + 1];
	return -1;
}

/* A port may carry a STREAM flow and a SEQPACKET flow (vsock allows it, and so does
 * the broker), but `rtvio cell` serves each port with one listener of one type: a
 * cell receiving both on one port says so here, at its own start. */
int cell_check_listeners(const char *conf, const struct rtvio_config *cfg, int me)
{
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *f = &cfg->flows[i];

		if (f->to != me || f->traffic.pattern == RTVIO_PATTERN_OFF)
			continue;
		for (int j = 0; j < i; j++) {
			const struct rtvio_flow_cfg *g = &cfg->flows[j];

			if (g->to != me || g->to_port != f->to_port || g->type == f->type ||
			    g->traffic.pattern == RTVIO_PATTERN_OFF)
				continue;
			fprintf(stderr, "rtvio cell %s: %s:%d: [flow %s] comes to port %u as %s, but "
					"[flow %s] (line %d) comes to the same port as %s: this cell "
					"listens with one socket type per port and cannot serve both\n",
				cfg->cells[me].name, conf, f->line, f->name, f->to_port,
				rtvio_sock_type_name(f->type), g->name, g->line,
				rtvio_sock_type_name(g->type));
			return -EINVAL;
		}
	}
	return 0;
}

/* The layout rtvio_cell_open makes (gvsock's default queue size) must fit the cell's
 * region: checked before anything starts, so that a region too small is reported as
 * the configuration error it is. The loader cannot check it: other process-cell
 * programs may lay out their rings differently. */
int cell_check_region(const char *conf, const struct rtvio_cell_cfg *cell)
{
	struct gv_layout_params lp = { 0 };
	struct gv_layout l;
	char have[32], need[32], rx[32], mp[32];
	uint64_t min = 0;

	/* The loader keeps rx_buf at most 1 MiB and max_packet at most 64 KiB. */
	lp.rx_buf_size = (uint32_t)cell->rx_buf + GV_HDR_SIZE;
	lp.tx_payload = (uint32_t)cell->max_packet;
	if (gv_layout_compute(&lp, cell->region, &l) == 0)
		return 0;
	lp.tx_slots = 1;
	if (gv_layout_compute(&lp, UINT64_MAX >> 1, &l) == 0)
		min = (l.footprint + 4095) & ~4095ull;
	fprintf(stderr, "rtvio cell: %s:%d: [cell %s]: region %s is too small for the cell's "
			"rings and buffers with rx_buf = %s and max_packet = %s (at least %s)\n",
		conf, cell->line, cell->name, rtvio_fmt_size(have, sizeof(have), cell->region),
		rtvio_fmt_size(rx, sizeof(rx), cell->rx_buf),
		rtvio_fmt_size(mp, sizeof(mp), cell->max_packet),
		rtvio_fmt_size(need, sizeof(need), min));
	return -ENOSPC;
}

