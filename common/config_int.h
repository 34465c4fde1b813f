/* The configuration loader's private interface: the parser state that the loader
 * (config.c), the input reader (config_input.c), the sections (config_section.c and
 * one config_<section>.c per kind of section), the value parsers (config_value.c)
 * share. Not installed, not for users of config.h. */
#ifndef RTVIO_COMMON_CONFIG_INT_H
#define RTVIO_COMMON_CONFIG_INT_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum kind {
	K_NONE,
	K_BROKER,
	K_CELL,
	K_FLOW,
	K_WORKLOAD,
	K_PLATFORM,
	K_REMOTE,
	K_HOST,
	K_SKIP, /* a section rtvio_platform_load() does not read */
};

/* Keys of each section, in the order docs/config.md lists them (config.c). The index
 * of a key is its bit in the "seen" masks. */
extern const char *const cfg_broker_keys[];
extern const char *const cfg_cell_keys[];
extern const char *const cfg_flow_keys[];
extern const char *const cfg_workload_keys[];
extern const char *const cfg_platform_keys[];
extern const char *const cfg_remote_keys[];
extern const char *const cfg_host_keys[];

enum { CK_CID, CK_VM, CK_REGION, CK_MEMORY, CK_RX_BUF, CK_MAX_PACKET, CK_CPU, CK_RT_PRIORITY,
	CK_CONNECTIONS, CK_POLL_US, CK_ARCH, CK_KIND, CK_IMAGE, CK_ARGS, CK_CPU_MAX,
	CK_BROKER_CORE, CK_ALLOWANCE };
/* Enough lines for the keys of any section (config.c checks). */
#define CFG_MAX_KEYS 24
enum { FK_FROM, FK_TO, FK_TYPE, FK_SIZE, FK_PERIOD, FK_DEADLINE, FK_JITTER, FK_PRIORITY,
	FK_CLASS, FK_COUNT };
enum { WK_FLOW, WK_PATTERN, WK_SIZE, WK_PERIOD, WK_OFFSET, WK_COUNT };

/* What the parser keeps about a cell, flow or workload beyond the public struct:
 * which keys were set, on which line, and the names still to be resolved. */
struct raw {
	unsigned set;
	int key_line[CFG_MAX_KEYS];
	char from[RTVIO_NAME_MAX]; /* a flow's sending cell; a workload's flow */
	char to[RTVIO_NAME_MAX];   /* a flow's receiving cell; a remote's gateway cell */
	char remote[RTVIO_NAME_MAX]; /* a flow's far broker ([remote NAME]), "" = none */
};

struct parser {
	struct rtvio_config *cfg;
	const char *file;
	char *err;
	size_t errlen;
	int ret;
	bool platform_only;

	/* Input, read a line at a time by reader() so that lines can be counted. */
	FILE *f;
	const char *text;
	int lineno;
	int read_errno;     /* a read error, which the reader must report as EOF */

	/* The last "[...]" line the reader saw, and how many keys it has had. */
	int header_line;
	int header_keys;
	char header[96];

	/* The section the handler is in. */
	char section_raw[96]; /* as inih passes it, to notice when it changes */
	char section[96];     /* trimmed, for messages */
	bool in_section;
	int section_header_line; /* header_line when the section was opened */
	enum kind kind;
	int index;          /* cell/flow/workload index, -1 otherwise */
	unsigned seen;      /* keys seen in this section (duplicates are errors) */

	struct raw *cell_raw, *flow_raw, *wl_raw, *remote_raw;
	int cap_cells, cap_flows, cap_wls, cap_remotes;
	int broker_line;
	unsigned broker_set;
	int broker_key_line[24];
	int platform_line;
};

/* Context for one key's messages: "[flow control] key 'period'". */
struct keyctx {
	struct parser *ps;
	const char *key;
	const char *value;
	int line;
};

#if defined(__GNUC__)
#define CFG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CFG_PRINTF(f, a)
#endif

/* ---- Messages and values (config_value.c) ---------------------------------------- */

/* Records the first error as "FILE:LINE: message" and returns -EINVAL (or the error
 * already recorded). */
int cfg_fail(struct parser *ps, int line, const char *fmt, ...) CFG_PRINTF(3, 4);
bool cfg_valid_name(const char *s);
int cfg_key_fail(const struct keyctx *k, const char *fmt, ...) CFG_PRINTF(2, 3);
int cfg_bad_value(const struct keyctx *k, const char *why);
/* A text value (a path, a command line): 0, or the error for one that holds ';' or
 * '#', which the INI format takes for a comment once the value is written back
 * (`rtvio config dump`), so the value would not survive the round trip. */
int cfg_text_value(const struct keyctx *k);
int cfg_get_size(const struct keyctx *k, uint64_t min, uint64_t max, uint64_t *out);
int cfg_get_time(const struct keyctx *k, uint64_t min, uint64_t *out);
int cfg_get_int(const struct keyctx *k, long long min, long long max, long long *out);
int cfg_get_bool(const struct keyctx *k, bool *out);
/* Chooses among words: returns the index, or an error naming them. */
int cfg_get_word(const struct keyctx *k, const char *const *words, int *out);
/* "cell" or "cell:port". */
int cfg_get_endpoint(const struct keyctx *k, char *cell, uint32_t *port, bool *has_port);

/* ---- Input (config_input.c) -------------------------------------------------------- */

/* inih's reader: one line per call, noticing "[...]" lines for messages and for the
 * empty-section check. */
char *cfg_header_reader(char *str, int num, void *stream);
/* Splits "cell sensor" into its kind and name. Returns the kind, or K_NONE with a
 * message already given. */
enum kind cfg_split_section(struct parser *ps, int line, const char *section,
			    const char **name);

/* ---- Sections (config_section.c and config_<section>.c) --------------------------- */

int cfg_open_section(struct parser *ps, const char *section);
/* Grows arr to hold need elements (zeroed), doubling *cap; NULL when out of memory. */
void *cfg_grow(void *arr, int *cap, int need, size_t elem);

int cfg_open_broker(struct parser *ps, int line, const char *name);
int cfg_open_platform(struct parser *ps, int line, const char *name);
int cfg_open_cell(struct parser *ps, int line, const char *name);
int cfg_open_flow(struct parser *ps, int line, const char *name);
int cfg_open_workload(struct parser *ps, int line, const char *name);
int cfg_open_remote(struct parser *ps, int line, const char *name);
int cfg_open_host(struct parser *ps, int line, const char *name);

int cfg_broker_key(struct parser *ps, const struct keyctx *k, int key);
int cfg_cell_key(struct parser *ps, const struct keyctx *k, int key);
int cfg_flow_key(struct parser *ps, const struct keyctx *k, int key);
int cfg_workload_key(struct parser *ps, const struct keyctx *k, int key);
int cfg_platform_key(struct parser *ps, const struct keyctx *k, int key);
bool cfg_platform_removed(const struct keyctx *k);
int cfg_remote_key(struct parser *ps, const struct keyctx *k, int key);
int cfg_host_key(struct parser *ps, const struct keyctx *k, int key);
/* A flow's `from`/`to` naming BROKER/CELL[:PORT] (config_remote.c). */
int cfg_remote_flow_end(struct parser *ps, const struct keyctx *k, bool to);

/* Cross-section checks after the whole file is read, in this order. */
int cfg_check_broker(struct parser *ps);
int cfg_check_cells(struct parser *ps);
/* A VM cell's launch keys (config_vm.c): set one, check cell i's after the file. */
int cfg_vm_key(struct parser *ps, const struct keyctx *k, int key);
int cfg_check_vm_keys(struct parser *ps, int i);
int cfg_check_remotes(struct parser *ps);
int cfg_check_hosts(struct parser *ps);
/* Before a flow's cells are resolved: its remote end becomes the gateway cell. */
int cfg_remote_resolve_flow(struct parser *ps, int flow);
int cfg_check_flows(struct parser *ps);
int cfg_check_workloads(struct parser *ps);

/* ---- The loader (config.c) ------------------------------------------------------- */

void cfg_defaults(struct rtvio_config *cfg);
/* Parses ps's input with inih; returns ps->ret. */
int cfg_run(struct parser *ps);
void cfg_parser_free(struct parser *ps);

#endif
