/* an_config_verdict: the config through the broker's model into the analysis, and the
 * flows that miss, named, with their bound against their deadline. */
#include "verdict.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis.h"
#include "config.h"
#include "from_config.h"
#include "mcore_config.h"
#include "model.h"

static void say(struct an_verdict *v, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	while (n < sizeof(v->text) && v->text[n])
		n++;
	if (n >= sizeof(v->text) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(v->text + n, sizeof(v->text) - n, fmt, ap);
	va_end(ap);
}

static void list_misses(struct an_verdict *v, const struct an_flow *fl,
			const struct an_flow_result *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fl[i].best_effort || out[i].schedulable)
			continue;
		v->nmiss++;
		if (!out[i].bounded)
			say(v, "flow %s: no bound (deadline %.3f ms)\n", fl[i].name,
			    (double)fl[i].deadline / 1e6);
		else
			say(v, "flow %s: bound %.3f ms > deadline %.3f ms (by %.3f ms)\n",
			    fl[i].name, (double)out[i].latency / 1e6,
			    (double)fl[i].deadline / 1e6,
			    (double)(out[i].latency - fl[i].deadline) / 1e6);
	}
}

static int judge(const struct rtvio_config *cfg, const struct model *m, struct an_verdict *v,
		 struct an_flow *fl, struct an_flow_result *out)
{
	struct an_broker b;
	struct an_result res;
	struct an_mcore_input mi;
	const char *why;
	int bad, ret;
	size_t n = an_input_from_config(cfg, m, &cfg->platform, &b, fl);

	if (an_validate(fl, n, &b, &bad, &why)) {
		say(v, "%s%s%s\n", bad >= 0 ? fl[bad].name : "", bad >= 0 ? ": " : "", why);
		return -EINVAL;
	}
	/* On several broker cores, the m-core analysis (an_mcore.h); one core: an_analyze. */
	if (an_mcore_from_config(cfg, m, n, &mi))
		return -ENOMEM;
	ret = an_analyze_mcore(fl, n, &b, &mi.mc, &res, out, NULL);
	an_mcore_input_free(&mi);
	if (ret)
		return ret == -ENOMEM ? ret : -EINVAL;
	if (res.status != AN_OK) {
		v->overload = true;
		say(v, "no bound: %s\n", res.why ? res.why : an_status_name(res.status));
		return 1;
	}
	list_misses(v, fl, out, n);
	return res.schedulable ? 0 : 1;
}

int an_config_verdict(const struct rtvio_config *cfg, struct an_verdict *v)
{
	char missing[256];
	struct an_flow *fl = NULL;
	struct an_flow_result *out = NULL;
	struct model *m = NULL;
	int ret = -ENOMEM;

	*v = (struct an_verdict){ .overload = false };
	if (rtvio_platform_missing(&cfg->platform, missing, sizeof(missing))) {
		say(v, "no platform costs for %s", missing);
		return -ENODATA;
	}
	fl = calloc((size_t)cfg->nflows + 1, sizeof(*fl));
	out = calloc((size_t)cfg->nflows + 1, sizeof(*out));
	if (fl && out && !model_create(cfg, &m))
		ret = judge(cfg, m, v, fl, out);
	model_destroy(m);
	free(fl);
	free(out);
	return ret;
}
