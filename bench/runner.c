/* `rtvio bench`: the processes a scenario starts and reads: peer pairs, brokers,
 * RouDi, `rtvio stat` and `rtvio analyze`, and the progress line and notes. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench.h"
#include "runner.h"

void bench_progress(struct bench *b, const char *fmt, ...)
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

void bench_note(struct bench *b, const char *fmt, ...)
{
	va_list ap;
	char line[512];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	json_array_append_new(json_object_get(b->res, "notes"), json_string(line));
}

bool bench_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* CPU time (user + system) of a process so far, in seconds; -1 if unreadable. */
double bench_proc_cpu_s(pid_t pid)
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
void bench_proc_blank(struct proc *p)
{
	memset(p, 0, sizeof(*p));
	p->out_fd = -1;
}

/* Starts the receiver, waits for it to listen, then starts the sender. */
int bench_pair_start(struct pair *p, const char *const rargv[], const char *const sargv[])
{
	memset(p, 0, sizeof(*p));
	bench_proc_blank(&p->r);
	bench_proc_blank(&p->s);
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
json_t *bench_pair_finish(struct pair *p, int timeout_ms)
{
	json_t *res = NULL, *sres;

	for (int waited = 0; p->started && waited < timeout_ms && !rtvio_stop_requested; waited += 100) {
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
	if (res && sres) {
		json_object_set(res, "sent", json_object_get(sres, "sent"));
		json_object_set(res, "tx_sleeps", json_object_get(sres, "sleeps"));
		if (json_object_get(sres, "send_call_us"))
			json_object_set(res, "send_call_us", json_object_get(sres, "send_call_us"));
	}
	json_decref(sres);
	proc_free(&p->s);
	proc_free(&p->r);
	return res;
}

json_t *bench_run_pair(const char *const rargv[], const char *const sargv[], int timeout_ms)
{
	struct pair p;

	bench_pair_start(&p, rargv, sargv);
	return bench_pair_finish(&p, timeout_ms);
}

/* ---- The broker ------------------------------------------------------------------ */

/* Starts a broker on br->conf and waits for its control socket in br->sockdir. */
int bench_broker_launch(struct broker *br)
{
	const char *argv[] = { proc_self_exe(), "broker", br->conf, NULL };
	char path[256];

	bench_proc_blank(&br->p);
	if (proc_start(&br->p, argv, 1))
		return -ECHILD;
	snprintf(path, sizeof(path), "%s/control.sock", br->sockdir);
	for (int waited = 0; waited < 10000; waited += 50) {
		if (proc_wait(&br->p, 0))
			return -ECHILD;
		if (bench_exists(path))
			return 0;
		usleep(50000);
	}
	return -ETIMEDOUT;
}

int bench_broker_start(struct bench *b, struct broker *br, const char *name, const char *text)
{
	FILE *f;

	bench_proc_blank(&br->p);
	snprintf(br->conf, sizeof(br->conf), "%s/%s.conf", b->tmp, name);
	f = fopen(br->conf, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		return -EIO;
	return bench_broker_launch(br);
}

void bench_broker_stop(struct broker *br)
{
	if (br->p.pid)
		proc_stop(&br->p, SIGTERM, 5000);
	proc_free(&br->p);
}

/* ---- size ------------------------------------------------------------------------ */

int bench_cell_cpu(int c)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n <= 2 || BROKER_CPU >= n)
		return CELL_CPU;
	c %= (int)(n - 1);
	return c >= BROKER_CPU ? c + 1 : c;
}

/* iceoryx needs RouDi with mempools big enough for 1 MiB messages. */
int bench_roudi_start(struct bench *b, struct proc *p, char *why, size_t whylen)
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
		snprintf(b->peer_failed, sizeof(b->peer_failed), "iceoryx: %s", why);
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
	bench_proc_blank(p);
	if (proc_start(p, argv, 1)) {
		snprintf(why, whylen, "iox-roudi could not be started (package iceoryx)");
		snprintf(b->peer_failed, sizeof(b->peer_failed), "iceoryx: %s", why);
		return -ENOENT;
	}
	usleep(1500000);
	if (proc_wait(p, 0)) {
		proc_drain(p, 0);
		/* 127: the shell found no iox-roudi to exec. */
		if (WIFEXITED(p->status) && WEXITSTATUS(p->status) == 127)
			snprintf(why, whylen, "iox-roudi not found (package iceoryx: "
					      "scripts/install-deps bench)");
		else
			snprintf(why, whylen, "iox-roudi exited at start (another RouDi running? "
					      "see its output: %.120s)", p->out ? p->out : "");
		proc_free(p);
		snprintf(b->peer_failed, sizeof(b->peer_failed), "iceoryx: %s", why);
		return -ECHILD;
	}
	return 0;
}

/* The command line of one `rtvio bench peer` process. */
void bench_peer_cmd(struct peer_cmd *c, bool send, const char *transport, const char *path,
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
	c->nnum = sizeof(keys) / sizeof(keys[0]);
	if (tput)
		c->argv[n++] = "--throughput";
	c->argv[n] = NULL;
}

void bench_peer_cmd_add(struct peer_cmd *c, const char *key, uint64_t value)
{
	size_t n = 0;

	while (c->argv[n])
		n++;
	if (n + 3 > sizeof(c->argv) / sizeof(c->argv[0]) ||
	    c->nnum >= sizeof(c->num) / sizeof(c->num[0]))
		return;
	snprintf(c->num[c->nnum], sizeof(c->num[0]), "%llu", (unsigned long long)value);
	c->argv[n++] = key;
	c->argv[n++] = c->num[c->nnum++];
	c->argv[n] = NULL;
}

/* The running broker's `rtvio stat --json` document, or NULL. */
json_t *bench_stat_doc(const char *sockdir)
{
	const char *argv[] = { proc_self_exe(), "stat", "--json", sockdir, NULL };
	struct proc p;
	json_t *doc;

	bench_proc_blank(&p);
	if (proc_start(&p, argv, 1))
		return NULL;
	proc_wait(&p, 5000);
	proc_stop(&p, SIGKILL, 1000);
	doc = p.out ? json_loads(p.out, 0, NULL) : NULL;
	proc_free(&p);
	return doc;
}

/* Flow `name` of a stat document (borrowed), or NULL. */
json_t *bench_stat_flow(json_t *doc, const char *name)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(doc, "flows"), i, f)
		if (!strcmp(json_string_value(json_object_get(f, "name")) ?: "", name))
			return f;
	return NULL;
}

/* configs/demo.conf from the working directory, else from the source tree. */
const char *bench_demo_conf(void)
{
	if (bench_exists("configs/demo.conf"))
		return "configs/demo.conf";
#ifdef RTVIO_SOURCE_DIR
	return RTVIO_SOURCE_DIR "/configs/demo.conf";
#else
	return "configs/demo.conf";
#endif
}

/* `rtvio analyze CONF --json`, or NULL. */
json_t *bench_analyze(const char *conf)
{
	const char *argv[] = { proc_self_exe(), "analyze", conf, "--json", NULL };
	struct proc p;
	json_t *doc;

	bench_proc_blank(&p);
	if (proc_start(&p, argv, 1))
		return NULL;
	proc_wait(&p, 30000);
	proc_stop(&p, SIGKILL, 1000);
	doc = p.out ? json_loads(p.out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	proc_free(&p);
	return doc;
}
