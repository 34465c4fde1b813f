/* The cell's tasks (see app.h). Each is a state machine stepped by the executive:
 * nothing blocks, every call into gvsock is non-blocking. */
#include "app.h"

#include <stddef.h>
#include <string.h>

#include "../../common/rtmsg.h"
#include "arch.h"
#include "console.h"
#include "diag.h"
#include "port.h"

#define MAX_ECHO 3u
#define MAX_CLIENT 3u
#define CONNECT_RETRY_NS 100000000ull
#define CONNECT_TRIES 1200u

static const uint32_t sizes[] = { 1, 2, 31, 32, 33, 43, 44, 45, 100, 4051, 4052, 4053,
				  4095, 4096, 4097, 8192, 65535, 65536, 65537, 100000,
				  131072, 200000, 262143, 262144 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static const char *type_name(unsigned int type)
{
	return type == GV_SOCK_SEQPACKET ? "seqpacket" : "stream";
}

static void result_head(const char *task, unsigned int type, bool ok)
{
	con_puts("RTVIO-RESULT {");
	con_kvs("arch", arch_name, 1);
	con_kvs("task", task, 0);
	con_kvs("type", type_name(type), 0);
	con_kvs("status", ok ? "ok" : "fail", 0);
}

/* ---- connecting, shared by the clients ------------------------------------------ */

struct conn {
	struct app_ctx *c;
	unsigned int type;
	uint64_t cid;
	uint32_t port;
	int id;
	unsigned int tries;
	uint64_t retry_at;
	/* How the failed tries ended, for the report. */
	uint32_t refused, timedout, no_socket, other;
};

static void conn_count(struct conn *k, int rc)
{
	if (rc == -GV_ECONNREFUSED)
		k->refused++;
	else if (rc == -GV_ETIMEDOUT)
		k->timedout++;
	else if (rc == -GV_EMFILE)
		k->no_socket++;
	else
		k->other++;
}

/* Steps a connect; 1 once connected, 0 while pending, negative when given up. A
 * refused or timed-out connect is retried: the peer's listener may not be up yet,
 * or the peer not running. So is a full socket table (-EMFILE): it is shared by the
 * cell's tasks, and the slots of closed sockets come back by themselves once the
 * peer has answered their SHUTDOWN (or the close timeout has passed) and their
 * last control packet has left. CONNECT_TRIES bounds all of them together. */
static int conn_step(struct conn *k, uint64_t now)
{
	int rc;

	if (k->id >= 0 && !gv_sock_connecting(k->c->s, k->id)) {
		rc = gv_sock_error(k->c->s, k->id);
		if (!rc)
			return 1;
		conn_count(k, rc);
		gv_close(k->c->s, k->id);
		k->id = -1;
		k->retry_at = now + CONNECT_RETRY_NS;
	}
	if (k->id >= 0 || now < k->retry_at)
		return 0;
	if (++k->tries > CONNECT_TRIES)
		return -GV_ETIMEDOUT;
	k->id = gv_socket(k->c->s, k->type);
	if (k->id == -GV_EMFILE) {
		conn_count(k, k->id);
		k->retry_at = now + CONNECT_RETRY_NS;
		return 0;
	}
	if (k->id < 0)
		return k->id;
	rc = gv_connect(k->c->s, k->id, k->cid, k->port);
	return rc == -GV_EINPROGRESS || rc == 0 ? 0 : rc;
}

/* The tries of a connect that has not succeeded (yet), as an RTVIO-DIAG line. */
static void conn_report(const struct conn *k)
{
	con_puts("RTVIO-DIAG {");
	con_kvs("arch", arch_name, 1);
	con_kvs("connect", k->type == GV_SOCK_SEQPACKET ? "seqpacket" : "stream", 0);
	con_kv("peer_cid", k->cid, 0);
	con_kv("port", k->port, 0);
	con_kv("tries", k->tries, 0);
	con_kv("refused", k->refused, 0);
	con_kv("timedout", k->timedout, 0);
	con_kv("no_socket", k->no_socket, 0);
	con_kv("other_errors", k->other, 0);
	con_puts("}\n");
}

/* ---- echo ----------------------------------------------------------------------- */

struct echo {
	struct app_ctx *c;
	unsigned int type;
	uint32_t port;
	int lid, id;
	size_t have, sent;
	uint64_t messages, bytes;
	uint32_t stale;		/* connections reset before their first message */
	int error;
	uint8_t buf[APP_MSG_MAX + 64];
};

static struct echo echoes[MAX_ECHO];
static unsigned int n_echo;

static bool echo_finish(struct echo *e)
{
	bool ok = !e->error;

	if (e->id >= 0)
		gv_close(e->c->s, e->id);
	gv_close(e->c->s, e->lid);
	if (!ok)
		e->c->failed++;
	result_head("echo", e->type, ok);
	con_kv("port", e->port, 0);
	con_kv("messages", e->messages, 0);
	con_kv("bytes", e->bytes, 0);
	con_kv("stale", e->stale, 0);
	con_puts(",\"error\":");
	con_sdec(e->error);
	con_puts("}\n");
	return true;
}

static bool echo_step(void *arg, uint64_t now)
{
	struct echo *e = arg;
	unsigned int fl = 0;
	int n;

	(void)now;
	if (e->id < 0) {
		e->id = gv_accept(e->c->s, e->lid, NULL, NULL);
		return e->id < 0 && e->id != -GV_EAGAIN ? (e->error = e->id, echo_finish(e)) : false;
	}
	if (e->sent < e->have) {
		n = gv_send(e->c->s, e->id, e->buf + e->sent, e->have - e->sent, false);
		if (n == -GV_EAGAIN)
			return false;
		if (n < 0)
			return e->error = n, echo_finish(e);
		e->sent += (size_t)n;
		return false;
	}
	n = gv_recv(e->c->s, e->id, e->buf, sizeof(e->buf), 0, &fl);
	if (n == -GV_EAGAIN)
		return false;
	if (n < 0 && !e->messages) {
		/* Reset before its first message: a connect attempt its peer had
		 * already given up on (it timed out while this cell, or the broker's
		 * queue toward it, was behind). The peer tries again: serve that one. */
		gv_close(e->c->s, e->id);
		e->id = -1;
		e->stale++;
		return false;
	}
	if (n <= 0) /* 0: the peer closed; its last message has been returned */
		return e->error = n, echo_finish(e);
	if (fl & GV_MSG_TRUNC)
		e->error = -GV_EMSGSIZE;
	e->have = (size_t)n;
	e->sent = 0;
	e->messages++;
	e->bytes += (uint64_t)n;
	return false;
}

int app_echo(struct app_ctx *c, struct bm_task *t, unsigned int type, uint32_t port)
{
	struct echo *e;
	int rc;

	if (n_echo >= MAX_ECHO)
		return -GV_EINVAL;
	e = &echoes[n_echo++];
	e->c = c;
	e->type = type;
	e->port = port;
	e->id = -1;
	e->lid = gv_socket(c->s, type);
	if (e->lid < 0)
		return e->lid;
	if ((rc = gv_listen(c->s, e->lid, port, 1)) < 0)
		return rc;
	*t = (struct bm_task){ .name = "echo", .step = echo_step, .arg = e };
	con_puts("RTVIO-LISTEN port=");
	con_dec(port);
	con_puts("\n");
	return 0;
}

/* ---- sizes ---------------------------------------------------------------------- */

#define RTT_SAMPLES 4096u

struct client {
	struct conn k;
	bool connected;
	unsigned int i;		/* message index (sizes) or sequence number (rtt) */
	size_t sent, got;
	uint64_t sent_at;
	uint64_t ok, bad, lost, late, late_releases, rtt_min, rtt_max, rtt_sum;
	int error;
	/* rtt only */
	uint64_t period_ns;
	uint32_t count, size;
	uint64_t received, drain_until;
	const struct bm_task *sender; /* its late releases count as late messages */
	/* The first RTT_SAMPLES round trips, for the percentiles of the report. */
	uint64_t rtt[RTT_SAMPLES];
	uint8_t tx[APP_MSG_MAX];
	uint8_t rx[APP_MSG_MAX + 64];
};

static struct client clients[MAX_CLIENT];
static unsigned int n_client;

static void rtt_account(struct client *m, uint64_t rtt)
{
	if (!m->rtt_min || rtt < m->rtt_min)
		m->rtt_min = rtt;
	if (rtt > m->rtt_max)
		m->rtt_max = rtt;
	/* Called after m->ok counted this round trip. */
	if (m->ok - 1 < RTT_SAMPLES)
		m->rtt[m->ok - 1] = rtt;
	m->rtt_sum += rtt;
}

/* Percentile q (per mille) of the samples kept; sorts them (once, at the report:
 * an insertion sort of at most RTT_SAMPLES is cheap there, never on the period). */
static uint64_t rtt_pct(struct client *m, unsigned int permille, bool *sorted)
{
	uint64_t n = m->ok < RTT_SAMPLES ? m->ok : RTT_SAMPLES;

	if (!n)
		return 0;
	for (uint64_t i = 1; !*sorted && i < n; i++) {
		uint64_t v = m->rtt[i], j = i;

		for (; j > 0 && m->rtt[j - 1] > v; j--)
			m->rtt[j] = m->rtt[j - 1];
		m->rtt[j] = v;
	}
	*sorted = true;
	return m->rtt[(n - 1) * permille / 1000];
}

static bool client_report(struct client *m, const char *task)
{
	bool ok = !m->error && !m->bad && !m->lost && m->ok, sorted = false;

	if (!ok) /* what the stack holds, before this task's own socket goes */
		bm_diag(m->k.c->s, task, m->k.port);
	if (m->k.id >= 0)
		gv_close(m->k.c->s, m->k.id);
	if (!ok)
		m->k.c->failed++;
	result_head(task, m->k.type, ok);
	con_kv("peer_cid", m->k.cid, 0);
	con_kv("port", m->k.port, 0);
	con_kv("ok", m->ok, 0);
	con_kv("bad", m->bad, 0);
	con_kv("lost", m->lost, 0);
	con_kv("late", m->late, 0);
	con_kv("late_releases", m->late_releases, 0);
	con_kv("rtt_min_ns", m->rtt_min, 0);
	con_kv("rtt_avg_ns", m->ok ? m->rtt_sum / m->ok : 0, 0);
	con_kv("rtt_max_ns", m->rtt_max, 0);
	con_kv("rtt_p50_ns", rtt_pct(m, 500, &sorted), 0);
	con_kv("rtt_p99_ns", rtt_pct(m, 990, &sorted), 0);
	con_kv("rtt_p999_ns", rtt_pct(m, 999, &sorted), 0);
	con_kv("tries", m->k.tries, 0);
	con_kv("refused", m->k.refused, 0);
	con_kv("timedout", m->k.timedout, 0);
	con_kv("no_socket", m->k.no_socket, 0);
	con_kv("other_errors", m->k.other, 0);
	con_puts(",\"error\":");
	con_sdec(m->error);
	con_puts("}\n");
	return true;
}

/* One send attempt of tx[sent, len): false on a hard error (m->error set). */
static bool client_send(struct client *m, size_t len)
{
	int n = gv_send(m->k.c->s, m->k.id, m->tx + m->sent, len - m->sent, false);

	if (n >= 0)
		m->sent += (size_t)n;
	else if (n != -GV_EAGAIN)
		m->error = n;
	return n >= 0 || n == -GV_EAGAIN;
}

/* Takes what has come back of the current message; true once all `len` bytes are
 * in rx (STREAM: the echo may arrive in pieces; SEQPACKET: one message). */
static bool client_recv(struct client *m, size_t len)
{
	unsigned int fl = 0;
	size_t room = m->k.type == GV_SOCK_STREAM ? len - m->got : sizeof(m->rx);
	int n = gv_recv(m->k.c->s, m->k.id, m->rx + m->got, room, 0, &fl);

	if (n == -GV_EAGAIN)
		return false;
	if (n <= 0) {
		m->error = n ? n : -GV_ECONNRESET;
		return false;
	}
	m->got += (size_t)n;
	if (fl & GV_MSG_TRUNC)
		m->error = -GV_EMSGSIZE;
	return m->k.type == GV_SOCK_SEQPACKET || m->got >= len;
}

static void sizes_check(struct client *m, size_t len, uint64_t now)
{
	uint64_t seq = m->i, stamp = 0;

	if (m->got == len && !memcmp(m->tx, m->rx, len) &&
	    rtmsg_check(m->rx, len, &seq, &stamp) == RTMSG_OK && seq == m->i) {
		m->ok++;
		rtt_account(m, now - m->sent_at);
	} else {
		m->bad++;
	}
}

static bool sizes_step(void *arg, uint64_t now)
{
	struct client *m = arg;
	size_t len;

	if (!m->connected) {
		int rc = conn_step(&m->k, now);

		if (rc < 0)
			return m->error = rc, client_report(m, "sizes");
		m->connected = rc == 1;
		m->sent = m->got = 0;
		if (m->connected)
			rtmsg_fill(m->tx, sizes[0], 0, now);
		m->sent_at = now;
		return false;
	}
	len = sizes[m->i];
	if (m->sent < len && !client_send(m, len))
		return client_report(m, "sizes");
	if (!client_recv(m, len))
		return m->error ? client_report(m, "sizes") : false;
	sizes_check(m, len, now);
	if (++m->i == NSIZES)
		return client_report(m, "sizes");
	m->sent = m->got = 0;
	rtmsg_fill(m->tx, sizes[m->i], m->i, now);
	m->sent_at = bm_now_ns();
	return false;
}

static struct client *client_new(struct app_ctx *c, unsigned int type, uint64_t cid,
				 uint32_t port)
{
	struct client *m;

	if (n_client >= MAX_CLIENT)
		return NULL;
	m = &clients[n_client++];
	m->k = (struct conn){ .c = c, .type = type, .cid = cid, .port = port, .id = -1 };
	return m;
}

int app_sizes(struct app_ctx *c, struct bm_task *t, unsigned int type, uint64_t cid,
	      uint32_t port)
{
	struct client *m = client_new(c, type, cid, port);

	if (!m)
		return -GV_EINVAL;
	*t = (struct bm_task){ .name = "sizes", .step = sizes_step, .arg = m };
	return 0;
}

/* ---- rtt: the periodic task ------------------------------------------------------ */

static void rtt_take(struct client *m, uint64_t now)
{
	for (;;) {
		uint64_t seq = m->received, stamp = 0;
		unsigned int fl = 0;
		int n = gv_recv(m->k.c->s, m->k.id, m->rx, sizeof(m->rx), 0, &fl);

		if (n == -GV_EAGAIN)
			return;
		if (n <= 0) {
			m->error = n ? n : -GV_ECONNRESET;
			return;
		}
		m->received++;
		if ((size_t)n != m->size || rtmsg_check(m->rx, (size_t)n, &seq, &stamp) != RTMSG_OK) {
			m->bad++;
			continue;
		}
		m->ok++;
		rtt_account(m, now - stamp);
		if (now - stamp > m->period_ns)
			m->late++;
	}
}

/* The periodic half: one message per release, stamped with this cell's clock
 * (only this cell reads the stamp back). A message the stack cannot take at its
 * release is not sent later: it counts as lost. */
static bool rtt_send_step(void *arg, uint64_t now)
{
	struct client *m = arg;
	int n;

	if (!m->connected)
		return false;
	if (m->error)
		return true;
	rtmsg_fill(m->tx, m->size, m->i, now);
	n = gv_send(m->k.c->s, m->k.id, m->tx, m->size, false);
	if (n != (int)m->size && n != -GV_EAGAIN)
		m->error = n;
	if (++m->i < m->count && !m->error)
		return false;
	m->drain_until = now + 100 * m->period_ns + 1000000000ull;
	return true;
}

/* The background half: connects, then takes the echoes as soon as they come. */
static bool rtt_recv_step(void *arg, uint64_t now)
{
	struct client *m = arg;

	if (!m->connected) {
		int rc = conn_step(&m->k, now);

		if (rc < 0)
			return m->error = rc, client_report(m, "rtt");
		m->connected = rc == 1;
		return false;
	}
	rtt_take(m, now);
	if (m->error)
		return client_report(m, "rtt");
	if (m->received < m->count && (m->i < m->count || now < m->drain_until))
		return false;
	m->lost = m->count - m->received;
	m->late_releases = m->sender->late;
	return client_report(m, "rtt");
}

int app_rtt(struct app_ctx *c, struct bm_task t[2], uint64_t cid, uint32_t port,
	    uint64_t period_ns, uint32_t count, uint32_t size)
{
	struct client *m = client_new(c, GV_SOCK_SEQPACKET, cid, port);

	if (!m || size < RTMSG_HDR || size > APP_MSG_MAX || !period_ns || !count)
		return -GV_EINVAL;
	m->period_ns = period_ns;
	m->count = count;
	m->size = size;
	t[0] = (struct bm_task){ .name = "rtt-send", .period_ns = period_ns,
				 .step = rtt_send_step, .arg = m };
	t[1] = (struct bm_task){ .name = "rtt", .step = rtt_recv_step, .arg = m };
	m->sender = &t[0];
	return 0;
}

void app_report_unfinished(struct app_ctx *c, struct bm_task *tasks, unsigned int n)
{
	bool any = false;

	for (unsigned int i = 0; i < n; i++) {
		if (tasks[i].done)
			continue;
		/* A client still connecting: how its tries ended so far. */
		for (unsigned int j = 0; j < n_client; j++)
			if (tasks[i].arg == &clients[j] && tasks[i].step != rtt_send_step &&
			    !clients[j].connected)
				conn_report(&clients[j].k);
		any = true;
		c->failed++;
		con_puts("RTVIO-RESULT {");
		con_kvs("arch", arch_name, 1);
		con_kvs("task", tasks[i].name, 0);
		con_kvs("status", "unfinished", 0);
		con_puts("}\n");
	}
	if (any)
		bm_diag(c->s, "unfinished", 0);
}
