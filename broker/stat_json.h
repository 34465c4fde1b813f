/* The control socket's `stat` answer, built from a running broker (stat_json.c). */
#ifndef RTVIO_BROKER_STAT_JSON_H
#define RTVIO_BROKER_STAT_JSON_H

#include <jansson.h>

#include "daemon.h"

/* A new JSON document, or NULL when out of memory. Call between dp_run calls, in the
 * broker's thread, as every statistics accessor. */
json_t *broker_stat_json(const struct broker *b);

#endif
