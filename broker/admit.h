/* Admission control: cells and flows added to or removed from a running broker
 * through its control socket (`rtvio cell|flow add|remove`), admitted only when the
 * analysis finds every flow, old and new, schedulable (docs/broker.md, "Run-time
 * changes").
 *
 * An add goes in two halves. The worker thread builds the configuration as it would
 * be after the change (the fragment loaded together with the live configuration by
 * the ordinary loader) and runs an_config_verdict on it; it reads the live
 * configuration and writes only its own result. The loop thread, woken through
 * admit_fd(), then checks the slots and applies the change between two data-plane
 * runs (admit_finish). A remove needs no analysis (taking a flow away adds no
 * interference to any other) and is applied at once, in the loop thread. One change
 * is in flight at a time; another is answered "busy" and the client retries.
 *
 * Nothing here runs inside dp_run: the data plane never waits for the analysis. The
 * apply step does run between two runs, in the loop: it is charged by the analysis
 * as blocking (docs/analysis.md, "Run-time changes"), once per window, which holds
 * because two changes are applied at least ADMIT_SPACING_NS apart (a request sooner
 * than that is answered "busy" too). */
#ifndef RTVIO_BROKER_ADMIT_H
#define RTVIO_BROKER_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* 10 ms: longer than the analysis's windows of any schedulable flow set of a
 * sub-millisecond-deadline control loop, and short for a client (which retries). */
#define ADMIT_SPACING_NS 10000000ull

struct admit;
struct dp;
struct rtvio_config;

/* What the daemon does for a cell slot: open its socket (listen, watch) once the
 * slot holds the cell, or close it (front end cut off, memory unmapped, socket
 * closed and unlinked) before the slot is freed. */
struct admit_ops {
	int (*cell_open)(void *ctx, unsigned int slot, char *err, size_t errlen);
	void (*cell_close)(void *ctx, unsigned int slot);
};

int admit_create(struct rtvio_config *live, struct dp *dp, const struct admit_ops *ops,
		 void *ctx, struct admit **out);
void admit_destroy(struct admit *a);

/* Readable (eventfd) when the worker has a result for admit_finish. */
int admit_fd(const struct admit *a);
uint64_t admit_generation(const struct admit *a);
bool admit_busy(const struct admit *a);

/* Handles a "change" request {"cmd":"change","op":"add","fragment":TEXT,
 * "name":FILE} or {"cmd":"change","op":"remove","kind":"cell"|"flow","name":NAME}.
 * Returns the reply object (a remove, a refusal before analysis, "busy"), or NULL
 * with *deferred set when the worker took it: the reply comes from admit_finish.
 * ticket is the caller's to recognise the reply's client by. */
json_t *admit_request(struct admit *a, json_t *req, uint64_t ticket, bool *deferred);

/* The configuration after adding fragment frag (NAME in the loader's messages) to
 * live, as the worker judges it: the fragment loaded first, then the live
 * configuration, with the broker's own [platform] and capacity and, on several
 * cores, every cell's core as broker_core (the one it has, or will have in the
 * vacant slot it takes). -EINVAL with err for bad input (the loader's message, or a
 * [platform], [remote] or [host] section, which a fragment cannot add), -ENOMEM.
 * Reads live only; free *cand with rtvio_config_free. */
int admit_candidate(const struct rtvio_config *live, const char *frag, const char *name,
		    struct rtvio_config *cand, char *err, size_t errlen);

/* Called when admit_fd() is readable: applies an admitted change and returns the
 * reply for the client of *ticket (NULL when there is no result yet). */
json_t *admit_finish(struct admit *a, uint64_t *ticket);

#endif
