/* The hostile cell's helper (hostile.h): an ordinary process cell with two
 * threads, one streaming to the hostile cell's HOSTILE_SINK_PORT, one taking the
 * hostile cell's SEQPACKET messages on HOSTILE_BIG_PORT. Both reconnect whenever
 * the hostile cell is cut off or detaches. */
#include "hostile.h"
#include "port_posix.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PIECE 4096u
#define WAIT_MS 200

struct hostile_helper {
	struct rtvio_cell *c;
	uint64_t hostile_cid;
	pthread_t tx, rx;
	atomic_bool stop;
	atomic_ulong sent, received;
};

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* One connection to the hostile cell: pieces until it breaks. */
static void stream_once(struct hostile_helper *hp, uint8_t *buf)
{
	int id = rtvio_socket(hp->c, RTVIO_SOCK_STREAM);

	if (id < 0)
		return;
	if (rtvio_connect(hp->c, id, hp->hostile_cid, HOSTILE_SINK_PORT, WAIT_MS * 5) == 0) {
		while (!hp->stop) {
			ssize_t n = rtvio_send(hp->c, id, buf, PIECE, 0, WAIT_MS);

			if (n > 0)
				hp->sent++;
			else if (n != -ETIMEDOUT)
				break;
		}
	}
	rtvio_close(hp->c, id);
}

static void *stream_main(void *arg)
{
	struct hostile_helper *hp = arg;
	uint8_t *buf = malloc(PIECE);

	if (!buf)
		return NULL;
	memset(buf, 0x5a, PIECE);
	while (!hp->stop && !rtvio_cell_error(hp->c)) {
		stream_once(hp, buf);
		nap_ms(20);
	}
	free(buf);
	return NULL;
}

/* Accepts the hostile cell's SEQPACKET connections one at a time and reads them. */
static void *sink_main(void *arg)
{
	struct hostile_helper *hp = arg;
	uint8_t *buf = malloc(1u << 16);
	int lid = rtvio_socket(hp->c, RTVIO_SOCK_SEQPACKET);

	if (!buf || lid < 0 || rtvio_listen(hp->c, lid, HOSTILE_BIG_PORT, 4) < 0) {
		free(buf);
		return NULL;
	}
	while (!hp->stop && !rtvio_cell_error(hp->c)) {
		int id = rtvio_accept(hp->c, lid, NULL, NULL, WAIT_MS);

		while (id >= 0 && !hp->stop) {
			ssize_t n = rtvio_recv(hp->c, id, buf, 1u << 16, 0, NULL, WAIT_MS);

			if (n > 0)
				hp->received++;
			else if (n != -ETIMEDOUT)
				break;
		}
		if (id >= 0)
			rtvio_close(hp->c, id);
	}
	rtvio_close(hp->c, lid);
	free(buf);
	return NULL;
}

struct hostile_helper *hostile_helper_start(const char *path, uint64_t hostile_cid)
{
	struct rtvio_cell_opts o = { .attach_wait_ms = 5000, .rcvbuf = 1u << 20 };
	struct hostile_helper *hp = calloc(1, sizeof(*hp));
	char err[256];

	if (!hp)
		return NULL;
	hp->hostile_cid = hostile_cid;
	hp->c = rtvio_cell_open(path, 8u << 20, &o, err, sizeof(err));
	if (!hp->c) {
		fprintf(stderr, "rtvio hostile: helper cell: %s\n", err);
		free(hp);
		return NULL;
	}
	pthread_create(&hp->tx, NULL, stream_main, hp);
	pthread_create(&hp->rx, NULL, sink_main, hp);
	return hp;
}

uint64_t hostile_helper_cid(const struct hostile_helper *hp)
{
	return rtvio_cell_cid(hp->c);
}

unsigned long hostile_helper_stop(struct hostile_helper *hp)
{
	unsigned long n;

	hp->stop = true;
	rtvio_cell_interrupt(hp->c);
	pthread_join(hp->tx, NULL);
	pthread_join(hp->rx, NULL);
	n = hp->sent + hp->received;
	rtvio_cell_close(hp->c);
	free(hp);
	return n;
}
