/* The gateway's shared state and the calls between its files: cmd_gateway.c (the
 * steps of a run), gw_dds.c (participant, topics, QoS), gw_out.c (local cell -> DDS),
 * gw_in.c (DDS -> local cell) and gw_report.c (JSON and table).
 *
 * One thread per flow. An outgoing flow's thread accepts the local sender's
 * connection on the gateway cell and publishes every message as one sample; an
 * incoming flow's thread takes samples, checks their numbering and checksum, and
 * delivers the intact ones, in order, to the destination cell. Nothing damaged,
 * missing or repeated is ever written to a cell: it is counted instead. */
#ifndef RTVIO_GATEWAY_GATEWAY_H
#define RTVIO_GATEWAY_GATEWAY_H

#include <dds/dds.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "port_posix.h"
#include "workload.h"

/* KEEP_LAST depth: messages a slow reader may be behind before the oldest is
 * replaced (and then counted missing at the far end, never passed on). */
#define GW_HISTORY 16

/* Counters of one flow; written by its thread only, read after join. */
struct gw_counts {
	uint64_t messages;	/* out: from the cell; in: delivered to the cell */
	uint64_t bytes;
	uint64_t samples;	/* out: written; in: taken (valid ones) */
	uint64_t missing;	/* in: sample numbers skipped (lost on the way) */
	uint64_t duplicates;	/* in: numbers seen before: dropped */
	uint64_t corrupt;	/* in: checksum failed; out: stream lost its framing */
	uint64_t rejected;	/* in: intact samples that fit neither the numbering
				 * followed (older incarnation, number too far ahead)
				 * nor the flow (too long, empty, not one whole rtmsg
				 * record); out: messages longer than the flow's cap */
	uint64_t unmatched;	/* out: written while no remote reader was matched */
	uint64_t undelivered;	/* in: intact samples the destination could not take */
	uint64_t incarnations;	/* in: publishers followed (1 + restarts of the far
				 * gateway + resyncs to another incarnation) */
	uint64_t connections;	/* connections with the local cell */
	uint64_t write_errors;	/* out: dds_write failed */
	uint64_t deadline_missed; /* DDS DEADLINE status: offered (out) / requested (in) */
};

struct gw;

struct gw_flow {
	struct gw *gw;
	const struct rtvio_flow_cfg *f;
	bool out;		/* this broker's cell sends */
	pthread_t th;
	bool started;
	dds_entity_t topic, ent; /* ent: the writer (out) or the reader (in) */
	int listen_id;		/* out: the gateway cell's listener on the flow's port */
	int sock;		/* the connection with the local cell, -1 when none */
	uint8_t *buf;		/* one message */
	size_t cap;		/* its largest size */
	uint8_t *chunk;		/* out, stream: what one recv returns */
	struct wl_stream st;	/* out, stream: rtmsg framing */
	uint64_t incarnation;	/* out: ours; in: the publisher's we follow */
	uint64_t seq;		/* out: next to write; in: next expected */
	bool following;		/* in: incarnation/seq are set */
	uint64_t run_inc, run_seq; /* in: the last sample that did not fit the numbering */
	unsigned run;		/* in: such samples in order since the last accepted one,
				 * ending with it (gw_in.c, GW_RESYNC) */
	struct gw_counts n;
	const char *status;
};

struct gw {
	struct rtvio_config cfg;
	const struct rtvio_remote_cfg *rm;
	const char *conf;
	struct rtvio_cell *c;
	dds_entity_t dom, pp;
	struct gw_flow *fl;
	int nfl;
	atomic_bool stop;
};

/* gw_dds.c */
int gw_dds_open(struct gw *g, char *err, size_t errlen);
int gw_dds_flow(struct gw *g, struct gw_flow *f, char *err, size_t errlen);
void gw_dds_deadlines(struct gw_flow *f);
void gw_dds_close(struct gw *g);
uint32_t gw_checksum(const uint8_t *p, size_t n);

/* gw_out.c, gw_in.c: the flow threads */
int gw_out_listen(struct gw_flow *f);
void *gw_out_main(void *arg);
void *gw_in_main(void *arg);

/* gw_report.c */
json_t *gw_report(const struct gw *g);
void gw_print_table(json_t *doc);

#endif
