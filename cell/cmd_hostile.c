/* `rtvio hostile`: a cell that misbehaves at full speed against a real broker, for
 * tests/e2e_hostile.py and `rtvio bench hostile`.
 *
 *   rtvio hostile MODE DIR CELL CID HELPER VICTIM_CID VICTIM_PORT SECONDS
 *
 * CELL (CID in the config) attaches on DIR/CELL.sock like a process cell does
 * (vhost-user, two rings in a memfd region) but drives its rings by hand, and runs
 * MODE until SECONDS passed or SIGTERM/SIGINT came. Whenever the broker cuts it
 * off, it attaches again and goes on. HELPER ("-" for none) is a second cell in
 * this process, well behaved, that streams to CELL on port 900 and takes CELL's
 * SEQPACKET messages on port 901, for the modes that need traffic (the config
 * needs flows HELPER -> CELL:900 stream and CELL -> HELPER:901 seqpacket).
 * The modes (hostile_modes.c) are listed by running it without arguments.
 *
 * At the end it prints one line:
 *   hostile MODE: attached N, attach failed F, cut off K, detached D, sent P,
 *   received R, vhost-user V, memtables M, helper H, punched X, punch refused Y
 * and exits 0 when it attached at least once, 1 when never, 2 on usage errors. */
#include "cell_cmd.h"
#include "hostile.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

atomic_bool hostile_stop;

static void on_signal(int sig)
{
	(void)sig;
	hostile_stop = true;
}

static void usage(void)
{
	fprintf(stderr, "usage: rtvio hostile MODE DIR CELL CID HELPER VICTIM_CID VICTIM_PORT "
			"SECONDS\nmodes:\n");
	for (unsigned int i = 0; i < hostile_nmodes; i++)
		fprintf(stderr, "  %-9s %s\n", hostile_modes[i].name, hostile_modes[i].what);
}

static const struct hostile_mode *mode_named(const char *name)
{
	for (unsigned int i = 0; i < hostile_nmodes; i++)
		if (!strcmp(hostile_modes[i].name, name))
			return &hostile_modes[i];
	return NULL;
}

/* `all` posts one-byte RX buffers on every other attachment. */
static uint32_t rx_len_of(const struct hostile *h)
{
	if (h->mode->rx_len)
		return h->mode->rx_len;
	if (!strcmp(h->mode->name, "all") && h->attaches % 2)
		return VSOCK_HDR_SIZE + 1;
	return RAW_RXBUF;
}

static void attach(struct hostile *h)
{
	struct timespec gap = { 0, 5 * 1000000 };

	/* The broker may still be releasing the last attachment: one front end per
	 * cell. */
	if (hraw_open(&h->r, h->path, rx_len_of(h))) {
		h->attach_failures++;
		nanosleep(&gap, NULL);
		return;
	}
	h->attached = true;
	h->attaches++;
	h->sock_unread = false;
	memset(h->conn, 0, sizeof(h->conn));
	if (h->mode->setup)
		h->mode->setup(h);
}

static void run(struct hostile *h, double seconds)
{
	uint64_t end = rtvio_now_ns() + (uint64_t)(seconds * 1e9);

	while (!hostile_stop && rtvio_now_ns() < end) {
		if (!h->attached) {
			attach(h);
			continue;
		}
		h->mode->step(h);
		h->steps++;
		if (!h->attached)
			continue;	/* the mode detached itself */
		hostile_rx(h);
		if (!h->sock_unread)
			hraw_check(&h->r);
		if (h->r.dead || vq_driver_broken(&h->r.drv[0]) || vq_driver_broken(&h->r.drv[1])) {
			h->cut_off++;
			hraw_close(&h->r);
			h->attached = false;
		}
	}
	if (h->attached)
		hraw_close(&h->r);
}

/* A whole decimal (or 0x) number up to max, or false. */
static bool number(const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return *s && *s != '-' && !*end && !errno && *v <= max;
}

/* The command line into h, the two socket paths and the hostile cell's CID. Returns
 * -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct hostile *h, char path[2][512],
		      unsigned long long *cid, double *seconds)
{
	static const char *const what[] = { "CID", "VICTIM_CID", "VICTIM_PORT" };
	const int at[] = { 4, 6, 7 };
	unsigned long long v[3];
	char *end;

	if (argc != 9) {
		usage();
		return 2;
	}
	h->mode = mode_named(argv[1]);
	if (!h->mode) {
		fprintf(stderr, "rtvio hostile: unknown mode '%s'\n", argv[1]);
		usage();
		return 2;
	}
	for (int i = 0; i < 3; i++) {
		if (!number(argv[at[i]], i == 2 ? 0xffffffffull : 0xfffffffeull, &v[i])) {
			fprintf(stderr, "rtvio hostile: %s is not a number in range: '%s'\n",
				what[i], argv[at[i]]);
			return 2;
		}
	}
	*seconds = strtod(argv[8], &end);
	if (*end || !(*seconds > 0)) {
		fprintf(stderr, "rtvio hostile: SECONDS must be a number above 0, not '%s'\n",
			argv[8]);
		return 2;
	}
	if (snprintf(path[0], 512, "%s/%s.sock", argv[2], argv[3]) >= 512 ||
	    snprintf(path[1], 512, "%s/%s.sock", argv[2], argv[5]) >= 512) {
		fprintf(stderr, "rtvio hostile: socket path too long: %s/...\n", argv[2]);
		return 2;
	}
	h->path = path[0];
	*cid = v[0];
	h->victim_cid = v[1];
	h->victim_port = (uint32_t)v[2];
	h->next_port = 2000;
	return -1;
}

int cmd_hostile(int argc, char **argv)
{
	struct hostile h = { 0 };
	struct hostile_helper *hp = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	static char path[2][512];
	unsigned long long cid;
	unsigned long helped = 0;
	double seconds;
	int rc = parse_args(argc, argv, &h, path, &cid, &seconds);

	if (rc >= 0)
		return rc;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (h.mode->helper && strcmp(argv[5], "-")) {
		hp = hostile_helper_start(path[1], cid);
		if (!hp)
			return 2;
		h.helper_cid = hostile_helper_cid(hp);
	}
	run(&h, seconds);
	if (hp)
		helped = hostile_helper_stop(hp);
	printf("hostile %s: attached %lu, attach failed %lu, cut off %lu, detached %lu, "
	       "sent %lu, received %lu, vhost-user %lu, memtables %lu, helper %lu, "
	       "punched %lu, punch refused %lu\n",
	       h.mode->name, h.attaches, h.attach_failures, h.cut_off, h.detached,
	       h.packets_sent, h.packets_received, h.vhu_sent, h.memtables, helped,
	       h.punched, h.punch_refused);
	return h.attaches ? 0 : 1;
}
