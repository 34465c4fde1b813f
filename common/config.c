/* The configuration loader: libinih splits the file into (section, key, value);
 * everything else here is validation, defaults and cross-checks, with one clear
 * message for the first thing that is wrong. See config.h and docs/config.md. */
#include "config.h"
#include "units.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum kind {
	K_NONE,
	K_BROKER,
	K_CELL,
	K_FLOW,
	K_WORKLOAD,
	K_PLATFORM,
	K_SKIP, /* a section rtvio_platform_load() does not read */
};

/* Keys of each section, in the order docs/config.md lists them. The index of a key
 * is its bit in the "seen" masks. */
static const char *const broker_keys[] = { "policy", "chunk", "socket_dir", "cpu",
	"rt_priority", "poll", "default", "regulation_budget", "regulation_period", "copy",
	"pm_qos", NULL };
static const char *const cell_keys[] = { "cid", "vm", "region", "memory", "rx_buf",
	"max_packet", "cpu", "rt_priority", NULL };
static const char *const flow_keys[] = { "from", "to", "type", "size", "period",
	"deadline", "jitter", "priority", "class", NULL };
static const char *const workload_keys[] = { "flow", "pattern", "size", "period", "offset",
	"count", NULL };
static const char *const platform_keys[] = { "copy_bandwidth", "chunk_overhead",
	"packet_overhead", "ingest_latency", "notify_latency", "ingest_step", "batch_gap", NULL };

enum { CK_CID, CK_VM, CK_REGION, CK_MEMORY, CK_RX_BUF, CK_MAX_PACKET, CK_CPU, CK_RT_PRIORITY };
enum { FK_FROM, FK_TO, FK_TYPE, FK_SIZE, FK_PERIOD, FK_DEADLINE, FK_JITTER, FK_PRIORITY,
	FK_CLASS, FK_COUNT };
enum { WK_FLOW, WK_PATTERN, WK_SIZE, WK_PERIOD, WK_OFFSET, WK_COUNT };

/* What the parser keeps about a cell, flow or workload beyond the public struct:
 * which keys were set, on which line, and the names still to be resolved. */
struct raw {
	unsigned set;
	int key_line[FK_COUNT];
	char from[RTVIO_NAME_MAX]; /* a flow's sending cell; a workload's flow */
	char to[RTVIO_NAME_MAX];   /* a flow's receiving cell */
};

#define NKEYS(keys) (sizeof(keys) / sizeof(keys[0]) - 1)
_Static_assert(NKEYS(cell_keys) <= FK_COUNT && NKEYS(workload_keys) <= FK_COUNT &&
	       NKEYS(flow_keys) == FK_COUNT, "struct raw holds a line for every key");
_Static_assert(NKEYS(broker_keys) <= 16, "broker_key_line holds every [broker] key");

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

	struct raw *cell_raw, *flow_raw, *wl_raw;
	int cap_cells, cap_flows, cap_wls;
	int broker_line;
	unsigned broker_set;
	int broker_key_line[16];
	int platform_line;
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(struct parser *ps, int line, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (ps->ret)
		return ps->ret;
	ps->ret = -EINVAL;
	if (!ps->err || !ps->errlen)
		return ps->ret;
	if (line > 0)
		n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->file, line);
	else
		n = snprintf(ps->err, ps->errlen, "%s: ", ps->file);
	if (n < 0 || (size_t)n >= ps->errlen)
		return ps->ret;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return ps->ret;
}

/* "from, to, type, ..." for "expected one of" messages. */
static const char *key_list(const char *const *keys, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; keys[i]; i++) {
		int w = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", keys[i]);

		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

static int key_index(const char *const *keys, const char *name)
{
	for (int i = 0; keys[i]; i++) {
		if (strcmp(keys[i], name) == 0)
			return i;
	}
	return -1;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= RTVIO_NAME_MAX)
		return false;
	if (s[0] == '-' || s[0] == '_')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ input */

/* inih's reader: one line per call, so that ps->lineno is the line inih is on. A
 * line longer than inih's buffer would be split silently, so it is an error. */
static char *reader(char *str, int num, void *stream)
{
	struct parser *ps = stream;
	int n = 0, c;
	bool too_long = false;

	if (ps->ret)
		return NULL; /* stop at the first error */
	for (;;) {
		if (ps->f) {
			c = fgetc(ps->f);
			if (c == EOF && ferror(ps->f) && !ps->read_errno)
				ps->read_errno = errno ? errno : EIO;
		} else {
			c = *ps->text ? (unsigned char)*ps->text : EOF;
			if (c != EOF)
				ps->text++;
		}
		if (c == EOF) {
			if (n == 0 && !too_long)
				return NULL;
			break;
		}
		if (c == '\n')
			break;
		if (n < num - 1)
			str[n++] = (char)c;
		else
			too_long = true;
	}
	str[n] = '\0';
	ps->lineno++;
	if (too_long) {
		fail(ps, ps->lineno, "line too long (at most %d characters)", num - 1);
		return NULL;
	}
	return str;
}

static enum kind kind_of(const char *word, size_t len)
{
	static const struct {
		const char *name;
		enum kind kind;
	} kinds[] = {
		{ "broker", K_BROKER }, { "cell", K_CELL }, { "flow", K_FLOW },
		{ "workload", K_WORKLOAD }, { "platform", K_PLATFORM },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strlen(kinds[i].name) == len && memcmp(kinds[i].name, word, len) == 0)
			return kinds[i].kind;
	}
	return K_NONE;
}

/* Splits "cell sensor" into its kind and name. Returns the kind, or K_NONE with a
 * message already given. */
static enum kind split_section(struct parser *ps, int line, const char *section,
			       const char **name)
{
	const char *sp = section;

	while (*sp && *sp != ' ' && *sp != '\t')
		sp++;
	int wordlen = (int)(sp - section);
	enum kind k = kind_of(section, (size_t)wordlen);

	while (*sp == ' ' || *sp == '\t')
		sp++;
	*name = sp;
	if (ps->platform_only)
		return k == K_PLATFORM && !*sp ? K_PLATFORM : K_SKIP;
	if (k == K_NONE) {
		fail(ps, line, "unknown section [%s] (expected [broker], [cell NAME], [flow NAME], "
			       "[workload NAME] or [platform])", section);
		return K_NONE;
	}
	if ((k == K_BROKER || k == K_PLATFORM) && *sp) {
		fail(ps, line, "section [%s] takes no name (expected [%.*s])", section, wordlen,
		     section);
		return K_NONE;
	}
	if (k == K_CELL || k == K_FLOW || k == K_WORKLOAD) {
		if (!*sp) {
			fail(ps, line, "section [%s] needs a name (expected [%s NAME])", section, section);
			return K_NONE;
		}
		if (!valid_name(sp)) {
			fail(ps, line, "[%s]: invalid name '%s' (expected at most %d letters, digits, "
				       "'-' or '_', starting with a letter or digit)", section, sp,
			     RTVIO_NAME_MAX - 1);
			return K_NONE;
		}
	}
	return k;
}

/* Called by the reader's caller when a header closes: a header that never got a
 * key is invisible to inih's handler, so it is checked here. */
static void close_header(struct parser *ps)
{
	const char *name;
	enum kind k;

	if (!ps->header_line || ps->header_keys || ps->ret)
		return;
	k = split_section(ps, ps->header_line, ps->header, &name);
	if (k == K_CELL || k == K_FLOW || k == K_WORKLOAD)
		fail(ps, ps->header_line, "section [%s] has no keys (a %s needs at least '%s')",
		     ps->header, k == K_CELL ? "cell" : k == K_FLOW ? "flow" : "workload",
		     k == K_CELL ? "cid" : k == K_FLOW ? "from, to and size" : "flow");
}

/* Wraps reader() to notice "[...]" lines; the section's text is only used for
 * messages and for the empty-section check, inih remains the parser. */
static char *header_reader(char *str, int num, void *stream)
{
	struct parser *ps = stream;
	char *line = reader(str, num, stream);

	if (!line) {
		if (!ps->ret)
			close_header(ps);
		return NULL;
	}
	const char *p = line;

	while (*p == ' ' || *p == '\t')
		p++;
	/* inih reads an indented line after a key as that key's continuation, even
	 * one that starts with '['; so must this. */
	if (*p == '[' && (p == line || ps->header_keys == 0)) {
		close_header(ps);
		if (ps->ret)
			return NULL;
		const char *q = strchr(p, ']');
		size_t len = q ? (size_t)(q - p - 1) : strlen(p + 1);
		const char *s = p + 1;

		while (len && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len >= sizeof(ps->header))
			len = sizeof(ps->header) - 1;
		memcpy(ps->header, s, len);
		ps->header[len] = '\0';
		ps->header_line = ps->lineno;
		ps->header_keys = 0;
	}
	return line;
}

/* ------------------------------------------------------------------ sections */

static void *grow(void *arr, int *cap, int need, size_t elem)
{
	if (need <= *cap)
		return arr;
	int ncap = *cap ? *cap * 2 : 16;

	while (ncap < need)
		ncap *= 2;
	void *n = realloc(arr, (size_t)ncap * elem);

	if (!n)
		return NULL;
	memset((char *)n + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
	*cap = ncap;
	return n;
}

static int open_section(struct parser *ps, const char *section)
{
	struct rtvio_config *cfg = ps->cfg;
	int line = ps->header_line ? ps->header_line : ps->lineno;
	const char *name;
	enum kind k;

	/* inih keeps blanks inside the brackets; "[ broker ]" means [broker]. */
	snprintf(ps->section_raw, sizeof(ps->section_raw), "%s", section);
	while (*section == ' ' || *section == '\t')
		section++;
	size_t len = strlen(section);

	while (len && (section[len - 1] == ' ' || section[len - 1] == '\t'))
		len--;
	snprintf(ps->section, sizeof(ps->section), "%.*s", (int)len, section);
	section = ps->section;
	ps->in_section = true;
	ps->section_header_line = ps->header_line;
	ps->seen = 0;
	ps->index = -1;
	ps->kind = K_NONE;
	if (!*section) {
		if (ps->platform_only) {
			ps->kind = K_SKIP;
			return 0;
		}
		return fail(ps, ps->lineno, "key outside any section (expected a [broker], [cell NAME], "
					    "[flow NAME], [workload NAME] or [platform] line first)");
	}
	k = split_section(ps, line, section, &name);
	if (k == K_NONE)
		return ps->ret;
	ps->kind = k;
	switch (k) {
	case K_BROKER:
		if (ps->broker_line)
			return fail(ps, line, "section [broker] given twice (first at line %d)",
				    ps->broker_line);
		ps->broker_line = line;
		cfg->broker.line = line;
		return 0;
	case K_PLATFORM:
		if (ps->platform_line)
			return fail(ps, line, "section [platform] given twice (first at line %d)",
				    ps->platform_line);
		ps->platform_line = line;
		cfg->platform.line = line;
		return 0;
	case K_CELL: {
		int i = rtvio_config_find_cell(cfg, name);

		if (i >= 0)
			return fail(ps, line, "duplicate cell name '%s' (first at line %d)", name,
				    cfg->cells[i].line);
		if (cfg->ncells >= RTVIO_MAX_CELLS)
			return fail(ps, line, "too many cells (at most %d)", RTVIO_MAX_CELLS);
		int cap = ps->cap_cells;
		struct rtvio_cell_cfg *c = grow(cfg->cells, &cap, cfg->ncells + 1, sizeof(*c));

		if (!c)
			return fail(ps, line, "out of memory");
		cfg->cells = c;
		struct raw *r = grow(ps->cell_raw, &ps->cap_cells, cfg->ncells + 1, sizeof(*r));

		if (!r)
			return fail(ps, line, "out of memory");
		ps->cell_raw = r;
		c = &cfg->cells[cfg->ncells];
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->region = 2ull << 20;
		c->memory = 256ull << 20;
		c->rx_buf = 4096;
		c->max_packet = 65536;
		c->cpu = -1;
		c->line = line;
		ps->index = cfg->ncells++;
		return 0;
	}
	case K_FLOW: {
		int i = rtvio_config_find_flow(cfg, name);

		if (i >= 0)
			return fail(ps, line, "duplicate flow name '%s' (first at line %d)", name,
				    cfg->flows[i].line);
		if (cfg->nflows >= RTVIO_MAX_FLOWS)
			return fail(ps, line, "too many flows (at most %d)", RTVIO_MAX_FLOWS);
		int cap = ps->cap_flows;
		struct rtvio_flow_cfg *fl = grow(cfg->flows, &cap, cfg->nflows + 1, sizeof(*fl));

		if (!fl)
			return fail(ps, line, "out of memory");
		cfg->flows = fl;
		struct raw *r = grow(ps->flow_raw, &ps->cap_flows, cfg->nflows + 1, sizeof(*r));

		if (!r)
			return fail(ps, line, "out of memory");
		ps->flow_raw = r;
		fl = &cfg->flows[cfg->nflows];
		snprintf(fl->name, sizeof(fl->name), "%s", name);
		fl->from = fl->to = -1;
		fl->type = RTVIO_STREAM;
		fl->traffic.workload = -1;
		fl->line = line;
		ps->index = cfg->nflows++;
		return 0;
	}
	case K_WORKLOAD: {
		for (int i = 0; i < cfg->nworkloads; i++) {
			if (strcmp(cfg->workloads[i].name, name) == 0)
				return fail(ps, line, "duplicate workload name '%s' (first at line %d)",
					    name, cfg->workloads[i].line);
		}
		if (cfg->nworkloads >= RTVIO_MAX_FLOWS)
			return fail(ps, line, "too many workloads (at most %d)", RTVIO_MAX_FLOWS);
		int cap = ps->cap_wls;
		struct rtvio_workload_cfg *w = grow(cfg->workloads, &cap, cfg->nworkloads + 1,
						    sizeof(*w));

		if (!w)
			return fail(ps, line, "out of memory");
		cfg->workloads = w;
		struct raw *r = grow(ps->wl_raw, &ps->cap_wls, cfg->nworkloads + 1, sizeof(*r));

		if (!r)
			return fail(ps, line, "out of memory");
		ps->wl_raw = r;
		w = &cfg->workloads[cfg->nworkloads];
		snprintf(w->name, sizeof(w->name), "%s", name);
		w->flow = -1;
		w->line = line;
		ps->index = cfg->nworkloads++;
		return 0;
	}
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ values */

/* Context for one key's messages: "[flow control] key 'period'". */
struct keyctx {
	struct parser *ps;
	const char *key;
	const char *value;
	int line;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int key_fail(const struct keyctx *k, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail(k->ps, k->line, "[%s] key '%s': %s", k->ps->section, k->key, msg);
}

static int bad_value(const struct keyctx *k, const char *why)
{
	return key_fail(k, "'%s': %s", k->value, why);
}

static int get_size(const struct keyctx *k, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *why = NULL;
	char a[32], b[32];

	if (rtvio_parse_size(k->value, 1, out, &why))
		return bad_value(k, why);
	if (*out < min || *out > max)
		return key_fail(k, "'%s': expected a size from %s to %s", k->value,
				rtvio_fmt_size(a, sizeof(a), min), rtvio_fmt_size(b, sizeof(b), max));
	return 0;
}

static int get_time(const struct keyctx *k, uint64_t min, uint64_t *out)
{
	const char *why = NULL;
	char a[32], b[32];

	if (rtvio_parse_time(k->value, RTVIO_NS_PER_S, out, &why))
		return bad_value(k, why);
	if (*out < min || *out > RTVIO_MAX_TIME_NS)
		return key_fail(k, "'%s': expected a time from %s to %s", k->value,
				rtvio_fmt_time(a, sizeof(a), min),
				rtvio_fmt_time(b, sizeof(b), RTVIO_MAX_TIME_NS));
	return 0;
}

static int get_int(const struct keyctx *k, long long min, long long max, long long *out)
{
	const char *why = NULL;

	if (rtvio_parse_int(k->value, min, max, out, &why))
		return key_fail(k, "'%s': expected a whole number from %lld to %lld", k->value, min,
				max);
	return 0;
}

static int get_bool(const struct keyctx *k, bool *out)
{
	const char *why = NULL;

	if (rtvio_parse_bool(k->value, out, &why))
		return bad_value(k, why);
	return 0;
}

/* Chooses among words: returns the index, or an error naming them. */
static int get_word(const struct keyctx *k, const char *const *words, int *out)
{
	char list[128];

	for (int i = 0; words[i]; i++) {
		if (strcmp(words[i], k->value) == 0) {
			*out = i;
			return 0;
		}
	}
	size_t n = 0;

	list[0] = '\0';
	for (int i = 0; words[i]; i++) {
		int w = snprintf(list + n, sizeof(list) - n, "%s%s", !i ? "" : words[i + 1] ? ", " : " or ",
				 words[i]);

		if (w < 0 || (size_t)w >= sizeof(list) - n)
			break;
		n += (size_t)w;
	}
	return key_fail(k, "'%s': expected %s", k->value, list);
}

/* "cell" or "cell:port". */
static int get_endpoint(const struct keyctx *k, char *cell, uint32_t *port, bool *has_port)
{
	const char *colon = strchr(k->value, ':');
	size_t len = colon ? (size_t)(colon - k->value) : strlen(k->value);
	long long p;

	if (len == 0 || len >= RTVIO_NAME_MAX)
		return key_fail(k, "'%s': expected CELL or CELL:PORT", k->value);
	memcpy(cell, k->value, len);
	cell[len] = '\0';
	if (!valid_name(cell))
		return key_fail(k, "'%s': expected CELL or CELL:PORT, and '%s' is not a valid cell name",
				k->value, cell);
	*has_port = colon != NULL;
	*port = RTVIO_PORT_ANY;
	if (!colon)
		return 0;
	const char *why = NULL;

	if (rtvio_parse_int(colon + 1, 1, 0xfffffffell, &p, &why))
		return key_fail(k, "'%s': expected a port from 1 to 4294967294 after ':'", k->value);
	*port = (uint32_t)p;
	return 0;
}

static int broker_key(struct parser *ps, const struct keyctx *k, int key)
{
	static const char *const policies[] = { "fp", "edf", "fifo", NULL };
	static const char *const defaults[] = { "deny", "best-effort", NULL };
	static const char *const copies[] = { "normal", "nt", NULL };
	struct rtvio_broker_cfg *b = &ps->cfg->broker;
	long long v;
	int w;

	switch (key) {
	case 0:
		if (get_word(k, policies, &w))
			return ps->ret;
		b->policy = (enum rtvio_policy)w;
		return 0;
	case 1:
		return get_size(k, 1, RTVIO_MAX_MSG_SIZE, &b->chunk);
	case 2:
		if (!*k->value)
			return key_fail(k, "expected a directory");
		if (strlen(k->value) >= sizeof(b->socket_dir))
			return key_fail(k, "'%s': path too long (at most %zu characters)", k->value,
					sizeof(b->socket_dir) - 1);
		snprintf(b->socket_dir, sizeof(b->socket_dir), "%s", k->value);
		return 0;
	case 3:
		if (get_int(k, -1, 1023, &v))
			return ps->ret;
		b->cpu = (int)v;
		return 0;
	case 4:
		if (get_int(k, 0, 99, &v))
			return ps->ret;
		b->rt_priority = (int)v;
		return 0;
	case 5:
		return get_bool(k, &b->poll);
	case 6:
		if (get_word(k, defaults, &w))
			return ps->ret;
		b->default_best_effort = w == 1;
		return 0;
	case 7:
		return get_size(k, 0, UINT64_MAX, &b->regulation_budget);
	case 8:
		return get_time(k, 1, &b->regulation_period_ns);
	case 9:
		if (get_word(k, copies, &w))
			return ps->ret;
		b->copy = w == 1 ? RTVIO_COPY_NT : RTVIO_COPY_NORMAL;
		return 0;
	case 10:
		return get_bool(k, &b->pm_qos);
	}
	return 0;
}

static int cell_key(struct parser *ps, const struct keyctx *k, int key)
{
	struct rtvio_cell_cfg *c = &ps->cfg->cells[ps->index];
	long long v;

	switch (key) {
	case CK_CID:
		if (get_int(k, RTVIO_MIN_CID, 0xfffffffell, &v))
			return ps->ret;
		c->cid = (uint32_t)v;
		return 0;
	case CK_VM:
		return get_bool(k, &c->vm);
	case CK_REGION:
		if (get_size(k, 64 * 1024, 1ull << 34, &c->region))
			return ps->ret;
		if (c->region % 4096)
			return key_fail(k, "'%s': expected a multiple of 4KiB (a whole number of pages)",
					k->value);
		return 0;
	case CK_MEMORY:
		if (get_size(k, 16ull << 20, 1ull << 40, &c->memory))
			return ps->ret;
		if (c->memory % (1ull << 20))
			return key_fail(k, "'%s': expected a multiple of 1MiB", k->value);
		return 0;
	case CK_RX_BUF:
		return get_size(k, 64, 65536, &c->rx_buf);
	case CK_MAX_PACKET:
		return get_size(k, 1, 65536, &c->max_packet);
	case CK_CPU:
		if (get_int(k, -1, 1023, &v))
			return ps->ret;
		c->cpu = (int)v;
		return 0;
	case CK_RT_PRIORITY:
		if (get_int(k, 0, 99, &v))
			return ps->ret;
		c->rt_priority = (int)v;
		return 0;
	}
	return 0;
}

static int flow_key(struct parser *ps, const struct keyctx *k, int key)
{
	static const char *const types[] = { "stream", "seqpacket", NULL };
	static const char *const classes[] = { "real-time", "best-effort", NULL };
	struct rtvio_flow_cfg *fl = &ps->cfg->flows[ps->index];
	struct raw *r = &ps->flow_raw[ps->index];
	bool has_port;
	long long v;
	int w;

	switch (key) {
	case FK_FROM:
		return get_endpoint(k, r->from, &fl->from_port, &has_port);
	case FK_TO:
		if (get_endpoint(k, r->to, &fl->to_port, &has_port))
			return ps->ret;
		if (!has_port)
			return key_fail(k, "'%s': expected CELL:PORT (the port the receiver listens on)",
					k->value);
		return 0;
	case FK_TYPE:
		if (get_word(k, types, &w))
			return ps->ret;
		fl->type = (enum rtvio_sock_type)w;
		return 0;
	case FK_SIZE:
		/* 0 is read here and refused after the section, where the type is known. */
		return get_size(k, 0, RTVIO_MAX_MSG_SIZE, &fl->size);
	case FK_PERIOD:
		return get_time(k, 1, &fl->period_ns);
	case FK_DEADLINE:
		return get_time(k, 1, &fl->deadline_ns);
	case FK_JITTER:
		return get_time(k, 0, &fl->jitter_ns);
	case FK_PRIORITY:
		if (get_int(k, 1, 1000000, &v))
			return ps->ret;
		fl->priority = (int)v;
		return 0;
	case FK_CLASS:
		if (get_word(k, classes, &w))
			return ps->ret;
		fl->best_effort = w == 1;
		return 0;
	}
	return 0;
}

static int workload_key(struct parser *ps, const struct keyctx *k, int key)
{
	static const char *const patterns[] = { "periodic", "bulk", "off", NULL };
	struct rtvio_workload_cfg *w = &ps->cfg->workloads[ps->index];
	struct raw *r = &ps->wl_raw[ps->index];
	long long v;
	int p;

	switch (key) {
	case WK_FLOW:
		if (!valid_name(k->value))
			return key_fail(k, "'%s': expected the name of a flow", k->value);
		snprintf(r->from, sizeof(r->from), "%s", k->value);
		return 0;
	case WK_PATTERN:
		if (get_word(k, patterns, &p))
			return ps->ret;
		w->pattern = (enum rtvio_pattern)p;
		w->set |= RTVIO_WL_PATTERN;
		return 0;
	case WK_SIZE:
		w->set |= RTVIO_WL_SIZE;
		return get_size(k, 1, RTVIO_MAX_MSG_SIZE, &w->size);
	case WK_PERIOD:
		w->set |= RTVIO_WL_PERIOD;
		return get_time(k, 1, &w->period_ns);
	case WK_OFFSET:
		w->set |= RTVIO_WL_OFFSET;
		return get_time(k, 0, &w->offset_ns);
	case WK_COUNT:
		if (get_int(k, 0, LLONG_MAX, &v))
			return ps->ret;
		w->count = (uint64_t)v;
		w->set |= RTVIO_WL_COUNT;
		return 0;
	}
	return 0;
}

static int platform_key(struct parser *ps, const struct keyctx *k, int key)
{
	struct rtvio_platform_cfg *p = &ps->cfg->platform;
	uint64_t *const slot[] = { &p->copy_bandwidth, &p->chunk_overhead, &p->packet_overhead,
				   &p->ingest_latency, &p->notify_latency, &p->ingest_step,
				   &p->batch_gap };

	if (key == 0) {
		const char *why = NULL;

		if (rtvio_parse_bandwidth(k->value, &p->copy_bandwidth, &why))
			return bad_value(k, why);
		if (p->copy_bandwidth == 0)
			return key_fail(k, "'%s': expected a bandwidth above zero", k->value);
	} else if (get_time(k, 0, slot[key])) {
		return ps->ret;
	}
	p->present |= 1u << key;
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *ps = user;
	const char *const *keys;
	char list[256];

	if (ps->ret)
		return 0;
	/* A repeated header with the same text ([cell a] twice) is a new section too. */
	if (!ps->in_section || strcmp(section, ps->section_raw) != 0 ||
	    ps->header_line != ps->section_header_line) {
		if (open_section(ps, section))
			return 0;
	}
	ps->header_keys++;
	if (ps->kind == K_SKIP)
		return 1;

	switch (ps->kind) {
	case K_BROKER: keys = broker_keys; break;
	case K_CELL: keys = cell_keys; break;
	case K_FLOW: keys = flow_keys; break;
	case K_WORKLOAD: keys = workload_keys; break;
	case K_PLATFORM: keys = platform_keys; break;
	default: return 0;
	}
	struct keyctx k = { ps, name, value, ps->lineno };
	int key = key_index(keys, name);

	if (key < 0) {
		key_fail(&k, "unknown key (expected one of: %s)", key_list(keys, list, sizeof(list)));
		return 0;
	}
	if (ps->seen & (1u << key)) {
		/* Also catches an indented line, which inih reads as a continuation. */
		key_fail(&k, "given twice in one section (an indented line continues the key above it)");
		return 0;
	}
	ps->seen |= 1u << key;

	switch (ps->kind) {
	case K_BROKER:
		ps->broker_set |= 1u << key;
		ps->broker_key_line[key] = k.line;
		broker_key(ps, &k, key);
		break;
	case K_CELL:
		ps->cell_raw[ps->index].set |= 1u << key;
		ps->cell_raw[ps->index].key_line[key] = k.line;
		cell_key(ps, &k, key);
		break;
	case K_FLOW:
		ps->flow_raw[ps->index].set |= 1u << key;
		ps->flow_raw[ps->index].key_line[key] = k.line;
		flow_key(ps, &k, key);
		break;
	case K_WORKLOAD:
		ps->wl_raw[ps->index].set |= 1u << key;
		ps->wl_raw[ps->index].key_line[key] = k.line;
		workload_key(ps, &k, key);
		break;
	case K_PLATFORM:
		platform_key(ps, &k, key);
		break;
	default:
		break;
	}
	return ps->ret ? 0 : 1;
}

/* ------------------------------------------------------------------ cross-checks */

static int check_cells(struct parser *ps)
{
	struct rtvio_config *cfg = ps->cfg;
	size_t dirlen = strlen(cfg->broker.socket_dir);

	if (cfg->ncells == 0)
		return fail(ps, 0, "no [cell NAME] section (a configuration needs at least one cell)");
	if (dirlen + sizeof("/control.sock") > RTVIO_PATH_MAX)
		return fail(ps, ps->broker_key_line[2], "[broker] key 'socket_dir': '%s' is too "
			    "long for "
			    "a socket path (at most %zu characters)", cfg->broker.socket_dir,
			    RTVIO_PATH_MAX - sizeof("/control.sock"));
	for (int i = 0; i < cfg->ncells; i++) {
		struct rtvio_cell_cfg *c = &cfg->cells[i];
		struct raw *r = &ps->cell_raw[i];

		if (!(r->set & (1u << CK_CID)))
			return fail(ps, c->line, "[cell %s]: missing key 'cid' (a vsock address, 3 or more)",
				    c->name);
		if (strcmp(c->name, "control") == 0)
			return fail(ps, c->line, "[cell control]: the name 'control' is reserved "
				    "(<socket_dir>/control.sock is the broker's control socket)");
		if (dirlen + 1 + strlen(c->name) + sizeof(".sock") > RTVIO_PATH_MAX)
			return fail(ps, c->line, "[cell %s]: socket path %s/%s.sock is too long "
				    "(at most %d characters)", c->name, cfg->broker.socket_dir, c->name,
				    RTVIO_PATH_MAX - 1);
		if (c->vm && (r->set & (1u << CK_REGION)))
			return fail(ps, r->key_line[CK_REGION], "[cell %s] key 'region': applies to "
				    "process cells only (this cell has vm = yes; use 'memory')", c->name);
		if (!c->vm && (r->set & (1u << CK_MEMORY)))
			return fail(ps, r->key_line[CK_MEMORY], "[cell %s] key 'memory': applies to "
				    "vm cells only (add vm = yes, or use 'region')", c->name);
		for (int j = 0; j < i; j++) {
			if (cfg->cells[j].cid == c->cid)
				return fail(ps, r->key_line[CK_CID], "[cell %s] key 'cid': duplicate "
					    "cid %u (already used by cell %s at line %d)", c->name,
					    c->cid, cfg->cells[j].name, cfg->cells[j].line);
		}
	}
	return 0;
}

static int resolve_end(struct parser *ps, int flow, int key, const char *cell, int *out)
{
	struct rtvio_flow_cfg *fl = &ps->cfg->flows[flow];
	int i = rtvio_config_find_cell(ps->cfg, cell);

	if (i < 0)
		return fail(ps, ps->flow_raw[flow].key_line[key], "[flow %s] key '%s': unknown cell "
			    "'%s' (no [cell %s] section)", fl->name, flow_keys[key], cell, cell);
	*out = i;
	return 0;
}

static int check_flows(struct parser *ps)
{
	struct rtvio_config *cfg = ps->cfg;

	for (int i = 0; i < cfg->nflows; i++) {
		struct rtvio_flow_cfg *fl = &cfg->flows[i];
		struct raw *r = &ps->flow_raw[i];
		static const int required[] = { FK_FROM, FK_TO, FK_SIZE };
		static const char *const what[] = { "the sending cell, CELL or CELL:PORT",
			"the receiving cell and its listening port, CELL:PORT",
			"bytes per message (seqpacket) or per period (stream)" };

		for (int j = 0; j < 3; j++) {
			if (!(r->set & (1u << required[j])))
				return fail(ps, fl->line, "[flow %s]: missing key '%s' (%s)", fl->name,
					    flow_keys[required[j]], what[j]);
		}
		if (resolve_end(ps, i, FK_FROM, r->from, &fl->from) ||
		    resolve_end(ps, i, FK_TO, r->to, &fl->to))
			return ps->ret;
		if (fl->from == fl->to)
			return fail(ps, r->key_line[FK_TO], "[flow %s] key 'to': the flow starts and "
				    "ends at cell %s (a flow joins two different cells)", fl->name,
				    r->to);
		if (fl->size == 0)
			return fail(ps, r->key_line[FK_SIZE], "[flow %s] key 'size': %s", fl->name,
				    fl->type == RTVIO_SEQPACKET ?
				    "a seqpacket flow needs messages of at least 1 byte" :
				    "a stream flow needs at least 1 byte per period");
		if (fl->best_effort) {
			static const int rt_only[] = { FK_PERIOD, FK_DEADLINE, FK_JITTER, FK_PRIORITY };

			for (int j = 0; j < 4; j++) {
				if (r->set & (1u << rt_only[j]))
					return fail(ps, r->key_line[rt_only[j]], "[flow %s] key '%s': "
						    "not for a best-effort flow (it has no period, "
						    "deadline or priority; a [workload] sets its pace)",
						    fl->name, flow_keys[rt_only[j]]);
			}
		} else {
			if (!(r->set & (1u << FK_PERIOD)))
				return fail(ps, fl->line, "[flow %s]: missing key 'period' (the minimum "
					    "time between messages of a real-time flow; or "
					    "class = best-effort)", fl->name);
			if (!(r->set & (1u << FK_DEADLINE)))
				fl->deadline_ns = fl->period_ns;
		}
		/* One flow per connection: the broker must know which flow a connection
		 * is from its endpoints alone. */
		for (int j = 0; j < i; j++) {
			const struct rtvio_flow_cfg *o = &cfg->flows[j];

			if (o->from == fl->from && o->to == fl->to && o->to_port == fl->to_port &&
			    (o->from_port == RTVIO_PORT_ANY || fl->from_port == RTVIO_PORT_ANY ||
			     o->from_port == fl->from_port))
				return fail(ps, fl->line, "[flow %s]: connections from %s to %s:%u would "
					    "also match flow %s (line %d); give each a distinct "
					    "source port (from = CELL:PORT)", fl->name,
					    cfg->cells[fl->from].name, cfg->cells[fl->to].name,
					    fl->to_port, o->name, o->line);
			/* A port has one listener, of one socket type (in gvsock as in
			 * Linux); flows to it from different senders share that listener. */
			if (o->to == fl->to && o->to_port == fl->to_port && o->type != fl->type)
				return fail(ps, (r->set & (1u << FK_TYPE)) ? r->key_line[FK_TYPE]
									 : fl->line,
					    "[flow %s] key 'type': %s, but flow %s (line %d) goes to "
					    "%s:%u as %s; flows to one port share its listener and "
					    "must have one type", fl->name,
					    rtvio_sock_type_name(fl->type), o->name, o->line,
					    cfg->cells[fl->to].name, fl->to_port,
					    rtvio_sock_type_name(o->type));
		}
		/* The implied workload; [workload] sections refine it below. */
		fl->traffic.pattern = fl->best_effort ? RTVIO_PATTERN_BULK : RTVIO_PATTERN_PERIODIC;
		fl->traffic.size = fl->size;
		fl->traffic.period_ns = fl->period_ns;
		fl->traffic.offset_ns = 0;
		fl->traffic.count = 0;
		fl->traffic.workload = -1;
	}
	return 0;
}

static int check_workloads(struct parser *ps)
{
	struct rtvio_config *cfg = ps->cfg;

	for (int i = 0; i < cfg->nworkloads; i++) {
		struct rtvio_workload_cfg *w = &cfg->workloads[i];
		struct raw *r = &ps->wl_raw[i];

		if (!(r->set & (1u << WK_FLOW)))
			return fail(ps, w->line, "[workload %s]: missing key 'flow' (the flow it drives)",
				    w->name);
		w->flow = rtvio_config_find_flow(cfg, r->from);
		if (w->flow < 0)
			return fail(ps, r->key_line[WK_FLOW], "[workload %s] key 'flow': unknown flow "
				    "'%s' (no [flow %s] section)", w->name, r->from, r->from);
		struct rtvio_flow_cfg *fl = &cfg->flows[w->flow];
		struct rtvio_traffic *t = &fl->traffic;

		if (t->workload >= 0)
			return fail(ps, w->line, "[workload %s]: flow %s already has a workload (%s, "
				    "line %d)", w->name, fl->name, cfg->workloads[t->workload].name,
				    cfg->workloads[t->workload].line);
		t->workload = i;
		if (w->set & RTVIO_WL_PATTERN)
			t->pattern = w->pattern;
		else
			w->pattern = t->pattern;
		if (w->set & RTVIO_WL_SIZE)
			t->size = w->size;
		if (w->set & RTVIO_WL_OFFSET)
			t->offset_ns = w->offset_ns;
		if (w->set & RTVIO_WL_COUNT)
			t->count = w->count;
		if (t->pattern == RTVIO_PATTERN_PERIODIC) {
			if (w->set & RTVIO_WL_PERIOD)
				t->period_ns = w->period_ns;
			else if (fl->best_effort)
				return fail(ps, w->line, "[workload %s]: missing key 'period' (flow %s is "
					    "best-effort and has no period of its own)", w->name,
					    fl->name);
		} else {
			if (w->set & RTVIO_WL_PERIOD)
				return fail(ps, r->key_line[WK_PERIOD], "[workload %s] key 'period': "
					    "only for pattern = periodic", w->name);
			t->period_ns = 0;
		}
		if (t->pattern == RTVIO_PATTERN_OFF && (w->set & (RTVIO_WL_SIZE | RTVIO_WL_OFFSET |
								  RTVIO_WL_COUNT)))
			return fail(ps, w->line, "[workload %s]: pattern = off takes no size, offset "
				    "or count", w->name);
	}
	return 0;
}

static int check_broker(struct parser *ps)
{
	struct rtvio_broker_cfg *b = &ps->cfg->broker;
	char a[32], c[32];

	if (b->regulation_budget && b->regulation_budget < b->chunk)
		return fail(ps, ps->broker_key_line[7], "[broker] key 'regulation_budget': %s is "
			    "smaller than chunk "
			    "(%s), so a chunk could never be copied (expected 0 or at least chunk)",
			    rtvio_fmt_size(a, sizeof(a), b->regulation_budget),
			    rtvio_fmt_size(c, sizeof(c), b->chunk));
	return 0;
}

/* ------------------------------------------------------------------ entry points */

static void defaults(struct rtvio_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->broker.policy = RTVIO_POLICY_FP;
	cfg->broker.chunk = 4096;
	snprintf(cfg->broker.socket_dir, sizeof(cfg->broker.socket_dir), "/tmp/rtvio");
	cfg->broker.cpu = -1;
	cfg->broker.regulation_period_ns = 1000000;
	cfg->broker.pm_qos = true;
}

static void parser_free(struct parser *ps)
{
	free(ps->cell_raw);
	free(ps->flow_raw);
	free(ps->wl_raw);
}

static int run(struct parser *ps)
{
	int line = ini_parse_stream(header_reader, ps, handler, ps);

	/* inih reports the first line its handler refused or it could not parse. Ours
	 * stop the reader at once, so an earlier line is a syntax error of inih's. */
	if (line > 0 && (!ps->ret || line < ps->lineno)) {
		ps->ret = 0;
		fail(ps, line, "syntax error (expected '[section]', 'key = value' or a comment)");
	} else if (line < 0 && !ps->ret) {
		fail(ps, 0, "out of memory");
	}
	return ps->ret;
}

static int load(struct parser *ps, struct rtvio_config *cfg)
{
	defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", ps->file);
	ps->cfg = cfg;
	if (!run(ps) && !check_broker(ps) && !check_cells(ps) && !check_flows(ps))
		check_workloads(ps);
	if (!ps->ret && cfg->platform.line)
		snprintf(cfg->platform.path, sizeof(cfg->platform.path), "%s", ps->file);
	parser_free(ps);
	if (ps->ret) {
		rtvio_config_free(cfg);
		memset(cfg, 0, sizeof(*cfg));
	}
	return ps->ret;
}

int rtvio_config_load(const char *path, struct rtvio_config *cfg, char *err, size_t errlen)
{
	struct parser ps = { .file = path, .err = err, .errlen = errlen };
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	ps.f = fopen(path, "r");
	if (!ps.f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	ret = load(&ps, cfg);
	/* The read error outranks whatever the truncated text made the parser say. */
	if (ps.read_errno) {
		rtvio_config_free(cfg);
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ps.read_errno));
		ret = -ps.read_errno;
	}
	fclose(ps.f);
	return ret;
}

int rtvio_config_parse(const char *text, const char *name, struct rtvio_config *cfg, char *err,
		       size_t errlen)
{
	struct parser ps = { .file = name, .err = err, .errlen = errlen, .text = text };

	memset(cfg, 0, sizeof(*cfg));
	return load(&ps, cfg);
}

void rtvio_config_free(struct rtvio_config *cfg)
{
	free(cfg->cells);
	free(cfg->flows);
	free(cfg->workloads);
	cfg->cells = NULL;
	cfg->flows = NULL;
	cfg->workloads = NULL;
	cfg->ncells = cfg->nflows = cfg->nworkloads = 0;
}

int rtvio_platform_load(const char *path, struct rtvio_platform_cfg *plat, char *err,
			size_t errlen)
{
	struct rtvio_config cfg;
	struct parser ps = { .file = path, .err = err, .errlen = errlen, .platform_only = true };
	int ret;

	memset(plat, 0, sizeof(*plat));
	defaults(&cfg);
	ps.cfg = &cfg;
	ps.f = fopen(path, "r");
	if (!ps.f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	ret = run(&ps);
	if (ps.read_errno) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ps.read_errno));
		ret = -ps.read_errno;
	}
	fclose(ps.f);
	parser_free(&ps);
	rtvio_config_free(&cfg);
	if (ret)
		return ret;
	*plat = cfg.platform;
	snprintf(plat->path, sizeof(plat->path), "%s", path);
	return 0;
}

int rtvio_platform_missing(const struct rtvio_platform_cfg *plat, char *buf, size_t len)
{
	int missing = 0;
	size_t n = 0;

	if (len)
		buf[0] = '\0';
	for (int i = 0; platform_keys[i]; i++) {
		if ((plat->present & (1u << i)) || !(RTVIO_PLAT_ALL & (1u << i)))
			continue;
		if (len > n) {
			int w = snprintf(buf + n, len - n, "%s%s", missing ? ", " : "", platform_keys[i]);

			if (w > 0)
				n += (size_t)w;
		}
		missing++;
	}
	return missing;
}

int rtvio_platform_write(FILE *f, const struct rtvio_platform_cfg *p)
{
	const uint64_t v[] = { p->copy_bandwidth, p->chunk_overhead, p->packet_overhead,
			       p->ingest_latency, p->notify_latency, p->ingest_step,
			       p->batch_gap };
	char b[48];

	if (fprintf(f, "[platform]\n") < 0)
		return -EIO;
	for (int i = 0; platform_keys[i]; i++) {
		if (!(p->present & (1u << i)))
			continue;
		if (i == 0)
			rtvio_fmt_bandwidth(b, sizeof(b), v[i]);
		else
			rtvio_fmt_time(b, sizeof(b), v[i]);
		if (fprintf(f, "%s = %s\n", platform_keys[i], b) < 0)
			return -EIO;
	}
	return 0;
}

int rtvio_config_find_cell(const struct rtvio_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->ncells; i++) {
		if (strcmp(cfg->cells[i].name, name) == 0)
			return i;
	}
	return -ENOENT;
}

int rtvio_config_find_cell_by_cid(const struct rtvio_config *cfg, uint32_t cid)
{
	for (int i = 0; i < cfg->ncells; i++) {
		if (cfg->cells[i].cid == cid)
			return i;
	}
	return -ENOENT;
}

int rtvio_config_find_flow(const struct rtvio_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nflows; i++) {
		if (strcmp(cfg->flows[i].name, name) == 0)
			return i;
	}
	return -ENOENT;
}

int rtvio_config_match_flow(const struct rtvio_config *cfg, int from_cell, uint32_t from_port,
			    int to_cell, uint32_t to_port)
{
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *fl = &cfg->flows[i];

		if (fl->from == from_cell && fl->to == to_cell && fl->to_port == to_port &&
		    (fl->from_port == RTVIO_PORT_ANY || fl->from_port == from_port))
			return i;
	}
	return -ENOENT;
}

int rtvio_config_dump(const struct rtvio_config *cfg, FILE *f)
{
	const struct rtvio_broker_cfg *b = &cfg->broker;
	char x[48], y[48], z[48];
	int ret = 0;

#define OUT(...) do { if (fprintf(f, __VA_ARGS__) < 0) ret = -EIO; } while (0)
	OUT("[broker]\npolicy = %s\nchunk = %s\nsocket_dir = %s\ncpu = %d\nrt_priority = %d\n"
	    "poll = %s\ndefault = %s\nregulation_budget = %s\nregulation_period = %s\ncopy = %s\n"
	    "pm_qos = %s\n",
	    rtvio_policy_name(b->policy), rtvio_fmt_size(x, sizeof(x), b->chunk), b->socket_dir,
	    b->cpu, b->rt_priority, b->poll ? "yes" : "no",
	    b->default_best_effort ? "best-effort" : "deny",
	    rtvio_fmt_size(y, sizeof(y), b->regulation_budget),
	    rtvio_fmt_time(z, sizeof(z), b->regulation_period_ns), rtvio_copy_name(b->copy),
	    b->pm_qos ? "yes" : "no");
	for (int i = 0; i < cfg->ncells; i++) {
		const struct rtvio_cell_cfg *c = &cfg->cells[i];

		OUT("\n[cell %s]\ncid = %u\nvm = %s\n", c->name, c->cid, c->vm ? "yes" : "no");
		if (c->vm)
			OUT("memory = %s\n", rtvio_fmt_size(x, sizeof(x), c->memory));
		else
			OUT("region = %s\n", rtvio_fmt_size(x, sizeof(x), c->region));
		OUT("rx_buf = %s\nmax_packet = %s\ncpu = %d\nrt_priority = %d\n",
		    rtvio_fmt_size(x, sizeof(x), c->rx_buf), rtvio_fmt_size(y, sizeof(y), c->max_packet),
		    c->cpu, c->rt_priority);
	}
	for (int i = 0; i < cfg->nflows; i++) {
		const struct rtvio_flow_cfg *fl = &cfg->flows[i];

		OUT("\n[flow %s]\nfrom = %s", fl->name, cfg->cells[fl->from].name);
		if (fl->from_port != RTVIO_PORT_ANY)
			OUT(":%u", fl->from_port);
		OUT("\nto = %s:%u\ntype = %s\nsize = %s\nclass = %s\n", cfg->cells[fl->to].name,
		    fl->to_port, rtvio_sock_type_name(fl->type), rtvio_fmt_size(x, sizeof(x), fl->size),
		    fl->best_effort ? "best-effort" : "real-time");
		if (!fl->best_effort) {
			OUT("period = %s\n", rtvio_fmt_time(x, sizeof(x), fl->period_ns));
			OUT("deadline = %s\n", rtvio_fmt_time(x, sizeof(x), fl->deadline_ns));
			OUT("jitter = %s\n", rtvio_fmt_time(x, sizeof(x), fl->jitter_ns));
			if (fl->priority)
				OUT("priority = %d\n", fl->priority);
		}
	}
	for (int i = 0; i < cfg->nworkloads; i++) {
		const struct rtvio_workload_cfg *w = &cfg->workloads[i];

		OUT("\n[workload %s]\nflow = %s\n", w->name, cfg->flows[w->flow].name);
		if (w->set & RTVIO_WL_PATTERN)
			OUT("pattern = %s\n", rtvio_pattern_name(w->pattern));
		if (w->set & RTVIO_WL_SIZE)
			OUT("size = %s\n", rtvio_fmt_size(x, sizeof(x), w->size));
		if (w->set & RTVIO_WL_PERIOD)
			OUT("period = %s\n", rtvio_fmt_time(x, sizeof(x), w->period_ns));
		if (w->set & RTVIO_WL_OFFSET)
			OUT("offset = %s\n", rtvio_fmt_time(x, sizeof(x), w->offset_ns));
		if (w->set & RTVIO_WL_COUNT)
			OUT("count = %llu\n", (unsigned long long)w->count);
	}
#undef OUT
	if (cfg->platform.line || cfg->platform.present) {
		if (fprintf(f, "\n") < 0)
			ret = -EIO;
		int r = rtvio_platform_write(f, &cfg->platform);

		if (r)
			ret = r;
	}
	return ret;
}

const char *rtvio_policy_name(enum rtvio_policy p)
{
	switch (p) {
	case RTVIO_POLICY_FP: return "fp";
	case RTVIO_POLICY_EDF: return "edf";
	case RTVIO_POLICY_FIFO: return "fifo";
	}
	return "?";
}

int rtvio_policy_parse(const char *s, enum rtvio_policy *p)
{
	static const enum rtvio_policy all[] = { RTVIO_POLICY_FP, RTVIO_POLICY_EDF,
						 RTVIO_POLICY_FIFO };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(s, rtvio_policy_name(all[i])) == 0) {
			*p = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

const char *rtvio_copy_name(enum rtvio_copy c)
{
	return c == RTVIO_COPY_NT ? "nt" : "normal";
}

const char *rtvio_sock_type_name(enum rtvio_sock_type t)
{
	return t == RTVIO_SEQPACKET ? "seqpacket" : "stream";
}

const char *rtvio_pattern_name(enum rtvio_pattern p)
{
	switch (p) {
	case RTVIO_PATTERN_PERIODIC: return "periodic";
	case RTVIO_PATTERN_BULK: return "bulk";
	case RTVIO_PATTERN_OFF: return "off";
	}
	return "?";
}
