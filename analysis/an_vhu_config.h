/* The vhost-user term of a configuration (analysis/an_vhu.c, docs/analysis.md
 * "vhost-user budget"). */
#ifndef RTVIO_ANALYSIS_AN_VHU_CONFIG_H
#define RTVIO_ANALYSIS_AN_VHU_CONFIG_H

#include "analysis.h"

struct rtvio_config;
struct rtvio_platform_cfg;

/* The work all cells together may cost the broker's loop at their full budgets. */
void an_vhu_of_config(const struct rtvio_config *cfg, const struct rtvio_platform_cfg *plat,
		      struct an_vhu *v);

#endif
