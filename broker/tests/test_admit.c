/* Admission control (admit.c) on the broker's live configuration (live.c), with a
 * real data plane and the daemon's socket work replaced by counters: a remote's
 * gateway follows compaction and cannot be removed under its flows, a fragment
 * cannot bring [remote], [platform] or [host] sections and its flows through an
 * existing remote name it in the live array, a failed add takes back every cell it
 * added, and on several cores the dump and the candidate carry each cell's real
 * core. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "admit.h"
#include "config.h"
#include "dataplane.h"
#include "live.h"
#include "model.h"

/* The costs of configs/demo.conf: enough for the small flows below. */
#define PLATFORM \
	"[platform]\ncopy_bandwidth = 2GB/s\nchunk_overhead = 1us\npacket_overhead = 45us\n" \
	"ingest_latency = 10us\nnotify_latency = 500us\ningest_step = 50us\nbatch_gap = 20us\n"

/* x before the gateway gw, so that removing x moves gw in the compact copy. */
static const char *const remote_ini =
	"[broker]\npolicy = fp\nmax_cells = 5\nmax_flows = 6\n"
	"[cell x]\ncid = 3\n[cell gw]\ncid = 4\n[cell a]\ncid = 5\n"
	"[remote r]\ngateway = gw\nnetwork_budget = 2ms\n"
	"[flow out]\nfrom = a\nto = r/act:1000\ntype = seqpacket\nsize = 64\nperiod = 10ms\n"
	"[flow here]\nfrom = x\nto = a:2000\ntype = seqpacket\nsize = 64\nperiod = 10ms\n"
	PLATFORM;

struct env {
	struct rtvio_config live;
	struct dp *dp;
	struct admit *adm;
	int opens, closes, fail_open_at; /* fail_open_at: the open call (1-based) to fail */
	unsigned int closed[8];
};

static int t_open(void *ctx, unsigned int slot, char *err, size_t errlen)
{
	struct env *e = ctx;

	(void)slot;
	if (++e->opens == e->fail_open_at) {
		snprintf(err, errlen, "test: cannot listen");
		return -EADDRINUSE;
	}
	return 0;
}

static void t_close(void *ctx, unsigned int slot)
{
	struct env *e = ctx;

	if (e->closes < 8)
		e->closed[e->closes] = slot;
	e->closes++;
}

static void t_notify(void *ctx, unsigned cell, unsigned queue)
{
	(void)ctx;
	(void)cell;
	(void)queue;
}

static void t_broken(void *ctx, unsigned cell, int err)
{
	(void)ctx;
	(void)cell;
	(void)err;
}

static void env_init(struct env *e, const char *ini)
{
	static const struct dp_hooks hooks = { .notify = t_notify, .broken = t_broken };
	static const struct admit_ops ops = { .cell_open = t_open, .cell_close = t_close };
	struct rtvio_config loaded;
	char err[512];

	memset(e, 0, sizeof(*e));
	if (rtvio_config_parse(ini, "test.conf", &loaded, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(live_create(&loaded, &e->live), 0);
	rtvio_config_free(&loaded);
	assert_int_equal(dp_create(&e->live, &hooks, e, &e->dp), 0);
	assert_int_equal(admit_create(&e->live, e->dp, &ops, e, &e->adm), 0);
}

static void env_fini(struct env *e)
{
	admit_destroy(e->adm);
	dp_destroy(e->dp);
	rtvio_config_free(&e->live);
}

/* Changes are applied at least ADMIT_SPACING_NS apart. */
static void spacing(void)
{
	usleep((useconds_t)(ADMIT_SPACING_NS / 1000 + 1000));
}

/* One change, through the worker for an add, as the daemon's loop does it. */
static json_t *change(struct env *e, json_t *req)
{
	struct pollfd p = { .fd = admit_fd(e->adm), .events = POLLIN };
	uint64_t ticket = 0;
	bool deferred;
	json_t *r;

	spacing();
	r = admit_request(e->adm, req, 7, &deferred);
	json_decref(req);
	if (!deferred)
		return r;
	assert_int_equal(poll(&p, 1, 10000), 1);
	r = admit_finish(e->adm, &ticket);
	assert_non_null(r);
	assert_int_equal(ticket, 7);
	return r;
}

static json_t *add(struct env *e, const char *frag)
{
	return change(e, json_pack("{s:s, s:s, s:s, s:s}", "cmd", "change", "op", "add", "name",
				   "frag", "fragment", frag));
}

static json_t *del(struct env *e, const char *kind, const char *name)
{
	return change(e, json_pack("{s:s, s:s, s:s, s:s}", "cmd", "change", "op", "remove", "kind",
				   kind, "name", name));
}

/* Whether reply r (consumed) admitted the change. */
static bool admitted(json_t *r)
{
	bool yes = json_is_true(json_object_get(r, "ok")) &&
		   json_is_true(json_object_get(r, "admitted"));

	if (!yes)
		print_message("reply: %s\n", json_string_value(json_object_get(r, "error")) ?:
			      json_string_value(json_object_get(r, "reasons")) ?: "?");
	json_decref(r);
	return yes;
}

/* A bad-input reply whose error says `what`. */
static void assert_bad(json_t *r, const char *what)
{
	const char *err = json_string_value(json_object_get(r, "error"));

	assert_true(json_is_true(json_object_get(r, "bad_input")));
	assert_non_null(err);
	if (!strstr(err, what))
		fail_msg("error '%s' does not say '%s'", err, what);
	json_decref(r);
}

/* The dump loads back; the loaded configuration in *back. */
static char *dump_loads(const struct rtvio_config *live, struct rtvio_config *back)
{
	char err[512], *text = live_dump(live, true);

	assert_non_null(text);
	if (rtvio_config_parse(text, "dump", back, err, sizeof(err)))
		fail_msg("%s\n%s", err, text);
	return text;
}

/* ---- 1: a remote's gateway across cell removal ----------------------------------- */

static void gateway_renumbered_on_compaction(void **state)
{
	struct rtvio_config back;
	struct env e;
	char *text;

	(void)state;
	env_init(&e, remote_ini);
	assert_true(admitted(del(&e, "cell", "x")));
	text = dump_loads(&e.live, &back);
	assert_non_null(strstr(text, "gateway = gw\n"));
	assert_int_equal(back.nremotes, 1);
	assert_string_equal(back.cells[back.remotes[0].gateway].name, "gw");
	rtvio_config_free(&back);
	free(text);
	/* And later adds still load the configuration in force. */
	assert_true(admitted(add(&e, "[cell y]\ncid = 9\n")));
	env_fini(&e);
}

static void gateway_removal_refused_under_flows(void **state)
{
	struct rtvio_config back;
	struct env e;
	char *before, *text;

	(void)state;
	env_init(&e, remote_ini);
	before = live_dump(&e.live, true);
	assert_bad(del(&e, "cell", "gw"), "gateway of remote 'r', which flows out use");
	text = live_dump(&e.live, true);
	assert_string_equal(before, text);
	assert_int_equal(e.closes, 0);
	free(text);
	/* Without its flows the gateway goes, and its remote with it. */
	assert_true(admitted(del(&e, "flow", "out")));
	assert_true(admitted(del(&e, "cell", "gw")));
	assert_int_equal(e.live.nremotes, 0);
	text = dump_loads(&e.live, &back);
	assert_null(strstr(text, "[remote"));
	assert_null(strstr(text, "gateway ="));
	rtvio_config_free(&back);
	free(text);
	free(before);
	assert_true(admitted(add(&e, "[cell y]\ncid = 9\n")));
	env_fini(&e);
}

/* ---- 2: remotes in a fragment ---------------------------------------------------- */

static void fragment_remote_refused(void **state)
{
	struct env e;
	char *before, *text;

	(void)state;
	env_init(&e, remote_ini);
	before = live_dump(&e.live, true);
	/* The fragment's remote is the candidate's first: flow z would have kept index 1
	 * of a live array of one. */
	assert_bad(add(&e, "[cell gw2]\ncid = 9\n"
			   "[remote s]\ngateway = gw2\nnetwork_budget = 1ms\n"
			   "[flow z]\nfrom = a\nto = r/far:7\ntype = seqpacket\nsize = 64\n"
			   "period = 10ms\n"),
		   "frag:3: [remote s]: a remote cannot be added at run time");
	text = live_dump(&e.live, true);
	assert_string_equal(before, text);
	assert_int_equal(e.opens, 0);
	free(text);
	free(before);
	env_fini(&e);
}

static void fragment_flow_through_live_remote(void **state)
{
	static const char *const two =
		"[broker]\npolicy = fp\nmax_cells = 5\nmax_flows = 6\n"
		"[cell gw]\ncid = 4\n[cell a]\ncid = 5\n[cell gw2]\ncid = 6\n"
		"[remote r]\ngateway = gw\nnetwork_budget = 2ms\n"
		"[remote s]\ngateway = gw2\nnetwork_budget = 2ms\n"
		PLATFORM;
	struct rtvio_config back;
	struct env e;
	char *text;
	int f;

	(void)state;
	env_init(&e, two);
	assert_true(admitted(add(&e, "[flow z]\nfrom = a\nto = s/far:7\ntype = seqpacket\n"
				     "size = 64\nperiod = 10ms\n")));
	f = rtvio_config_find_flow(&e.live, "z");
	assert_true(f >= 0);
	assert_int_equal(e.live.flows[f].rem.remote, 1);
	assert_string_equal(e.live.cells[e.live.flows[f].to].name, "gw2");
	text = dump_loads(&e.live, &back);
	assert_non_null(strstr(text, "to = s/far:7\n"));
	rtvio_config_free(&back);
	free(text);
	env_fini(&e);
}

/* ---- 3: [platform] and [host] in a fragment -------------------------------------- */

static void fragment_platform_refused(void **state)
{
	/* Without [platform] the broker cannot analyse: the fragment's would have been
	 * taken, with costs the client made up. */
	static const char *const bare =
		"[broker]\npolicy = fp\nmax_cells = 3\nmax_flows = 3\n"
		"[cell a]\ncid = 3\n[cell x]\ncid = 4\n";
	static const char *const frag =
		"[flow z]\nfrom = a\nto = x:7\ntype = seqpacket\nsize = 64\nperiod = 10ms\n"
		"[platform]\ncopy_bandwidth = 100GB/s\nchunk_overhead = 1ns\n"
		"packet_overhead = 1ns\ningest_latency = 1ns\nnotify_latency = 1ns\n"
		"ingest_step = 1ns\nbatch_gap = 1ns\n";
	struct env e;

	(void)state;
	env_init(&e, bare);
	assert_bad(add(&e, frag), "frag:7: [platform]: a fragment cannot change the platform");
	assert_int_equal(rtvio_config_find_flow(&e.live, "z"), -ENOENT);
	env_fini(&e);
	/* With one, the same clear message (not "given twice" at a dump's line). */
	env_init(&e, remote_ini);
	assert_bad(add(&e, frag), "frag:7: [platform]: a fragment cannot change the platform");
	env_fini(&e);
}

static void fragment_host_refused(void **state)
{
	struct env e;

	(void)state;
	env_init(&e, remote_ini);
	assert_bad(add(&e, "[host h]\nuds_path = /tmp/rtvio-test-admit-h\n"),
		   "frag:1: [host h]: a host endpoint cannot be added at run time");
	assert_int_equal(e.opens, 0);
	assert_int_equal(rtvio_config_find_cell(&e.live, "h"), -ENOENT);
	env_fini(&e);
}

/* ---- 4: a failed add takes back every cell it added ------------------------------ */

static void failed_add_rolls_back(void **state)
{
	struct env e;
	char *before, *text;
	uint32_t room;
	json_t *r;

	(void)state;
	env_init(&e, remote_ini);
	before = live_dump(&e.live, true);
	room = dp_conn_room(e.dp);
	e.fail_open_at = 2;
	r = add(&e, "[cell c]\ncid = 10\n[cell d]\ncid = 11\n"
		    "[flow cd]\nfrom = c\nto = d:5\ntype = seqpacket\nsize = 64\nperiod = 10ms\n");
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_false(json_is_true(json_object_get(r, "admitted")));
	assert_non_null(strstr(json_string_value(json_object_get(r, "reasons")), "cannot listen"));
	assert_int_equal(json_array_size(json_object_get(r, "changed")), 0);
	json_decref(r);
	/* c's socket closed (its slot, 3), d's and c's slots free, nothing else. */
	assert_int_equal(e.closes, 1);
	assert_int_equal(e.closed[0], 3);
	assert_int_equal(live_count_cells(&e.live), 3);
	assert_int_equal(rtvio_config_find_cell(&e.live, "c"), -ENOENT);
	assert_int_equal(rtvio_config_find_flow(&e.live, "cd"), -ENOENT);
	assert_int_equal(dp_conn_room(e.dp), room);
	text = live_dump(&e.live, true);
	assert_string_equal(before, text);
	free(text);
	assert_int_equal(admit_generation(e.adm), 0);
	/* The slots are free again. */
	e.fail_open_at = 0;
	assert_true(admitted(add(&e, "[cell c]\ncid = 10\n[cell d]\ncid = 11\n")));
	assert_int_equal(live_count_cells(&e.live), 5);
	free(before);
	env_fini(&e);
}

/* ---- 5: the cores of a multi-core broker's cells --------------------------------- */

/* Slots 0..2 hold a, b, c; b's slot is freed as a removal frees it. Cores by slot:
 * a 0, c 0; compacted without broker_core, c would be cell 1, core 1. */
static void two_core_live(struct rtvio_config *live)
{
	static const char *const ini =
		"[broker]\npolicy = fp\ncpus = 0,1\nmax_cells = 4\nmax_flows = 4\n"
		"[cell a]\ncid = 3\n[cell b]\ncid = 4\n[cell c]\ncid = 5\n"
		"[flow ac]\nfrom = a\nto = c:7\ntype = seqpacket\nsize = 64\nperiod = 10ms\n"
		PLATFORM;
	struct rtvio_config loaded;
	char err[512];

	if (rtvio_config_parse(ini, "test.conf", &loaded, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(live_create(&loaded, live), 0);
	rtvio_config_free(&loaded);
	memset(&live->cells[1], 0, sizeof(live->cells[1]));
	live->cells[1].vacant = true;
}

static int core_of(const struct rtvio_config *cfg, const char *cell)
{
	int i = rtvio_config_find_cell(cfg, cell);

	assert_true(i >= 0);
	return model_cell_core(cfg, i);
}

static void dump_keeps_cores(void **state)
{
	struct rtvio_config live, back, again;
	char *one, *two;

	(void)state;
	two_core_live(&live);
	one = dump_loads(&live, &back);
	assert_int_equal(core_of(&back, "a"), core_of(&live, "a"));
	assert_int_equal(core_of(&back, "c"), core_of(&live, "c"));
	assert_int_equal(core_of(&back, "c"), 2 % 2);
	/* The dump is a fixed point: loaded and dumped again, the same text. */
	assert_int_equal(live_create(&back, &again), 0);
	two = live_dump(&again, true);
	assert_string_equal(one, two);
	free(one);
	free(two);
	rtvio_config_free(&back);
	rtvio_config_free(&again);
	rtvio_config_free(&live);
}

static void candidate_cells_on_their_cores(void **state)
{
	struct rtvio_config live, cand;
	char err[512];

	(void)state;
	two_core_live(&live);
	/* d takes b's slot, 1: core 1, although it is the candidate's first cell; e
	 * takes slot 3 (core 1) unless it names its own. */
	if (admit_candidate(&live, "[cell d]\ncid = 6\n[cell e]\ncid = 7\nbroker_core = 0\n",
			    "frag", &cand, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(core_of(&cand, "d"), 1);
	assert_int_equal(core_of(&cand, "e"), 0);
	assert_int_equal(core_of(&cand, "a"), 0);
	assert_int_equal(core_of(&cand, "c"), 0);
	/* The broker's own costs, whatever the fragment. */
	assert_int_equal(cand.platform.copy_bandwidth, live.platform.copy_bandwidth);
	rtvio_config_free(&cand);
	rtvio_config_free(&live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gateway_renumbered_on_compaction),
		cmocka_unit_test(gateway_removal_refused_under_flows),
		cmocka_unit_test(fragment_remote_refused),
		cmocka_unit_test(fragment_flow_through_live_remote),
		cmocka_unit_test(fragment_platform_refused),
		cmocka_unit_test(fragment_host_refused),
		cmocka_unit_test(failed_add_rolls_back),
		cmocka_unit_test(dump_keeps_cores),
		cmocka_unit_test(candidate_cells_on_their_cores),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
