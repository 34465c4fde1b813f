/* Admission control (admit.h). */
#include "admit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "dataplane.h"
#include "live.h"
#include "model.h"
#include "verdict.h"

enum verdict_kind { ADMIT_YES, ADMIT_NO, ADMIT_BAD };

struct admit {
	struct rtvio_config *live;
	struct dp *dp;
	struct admit_ops ops;
	void *ctx;
	int efd;
	uint64_t generation;
	uint64_t applied_ns;         /* when the last change was applied, 0 = never */
	/* The change in flight: written by the loop before the worker starts and
	 * after it is joined; by the worker in between (the thread start and join
	 * order every access). */
	bool busy;
	pthread_t th;
	uint64_t ticket;
	char *text;                  /* fragment, then the live configuration */
	char name[RTVIO_PATH_MAX];   /* what the loader's messages call the fragment */
	enum verdict_kind kind;
	char why[2048];
	struct rtvio_config cand;    /* the configuration after the change */
};

/* ---- the worker: the configuration after the change, and its verdict ----------- */

/* How many cells and flows of the candidate are new (not in the live config). */
static int count_new(const struct admit *a, int *ncells, int *nflows)
{
	*ncells = *nflows = 0;
	for (int i = 0; i < a->cand.ncells; i++)
		*ncells += rtvio_config_find_cell(a->live, a->cand.cells[i].name) < 0;
	for (int i = 0; i < a->cand.nflows; i++)
		*nflows += rtvio_config_find_flow(a->live, a->cand.flows[i].name) < 0;
	return *ncells + *nflows;
}

/* "flow x, flow y" of the new flows (cells when there are none): an overload has
 * no flow to blame but the ones that came with the change. */
static const char *added_names(struct admit *a)
{
	static _Thread_local char buf[512];
	size_t n = 0;

	buf[0] = '\0';
	for (int k = 0; k < 2 && !n; k++) {
		int cnt = k ? a->cand.ncells : a->cand.nflows;

		for (int i = 0; i < cnt && n < sizeof(buf) - 1; i++) {
			const char *nm = k ? a->cand.cells[i].name : a->cand.flows[i].name;

			if ((k ? rtvio_config_find_cell(a->live, nm) : rtvio_config_find_flow(a->live, nm)) >= 0)
				continue;
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s %s", n ? ", " : "",
					      k ? "cell" : "flow", nm);
		}
	}
	return buf;
}

static void judge(struct admit *a)
{
	struct an_verdict v;
	int nc, nf, rc;

	/* The fragment first: the loader's line numbers are the fragment's own. */
	rc = rtvio_config_parse(a->text, a->name, &a->cand, a->why, sizeof(a->why));
	if (rc) {
		a->kind = ADMIT_BAD;
		return;
	}
	/* The analysis charges the apply step at the broker's capacity (the dump left
	 * max_cells and max_flows out: they are not the fragment's to set). */
	a->cand.broker.max_cells = a->live->broker.max_cells;
	a->cand.broker.max_flows = a->live->broker.max_flows;
	if (!count_new(a, &nc, &nf)) {
		a->kind = ADMIT_BAD;
		snprintf(a->why, sizeof(a->why), "%s: no [cell] or [flow] section to add", a->name);
		return;
	}
	rc = an_config_verdict(&a->cand, &v);
	a->kind = rc == 0 ? ADMIT_YES : ADMIT_NO;
	if (rc == 1)
		snprintf(a->why, sizeof(a->why), "not schedulable after the change (it adds %s):\n%s",
			 added_names(a), v.text);
	else if (rc == -ENODATA)
		snprintf(a->why, sizeof(a->why), "cannot analyse the change: %s", v.text);
	else if (rc)
		snprintf(a->why, sizeof(a->why), "cannot analyse the change: %s", strerror(-rc));
}

static void *worker(void *arg)
{
	struct admit *a = arg;
	uint64_t one = 1;

	judge(a);
	/* The loop reads the result after joining this thread. */
	if (write(a->efd, &one, sizeof(one)) < 0) {
		/* Counter full: the loop is already due to look. */
	}
	return NULL;
}

/* ---- applying a change in the loop thread, between data-plane runs ------------- */

static int vacant_cell(const struct rtvio_config *l)
{
	for (int i = 0; i < l->ncells; i++)
		if (l->cells[i].vacant)
			return i;
	return -1;
}

static int vacant_flow(const struct rtvio_config *l)
{
	for (int i = 0; i < l->nflows; i++)
		if (l->flows[i].vacant)
			return i;
	return -1;
}

/* Room for the new cells, flows and connection shares: checked before anything
 * changes, so a refusal leaves everything as it was. */
static int check_room(struct admit *a)
{
	struct rtvio_config *l = a->live;
	int nc, nf, freec = l->ncells - live_count_cells(l), freef = l->nflows - live_count_flows(l);
	uint64_t conns = 0;

	count_new(a, &nc, &nf);
	for (int i = 0; i < a->cand.ncells; i++)
		if (rtvio_config_find_cell(l, a->cand.cells[i].name) < 0)
			conns += model_cell_connections(&a->cand, i);
	if (nc > freec)
		snprintf(a->why, sizeof(a->why), "no room: %d new cells, %d free of max_cells = %d",
			 nc, freec, l->ncells);
	else if (nf > freef)
		snprintf(a->why, sizeof(a->why), "no room: %d new flows, %d free of max_flows = %d",
			 nf, freef, l->nflows);
	else if (conns > dp_conn_room(a->dp))
		snprintf(a->why, sizeof(a->why), "no room: the new cells' connections (%llu) exceed "
			 "the broker's free connection table (%u)", (unsigned long long)conns,
			 dp_conn_room(a->dp));
	else
		return 0;
	return -ENOSPC;
}

static void free_cell_slot(struct admit *a, int s)
{
	memset(&a->live->cells[s], 0, sizeof(a->live->cells[s]));
	a->live->cells[s].vacant = true;
}

static int add_cells(struct admit *a, json_t *added)
{
	for (int i = 0; i < a->cand.ncells; i++) {
		const struct rtvio_cell_cfg *cc = &a->cand.cells[i];
		int s, rc;

		if (rtvio_config_find_cell(a->live, cc->name) >= 0)
			continue;
		s = vacant_cell(a->live);
		a->live->cells[s] = *cc;
		rc = dp_cell_add(a->dp, (unsigned int)s);
		if (!rc)
			rc = a->ops.cell_open(a->ctx, (unsigned int)s, a->why, sizeof(a->why));
		if (rc) {
			dp_cell_remove(a->dp, (unsigned int)s);
			free_cell_slot(a, s);
			return rc;
		}
		json_array_append_new(added, json_pack("{s:s}", "cell", cc->name));
	}
	return 0;
}

/* The new flows into vacant slots, their ends renumbered by name. */
static void add_flows(struct admit *a, json_t *added)
{
	for (int i = 0; i < a->cand.nflows; i++) {
		struct rtvio_flow_cfg fc = a->cand.flows[i];
		int s;

		if (rtvio_config_find_flow(a->live, fc.name) >= 0)
			continue;
		s = vacant_flow(a->live);
		fc.from = rtvio_config_find_cell(a->live, a->cand.cells[fc.from].name);
		fc.to = rtvio_config_find_cell(a->live, a->cand.cells[fc.to].name);
		fc.traffic.workload = -1;
		a->live->flows[s] = fc;
		if (dp_flow_add(a->dp, (unsigned int)s)) {
			/* The loader checked what the table checks: not expected. */
			a->live->flows[s].vacant = true;
			continue;
		}
		json_array_append_new(added, json_pack("{s:s}", "flow", fc.name));
	}
}

/* Workloads of the new flows, their flow renumbered by name. The live array has a
 * slot per flow slot (live_create), and a flow has at most one workload: nothing is
 * allocated here. */
static void add_workloads(struct admit *a)
{
	struct rtvio_config *l = a->live;

	for (int i = 0; i < a->cand.nworkloads; i++) {
		struct rtvio_workload_cfg w = a->cand.workloads[i];
		int f = rtvio_config_find_flow(l, a->cand.flows[w.flow].name);

		if (f < 0 || l->flows[f].traffic.workload >= 0 || l->nworkloads >= l->nflows)
			continue;
		w.flow = f;
		/* The traffic it shapes was copied with the flow (the loader folds it in). */
		l->flows[f].traffic.workload = l->nworkloads;
		l->workloads[l->nworkloads++] = w;
	}
}

static json_t *reply(struct admit *a, bool admitted, json_t *changed)
{
	json_t *r;

	if (a->kind == ADMIT_BAD)
		r = json_pack("{s:b, s:b, s:s}", "ok", 0, "bad_input", 1, "error", a->why);
	else
		r = json_pack("{s:b, s:b, s:I, s:s, s:o}", "ok", 1, "admitted", admitted,
			      "generation", (json_int_t)a->generation, "reasons",
			      admitted ? "" : a->why, "changed", changed ? changed : json_array());
	return r;
}

static json_t *apply_add(struct admit *a)
{
	json_t *changed = json_array();
	int rc;

	if (a->kind != ADMIT_YES)
		return reply(a, false, changed);
	if (check_room(a)) {
		a->kind = ADMIT_NO;
		return reply(a, false, changed);
	}
	rc = add_cells(a, changed);
	if (rc) {
		a->kind = ADMIT_NO;
		return reply(a, false, changed);
	}
	add_flows(a, changed);
	add_workloads(a);
	a->generation++;
	a->applied_ns = rtvio_now_ns();
	return reply(a, true, changed);
}

json_t *admit_finish(struct admit *a, uint64_t *ticket)
{
	uint64_t v;
	json_t *r;

	if (read(a->efd, &v, sizeof(v)) < 0 || !a->busy)
		return NULL;
	pthread_join(a->th, NULL);
	/* The data plane's cores read the configuration: changed between their runs. */
	dp_ctl_lock(a->dp);
	r = apply_add(a);
	dp_ctl_unlock(a->dp);
	*ticket = a->ticket;
	rtvio_config_free(&a->cand);
	free(a->text);
	a->text = NULL;
	a->busy = false;
	return r;
}

/* ---- removal: no analysis, applied at once ---------------------------------------- */

/* The workloads of flow f go with it; the others keep their flows' links. */
static void drop_workloads(struct rtvio_config *l, int f)
{
	int n = 0;

	for (int w = 0; w < l->nworkloads; w++) {
		if (l->workloads[w].flow == f)
			continue;
		l->workloads[n] = l->workloads[w];
		l->flows[l->workloads[n].flow].traffic.workload = n;
		n++;
	}
	l->nworkloads = n;
}

static void remove_flow(struct admit *a, int f, json_t *changed)
{
	struct rtvio_flow_cfg *fc = &a->live->flows[f];

	json_array_append_new(changed, json_pack("{s:s}", "flow", fc->name));
	dp_flow_remove(a->dp, (unsigned int)f);
	drop_workloads(a->live, f);
	memset(fc, 0, sizeof(*fc));
	fc->vacant = true;
	fc->from = fc->to = -1;
	/* Its senders' ingest budgets shrink with it (the analysis charges the new). */
	dp_config_changed(a->dp);
}

static void remove_cell(struct admit *a, int s, json_t *changed)
{
	/* Cut off first: the detach resets each of its connections toward the peer
	 * (an RST that the flows' removal moves to the best-effort class), then its
	 * flows go, then its slot. */
	json_array_append_new(changed, json_pack("{s:s}", "cell", a->live->cells[s].name));
	a->ops.cell_close(a->ctx, (unsigned int)s);
	for (int f = 0; f < a->live->nflows; f++)
		if (!a->live->flows[f].vacant &&
		    (a->live->flows[f].from == s || a->live->flows[f].to == s))
			remove_flow(a, f, changed);
	dp_cell_remove(a->dp, (unsigned int)s);
	free_cell_slot(a, s);
}

static json_t *do_remove(struct admit *a, const char *kind, const char *name)
{
	json_t *changed = json_array();
	bool cell = !strcmp(kind, "cell");
	int i = cell ? rtvio_config_find_cell(a->live, name) : rtvio_config_find_flow(a->live, name);

	a->kind = ADMIT_BAD;
	if (!*name || i < 0) {
		snprintf(a->why, sizeof(a->why), "no %s named '%s' in the configuration in force",
			 cell ? "cell" : "flow", name);
		json_decref(changed);
		return reply(a, false, NULL);
	}
	dp_ctl_lock(a->dp);
	if (cell)
		remove_cell(a, i, changed);
	else
		remove_flow(a, i, changed);
	dp_ctl_unlock(a->dp);
	a->kind = ADMIT_YES;
	a->generation++;
	a->applied_ns = rtvio_now_ns();
	return reply(a, true, changed);
}

/* ---- requests -------------------------------------------------------------------- */

static json_t *bad(struct admit *a, const char *msg)
{
	a->kind = ADMIT_BAD;
	snprintf(a->why, sizeof(a->why), "%s", msg);
	return reply(a, false, NULL);
}

/* Starts the worker on the fragment followed by the live configuration. */
static json_t *start_add(struct admit *a, const char *frag, const char *name, uint64_t ticket,
			 bool *deferred)
{
	char *rest = live_dump(a->live, false);
	size_t fl = strlen(frag), rl;

	if (!rest)
		return bad(a, "out of memory");
	rl = strlen(rest);
	a->text = malloc(fl + rl + 2);
	if (!a->text) {
		free(rest);
		return bad(a, "out of memory");
	}
	memcpy(a->text, frag, fl);
	a->text[fl] = '\n';
	memcpy(a->text + fl + 1, rest, rl + 1);
	free(rest);
	snprintf(a->name, sizeof(a->name), "%s", name);
	memset(&a->cand, 0, sizeof(a->cand));
	a->ticket = ticket;
	a->busy = true;
	if (pthread_create(&a->th, NULL, worker, a)) {
		a->busy = false;
		free(a->text);
		a->text = NULL;
		return bad(a, "cannot start the admission thread");
	}
	*deferred = true;
	return NULL;
}

json_t *admit_request(struct admit *a, json_t *req, uint64_t ticket, bool *deferred)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *name = json_string_value(json_object_get(req, "name"));

	*deferred = false;
	if (a->busy)
		return json_pack("{s:b, s:b, s:s}", "ok", 0, "busy", 1, "error",
				 "another change is being admitted");
	/* Changes are applied at least ADMIT_SPACING_NS apart: the analysis charges one
	 * apply step per window. */
	if (a->applied_ns && rtvio_now_ns() - a->applied_ns < ADMIT_SPACING_NS)
		return json_pack("{s:b, s:b, s:s}", "ok", 0, "busy", 1, "error",
				 "the last change was applied less than 10 ms ago");
	if (op && !strcmp(op, "add")) {
		const char *frag = json_string_value(json_object_get(req, "fragment"));

		if (!frag)
			return bad(a, "change add: no \"fragment\" string");
		return start_add(a, frag, name ? name : "fragment", ticket, deferred);
	}
	if (op && !strcmp(op, "remove")) {
		const char *kind = json_string_value(json_object_get(req, "kind"));

		if (!kind || !name || (strcmp(kind, "cell") && strcmp(kind, "flow")))
			return bad(a, "change remove: expected \"kind\" cell|flow and a \"name\"");
		return do_remove(a, kind, name);
	}
	return bad(a, "change: \"op\" must be \"add\" or \"remove\"");
}

int admit_create(struct rtvio_config *live, struct dp *dp, const struct admit_ops *ops,
		 void *ctx, struct admit **out)
{
	struct admit *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0) {
		free(a);
		return -errno;
	}
	a->live = live;
	a->dp = dp;
	a->ops = *ops;
	a->ctx = ctx;
	*out = a;
	return 0;
}

void admit_destroy(struct admit *a)
{
	if (!a)
		return;
	if (a->busy) {
		pthread_join(a->th, NULL);
		rtvio_config_free(&a->cand);
		free(a->text);
	}
	close(a->efd);
	free(a);
}

int admit_fd(const struct admit *a)
{
	return a->efd;
}

uint64_t admit_generation(const struct admit *a)
{
	return a->generation;
}

bool admit_busy(const struct admit *a)
{
	return a->busy;
}
