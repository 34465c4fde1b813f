/* `rtvio gateway CONFIG REMOTE`: runs the gateway cell of [remote REMOTE] (gateway.h).
 * It attaches to this broker as that cell, joins the remote's DDS domain, and
 * carries every flow of the remote (outgoing: local cell -> DDS; incoming: DDS ->
 * local cell) until SIGINT/SIGTERM or --duration, then prints its per-flow numbers. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"
#include "gateway_cmd.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: rtvio gateway CONFIG REMOTE [--duration SECONDS] [--json] "
		     "[--wait SECONDS]\n"
		     "  Runs [remote REMOTE]'s gateway cell: its flows between this broker and\n"
		     "  Cyclone DDS (docs/gateway.md). Prints per-flow numbers at the end.\n"
		     "  --duration  stop after this long (default: at SIGINT/SIGTERM)\n"
		     "  --json      one JSON document instead of a table\n"
		     "  --wait      wait this long for the broker's socket (default 10)\n"
		     "Exit status: 0 clean stop, 1 broker or DDS failure, 2 bad usage or config.\n");
}

struct opts {
	const char *conf, *remote;
	double duration, wait;
	bool json;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	o->wait = 10;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			o->json = true;
		} else if ((!strcmp(a, "--duration") || !strcmp(a, "--wait")) && i + 1 < argc) {
			char *end;
			double v = strtod(argv[++i], &end);

			if (*end || v < 0 || v > 1e6)
				return 2;
			*(a[2] == 'd' ? &o->duration : &o->wait) = v;
		} else if (a[0] == '-') {
			return 2;
		} else if (!o->conf) {
			o->conf = a;
		} else if (!o->remote) {
			o->remote = a;
		} else {
			return 2;
		}
	}
	return o->conf && o->remote ? -1 : 2;
}

/* The remote's flows, each with its buffers; 0 or exit status 2. */
static int setup_flows(struct gw *g)
{
	int ri = (int)(g->rm - g->cfg.remotes);

	g->fl = calloc((size_t)g->cfg.nflows, sizeof(*g->fl));
	if (!g->fl)
		return 2;
	for (int i = 0; i < g->cfg.nflows; i++) {
		const struct rtvio_flow_cfg *fl = &g->cfg.flows[i];
		struct gw_flow *f = &g->fl[g->nfl];

		if (fl->rem.remote != ri)
			continue;
		for (int j = 0; j < g->nfl; j++)
			if (g->fl[j].out && !fl->rem.incoming && g->fl[j].f->to_port == fl->to_port) {
				fprintf(stderr, "rtvio gateway: %s: flows %s and %s both leave on port "
						"%u of the gateway; give them distinct far ports\n",
					g->conf, g->fl[j].f->name, fl->name, fl->to_port);
				return 2;
			}
		f->gw = g;
		f->f = fl;
		f->out = !fl->rem.incoming;
		f->sock = f->listen_id = -1;
		f->cap = fl->size > fl->traffic.size ? fl->size : fl->traffic.size;
		if (f->cap < 32)
			f->cap = 32;
		f->buf = malloc(f->cap);
		f->chunk = malloc(64u * 1024u);
		if (!f->buf || !f->chunk)
			return 2;
		g->nfl++;
	}
	return 0;
}

static int attach(struct gw *g, double wait)
{
	const struct rtvio_cell_cfg *cell = &g->cfg.cells[g->rm->gateway];
	struct rtvio_cell_opts opts = { 0 };
	char path[RTVIO_PATH_MAX + RTVIO_NAME_MAX + 8], err[512];

	snprintf(path, sizeof(path), "%s/%s.sock", g->cfg.broker.socket_dir, cell->name);
	opts.rx_buf_size = (uint32_t)(cell->rx_buf + GV_HDR_SIZE);
	opts.tx_payload = (uint32_t)cell->max_packet;
	opts.attach_wait_ms = (int)(wait * 1000);
	g->c = rtvio_cell_open(path, cell->region, &opts, err, sizeof(err));
	if (!g->c) {
		fprintf(stderr, "rtvio gateway %s: %s\n", cell->name, err);
		return 1;
	}
	return 0;
}

/* DDS entities, listeners, threads: 0 or the exit status. */
static int start(struct gw *g)
{
	char err[512];
	struct timespec now;

	/* The incarnation: the start time, seconds above nanoseconds, so that a far
	 * gateway takes a larger one as a restart and a smaller one as the past
	 * (gw_in.c; a clock stepped back is caught up with by its resync). */
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t inc = (uint64_t)now.tv_sec << 32 | (uint64_t)now.tv_nsec;

	if (gw_dds_open(g, err, sizeof(err))) {
		fprintf(stderr, "rtvio gateway: %s\n", err);
		return 1;
	}
	for (int i = 0; i < g->nfl; i++) {
		struct gw_flow *f = &g->fl[i];

		f->incarnation = inc;
		if (gw_dds_flow(g, f, err, sizeof(err))) {
			fprintf(stderr, "rtvio gateway: %s\n", err);
			return 1;
		}
		if (f->out && gw_out_listen(f)) {
			fprintf(stderr, "rtvio gateway: flow %s: cannot listen on port %u\n",
				f->f->name, f->f->to_port);
			return 1;
		}
	}
	for (int i = 0; i < g->nfl; i++) {
		struct gw_flow *f = &g->fl[i];

		if (pthread_create(&f->th, NULL, f->out ? gw_out_main : gw_in_main, f))
			return 1;
		f->started = true;
	}
	return 0;
}

static void wait_for_end(struct gw *g, const sigset_t *sigs, double duration)
{
	struct timespec tick = { 0, 200 * 1000000 };
	double left = duration;

	while (duration == 0 || left > 0) {
		int sig = sigtimedwait(sigs, NULL, &tick);

		if (sig == SIGINT || sig == SIGTERM || rtvio_cell_error(g->c))
			break;
		left -= 0.2;
	}
	atomic_store(&g->stop, true);
	rtvio_cell_interrupt(g->c);
	for (int i = 0; i < g->nfl; i++)
		if (g->fl[i].started)
			pthread_join(g->fl[i].th, NULL);
}

static int run(struct gw *g, const struct opts *o)
{
	sigset_t sigs;
	int rc;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = attach(g, o->wait);
	if (!rc)
		rc = start(g);
	if (!rc || g->c)
		wait_for_end(g, &sigs, rc ? 0.001 : o->duration);
	for (int i = 0; i < g->nfl; i++)
		if (g->fl[i].ent > 0)
			gw_dds_deadlines(&g->fl[i]);
	json_t *doc = gw_report(g);

	if (o->json)
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	else
		gw_print_table(doc);
	if (o->json)
		printf("\n");
	fflush(stdout);
	json_decref(doc);
	return rc ? rc : rtvio_cell_error(g->c) ? 1 : 0;
}

int cmd_gateway(int argc, char **argv)
{
	struct opts o = { 0 };
	struct gw g = { 0 };
	char err[512];
	int rc = parse_args(argc, argv, &o);

	if (rc >= 0) {
		if (rc)
			usage(stderr);
		return rc;
	}
	g.conf = o.conf;
	if (rtvio_config_load(o.conf, &g.cfg, err, sizeof(err))) {
		fprintf(stderr, "rtvio gateway: %s\n", err);
		return 2;
	}
	int ri = rtvio_config_find_remote(&g.cfg, o.remote);

	if (ri < 0) {
		fprintf(stderr, "rtvio gateway: %s: no [remote %s]\n", o.conf, o.remote);
		rtvio_config_free(&g.cfg);
		return 2;
	}
	g.rm = &g.cfg.remotes[ri];
	rc = setup_flows(&g);
	if (!rc)
		rc = run(&g, &o);
	gw_dds_close(&g);
	if (g.c)
		rtvio_cell_close(g.c);
	for (int i = 0; i < g.nfl; i++) {
		free(g.fl[i].buf);
		free(g.fl[i].chunk);
	}
	free(g.fl);
	rtvio_config_free(&g.cfg);
	return rc;
}
