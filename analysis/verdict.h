/* Whether a loaded configuration is schedulable, and if not, which flows miss and by
 * how much: the question the broker asks at start (and admission control before a
 * change), with the same model and analysis `rtvio analyze` uses. */
#ifndef RTVIO_ANALYSIS_VERDICT_H
#define RTVIO_ANALYSIS_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

struct rtvio_config;

struct an_verdict {
	bool overload;      /* no bound at all: the analysis' status said why */
	unsigned nmiss;     /* real-time flows whose bound exceeds their deadline */
	char text[1024];    /* one line per problem, for a log or an error message */
};

/* Analyses cfg with its own [platform] costs. Returns 0 when every real-time flow meets
 * its deadline, 1 when not (v says which and by how much), -ENODATA when the config
 * lacks platform costs (v->text names the missing ones), -EINVAL or -ENOMEM. */
int an_config_verdict(const struct rtvio_config *cfg, struct an_verdict *v);

#endif
