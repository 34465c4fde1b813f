/* The control socket: request handling (stat, shutdown, malformed and oversized
 * requests), the per-client reader over a socketpair, stale-socket handling of the
 * listener, and the client helper against a served and a silent socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.h"

struct fake {
	int stats, shutdowns;
	bool fail_stat;
	unsigned int big; /* > 0: a stat reply with this many 100-byte strings */
};

static json_t *fake_stat(void *ctx)
{
	struct fake *f = ctx;

	f->stats++;
	if (f->fail_stat)
		return NULL;
	if (f->big) {
		json_t *a = json_array();
		char item[101];

		memset(item, 'x', 100);
		item[100] = '\0';
		for (unsigned int i = 0; i < f->big; i++) {
			item[i % 100] = (char)('a' + i % 26);
			json_array_append_new(a, json_string(item));
		}
		return json_pack("{s:o}", "flows", a);
	}
	return json_pack("{s:s, s:[{s:s}]}", "policy", "edf", "cells", "name", "sensor");
}

static void fake_shutdown(void *ctx)
{
	((struct fake *)ctx)->shutdowns++;
}

static const struct ctl_ops ops = { .stat = fake_stat, .shutdown = fake_shutdown };

/* Parses a reply line and checks its shape; returns it (caller decrefs). */
static json_t *parse_reply(const char *line, bool ok)
{
	size_t n = strlen(line);
	json_error_t e;
	json_t *r;

	assert_true(n > 0);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1)); /* exactly one line */
	r = json_loads(line, 0, &e);
	assert_non_null(r);
	assert_true(json_is_object(r));
	assert_int_equal(json_is_true(json_object_get(r, "ok")), ok);
	if (!ok)
		assert_true(json_is_string(json_object_get(r, "error")));
	return r;
}

static void test_handle_line(void **state)
{
	struct fake f = { 0 };
	const char *req;
	char *out;
	json_t *r;

	(void)state;
	req = "{\"cmd\":\"stat\"}";
	out = ctl_handle_line(req, strlen(req), &ops, &f);
	r = parse_reply(out, true);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "stat"), "policy")),
			    "edf");
	assert_int_equal(f.stats, 1);
	json_decref(r);
	free(out);

	f.fail_stat = true;
	out = ctl_handle_line(req, strlen(req), &ops, &f);
	json_decref(parse_reply(out, false));
	free(out);

	req = "{\"cmd\":\"shutdown\"}";
	out = ctl_handle_line(req, strlen(req), &ops, &f);
	json_decref(parse_reply(out, true));
	assert_int_equal(f.shutdowns, 1);
	free(out);

	const char *bad[] = { "", "not json", "[1,2]", "{\"cmd\":3}", "{}",
			      "{\"cmd\":\"reboot\"}", "{\"cmd\":\"stat\"", "\"stat\"" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = ctl_handle_line(bad[i], strlen(bad[i]), &ops, &f);
		json_decref(parse_reply(out, false));
		free(out);
	}
	assert_int_equal(f.shutdowns, 1);
	assert_int_equal(f.stats, 2);
}

static char *read_reply(int fd)
{
	static char buf[8192];
	size_t len = 0;
	ssize_t n;

	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return buf;
}

static void test_client_service(void **state)
{
	struct fake f = { 0 };
	struct ctl_client c = { .fd = -1 };
	int sv[2];

	(void)state;
	/* A request that arrives in pieces. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c.fd = sv[1];
	c.len = 0;
	assert_int_equal(ctl_client_service(&c, &ops, &f), 0); /* nothing yet */
	assert_int_equal(write(sv[0], "{\"cmd\":", 7), 7);
	assert_int_equal(ctl_client_service(&c, &ops, &f), 0);
	assert_int_equal(f.stats, 0);
	assert_int_equal(write(sv[0], "\"stat\"}\n", 8), 8);
	assert_int_equal(ctl_client_service(&c, &ops, &f), 1);
	assert_int_equal(f.stats, 1);
	close(sv[1]);
	json_decref(parse_reply(read_reply(sv[0]), true));
	close(sv[0]);

	/* A client that hangs up before finishing its line. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c.fd = sv[1];
	c.len = 0;
	assert_int_equal(write(sv[0], "{\"cmd\"", 6), 6);
	close(sv[0]);
	assert_int_equal(ctl_client_service(&c, &ops, &f), 0);
	assert_int_equal(ctl_client_service(&c, &ops, &f), -ECONNRESET);
	close(sv[1]);

	/* A line longer than CTL_LINE_MAX: refused with an error reply. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c.fd = sv[1];
	c.len = 0;
	{
		char big[CTL_LINE_MAX + 100];
		int rc = 0;

		memset(big, ' ', sizeof(big));
		assert_int_equal(write(sv[0], big, sizeof(big)), (ssize_t)sizeof(big));
		for (int i = 0; i < 4 && rc == 0; i++)
			rc = ctl_client_service(&c, &ops, &f);
		assert_int_equal(rc, 1);
	}
	close(sv[1]);
	json_decref(parse_reply(read_reply(sv[0]), false));
	close(sv[0]);
	assert_int_equal(f.stats, 1);
}

/* A reply many times a socket buffer: kept and written as the peer reads, at most
 * CTL_WRITE_STEP bytes per call, whole and ending in its newline; a peer that goes
 * away mid-reply is an error, not a hang. */
static void test_large_reply(void **state)
{
	struct fake f = { .big = 8000 };
	struct ctl_client c = { .fd = -1 };
	static char got[2u << 20];
	size_t len = 0, prev_off = 0;
	int sv[2], rc, sndbuf = 16384, calls = 0;
	json_t *r;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	c.fd = sv[1];
	assert_int_equal(write(sv[0], "{\"cmd\":\"stat\"}\n", 15), 15);
	rc = ctl_client_service(&c, &ops, &f);
	assert_int_equal(rc, CTL_WRITING);
	assert_true(c.out_len > 800000);
	assert_true(c.out_off < c.out_len);
	/* Nobody reads: nothing more fits, and that is not an error. */
	prev_off = c.out_off;
	assert_int_equal(ctl_client_flush(&c), CTL_WRITING);
	assert_int_equal(c.out_off, prev_off);
	while (rc == CTL_WRITING) {
		ssize_t n = recv(sv[0], got + len, sizeof(got) - len, MSG_DONTWAIT);

		if (n > 0)
			len += (size_t)n;
		prev_off = c.out_off;
		rc = ctl_client_flush(&c);
		assert_true(c.out_off - prev_off <= CTL_WRITE_STEP || rc == 1);
		calls++;
		assert_true(calls < 1000000);
	}
	assert_int_equal(rc, 1);
	assert_null(c.out);
	close(sv[1]);
	{
		ssize_t n;

		while ((n = read(sv[0], got + len, sizeof(got) - 1 - len)) > 0)
			len += (size_t)n;
	}
	close(sv[0]);
	got[len] = '\0';
	r = parse_reply(got, true);
	assert_int_equal(json_array_size(json_object_get(json_object_get(r, "stat"), "flows")),
			 8000);
	json_decref(r);

	/* The peer hangs up with most of the reply unread. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	c.fd = sv[1];
	c.len = 0;
	assert_int_equal(write(sv[0], "{\"cmd\":\"stat\"}\n", 15), 15);
	assert_int_equal(ctl_client_service(&c, &ops, &f), CTL_WRITING);
	close(sv[0]);
	assert_int_equal(ctl_client_flush(&c), -EPIPE);
	ctl_client_close(&c);
	assert_int_equal(c.fd, -1);
	assert_null(c.out);
}

static void tmp_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "/tmp/rtvio-test-control-%d-%s", (int)getpid(), name);
}

static void test_listen_stale_and_live(void **state)
{
	char path[108], err[256];
	int fd, fd2;

	(void)state;
	tmp_path(path, sizeof(path), "sock");
	unlink(path);
	fd = ctl_listen_unix(path, 4, err, sizeof(err));
	assert_true(fd >= 0);
	/* Live: another listener may not take it over. */
	fd2 = ctl_listen_unix(path, 4, err, sizeof(err));
	assert_int_equal(fd2, -EADDRINUSE);
	assert_non_null(strstr(err, "in use"));
	/* Stale: the socket file remains after its listener is gone. */
	close(fd);
	fd = ctl_listen_unix(path, 4, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	/* A regular file in the way is left alone. */
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ctl_listen_unix(path, 4, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "not a socket"));
	unlink(path);
	/* A path that does not fit sockaddr_un. */
	{
		char longp[200];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[0] = '/';
		longp[sizeof(longp) - 1] = '\0';
		assert_int_equal(ctl_listen_unix(longp, 4, err, sizeof(err)), -ENAMETOOLONG);
	}
}

struct server {
	int lfd;
	struct fake f;
};

static void *serve_one(void *arg)
{
	struct server *s = arg;
	struct ctl_client c = { .fd = -1 };
	int fd, rc;

	do
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && (errno == EAGAIN || errno == EINTR));
	c.fd = fd;
	c.len = 0;
	do
		rc = ctl_client_service(&c, &ops, &s->f);
	while (rc == 0);
	while (rc == CTL_WRITING)
		rc = ctl_client_flush(&c);
	ctl_client_close(&c);
	return NULL;
}

static void test_request_roundtrip(void **state)
{
	struct server s = { 0 };
	char path[108], err[256], *reply = NULL;
	pthread_t t;
	json_t *r;

	(void)state;
	tmp_path(path, sizeof(path), "rt");
	unlink(path);
	s.lfd = ctl_listen_unix(path, 4, err, sizeof(err));
	assert_true(s.lfd >= 0);
	assert_int_equal(pthread_create(&t, NULL, serve_one, &s), 0);
	assert_int_equal(ctl_request(path, "{\"cmd\":\"stat\"}\n", &reply, 5000), 0);
	pthread_join(t, NULL);
	assert_non_null(reply);
	r = json_loads(reply, 0, NULL);
	assert_non_null(r);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	free(reply);
	assert_int_equal(s.f.stats, 1);
	/* A listener that never answers: the client gives up after its timeout. */
	assert_int_equal(ctl_request(path, "{\"cmd\":\"stat\"}\n", &reply, 100), -ETIMEDOUT);
	assert_null(reply);
	close(s.lfd);
	unlink(path);
	/* Nobody there at all. */
	assert_int_equal(ctl_request(path, "{\"cmd\":\"stat\"}\n", &reply, 100), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handle_line),
		cmocka_unit_test(test_client_service),
		cmocka_unit_test(test_large_reply),
		cmocka_unit_test(test_listen_stale_and_live),
		cmocka_unit_test(test_request_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
