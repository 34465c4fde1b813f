/* `rtvio bench [SCENARIO...] [--quick] [--out DIR]`: measures rtvio next to what a user
 * would pick instead, in one run, and writes results.json, report.md and plots.
 *
 * Every measured run is one sender and one receiver process (`rtvio bench peer`,
 * bench/peer.c), the same loops for every transport; rtvio runs go through a real
 * broker started from a generated config. It is a tool that writes reports: nothing
 * here passes or fails on speed. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../cli/proc.h"
#include "../common/clock.h"
#include "../common/config.h"
#include "../platform/gapprobe.h"
#include "../platform/fit.h"
#include "../platform/pmqos.h"
#include "bench.h"

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
	/* The sleeping broker's platform, measured once per run (bound_platform). */
	struct rtvio_platform_cfg plat;
	const char *plat_src;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtvio bench [SCENARIO...] [--quick] [--out DIR]\n"
		"\n"
		"Measures rtvio against the alternatives a user would pick (Unix sockets,\n"
		"pipes, iceoryx, a raw shared-memory ring) in one run and writes\n"
		"DIR/results.json, DIR/report.md and DIR/plots/*.png (default DIR %s).\n"
		"\n"
		"Scenarios (default: all available, in this order):\n"
		"  size      one-way latency p50/p99/max and throughput, 64 B .. 1 MiB:\n"
		"            rtvio (broker polling and sleeping), unix stream and seqpacket,\n"
		"            pipe, iceoryx, shared-memory ring\n"
		"  overhead  cost per message and per byte (fitted on the size runs) and the\n"
		"            broker's CPU use; runs size when it was not asked for\n"
		"  isolation control-flow latency CDF with and without a bulk flow under\n"
		"            fp, edf and fifo, through a Unix-socket relay and iceoryx\n"
		"  bound     observed worst case against `rtvio analyze`'s bound per flow,\n"
		"            demo.conf and flow sets at 10..90 %% utilization, host stalls\n"
		"            seen by probe threads told apart from rtvio's own misses\n"
		"  scale     broker CPU per message and control latency with 2..64 cells and\n"
		"            1..10 flows per cell\n"
		"  interference control latency and bulk throughput with `rtvio hog` on\n"
		"            the cells' core, copy-engine regulation off and on\n"
		"\n"
		"  --quick    fewer sizes and shorter runs (about three minutes; the\n"
		"             standard set takes under fifteen)\n"
		"  --out DIR  where results go\n"
		"  --report-only  regenerate report.md and plots from DIR/results.json\n"
		"\n"
		"Sender and receiver are pinned to cpu %d, the broker to cpu %d. Numbers from\n"
		"a busy or virtual machine are noisy; report.md says what each figure means.\n"
		"Exit status: 0 the report was written, 1 a scenario could not run at all,\n"
		"2 bad usage.\n",
		DEFAULT_OUT, CELL_CPU, BROKER_CPU);
}

static void progress(struct bench *b, const char *fmt, ...)
{
	va_list ap;
	char line[160];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (b->tty)
		fprintf(stderr, "\r\033[Krtvio bench: [%d/%d] %s", b->step, b->nsteps, line);
	else
		fprintf(stderr, "rtvio bench: [%d/%d] %s\n", b->step, b->nsteps, line);
}

static void note(struct bench *b, const char *fmt, ...)
{
	va_list ap;
	char line[512];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	json_array_append_new(json_object_get(b->res, "notes"), json_string(line));
}

/* ---- Machine, date, commit ---------------------------------------------------------- */

static char *first_line_of(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char buf[256] = "";

	if (!p)
		return NULL;
	if (!fgets(buf, sizeof(buf), p))
		buf[0] = 0;
	pclose(p);
	buf[strcspn(buf, "\n")] = 0;
	return buf[0] ? strdup(buf) : NULL;
}

static json_t *machine_info(void)
{
	json_t *m = json_object();
	struct utsname u;
	char *model = first_line_of("lscpu 2>/dev/null | sed -n 's/^Model name: *//p'");

	json_object_set_new(m, "cpu_model", json_string(model ? model : "unknown"));
	free(model);
	json_object_set_new(m, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	if (!uname(&u)) {
		char k[400];

		snprintf(k, sizeof(k), "%s %s %s", u.sysname, u.release, u.machine);
		json_object_set_new(m, "kernel", json_string(k));
	}
	return m;
}

static void stamp_run(struct bench *b)
{
	char date[64];
	time_t t = time(NULL);
	struct tm tm;
	char *commit = first_line_of("git rev-parse --short HEAD 2>/dev/null");
	char *dirty = first_line_of("git status --porcelain --untracked-files=no 2>/dev/null");

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
	json_object_set_new(b->res, "date", json_string(date));
	if (commit && dirty) {
		char c[80];

		snprintf(c, sizeof(c), "%s (working tree modified)", commit);
		json_object_set_new(b->res, "commit", json_string(c));
	} else {
		json_object_set_new(b->res, "commit", json_string(commit ? commit : "unknown"));
	}
	free(commit);
	free(dirty);
}

/* ---- Processes -------------------------------------------------------------------- */

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* CPU time (user + system) of a process so far, in seconds; -1 if unreadable. */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields after the command name, which may itself contain spaces. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The receiver's JSON result: the line after "ready". */
static json_t *parse_result(struct proc *p)
{
	const char *s = p->out ? strstr(p->out, "{") : NULL;

	return s ? json_loads(s, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
}

/* A struct proc that proc_stop() and proc_free() may be called on before (or
 * without) proc_start(): out_fd -1, not descriptor 0. */
static void proc_blank(struct proc *p)
{
	memset(p, 0, sizeof(*p));
	p->out_fd = -1;
}

/* A receiver and a sender process of one measured run. */
struct pair {
	struct proc r, s;
	bool started;
};

/* Starts the receiver, waits for it to listen, then starts the sender. */
static int pair_start(struct pair *p, const char *const rargv[], const char *const sargv[])
{
	memset(p, 0, sizeof(*p));
	proc_blank(&p->r);
	proc_blank(&p->s);
	if (proc_start(&p->r, rargv, 1))
		return -ECHILD;
	for (int waited = 0; waited < 15000 && !(p->r.out && strstr(p->r.out, "ready"));
	     waited += 50) {
		if (proc_wait(&p->r, 0))
			return -ECHILD;
		proc_drain(&p->r, 50);
	}
	if (!(p->r.out && strstr(p->r.out, "ready")))
		return -ETIMEDOUT;
	if (proc_start(&p->s, sargv, 1))
		return -ECHILD;
	p->started = true;
	return 0;
}

/* Waits up to timeout_ms for both ends, stops what is left, and returns the
 * receiver's result with the sender's count merged in (or NULL). */
static json_t *pair_finish(struct pair *p, int timeout_ms)
{
	json_t *res = NULL, *sres;

	for (int waited = 0; p->started && waited < timeout_ms && !interrupted; waited += 100) {
		proc_drain(&p->s, 0);
		if (proc_wait(&p->r, 100) && proc_wait(&p->s, 0))
			break;
	}
	/* The receiver ends first in latency mode; give the sender a moment. */
	if (p->started) {
		proc_wait(&p->s, 3000);
		proc_wait(&p->r, 3000);
	}
	proc_stop(&p->s, SIGTERM, 2000);
	proc_stop(&p->r, SIGTERM, 2000);
	res = parse_result(&p->r);
	sres = parse_result(&p->s);
	if (res && sres)
		json_object_set(res, "sent", json_object_get(sres, "sent"));
	json_decref(sres);
	proc_free(&p->s);
	proc_free(&p->r);
	return res;
}

static json_t *run_pair(const char *const rargv[], const char *const sargv[], int timeout_ms)
{
	struct pair p;

	pair_start(&p, rargv, sargv);
	return pair_finish(&p, timeout_ms);
}

/* ---- The broker ------------------------------------------------------------------ */

struct broker {
	struct proc p;
	char conf[128];
	char sockdir[128];
	double cpu0;		/* CPU seconds at the start of a measured interval */
};

/* Starts a broker on br->conf and waits for its control socket in br->sockdir. */
static int broker_launch(struct broker *br)
{
	const char *argv[] = { proc_self_exe(), "broker", br->conf, NULL };
	char path[256];

	proc_blank(&br->p);
	if (proc_start(&br->p, argv, 1))
		return -ECHILD;
	snprintf(path, sizeof(path), "%s/control.sock", br->sockdir);
	for (int waited = 0; waited < 10000; waited += 50) {
		if (proc_wait(&br->p, 0))
			return -ECHILD;
		if (exists(path))
			return 0;
		usleep(50000);
	}
	return -ETIMEDOUT;
}

static int broker_start(struct bench *b, struct broker *br, const char *name, const char *text)
{
	FILE *f;

	proc_blank(&br->p);
	snprintf(br->conf, sizeof(br->conf), "%s/%s.conf", b->tmp, name);
	f = fopen(br->conf, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		return -EIO;
	return broker_launch(br);
}

static void broker_stop(struct broker *br)
{
	if (br->p.pid)
		proc_stop(&br->p, SIGTERM, 5000);
	proc_free(&br->p);
}

/* ---- size ------------------------------------------------------------------------ */

enum { TR_RTVIO_POLL, TR_RTVIO_SLEEP, TR_UNIX_STREAM, TR_UNIX_SEQPACKET, TR_PIPE, TR_IOX,
       TR_SHM, TR_N };

static const char *const tr_label[TR_N] = {
	"rtvio-poll", "rtvio-sleep", "unix-stream", "unix-seqpacket", "pipe", "iceoryx",
	"shm-ring",
};
static const char *const tr_peer[TR_N] = {
	"rtvio", "rtvio", "unix-stream", "unix-seqpacket", "pipe", "iceoryx", "shm",
};

static const uint64_t sizes_std[] = { 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576 };
static const uint64_t sizes_quick[] = { 64, 4096, 65536, 1048576 };

static uint64_t period_for(uint64_t size)
{
	if (size <= 16384)
		return 1000000;
	if (size <= 65536)
		return 2000000;
	if (size <= 262144)
		return 5000000;
	return 10000000;
}

static uint64_t count_for(const struct bench *b, uint64_t size)
{
	uint64_t cap = b->quick ? 300 : 2000;
	uint64_t span = b->quick ? 500000000ull : 3000000000ull;
	uint64_t n = span / period_for(size);

	return n < cap ? n : cap;
}

static void size_config(const struct bench *b, const char *sockdir, bool poll,
			const uint64_t *sizes, size_t nsizes, char *buf, size_t len)
{
	size_t o = 0;

	(void)b;
	o += (size_t)snprintf(buf + o, len - o,
		"[broker]\npolicy = fp\nchunk = 4KiB\nsocket_dir = %s\ncpu = %d\n"
		"rt_priority = %d\npoll = %s\ndefault = deny\n\n"
		"[cell tx]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[cell rx]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n",
		sockdir, BROKER_CPU, poll ? 0 : BROKER_SLEEP_PRIO, poll ? "yes" : "no", TX_CID,
		CELL_CPU, RX_CID, CELL_CPU);
	for (size_t i = 0; i < nsizes && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o,
			"[flow lat%zu]\nfrom = tx\nto = rx:%zu\ntype = stream\nsize = %llu\n"
			"period = %lluns\n\n[workload wlat%zu]\nflow = lat%zu\npattern = off\n\n"
			"[flow tput%zu]\nfrom = tx\nto = rx:%zu\ntype = stream\nsize = %llu\n"
			"class = best-effort\n\n[workload wtput%zu]\nflow = tput%zu\npattern = off\n\n",
			i, 1000 + i, (unsigned long long)sizes[i],
			(unsigned long long)period_for(sizes[i]), i, i,
			i, 2000 + i, (unsigned long long)sizes[i], i, i);
}

/* iceoryx needs RouDi with mempools big enough for 1 MiB messages. */
static int roudi_start(struct bench *b, struct proc *p, char *why, size_t whylen)
{
	char conf[128];
	FILE *f;
	static const struct { unsigned size, count; } pools[] = {
		{ 128, 1000 }, { 1088, 500 }, { 4160, 400 }, { 16448, 300 },
		{ 65600, 300 }, { 262208, 300 }, { 1048640, 300 },
	};

	if (!bench_iox_available()) {
		snprintf(why, whylen, "rtvio was built without libiceoryx-binding-c-dev "
				      "(install it: scripts/install-deps bench)");
		return -ENOTSUP;
	}
	snprintf(conf, sizeof(conf), "%s/roudi.toml", b->tmp);
	f = fopen(conf, "w");
	if (!f)
		return -errno;
	fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n\n");
	for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++)
		fprintf(f, "[[segment.mempool]]\nsize = %u\ncount = %u\n\n", pools[i].size,
			pools[i].count);
	fclose(f);
	char cmd[256];

	/* RouDi reports on stderr even at log level error; the progress line is ours. */
	snprintf(cmd, sizeof(cmd), "exec iox-roudi -c '%s' -l error 2>/dev/null", conf);
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	proc_blank(p);
	if (proc_start(p, argv, 1)) {
		snprintf(why, whylen, "iox-roudi could not be started (package iceoryx)");
		return -ENOENT;
	}
	usleep(1500000);
	if (proc_wait(p, 0)) {
		proc_drain(p, 0);
		snprintf(why, whylen, "iox-roudi exited at start (another RouDi running? "
				      "see its output: %.120s)", p->out ? p->out : "");
		proc_free(p);
		return -ECHILD;
	}
	return 0;
}

/* The command line of one `rtvio bench peer` process. */
struct peer_cmd {
	const char *argv[40];
	char num[12][24];
};

static void peer_cmd(struct peer_cmd *c, bool send, const char *transport, const char *path,
		     uint64_t size, uint64_t count, uint64_t period, uint64_t dur, uint64_t port,
		     uint64_t cid, int prio, bool tput)
{
	static const char *const keys[] = { "--size", "--count", "--period-ns", "--duration-ns",
					    "--port", "--cid", "--cpu", "--prio" };
	uint64_t vals[] = { size, count, period, dur, port, cid, CELL_CPU, (uint64_t)prio };
	int n = 0;

	c->argv[n++] = proc_self_exe();
	c->argv[n++] = "bench";
	c->argv[n++] = "peer";
	c->argv[n++] = send ? "send" : "recv";
	c->argv[n++] = transport;
	c->argv[n++] = path;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(c->num[i], sizeof(c->num[i]), "%llu", (unsigned long long)vals[i]);
		c->argv[n++] = keys[i];
		c->argv[n++] = c->num[i];
	}
	if (tput)
		c->argv[n++] = "--throughput";
	c->argv[n] = NULL;
}

/* One latency or throughput run of one transport at one size. */
static json_t *size_run(struct bench *b, int tr, const char *endpoint, uint64_t size,
			size_t idx, bool tput)
{
	uint64_t period = period_for(size), count = count_for(b, size);
	uint64_t dur = b->quick ? 250000000ull : 1000000000ull;
	struct peer_cmd rc, sc;
	char rpath[256], spath[256];
	json_t *r;
	/* Latency: both ends SCHED_FIFO like the demo's cells. Throughput: ordinary
	 * scheduling, so that a sender that spins while waiting for its receiver
	 * (iceoryx's WAIT_FOR_CONSUMER) cannot starve it on the shared core. */
	int prio = tput ? 0 : RT_PRIO;

	if (tr == TR_RTVIO_POLL || tr == TR_RTVIO_SLEEP) {
		snprintf(rpath, sizeof(rpath), "%s/rx.sock", endpoint);
		snprintf(spath, sizeof(spath), "%s/tx.sock", endpoint);
	} else {
		snprintf(rpath, sizeof(rpath), "%s", endpoint);
		snprintf(spath, sizeof(spath), "%s", endpoint);
	}
	peer_cmd(&rc, false, tr_peer[tr], rpath, size, count, period, dur,
		 (tput ? 2000 : 1000) + idx, RX_CID, prio, tput);
	peer_cmd(&sc, true, tr_peer[tr], spath, size, count, period, dur,
		 (tput ? 2000 : 1000) + idx, RX_CID, prio, tput);
	r = run_pair(rc.argv, sc.argv, (int)((tput ? dur : count * period) / 1000000) + 20000);
	if (!r) {
		r = json_object();
		json_object_set_new(r, "status", json_string("no result"));
	}
	json_object_set_new(r, "transport", json_string(tr_label[tr]));
	json_object_set_new(r, "size", json_integer((json_int_t)size));
	if (!tput) {
		json_object_set_new(r, "period_us", json_real((double)period / 1e3));
		json_object_set_new(r, "count", json_integer((json_int_t)count));
	}
	return r;
}

static int scenario_size(struct bench *b)
{
	const uint64_t *sizes = b->quick ? sizes_quick : sizes_std;
	size_t nsizes = b->quick ? sizeof(sizes_quick) / sizeof(sizes_quick[0])
				 : sizeof(sizes_std) / sizeof(sizes_std[0]);
	json_t *sc = json_object(), *lat = json_array(), *tp = json_array();
	json_t *trs = json_array(), *un = json_object(), *bcpu = json_object();
	char text[16384], why[256], ep[160];
	struct proc roudi = { 0 };
	int ran = 0;

	json_object_set_new(b->res, "scenarios",
			    json_object_get(b->res, "scenarios") ? json_incref(
				    json_object_get(b->res, "scenarios")) : json_object());
	for (int tr = 0; tr < TR_N && !interrupted; tr++) {
		struct broker br = { 0 };
		bool rtvio = tr == TR_RTVIO_POLL || tr == TR_RTVIO_SLEEP;
		double cpu_t0 = 0, wall0 = 0;

		if (rtvio) {
			snprintf(br.sockdir, sizeof(br.sockdir), "%s/%s", b->tmp, tr_label[tr]);
			size_config(b, br.sockdir, tr == TR_RTVIO_POLL, sizes, nsizes, text,
				    sizeof(text));
			if (broker_start(b, &br, tr_label[tr], text)) {
				json_object_set_new(un, tr_label[tr],
						    json_string("the broker did not start"));
				broker_stop(&br);
				b->step += (int)nsizes * 2;
				continue;
			}
			snprintf(ep, sizeof(ep), "%s", br.sockdir);
			cpu_t0 = proc_cpu_s(br.p.pid);
			wall0 = (double)rtvio_now_ns() / 1e9;
		} else if (tr == TR_IOX) {
			if (roudi_start(b, &roudi, why, sizeof(why))) {
				json_object_set_new(un, tr_label[tr], json_string(why));
				b->step += (int)nsizes * 2;
				continue;
			}
			snprintf(ep, sizeof(ep), "iceoryx");
		} else {
			snprintf(ep, sizeof(ep), "%s/%s", b->tmp,
				 tr == TR_SHM ? "ring" : tr == TR_PIPE ? "fifo" : "sock");
		}
		json_array_append_new(trs, json_string(tr_label[tr]));
		for (size_t i = 0; i < nsizes && !interrupted; i++) {
			double c0, c1, w0, w1;
			json_t *r;

			b->step++;
			progress(b, "size: %s %llu B latency", tr_label[tr],
				 (unsigned long long)sizes[i]);
			r = size_run(b, tr, ep, sizes[i], i, false);
			json_array_append_new(lat, r);
			b->step++;
			progress(b, "size: %s %llu B throughput", tr_label[tr],
				 (unsigned long long)sizes[i]);
			c0 = rtvio ? proc_cpu_s(br.p.pid) : -1;
			w0 = (double)rtvio_now_ns() / 1e9;
			r = size_run(b, tr, ep, sizes[i], i, true);
			c1 = rtvio ? proc_cpu_s(br.p.pid) : -1;
			w1 = (double)rtvio_now_ns() / 1e9;
			if (rtvio && c0 >= 0 && c1 >= 0) {
				/* Over the whole pair of processes' lifetime, set-up included. */
				json_object_set_new(r, "broker_cpu_s", json_real(c1 - c0));
				json_object_set_new(r, "broker_cpu_pct",
						    json_real(100 * (c1 - c0) / (w1 - w0)));
			}
			json_array_append_new(tp, r);
			ran++;
		}
		if (rtvio) {
			double c = proc_cpu_s(br.p.pid), w = (double)rtvio_now_ns() / 1e9;

			if (c >= 0)
				json_object_set_new(bcpu, tr_label[tr],
						    json_real(100 * (c - cpu_t0) / (w - wall0)));
			broker_stop(&br);
		}
		if (tr == TR_IOX) {
			proc_stop(&roudi, SIGINT, 5000);
			proc_free(&roudi);
		}
	}
	json_object_set_new(sc, "transports", trs);
	json_object_set_new(sc, "unavailable", un);
	json_object_set_new(sc, "broker_cpu_pct_whole_block", bcpu);
	json_object_set_new(sc, "latency", lat);
	json_object_set_new(sc, "throughput", tp);
	json_object_set_new(sc, "conditions", json_string(
		"Sender and receiver are separate processes pinned to cpu 0 (SCHED_FIFO 50 in "
		"latency runs, ordinary scheduling in throughput runs); the broker (rtvio) is "
		"pinned to cpu 1, either busy-polling at ordinary priority (rtvio-poll, as in "
		"configs/demo.conf: a spinning SCHED_FIFO task would be throttled 50 ms every "
		"second) or sleeping on kicks at SCHED_FIFO 80 (rtvio-sleep). On a machine "
		"where other work runs on cpu 1, the ordinary-priority polling broker shares "
		"that core by time slices, and its latency shows it. Every receiver blocks while waiting (its core is shared "
		"with the sender): rtvio in its blocking recv, iceoryx in a WaitSet, the ring on "
		"a futex. rtvio carries a stream connection through a configured flow (latency: "
		"real-time, one message per period; throughput: best-effort). Messages use the "
		"rtmsg layout; latency is from the stamp taken right before the send call to the "
		"moment the receiver has the message's last byte, CLOCK_MONOTONIC on one "
		"machine. The pipe is a FIFO with a 1 MiB buffer; unix sockets get a send buffer "
		"of twice the message size so a seqpacket message fits; iceoryx writes the "
		"payload in its loaned chunk before the stamp (zero copy), the others copy it."));
	json_object_set_new(sc, "reading", json_string(
		"Compare rows of the same size taken in this run; absolute numbers move by 20 % "
		"or more between runs of a virtual machine. p50 shows the usual path (wake-ups "
		"dominate small messages: ~20 µs for a halted vCPU here), p99 and max show "
		"disturbances, including the host preempting this VM (single outliers of "
		"hundreds of µs are that, not the transport). rtvio's extra hop (cell -> broker "
		"-> cell, two notifications) is the price of isolation: neither cell maps the "
		"other's memory, and the broker polices and schedules the flow. Throughput of "
		"transports whose ends share one core measures that core's copying and "
		"switching as much as the transport; rtvio's copy runs on the broker's core."));
	json_object_set(json_object_get(b->res, "scenarios"), "size", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}

/* ---- overhead: fitted on the size runs -------------------------------------------- */

static void scenario_overhead(struct bench *b)
{
	json_t *size = json_object_get(json_object_get(b->res, "scenarios"), "size");
	json_t *lat = json_object_get(size, "latency"), *tp = json_object_get(size, "throughput");
	json_t *trs = json_object_get(size, "transports"), *sc = json_object(), *rows = json_array();
	json_t *t, *r;
	size_t i, j;

	json_array_foreach(trs, j, t) {
		double x[16], y[16], cpu = 0, secs = 0;
		size_t n = 0;
		struct linfit fit;
		json_t *row = json_object();
		const char *name = json_string_value(t);

		json_array_foreach(lat, i, r) {
			json_t *p50 = json_object_get(json_object_get(r, "latency_us"), "p50");

			if (n < 16 && !strcmp(json_string_value(json_object_get(r, "transport")), name) &&
			    json_is_number(p50)) {
				x[n] = (double)json_integer_value(json_object_get(r, "size"));
				y[n++] = json_number_value(p50);
			}
		}
		json_array_foreach(tp, i, r)
			if (!strcmp(json_string_value(json_object_get(r, "transport")), name) &&
			    json_is_number(json_object_get(r, "broker_cpu_s"))) {
				cpu += json_number_value(json_object_get(r, "broker_cpu_s"));
				secs += json_number_value(json_object_get(r, "broker_cpu_s")) /
					json_number_value(json_object_get(r, "broker_cpu_pct")) * 100;
			}
		json_object_set_new(row, "transport", json_string(name));
		json_object_set_new(row, "points", json_integer((json_int_t)n));
		if (!fit_linear(x, y, n, &fit)) {
			json_object_set_new(row, "per_message_us", json_real(fit.intercept));
			json_object_set_new(row, "per_byte_ns", json_real(fit.slope * 1e3));
			json_object_set_new(row, "r2", json_real(fit.r2));
			json_object_set_new(row, "status", json_string("ok"));
		} else {
			json_object_set_new(row, "status", json_string("too few sizes measured"));
		}
		if (secs > 0)
			json_object_set_new(row, "broker_cpu_pct", json_real(100 * cpu / secs));
		json_array_append_new(rows, row);
	}
	json_object_set_new(sc, "rows", rows);
	json_object_set_new(sc, "conditions", json_string(
		"A least-squares line through the median one-way latency of the size runs: "
		"latency = per_message + per_byte x size. per_message is the fixed cost "
		"(system calls, wake-ups, the broker's hop), per_byte the marginal cost of "
		"moving a byte end to end. Broker CPU is the broker's utime+stime "
		"(/proc/PID/stat) over the throughput runs divided by their wall time, process "
		"start-up included."));
	json_object_set_new(sc, "reading", json_string(
		"shm-ring is the floor: one copy in, one copy out, a futex wake-up, nothing "
		"between. rtvio's per-message cost over the floor is its second hop and "
		"notification; its per-byte cost should stay near the floor's because the "
		"broker copies once, sender buffer to receiver buffer. A polling broker shows "
		"~100 % CPU by design; the sleeping broker's CPU is what the traffic costs. The "
		"fit is only as straight as the data: r² well below 1 means noise or a "
		"non-linear cost (buffer sizes, chunking) and the line is a summary, not a "
		"model."));
	json_object_set(json_object_get(b->res, "scenarios"), "overhead", sc);
	json_decref(sc);
}

/* ---- isolation -------------------------------------------------------------------- */

#define ISO_CTL_PORT 1000
#define ISO_BULK_PORT 3000
#define ISO_BULK_SIZE (1u << 20)
enum { SENSOR_CID = 3, CONTROLLER_CID, LOGGER_CID, SINK_CID };

static void iso_config(const char *sockdir, const char *policy, const char *budget, char *buf,
		       size_t len)
{
	snprintf(buf, len,
		"[broker]\npolicy = %s\nchunk = 4KiB\nsocket_dir = %s\ncpu = %d\n"
		"rt_priority = %d\npoll = no\ndefault = deny\nregulation_budget = %s\n"
		"regulation_period = 1ms\n\n"
		"[cell sensor]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[cell controller]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[cell logger]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[cell sink]\ncid = %d\nregion = 16MiB\ncpu = %d\n\n"
		"[flow control]\nfrom = sensor\nto = controller:%d\ntype = stream\nsize = 64\n"
		"period = 1ms\npriority = 1\n\n[workload wc]\nflow = control\npattern = off\n\n"
		"[flow bulk]\nfrom = logger\nto = sink:%d\ntype = stream\nsize = %u\n"
		"class = best-effort\n\n[workload wb]\nflow = bulk\npattern = off\n",
		policy, sockdir, BROKER_CPU, BROKER_SLEEP_PRIO, budget, SENSOR_CID, CELL_CPU,
		CONTROLLER_CID, CELL_CPU, LOGGER_CID, CELL_CPU, SINK_CID, CELL_CPU, ISO_CTL_PORT,
		ISO_BULK_PORT, ISO_BULK_SIZE);
}

/* The running broker's `rtvio stat --json` document, or NULL. */
static json_t *stat_doc(const char *sockdir)
{
	const char *argv[] = { proc_self_exe(), "stat", "--json", sockdir, NULL };
	struct proc p;
	json_t *doc;

	proc_blank(&p);
	if (proc_start(&p, argv, 1))
		return NULL;
	proc_wait(&p, 5000);
	proc_stop(&p, SIGKILL, 1000);
	doc = p.out ? json_loads(p.out, 0, NULL) : NULL;
	proc_free(&p);
	return doc;
}

/* Flow `name` of a stat document (borrowed), or NULL. */
static json_t *stat_flow(json_t *doc, const char *name)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(doc, "flows"), i, f)
		if (!strcmp(json_string_value(json_object_get(f, "name")) ?: "", name))
			return f;
	return NULL;
}

/* The broker's cumulative policing count for flow `name`, or -1. */
static long long stat_policed(const char *sockdir, const char *name)
{
	json_t *doc = stat_doc(sockdir), *f = stat_flow(doc, name);
	long long v = json_is_integer(json_object_get(f, "policed"))
			      ? json_integer_value(json_object_get(f, "policed")) : -1;

	json_decref(doc);
	return v;
}

enum iso_kind { ISO_RTVIO, ISO_RELAY, ISO_IOX };

/* One control-latency run, with or without a bulk flow beside it. The endpoints
 * are chosen by kind; dir is the broker's socket_dir or the relay's directory. */
static json_t *iso_run(struct bench *b, enum iso_kind kind, const char *dir, bool bulk,
		       pid_t hub)
{
	uint64_t count = b->quick ? 1000 : 5000, period = 1000000;
	uint64_t bulk_dur = count * period + 1500000000ull;
	char cr[256], cs[256], br[256], bs[256];
	const char *tr = kind == ISO_RTVIO ? "rtvio" : kind == ISO_RELAY ? "unix-stream" : "iceoryx";
	struct peer_cmd crc, csc, brc, bsc;
	struct pair bp;
	json_t *r, *bres = NULL;
	double c0, c1, w0, w1;
	long long pol0, pol1;

	if (kind == ISO_RTVIO) {
		snprintf(cr, sizeof(cr), "%s/controller.sock", dir);
		snprintf(cs, sizeof(cs), "%s/sensor.sock", dir);
		snprintf(br, sizeof(br), "%s/sink.sock", dir);
		snprintf(bs, sizeof(bs), "%s/logger.sock", dir);
	} else {
		snprintf(cr, sizeof(cr), "%s/ctl.out", dir);
		snprintf(cs, sizeof(cs), "%s/ctl.in", dir);
		snprintf(br, sizeof(br), "%s/bulk.out", dir);
		snprintf(bs, sizeof(bs), "%s/bulk.in", dir);
	}
	peer_cmd(&crc, false, tr, cr, 64, count, period, 0, ISO_CTL_PORT, CONTROLLER_CID,
		 RT_PRIO, false);
	peer_cmd(&csc, true, tr, cs, 64, count, period, 0, ISO_CTL_PORT, CONTROLLER_CID,
		 RT_PRIO, false);
	peer_cmd(&brc, false, tr, br, ISO_BULK_SIZE, 0, 0, bulk_dur, ISO_BULK_PORT, SINK_CID, 0,
		 true);
	peer_cmd(&bsc, true, tr, bs, ISO_BULK_SIZE, 0, 0, bulk_dur, ISO_BULK_PORT, SINK_CID, 0,
		 true);
	if (bulk) {
		pair_start(&bp, brc.argv, bsc.argv);
		/* Let the bulk flow fill the queues before the control flow starts. */
		usleep(300000);
	}
	pol0 = kind == ISO_RTVIO ? stat_policed(dir, "control") : -1;
	c0 = hub > 0 ? proc_cpu_s(hub) : -1;
	w0 = (double)rtvio_now_ns() / 1e9;
	r = run_pair(crc.argv, csc.argv, (int)(count * period / 1000000) + 20000);
	c1 = hub > 0 ? proc_cpu_s(hub) : -1;
	w1 = (double)rtvio_now_ns() / 1e9;
	pol1 = kind == ISO_RTVIO ? stat_policed(dir, "control") : -1;
	if (bulk)
		bres = pair_finish(&bp, (int)(bulk_dur / 1000000) + 10000);
	if (!r) {
		r = json_object();
		json_object_set_new(r, "status", json_string("no result"));
	}
	json_object_del(r, "bytes");
	if (pol0 >= 0 && pol1 >= pol0)
		json_object_set_new(r, "control_policed", json_integer(pol1 - pol0));
	if (c0 >= 0 && c1 >= 0)
		json_object_set_new(r, "broker_cpu_pct", json_real(100 * (c1 - c0) / (w1 - w0)));
	if (bulk) {
		json_t *g = json_object_get(bres, "gbps");

		json_object_set_new(r, "bulk_gbps", json_is_number(g) ? json_copy(g) : json_null());
		json_object_set_new(r, "bulk_status",
				    json_string(bres ? json_string_value(json_object_get(bres, "status"))
						     : "no result"));
		json_object_set_new(r, "bulk_corrupt", json_copy(json_object_get(bres, "corrupt")));
	}
	json_decref(bres);
	return r;
}

static void iso_add(json_t *runs, json_t *r, const char *label, bool bulk)
{
	json_object_set_new(r, "label", json_string(label));
	json_object_set_new(r, "bulk", json_boolean(bulk));
	json_array_append_new(runs, r);
}

static int scenario_isolation(struct bench *b)
{
	static const char *const policies[] = { "fp", "edf", "fifo" };
	json_t *sc = json_object(), *runs = json_array(), *un = json_object();
	char text[4096], label[64], why[256], dir[160];
	struct proc hub;
	int ran = 0;

	for (size_t p = 0; p < 3 && !interrupted; p++) {
		struct broker brk = { 0 };

		snprintf(brk.sockdir, sizeof(brk.sockdir), "%s/iso-%s", b->tmp, policies[p]);
		iso_config(brk.sockdir, policies[p], "0", text, sizeof(text));
		if (broker_start(b, &brk, policies[p], text)) {
			broker_stop(&brk);
			b->step += 2;
			snprintf(label, sizeof(label), "rtvio %s", policies[p]);
			json_object_set_new(un, label, json_string("the broker did not start"));
			continue;
		}
		for (int bulk = 0; bulk < 2 && !interrupted; bulk++) {
			b->step++;
			snprintf(label, sizeof(label), "rtvio %s%s", policies[p], bulk ? " + bulk" : "");
			progress(b, "isolation: %s", label);
			iso_add(runs, iso_run(b, ISO_RTVIO, brk.sockdir, bulk, brk.p.pid), label, bulk);
			ran++;
		}
		broker_stop(&brk);
	}
	/* The relay a user would write, on the broker's core at the broker's priority. */
	snprintf(dir, sizeof(dir), "%s/relay", b->tmp);
	mkdir(dir, 0700);
	{
		char cpu[8], prio[8];
		const char *argv[] = { proc_self_exe(), "bench", "relay", dir, cpu, prio, "ctl",
				       "bulk", NULL };

		snprintf(cpu, sizeof(cpu), "%d", BROKER_CPU);
		snprintf(prio, sizeof(prio), "%d", BROKER_SLEEP_PRIO);
		proc_blank(&hub);
		if (proc_start(&hub, argv, 1) == 0) {
			for (int w = 0; w < 5000 && !(hub.out && strstr(hub.out, "ready")); w += 50)
				proc_drain(&hub, 50);
			for (int bulk = 0; bulk < 2 && !interrupted; bulk++) {
				b->step++;
				snprintf(label, sizeof(label), "unix relay%s", bulk ? " + bulk" : "");
				progress(b, "isolation: %s", label);
				iso_add(runs, iso_run(b, ISO_RELAY, dir, bulk, hub.pid), label, bulk);
				ran++;
			}
			proc_stop(&hub, SIGTERM, 3000);
		} else {
			json_object_set_new(un, "unix relay", json_string("could not start"));
		}
		proc_free(&hub);
	}
	if (!interrupted && roudi_start(b, &hub, why, sizeof(why)) == 0) {
		for (int bulk = 0; bulk < 2 && !interrupted; bulk++) {
			b->step++;
			snprintf(label, sizeof(label), "iceoryx%s", bulk ? " + bulk" : "");
			progress(b, "isolation: %s", label);
			iso_add(runs, iso_run(b, ISO_IOX, "iceoryx", bulk, 0), label, bulk);
			ran++;
		}
		proc_stop(&hub, SIGINT, 5000);
		proc_free(&hub);
	} else if (!interrupted) {
		json_object_set_new(un, "iceoryx", json_string(why));
		b->step += 2;
	}
	json_object_set_new(sc, "runs", runs);
	json_object_set_new(sc, "unavailable", un);
	json_object_set_new(sc, "conditions", json_string(
		"A 64 B control message every 1 ms (SCHED_FIFO 50 sender and receiver on cpu 0), "
		"alone and next to a bulk flow of 1 MiB messages sent back to back between two "
		"other processes on cpu 0 at ordinary priority (it starts 0.3 s before the "
		"control flow and outlasts it). rtvio: four process cells (control "
		"sensor->controller, real-time, priority 1; bulk logger->sink, best-effort), a "
		"broker on cpu 1 sleeping on kicks at SCHED_FIFO 80, chunk 4 KiB, policy fp, edf "
		"or fifo. unix relay: one process on cpu 1 at SCHED_FIFO 80 that forwards every "
		"connection's bytes in one poll() loop (read up to 64 KiB, write it all on), as "
		"a user would build a broker from Unix sockets. iceoryx: publish/subscribe "
		"through shared memory with RouDi, receivers waiting in a WaitSet; no broker on "
		"the data path. Broker CPU is the broker's (or relay's) utime+stime over the "
		"control run."));
	json_object_set_new(sc, "reading", json_string(
		"The question is how much the bulk flow moves the control flow's distribution. "
		"Under fp and edf the broker copies bulk data in 4 KiB chunks and looks for "
		"control work between chunks, so a control message waits for at most one chunk "
		"plus whatever the shared cpu 0 adds (the bulk processes run there too, below the "
		"control threads). Under fifo, and in the relay, a control message queues behind "
		"bulk data already accepted. iceoryx has no hop to queue in, but gives no "
		"isolation either: every process maps the shared segment, and a bulk publisher "
		"can exhaust the mempool others loan from. The CDF's right end (p99.9, max) "
		"includes host preemptions of this VM; the `bound` scenario of a later version "
		"separates them with the gap probe."));
	json_object_set(json_object_get(b->res, "scenarios"), "isolation", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}

/* ---- host stalls: gap probes and /proc/stat ------------------------------------------ */

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

static uint64_t sleeping_clock(void *ctx)
{
	struct probe_clock *pc = ctx;

	if (!pc->raised) {
		struct sched_param sp = { .sched_priority = 99 };

		pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
		pc->raised = true;
	} else {
		struct timespec ts = { 0, (long)PROBE_INTERVAL_NS };

		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	}
	return gapprobe_now();
}

struct probes {
	struct gapprobe gp[NPROBES];
	struct gap *st[NPROBES];
	struct probe_clock pc[NPROBES];
	bool on[NPROBES];
};

static void probes_start(struct probes *p)
{
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < NPROBES; i++) {
		p->st[i] = calloc(PROBE_CAP, sizeof(struct gap));
		p->on[i] = p->st[i] && !gapprobe_start(&p->gp[i], p->st[i], PROBE_CAP,
							PROBE_THRESHOLD_NS, i, sleeping_clock,
							&p->pc[i]);
	}
}

/* Stops the threads; the recorded gaps stay readable until probes_free(). */
static void probes_stop(struct probes *p)
{
	for (int i = 0; i < NPROBES; i++)
		if (p->on[i])
			gapprobe_stop(&p->gp[i]);
}

static void probes_free(struct probes *p)
{
	for (int i = 0; i < NPROBES; i++) {
		free(p->st[i]);
		p->st[i] = NULL;
		p->on[i] = false;
	}
}

/* Per cpu: stalls seen in [t0, t1). Returns the longest stall (µs, the probe's own
 * sleep subtracted) of any cpu, -1 when no probe ran. */
static double probes_window(struct probes *p, uint64_t t0, uint64_t t1, json_t *out)
{
	double longest = -1;

	for (int i = 0; i < NPROBES; i++) {
		struct gap_overlap o;
		json_t *c = json_object();
		char k[16];
		double l;

		if (!p->on[i])
			continue;
		gapprobe_query(&p->gp[i], t0, t1, &o);
		l = o.count ? (double)(o.longest_ns - PROBE_INTERVAL_NS) / 1e3 : 0;
		json_object_set_new(c, "stalls", json_integer((json_int_t)o.count));
		json_object_set_new(c, "longest_us", json_real(l));
		json_object_set_new(c, "total_us", json_real((double)o.overlap_ns / 1e3));
		snprintf(k, sizeof(k), "cpu%d", i);
		json_object_set_new(out, k, c);
		if (l > longest)
			longest = l;
	}
	return longest;
}

/* Busy and steal ticks per cpu from /proc/stat (steal: time the host ran something
 * else while this vCPU wanted to run, when the hypervisor reports it). */
struct cpu_ticks {
	unsigned long long busy[NPROBES], total[NPROBES], steal[NPROBES];
};

static void cpu_ticks_read(struct cpu_ticks *t)
{
	FILE *f = fopen("/proc/stat", "r");
	char line[512];

	memset(t, 0, sizeof(*t));
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long v[8] = { 0 };
		int cpu;

		if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 9 || cpu < 0 || cpu >= NPROBES)
			continue;
		for (int i = 0; i < 8; i++)
			t->total[cpu] += v[i];
		t->busy[cpu] = t->total[cpu] - v[3] - v[4];
		t->steal[cpu] = v[7];
	}
	if (f)
		fclose(f);
}

static void cpu_ticks_json(const struct cpu_ticks *a, const struct cpu_ticks *b, json_t *out,
			   double *busy0)
{
	for (int i = 0; i < NPROBES; i++) {
		double tot = (double)(b->total[i] - a->total[i]);
		json_t *c = json_object_get(out, i ? "cpu1" : "cpu0");

		if (!c) {
			c = json_object();
			json_object_set_new(out, i ? "cpu1" : "cpu0", c);
		}
		if (tot <= 0)
			continue;
		json_object_set_new(c, "busy_pct", json_real(100 * (double)(b->busy[i] - a->busy[i]) / tot));
		json_object_set_new(c, "steal_pct", json_real(100 * (double)(b->steal[i] - a->steal[i]) / tot));
		if (!i && busy0)
			*busy0 = 100 * (double)(b->busy[i] - a->busy[i]) / tot;
	}
}

/* ---- bound ----------------------------------------------------------------------- */

/* configs/demo.conf from the working directory, else from the source tree. */
static const char *demo_conf(void)
{
	if (exists("configs/demo.conf"))
		return "configs/demo.conf";
#ifdef RTVIO_SOURCE_DIR
	return RTVIO_SOURCE_DIR "/configs/demo.conf";
#else
	return "configs/demo.conf";
#endif
}

/* `rtvio analyze CONF --json`, or NULL. */
static json_t *analyze(const char *conf)
{
	const char *argv[] = { proc_self_exe(), "analyze", conf, "--json", NULL };
	struct proc p;
	json_t *doc;

	proc_blank(&p);
	if (proc_start(&p, argv, 1))
		return NULL;
	proc_wait(&p, 30000);
	proc_stop(&p, SIGKILL, 1000);
	doc = p.out ? json_loads(p.out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	proc_free(&p);
	return doc;
}

static json_t *cell_flow(json_t *rep, const char *name, const char *role)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(rep, "flows"), i, f)
		if (!strcmp(json_string_value(json_object_get(f, "name")) ?: "", name) &&
		    !strcmp(json_string_value(json_object_get(f, "role")) ?: "", role))
			return f;
	return NULL;
}

/* The time host stalls took out of [t0, t1) on the cpu that lost the most, in µs: the
 * probes see a stall as one gap between readings that are PROBE_INTERVAL_NS apart, so
 * that much of each gap is the probe's own sleep, not a stall. */
static double stalled_in(struct probes *p, uint64_t t0, uint64_t t1)
{
	double most = 0;

	for (int i = 0; i < NPROBES; i++) {
		struct gap_overlap o;
		double st;

		if (!p->on[i])
			continue;
		gapprobe_query(&p->gp[i], t0, t1, &o);
		st = (double)o.overlap_ns - (double)o.count * PROBE_INTERVAL_NS;
		if (st / 1e3 > most)
			most = st / 1e3;
	}
	return most;
}

/* Attributes each of the receiver's slowest messages that exceeded the bound: to the
 * host when the probes saw it stalled for at least the excess while that message was
 * on its way, to rtvio (or to platform numbers that are too optimistic) otherwise.
 * Returns the cause of the flow's violations: "host", or "unexplained" when any
 * message is not explained so. */
static const char *attribute(struct probes *p, json_t *worst, double bound, json_t *row)
{
	long long over = 0, host = 0;
	json_t *w;
	size_t i;

	json_array_foreach(worst, i, w) {
		double lat = json_number_value(json_object_get(w, "latency_us"));
		uint64_t t0 = (uint64_t)json_integer_value(json_object_get(w, "stamp_ns"));

		if (lat <= bound || !t0)
			continue;
		over++;
		host += stalled_in(p, t0, t0 + (uint64_t)(lat * 1e3)) >= lat - bound;
	}
	json_object_set_new(row, "over_bound_listed", json_integer(over));
	json_object_set_new(row, "over_bound_host", json_integer(host));
	/* The receiver lists its slowest messages only: when every one of them is over
	 * the bound, more may be. */
	json_object_set_new(row, "over_bound_more", json_boolean(
		over && (size_t)over == json_array_size(worst)));
	return over && host == over ? "host" : "unexplained";
}

/* One run of config `conf` (already carrying the platform to judge it by): broker and
 * one `rtvio cell` per cell for dur seconds, probes watching; one row per flow. Each
 * flow is judged twice: the receiver's one-way latency against the end-to-end bound,
 * and the broker's own residence time (ingest to delivery, `rtvio stat`) against the
 * broker response time R that the bound is built on. */
static json_t *bound_run(const char *label, const char *conf, double dur, json_t *violations)
{
	struct rtvio_config cfg;
	char err[512], sdur[32];
	struct broker br = { 0 };
	struct proc *cells = NULL;
	struct probes pr;
	struct cpu_ticks ta, tb;
	json_t *run = json_object(), *flows = json_array(), *an, *st = NULL;
	json_t *stalls = json_object(), **reps = NULL;
	uint64_t t0, t1;
	double longest, busy0 = 0, cpu_b0, cpu_b1, cap;
	int grace = 20000;
	long long total_msgs = 0;

	json_object_set_new(run, "label", json_string(label));
	if (rtvio_config_load(conf, &cfg, err, sizeof(err))) {
		json_object_set_new(run, "status", json_string(err));
		return run;
	}
	an = analyze(conf);
	json_object_set(run, "utilization", json_object_get(an, "utilization") ?: json_null());
	json_object_set(run, "capacity", json_object_get(an, "capacity") ?: json_null());
	cap = json_number_value(json_object_get(an, "capacity"));
	if (cap > 0)
		json_object_set_new(run, "load", json_real(
			json_number_value(json_object_get(an, "utilization")) / cap));
	json_object_set(run, "schedulable", json_object_get(an, "schedulable") ?: json_null());
	json_object_set_new(run, "policy", json_string(rtvio_policy_name(cfg.broker.policy)));
	json_object_set_new(run, "regulation_budget", json_integer(
		(json_int_t)cfg.broker.regulation_budget));
	snprintf(br.conf, sizeof(br.conf), "%s", conf);
	snprintf(br.sockdir, sizeof(br.sockdir), "%s", cfg.broker.socket_dir);
	cells = calloc((size_t)cfg.ncells, sizeof(*cells));
	reps = calloc((size_t)cfg.ncells, sizeof(*reps));
	if (!cells || !reps || broker_launch(&br)) {
		json_object_set_new(run, "status", json_string("the broker did not start"));
		goto out;
	}
	snprintf(sdur, sizeof(sdur), "%.3f", dur);
	cpu_b0 = proc_cpu_s(br.p.pid);
	probes_start(&pr);
	cpu_ticks_read(&ta);
	t0 = rtvio_now_ns();
	for (int i = 0; i < cfg.ncells; i++) {
		const char *argv[] = { proc_self_exe(), "cell", conf, cfg.cells[i].name,
				       "--duration", sdur, "--json", NULL };

		proc_blank(&cells[i]);
		proc_start(&cells[i], argv, 1);
	}
	for (int waited = 0; waited < (int)(dur * 1000) + grace && !interrupted; waited += 100) {
		int running = 0;

		for (int i = 0; i < cfg.ncells; i++) {
			proc_drain(&cells[i], 0);
			running += !proc_wait(&cells[i], 0);
		}
		if (!running)
			break;
		usleep(100000);
	}
	/* Signal every cell first, then collect: one by one, 64 slow cells would take
	 * minutes. */
	for (int i = 0; i < cfg.ncells; i++)
		if (!cells[i].reaped && cells[i].pid > 0)
			kill(cells[i].pid, SIGTERM);
	for (int waited = 0; waited < 5000; waited += 50) {
		int running = 0;

		for (int i = 0; i < cfg.ncells; i++) {
			proc_drain(&cells[i], 0);
			running += !proc_wait(&cells[i], 0);
		}
		if (!running)
			break;
		usleep(50000);
	}
	for (int i = 0; i < cfg.ncells; i++) {
		proc_stop(&cells[i], SIGKILL, 1000);
		reps[i] = cells[i].out ? json_loads(cells[i].out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	}
	st = stat_doc(br.sockdir);
	t1 = rtvio_now_ns();
	cpu_b1 = proc_cpu_s(br.p.pid);
	cpu_ticks_read(&tb);
	probes_stop(&pr);
	longest = probes_window(&pr, t0, t1, stalls);
	cpu_ticks_json(&ta, &tb, stalls, &busy0);
	json_object_set_new(run, "seconds", json_real((double)(t1 - t0) / 1e9));
	for (int i = 0; i < cfg.nflows; i++) {
		const struct rtvio_flow_cfg *fl = &cfg.flows[i];
		json_t *rx = reps[fl->to] ? cell_flow(reps[fl->to], fl->name, "recv") : NULL;
		json_t *tx = reps[fl->from] ? cell_flow(reps[fl->from], fl->name, "send") : NULL;
		json_t *sf = stat_flow(st, fl->name);
		json_t *row = json_object(), *af;
		json_t *lat = json_object_get(rx, "latency_us");
		double bound = -1, resp = -1, res = -1;
		double mx = json_is_number(json_object_get(lat, "max"))
				    ? json_number_value(json_object_get(lat, "max")) : -1;
		size_t k;

		if (fl->best_effort || fl->traffic.pattern == RTVIO_PATTERN_OFF)
			continue;
		json_array_foreach(json_object_get(an, "flows"), k, af) {
			if (strcmp(json_string_value(json_object_get(af, "name")) ?: "", fl->name))
				continue;
			if (json_is_number(json_object_get(af, "latency_bound_us")))
				bound = json_number_value(json_object_get(af, "latency_bound_us"));
			if (json_is_number(json_object_get(af, "response_us")))
				resp = json_number_value(json_object_get(af, "response_us"));
		}
		if (json_is_integer(json_object_get(sf, "max_residence_ns")))
			res = (double)json_integer_value(json_object_get(sf, "max_residence_ns")) / 1e3;
		json_object_set_new(row, "flow", json_string(fl->name));
		json_object_set_new(row, "size", json_integer((json_int_t)fl->size));
		json_object_set_new(row, "period_us", json_real((double)fl->period_ns / 1e3));
		json_object_set(row, "messages", json_object_get(rx, "messages") ?: json_null());
		json_object_set(row, "lost", json_object_get(rx, "lost") ?: json_null());
		json_object_set(row, "corrupt", json_object_get(rx, "corrupt") ?: json_null());
		json_object_set(row, "p50_us", json_object_get(lat, "p50") ?: json_null());
		json_object_set(row, "p99_us", json_object_get(lat, "p99") ?: json_null());
		total_msgs += json_integer_value(json_object_get(rx, "messages"));
		json_object_set(row, "max_us", json_object_get(lat, "max") ?: json_null());
		json_object_set(row, "late_releases", json_object_get(tx, "late_releases") ?: json_null());
		json_object_set(row, "lost_periods", json_object_get(tx, "lost_periods") ?: json_null());
		json_object_set(row, "policed", json_object_get(sf, "policed") ?: json_null());
		json_object_set_new(row, "bound_us", bound >= 0 ? json_real(bound) : json_null());
		json_object_set_new(row, "response_us", resp >= 0 ? json_real(resp) : json_null());
		json_object_set_new(row, "residence_max_us", res >= 0 ? json_real(res) : json_null());
		if (resp > 0 && res >= 0) {
			json_object_set_new(row, "residence_ratio", json_real(res / resp));
			json_object_set_new(row, "residence_violation", json_boolean(res > resp));
		}
		if (resp > 0 && res > resp) {
			/* The broker says when its slowest packet arrived: was the VM seen
			 * stalled for the excess while that packet was in the broker? */
			uint64_t at = (uint64_t)json_integer_value(
				json_object_get(sf, "max_residence_at_ns"));

			json_object_set_new(row, "residence_cause", json_string(
				at && stalled_in(&pr, at, at + (uint64_t)(res * 1e3)) >= res - resp
					? "host" : "unexplained"));
		}
		if (bound > 0 && mx >= 0) {
			json_object_set_new(row, "ratio", json_real(mx / bound));
			json_object_set_new(row, "violation", json_boolean(mx > bound));
		}
		if (bound > 0 && mx > bound) {
			const char *why = attribute(&pr, json_object_get(rx, "slowest"), bound, row);
			char expl[320];
			json_t *v;

			snprintf(expl, sizeof(expl),
				 "%s: excess %.0f µs; of the receiver's slowest messages %lld were over "
				 "the bound%s, %lld of them while the probes saw the VM stalled for longer "
				 "than the excess (longest stall in the run %.0f µs; cpu 0 %.0f %% busy)", why,
				 mx - bound,
				 json_integer_value(json_object_get(row, "over_bound_listed")),
				 json_is_true(json_object_get(row, "over_bound_more")) ? " (or more)" : "",
				 json_integer_value(json_object_get(row, "over_bound_host")),
				 longest < 0 ? 0 : longest, busy0);
			json_object_set_new(row, "explanation", json_string(expl));
			json_object_set_new(row, "cause", json_string(why));
			v = json_deep_copy(row);
			json_object_set_new(v, "run", json_string(label));
			json_array_append_new(violations, v);
		}
		if (!rx)
			json_object_set_new(row, "status", json_string("no receiver report"));
		json_array_append_new(flows, row);
	}
	probes_free(&pr);
	json_object_set_new(run, "status", json_string("ok"));
	json_object_set_new(run, "messages", json_integer(total_msgs));
	if (cpu_b0 >= 0 && cpu_b1 >= cpu_b0) {
		json_object_set_new(run, "broker_cpu_pct",
				    json_real(100 * (cpu_b1 - cpu_b0) / ((double)(t1 - t0) / 1e9)));
		if (total_msgs)
			json_object_set_new(run, "broker_us_per_msg",
					    json_real((cpu_b1 - cpu_b0) * 1e6 / (double)total_msgs));
	}
out:
	broker_stop(&br);
	for (int i = 0; cells && reps && i < cfg.ncells; i++) {
		proc_free(&cells[i]);
		json_decref(reps[i]);
	}
	free(cells);
	free(reps);
	json_decref(st);
	json_object_set_new(run, "flows", flows);
	json_object_set_new(run, "host", stalls);
	json_decref(an);
	rtvio_config_free(&cfg);
	return run;
}

/* The generated flow sets: six real-time flows between four cells on cpu 0, periods 2 to
 * 40 ms, seqpacket and stream, every message at most 64 KiB. Messages that small are
 * what the analysis assumes: the sender posts a whole message at once and the
 * receiver's RX ring takes it without waiting for the receiving cell to run; with
 * 64 KiB RX buffers each message is one piece, so one notification. The load on the
 * cells' core is light and the same in every run; the utilization is set on the
 * broker's side instead, by regulating its copy engine: on a 2-cpu machine, cells on
 * one core cannot produce enough traffic to load an unregulated broker on the other,
 * and a regulated one is what the analysis models as a periodic resource. */
static const struct bound_flow {
	const char *from, *to, *type;
	uint64_t size, period_ms;
} bound_flows[] = {
	{ "a", "b", "seqpacket", 2048, 2 },   { "b", "c", "stream", 8192, 4 },
	{ "c", "d", "seqpacket", 16384, 8 },  { "d", "a", "stream", 16384, 10 },
	{ "a", "c", "seqpacket", 32768, 20 }, { "b", "d", "stream", 65536, 40 },
};
/* Longer than the longest non-preemptive step the platform can give (one piece with
 * its notifications), so that a period always has budget for one. */
#define BOUND_REG_PERIOD_US 1000
/* The senders' release jitter on the shared cells' core, declared so that the policer
 * tolerates it (and the analysis accounts for it). */
#define BOUND_JITTER_US 200

static int bound_write(const char *path, const char *sockdir, uint64_t budget,
		       const struct rtvio_platform_cfg *plat)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "[broker]\npolicy = fp\nchunk = 4KiB\nsocket_dir = %s\ncpu = %d\n"
		   "rt_priority = %d\npoll = no\ndefault = deny\nregulation_budget = %llu\n"
		   "regulation_period = %dus\n\n", sockdir, BROKER_CPU, BROKER_SLEEP_PRIO,
		(unsigned long long)budget, BOUND_REG_PERIOD_US);
	for (int c = 0; c < 4; c++)
		fprintf(f, "[cell %c]\ncid = %d\nregion = 16MiB\nrx_buf = 64KiB\ncpu = %d\n"
			   "rt_priority = %d\n\n", 'a' + c, 3 + c, CELL_CPU, RT_PRIO);
	for (size_t i = 0; i < sizeof(bound_flows) / sizeof(bound_flows[0]); i++) {
		const struct bound_flow *bf = &bound_flows[i];

		fprintf(f, "[flow f%zu]\nfrom = %s\nto = %s:%zu\ntype = %s\nsize = %llu\n"
			   "period = %llums\njitter = %dus\n\n", i + 1, bf->from, bf->to, 1001 + i,
			bf->type, (unsigned long long)bf->size, (unsigned long long)bf->period_ms,
			BOUND_JITTER_US);
	}
	rtvio_platform_write(f, plat);
	return fclose(f) ? -EIO : 0;
}

/* The analysed load on the regulated copy engine: utilization / capacity, or a
 * negative value when the analysis gives none (overload counts as above 1). */
static double bound_load(const char *path)
{
	json_t *an = analyze(path);
	double u = json_number_value(json_object_get(an, "utilization"));
	double cap = json_number_value(json_object_get(an, "capacity"));
	const char *st = json_string_value(json_object_get(an, "status"));
	double load = -1;

	if (st && !strcmp(st, "overload"))
		load = 2;
	else if (an && cap > 0 && u > 0)
		load = u / cap;
	json_decref(an);
	return load;
}

/* Finds the regulation budget (bytes per period, at least a chunk) at which the
 * analysed load is pct % of what the regulated copy engine can give; no regulation
 * when the flows load the unregulated engine that much already. */
static int bound_generate(struct bench *b, int pct, const struct rtvio_platform_cfg *plat,
			  char *path, size_t len, double *got, uint64_t *budget)
{
	double want = (double)pct / 100, lo = 4096, hi = 1024.0 * 1048576, load;
	char sockdir[128];
	int ret;

	snprintf(path, len, "%s/bound-u%d.conf", b->tmp, pct);
	snprintf(sockdir, sizeof(sockdir), "%s/bound-u%d", b->tmp, pct);
	*budget = 0;
	ret = bound_write(path, sockdir, 0, plat);
	if (ret)
		return ret;
	load = bound_load(path);
	if (load < 0 || load > 1)
		return -EINVAL;
	if (load < want) {
		/* More budget, less load: bisect in log space and keep the larger end,
		 * whose load is at most the target. */
		for (int iter = 0; iter < 40 && hi / lo > 1.002; iter++) {
			double mid = sqrt(lo * hi);

			ret = bound_write(path, sockdir, (uint64_t)mid, plat);
			if (ret)
				return ret;
			load = bound_load(path);
			if (load < 0 || load > want)
				lo = mid;
			else
				hi = mid;
		}
		*budget = (uint64_t)hi;
		ret = bound_write(path, sockdir, *budget, plat);
		if (ret)
			return ret;
		load = bound_load(path);
		if (load < 0 || load > 1)
			return -EINVAL;
	}
	*got = load;
	return 0;
}

/* The platform the analysis judges by: `rtvio calibrate --quick --poll yes|no` when
 * that works, else the demo config's [platform]. Returns a description. */
static const char *bound_platform(struct bench *b, bool poll, struct rtvio_platform_cfg *plat)
{
	char path[128], err[512];
	struct proc p;
	const char *argv[] = { proc_self_exe(), "calibrate", "--quick", "--poll", poll ? "yes" : "no",
			       "--out", path, NULL };
	struct rtvio_config demo;

	if (!poll && b->plat_src) {
		*plat = b->plat;
		return b->plat_src;
	}
	snprintf(path, sizeof(path), "%s/platform-%s.conf", b->tmp, poll ? "poll" : "sleep");
	proc_blank(&p);
	progress(b, "bound: rtvio calibrate --quick --poll %s", poll ? "yes" : "no");
	if (!proc_start(&p, argv, 1)) {
		bool ok = proc_wait(&p, 300000) && WIFEXITED(p.status) && !WEXITSTATUS(p.status);

		proc_stop(&p, SIGKILL, 1000);
		proc_free(&p);
		if (ok && !rtvio_platform_load(path, plat, err, sizeof(err)) &&
		    !rtvio_platform_missing(plat, err, sizeof(err))) {
			if (poll)
				return "rtvio calibrate --quick --poll yes (this machine, this run)";
			b->plat = *plat;
			return b->plat_src = "rtvio calibrate --quick --poll no (this machine, "
					     "this run)";
		}
	}
	if (!rtvio_config_load(demo_conf(), &demo, err, sizeof(err))) {
		*plat = demo.platform;
		rtvio_config_free(&demo);
		return "configs/demo.conf [platform] (measured on the development VM, not "
		       "here: rtvio calibrate was not available or failed)";
	}
	*plat = (struct rtvio_platform_cfg){
		.copy_bandwidth = 2000000000ull, .chunk_overhead = 1000, .packet_overhead = 45000,
		.ingest_latency = 10000, .notify_latency = 500000, .ingest_step = 50000,
		.batch_gap = 20000, .present = RTVIO_PLAT_ALL,
	};
	return "built-in copy of demo.conf's [platform] (configs/demo.conf not found; "
	       "rtvio calibrate not available)";
}

static int scenario_bound(struct bench *b)
{
	static const int pct_std[] = { 10, 20, 30, 40, 50, 60, 70, 80, 90 };
	static const int pct_quick[] = { 10, 50, 90 };
	const int *pct = b->quick ? pct_quick : pct_std;
	int npct = b->quick ? 3 : 9, ran = 0;
	double dur = b->quick ? 2 : 5;
	json_t *sc = json_object(), *runs = json_array(), *viol = json_array();
	struct rtvio_platform_cfg plat;
	struct rtvio_config cfg;
	char err[512], path[160];

	/* Every run's broker sleeps on kicks at SCHED_FIFO, pinned: the platform is
	 * calibrated that way. */
	json_object_set_new(sc, "platform_source", json_string(bound_platform(b, false, &plat)));
	/* The demo config with its broker made a SCHED_FIFO sleeper (as shipped it polls at
	 * ordinary priority: a spinning SCHED_FIFO task would be throttled), its
	 * socket_dir moved to scratch space, and the platform above. */
	b->step++;
	progress(b, "bound: configs/demo.conf");
	if (!rtvio_config_load(demo_conf(), &cfg, err, sizeof(err))) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/bound-demo.conf", b->tmp);
		snprintf(cfg.broker.socket_dir, sizeof(cfg.broker.socket_dir), "%s/bound-demo",
			 b->tmp);
		cfg.broker.poll = false;
		cfg.broker.rt_priority = BROKER_SLEEP_PRIO;
		cfg.platform = plat;
		cfg.platform.present = RTVIO_PLAT_ALL;
		f = fopen(path, "w");
		if (f && !rtvio_config_dump(&cfg, f) && !fclose(f)) {
			json_array_append_new(runs, bound_run("demo.conf", path, dur, viol));
			ran++;
		}
		rtvio_config_free(&cfg);
	} else {
		json_object_set_new(sc, "demo_status", json_string(err));
	}
	for (int i = 0; i < npct && !interrupted; i++) {
		char label[32];
		double got = 0;
		uint64_t budget = 0;
		json_t *r;

		b->step++;
		snprintf(label, sizeof(label), "U=%d%%", pct[i]);
		progress(b, "bound: generated flow set %s", label);
		if (bound_generate(b, pct[i], &plat, path, sizeof(path), &got, &budget)) {
			r = json_object();
			json_object_set_new(r, "label", json_string(label));
			json_object_set_new(r, "status", json_string("could not generate the flow set"));
		} else {
			r = bound_run(label, path, dur, viol);
			ran++;
		}
		json_object_set_new(r, "target_load", json_real(pct[i] / 100.0));
		json_array_append_new(runs, r);
	}
	json_object_set_new(sc, "runs_detail", runs);
	json_object_set_new(sc, "violations", viol);
	json_object_set_new(sc, "conditions", json_string(
		"Each run starts a broker and one `rtvio cell` per cell (their own periodic "
		"senders and checking receivers, rtmsg with full checksums) for a few seconds. "
		"Every broker sleeps on kicks at SCHED_FIFO 80 pinned to cpu 1 (demo.conf "
		"included: as shipped it polls at ordinary priority), and the analysis judges "
		"by the platform named above. The generated sets have four cells on cpu 0 "
		"(real-time threads SCHED_FIFO 50) and six real-time flows, seqpacket and "
		"stream, 2 KiB every 2 ms to 64 KiB every 40 ms (200 µs release jitter "
		"declared; 64 KiB RX buffers, so a message is one piece), under policy fp "
		"with 4 KiB chunks. Their load is set on the broker's side: the copy engine "
		"is regulated (budget per 1 ms) and the budget is lowered until `rtvio "
		"analyze` finds the target share of what the regulated engine can give "
		"(load = utilization / capacity; a target below the unregulated load runs "
		"unregulated). Cells on one core "
		"could not produce enough traffic to load an unregulated broker on the other, "
		"and messages of at most 64 KiB are what the analysis assumes (a sender posts "
		"a whole message at once, the receiver's RX ring takes it). Two bounds are "
		"checked per flow: the end-to-end bound (`latency_bound_us`) against the "
		"receiving cell's one-way latency, stamp before send to last byte received; "
		"and the broker response time R (`response_us`) against the broker's own "
		"longest residence time of the flow's packets, ingest to delivery (`rtvio "
		"stat`). Two probe threads (SCHED_FIFO 99, one per cpu, a clock reading every "
		"100 µs) record every interval over 300 µs in which they did not run: host "
		"stalls (or anything at priority 99); /proc/stat gives each cpu's busy and "
		"steal time."));
	json_object_set_new(sc, "reading", json_string(
		"observed/bound below 1 everywhere means the analysis held on this machine in "
		"this run (not a proof: a few seconds of traffic is not the worst case). Each "
		"receiving cell lists its slowest messages with their send stamps; every one "
		"over the bound is checked against the probes: 'host' when the VM was seen "
		"stalled for at least the excess while that message was on its way, "
		"'unexplained' when any is not: those are the ones to investigate in rtvio (or "
		"the platform numbers are too optimistic). A residence above R is judged the "
		"same way: the broker reports when its slowest packet arrived. Stalls shorter "
		"than ~300 µs go unseen, and the probes' own wake-ups cost each cpu a few per "
		"cent."));
	json_object_set(json_object_get(b->res, "scenarios"), "bound", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}

/* ---- scale ------------------------------------------------------------------------ */

/* n cells in a ring, f flows out of each (64 B every 10·f ms to the next cells: every
 * cell sends 100 messages a second however many flows carry them, so that cpu 0 keeps
 * up with 64 cells too, and what grows is what the broker keeps track of), plus the
 * measured control flow (64 B every 1 ms, priority 1) from the first cell to the
 * second. The broker sleeps on kicks at SCHED_FIFO, so its CPU time is what the
 * traffic costs. */
static int scale_config(struct bench *b, int n, int f, const struct rtvio_platform_cfg *plat,
			char *path, size_t len)
{
	FILE *fp;

	snprintf(path, len, "%s/scale-%d-%d.conf", b->tmp, n, f);
	fp = fopen(path, "w");
	if (!fp)
		return -errno;
	fprintf(fp, "[broker]\npolicy = fp\nchunk = 4KiB\nsocket_dir = %s/scale-%d-%d\ncpu = %d\n"
		    "rt_priority = %d\npoll = no\ndefault = deny\n\n", b->tmp, n, f, BROKER_CPU,
		BROKER_SLEEP_PRIO);
	for (int c = 0; c < n; c++)
		fprintf(fp, "[cell c%d]\ncid = %d\nregion = 2MiB\ncpu = %d\nrt_priority = %d\n\n", c,
			3 + c, CELL_CPU, RT_PRIO);
	fprintf(fp, "[flow control]\nfrom = c0:999\nto = c1:999\ntype = seqpacket\nsize = 64\n"
		    "period = 1ms\npriority = 1\n\n");
	for (int c = 0; c < n; c++)
		for (int k = 0; k < f; k++)
			fprintf(fp, "[flow c%df%d]\nfrom = c%d\nto = c%d:%d\ntype = seqpacket\n"
				    "size = 64\nperiod = %dms\n\n", c, k, c, (c + 1 + k % (n - 1)) % n,
				1000 + c * 16 + k, 10 * f);
	rtvio_platform_write(fp, plat);
	return fclose(fp) ? -EIO : 0;
}

static int scenario_scale(struct bench *b)
{
	/* (cells, flows per cell); 32 and 64 cells with 10 flows each start 640 to 1280
	 * threads on cpu 0, which only the standard set affords. */
	static const int grid_std[][2] = { { 2, 1 }, { 8, 1 }, { 32, 1 }, { 64, 1 },
					   { 2, 10 }, { 8, 10 }, { 32, 10 }, { 64, 10 } };
	static const int grid_quick[][2] = { { 2, 1 }, { 8, 1 }, { 32, 1 }, { 64, 1 },
					     { 2, 10 }, { 8, 10 } };
	const int (*grid)[2] = b->quick ? grid_quick : grid_std;
	int ng = b->quick ? 6 : 8, ran = 0;
	double dur = b->quick ? 1.5 : 3;
	json_t *sc = json_object(), *runs = json_array(), *viol = json_array();
	struct rtvio_platform_cfg plat;
	char path[160], label[48];

	json_object_set_new(sc, "platform_source", json_string(bound_platform(b, false, &plat)));
	for (int i = 0; i < ng && !interrupted; i++) {
		json_t *r;

		b->step++;
		snprintf(label, sizeof(label), "%d cells x %d flows", grid[i][0], grid[i][1]);
		progress(b, "scale: %s", label);
		if (scale_config(b, grid[i][0], grid[i][1], &plat, path, sizeof(path))) {
			r = json_object();
			json_object_set_new(r, "label", json_string(label));
			json_object_set_new(r, "status", json_string("could not write the config"));
		} else {
			r = bound_run(label, path, dur, viol);
			ran++;
		}
		json_object_set_new(r, "cells", json_integer(grid[i][0]));
		json_object_set_new(r, "flows_per_cell", json_integer(grid[i][1]));
		json_array_append_new(runs, r);
	}
	json_object_set_new(sc, "runs_detail", runs);
	json_object_set_new(sc, "violations", viol);
	json_object_set_new(sc, "conditions", json_string(
		"N process cells (`rtvio cell`, all on cpu 0, real-time threads SCHED_FIFO 50) in "
		"a ring, each sending F seqpacket flows of 64 B every 10·F ms to its neighbours "
		"(100 messages a second per cell, however many flows carry them), "
		"plus one control flow (64 B every 1 ms, priority 1) from c0 to c1. The broker "
		"sleeps on kicks at SCHED_FIFO 80 on cpu 1, policy fp. Broker CPU is its "
		"utime+stime over the run; per message it is divided by every message received "
		"in the run."));
	json_object_set_new(sc, "reading", json_string(
		"Broker µs per message should stay roughly flat as cells and flows grow (its "
		"ingest visits every ring, so a slow rise with the number of cells is the cost "
		"of that scan). The control flow's latency shows whether more cells and flows "
		"delay the highest-priority flow. With 64 cells, all the cells' threads share "
		"cpu 0: their wake-ups, not the broker, can dominate the control latency."));
	json_object_set(json_object_get(b->res, "scenarios"), "scale", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}

/* ---- interference ----------------------------------------------------------------- */

#define REG_BUDGET "512KiB"	/* per 1 ms: 0.5 GB/s for the copy engine */

static int scenario_interference(struct bench *b)
{
	json_t *sc = json_object(), *runs = json_array();
	char text[4096], label[96], cmd[512];
	int ran = 0;

	for (int hog = 0; hog < 2 && !interrupted; hog++) {
		for (int reg = 0; reg < 2 && !interrupted; reg++) {
			struct broker brk = { 0 };
			struct proc h;
			json_t *r, *hj = NULL;

			b->step++;
			snprintf(label, sizeof(label), "hog %s, regulation %s", hog ? "on" : "off",
				 reg ? "on (" REG_BUDGET "/ms)" : "off");
			progress(b, "interference: %s", label);
			snprintf(brk.sockdir, sizeof(brk.sockdir), "%s/intf-%d%d", b->tmp, hog, reg);
			iso_config(brk.sockdir, "fp", reg ? REG_BUDGET : "0", text, sizeof(text));
			snprintf(cmd, sizeof(cmd), "intf-%d%d", hog, reg);
			if (broker_start(b, &brk, cmd, text)) {
				broker_stop(&brk);
				continue;
			}
			proc_blank(&h);
			if (hog) {
				/* Its once-a-second rate lines would break the progress line. */
				snprintf(cmd, sizeof(cmd), "exec '%s' hog --cpu %d --rate max --json "
					 "2>/dev/null", proc_self_exe(), CELL_CPU);
				const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
				proc_start(&h, argv, 1);
				usleep(500000);
			}
			r = iso_run(b, ISO_RTVIO, brk.sockdir, true, brk.p.pid);
			if (hog) {
				proc_stop(&h, SIGTERM, 3000);
				hj = h.out ? json_loads(h.out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
				if (json_is_number(json_object_get(hj, "achieved_Bps")))
					json_object_set_new(r, "hog_gbps", json_real(json_number_value(
						json_object_get(hj, "achieved_Bps")) / 1e9));
				json_decref(hj);
			}
			proc_free(&h);
			json_object_set_new(r, "hog", json_boolean(hog));
			json_object_set_new(r, "regulation", json_boolean(reg));
			iso_add(runs, r, label, true);
			broker_stop(&brk);
			ran++;
		}
	}
	json_object_set_new(sc, "runs", runs);
	json_object_set_new(sc, "conditions", json_string(
		"The isolation scenario's rtvio set-up under policy fp with the bulk flow always "
		"on (control: 64 B every 1 ms; bulk: 1 MiB messages back to back), with and "
		"without `rtvio hog --cpu 0 --rate max` (copy pattern through buffers larger "
		"than the last-level cache, at ordinary priority on the cells' core, the one "
		"the broker does not use), and with the broker's copy engine unregulated or "
		"regulated to " REG_BUDGET " per 1 ms."));
	json_object_set_new(sc, "reading", json_string(
		"The hog competes for the memory system the broker copies through (and for cpu "
		"0 with the ordinary-priority bulk processes, not with the SCHED_FIFO control "
		"threads). Regulation caps the broker's own memory traffic, protecting other "
		"cores' memory bandwidth from the broker: bulk throughput should drop to about "
		"the budget, while the control flow, which needs little of it, should keep its "
		"latency unless it waits for a budget refill behind bulk chunks. On a VM the "
		"host's own memory traffic is an unmeasured third party."));
	json_object_set(json_object_get(b->res, "scenarios"), "interference", sc);
	json_decref(sc);
	return ran ? 0 : -EIO;
}

/* ---- Command ---------------------------------------------------------------------- */

static bool known_scenario(const char *s)
{
	return !strcmp(s, "size") || !strcmp(s, "overhead") || !strcmp(s, "isolation") ||
	       !strcmp(s, "bound") || !strcmp(s, "interference") || !strcmp(s, "scale");
}

static int write_results(struct bench *b)
{
	char path[4096];
	char cmd[4200];
	int err;

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", b->out);
	if (system(cmd) != 0)
		return -EIO;
	snprintf(path, sizeof(path), "%s/results.json", b->out);
	if (json_dump_file(b->res, path, JSON_INDENT(2) | JSON_SORT_KEYS)) {
		fprintf(stderr, "rtvio bench: cannot write %s\n", path);
		return -EIO;
	}
	err = bench_write_report(b->res, b->out, true);
	if (err)
		fprintf(stderr, "rtvio bench: report: %s\n", strerror(-err));
	return err;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "out", required_argument, NULL, 'o' },
		{ "report-only", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = { .out = DEFAULT_OUT };
	bool want[6] = { false }, any = false, report_only = false;
	struct sigaction sa = { .sa_handler = on_signal };
	int c, rc = 0, qos;

	if (argc > 1 && !strcmp(argv[1], "peer"))
		return bench_peer_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "relay"))
		return bench_relay_main(argc - 1, argv + 1);
	optind = 0;
	while ((c = getopt_long(argc, argv, "qo:h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			b.quick = true;
			break;
		case 'o':
			b.out = optarg;
			break;
		case 'r':
			report_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!known_scenario(argv[i])) {
			fprintf(stderr, "rtvio bench: unknown scenario '%s' (expected size, "
					"overhead, isolation, bound, scale or interference)\n", argv[i]);
			return 2;
		}
		want[!strcmp(argv[i], "size")	    ? 0
		     : !strcmp(argv[i], "overhead") ? 1
		     : !strcmp(argv[i], "isolation") ? 2
		     : !strcmp(argv[i], "bound")     ? 3
		     : !strcmp(argv[i], "scale")     ? 5
						     : 4] = true;
		any = true;
	}
	if (report_only) {
		char path[4096];
		json_t *res;
		int err;

		snprintf(path, sizeof(path), "%s/results.json", b.out);
		res = json_load_file(path, 0, NULL);
		if (!res) {
			fprintf(stderr, "rtvio bench: cannot read %s\n", path);
			return 2;
		}
		err = bench_write_report(res, b.out, true);
		json_decref(res);
		if (err)
			fprintf(stderr, "rtvio bench: %s: not a results document of this "
					"version (%s)\n", path, strerror(-err));
		return err ? 2 : 0;
	}
	if (!any)
		want[0] = want[1] = want[2] = want[3] = want[4] = want[5] = true;
	/* The overhead fit needs the size runs. */
	if (want[1])
		want[0] = true;
	b.tty = isatty(STDERR_FILENO);
	snprintf(b.tmp, sizeof(b.tmp), "/tmp/rtvio-bench-XXXXXX");
	if (!mkdtemp(b.tmp)) {
		fprintf(stderr, "rtvio bench: cannot create a scratch directory: %s\n",
			strerror(errno));
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	b.res = json_object();
	json_object_set_new(b.res, "schema", json_string(BENCH_SCHEMA));
	json_object_set_new(b.res, "quick", json_boolean(b.quick));
	json_object_set_new(b.res, "machine", machine_info());
	json_object_set_new(b.res, "notes", json_array());
	json_object_set_new(b.res, "scenarios", json_object());
	stamp_run(&b);
	/* Every transport runs on the same platform: idle cpus held awake for the whole
	 * run, as an rtvio broker holds them by default ([broker] pm_qos), so that no
	 * transport's wake-ups pay for a halted vCPU that another's do not. */
	qos = pmqos_hold(0);
	if (qos < 0)
		note(&b, "Idle cpus could not be held awake (/dev/cpu_dma_latency: %s): every "
			 "wake-up of a sleeping receiver includes waking a halted cpu.",
		     strerror(-qos));
	{
		json_t *s = json_object();

		json_object_set_new(s, "idle_cpus", json_string(qos >= 0 ? "held awake (PM QoS "
				    "cpu latency 0), for every transport" : "not held awake"));
		json_object_set_new(s, "cell_cpu", json_integer(CELL_CPU));
		json_object_set_new(s, "broker_cpu", json_integer(BROKER_CPU));
		json_object_set_new(s, "cell_rt_priority", json_integer(RT_PRIO));
		json_object_set_new(s, "broker_chunk", json_string("4KiB"));
		json_object_set_new(s, "broker_rt_priority_poll", json_integer(0));
		json_object_set_new(s, "broker_rt_priority_sleep", json_integer(BROKER_SLEEP_PRIO));
		json_object_set_new(s, "throughput_run_s", json_real(b.quick ? 0.25 : 1.0));
		json_object_set_new(s, "latency_messages_max", json_integer(b.quick ? 300 : 2000));
		json_object_set_new(b.res, "settings", s);
	}
	note(&b, "This machine: %lld online cpus. Absolute numbers drift by 20 %% or more "
		 "between runs of a VM; compare ratios measured in the same run.",
	     (long long)sysconf(_SC_NPROCESSORS_ONLN));
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		note(&b, "Fewer than 2 cpus: the broker shares the cells' core and every "
			 "comparison with it is distorted.");
	b.nsteps = (want[0] ? TR_N * (b.quick ? 4 : 8) * 2 : 0) + (want[2] ? 10 : 0) +
		   (want[3] ? (b.quick ? 4 : 10) : 0) + (want[4] ? 4 : 0) +
		   (want[5] ? (b.quick ? 6 : 8) : 0);
	if (want[0] && scenario_size(&b))
		rc = 1;
	if (want[1] && !interrupted)
		scenario_overhead(&b);
	if (want[2] && !interrupted && scenario_isolation(&b))
		rc = 1;
	if (want[3] && !interrupted && scenario_bound(&b))
		rc = 1;
	if (want[5] && !interrupted && scenario_scale(&b))
		rc = 1;
	if (want[4] && !interrupted && scenario_interference(&b))
		rc = 1;
	if (b.tty)
		fprintf(stderr, "\n");
	if (interrupted)
		note(&b, "The run was interrupted: the scenarios are incomplete.");
	pmqos_release(qos);
	if (write_results(&b))
		rc = 1;
	else
		fprintf(stderr, "rtvio bench: wrote %s/results.json, report.md and plots/\n", b.out);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "rtvio bench: could not remove %s\n", b.tmp);
	}
	json_decref(b.res);
	return rc;
}
