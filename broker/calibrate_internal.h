/* `rtvio calibrate`'s measurement, shared between its files: the synthetic cells and
 * the data plane they run against (calibrate_cell.c), and one file per measurement
 * (calibrate_steps.c, calibrate_pass.c, calibrate_wake.c, calibrate_latency.c), driven
 * by cal_measure (calibrate_run.c). Private to broker/calibrate*.c. */
#ifndef RTVIO_BROKER_CALIBRATE_INTERNAL_H
#define RTVIO_BROKER_CALIBRATE_INTERNAL_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gapprobe.h"
#include "calibrate.h"
#include "dataplane.h"
#include "virtq.h"
#include "vsock.h"

#define C_QSIZE 128u			/* what QEMU and cell/ use */
#define C_BUF (65536u + VSOCK_HDR_SIZE)	/* a whole 64 KiB packet with its header */
#define C_GPA 0x100000000ull
#define C_CID_A 3u
#define C_CID_B 4u
#define C_PORT_A 2000u
#define C_PORT_B 1000u
#define C_GAP_NS 10000u			/* a gap longer than this is a stall */
#define C_MAX_GAPS 65536u
#define C_PERIOD_NS 250000u		/* latency runs: one packet per period */
#define C_BREATHE_US 200u		/* pause between timed batches */
#define C_ROUNDS 8u			/* copy-step kinds take turns this many times */

/* One synthetic process cell. The region is shared memory in the real sense: the
 * driver side (this file, one thread at a time) writes descriptors, buffers and the
 * avail ring; the data plane (device side, through dev[]) writes the used ring and
 * RX buffers. Everything else here is the harness's own. */
struct ccell {
	uint8_t *region;
	size_t size;
	struct vq_mem_region mem;
	struct vq_ring ring[2];
	struct vq_driver drv[2];
	struct vq_drv_slot slot[2][C_QSIZE];
	struct vq_device dev[2];
	uint64_t inflight[2][VQ_INFLIGHT_WORDS(C_QSIZE)];
	size_t rx_off, tx_off;
	unsigned int rx_next, tx_next;
	int kick[2];	/* cell -> broker */
	int call[2];	/* broker -> cell */
};

/* A list of gaps one spinning thread saw in its own execution, in time order. */
struct gaplog {
	struct gap *g;
	size_t n, cap;
};

struct crun {
	struct dp *dp;
	struct ccell *c;	/* [2]: a sends, b receives */
	/* step runs: every clock read of dp_run, and where calls started */
	uint64_t *ts;
	uint8_t *ts_start;
	size_t nts, ts_cap;
	/* notify runs (broker thread only) */
	uint64_t *t_notify;
	size_t n_samples;
	uint64_t cur_seq;
	bool rec_notify;
	bool write_call;
	const char *copy;	/* [broker] copy */
};


/* Rough time of an ingest pass and of a latency sample, in copy steps (each ~30 us
 * with the pauses between batches), so that the bar moves with the clock. */
#define W_PASS 15.0
#define W_LAT 10.0

struct prog {
	const struct cal_opts *o;
	double done, total;
};

struct stepset {
	struct cal_step *s;
	size_t n, cap;
};

/* ---- calibrate_cell.c: the synthetic cells and the data plane over them ---- */

uint64_t cal_now_ns(void);
int cal_cell_open(struct ccell *c);
void cal_cell_close(struct ccell *c);
/* Both rings laid out afresh in the region, driver and device sides initialised. */
int cal_cell_reset(struct ccell *c);
void cal_kick(struct ccell *c, unsigned int q);
/* Posts n RX buffers (each takes a whole packet); true when the broker wants a kick. */
int cal_post_rx(struct ccell *c, unsigned int n, bool *want_kick);
int cal_add_tx(struct ccell *c, uint16_t op, uint32_t sport, uint32_t dcid, uint32_t dport,
	       uint32_t scid, uint32_t len, uint64_t seq);
/* One used RX buffer: 1 with its header and the sequence number its payload
 * carries, 0 none, or a negative error (also when the two copies of the sequence
 * number differ: a piece went missing or was misplaced). */
int cal_take_rx(struct ccell *c, struct vsock_hdr *h, uint64_t *seq);
/* Takes every used TX buffer back; returns how many. */
unsigned int cal_take_tx(struct ccell *c);
/* dp_run until it has nothing to do at once. */
void cal_run_idle(struct dp *dp);
/* A data plane over the two cells (chunk bytes, poll mode, copy routine), with the
 * connection a:2000 -> b:1000 set up through it. */
int cal_env_open(struct crun *r, struct rtvio_config *cfg, uint64_t chunk, bool poll,
		 char *err, size_t errlen);
void cal_env_close(struct crun *r, struct rtvio_config *cfg);
/* Pins the calling thread to cpu, at SCHED_FIFO when fifo (and permitted). */
int cal_pin(int cpu, bool fifo);
void cal_pin_restore(const cpu_set_t *old);
void cal_progress(struct prog *p, double add, const char *phase);

/* ---- the measurements ---- */

/* calibrate_steps.c: packets of `pkt` bytes through a data plane with chunk `chunk`
 * until `want` steps were timed. */
int cal_steps_run(struct crun *r, struct gapprobe *gp, uint64_t *ts_buf, uint32_t chunk,
		  uint32_t pkt, size_t want, struct stepset *out, char *err, size_t errlen);
/* calibrate_pass.c: the longest ingest pass, and the daemon's gap between runs. */
int cal_ingest_pass_run(struct crun *r, struct gapprobe *gp, size_t want,
			struct cal_results *res, char *err, size_t errlen);
/* calibrate_change.c: a run-time change's cost per slot visit (ns per slot, one
 * sample per cell or flow added or removed). */
int cal_vhu_run(struct gapprobe *gp, size_t want, struct cal_results *res, char *err,
		size_t errlen);
int cal_device_run(struct crun *r, struct gapprobe *gp, size_t want, struct cal_dist *out,
		   char *err, size_t errlen);
int cal_change_run(struct gapprobe *gp, size_t want, struct cal_dist *out, char *err,
		   size_t errlen);
int cal_batch_gap_run(struct gapprobe *gp, size_t want, struct cal_dist *out, char *err,
		      size_t errlen);
/* calibrate_wake.c: what a notification that wakes a waiting cell costs the broker. */
int cal_wake_run(const struct cal_opts *o, size_t want, struct cal_dist *out,
		 struct prog *pr, char *err, size_t errlen);
/* calibrate_latency.c: ingest (notify false) or notify latency, poll = yes or no. */
int cal_latency_run(struct crun *r, const struct cal_opts *o, bool notify, bool poll,
		    size_t n, struct cal_dist *out, struct cal_results *res,
		    struct prog *pr, char *err, size_t errlen);

#endif
