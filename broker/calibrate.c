/* `rtvio calibrate`: from samples to platform values (the arithmetic; no I/O but the
 * writers, no measurement). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "calibrate.h"

int cal_dist_make(double *v, size_t n, size_t stalled, bool checked, struct cal_dist *out)
{
	struct summary s;
	int r;

	memset(out, 0, sizeof(*out));
	out->stalled = stalled;
	out->stall_checked = checked;
	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(v[i]) || v[i] < 0)
			return -EINVAL;
	}
	r = fit_summarize(v, n, &s);
	if (r)
		return r;
	out->n = n;
	out->min_ns = s.min;
	out->median_ns = s.median;
	out->p999_ns = fit_percentile_sorted(v, n, CAL_PERCENTILE);
	out->max_ns = s.max;
	return 0;
}

static int group_of(struct cal_steps_fit *f, uint32_t bytes, bool last)
{
	for (size_t i = 0; i < f->ngroups; i++) {
		if (f->g[i].bytes == bytes && f->g[i].last == last)
			return (int)i;
	}
	if (f->ngroups == CAL_MAX_GROUPS)
		return -EINVAL;
	f->g[f->ngroups].bytes = bytes;
	f->g[f->ngroups].last = last;
	return (int)f->ngroups++;
}

/* The per-kind summary points of the fit: (bytes, p99.9, median) of every non-last
 * kind with kept steps. */
struct fit_points {
	double x[CAL_MAX_GROUPS], y[CAL_MAX_GROUPS], m[CAL_MAX_GROUPS];
	size_t n, nlast;	/* non-last kinds with kept steps; last kinds likewise */
};

/* Per kind: a distribution of its kept steps (v is scratch for n values). A kind
 * whose every step was stalled keeps n = 0 and takes no part in the fit. */
static int group_dists(const struct cal_step *s, size_t n, struct cal_steps_fit *out,
		       double *v, struct fit_points *pt)
{
	for (size_t g = 0; g < out->ngroups; g++) {
		struct cal_group *cg = &out->g[g];
		size_t k = 0, st = 0;
		int ret;

		for (size_t i = 0; i < n; i++) {
			if (s[i].bytes != cg->bytes || s[i].last != cg->last)
				continue;
			if (s[i].stalled)
				st++;
			else
				v[k++] = s[i].ns;
		}
		if (!k) {
			cg->d.stalled = st;
			cg->d.stall_checked = true;
			continue;
		}
		ret = cal_dist_make(v, k, st, true, &cg->d);
		if (ret)
			return ret;
		if (cg->last) {
			pt->nlast++;
		} else {
			pt->x[pt->n] = cg->bytes;
			pt->m[pt->n] = cg->d.median_ns;
			pt->y[pt->n++] = cg->d.p999_ns;
		}
	}
	return 0;
}

/* The lines through the points and the slope taken from them. */
static int fit_slope(const struct fit_points *pt, struct cal_steps_fit *out)
{
	int ret = fit_linear(pt->x, pt->y, pt->n, &out->envelope);

	if (!ret)
		ret = fit_linear(pt->x, pt->m, pt->n, &out->medians);
	if (ret)
		return ret;
	/* Any positive slope gives a sound line once it is raised above every size's
	 * p99.9 (fit_overheads); the envelope's is the tighter one. A burst of
	 * interference on the small sizes can tilt the envelope flat, while the medians
	 * still show what a byte costs. */
	if (out->envelope.slope > 0) {
		out->ns_per_byte = out->envelope.slope;
	} else if (out->medians.slope > 0) {
		out->ns_per_byte = out->medians.slope;
		out->slope_from_medians = true;
	} else {
		return -EDOM;
	}
	return 0;
}

/* Keeps the fitted slope and raises the line until no size's p99.9 lies above it:
 * the analysis may then charge e(b) for any measured chunk. What a last step costs
 * beyond that line is the packet overhead. */
static void fit_overheads(const struct fit_points *pt, struct cal_steps_fit *out)
{
	out->chunk_overhead_ns = 0;
	for (size_t i = 0; i < pt->n; i++) {
		double over = pt->y[i] - pt->x[i] * out->ns_per_byte;

		if (over > out->chunk_overhead_ns)
			out->chunk_overhead_ns = over;
	}
	out->packet_overhead_ns = 0;
	for (size_t g = 0; g < out->ngroups; g++) {
		const struct cal_group *cg = &out->g[g];
		double over;

		if (!cg->last || !cg->d.n)
			continue;
		over = cg->d.p999_ns - (out->chunk_overhead_ns + cg->bytes * out->ns_per_byte);
		if (over > out->packet_overhead_ns)
			out->packet_overhead_ns = over;
	}
}

int cal_fit_steps(const struct cal_step *s, size_t n, struct cal_steps_fit *out)
{
	double *x = NULL, *y = NULL, *v = NULL;
	struct fit_points pt = { .n = 0 };
	size_t nraw = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (group_of(out, s[i].bytes, s[i].last) < 0)
			return -EINVAL;
	}
	x = malloc(n * sizeof(*x));
	y = malloc(n * sizeof(*y));
	v = malloc(n * sizeof(*v));
	if (!x || !y || !v) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i].stalled) {
			out->stalled++;
			continue;
		}
		out->n++;
		if (!s[i].last) {
			x[nraw] = s[i].bytes;
			y[nraw++] = s[i].ns;
		}
	}
	ret = group_dists(s, n, out, v, &pt);
	if (!ret && (pt.n < 2 || !pt.nlast))
		ret = -EINVAL;
	if (!ret)
		ret = fit_linear(x, y, nraw, &out->raw);
	if (!ret)
		ret = fit_slope(&pt, out);
	if (!ret)
		fit_overheads(&pt, out);
out:
	free(x);
	free(y);
	free(v);
	return ret;
}

/* Rounds up, ignoring the last bits of floating-point error (200 * 1.1 is 220). */
static uint64_t ceil_ns(double ns)
{
	double c = ceil(ns - 1e-6);

	return c <= 0 ? 0 : (uint64_t)c;
}

static bool dist_ok(const struct cal_dist *d)
{
	return d->n > 0 && isfinite(d->max_ns);
}

int cal_platform(const struct cal_results *r, bool poll, struct rtvio_platform_cfg *out)
{
	int m = poll ? CAL_POLL : CAL_SLEEP;
	double bw;

	memset(out, 0, sizeof(*out));
	if (!(r->steps.ns_per_byte > 0) || !dist_ok(&r->ingest_step) || !dist_ok(&r->batch_gap) ||
	    !dist_ok(&r->ingest_lat[m]) || !dist_ok(&r->notify_lat[CAL_SLEEP]) ||
	    !dist_ok(&r->wake_write))
		return -EDOM;
	bw = floor(1e9 / (r->steps.ns_per_byte * CAL_MARGIN));
	if (!(bw >= 1) || bw > 1e18)
		return -EDOM;
	out->copy_bandwidth = (uint64_t)bw;
	out->chunk_overhead = ceil_ns(r->steps.chunk_overhead_ns * CAL_MARGIN);
	/* A piece's last step may wake two cells: its receiver, and the sender whose
	 * packet it completes. */
	out->packet_overhead = ceil_ns((r->steps.packet_overhead_ns + 2 * r->wake_write.p999_ns) *
				       CAL_MARGIN);
	out->ingest_latency = ceil_ns(r->ingest_lat[m].max_ns);
	/* Receivers sleep whatever the broker does: rtvio's process cells wait in
	 * poll() and Linux guests in their interrupt handler, so the notification
	 * always has a sleeping thread to wake. */
	out->notify_latency = ceil_ns(r->notify_lat[CAL_SLEEP].max_ns);
	/* Per step (and per pass, per batch) costs at their p99.9, like the copy
	 * steps: they recur thousands of times in one busy window, and their maxima are
	 * the broker's own cpu stalled by the host, which the probe on the other cpu
	 * cannot see and which no per-step bound on a VM could cover. Latencies, paid
	 * once per message, keep their maxima. */
	out->ingest_step = ceil_ns(r->ingest_step.p999_ns);
	out->batch_gap = ceil_ns(r->batch_gap.p999_ns);
	out->present = RTVIO_PLAT_ALL;
	/* Applied once per window (docs/analysis.md): its maximum, like a latency, in
	 * whole ns per slot visit (rounded up). */
	/* The wake-up inside packet_overhead, rounded down with the same margin: the
	 * analysis subtracts it (twice) from packet_overhead for what runs under the
	 * multi-core data plane's mutex, so a smaller value is the safe side. */
	out->wake_write = (uint64_t)floor(r->wake_write.p999_ns * CAL_MARGIN);
	out->present |= RTVIO_PLAT_WAKE_WRITE;
	if (dist_ok(&r->change_step)) {
		out->change_step = ceil_ns(r->change_step.max_ns);
		out->present |= RTVIO_PLAT_CHANGE_STEP;
	}
	/* The vhost-user work is charged per message a budget lets through, at most N
	 * per period: each message's maximum, like a latency. */
	if (dist_ok(&r->vhu_msg)) {
		out->vhost_user_msg = ceil_ns(r->vhu_msg.max_ns);
		out->present |= RTVIO_PLAT_VHOST_USER_MSG;
	}
	/* A heavy message: the table change and, for a running cell, its device's
	 * stop and start, each at its maximum; a connection's teardown (its descriptors
	 * closed, its table handed over, and the data plane's detach, which the stop
	 * and start include) takes a heavy token too, so the larger of the two. */
	if (dist_ok(&r->vhu_map) && dist_ok(&r->vhu_dev) && dist_ok(&r->vhu_down)) {
		out->vhost_user_map = ceil_ns(fmax(r->vhu_map.max_ns, r->vhu_down.max_ns) +
					      r->vhu_dev.max_ns);
		out->present |= RTVIO_PLAT_VHOST_USER_MAP;
	}
	/* The page fault is measured for the record only: the data path takes none on
	 * cell memory (docs/analysis.md, "Page faults on cell memory"). */
	return 0;
}

static double steps_max(const struct cal_steps_fit *f)
{
	double m = 0;

	for (size_t i = 0; i < f->ngroups; i++) {
		if (f->g[i].d.n && f->g[i].d.max_ns > m)
			m = f->g[i].d.max_ns;
	}
	return m;
}

static int dist_comment(FILE *f, const char *what, const struct cal_dist *d)
{
	char stalls[64];

	if (d->stall_checked)
		snprintf(stalls, sizeof(stalls), "%zu excluded as host stalls", d->stalled);
	else
		snprintf(stalls, sizeof(stalls), "no stall probe (see docs/platform.md)");
	return fprintf(f, ";   %-22s max %.0f ns, p99.9 %.0f ns, median %.0f ns; %zu samples, %s\n",
		       what, d->max_ns, d->p999_ns, d->median_ns, d->n, stalls) < 0 ? -EIO : 0;
}

int cal_write_section(FILE *f, const struct cal_results *r, const struct cal_meta *m, bool poll)
{
	struct rtvio_platform_cfg p;
	int mode = poll ? CAL_POLL : CAL_SLEEP;
	int ret = cal_platform(r, poll, &p);

	if (ret)
		return ret;
	if (fprintf(f,
		    "; Written by `rtvio calibrate%s` on %s\n"
		    "; on: %s, Linux %s; data plane on cpu %d, cells on cpu %d; copy = %s\n"
		    "; how: the real data plane against synthetic process cells. Latencies (paid\n"
		    ";   once per message): the largest sample that did not overlap a host stall\n"
		    ";   seen by a gap probe (a bound, not a typical figure). Costs paid per step,\n"
		    ";   pass or batch (ingest_step, batch_gap, copy steps, wake-ups): their\n"
		    ";   p99.9, since their maxima are the broker's own cpu stalled by the host\n"
		    ";   (shown below); copy costs as a line with the per-byte slope fitted to\n"
		    ";   each size's p99.9 step time, raised above every size's p99.9, plus a\n"
		    ";   %.0f %% margin. Measured without memory interference: run `rtvio hog` on\n"
		    ";   the other cpus while calibrating to include it. ingest_latency is for\n"
		    ";   poll = %s; notify_latency wakes a sleeping receiver, as cells wait.\n",
		    m->quick ? " --quick" : "", m->date, m->cpu_model, m->kernel, m->broker_cpu,
		    m->other_cpu, m->copy ? m->copy : "normal", (CAL_MARGIN - 1) * 100,
		    poll ? "yes" : "no") < 0)
		return -EIO;
	if (fprintf(f,
		    ";   copy steps: %zu samples (%zu excluded as host stalls); fit of non-last\n"
		    ";   steps against bytes: %.4f ns/B + %.0f ns, r^2 %.4f over %zu steps;\n"
		    ";   per-size %s: %.4f ns/B (r^2 %.4f), line raised to + %.0f ns\n"
		    ";   (above every size's p99.9);\n"
		    ";   a packet's last step: at most %.0f ns more than that line (p99.9);\n"
		    ";   largest step seen: %.0f ns; packet_overhead adds two wake-ups of a\n"
		    ";   waiting cell (receiver and sender), wake_write's p99.9 each\n",
		    r->steps.n, r->steps.stalled, r->steps.raw.slope, r->steps.raw.intercept,
		    r->steps.raw.r2, r->steps.raw.n,
		    r->steps.slope_from_medians ? "medians (p99.9 not increasing)" : "p99.9",
		    r->steps.ns_per_byte,
		    r->steps.slope_from_medians ? r->steps.medians.r2 : r->steps.envelope.r2,
		    r->steps.chunk_overhead_ns, r->steps.packet_overhead_ns,
		    steps_max(&r->steps)) < 0)
		return -EIO;
	if (fprintf(f, ";   ingest pass over %u packets on one TX ring; a pass costs about\n"
		    ";   %.0f ns + %.1f ns per packet (fit over 1, 32 and %u packets, r^2 %.3f):\n",
		    r->ingest_ring, r->ingest_fit.intercept, r->ingest_fit.slope, r->ingest_ring,
		    r->ingest_fit.r2) < 0)
		return -EIO;
	if ((ret = dist_comment(f, "ingest_step", &r->ingest_step)) ||
	    (ret = dist_comment(f, "batch_gap", &r->batch_gap)) ||
	    (ret = dist_comment(f, "ingest_latency poll", &r->ingest_lat[CAL_POLL])) ||
	    (ret = dist_comment(f, "ingest_latency sleep", &r->ingest_lat[CAL_SLEEP])) ||
	    (ret = dist_comment(f, "notify_latency poll", &r->notify_lat[CAL_POLL])) ||
	    (ret = dist_comment(f, "notify_latency sleep", &r->notify_lat[CAL_SLEEP])) ||
	    (ret = dist_comment(f, "wake_write", &r->wake_write)))
		return ret;
	if (fprintf(f, ";   %-22s max %.3f ns, p99.9 %.3f ns, median %.3f ns per slot visit; "
		    "%zu samples, %zu excluded as host stalls\n", "change_step",
		    r->change_step.max_ns, r->change_step.p999_ns, r->change_step.median_ns,
		    r->change_step.n, r->change_step.stalled) < 0)
		return -EIO;
	if ((ret = dist_comment(f, "vhost_user_msg", &r->vhu_msg)) ||
	    (ret = dist_comment(f, "vhost_user_map table", &r->vhu_map)) ||
	    (ret = dist_comment(f, "vhost_user_map teardown", &r->vhu_down)) ||
	    (ret = dist_comment(f, "vhost_user_map device", &r->vhu_dev)) ||
	    (ret = dist_comment(f, "page_fault", &r->page_fault)))
		return ret;
	if (fprintf(f,
		    ";   stalls recorded (host, or other load on a probed cpu): %zu, longest\n"
		    ";   %llu ns; idle cpus: %s; this section: %s values\n",
		    r->gaps, (unsigned long long)r->longest_gap_ns,
		    m->pm_qos ? m->pm_qos : "not held awake", mode == CAL_POLL ? "poll" : "sleep") < 0)
		return -EIO;
	return rtvio_platform_write(f, &p);
}

static json_t *dist_json(const struct cal_dist *d)
{
	return json_pack("{s:I, s:I, s:b, s:f, s:f, s:f, s:f}", "samples", (json_int_t)d->n,
			 "stalled", (json_int_t)d->stalled, "stall_checked", d->stall_checked,
			 "min_ns", d->min_ns, "median_ns", d->median_ns, "p999_ns", d->p999_ns,
			 "max_ns", d->max_ns);
}

/* slope_key names the slope's unit: "ns_per_byte", "ns_per_packet". */
static json_t *fit_json(const struct linfit *l, const char *slope_key)
{
	return json_pack("{s:f, s:f, s:f, s:I}", slope_key, l->slope, "intercept_ns",
			 l->intercept, "r2", l->r2, "n", (json_int_t)l->n);
}

json_t *cal_json(const struct cal_results *r, const struct cal_meta *m, bool poll)
{
	static const char value_used[] =
		"latencies: max of samples not overlapping a host stall; ingest_step, "
		"batch_gap, wake-ups: p99.9; copy costs: p99.9 envelope plus margin; "
		"vhost_user_msg, vhost_user_map: max; page_fault: recorded, not a value";
	struct rtvio_platform_cfg p;
	json_t *groups, *doc;

	if (cal_platform(r, poll, &p))
		return NULL;
	groups = json_array();
	if (!groups)
		return NULL;
	for (size_t i = 0; i < r->steps.ngroups; i++) {
		const struct cal_group *g = &r->steps.g[i];

		if (json_array_append_new(groups, json_pack("{s:I, s:b, s:o}", "bytes",
							    (json_int_t)g->bytes, "last", g->last,
							    "ns", dist_json(&g->d)))) {
			json_decref(groups);
			return NULL;
		}
	}
	doc = json_pack("{s:s, s:s, s:s, s:i, s:i, s:b, s:f, s:s,"
			" s:{s:I, s:I, s:o, s:o, s:o, s:s, s:f, s:f, s:o},"
			" s:{s:I, s:o, s:o}, s:o, s:o,"
			" s:{s:o, s:o}, s:{s:o, s:o}, s:o, s:s,"
			" s:{s:I, s:I},"
			" s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
			"date", m->date, "cpu_model", m->cpu_model, "kernel", m->kernel,
			"broker_cpu", m->broker_cpu, "other_cpu", m->other_cpu, "quick", m->quick,
			"seconds", m->seconds, "value_used", value_used,
			"steps", "samples", (json_int_t)r->steps.n, "stalled",
			(json_int_t)r->steps.stalled, "fit", fit_json(&r->steps.raw, "ns_per_byte"),
			"envelope", fit_json(&r->steps.envelope, "ns_per_byte"),
			"medians", fit_json(&r->steps.medians, "ns_per_byte"), "slope_from",
			r->steps.slope_from_medians ? "medians" : "envelope", "chunk_overhead_ns",
			r->steps.chunk_overhead_ns, "packet_overhead_ns", r->steps.packet_overhead_ns,
			"groups", groups,
			"ingest_step", "ring_packets", (json_int_t)r->ingest_ring, "ns",
			dist_json(&r->ingest_step), "per_packet", fit_json(&r->ingest_fit, "ns_per_packet"),
			"batch_gap", dist_json(&r->batch_gap),
			"change_step_per_slot", dist_json(&r->change_step),
			"ingest_latency", "poll", dist_json(&r->ingest_lat[CAL_POLL]), "sleep",
			dist_json(&r->ingest_lat[CAL_SLEEP]),
			"notify_latency", "poll", dist_json(&r->notify_lat[CAL_POLL]), "sleep",
			dist_json(&r->notify_lat[CAL_SLEEP]),
			"wake_write", dist_json(&r->wake_write),
			"idle_cpus", m->pm_qos ? m->pm_qos : "not held awake",
			"host_stalls", "count", (json_int_t)r->gaps, "longest_ns",
			(json_int_t)r->longest_gap_ns,
			"platform", "copy_bandwidth_Bps", (json_int_t)p.copy_bandwidth,
			"chunk_overhead_ns", (json_int_t)p.chunk_overhead, "packet_overhead_ns",
			(json_int_t)p.packet_overhead, "ingest_latency_ns",
			(json_int_t)p.ingest_latency, "notify_latency_ns", (json_int_t)p.notify_latency,
			"ingest_step_ns", (json_int_t)p.ingest_step, "batch_gap_ns",
			(json_int_t)p.batch_gap, "change_step_ns", (json_int_t)p.change_step);
	if (doc) {
		json_t *pl = json_object_get(doc, "platform");

		json_object_set_new(doc, "vhost_user_msg", dist_json(&r->vhu_msg));
		json_object_set_new(doc, "vhost_user_map", dist_json(&r->vhu_map));
		json_object_set_new(doc, "vhost_user_teardown", dist_json(&r->vhu_down));
		json_object_set_new(doc, "vhost_user_device", dist_json(&r->vhu_dev));
		json_object_set_new(doc, "page_fault", dist_json(&r->page_fault));
		json_object_set_new(pl, "vhost_user_msg_ns", json_integer((json_int_t)p.vhost_user_msg));
		json_object_set_new(pl, "vhost_user_map_ns", json_integer((json_int_t)p.vhost_user_map));
		json_object_set_new(doc, "poll", json_boolean(poll));
		json_object_set_new(doc, "copy", json_string(m->copy ? m->copy : "normal"));
	}
	return doc;
}

void cal_meta_fill(struct cal_meta *m)
{
	time_t t = time(NULL);
	struct tm tm;
	struct utsname u;
	FILE *f;
	char line[256];

	strcpy(m->date, "unknown date");
	if (gmtime_r(&t, &tm))
		strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strcpy(m->kernel, "unknown");
	if (!uname(&u))
		snprintf(m->kernel, sizeof(m->kernel), "%s", u.release);
	strcpy(m->cpu_model, "unknown cpu");
	f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !c)
			continue;
		c++;
		while (*c == ' ' || *c == '\t')
			c++;
		c[strcspn(c, "\n")] = 0;
		snprintf(m->cpu_model, sizeof(m->cpu_model), "%s", c);
		break;
	}
	fclose(f);
}
