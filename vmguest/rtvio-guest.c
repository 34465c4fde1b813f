/* rtvio-guest: the small static program that runs inside a Linux guest attached to an
 * rtvio broker. It uses nothing but the guest's own AF_VSOCK sockets (Linux's
 * virtio_vsock driver) and the message format of `rtvio cell` (common/rtmsg.h), so that
 * a guest and a process cell check each other's traffic with the same rules.
 *
 *   rtvio-guest send     --cid C --port P [--type stream|seqpacket] --size N --count K [--rtt]
 *                        [--period NS] [--duration S]
 *     --rtt alone waits for each echo before the next message (closed loop); with
 *     --period the sender keeps its period and reads echoes as they come.
 *   rtvio-guest recv     --port P [--type ...] --count K [--duration S]
 *   rtvio-guest echo     --port P [--type ...]
 *   rtvio-guest seqsizes --cid C --port P        (sends every size of the boundary list)
 *   rtvio-guest seqsizes --port P                (receives and checks that list)
 *   rtvio-guest connect-expect-refused --cid C --port P [--type ...]
 * Common options: --tag NAME (echoed in the result), --timeout SECONDS (default 120).
 *
 * Every run prints exactly one line "RTVIO-RESULT tag=... mode=... status=ok|fail|timeout
 * key=value ..." on stdout and exits 0 only for status=ok. The guest's clock is not the
 * host's: one-way latencies cannot be measured across the boundary, so --rtt measures
 * round trips (send, then read the echo back) on the guest's own CLOCK_MONOTONIC. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "clock.h"
#include "rtmsg.h"

#define MAX_MSG (256u * 1024u)
/* Linux's default vsock buffer is 256 KiB; a SEQPACKET message must fit in it. */
#define SEQ_MAX 200000u

struct opts {
	const char *mode;
	const char *tag;
	int type;		/* SOCK_STREAM or SOCK_SEQPACKET */
	unsigned int cid;
	unsigned int port;
	size_t size;
	uint64_t count;
	bool rtt;
	bool listen_side;
	unsigned int timeout_s;
	uint64_t period_ns;	/* send: one message per period (0: as fast as possible) */
	double duration_s;	/* send/recv: stop after this long (0: after count) */
};

static struct opts o = { .tag = "-", .type = SOCK_STREAM, .size = 1024, .count = 1,
			 .timeout_s = 120 };
static uint8_t buf[MAX_MSG], buf2[MAX_MSG];

/* Result counters, printed once. */
static struct {
	uint64_t messages, bytes, corrupt, lost, reordered, truncated, retries;
	uint64_t rtt_min_ns, rtt_max_ns, rtt_sum_ns, rtt_n;
	const char *why;
} r = { .rtt_min_ns = UINT64_MAX };

static uint64_t t_start;

/* Round-trip samples for percentiles (the first RTT_SAMPLES of a run). */
#define RTT_SAMPLES 65536u
static uint64_t rtt_ns[RTT_SAMPLES];

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double rtt_quantile(double q)
{
	size_t n = r.rtt_n < RTT_SAMPLES ? (size_t)r.rtt_n : RTT_SAMPLES;
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);

	return rtt_ns[i] / 1e3;
}

static void result(const char *status)
{
	char rtt[256] = "";

	if (r.rtt_n) {
		qsort(rtt_ns, r.rtt_n < RTT_SAMPLES ? (size_t)r.rtt_n : RTT_SAMPLES,
		      sizeof(rtt_ns[0]), cmp_u64);
		snprintf(rtt, sizeof(rtt),
			 " rtt_n=%llu rtt_min_us=%.1f rtt_avg_us=%.1f rtt_p50_us=%.1f rtt_p99_us=%.1f rtt_p999_us=%.1f rtt_max_us=%.1f",
			 (unsigned long long)r.rtt_n, r.rtt_min_ns / 1e3,
			 (double)r.rtt_sum_ns / (double)r.rtt_n / 1e3, rtt_quantile(0.5),
			 rtt_quantile(0.99), rtt_quantile(0.999), r.rtt_max_ns / 1e3);
	}
	/* One write, so that lines of parallel jobs do not interleave on the console. */
	char line[768];
	int n = snprintf(line, sizeof(line),
			 "RTVIO-RESULT tag=%s mode=%s type=%s port=%u status=%s messages=%llu bytes=%llu corrupt=%llu lost=%llu reordered=%llu truncated=%llu retries=%llu secs=%.2f%s why=%s\n",
			 o.tag, o.mode, o.type == SOCK_STREAM ? "stream" : "seqpacket", o.port,
			 status, (unsigned long long)r.messages, (unsigned long long)r.bytes,
			 (unsigned long long)r.corrupt, (unsigned long long)r.lost,
			 (unsigned long long)r.reordered, (unsigned long long)r.truncated,
			 (unsigned long long)r.retries, (rtvio_now_ns() - t_start) / 1e9, rtt,
			 r.why ? r.why : "-");
	if (n > 0)
		(void)!write(1, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void on_alarm(int sig)
{
	(void)sig;
	r.why = "timeout";
	result("timeout");
	_exit(3);
}

static int fail(const char *fmt, ...)
{
	static char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* The result line is split at blanks: keep the reason one token. */
	for (char *p = why; *p; p++)
		if (*p == ' ')
			*p = '_';
	r.why = why;
	result("fail");
	return 1;
}

static int vsock_socket(void)
{
	int fd = socket(AF_VSOCK, o.type, 0);

	if (fd < 0)
		return -errno;
	/* Let SEQPACKET messages up to SEQ_MAX fit and keep streams flowing. */
	unsigned long long bs = MAX_MSG;

	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &bs, sizeof(bs));
	return fd;
}

static int do_connect(int *out, bool retry)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = o.cid, .svm_port = o.port };

	for (;;) {
		int fd = vsock_socket();

		if (fd < 0)
			return fd;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			*out = fd;
			return 0;
		}
		int e = errno;

		close(fd);
		/* The listener may not be up yet (its guest is still booting): its kernel
		 * or the broker answers with a reset. Retry until the timeout. */
		if (!retry || (e != ECONNRESET && e != ECONNREFUSED && e != ETIMEDOUT &&
			       e != EINTR))
			return -e;
		r.retries++;
		usleep(100000);
	}
}

static int do_accept(int *out)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				 .svm_port = o.port };
	int l = vsock_socket(), fd;

	if (l < 0)
		return l;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0) {
		int e = -errno;

		close(l);
		return e;
	}
	/* Tell the driver (through the console) that the port is open. */
	printf("RTVIO-LISTEN tag=%s port=%u\n", o.tag, o.port);
	fflush(stdout);
	do
		fd = accept(l, NULL, NULL);
	while (fd < 0 && errno == EINTR);
	close(l);
	if (fd < 0)
		return -errno;
	*out = fd;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads exactly n bytes of a stream; 0, or -ENODATA at a clean end before any byte. */
static int read_all(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = recv(fd, p + got, n - got, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return got ? -EPIPE : -ENODATA;
		got += (size_t)k;
	}
	return 0;
}

/* One message (stream: framed by its length field, as `rtvio cell` reads it;
 * seqpacket: one recv). Returns its length, 0 at the end, -errno on error. */
static ssize_t read_msg(int fd, uint8_t *m)
{
	if (o.type == SOCK_SEQPACKET) {
		ssize_t k;

		do
			k = recv(fd, m, MAX_MSG, MSG_TRUNC);
		while (k < 0 && errno == EINTR);
		if (k < 0)
			return -errno;
		if ((size_t)k > MAX_MSG) {
			r.truncated++;
			return -EMSGSIZE;
		}
		return k;
	}
	int rc = read_all(fd, m, 8);

	if (rc == -ENODATA)
		return 0;
	if (rc)
		return rc;
	uint32_t len = rtmsg_get32(m + 4);

	if (rtmsg_get32(m) != RTMSG_MAGIC || len < RTMSG_HDR || len > MAX_MSG)
		return -EBADMSG;
	rc = read_all(fd, m + 8, len - 8);
	return rc ? rc : (ssize_t)len;
}

static void account(const uint8_t *m, size_t len, uint64_t *next)
{
	uint64_t seq = *next, stamp;

	if (rtmsg_check(m, len, &seq, &stamp) != RTMSG_OK) {
		r.corrupt++;
		(*next)++;
		return;
	}
	r.messages++;
	r.bytes += len;
	if (seq > *next)
		r.lost += seq - *next;
	else if (seq < *next)
		r.reordered++;
	*next = seq + 1;
}

static void rtt_add(uint64_t d)
{
	if (r.rtt_n < RTT_SAMPLES)
		rtt_ns[r.rtt_n] = d;
	r.rtt_n++;
	r.rtt_sum_ns += d;
	if (d < r.rtt_min_ns)
		r.rtt_min_ns = d;
	if (d > r.rtt_max_ns)
		r.rtt_max_ns = d;
}

/* One echoed message: it must be intact and the next in order; its round trip is
 * now minus the stamp this guest put in it (both on this guest's clock). */
static int take_echo(int fd, uint64_t *next)
{
	ssize_t k = read_msg(fd, buf2);
	uint64_t seq = *next, stamp;

	if (k <= 0)
		return k ? (int)k : -EPIPE;
	if (rtmsg_check(buf2, (size_t)k, &seq, &stamp) != RTMSG_OK || (size_t)k != o.size ||
	    seq != *next) {
		r.corrupt++;
		return -EBADMSG;
	}
	(*next)++;
	if (stamp)
		rtt_add(rtvio_now_ns() - stamp);
	return 0;
}

/* Periodic sending with echoes read as they come (open loop): the period holds
 * however long a round trip takes. Messages not echoed by the end count as lost. */
static int send_pipelined(int fd)
{
	uint64_t release = rtvio_now_ns(), end = release + (uint64_t)(o.duration_s * 1e9);
	uint64_t seq = 0, echoed = 0;
	int rc;

	if (o.size < RTMSG_HDR)
		return fail("--rtt with --period needs --size of at least %u", RTMSG_HDR);
	for (;;) {
		uint64_t now = rtvio_now_ns();

		if (o.duration_s > 0 ? now >= end : seq >= o.count)
			break;
		if (now >= release) {
			rtmsg_fill(buf, o.size, seq, now);
			rc = write_all(fd, buf, o.size);
			if (rc)
				return fail("send message %llu: %s", (unsigned long long)seq,
					    strerror(-rc));
			seq++;
			r.messages++;
			r.bytes += o.size;
			release += o.period_ns;
			if (release < now) /* fell behind: no burst to catch up */
				release = now;
			continue;
		}
		uint64_t wait = release - now;
		struct timespec ts = { .tv_sec = (time_t)(wait / 1000000000u),
				       .tv_nsec = (long)(wait % 1000000000u) };
		struct pollfd pf = { .fd = fd, .events = POLLIN };

		if (ppoll(&pf, 1, &ts, NULL) > 0) {
			rc = take_echo(fd, &echoed);
			if (rc)
				return fail("echo %llu: %s", (unsigned long long)echoed,
					    strerror(-rc));
		}
	}
	/* The echoes still in flight; the peer closes after the last. */
	shutdown(fd, SHUT_WR);
	while (echoed < seq) {
		rc = take_echo(fd, &echoed);
		if (rc)
			break;
	}
	close(fd);
	r.lost = seq - echoed;
	if (r.lost || r.corrupt)
		return fail("%llu of %llu messages not echoed intact",
			    (unsigned long long)(seq - echoed + r.corrupt), (unsigned long long)seq);
	result("ok");
	return 0;
}

static int mode_send(void)
{
	int fd, rc;

	if (o.size > MAX_MSG || (o.type == SOCK_STREAM && o.size < RTMSG_HDR))
		return fail("size %zu out of range", o.size);
	rc = do_connect(&fd, true);
	if (rc)
		return fail("connect: %s", strerror(-rc));
	if (o.rtt && o.period_ns)
		return send_pipelined(fd);
	uint64_t release = rtvio_now_ns(), end = release + (uint64_t)(o.duration_s * 1e9);

	for (uint64_t seq = 0; o.duration_s > 0 || seq < o.count; seq++) {
		if (o.period_ns) {
			struct timespec ts = { .tv_sec = (time_t)(release / 1000000000u),
					       .tv_nsec = (long)(release % 1000000000u) };

			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
			release += o.period_ns;
		}
		uint64_t t0 = rtvio_now_ns();

		if (o.duration_s > 0 && t0 >= end)
			break;

		rtmsg_fill(buf, o.size, seq, t0);
		rc = write_all(fd, buf, o.size);
		if (rc)
			return fail("send message %llu: %s", (unsigned long long)seq, strerror(-rc));
		r.messages++;
		r.bytes += o.size;
		if (!o.rtt)
			continue;
		ssize_t k = o.type == SOCK_STREAM ? (read_all(fd, buf2, o.size) ? -1 : (ssize_t)o.size)
						  : recv(fd, buf2, MAX_MSG, MSG_TRUNC);
		uint64_t d = rtvio_now_ns() - t0;

		if (k != (ssize_t)o.size || memcmp(buf, buf2, o.size) != 0) {
			r.corrupt++;
			return fail("echo of message %llu differs (%zd bytes)",
				    (unsigned long long)seq, k);
		}
		rtt_add(d);
	}
	/* An orderly close: the receiver sees the end after the last byte. */
	shutdown(fd, SHUT_WR);
	while (recv(fd, buf2, sizeof(buf2), 0) > 0)
		;
	close(fd);
	result("ok");
	return 0;
}

static int mode_recv(void)
{
	int fd, rc;
	uint64_t next = 0;

	rc = do_accept(&fd);
	if (rc)
		return fail("accept: %s", strerror(-rc));
	/* With a duration the sender decides how many: read until its orderly end. */
	while (o.duration_s > 0 || r.messages + r.corrupt < o.count) {
		ssize_t k = read_msg(fd, buf);

		if (k == 0)
			break;
		if (k < 0)
			return fail("receive after %llu messages: %s",
				    (unsigned long long)r.messages, strerror((int)-k));
		account(buf, (size_t)k, &next);
	}
	close(fd);
	if ((o.duration_s > 0 ? !r.messages : r.messages != o.count) || r.corrupt || r.lost ||
	    r.reordered)
		return fail("want %llu intact messages", (unsigned long long)o.count);
	result("ok");
	return 0;
}

static int mode_echo(void)
{
	int fd, rc;

	rc = do_accept(&fd);
	if (rc)
		return fail("accept: %s", strerror(-rc));
	for (;;) {
		ssize_t k;

		do
			k = recv(fd, buf, MAX_MSG, 0);
		while (k < 0 && errno == EINTR);
		if (k == 0)
			break;
		if (k < 0)
			return fail("receive: %s", strerror(errno));
		rc = write_all(fd, buf, (size_t)k);
		if (rc)
			return fail("echo: %s", strerror(-rc));
		r.messages++;
		r.bytes += (uint64_t)k;
	}
	close(fd);
	result("ok");
	return 0;
}

/* Sizes whose boundaries must survive: every size up to 64, then steps growing by an
 * eighth, plus the edges of a Linux RX buffer, a page and a 64 KiB packet. */
static size_t seq_sizes(size_t *out, size_t cap)
{
	static const size_t edges[] = { 3732, 3733, 3734, 4095, 4096, 4097, 65535, 65536,
					65537, 131072, SEQ_MAX };
	size_t n = 0, s = 1;

	while (s <= SEQ_MAX && n < cap) {
		out[n++] = s;
		s = s < 64 ? s + 1 : s + s / 8;
	}
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]) && n < cap; i++)
		out[n++] = edges[i];
	return n;
}

static int mode_seqsizes(void)
{
	size_t sizes[160], n = seq_sizes(sizes, 160);
	int fd, rc;

	o.type = SOCK_SEQPACKET;
	if (!o.listen_side) {
		rc = do_connect(&fd, true);
		if (rc)
			return fail("connect: %s", strerror(-rc));
		for (size_t i = 0; i < n; i++) {
			rtmsg_fill(buf, sizes[i], i, rtvio_now_ns());
			ssize_t w = send(fd, buf, sizes[i], MSG_NOSIGNAL);

			if (w != (ssize_t)sizes[i])
				return fail("send of %zu bytes: %zd (%s)", sizes[i], w,
					    w < 0 ? strerror(errno) : "short");
			r.messages++;
			r.bytes += sizes[i];
		}
		shutdown(fd, SHUT_WR);
		while (recv(fd, buf2, sizeof(buf2), 0) > 0)
			;
		close(fd);
		result("ok");
		return 0;
	}
	rc = do_accept(&fd);
	if (rc)
		return fail("accept: %s", strerror(-rc));
	for (size_t i = 0; i < n; i++) {
		ssize_t k = read_msg(fd, buf);
		uint64_t seq = i, stamp;

		if (k <= 0)
			return fail("message %zu of %zu bytes: %s", i, sizes[i],
				    k ? strerror((int)-k) : "end of connection");
		if ((size_t)k != sizes[i])
			return fail("message %zu: %zd bytes, want %zu (boundary lost)", i, k,
				    sizes[i]);
		if (rtmsg_check(buf, (size_t)k, &seq, &stamp) != RTMSG_OK || seq != i) {
			r.corrupt++;
			return fail("message %zu of %zu bytes corrupt", i, sizes[i]);
		}
		r.messages++;
		r.bytes += (uint64_t)k;
	}
	close(fd);
	result("ok");
	return 0;
}

static int mode_refused(void)
{
	int fd, rc = do_connect(&fd, false);

	if (rc == 0) {
		close(fd);
		return fail("connection to %u:%u was accepted", o.cid, o.port);
	}
	if (rc != -ECONNRESET && rc != -ECONNREFUSED)
		return fail("connect failed with %s, not a reset", strerror(-rc));
	r.why = rc == -ECONNRESET ? "reset" : "refused";
	result("ok");
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: rtvio-guest send|recv|echo|seqsizes|connect-expect-refused [--cid C] --port P\n"
		"       [--type stream|seqpacket] [--size N] [--count K] [--rtt] [--listen]\n"
		"       [--period NS] [--duration S] [--tag NAME] [--timeout S]\n"
		"       rtvio-guest cid   (prints this guest's vsock CID)\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "cid", required_argument, 0, 'c' },	{ "port", required_argument, 0, 'p' },
		{ "type", required_argument, 0, 't' },	{ "size", required_argument, 0, 's' },
		{ "count", required_argument, 0, 'n' }, { "rtt", no_argument, 0, 'r' },
		{ "listen", no_argument, 0, 'l' },	{ "tag", required_argument, 0, 'g' },
		{ "timeout", required_argument, 0, 'T' }, { "period", required_argument, 0, 'P' },
		{ "duration", required_argument, 0, 'D' }, { 0, 0, 0, 0 }
	};
	int c;

	t_start = rtvio_now_ns();
	if (argc < 2)
		return usage();
	o.mode = argv[1];
	if (!strcmp(o.mode, "cid")) {
		unsigned int cid = 0;
		int fd = open("/dev/vsock", O_RDONLY);

		if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0) {
			perror("rtvio-guest: /dev/vsock");
			return 1;
		}
		printf("%u\n", cid);
		return 0;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'c': o.cid = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'p': o.port = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 't':
			if (!strcmp(optarg, "stream"))
				o.type = SOCK_STREAM;
			else if (!strcmp(optarg, "seqpacket"))
				o.type = SOCK_SEQPACKET;
			else
				return usage();
			break;
		case 's': o.size = strtoul(optarg, NULL, 0); break;
		case 'n': o.count = strtoull(optarg, NULL, 0); break;
		case 'r': o.rtt = true; break;
		case 'l': o.listen_side = true; break;
		case 'g': o.tag = optarg; break;
		case 'T': o.timeout_s = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'P': o.period_ns = strtoull(optarg, NULL, 0); break;
		case 'D': o.duration_s = strtod(optarg, NULL); break;
		default: return usage();
		}
	}
	if (!o.port)
		return usage();
	signal(SIGALRM, on_alarm);
	alarm(o.timeout_s);
	if (!strcmp(o.mode, "send"))
		return o.cid ? mode_send() : usage();
	if (!strcmp(o.mode, "recv"))
		return mode_recv();
	if (!strcmp(o.mode, "echo"))
		return mode_echo();
	if (!strcmp(o.mode, "seqsizes"))
		return o.listen_side || o.cid ? mode_seqsizes() : usage();
	if (!strcmp(o.mode, "connect-expect-refused"))
		return o.cid ? mode_refused() : usage();
	return usage();
}
