/* `rtvio bench relay DIR CPU PRIO NAME...`: the broker a user would write with Unix
 * sockets. For every NAME it listens on DIR/NAME.in; each connection accepted there
 * is joined to DIR/NAME.out (where the receiver listens) and its bytes forwarded in
 * one poll() loop: read what is there (up to 64 KiB), write all of it on. A full
 * receiver blocks the whole relay, and a control message waits behind whatever
 * bulk data the relay is writing: arrival order, no priorities, no policing, which
 * is the point of comparing with it. Runs until SIGTERM. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "stop.h"

#define RELAY_MAX 8
#define RELAY_BUF (64u * 1024u)

static int unix_at(const char *dir, const char *name, const char *ext, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if ((size_t)snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s.%s", dir, name, ext) >=
	    sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int bench_relay_main(int argc, char **argv)
{
	struct pollfd pf[2 * RELAY_MAX];
	int out[RELAY_MAX], nl;
	struct sockaddr_un sun;
	static char buf[RELAY_BUF];
	cpu_set_t set;
	struct sched_param sp;

	/* argv: relay DIR CPU PRIO NAME... */
	if (argc < 5 || argc - 4 > RELAY_MAX) {
		fprintf(stderr, "usage: rtvio bench relay DIR CPU PRIO NAME...\n");
		return 2;
	}
	CPU_ZERO(&set);
	CPU_SET(atoi(argv[2]), &set);
	sched_setaffinity(0, sizeof(set), &set);
	sp.sched_priority = atoi(argv[3]);
	if (sp.sched_priority > 0 && sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
		fprintf(stderr, "rtvio bench relay: warning: SCHED_FIFO not permitted\n");
	rtvio_stop_on_signals();
	signal(SIGPIPE, SIG_IGN);
	nl = argc - 4;
	for (int i = 0; i < nl; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || unix_at(argv[1], argv[4 + i], "in", &sun) ||
		    (unlink(sun.sun_path), bind(fd, (struct sockaddr *)&sun, sizeof(sun))) < 0 ||
		    listen(fd, 4) < 0) {
			fprintf(stderr, "rtvio bench relay: cannot listen on %s: %s\n",
				sun.sun_path, strerror(errno));
			return 1;
		}
		pf[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
		pf[nl + i] = (struct pollfd){ .fd = -1, .events = POLLIN };
		out[i] = -1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!rtvio_stop_requested) {
		if (poll(pf, (nfds_t)(2 * nl), 200) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < nl; i++) {
			struct pollfd *in = &pf[nl + i];

			if (pf[i].revents & POLLIN) {
				int c = accept(pf[i].fd, NULL, NULL), o;

				if (c < 0)
					continue;
				o = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
				unix_at(argv[1], argv[4 + i], "out", &sun);
				if (o < 0 || connect(o, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
					close(c);
					if (o >= 0)
						close(o);
					continue;
				}
				/* One connection per name at a time, as in the scenarios. */
				if (in->fd >= 0)
					close(in->fd);
				if (out[i] >= 0)
					close(out[i]);
				in->fd = c;
				out[i] = o;
			}
			if (in->fd >= 0 && in->revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = recv(in->fd, buf, sizeof(buf), 0);

				if (n <= 0 || write_all(out[i], buf, (size_t)n)) {
					close(in->fd);
					close(out[i]);
					in->fd = -1;
					out[i] = -1;
				}
			}
		}
	}
	for (int i = 0; i < 2 * nl; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	for (int i = 0; i < nl; i++) {
		if (out[i] >= 0)
			close(out[i]);
		unix_at(argv[1], argv[4 + i], "in", &sun);
		unlink(sun.sun_path);
	}
	return 0;
}
