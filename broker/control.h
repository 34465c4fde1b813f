/* The broker's control socket, <socket_dir>/control.sock: monitoring and tests.
 *
 * Protocol: a client connects, writes one JSON object on one line, reads one JSON
 * object on one line, and the broker closes the connection.
 *   {"cmd": "stat"}     -> {"ok": true, "stat": {...}}   (see docs/ and cmd_stat.c)
 *   {"cmd": "shutdown"} -> {"ok": true}                   (then the broker exits 0)
 *   {"cmd": "config"}   -> {"ok": true, "config": "INI text"} (the configuration in force)
 *   {"cmd": "change", ...} -> admission (admit.h); the reply may come later, once the
 *                          analysis has run off the loop
 *   anything else       -> {"ok": false, "error": "..."}
 *
 * The server side runs in the broker's loop thread between data-path steps; it
 * allocates (jansson) because it is monitoring work, not data-path work. A client
 * gets CTL_LINE_MAX bytes for its request and one read per readiness event, so a
 * slow or hostile client never blocks the loop. A reply can be far larger than a
 * socket buffer (about 300 bytes per flow): it is kept in the client's slot and
 * written as the socket takes it, at most CTL_WRITE_STEP bytes per readiness
 * event; the daemon drops a client that has not taken it all within
 * CTL_WRITE_TIMEOUT_NS. */
#ifndef RTVIO_BROKER_CONTROL_H
#define RTVIO_BROKER_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CTL_MAX_CLIENTS 8
/* Room for a configuration fragment (`rtvio cell|flow add`) in one request. */
#define CTL_LINE_MAX 65536
#define CTL_SOCKET_NAME "control.sock"
/* Largest reply kept for a client: a bigger one is replaced by an error reply. */
#define CTL_REPLY_MAX (64u << 20)
/* Bytes written per readiness event: bounds the loop's time away from the data path. */
#define CTL_WRITE_STEP (64u << 10)
/* A client that does not read its whole reply within this is dropped. */
#define CTL_WRITE_TIMEOUT_NS 5000000000ull

struct ctl_ops {
	/* Returns a new reference to the "stat" object, or NULL on failure. */
	json_t *(*stat)(void *ctx);
	/* The broker should stop once this reply is sent. */
	void (*shutdown)(void *ctx);
	/* The configuration in force as INI (malloc()ed), NULL on failure. */
	char *(*config)(void *ctx);
	/* A change request: the reply object, or NULL with *deferred set when the
	 * reply comes later (the client is parked: CTL_DEFERRED). */
	json_t *(*change)(void *ctx, json_t *req, bool *deferred);
};

/* One connected client, in the broker's storage. Zero it (fd aside) before use. */
struct ctl_client {
	int fd;            /* -1: slot free */
	uint64_t since_ns; /* when it connected: the oldest is evicted when all are busy */
	size_t len;
	char buf[CTL_LINE_MAX];
	/* The reply being written (malloc()ed; NULL: none), out_off bytes of it sent. */
	char *out;
	size_t out_len, out_off;
	uint64_t out_deadline_ns; /* the daemon's: when it gives up on the client */
};

/* ctl_client_service / ctl_client_flush: the reply is not all written yet; wait
 * until the socket is writable and call ctl_client_flush. */
#define CTL_WRITING 2
/* ctl_client_service: the request was taken and its reply comes later; give it to
 * ctl_client_reply then. */
#define CTL_DEFERRED 3

/* What ctl_handle_line returns for a deferred reply (never freed). */
extern char ctl_deferred_reply[];

/* The reply object r (reference taken) for a client parked by CTL_DEFERRED: as
 * ctl_client_flush returns. */
int ctl_client_reply(struct ctl_client *c, json_t *r);

/* Handles one request line (without its newline); returns the reply line with its
 * newline, malloc()ed, or NULL when out of memory. */
char *ctl_handle_line(const char *line, size_t len, const struct ctl_ops *ops, void *ctx);

/* Reads what the client sent. Returns 0 when the request is not complete yet, 1 when
 * it was answered (or refused) and the client must be closed, CTL_WRITING when the
 * answer is partly written, -errno when the client went away or misbehaved (close
 * it too). Not to be called again once it returned CTL_WRITING. */
int ctl_client_service(struct ctl_client *c, const struct ctl_ops *ops, void *ctx);

/* Writes more of the pending reply (at most CTL_WRITE_STEP bytes). Returns 1 when
 * all of it is written (close the client), CTL_WRITING when more is left, -errno
 * when the client went away. */
int ctl_client_flush(struct ctl_client *c);

/* Closes the client's descriptor (if any) and frees its pending reply; the slot is
 * free (fd = -1) afterwards. */
void ctl_client_close(struct ctl_client *c);

/* Listens on a Unix stream socket at path. A stale socket file (nobody accepting on
 * it) is removed first; a live one (another broker) or a non-socket file in the way
 * is an error. The returned descriptor is non-blocking and close-on-exec. On failure
 * writes one line into err and returns -errno. */
int ctl_listen_unix(const char *path, int backlog, char *err, size_t errlen);

/* Client side (rtvio stat, tests): connects to path, sends the request line, reads
 * the reply line into a malloc()ed, NUL-terminated *reply (newline removed). Each
 * step waits at most timeout_ms. Returns 0 or -errno (-ENOENT / -ECONNREFUSED: no
 * broker there). */
int ctl_request(const char *path, const char *request, char **reply, int timeout_ms);

#endif
