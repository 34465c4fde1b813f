/* The broker's control socket: see control.h. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char *dump_line(json_t *r)
{
	char *s = json_dumps(r, JSON_COMPACT);
	size_t n;
	char *t;

	if (!s)
		return NULL;
	n = strlen(s);
	t = realloc(s, n + 2);
	if (!t) {
		free(s);
		return NULL;
	}
	t[n] = '\n';
	t[n + 1] = '\0';
	return t;
}

char ctl_deferred_reply[] = "";

static char *error_reply(const char *msg)
{
	json_t *r = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
	char *s = r ? dump_line(r) : NULL;

	json_decref(r);
	return s;
}

char *ctl_handle_line(const char *line, size_t len, const struct ctl_ops *ops, void *ctx)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr);
	const char *cmd;
	char *out = NULL;

	if (!req || !json_is_object(req)) {
		json_decref(req);
		return error_reply("request is not a JSON object");
	}
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd) {
		out = error_reply("request has no \"cmd\" string");
	} else if (!strcmp(cmd, "stat")) {
		json_t *st = ops->stat ? ops->stat(ctx) : NULL;
		json_t *r;

		if (!st) {
			out = error_reply("statistics unavailable");
		} else {
			r = json_pack("{s:b, s:o}", "ok", 1, "stat", st);
			out = r ? dump_line(r) : NULL;
			json_decref(r);
		}
	} else if (!strcmp(cmd, "shutdown")) {
		json_t *r = json_pack("{s:b}", "ok", 1);

		out = r ? dump_line(r) : NULL;
		json_decref(r);
		if (ops->shutdown)
			ops->shutdown(ctx);
	} else if (!strcmp(cmd, "config") && ops->config) {
		char *text = ops->config(ctx);
		json_t *r = text ? json_pack("{s:b, s:s}", "ok", 1, "config", text) : NULL;

		out = r ? dump_line(r) : error_reply("configuration unavailable");
		json_decref(r);
		free(text);
	} else if (!strcmp(cmd, "change") && ops->change) {
		bool deferred = false;
		json_t *r = ops->change(ctx, req, &deferred);

		out = deferred ? ctl_deferred_reply : r ? dump_line(r) : error_reply("out of memory");
		json_decref(r);
	} else {
		out = error_reply("unknown cmd (expected \"stat\", \"config\", \"change\" or "
				  "\"shutdown\")");
	}
	json_decref(req);
	return out;
}

int ctl_client_flush(struct ctl_client *c)
{
	size_t step = 0;

	while (c->out_off < c->out_len && step < CTL_WRITE_STEP) {
		size_t n = c->out_len - c->out_off;
		ssize_t k;

		if (n > CTL_WRITE_STEP - step)
			n = CTL_WRITE_STEP - step;
		k = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return CTL_WRITING;
			return -errno;
		}
		c->out_off += (size_t)k;
		step += (size_t)k;
	}
	if (c->out_off < c->out_len)
		return CTL_WRITING;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return 1;
}

void ctl_client_close(struct ctl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	c->len = 0;
}

int ctl_client_service(struct ctl_client *c, const struct ctl_ops *ops, void *ctx)
{
	char *nl, *reply;
	ssize_t n;

	if (c->len >= sizeof(c->buf)) {
		reply = error_reply("request line too long");
		goto answer;
	}
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->len += (size_t)n;
	nl = memchr(c->buf, '\n', c->len);
	if (!nl) {
		if (c->len < sizeof(c->buf))
			return 0;
		reply = error_reply("request line too long");
	} else {
		reply = ctl_handle_line(c->buf, (size_t)(nl - c->buf), ops, ctx);
	}
answer:
	if (!reply)
		return -ENOMEM;
	if (reply == ctl_deferred_reply)
		return CTL_DEFERRED;
	c->out_len = strlen(reply);
	if (c->out_len > CTL_REPLY_MAX) {
		free(reply);
		reply = error_reply("reply too large for the control socket");
		if (!reply)
			return -ENOMEM;
		c->out_len = strlen(reply);
	}
	free(c->out);
	c->out = reply;
	c->out_off = 0;
	return ctl_client_flush(c);
}

int ctl_client_reply(struct ctl_client *c, json_t *r)
{
	char *s = r ? dump_line(r) : error_reply("out of memory");

	json_decref(r);
	if (!s)
		return -ENOMEM;
	free(c->out);
	c->out = s;
	c->out_len = strlen(s);
	c->out_off = 0;
	return ctl_client_flush(c);
}

static int fill_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

int ctl_listen_unix(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un a;
	struct stat st;
	int fd, rc;

	if (fill_addr(&a, path) < 0) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket", path);
			return -EEXIST;
		}
		/* Someone accepting on it means another broker owns it. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0) {
			rc = -errno;
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return rc;
		}
		rc = connect(probe, (struct sockaddr *)&a, sizeof(a));
		close(probe);
		if (rc == 0) {
			snprintf(err, errlen, "%s: in use (is another broker running?)", path);
			return -EADDRINUSE;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			rc = -errno;
			snprintf(err, errlen, "%s: cannot remove stale socket: %s", path,
				 strerror(errno));
			return rc;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return rc;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

static int wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int rc;

	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	return rc == 0 ? -ETIMEDOUT : 0;
}

int ctl_request(const char *path, const char *request, char **reply, int timeout_ms)
{
	struct sockaddr_un a;
	size_t cap = 4096, len = 0, rl = strlen(request);
	char *buf = NULL;
	int fd, rc;

	*reply = NULL;
	rc = fill_addr(&a, path);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = -errno;
		goto out;
	}
	for (size_t off = 0; off < rl;) {
		ssize_t n;

		rc = wait_fd(fd, POLLOUT, timeout_ms);
		if (rc < 0)
			goto out;
		n = send(fd, request + off, rl - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		if (n > 0)
			off += (size_t)n;
	}
	buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *t = realloc(buf, cap * 2);

			if (!t) {
				rc = -ENOMEM;
				goto out;
			}
			buf = t;
			cap *= 2;
		}
		rc = wait_fd(fd, POLLIN, timeout_ms);
		if (rc < 0)
			goto out;
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = '\0';
	if (!len) {
		rc = -ECONNRESET;
		goto out;
	}
	{
		char *nl = strchr(buf, '\n');

		if (nl)
			*nl = '\0';
	}
	*reply = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}
