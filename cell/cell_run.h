/* `rtvio cell`'s shared state: the run (config, cell, flows) and one worker per
 * flow end, and the calls between its files: cmd_cell.c (the steps of a run),
 * cell_args.c (options and the region check), cell_flows.c (the flow threads and
 * their set-up) and cell_report.c (results as JSON or a table). */
#ifndef RTVIO_CELL_CELL_RUN_H
#define RTVIO_CELL_CELL_RUN_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "port_posix.h"
#include "workload.h"

#define CONNECT_RETRY_NS (10ull * 1000000000u) /* the peer cell may start later */
#define CONNECT_RETRY_GAP_NS (50u * 1000000u)
#define STREAM_RECV_CHUNK (64u * 1024u)
/* Each flow thread's stack: its buffers live on the heap (see main). */
#define CELL_THREAD_STACK (512u * 1024u)

enum role { ROLE_SEND, ROLE_RECV };

struct run;

struct worker {
	struct run *run;
	const struct rtvio_flow_cfg *flow;
	enum role role;
	pthread_t th;
	bool started;
	int listen_id;		/* receivers: created before the cell reports ready; on
				 * the first receiver of each port only (its `lead`) */
	struct worker *lead;	/* receivers: the one whose listener this flow's port is */
	bool accepting;		/* lead: one of its receivers is in rtvio_accept */
	int accept_err;		/* lead: accepting ended (stop, broker gone) */
	int handed;		/* a connection accepted for us by another receiver */
	bool served;		/* has had its connection */
	int sock;
	size_t size;		/* bytes per message */
	bool rt;		/* a real-time flow's thread: SCHED_FIFO when configured */
	uint8_t *buf;		/* message buffer (sender) / receive buffer */
	size_t buf_len;
	uint8_t *reasm;		/* stream receivers: reassembly buffer */
	struct wl_stream stream;
	uint64_t feed_now;	/* arrival time of the bytes being fed */
	atomic_bool done;
	/* Results, read by the main thread after join. */
	const char *status;	/* "ok", "stopped", "reset", "refused", ... */
	int err;
	uint64_t sent, sent_bytes;
	uint64_t late, overruns;
	uint64_t connections;
	struct wl_rx_stats rx;
};

struct run {
	struct rtvio_config cfg;
	int me;
	const struct rtvio_cell_cfg *cell;
	struct rtvio_cell *c;
	struct worker *w;
	int nw;
	atomic_bool stop;
	atomic_bool warned_rt;
	pthread_mutex_t acc_lock; /* the receivers' accept hand-over */
	pthread_cond_t acc_cond;
	char sock_path[RTVIO_PATH_MAX + 8];
};

/* cell_args.c */
int cell_parse_args(int argc, char **argv, double *duration, bool *json, int *ready_fd,
		    double *wait, const char **conf, const char **name);
int cell_check_region(const char *conf, const struct rtvio_cell_cfg *cell);
/* Every port this cell receives on carries one socket type: 0, or -EINVAL (said). */
int cell_check_listeners(const char *conf, const struct rtvio_config *cfg, int me);

/* cell_flows.c */
void cell_pin(struct run *r);
int cell_setup_workers(struct run *r);
int cell_start_listeners(struct run *r);
void *cell_thread_main(void *arg);

/* cell_report.c */
json_t *cell_report(const struct run *r);
void cell_print_table(json_t *doc);

#endif
