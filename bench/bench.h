/* `rtvio bench`: shared declarations of the scenario runner, the transport peers and
 * the report writer. Not real-time code except the peers' send and receive loops. */
#ifndef RTVIO_BENCH_BENCH_H
#define RTVIO_BENCH_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_SCHEMA "rtvio-bench/1"

/* `rtvio bench peer ...`: one end of one measured transport (hidden sub-mode that
 * the scenarios start as separate processes). */
int bench_peer_main(int argc, char **argv);

/* `rtvio bench relay DIR CPU PRIO NAME...`: a Unix-socket relay standing where the
 * broker stands (bench/relay.c). */
int bench_relay_main(int argc, char **argv);

/* The iceoryx transport (bench/peer_iox.c); -ENOTSUP when built without it. */
struct peer_args;
int bench_iox_available(void);
int bench_iox_send(const struct peer_args *a);
int bench_iox_recv(const struct peer_args *a);

/* The median of repeated runs (an array of result objects) by their number
 * `field` (a run without one counts as 0): that run's object, with every run's value
 * added to it as the array `runs_key`, in the order they ran; with no runs, a row
 * whose status is "no result". Takes the reference to runs, returns a new one. */
json_t *bench_median_run(json_t *runs, const char *field, const char *runs_key);

/* Report generation from a results document (schema BENCH_SCHEMA): writes
 * DIR/report.md, DIR/plots/<name>.dat and DIR/plots/plots.gp, and runs gnuplot on the
 * script unless run_gnuplot is false. Returns 0 or a negative errno; a missing
 * gnuplot is not an error (the report says so). */
int bench_write_report(const json_t *results, const char *dir, bool run_gnuplot);
struct rtvio_platform_cfg;
/* Records in sc the platform its bounds were judged by: "platform_source" (src, how
 * it was found) and "platform", its values as the [platform] section that `rtvio
 * analyze --platform` reads, so that a reader can redo any bound of the report
 * (platform_rec.c). */
void bench_set_platform(json_t *sc, const char *src, const struct rtvio_platform_cfg *plat);
/* "Platform judged by" and the [platform] values a scenario recorded
 * (bench_set_platform), for the sections whose bounds they decide (report.c). */
void bench_report_platform(FILE *md, const json_t *sc);
/* The isa scenario's section of report.md (report_isa.c). */
void bench_report_isa(FILE *md, const json_t *sc);
/* The hostile scenario's section of report.md (report_hostile.c). */
void bench_report_hostile(FILE *md, const json_t *sc);
/* The locks scenario's section (report_locks.c). */
void bench_report_locks(FILE *md, const json_t *sc);
/* The remote scenario's section (report_remote.c). */
void bench_report_remote(FILE *md, const json_t *sc);
/* ddsperf ping's per-second round-trip lines summed up into r as one way (half):
 * latency_us {min, p50 (median of the seconds' medians), p99 and max (largest of
 * the seconds')}, messages, seconds_reported. 0, or -ENODATA when out has none. */
int bench_ddsperf_parse(const char *out, json_t *r);
/* The cores scenario's section of report.md (report_cores.c). */
void bench_report_cores(FILE *md, const json_t *sc);
/* The provision scenario's admission and clone tables (report_provision.c); its churn
 * runs are an ordinary latency section. */
void bench_report_provision(FILE *md, const json_t *sc);

#endif
