/* The analysis's input for a loaded configuration: the broker (struct an_broker) and
 * one struct an_flow per configured flow, plus the default best-effort class under
 * `default = best-effort`. Ranks, sizes and pools come from the broker's model
 * (model/model.h), the one the data plane runs with; this file only translates. */
#ifndef RTVIO_ANALYSIS_FROM_CONFIG_H
#define RTVIO_ANALYSIS_FROM_CONFIG_H

#include <stddef.h>

#include "analysis.h"

struct model;
struct rtvio_config;
struct rtvio_platform_cfg;

/* Name of the default best-effort class's entry. */
#define AN_DEFAULT_CLASS_NAME "(default best-effort)"

/* The host bridge's pass (model_host_pass) in ns under b's costs without it
 * (an_host_gap); 0 without a [host]. an_input_from_config adds it to batch_gap. */
uint64_t an_host_gap_of_config(const struct rtvio_config *cfg, const struct an_broker *b);

/* The analysis's policy for the broker's. */
enum an_policy an_policy_of_config(const struct rtvio_config *cfg);

/* Fills *b from cfg, m and the platform costs plat (all seven present), and fl[]
 * (room for cfg->nflows + 1 entries) with the flows in configuration order, each
 * with the broker's priority (m's dense rank; 0 for best-effort), then the default
 * best-effort class when cfg has it. Returns the number of entries of fl[] filled. */
size_t an_input_from_config(const struct rtvio_config *cfg, const struct model *m,
			    const struct rtvio_platform_cfg *plat, struct an_broker *b,
			    struct an_flow *fl);

#endif
