/* `rtvio bench`: what the scenario runner's files share (bench-private): the run's
 * state, the processes it starts (peer pairs, brokers, RouDi, `rtvio stat` and
 * `rtvio analyze`), the host-stall probes and the scenarios themselves. Nothing here
 * is real-time code: it starts, waits for and reads the processes that are. */
#ifndef RTVIO_BENCH_RUNNER_H
#define RTVIO_BENCH_RUNNER_H

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc.h"
#include "config.h"
#include "gapprobe.h"
#include "stop.h"

#define DEFAULT_OUT "bench/results/latest"
#define CELL_CPU 0
#define BROKER_CPU 1
#define RT_PRIO 50
#define TX_CID 3
#define RX_CID 4
/* A sleeping broker runs SCHED_FIFO; a polling one cannot (RT throttling would stop
 * it 50 ms in every second, see configs/demo.conf) and runs at ordinary priority. */
#define BROKER_SLEEP_PRIO 80

struct bench {
	bool quick;
	const char *out;
	char tmp[64];		/* scratch directory: configs, sockets, FIFOs */
	json_t *res;
	int step, nsteps;	/* progress */
	bool tty;
	/* The sleeping broker's platform, measured once per run (bench_bound_platform). */
	struct rtvio_platform_cfg plat;
	const char *plat_src;
	bool plat_calibrated;	/* plat is this run's calibration (not --platform) */
	/* --broker-cores: data-plane cores of the bound scenario's brokers (1 = cpu 1). */
	int broker_cores;
	/* --modes: the hostile scenario's misbehaviours to run, comma-separated (NULL:
	 * every one); the unloaded run always runs. */
	const char *hostile_modes;
	/* A peer the report promises (iceoryx) could not run: the run fails. */
	char peer_failed[200];
};

/* rtvio_stop_requested (stop.h), set by SIGINT/SIGTERM: every loop stops at its
 * next step. */

/* ---- Progress and notes (runner.c) -------------------------------------------------- */

void bench_progress(struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void bench_note(struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- Processes (runner.c) ----------------------------------------------------------- */

bool bench_exists(const char *path);
/* The cpu cell number c runs on: the online cpus other than the broker's, in turn
 * (cpu 0 alone on a 2-cpu machine). */
int bench_cell_cpu(int c);
/* CPU time (user + system) of a process so far, in seconds; -1 if unreadable. */
double bench_proc_cpu_s(pid_t pid);
/* A struct proc that proc_stop() and proc_free() may be called on before (or
 * without) proc_start(): out_fd -1, not descriptor 0. */
void bench_proc_blank(struct proc *p);

/* A receiver and a sender process of one measured run. */
struct pair {
	struct proc r, s;
	bool started;
};

int bench_pair_start(struct pair *p, const char *const rargv[], const char *const sargv[]);
json_t *bench_pair_finish(struct pair *p, int timeout_ms);
json_t *bench_run_pair(const char *const rargv[], const char *const sargv[], int timeout_ms);

/* The command line of one `rtvio bench peer` process. */
struct peer_cmd {
	const char *argv[40];
	char num[12][24];
	size_t nnum;		/* num entries in use */
};

void bench_peer_cmd(struct peer_cmd *c, bool send, const char *transport, const char *path,
		    uint64_t size, uint64_t count, uint64_t period, uint64_t dur, uint64_t port,
		    uint64_t cid, int prio, bool tput);
/* Appends `key value` (a number) to a command built by bench_peer_cmd. */
void bench_peer_cmd_add(struct peer_cmd *c, const char *key, uint64_t value);

struct broker {
	struct proc p;
	char conf[128];
	char sockdir[128];
	double cpu0;		/* CPU seconds at the start of a measured interval */
};

int bench_broker_launch(struct broker *br);
int bench_broker_start(struct bench *b, struct broker *br, const char *name, const char *text);
void bench_broker_stop(struct broker *br);
int bench_roudi_start(struct bench *b, struct proc *p, char *why, size_t whylen);

/* The running broker's `rtvio stat --json` document, or NULL. */
json_t *bench_stat_doc(const char *sockdir);
/* Flow `name` of a stat document (borrowed), or NULL. */
json_t *bench_stat_flow(json_t *doc, const char *name);
/* configs/demo.conf from the working directory, else from the source tree. */
const char *bench_demo_conf(void);
/* `rtvio analyze CONF --json`, or NULL. */
json_t *bench_analyze(const char *conf);

/* ---- Host stalls: gap probes and /proc/stat (stalls.c) ------------------------------ */

/* The probes sleep between readings (a spinning probe would take the core from what
 * is measured): SCHED_FIFO 99, a reading every PROBE_INTERVAL_NS, and an interval
 * longer than PROBE_THRESHOLD_NS is a stall of the VM (or of that core). Stalls
 * shorter than about threshold - interval go unseen. */
#define PROBE_INTERVAL_NS 100000ull
#define PROBE_THRESHOLD_NS 300000ull
#define PROBE_CAP 16384
#define NPROBES 2

struct probe_clock {
	bool raised;		/* probe thread only */
};

struct probes {
	struct gapprobe gp[NPROBES];
	struct gap *st[NPROBES];
	struct probe_clock pc[NPROBES];
	bool on[NPROBES];
};

/* Busy and steal ticks per cpu from /proc/stat (steal: time the host ran something
 * else while this vCPU wanted to run, when the hypervisor reports it). */
struct cpu_ticks {
	unsigned long long busy[NPROBES], total[NPROBES], steal[NPROBES];
};

void bench_probes_start(struct probes *p);
void bench_probes_stop(struct probes *p);
void bench_probes_free(struct probes *p);
double bench_probes_window(struct probes *p, uint64_t t0, uint64_t t1, json_t *out);
double bench_stalled_in(struct probes *p, uint64_t t0, uint64_t t1);
void bench_cpu_ticks_read(struct cpu_ticks *t);
void bench_cpu_ticks_json(const struct cpu_ticks *a, const struct cpu_ticks *b, json_t *out,
			  double *busy0);

/* ---- Cross-core distance: cpu 0 to cpu 1 and back (xcore.c) -------------------------- */

/* While active, a thread on each cpu (SCHED_FIFO 99) bounces a cache line 32 times
 * every XCORE_INTERVAL_NS, up to XCORE_CAP samples: about 2-15 µs of each cpu per
 * sample (a late partner costs up to 100 µs, and the sample is given up). */
#define XCORE_INTERVAL_NS 50000000ull
#define XCORE_CAP 65536

struct xcore {
	pthread_t leader, partner;
	_Atomic uint32_t line;		/* odd: the leader's turn went out; even: answered */
	_Atomic bool stop, active;
	uint64_t *at;			/* when each sample was taken (CLOCK_MONOTONIC ns) */
	uint32_t *rtt;			/* its mean round trip, ns; 0: given up */
	_Atomic uint32_t n;		/* samples taken (the leader writes it) */
	bool on;
};

/* Starts the two threads, sampling off (set x->active around what is measured).
 * 0, or -1 when they could not start (the scenario then reports no distance). */
int bench_xcore_start(struct xcore *x);
void bench_xcore_stop(struct xcore *x);
void bench_xcore_free(struct xcore *x);
/* Adds "xcore_rtt_ns": {samples, min, p50, max} of the samples taken in [t0, t1) to
 * out; nothing when there are none. */
void bench_xcore_window(const struct xcore *x, uint64_t t0, uint64_t t1, json_t *out);

/* ---- Other programs' real-time threads (foreign_rt.c) ------------------------------- */

/* The probes cannot see a SCHED_FIFO/RR thread of another program at the broker's or
 * the cells' priority: it is followed from /proc instead, its cpu time sampled every
 * FRT_INTERVAL_NS. */
#define FRT_INTERVAL_NS 5000000ull
#define FRT_MAX_SAMPLES 8192
#define FRT_MAX_THREADS 64

struct frt_sample {
	uint64_t t;		/* rtvio_now_ns() */
	uint64_t ran_ns;	/* the tracked threads' cpu time since the sample before */
};

struct frt_thread {
	pid_t tid;
	int fd;			/* its schedstat, -1 once it is gone */
	int prio;
	uint64_t last_ns, ran_ns;
	char comm[20];
};

struct foreign_rt {
	pthread_t thread;
	atomic_bool stop;
	bool on;
	pid_t self;
	int min_prio;
	struct frt_thread th[FRT_MAX_THREADS];
	unsigned int n_threads;
	struct frt_sample *s;
	size_t n;
};

/* Follows real-time threads at rt priority min_prio or above that are neither this
 * process nor its descendants. */
void bench_foreign_start(struct foreign_rt *f, int min_prio);
void bench_foreign_stop(struct foreign_rt *f);
/* The cpu time (µs) they had inside [t0, t1), after bench_foreign_stop. */
double bench_foreign_in(const struct foreign_rt *f, uint64_t t0, uint64_t t1);
/* What they ran in all, per thread, into out. */
void bench_foreign_json(const struct foreign_rt *f, json_t *out);
void bench_foreign_free(struct foreign_rt *f);

/* ---- Scenario building blocks ------------------------------------------------------- */

enum iso_kind { ISO_RTVIO, ISO_RELAY, ISO_IOX };

/* sc_isolation.c: the four-cell control + bulk config and one control-latency run. */
void bench_iso_config(const char *sockdir, const char *policy, const char *budget, char *buf,
		      size_t len);
json_t *bench_iso_run(struct bench *b, enum iso_kind kind, const char *dir, bool bulk,
		      pid_t hub);
void bench_iso_add(json_t *runs, json_t *r, const char *label, bool bulk);

/* bound_run.c: one run of a config with every cell, judged against its bounds. */
json_t *bench_bound_run(const char *label, const char *conf, double dur, json_t *violations);
/* A process started lead_ms before the cells of a run and stopped (SIGTERM) after
 * them: it stands for `cells` (NULL-terminated names), which get no `rtvio cell`,
 * and whose flows get no row. `said` receives the last line it printed. */
struct bench_extra {
	const char *const *argv;	/* NULL: nothing is started, the cells stay idle */
	const char *const *cells;
	unsigned int lead_ms;
	char said[400];
};
json_t *bench_bound_run_with(const char *label, const char *conf, double dur,
			     json_t *violations, struct bench_extra *extra);
/* sc_bound.c: the platform the analysis judges by; returns a description. */
const char *bench_bound_platform(struct bench *b, bool poll, struct rtvio_platform_cfg *plat);
/* configs/demo.conf's [platform]: true, or false and a built-in copy of it when the
 * file is not found. */
bool bench_demo_platform(struct rtvio_platform_cfg *plat);

/* ---- The scenarios: 0 when at least one run ran, else -EIO -------------------------- */

/* Progress steps of the size scenario (sc_size.c). */
int bench_size_steps(const struct bench *b);
int bench_scenario_size(struct bench *b);
void bench_scenario_overhead(struct bench *b);
int bench_scenario_isolation(struct bench *b);
int bench_scenario_bound(struct bench *b);
int bench_scenario_scale(struct bench *b);
int bench_scenario_interference(struct bench *b);
int bench_scenario_isa(struct bench *b);
int bench_scenario_hostile(struct bench *b);
/* sc_hostile.c: NULL when every name in the comma-separated list is a mode of the
 * hostile scenario, else the first name that is not (into bad, bad_len bytes). */
const char *bench_hostile_modes_check(const char *list, char *bad, size_t bad_len);
int bench_scenario_locks(struct bench *b);
int bench_scenario_remote(struct bench *b);
int bench_scenario_cores(struct bench *b);
/* The [broker] line placing `ncores` data-plane cores: `cpu = BROKER_CPU` for one,
 * `cpus = BROKER_CPU,...` (then the other cpus in order) for more (sc_cores.c). */
void bench_broker_cpus(FILE *f, int ncores);
int bench_scenario_provision(struct bench *b);

#endif
