/* gw_sink: the checking receiver of the gateway tests (gateway_test.py). Unlike
 * `rtvio cell`, whose receiver ends a flow with its one connection, it accepts one
 * connection after another on each port, so that a flow delivered by a gateway that
 * was killed and started again is checked across both connections as one sequence.
 *
 *   gw_sink DIR CELL SECONDS stream:PORT|seqpacket:PORT ...
 *
 * Attaches as CELL to the broker whose sockets are in DIR, checks every message it
 * gets (rtmsg: sequence, checksum, every byte) for SECONDS, then prints one JSON line
 * per port and exits 0 (2 on usage or set-up errors). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "port_posix.h"
#include "rtmsg.h"
#include "workload.h"

#define MAXP 8
#define BUF (256u * 1024u)

struct port {
	struct rtvio_cell *c;
	bool stream;
	uint32_t port;
	int listen;
	pthread_t th;
	uint64_t connections;
	struct wl_stream st;
	struct wl_rx_stats rx;
	uint8_t *buf, *reasm;
};

static void account(void *arg, const uint8_t *m, size_t len)
{
	struct port *p = arg;

	wl_rx_account(&p->rx, m, len, wl_now_ns());
}

static void carry(struct port *p, int id)
{
	for (;;) {
		ssize_t n = rtvio_recv(p->c, id, p->buf, BUF, 0, NULL, -1);

		if (n <= 0)
			return;
		if (!p->stream)
			account(p, p->buf, (size_t)n);
		else if (wl_stream_feed(&p->st, p->buf, (size_t)n, account, p))
			return;
	}
}

static void *serve(void *arg)
{
	struct port *p = arg;

	for (;;) {
		uint64_t cid;
		uint32_t port;
		int id = rtvio_accept(p->c, p->listen, &cid, &port, -1);

		if (id < 0)
			return NULL;
		p->connections++;
		/* A new connection starts at a message boundary. */
		if (p->stream)
			wl_stream_init(&p->st, p->reasm, BUF);
		carry(p, id);
		rtvio_close(p->c, id);
	}
}

static int setup(struct port *p, struct rtvio_cell *c, const char *spec)
{
	const char *colon = strchr(spec, ':');

	if (!colon)
		return -EINVAL;
	p->c = c;
	p->stream = !strncmp(spec, "stream:", 7);
	p->port = (uint32_t)strtoul(colon + 1, NULL, 10);
	p->buf = malloc(BUF);
	p->reasm = malloc(BUF);
	if (!p->buf || !p->reasm)
		return -ENOMEM;
	wl_rx_init(&p->rx, 0);
	p->listen = rtvio_socket(c, p->stream ? RTVIO_SOCK_STREAM : RTVIO_SOCK_SEQPACKET);
	if (p->listen < 0)
		return p->listen;
	return rtvio_listen(c, p->listen, p->port, 4);
}

int main(int argc, char **argv)
{
	struct port ports[MAXP] = { 0 };
	struct rtvio_cell_opts opts = { .attach_wait_ms = 10000 };
	char path[512], err[256];
	int np = argc - 4;

	if (argc < 5 || np > MAXP) {
		fprintf(stderr, "usage: gw_sink DIR CELL SECONDS TYPE:PORT...\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/%s.sock", argv[1], argv[2]);
	struct rtvio_cell *c = rtvio_cell_open(path, 2u << 20, &opts, err, sizeof(err));

	if (!c) {
		fprintf(stderr, "gw_sink: %s\n", err);
		return 2;
	}
	for (int i = 0; i < np; i++) {
		if (setup(&ports[i], c, argv[4 + i]) ||
		    pthread_create(&ports[i].th, NULL, serve, &ports[i])) {
			fprintf(stderr, "gw_sink: cannot serve %s\n", argv[4 + i]);
			return 2;
		}
	}
	printf("ready\n");
	fflush(stdout);
	usleep((useconds_t)(atof(argv[3]) * 1e6));
	rtvio_cell_interrupt(c);
	for (int i = 0; i < np; i++) {
		struct port *p = &ports[i];

		pthread_join(p->th, NULL);
		printf("{\"port\": %u, \"connections\": %llu, \"messages\": %llu, \"bytes\": %llu, "
		       "\"lost\": %llu, \"duplicates\": %llu, \"reordered\": %llu, "
		       "\"corrupt\": %llu}\n", p->port, (unsigned long long)p->connections,
		       (unsigned long long)p->rx.messages, (unsigned long long)p->rx.bytes,
		       (unsigned long long)p->rx.lost, (unsigned long long)p->rx.duplicates,
		       (unsigned long long)p->rx.reordered, (unsigned long long)p->rx.corrupt);
		free(p->buf);
		free(p->reasm);
	}
	rtvio_cell_close(c);
	return 0;
}
