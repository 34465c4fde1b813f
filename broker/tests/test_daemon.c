/* The broker daemon end to end, in one process: broker_open + broker_run in a thread,
 * real process cells (cell/port_posix) attached over the real Unix sockets. Checks
 * the socket directory and stale sockets, the CID handed out per socket, one front
 * end per cell, a SEQPACKET exchange allowed by a flow, a reset for a connection no
 * flow permits, the cell state seen over control.sock, a cell that leaves and comes
 * back, a cell that breaks its rings, shutdown over the control socket, and a stat
 * reply larger than a socket buffer to slow and stalled clients. Runs once with
 * poll = no (epoll on kicks) and once with poll = yes (busy-poll). A busy-polling
 * broker at SCHED_FIFO leaves an ordinary thread on its cpu running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker_cmds.h"
#include "clock.h"
#include "control.h"
#include "daemon.h"
#include "config.h"
#include "port_posix.h"
#include "vhost_front.h"
#include "virtq.h"
#include "vsock.h"
#include "vhost_user_proto.h"

struct env {
	char dir[96];
	char parent[64];
	struct rtvio_config cfg;
	struct broker *b;
	pthread_t thread;
	atomic_int tid;   /* the broker thread's, for its fault count */
	int run_rc;
};


/* Open descriptors of this process: the broker, the cells and the test share it, so
 * equal counts before and after a scenario mean nothing leaked anywhere. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Attributes of the next broker thread (NULL: the defaults). */
static const pthread_attr_t *broker_attr;

static void *broker_thread(void *arg)
{
	struct env *e = arg;

	atomic_store(&e->tid, (int)syscall(SYS_gettid));
	e->run_rc = broker_run(e->b);
	return NULL;
}

static void path_of(const struct env *e, char *buf, size_t n, const char *name)
{
	int len = snprintf(buf, n, "%s/%s", e->dir, name);

	/* The test directory is short; a truncated socket path would test nothing. */
	assert_true(len > 0 && (size_t)len < n);
}

/* extra: more [broker] lines. */
static void start_broker_with(struct env *e, bool poll, const char *extra)
{
	char text[2048], err[512], stale[160];
	struct broker_opts o = { .verbose = false };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	memset(e, 0, sizeof(*e));
	o.verbose = getenv("RTVIO_TEST_VERBOSE") != NULL;
	snprintf(e->parent, sizeof(e->parent), "/tmp/rtvio-test-daemon-%d-%s", (int)getpid(),
		 poll ? "poll" : "epoll");
	snprintf(e->dir, sizeof(e->dir), "%s/sub", e->parent);
	snprintf(text, sizeof(text),
		 "[broker]\n"
		 "socket_dir = %s\n"
		 "poll = %s\n%s"
		 "[cell alpha]\ncid = 3\n"
		 "[cell beta]\ncid = 4\n"
		 "[cell gamma]\ncid = 5\n"
		 "[cell delta]\ncid = 6\nvm = yes\nmemory = 16MiB\n"
		 "[flow ab]\nfrom = alpha\nto = beta:1000\ntype = seqpacket\nsize = 256\n"
		 "period = 1ms\n"
		 "[flow gb]\nfrom = gamma\nto = beta:2000\ntype = seqpacket\nsize = 64\n"
		 "period = 1ms\n"
		 "[flow db]\nfrom = delta\nto = beta:3000\ntype = seqpacket\nsize = 64\n"
		 "period = 1ms\n",
		 e->dir, poll ? "yes" : "no", extra);
	assert_int_equal(rtvio_config_parse(text, "test.conf", &e->cfg, err, sizeof(err)), 0);
	snprintf(stale, sizeof(stale), "%s/beta.sock", e->dir);
	if (poll) {
		/* A stale socket of a dead broker in the way: bound here, listener gone. */
		assert_true(mkdir(e->parent, 0755) == 0 || errno == EEXIST);
		assert_true(mkdir(e->dir, 0700) == 0 || errno == EEXIST);
		unlink(stale);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		strcpy(a.sun_path, stale);
		assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		close(fd);
	} else {
		/* No socket directory at all: created, parents included, owner-only. */
		rmdir(e->dir);
		rmdir(e->parent);
		assert_int_equal(stat(e->parent, &st), -1);
	}
	assert_int_equal(broker_open(&e->cfg, &o, &e->b, err, sizeof(err)), 0);
	assert_int_equal(stat(e->dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	if (!poll)
		assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(stale, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(pthread_create(&e->thread, broker_attr, broker_thread, e), 0);
}

static void start_broker(struct env *e, bool poll)
{
	start_broker_with(e, poll, "");
}

static json_t *stat_of(const struct env *e)
{
	char path[160], *reply = NULL;
	json_t *r, *st;

	path_of(e, path, sizeof(path), CTL_SOCKET_NAME);
	assert_int_equal(ctl_request(path, "{\"cmd\":\"stat\"}\n", &reply, 5000), 0);
	r = json_loads(reply, 0, NULL);
	free(reply);
	assert_non_null(r);
	st = json_incref(json_object_get(r, "stat"));
	json_decref(r);
	assert_non_null(st);
	return st;
}

static const char *cell_state(const struct env *e, const char *name, json_t **hold)
{
	json_t *st = stat_of(e), *c;
	size_t i;

	*hold = st;
	json_array_foreach(json_object_get(st, "cells"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "name")), name))
			return json_string_value(json_object_get(c, "state"));
	fail_msg("cell %s not in stat", name);
	return NULL;
}

/* Waits (bounded) until the control socket reports `state` for `name`. */
static void wait_state(const struct env *e, const char *name, const char *state)
{
	for (int i = 0; i < 500; i++) {
		json_t *hold;
		bool ok = !strcmp(cell_state(e, name, &hold), state);

		json_decref(hold);
		if (ok)
			return;
		usleep(10000);
	}
	fail_msg("cell %s never became %s", name, state);
}

/* Waits (bounded) until the control socket reports `name`'s device running: its
 * memory populated by the memory thread and its rings translated. */
static void wait_running(const struct env *e, const char *name)
{
	for (int i = 0; i < 500; i++) {
		json_t *st = stat_of(e), *c;
		bool ok = false;
		size_t k;

		json_array_foreach(json_object_get(st, "cells"), k, c)
			if (!strcmp(json_string_value(json_object_get(c, "name")), name))
				ok = json_is_true(json_object_get(c, "running"));
		json_decref(st);
		if (ok)
			return;
		usleep(10000);
	}
	fail_msg("cell %s never ran", name);
}

static uint64_t flow_packets(const struct env *e, const char *name)
{
	json_t *st = stat_of(e), *f;
	uint64_t n = UINT64_MAX;
	size_t i;

	json_array_foreach(json_object_get(st, "flows"), i, f)
		if (!strcmp(json_string_value(json_object_get(f, "name")), name))
			n = (uint64_t)json_integer_value(json_object_get(f, "packets"));
	json_decref(st);
	return n;
}

static struct rtvio_cell *open_cell(const struct env *e, const char *name)
{
	char path[160], err[256];
	struct rtvio_cell_opts o = { .no_mlock = true, .handshake_timeout_ms = 5000 };
	struct rtvio_cell *c;

	snprintf(path, sizeof(path), "%s/%s.sock", e->dir, name);
	c = rtvio_cell_open(path, 2u << 20, &o, err, sizeof(err));
	if (!c)
		fail_msg("cell %s: %s", name, err);
	return c;
}

/* Stops the broker through the control socket, or with SIGTERM (blocked in every
 * thread since broker_open, so it stays pending until the broker's signalfd reads it). */
static void stop_broker_how(struct env *e, bool by_signal)
{
	char path[160], *reply = NULL;
	struct stat st;

	path_of(e, path, sizeof(path), CTL_SOCKET_NAME);
	if (by_signal) {
		assert_int_equal(kill(getpid(), SIGTERM), 0);
	} else {
		assert_int_equal(ctl_request(path, "{\"cmd\":\"shutdown\"}\n", &reply, 5000), 0);
		assert_non_null(strstr(reply, "\"ok\":true"));
		free(reply);
	}
	pthread_join(e->thread, NULL);
	assert_int_equal(e->run_rc, 0);
	broker_close(e->b);
	/* Every socket file is gone. */
	path_of(e, path, sizeof(path), "alpha.sock");
	assert_int_equal(stat(path, &st), -1);
	path_of(e, path, sizeof(path), CTL_SOCKET_NAME);
	assert_int_equal(stat(path, &st), -1);
	rmdir(e->dir);
	rmdir(e->parent);
	rtvio_config_free(&e->cfg);
}

static void stop_broker(struct env *e)
{
	stop_broker_how(e, false);
}

/* The listening side runs in its own thread: a process cell's stack only moves when
 * one of its threads is inside a call (or runs rtvio_cell_process). */
struct acceptor {
	struct rtvio_cell *c;
	int ls;
	size_t len;
	uint32_t port;
	uint64_t peer;
	uint8_t in[256];
	ssize_t got;
	unsigned int flags;
	int rc;
};

static void *acceptor_thread(void *arg)
{
	struct acceptor *x = arg;
	uint32_t pport;
	int cs = rtvio_accept(x->c, x->ls, &x->peer, &pport, 5000);

	x->rc = cs;
	if (cs < 0)
		return NULL;
	x->got = rtvio_recv(x->c, cs, x->in, sizeof(x->in), 0, &x->flags, 5000);
	rtvio_close(x->c, cs);
	return NULL;
}

/* a -> b:port (SEQPACKET), one message of len bytes, checked byte for byte. */
static void exchange(struct rtvio_cell *a, struct rtvio_cell *b, uint32_t port, size_t len)
{
	struct acceptor x = { .c = b, .len = len, .port = port };
	uint8_t out[256];
	pthread_t t;
	int s;

	x.ls = rtvio_socket(b, RTVIO_SOCK_SEQPACKET);
	assert_true(x.ls >= 0);
	assert_int_equal(rtvio_listen(b, x.ls, port, 4), 0);
	assert_int_equal(pthread_create(&t, NULL, acceptor_thread, &x), 0);
	s = rtvio_socket(a, RTVIO_SOCK_SEQPACKET);
	assert_true(s >= 0);
	assert_int_equal(rtvio_connect(a, s, rtvio_cell_cid(b), port, 5000), 0);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + port);
	assert_int_equal(rtvio_send(a, s, out, len, RTVIO_MSG_EOR, 5000), (ssize_t)len);
	pthread_join(t, NULL);
	assert_true(x.rc >= 0);
	assert_int_equal(x.peer, rtvio_cell_cid(a));
	assert_int_equal(x.got, (ssize_t)len);
	assert_memory_equal(x.in, out, len);
	assert_true(x.flags & GV_MSG_EOR);
	rtvio_close(a, s);
	rtvio_close(b, x.ls);
}


/* Runs `rtvio stat ARGS` in-process with stdout captured; returns its exit status and
 * the output (static buffer). */
static int run_stat(char **out, int argc, char **argv)
{
	static char buf[65536];
	FILE *tmp = tmpfile();
	int saved, rc;
	size_t n;

	assert_non_null(tmp);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	assert_int_equal(dup2(fileno(tmp), STDOUT_FILENO), STDOUT_FILENO);
	rc = cmd_stat(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	*out = buf;
	return rc;
}

/* `rtvio stat`: JSON and tables, by socket directory and by config file. */
static void check_stat_cli(const struct env *e)
{
	char conf[128], *out, *argv[4];
	json_t *doc, *c;
	size_t i;
	bool seen = false;
	FILE *f;

	argv[0] = (char *)"stat";
	argv[1] = (char *)"--json";
	argv[2] = (char *)e->dir;
	assert_int_equal(run_stat(&out, 3, argv), 0);
	doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "policy")), "fp");
	json_array_foreach(json_object_get(doc, "cells"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "name")), "alpha")) {
			assert_string_equal(json_string_value(json_object_get(c, "state")),
					    "connected");
			seen = true;
		}
	assert_true(seen);
	assert_true(json_array_size(json_object_get(doc, "flows")) == 4); /* ab, gb, db, best-effort */
	json_decref(doc);

	/* By config file: tables. */
	snprintf(conf, sizeof(conf), "%s/test.conf", e->parent);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "[broker]\nsocket_dir = %s\n[cell alpha]\ncid = 3\n", e->dir);
	fclose(f);
	argv[1] = conf;
	assert_int_equal(run_stat(&out, 2, argv), 0);
	unlink(conf);
	assert_non_null(strstr(out, "policy fp"));
	assert_non_null(strstr(out, "CELL"));
	assert_non_null(strstr(out, "FLOW"));
	{
		char *line = strstr(out, "\nalpha ");

		assert_non_null(line);
		assert_non_null(strstr(line, "connected"));
	}
	/* Nobody there, and bad usage: exit status 2. */
	argv[1] = (char *)"/nonexistent-rtvio-dir";
	assert_int_equal(run_stat(&out, 2, argv), 2);
	argv[1] = (char *)"--bogus";
	assert_int_equal(run_stat(&out, 2, argv), 2);
}

static void scenario(bool poll)
{
	struct env e;
	struct rtvio_cell *a, *b, *g;
	char path[160];
	json_t *hold;

	int fds_before = count_fds();

	start_broker(&e, poll);
	wait_state(&e, "alpha", "waiting");
	a = open_cell(&e, "alpha");
	b = open_cell(&e, "beta");
	/* The socket is the identity: CIDs come from the config. */
	assert_int_equal(rtvio_cell_cid(a), 3);
	assert_int_equal(rtvio_cell_cid(b), 4);
	wait_state(&e, "alpha", "connected");
	wait_state(&e, "beta", "connected");
	assert_string_equal(cell_state(&e, "gamma", &hold), "waiting");
	json_decref(hold);

	/* A second front end on alpha.sock is refused: the broker closes it at once. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct vhu_msg m;
		int fds[VHU_MAX_FDS];
		unsigned int nfds = 0;
		struct timeval tv = { .tv_sec = 5 };

		path_of(&e, sa.sun_path, sizeof(sa.sun_path), "alpha.sock");
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		vhu_msg_init(&m, VHU_GET_FEATURES, 0);
		vhu_send(fd, &m, NULL, 0);
		assert_int_equal(vhu_recv(fd, &m, fds, &nfds), -ECONNRESET);
		close(fd);
	}
	/* The same through the cell library: its error names the likely cause. */
	{
		char second[160], err[256];
		struct rtvio_cell_opts o = { .no_mlock = true, .handshake_timeout_ms = 5000 };

		path_of(&e, second, sizeof(second), "alpha.sock");
		assert_null(rtvio_cell_open(second, 2u << 20, &o, err, sizeof(err)));
		assert_non_null(strstr(err, "the broker closed the connection"));
		assert_non_null(strstr(err, "already attached as this cell"));
	}

	/* Monitoring clients that connect and never ask cannot lock stat out. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int idle[CTL_MAX_CLIENTS + 2];

		path_of(&e, sa.sun_path, sizeof(sa.sun_path), CTL_SOCKET_NAME);
		for (int i = 0; i < CTL_MAX_CLIENTS + 2; i++) {
			idle[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			assert_int_equal(connect(idle[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		}
		assert_string_equal(cell_state(&e, "alpha", &hold), "connected");
		json_decref(hold);
		for (int i = 0; i < CTL_MAX_CLIENTS + 2; i++)
			close(idle[i]);
	}

	/* gamma's socket gets a message with an oversized payload and SCM_RIGHTS
	 * descriptors: the broker drops that connection (closing what it received),
	 * gamma is waiting again, and a proper front end can attach afterwards. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int efd[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
		struct vhu_msg m;
		struct timeval tv = { .tv_sec = 5 };
		char c;

		path_of(&e, sa.sun_path, sizeof(sa.sun_path), "gamma.sock");
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		wait_state(&e, "gamma", "connected");
		vhu_msg_init(&m, VHU_SET_MEM_TABLE, 8);
		assert_int_equal(vhu_send(fd, &m, efd, 2), 0); /* fds with a short table */
		m.hdr.size = VHU_MAX_PAYLOAD + 64;             /* then a lie about the size */
		assert_int_equal(write(fd, &m.hdr, sizeof(m.hdr)), (ssize_t)sizeof(m.hdr));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		assert_int_equal(recv(fd, &c, 1, 0), 0); /* dropped */
		close(fd);
		close(efd[0]);
		close(efd[1]);
		wait_state(&e, "gamma", "waiting");
	}

	exchange(a, b, 1000, 200);
	assert_true(flow_packets(&e, "ab") >= 2);
	check_stat_cli(&e); /* at least the data packet and its reply */
	/* No flow permits alpha -> beta:3000: the broker answers with a reset. */
	{
		int s = rtvio_socket(a, RTVIO_SOCK_SEQPACKET);
		int ls = rtvio_socket(b, RTVIO_SOCK_SEQPACKET);

		assert_int_equal(rtvio_listen(b, ls, 3000, 4), 0);
		assert_int_equal(rtvio_connect(a, s, 4, 3000, 5000), -ECONNREFUSED);
		rtvio_close(a, s);
		rtvio_close(b, ls);
	}

	/* alpha leaves; beta is undisturbed and gamma's flow works; alpha comes back. */
	rtvio_cell_close(a);
	wait_state(&e, "alpha", "waiting");
	g = open_cell(&e, "gamma");
	exchange(g, b, 2000, 64);
	a = open_cell(&e, "alpha");
	wait_state(&e, "alpha", "connected");
	exchange(a, b, 1000, 100);
	assert_int_equal(rtvio_cell_error(b), 0);

	/* A second broker on the same socket_dir is refused and leaves the first alone. */
	{
		struct broker *b2 = NULL;
		char err[512];
		struct broker_opts o = { .verbose = false };

		assert_int_equal(broker_open(&e.cfg, &o, &b2, err, sizeof(err)), -EADDRINUSE);
		assert_null(b2);
		assert_non_null(strstr(err, "in use"));
		assert_string_equal(cell_state(&e, "beta", &hold), "connected");
		json_decref(hold);
	}

	rtvio_cell_close(a);
	rtvio_cell_close(g);
	path_of(&e, path, sizeof(path), "beta.sock");
	stop_broker_how(&e, poll);
	/* The broker closed beta's socket on its way out: beta sees the EOF. */
	for (int i = 0; i < 500 && rtvio_cell_process(b) == 0; i++)
		usleep(10000);
	assert_int_equal(rtvio_cell_error(b), -ECONNRESET);
	rtvio_cell_close(b);
	assert_int_equal(count_fds(), fds_before);
}

static void test_epoll_mode(void **state)
{
	(void)state;
	scenario(false);
}

static void test_busy_poll_mode(void **state)
{
	(void)state;
	scenario(true);
}


/* A hand-made front end (no gvsock): its own memfd, rings laid out by core, and the
 * handshake process cells use. */
struct hostile {
	int memfd, sock;
	uint8_t *mem;
	size_t region;
	uint64_t features, cid;
	struct vhost_front_setup su;
};

/* Rings at 0 (rx) and 16 KiB (tx) of a region of `region` bytes; tx_used_off, when
 * not 0, moves the tx used ring there. Returns the handshake's result (hostile_close
 * cleans up either way). */
static int hostile_open(const struct env *e, struct hostile *h, const char *cell,
			unsigned int memfd_flags, size_t region, uint64_t tx_used_off)
{
	struct vhost_front_result res;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vq_layout l;
	char name[64];
	int rc;

	h->region = region;
	h->memfd = memfd_create("hostile", MFD_CLOEXEC | memfd_flags);
	assert_true(h->memfd >= 0);
	assert_int_equal(ftruncate(h->memfd, (off_t)h->region), 0);
	h->mem = mmap(NULL, h->region, PROT_READ | PROT_WRITE, MAP_SHARED, h->memfd, 0);
	assert_true(h->mem != MAP_FAILED);
	assert_int_equal(vq_layout(128, &l), 0);
	memset(&h->su, 0, sizeof(h->su));
	h->su.mem_fd = h->memfd;
	h->su.mem_size = h->region;
	h->su.guest_addr = RTVIO_CELL_GUEST_BASE;
	h->su.user_addr = (uint64_t)(uintptr_t)h->mem;
	h->su.want_features = VHU_VSOCK_FEATURES;
	h->su.need_features = 1ull << VHU_F_VERSION_1;
	h->su.timeout_ms = 5000;
	for (unsigned int q = 0; q < 2; q++) {
		uint64_t base = q * 16384u;

		h->su.q[q].num = 128;
		h->su.q[q].desc = h->su.user_addr + base + l.desc_off;
		h->su.q[q].avail = h->su.user_addr + base + l.avail_off;
		h->su.q[q].used = h->su.user_addr + base + l.used_off;
		h->su.q[q].kick_fd = eventfd(0, EFD_CLOEXEC);
		h->su.q[q].call_fd = eventfd(0, EFD_CLOEXEC);
	}
	if (tx_used_off)
		h->su.q[1].used = h->su.user_addr + tx_used_off;
	h->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(name, sizeof(name), "%s.sock", cell);
	path_of(e, sa.sun_path, sizeof(sa.sun_path), name);
	assert_int_equal(connect(h->sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	rc = vhost_front_handshake(h->sock, &h->su, &res);
	h->features = res.features;
	h->cid = res.cid;
	return rc;
}

static void hostile_attach(const struct env *e, struct hostile *h, const char *cell,
			   unsigned int memfd_flags, uint64_t cid)
{
	assert_int_equal(hostile_open(e, h, cell, memfd_flags, 1u << 20, 0), 0);
	assert_int_equal(h->cid, cid);
	wait_state(e, cell, "connected");
}

static void hostile_kick(struct hostile *h, unsigned int q)
{
	uint64_t one = 1;

	assert_int_equal(write(h->su.q[q].kick_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

/* The broker closed the hostile front end's socket. */
static void hostile_expect_eof(struct hostile *h)
{
	struct timeval tv = { .tv_sec = 5 };
	char c;

	setsockopt(h->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(recv(h->sock, &c, 1, 0), 0);
}

static void hostile_close(struct hostile *h)
{
	close(h->sock);
	for (unsigned int q = 0; q < 2; q++) {
		close(h->su.q[q].kick_fd);
		close(h->su.q[q].call_fd);
	}
	munmap(h->mem, h->region);
	close(h->memfd);
}

/* After a hostile alpha was cut off: the broker still answers stat, beta and gamma
 * never noticed, and alpha may come back with sane rings. */
static void others_carry_on(struct env *e, struct rtvio_cell *b, struct rtvio_cell *g)
{
	struct rtvio_cell *a;
	json_t *st = stat_of(e);

	assert_non_null(json_object_get(st, "cells"));
	json_decref(st);
	exchange(g, b, 2000, 64);
	assert_int_equal(rtvio_cell_error(b), 0);
	assert_int_equal(rtvio_cell_error(g), 0);
	a = open_cell(e, "alpha");
	wait_state(e, "alpha", "connected");
	exchange(a, b, 1000, 256);
	rtvio_cell_close(a);
}

/* A front end that attaches properly and then scribbles over its own avail ring: the
 * broker cuts it off (state broken, socket closed) and the other cells carry on; the
 * same cell can attach again afterwards. */
static void test_broken_ring_cut_off(void **state)
{
	struct env e;
	struct rtvio_cell *b, *g;
	struct hostile h;
	struct vq_ring ring;

	(void)state;
	start_broker(&e, false);
	b = open_cell(&e, "beta");
	g = open_cell(&e, "gamma");
	hostile_attach(&e, &h, "alpha", MFD_ALLOW_SEALING, 3);
	/* Garbage: an avail index far ahead of the ring, a head out of range. */
	assert_int_equal(vq_ring_at(&ring, h.mem + 16384u, 128), 0);
	ring.avail->ring[0] = 0xffff;
	atomic_store((_Atomic uint16_t *)&ring.avail->idx, 1000);
	hostile_kick(&h, 1);
	wait_state(&e, "alpha", "broken");
	hostile_expect_eof(&h);
	hostile_close(&h);
	others_carry_on(&e, b, g);
	rtvio_cell_close(g);
	stop_broker(&e);
	rtvio_cell_close(b);
}

/* A process cell's memory that cannot be sealed is refused; a `vm = yes` cell's is
 * not sealed (a VMM's), and when it truncates it under the busy-polling broker, the
 * broker's next ring access would be SIGBUS; the guard turns it into a cut-off, and
 * the broker and the other cells carry on. */
static void test_truncated_memory_cut_off(void **state)
{
	struct env e;
	struct rtvio_cell *b, *g;
	struct hostile h;

	(void)state;
	start_broker(&e, true);
	b = open_cell(&e, "beta");
	g = open_cell(&e, "gamma");
	assert_int_equal(hostile_open(&e, &h, "alpha", 0, 1u << 20, 0), -EPROTO);
	hostile_close(&h);
	hostile_attach(&e, &h, "delta", 0, 6);
	assert_false(fcntl(h.memfd, F_GET_SEALS) & F_SEAL_SHRINK);
	/* Truncated only once it runs: before, the populate itself fails (EFAULT) and
	 * the device never starts, which is no fault in the data path. */
	wait_running(&e, "delta");
	assert_int_equal(ftruncate(h.memfd, 0), 0);
	hostile_kick(&h, 1);
	wait_state(&e, "delta", "broken");
	hostile_expect_eof(&h);
	hostile_close(&h);
	others_carry_on(&e, b, g);
	rtvio_cell_close(g);
	stop_broker(&e);
	rtvio_cell_close(b);
}

/* Chains the data plane holds when the device stops go back to the driver: alpha's
 * REQUEST waits for RX buffers that beta never posts; GET_VRING_BASE on alpha's tx
 * queue stops alpha, reports the next avail index (1), and the chain comes back as
 * used with length 0. */
static void test_inflight_returned_on_stop(void **state)
{
	struct env e;
	struct hostile ha, hb;
	struct vq_ring ring;
	struct vq_driver drv;
	static struct vq_drv_slot slot[128];
	struct vsock_hdr hdr = {
		.src_cid = 3, .dst_cid = 4, .src_port = 5555, .dst_port = 1000,
		.type = VSOCK_TYPE_SEQPACKET, .op = VSOCK_OP_REQUEST, .buf_alloc = 65536,
	};
	struct vq_buf out = { .addr = RTVIO_CELL_GUEST_BASE + 0x20000, .len = VSOCK_HDR_SIZE };
	struct vhu_msg m;
	int fds[VHU_MAX_FDS];
	unsigned int nfds = 0;
	void *token = NULL;
	uint32_t len = 99;
	json_t *st, *c;
	size_t i;
	uint64_t in = 0;

	(void)state;
	start_broker(&e, false);
	hostile_attach(&e, &hb, "beta", MFD_ALLOW_SEALING, 4);
	hostile_attach(&e, &ha, "alpha", MFD_ALLOW_SEALING, 3);
	assert_int_equal(vq_ring_at(&ring, ha.mem + 16384u, 128), 0);
	assert_int_equal(vq_driver_init(&drv, &ring, slot, ha.features), 0);
	vsock_hdr_encode(&hdr, ha.mem + 0x20000);
	assert_int_equal(vq_driver_add(&drv, &out, 1, NULL, 0, &hdr), 0);
	vq_driver_publish(&drv);
	hostile_kick(&ha, 1);
	/* Ingested, and stuck: beta has no RX buffer for it. */
	for (int k = 0; k < 500 && in == 0; k++) {
		st = stat_of(&e);
		json_array_foreach(json_object_get(st, "cells"), i, c)
			if (!strcmp(json_string_value(json_object_get(c, "name")), "alpha"))
				in = (uint64_t)json_integer_value(json_object_get(c, "packets_in"));
		json_decref(st);
		if (!in)
			usleep(10000);
	}
	assert_int_equal(in, 1);
	assert_int_equal(vq_driver_get_used(&drv, &token, &len), 0);
	/* QEMU's shutdown step for the tx queue. */
	vhu_msg_init(&m, VHU_GET_VRING_BASE, sizeof(struct vhu_vring_state));
	m.p.state.index = 1;
	m.p.state.num = 0;
	assert_int_equal(vhu_send(ha.sock, &m, NULL, 0), 0);
	assert_int_equal(vhu_recv(ha.sock, &m, fds, &nfds), 0);
	assert_int_equal(nfds, 0);
	assert_int_equal(m.hdr.request, VHU_GET_VRING_BASE);
	assert_int_equal(m.p.state.index, 1);
	assert_int_equal(m.p.state.num, 1);
	assert_int_equal(vq_driver_get_used(&drv, &token, &len), 1);
	assert_ptr_equal(token, &hdr);
	assert_int_equal(len, 0);
	hostile_close(&ha);
	hostile_close(&hb);
	stop_broker(&e);
}

static uint64_t cell_counter(const struct env *e, const char *name, const char *key)
{
	json_t *st = stat_of(e), *c;
	uint64_t n = UINT64_MAX;
	size_t i;

	json_array_foreach(json_object_get(st, "cells"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "name")), name))
			n = (uint64_t)json_integer_value(json_object_get(c, key));
	json_decref(st);
	assert_true(n != UINT64_MAX);
	return n;
}

static void send_kick_fd(struct hostile *h, unsigned int q, int fd)
{
	struct vhu_msg m;

	vhu_msg_init(&m, VHU_SET_VRING_KICK, sizeof(uint64_t));
	m.hdr.flags |= VHU_FLAG_NEED_REPLY;
	m.p.u64 = q;
	assert_int_equal(vhu_send(h->sock, &m, &fd, 1), 0);
}

static void expect_ack(struct hostile *h, uint32_t request)
{
	struct vhu_msg m;
	int fds[VHU_MAX_FDS];
	unsigned int nfds = 0;

	assert_int_equal(vhu_recv(h->sock, &m, fds, &nfds), 0);
	assert_int_equal(nfds, 0);
	assert_int_equal(m.hdr.request, request);
	assert_int_equal(m.hdr.size, sizeof(uint64_t));
	assert_int_equal(m.p.u64, 0);
}

/* A front end replaces both kick eventfds (queue 1, then queue 0, in one go) and
 * keeps the old ones open, as a front end does: writing an old one wakes nothing
 * (the sleeping broker does not watch it any more), and each new one wakes it once.
 * The broker never reads a kick counter: it stays with the cell. */
static void test_kick_replaced(void **state)
{
	struct env e;
	struct hostile h;
	int old[2];
	uint64_t k0, v, one = 1;

	(void)state;
	start_broker(&e, false);
	hostile_attach(&e, &h, "alpha", MFD_ALLOW_SEALING, 3);
	for (unsigned int q = 0; q < 2; q++)
		old[q] = h.su.q[q].kick_fd;
	h.su.q[1].kick_fd = eventfd(0, EFD_CLOEXEC);
	h.su.q[0].kick_fd = eventfd(0, EFD_CLOEXEC);
	send_kick_fd(&h, 1, h.su.q[1].kick_fd);
	send_kick_fd(&h, 0, h.su.q[0].kick_fd);
	expect_ack(&h, VHU_SET_VRING_KICK);
	expect_ack(&h, VHU_SET_VRING_KICK);
	k0 = cell_counter(&e, "alpha", "kicks");
	for (unsigned int q = 0; q < 2; q++)
		assert_int_equal(write(old[q], &one, sizeof(one)), (ssize_t)sizeof(one));
	/* Two control requests: any kick event pending was handled before each reply. */
	assert_int_equal(cell_counter(&e, "alpha", "kicks"), k0);
	assert_int_equal(cell_counter(&e, "alpha", "kicks"), k0);
	for (unsigned int q = 0; q < 2; q++) {
		hostile_kick(&h, q);
		assert_int_equal(cell_counter(&e, "alpha", "kicks"), k0 + q + 1);
	}
	for (unsigned int q = 0; q < 2; q++) {
		assert_int_equal(read(h.su.q[q].kick_fd, &v, sizeof(v)), (ssize_t)sizeof(v));
		assert_int_equal(v, 1);
		close(old[q]);
	}
	hostile_close(&h);
	stop_broker(&e);
}

/* A cell maps no more than its configuration grants: a process cell its `region`
 * (2 MiB by default), a vm cell its `memory`. */
static void test_memory_limits(void **state)
{
	struct env e;
	struct hostile h;

	(void)state;
	start_broker(&e, false);
	assert_int_equal(hostile_open(&e, &h, "alpha", MFD_ALLOW_SEALING, 4u << 20, 0), -EPROTO);
	hostile_close(&h);
	assert_int_equal(hostile_open(&e, &h, "alpha", MFD_ALLOW_SEALING, 2u << 20, 0), 0);
	hostile_close(&h);
	assert_int_equal(hostile_open(&e, &h, "delta", MFD_ALLOW_SEALING, 17u << 20, 0), -EPROTO);
	hostile_close(&h);
	assert_int_equal(hostile_open(&e, &h, "delta", MFD_ALLOW_SEALING, 16u << 20, 0), 0);
	wait_state(&e, "delta", "connected");
	hostile_close(&h);
	stop_broker(&e);
}

/* The broker was holding two of delta's TX chains (REQUESTs beta has no RX buffer
 * for) when delta (a `vm = yes` cell: its memory is not sealed) truncated the last
 * page of its memory, where the tx ring's avail_event lies; the used ring's index
 * and entries lie on the page before, still there. The broker's write of avail_event
 * is caught by the SIGBUS guard and delta is cut off: it must not then write the
 * held chains back into delta's used ring as it would for a stopped ring (memory the
 * cell took away is not touched again). */
static void test_fault_returns_nothing(void **state)
{
	const size_t region = 1u << 20;
	const uint64_t used_off = region - 4096 - 512;
	struct env e;
	struct hostile ha, hb;
	struct vq_layout l;
	struct vq_ring ring;
	struct vq_driver drv;
	static struct vq_drv_slot slot[128];
	struct vsock_hdr hdr[2];
	uint64_t in = 0;

	(void)state;
	start_broker(&e, false);
	hostile_attach(&e, &hb, "beta", MFD_ALLOW_SEALING, 4);
	assert_int_equal(hostile_open(&e, &ha, "delta", 0, region, used_off), 0);
	wait_state(&e, "delta", "connected");
	assert_int_equal(vq_layout(128, &l), 0);
	ring.num = 128;
	ring.desc = (struct vring_desc *)(void *)(ha.mem + 16384u + l.desc_off);
	ring.avail = (struct vring_avail *)(void *)(ha.mem + 16384u + l.avail_off);
	ring.used = (struct vring_used *)(void *)(ha.mem + used_off);
	assert_int_equal(vq_driver_init(&drv, &ring, slot, ha.features), 0);
	for (unsigned int i = 0; i < 2; i++) {
		struct vq_buf out = { .addr = RTVIO_CELL_GUEST_BASE + 0x20000 + i * 0x1000,
				      .len = VSOCK_HDR_SIZE };

		hdr[i] = (struct vsock_hdr){
			.src_cid = 6, .dst_cid = 4, .src_port = 5555 + i, .dst_port = 3000,
			.type = VSOCK_TYPE_SEQPACKET, .op = VSOCK_OP_REQUEST, .buf_alloc = 65536,
		};
		vsock_hdr_encode(&hdr[i], ha.mem + 0x20000 + i * 0x1000);
		assert_int_equal(vq_driver_add(&drv, &out, 1, NULL, 0, &hdr[i]), 0);
	}
	/* The first is published and ingested while the memory is whole. */
	atomic_store((_Atomic uint16_t *)&ring.avail->idx, 1);
	hostile_kick(&ha, 1);
	for (int k = 0; k < 500 && (in = cell_counter(&e, "delta", "packets_in")) == 0; k++)
		usleep(10000);
	assert_int_equal(in, 1);
	/* Then the last page goes, and the second is published. */
	assert_int_equal(ftruncate(ha.memfd, (off_t)(region - 4096)), 0);
	atomic_store((_Atomic uint16_t *)&ring.avail->idx, 2);
	hostile_kick(&ha, 1);
	wait_state(&e, "delta", "broken");
	hostile_expect_eof(&ha);
	assert_int_equal(atomic_load((_Atomic uint16_t *)&ring.used->idx), 0);
	hostile_close(&ha);
	hostile_close(&hb);
	stop_broker(&e);
}

/* Minor page faults the thread `tid` of this process has taken. */
static unsigned long thread_minflt(int tid)
{
	char path[64], buf[1024], *p;
	unsigned long v = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the name may hold spaces */
	assert_non_null(p);
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %lu", &v), 1);
	return v;
}

#define NF_WARM 8u
#define NF_MSGS 300u

struct nf_rx {
	struct rtvio_cell *c;
	int ls;
	atomic_uint got;
	unsigned int bad;
};

static void nf_fill(uint8_t *m, unsigned int i)
{
	for (unsigned int k = 0; k < 256; k++)
		m[k] = (uint8_t)(i * 31 + k);
}

static void *nf_receiver(void *arg)
{
	struct nf_rx *x = arg;
	uint64_t peer;
	uint32_t pport;
	uint8_t in[256], want[256];
	unsigned int flags;
	int cs = rtvio_accept(x->c, x->ls, &peer, &pport, 5000);

	if (cs < 0) {
		x->bad++;
		return NULL;
	}
	for (unsigned int i = 0; i < NF_MSGS; i++) {
		ssize_t n = rtvio_recv(x->c, cs, in, sizeof(in), 0, &flags, 5000);

		nf_fill(want, i);
		if (n != (ssize_t)sizeof(in) || memcmp(in, want, sizeof(in)))
			x->bad++;
		atomic_store(&x->got, i + 1);
		if (n < 0)
			break;
	}
	rtvio_close(x->c, cs);
	return NULL;
}

/* No page fault a cell can cause. A process cell's memory is sealed once the broker
 * maps it: the hostile cell's attempts to punch each of its pages out fail (EPERM),
 * fallocate and madvise alike. And the broker's thread takes no page fault at all
 * while a freshly attached pair exchanges NF_MSGS messages over one connection, every
 * byte intact: both cells' memory was faulted in (and, with mlockall, locked) by the
 * populate thread before their devices started. The zero cannot come by accident:
 * with the populate left out, the same window faults on every page of beta's RX
 * buffers and alpha's TX slots the broker touches for the first time (dozens). The
 * window opens after NF_WARM messages, so that the broker's own first touches of
 * the connection (its tables are not locked here) lie outside it. Measured: 0 with
 * the populate, 135 with it left out. */
static void test_no_cell_faults(void **state)
{
	struct nf_rx x = { 0 };
	struct rtvio_cell *a, *b;
	struct hostile h;
	unsigned long f0 = 0, f1;
	uint8_t out[256];
	struct env e;
	pthread_t t;
	int seals, s;

	(void)state;
	start_broker(&e, false);
	hostile_attach(&e, &h, "gamma", MFD_ALLOW_SEALING, 5);
	seals = fcntl(h.memfd, F_GET_SEALS);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_FUTURE_WRITE);
	for (size_t off = 0; off < h.region; off += 4096) {
		errno = 0;
		assert_int_equal(fallocate(h.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   (off_t)off, 4096), -1);
		assert_int_equal(errno, EPERM);
	}
	assert_int_equal(madvise(h.mem, h.region, MADV_REMOVE), -1);
	assert_int_equal(errno, EPERM);
	a = open_cell(&e, "alpha");
	b = open_cell(&e, "beta");
	x.c = b;
	x.ls = rtvio_socket(b, RTVIO_SOCK_SEQPACKET);
	assert_true(x.ls >= 0);
	assert_int_equal(rtvio_listen(b, x.ls, 1000, 4), 0);
	assert_int_equal(pthread_create(&t, NULL, nf_receiver, &x), 0);
	s = rtvio_socket(a, RTVIO_SOCK_SEQPACKET);
	assert_true(s >= 0);
	assert_int_equal(rtvio_connect(a, s, rtvio_cell_cid(b), 1000, 5000), 0);
	for (unsigned int i = 0; i < NF_MSGS; i++) {
		if (i == NF_WARM) {
			while (atomic_load(&x.got) < NF_WARM)
				usleep(1000);
			f0 = thread_minflt(atomic_load(&e.tid));
		}
		nf_fill(out, i);
		assert_int_equal(rtvio_send(a, s, out, sizeof(out), RTVIO_MSG_EOR, 5000),
				 (ssize_t)sizeof(out));
	}
	pthread_join(t, NULL);
	f1 = thread_minflt(atomic_load(&e.tid));
	assert_int_equal(x.got, NF_MSGS);
	assert_int_equal(x.bad, 0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* A sanitizer's shadow memory faults on the first access to each 32 KiB of
	 * memory (cell memory included): counted here, and not the cell's doing. The
	 * plain build's run is the one that checks the zero. */
	assert_int_equal(f1 - f0, 0);
#else
	(void)f0;
	(void)f1;
#endif
	rtvio_close(a, s);
	rtvio_close(b, x.ls);
	hostile_close(&h);
	rtvio_cell_close(a);
	stop_broker(&e);
	rtvio_cell_close(b);
}

/* A front end that goes and comes back at once (QEMU restarting the device): its end
 * of file is still behind thousands of unread messages when the new connection
 * arrives. The old connection has hung up, so the new one is not a second front end:
 * it is accepted. */
static void test_reconnect_before_eof(void **state)
{
	static struct vhu_hdr flood[16384];
	struct env e;
	struct hostile h;
	size_t off = 0;

	(void)state;
	start_broker(&e, false);
	hostile_attach(&e, &h, "alpha", MFD_ALLOW_SEALING, 3);
	for (size_t i = 0; i < sizeof(flood) / sizeof(flood[0]); i++)
		flood[i] = (struct vhu_hdr){ .request = VHU_SET_OWNER, .flags = VHU_VERSION };
	while (off < sizeof(flood)) {
		ssize_t n = write(h.sock, (uint8_t *)flood + off, sizeof(flood) - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
	close(h.sock);
	h.sock = -1;
	hostile_close(&h);
	assert_int_equal(hostile_open(&e, &h, "alpha", MFD_ALLOW_SEALING, 1u << 20, 0), 0);
	wait_state(&e, "alpha", "connected");
	assert_int_equal(cell_counter(&e, "alpha", "connections_refused"), 0);
	assert_int_equal(cell_counter(&e, "alpha", "connects"), 2);
	hostile_close(&h);
	stop_broker(&e);
}

/* ---- a stat reply far larger than a socket buffer --------------------------------- */

#define BIG_FLOWS 1500

/* Reads until EOF (or timeout_ms without data); returns the byte count. */
static size_t read_to_eof(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			fail_msg("no data and no EOF within %d ms", timeout_ms);
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
		assert_true(len < cap - 1);
	}
	buf[len] = '\0';
	return len;
}

static size_t sock_buffer_default(void)
{
	FILE *f = fopen("/proc/sys/net/core/wmem_default", "r");
	unsigned long v = 212992;

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 212992;
		fclose(f);
	}
	return v;
}

static int ctl_connect_send(const struct env *e, const char *req)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	path_of(e, sa.sun_path, sizeof(sa.sun_path), CTL_SOCKET_NAME);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	return fd;
}

/* 1500 flows make a stat reply of several hundred kB. A client that waits 0.5 s
 * before reading gets all of it, ending in its newline; meanwhile another client is
 * served; a client that never reads does not hold the broker and is dropped. */
static void big_stat(bool poll_mode)
{
	static struct env e;
	static char got[8u << 20];
	struct broker_opts o = { .verbose = false };
	char err[512], path[160], *text, *reply = NULL;
	size_t cap = 200u * BIG_FLOWS + 512, off, len, full;
	int fd, stalled, fds_before = count_fds();
	json_t *r;

	memset(&e, 0, sizeof(e));
	snprintf(e.parent, sizeof(e.parent), "/tmp/rtvio-test-daemon-%d-big", (int)getpid());
	snprintf(e.dir, sizeof(e.dir), "%s/sub", e.parent);
	text = malloc(cap);
	assert_non_null(text);
	off = (size_t)snprintf(text, cap, "[broker]\nsocket_dir = %s\npoll = %s\n"
			       "[cell alpha]\ncid = 3\n[cell beta]\ncid = 4\n", e.dir,
			       poll_mode ? "yes" : "no");
	for (int i = 0; i < BIG_FLOWS; i++)
		off += (size_t)snprintf(text + off, cap - off,
					"[flow f%d]\nfrom = alpha\nto = beta:%d\n"
					"type = seqpacket\nsize = 64\nperiod = 1ms\n", i, 1000 + i);
	assert_true(off < cap);
	assert_int_equal(rtvio_config_parse(text, "big.conf", &e.cfg, err, sizeof(err)), 0);
	free(text);
	assert_int_equal(broker_open(&e.cfg, &o, &e.b, err, sizeof(err)), 0);
	assert_int_equal(pthread_create(&e.thread, NULL, broker_thread, &e), 0);

	stalled = ctl_connect_send(&e, "{\"cmd\":\"stat\"}\n");
	fd = ctl_connect_send(&e, "{\"cmd\":\"stat\"}\n");
	usleep(500000);
	len = read_to_eof(fd, got, sizeof(got), 5000);
	close(fd);
	/* Larger than a Unix socket's send buffer: one write could not have held it. */
	assert_true(len > sock_buffer_default());
	assert_int_equal(got[len - 1], '\n');
	assert_null(memchr(got, '\n', len - 1));
	r = json_loads(got, 0, NULL);
	assert_non_null(r);
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_true(json_array_size(json_object_get(json_object_get(r, "stat"), "flows")) >=
		    BIG_FLOWS);
	json_decref(r);
	full = len;

	/* The stalled client holds nothing up: the broker still answers others. */
	path_of(&e, path, sizeof(path), CTL_SOCKET_NAME);
	assert_int_equal(ctl_request(path, "{\"cmd\":\"stat\"}\n", &reply, 5000), 0);
	assert_true(strlen(reply) + 1 >= full - 64);
	free(reply);
	/* ...and is dropped once its time is up: reading only then, it finds what the
	 * socket buffer held and then EOF, short of the whole reply. */
	usleep((useconds_t)(CTL_WRITE_TIMEOUT_NS / 1000u) + 1000000u);
	len = read_to_eof(stalled, got, sizeof(got), 5000);
	close(stalled);
	assert_true(len < full);

	stop_broker(&e);
	assert_int_equal(count_fds(), fds_before);
}

/* A front end beyond its vhost-user budget (by default 16 messages, of which 2
 * memory-table changes or attaches, per 10 ms) waits on its own socket: every message
 * is still handled, in order (the reply to the last one comes after all the others),
 * the cell stays connected, and the broker counts the periods it was held back. */
static void test_vhost_user_budget(void **state)
{
	struct timeval tv = { .tv_sec = 10 };
	struct env e;
	struct hostile h;
	struct vhu_msg m;
	uint8_t reply[sizeof(struct vhu_hdr) + sizeof(uint64_t)];
	uint64_t before, feats;
	size_t got = 0;

	(void)state;
	start_broker(&e, false);
	hostile_attach(&e, &h, "alpha", MFD_ALLOW_SEALING, 3);
	before = cell_counter(&e, "alpha", "vhu_deferred");
	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(vhu_send_flags(h.sock, &m, NULL, 0, 0), 0);
	/* Its own region again, eight times: four periods' worth of memory-table changes. */
	vhu_msg_init(&m, VHU_SET_MEM_TABLE, (uint32_t)offsetof(struct vhu_mem_table, regions) +
						    (uint32_t)sizeof(struct vhu_mem_region));
	memset(&m.p.mem, 0, sizeof(m.p.mem));
	m.p.mem.nregions = 1;
	m.p.mem.regions[0].guest_addr = RTVIO_CELL_GUEST_BASE;
	m.p.mem.regions[0].size = h.region;
	m.p.mem.regions[0].user_addr = (uint64_t)(uintptr_t)h.mem;
	for (int i = 0; i < 8; i++)
		assert_int_equal(vhu_send_flags(h.sock, &m, &h.memfd, 1, 0), 0);
	vhu_msg_init(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_send_flags(h.sock, &m, NULL, 0, 0), 0);
	setsockopt(h.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(reply)) {
		ssize_t n = recv(h.sock, reply + got, sizeof(reply) - got, 0);

		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(((struct vhu_hdr *)reply)->request, VHU_GET_FEATURES);
	memcpy(&feats, reply + sizeof(struct vhu_hdr), sizeof(feats));
	assert_int_equal(feats, VHU_VSOCK_FEATURES);
	/* 109 messages at 16 a period: held back at least 6 times. */
	assert_true(cell_counter(&e, "alpha", "vhu_deferred") - before >= 6);
	wait_state(&e, "alpha", "connected");
	hostile_close(&h);
	stop_broker(&e);
}

/* The broker-wide bucket (vhost_user_total = 4/40ms, below what alpha alone may send:
 * 8 per 5 ms) holds the loop to at most 4 (1 + t / 40 ms) messages in any t, so
 * alpha's 401 messages take at least 3.97 s; and its round serves gamma's handshake
 * (about 20 messages, 4 per turn) between alpha's turns: gamma is attached while
 * alpha's flood is still being served, and waited in the round for it. The flood is
 * that long so that gamma, started after it (the sends may wait for the broker to
 * read), still meets it on a slow (sanitized) build. */
static void test_vhost_user_total(void **state)
{
	struct timeval tv = { .tv_sec = 10 };
	struct env e;
	struct hostile h;
	struct vhu_msg m;
	struct rtvio_cell *g;
	struct pollfd p;
	uint8_t reply[sizeof(struct vhu_hdr) + sizeof(uint64_t)];
	uint64_t t0, t1, before;
	size_t got = 0;

	(void)state;
	start_broker_with(&e, false, "vhost_user_total = 4/40ms\n");
	hostile_attach(&e, &h, "alpha", MFD_ALLOW_SEALING, 3);
	before = cell_counter(&e, "gamma", "vhu_deferred");
	t0 = rtvio_now_ns();
	vhu_msg_init(&m, VHU_SET_OWNER, 0);
	for (int i = 0; i < 400; i++)
		assert_int_equal(vhu_send_flags(h.sock, &m, NULL, 0, 0), 0);
	vhu_msg_init(&m, VHU_GET_FEATURES, 0);
	assert_int_equal(vhu_send_flags(h.sock, &m, NULL, 0, 0), 0);
	g = open_cell(&e, "gamma");
	/* Only GET_FEATURES has a reply: not there yet. */
	p = (struct pollfd){ .fd = h.sock, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_true(cell_counter(&e, "gamma", "vhu_deferred") > before);
	setsockopt(h.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(reply)) {
		ssize_t n = recv(h.sock, reply + got, sizeof(reply) - got, 0);

		assert_true(n > 0);
		got += (size_t)n;
	}
	t1 = rtvio_now_ns();
	assert_int_equal(((struct vhu_hdr *)reply)->request, VHU_GET_FEATURES);
	/* 401 <= 4 (1 + (t1 - t0) / 40 ms) */
	assert_true(t1 - t0 >= (401ull - 4ull) * 40000000ull / 4ull);
	wait_state(&e, "alpha", "connected");
	hostile_close(&h);
	rtvio_cell_close(g);
	stop_broker(&e);
}

/* Undoing a cut-off cell's connection (the data plane's detach, the unmapping) is a
 * heavy vhost-user operation: with one heavy message per second, alpha's attach
 * spends its token, and once it breaks its ring it is cut off at once (state broken,
 * counted in vhu_deferred) but its socket is closed only when the next token is back.
 * The others carry on meanwhile, and alpha can attach again afterwards. */
static void test_cut_off_waits_for_heavy_token(void **state)
{
	struct env e;
	struct rtvio_cell *b, *g;
	struct hostile h;
	struct vq_ring ring;
	struct pollfd p;
	uint64_t before, t0;

	(void)state;
	start_broker_with(&e, false, "vhost_user_maps = 1/1s\n");
	b = open_cell(&e, "beta");
	g = open_cell(&e, "gamma");
	t0 = rtvio_now_ns();
	hostile_attach(&e, &h, "alpha", MFD_ALLOW_SEALING, 3);
	before = cell_counter(&e, "alpha", "vhu_deferred");
	assert_int_equal(vq_ring_at(&ring, h.mem + 16384u, 128), 0);
	ring.avail->ring[0] = 0xffff;
	atomic_store((_Atomic uint16_t *)&ring.avail->idx, 1000);
	hostile_kick(&h, 1);
	wait_state(&e, "alpha", "broken");
	/* Its token went on the attach a moment ago: the connection is still open, unless
	 * (a loaded machine) the token's second has passed since. */
	p = (struct pollfd){ .fd = h.sock, .events = POLLIN | POLLRDHUP };
	if (poll(&p, 1, 100) != 0)
		assert_true(rtvio_now_ns() - t0 >= 1000000000ull);
	assert_int_equal(cell_counter(&e, "alpha", "vhu_deferred"), before + 1);
	exchange(g, b, 2000, 64);
	hostile_expect_eof(&h);
	hostile_close(&h);
	others_carry_on(&e, b, g);
	rtvio_cell_close(g);
	stop_broker(&e);
	rtvio_cell_close(b);
}

static void test_big_stat_epoll(void **state)
{
	(void)state;
	big_stat(false);
}

static void test_big_stat_busy_poll(void **state)
{
	(void)state;
	big_stat(true);
}

/* An ordinary thread pinned to the broker's cpu: the longest it was kept from
 * running (between two of its clock reads) over `run_ns`. */
struct bystander {
	int cpu;
	uint64_t run_ns, max_gap_ns, reads;
};

static void *bystander_thread(void *arg)
{
	struct bystander *y = arg;
	cpu_set_t set;
	uint64_t t0, last, now;

	CPU_ZERO(&set);
	CPU_SET(y->cpu, &set);
	assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
	t0 = last = rtvio_now_ns();
	do {
		now = rtvio_now_ns();
		if (now - last > y->max_gap_ns)
			y->max_gap_ns = now - last;
		last = now;
		y->reads++;
	} while (now - t0 < y->run_ns);
	return NULL;
}

/* A busy-polling broker at SCHED_FIFO does not take its cpu whole: an ordinary
 * thread pinned there keeps running, never shut out for the 50 ms that Linux's fair
 * server would grant it in one piece each second (the broker pauses 60 µs of every
 * millisecond; 200 ms leaves room for other work on a shared machine). Skipped
 * with one cpu or without permission for SCHED_FIFO. */
static void test_busy_poll_fifo_leaves_cpu(void **state)
{
	struct sched_param sp = { .sched_priority = 1 };
	struct bystander y = { .run_ns = 1500000000ull };
	struct env e;
	pthread_attr_t attr;
	pthread_t t;
	cpu_set_t set;
	int rc;

	(void)state;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		skip();
	y.cpu = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	CPU_ZERO(&set);
	CPU_SET(y.cpu, &set);
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &sp);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	/* Permission to run SCHED_FIFO: a thread that only ends. */
	rc = pthread_create(&t, &attr, bystander_thread, &(struct bystander){ .cpu = y.cpu });
	if (rc) {
		pthread_attr_destroy(&attr);
		skip();
	}
	pthread_join(t, NULL);
	broker_attr = &attr;
	start_broker_with(&e, true, "");
	broker_attr = NULL;
	assert_int_equal(pthread_create(&t, NULL, bystander_thread, &y), 0);
	pthread_join(t, NULL);
	stop_broker(&e);
	pthread_attr_destroy(&attr);
	assert_true(y.reads > 0);
	if (y.max_gap_ns >= 200000000ull)
		fail_msg("an ordinary thread on the polling broker's cpu waited %llu ms",
			 (unsigned long long)(y.max_gap_ns / 1000000u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epoll_mode),
		cmocka_unit_test(test_busy_poll_mode),
		cmocka_unit_test(test_broken_ring_cut_off),
		cmocka_unit_test(test_truncated_memory_cut_off),
		cmocka_unit_test(test_inflight_returned_on_stop),
		cmocka_unit_test(test_kick_replaced),
		cmocka_unit_test(test_memory_limits),
		cmocka_unit_test(test_fault_returns_nothing),
		cmocka_unit_test(test_no_cell_faults),
		cmocka_unit_test(test_reconnect_before_eof),
		cmocka_unit_test(test_vhost_user_budget),
		cmocka_unit_test(test_cut_off_waits_for_heavy_token),
		cmocka_unit_test(test_vhost_user_total),
		cmocka_unit_test(test_big_stat_epoll),
		cmocka_unit_test(test_big_stat_busy_poll),
		cmocka_unit_test(test_busy_poll_fifo_leaves_cpu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
