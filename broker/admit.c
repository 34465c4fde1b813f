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
	char *text;                  /* the fragment */
	char name[RTVIO_PATH_MAX];   /* what the loader's messages call the fragment */
	enum verdict_kind kind;
	char why[2048];
	struct rtvio_config cand;    /* the configuration after the change */
	int *slots;                  /* the slots an add filled, one per cell slot: so that
				      * a failed add can take them all back (add_cells) */
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

/* What a fragment cannot carry, found in the candidate: a section that is in the
 * candidate but not in the live configuration came from the fragment, which is
 * loaded first, so its line is the fragment's own. */
static int fragment_rules(const struct rtvio_config *live, const struct rtvio_config *cand,
			  const char *name, char *err, size_t errlen)
{
	/* The dump the fragment is loaded with carries no [platform] (admit_candidate):
	 * any in the candidate is the fragment's, and the analysis is to judge by the
	 * broker's own costs, not by the client's. */
	if (cand->platform.line) {
		snprintf(err, errlen, "%s:%d: [platform]: a fragment cannot change the platform "
			 "costs (the analysis uses the broker's own)", name, cand->platform.line);
		return -EINVAL;
	}
	/* Remotes are fixed at start: the broker's gateways and their DDS links are
	 * set up with them. */
	for (int i = 0; i < cand->nremotes; i++) {
		if (rtvio_config_find_remote(live, cand->remotes[i].name) >= 0)
			continue;
		snprintf(err, errlen, "%s:%d: [remote %s]: a remote cannot be added at run time "
			 "(remotes are fixed at start)", name, cand->remotes[i].line,
			 cand->remotes[i].name);
		return -EINVAL;
	}
	/* The host endpoint is opened at start only: an added one would get an
	 * ordinary vhost-user socket with CID 2. */
	for (int i = 0; i < cand->ncells; i++) {
		if (!cand->cells[i].host || rtvio_config_find_cell(live, cand->cells[i].name) >= 0)
			continue;
		snprintf(err, errlen, "%s:%d: [host %s]: a host endpoint cannot be added at run "
			 "time (it is opened at start)", name, cand->cells[i].line,
			 cand->cells[i].name);
		return -EINVAL;
	}
	return 0;
}

/* Vacant slot after `after`, in the order add_cells fills them, or -1. */
static int next_vacant(const struct rtvio_config *l, int after)
{
	for (int i = after + 1; i < l->ncells; i++)
		if (l->cells[i].vacant)
			return i;
	return -1;
}

/* On several cores a cell without broker_core is served by the core of its slot
 * (model_cell_core), but the candidate numbers cells otherwise (the fragment first,
 * vacant slots left out): every cell is given the core it has, or will have in the
 * vacant slot add_cells gives it, so that the analysis charges the partition the
 * data plane runs. */
static void place_cells(const struct rtvio_config *live, struct rtvio_config *cand)
{
	int n = live->broker.ncores, s = -1;

	if (n <= 1)
		return;
	for (int i = 0; i < cand->ncells; i++) {
		struct rtvio_cell_cfg *c = &cand->cells[i];
		int l = rtvio_config_find_cell(live, c->name);

		if (l >= 0) {
			c->broker_core = model_cell_core(live, l);
			continue;
		}
		s = next_vacant(live, s);
		if (s < 0)
			return; /* no room: check_room refuses the change */
		if (c->broker_core < 0)
			c->broker_core = s % n;
	}
}

int admit_candidate(const struct rtvio_config *live, const char *frag, const char *name,
		    struct rtvio_config *cand, char *err, size_t errlen)
{
	struct rtvio_config view = *live;
	size_t fl = strlen(frag), rl;
	char *rest, *text;
	int rc;

	memset(cand, 0, sizeof(*cand));
	/* Without its [platform]: the candidate gets the broker's below. */
	memset(&view.platform, 0, sizeof(view.platform));
	rest = live_dump(&view, false);
	text = rest ? malloc(fl + (rl = strlen(rest)) + 2) : NULL;
	if (!text) {
		free(rest);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* The fragment first: the loader's line numbers are the fragment's own. */
	memcpy(text, frag, fl);
	text[fl] = '\n';
	memcpy(text + fl + 1, rest, rl + 1);
	free(rest);
	rc = rtvio_config_parse(text, name, cand, err, errlen);
	free(text);
	if (!rc)
		rc = fragment_rules(live, cand, name, err, errlen);
	if (rc) {
		rtvio_config_free(cand);
		memset(cand, 0, sizeof(*cand));
		return rc;
	}
	cand->platform = live->platform;
	/* The analysis charges the apply step at the broker's capacity (the dump left
	 * max_cells and max_flows out: they are not the fragment's to set). */
	cand->broker.max_cells = live->broker.max_cells;
	cand->broker.max_flows = live->broker.max_flows;
	place_cells(live, cand);
	return 0;
}

static void judge(struct admit *a)
{
	struct an_verdict v;
	int nc, nf, rc;

	if (admit_candidate(a->live, a->text, a->name, &a->cand, a->why, sizeof(a->why))) {
		a->kind = ADMIT_BAD;
		return;
	}
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

/* Takes back the cells add_cells put in slots[0..n-1]: their sockets closed, their
 * data-plane slots and configuration slots freed, so a failed add leaves all as it
 * was. */
static void undo_cells(struct admit *a, const int *slots, int n)
{
	while (n-- > 0) {
		a->ops.cell_close(a->ctx, (unsigned int)slots[n]);
		dp_cell_remove(a->dp, (unsigned int)slots[n]);
		free_cell_slot(a, slots[n]);
	}
}

/* The new cells into vacant slots (slots[]: where, for undo_cells; check_room made
 * sure there are enough). Stops at the first that cannot be opened, with the ones
 * before it taken back too. */
static int add_cells(struct admit *a, int *slots, int *n)
{
	*n = 0;
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
			undo_cells(a, slots, *n);
			*n = 0;
			return rc;
		}
		slots[(*n)++] = s;
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
		/* Its remote too: the candidate's indexes are not the live array's (the
		 * fragment adds none, fragment_rules). */
		if (fc.rem.remote >= 0)
			fc.rem.remote = rtvio_config_find_remote(a->live,
								 a->cand.remotes[fc.rem.remote].name);
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

	if (a->kind == ADMIT_BAD) {
		/* Nothing changed to report: the list is the reply's to free. */
		json_decref(changed);
		r = json_pack("{s:b, s:b, s:s}", "ok", 0, "bad_input", 1, "error", a->why);
	} else
		r = json_pack("{s:b, s:b, s:I, s:s, s:o}", "ok", 1, "admitted", admitted,
			      "generation", (json_int_t)a->generation, "reasons",
			      admitted ? "" : a->why, "changed", changed ? changed : json_array());
	return r;
}

static json_t *apply_add(struct admit *a)
{
	json_t *changed = json_array();
	int n;

	if (a->kind != ADMIT_YES)
		return reply(a, false, changed);
	if (check_room(a)) {
		a->kind = ADMIT_NO;
		return reply(a, false, changed);
	}
	if (add_cells(a, a->slots, &n)) {
		a->kind = ADMIT_NO;
		return reply(a, false, changed);
	}
	for (int i = 0; i < n; i++)
		json_array_append_new(changed, json_pack("{s:s}", "cell",
							 a->live->cells[a->slots[i]].name));
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

/* The remote whose gateway is cell s, or -1 (a remote has its own gateway). */
static int gateway_of(const struct rtvio_config *l, int s)
{
	for (int r = 0; r < l->nremotes; r++)
		if (l->remotes[r].gateway == s)
			return r;
	return -1;
}

/* "x, y": the flows through remote r into buf; how many there are. */
static int remote_flows(const struct rtvio_config *l, int r, char *buf, size_t len)
{
	size_t n = 0;
	int cnt = 0;

	buf[0] = '\0';
	for (int f = 0; f < l->nflows; f++) {
		if (l->flows[f].vacant || l->flows[f].rem.remote != r)
			continue;
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", cnt ? ", " : "",
					      l->flows[f].name);
		cnt++;
	}
	return cnt;
}

/* A remote whose gateway cell has gone goes too (nothing could carry its flows),
 * the other remotes' flows renumbered. Only the loop thread, between runs. */
static void drop_remote(struct rtvio_config *l, int r)
{
	memmove(&l->remotes[r], &l->remotes[r + 1],
		(size_t)(l->nremotes - r - 1) * sizeof(*l->remotes));
	l->nremotes--;
	for (int f = 0; f < l->nflows; f++)
		if (!l->flows[f].vacant && l->flows[f].rem.remote > r)
			l->flows[f].rem.remote--;
}

/* A gateway cell is removed only once no flow goes through its remote: removing it
 * would take the flows of another broker's cells with it. 0, or -EBUSY with why. */
static int check_gateway(struct admit *a, int s)
{
	char flows[512];
	int r = gateway_of(a->live, s);

	if (r < 0 || !remote_flows(a->live, r, flows, sizeof(flows)))
		return 0;
	snprintf(a->why, sizeof(a->why), "cell '%s' is the gateway of remote '%s', which flows "
		 "%s use: remove them first", a->live->cells[s].name, a->live->remotes[r].name,
		 flows);
	return -EBUSY;
}

static void remove_cell(struct admit *a, int s, json_t *changed)
{
	int r = gateway_of(a->live, s);

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
	if (r >= 0)
		drop_remote(a->live, r);
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
	if (cell && check_gateway(a, i)) {
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

/* Starts the worker on the fragment (it loads it with the live configuration). */
static json_t *start_add(struct admit *a, const char *frag, const char *name, uint64_t ticket,
			 bool *deferred)
{
	a->text = strdup(frag);
	if (!a->text)
		return bad(a, "out of memory");
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
	int rc;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	/* The capacity is fixed at start: the apply step allocates nothing. */
	a->slots = calloc((size_t)live->ncells + 1, sizeof(*a->slots));
	if (!a->slots) {
		free(a);
		return -ENOMEM;
	}
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0) {
		rc = -errno;
		free(a->slots);
		free(a);
		return rc;
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
	free(a->slots);
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
