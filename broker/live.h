/* The broker's live configuration: the loaded one copied into arrays of capacity
 * slots ([broker] max_cells, max_flows; default the number configured), so that a
 * cell or flow added at run time takes a vacant slot and every index the data plane
 * and the daemon hold stays valid (docs/broker.md, "Run-time changes").
 *
 * Written only by the broker's loop thread, at a quiescent point between data-plane
 * runs (admit.c); read by that thread and, while a change is being analysed, by the
 * admission worker, which runs only while nothing writes it. */
#ifndef RTVIO_BROKER_LIVE_H
#define RTVIO_BROKER_LIVE_H

#include <stdbool.h>
#include <stdio.h>

struct rtvio_config;

/* A deep copy of in with max_cells and max_flows slots (the extra ones vacant) and
 * broker.max_cells / max_flows set to those capacities. 0 or -ENOMEM. */
int live_create(const struct rtvio_config *in, struct rtvio_config *out);

/* The configuration in force without its vacant slots, as the loader would give
 * it, minus the cell drop_cell and every flow naming it and the flow drop_flow
 * (NULL: none). Workloads follow their flows, remotes their gateway cells (a remote
 * whose gateway is dropped goes too). On several cores every cell carries its core
 * as broker_core, so that renumbering moves no cell to another core. 0 or -ENOMEM;
 * free with rtvio_config_free. */
int live_compact(const struct rtvio_config *live, const char *drop_cell, const char *drop_flow,
		 struct rtvio_config *out);

/* The configuration in force as INI, loadable as a file (`rtvio config dump`), with
 * or without its capacity keys (max_cells, max_flows: admission leaves them out, so
 * that "no room" is its refusal, not a loader error): malloc()ed text, NULL when out
 * of memory. */
char *live_dump(const struct rtvio_config *live, bool capacity);

/* Present cells / flows. */
int live_count_cells(const struct rtvio_config *live);
int live_count_flows(const struct rtvio_config *live);

#endif
