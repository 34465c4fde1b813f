/* `rtvio cell add|remove`, `rtvio flow add|remove`, `rtvio config dump`: run-time
 * changes to a running broker through its control socket (admit.h). Scriptable:
 * exit 0 admitted (or done), 1 refused (the reasons on stderr), 2 bad input, usage or
 * no broker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "broker_cmds.h"
#include "config.h"
#include "control.h"

#define DEFAULT_SOCKET_DIR "/tmp/rtvio"
/* The analysis of a large configuration may take a while; the broker answers once
 * it is done. */
#define TIMEOUT_MS 30000
/* How long a client keeps retrying while another change is being admitted. */
#define BUSY_RETRY_NS 30000000000ull

static void usage(FILE *f, const char *kind)
{
	fprintf(f, "usage: rtvio %s add [--broker SOCKET_DIR|CONFIG] FILE|-\n"
		   "       rtvio %s remove [--broker SOCKET_DIR|CONFIG] NAME\n"
		   "       rtvio config dump [--broker SOCKET_DIR|CONFIG]\n"
		   "\n"
		   "add: the [cell]/[flow] (and [workload]) sections of FILE (or stdin) join the\n"
		   "running broker if its analysis finds every flow, old and new, schedulable\n"
		   "with them; else nothing changes and the flows that would miss are named.\n"
		   "remove: the cell (with every flow naming it, and its connections: peers get\n"
		   "RST) or the flow leaves. config dump: the configuration in force, as INI.\n"
		   "The broker is the one serving SOCKET_DIR (or CONFIG's socket_dir; default\n"
		   DEFAULT_SOCKET_DIR ").\n"
		   "\n"
		   "Exit status: 0 admitted, 1 refused (reasons on stderr), 2 bad input (the\n"
		   "loader's message), bad usage or no broker reachable.\n", kind, kind);
}

/* <dir>/control.sock for SOCKET_DIR or a CONFIG file's socket_dir. */
static int control_path(const char *target, char *path, size_t len)
{
	char dir[RTVIO_PATH_MAX];
	struct stat sb;

	snprintf(dir, sizeof(dir), "%s", target ? target : DEFAULT_SOCKET_DIR);
	if (target && stat(target, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		struct rtvio_config cfg;
		char err[512];

		if (rtvio_config_load(target, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "rtvio: %s\n", err);
			rtvio_config_free(&cfg);
			return -EINVAL;
		}
		snprintf(dir, sizeof(dir), "%s", cfg.broker.socket_dir);
		rtvio_config_free(&cfg);
	}
	snprintf(path, len, "%s/%s", dir, CTL_SOCKET_NAME);
	return 0;
}

static char *read_all(FILE *f)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	while (buf) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);

		len += n;
		if (n == 0)
			break;
		if (len + 1 == cap) {
			char *t = realloc(buf, cap * 2);

			if (!t)
				free(buf);
			buf = t;
			cap *= 2;
		}
	}
	if (buf)
		buf[len] = '\0';
	return buf;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sends req, retrying while the broker is busy with another change; the reply
 * document or NULL (message printed). */
static json_t *ask(const char *path, json_t *req)
{
	char *line = json_dumps(req, JSON_COMPACT), *reply = NULL, *nl;
	uint64_t until = now_ns() + BUSY_RETRY_NS;
	json_t *doc = NULL;

	if (!line || !(nl = malloc(strlen(line) + 2)))
		return free(line), NULL;
	sprintf(nl, "%s\n", line);
	free(line);
	for (;;) {
		int rc = ctl_request(path, nl, &reply, TIMEOUT_MS);

		if (rc < 0) {
			fprintf(stderr, "rtvio: no broker answers on %s: %s\n", path, strerror(-rc));
			break;
		}
		doc = json_loads(reply, 0, NULL);
		free(reply);
		if (!json_is_true(json_object_get(doc, "busy")) || now_ns() > until)
			break;
		json_decref(doc);
		doc = NULL;
		/* Busy: a change in analysis, or one applied less than 10 ms ago. */
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	}
	free(nl);
	return doc;
}

/* Exit status and messages for a change reply. */
static int verdict(const char *what, json_t *doc)
{
	const char *err = json_string_value(json_object_get(doc, "error"));
	json_t *changed = json_object_get(doc, "changed"), *e;
	size_t i;

	if (!json_is_true(json_object_get(doc, "ok"))) {
		fprintf(stderr, "rtvio %s: %s\n", what, err ? err : "the broker refused the request");
		return 2;
	}
	if (!json_is_true(json_object_get(doc, "admitted"))) {
		fprintf(stderr, "rtvio %s: refused: %s\n", what,
			json_string_value(json_object_get(doc, "reasons")) ?: "?");
		return 1;
	}
	json_array_foreach(changed, i, e) {
		const char *c = json_string_value(json_object_get(e, "cell"));
		const char *f = json_string_value(json_object_get(e, "flow"));

		printf("%s %s %s\n", strstr(what, "remove") ? "removed" : "added",
		       c ? "cell" : "flow", c ? c : f ? f : "?");
	}
	printf("generation %lld\n", (long long)json_integer_value(json_object_get(doc, "generation")));
	return 0;
}

static json_t *add_request(const char *file)
{
	FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	char *text;
	json_t *req;

	if (!f) {
		fprintf(stderr, "rtvio: %s: %s\n", file, strerror(errno));
		return NULL;
	}
	text = read_all(f);
	if (f != stdin)
		fclose(f);
	if (!text)
		return NULL;
	req = json_pack("{s:s, s:s, s:s, s:s}", "cmd", "change", "op", "add", "fragment", text,
			"name", strcmp(file, "-") ? file : "stdin");
	free(text);
	return req;
}

int cmd_change(const char *kind, int argc, char **argv)
{
	const char *target = NULL, *arg = NULL, *op = argc > 1 ? argv[1] : "";
	char path[RTVIO_PATH_MAX + 16], what[32];
	json_t *req, *doc;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout, kind);
			return 0;
		} else if (!strcmp(argv[i], "--broker") && i + 1 < argc) {
			target = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "rtvio %s %s: unknown option '%s'\n", kind, op, argv[i]);
			return 2;
		} else if (!arg) {
			arg = argv[i];
		} else {
			fprintf(stderr, "rtvio %s %s: one FILE or NAME only\n", kind, op);
			return 2;
		}
	}
	if (!arg) {
		usage(stderr, kind);
		return 2;
	}
	if (control_path(target, path, sizeof(path)))
		return 2;
	snprintf(what, sizeof(what), "%s %s", kind, op);
	req = !strcmp(op, "add") ? add_request(arg) :
	      json_pack("{s:s, s:s, s:s, s:s}", "cmd", "change", "op", "remove", "kind", kind,
			"name", arg);
	if (!req)
		return 2;
	doc = ask(path, req);
	json_decref(req);
	if (!doc)
		return 2;
	rc = verdict(what, doc);
	json_decref(doc);
	return rc;
}

int cmd_flow(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "add") && strcmp(argv[1], "remove"))) {
		usage(argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr, "flow");
		return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	return cmd_change("flow", argc, argv);
}

int cmd_config(int argc, char **argv)
{
	const char *target = NULL;
	char path[RTVIO_PATH_MAX + 16];
	json_t *req, *doc;
	const char *text;

	if (argc < 2 || strcmp(argv[1], "dump")) {
		bool help = argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));

		usage(help ? stdout : stderr, "cell|flow");
		return help ? 0 : 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--broker") && i + 1 < argc) {
			target = argv[++i];
		} else if (argv[i][0] != '-' && !target) {
			target = argv[i];
		} else {
			fprintf(stderr, "rtvio config dump: unexpected '%s'\n", argv[i]);
			return 2;
		}
	}
	if (control_path(target, path, sizeof(path)))
		return 2;
	req = json_pack("{s:s}", "cmd", "config");
	doc = req ? ask(path, req) : NULL;
	json_decref(req);
	text = json_string_value(json_object_get(doc, "config"));
	if (!text) {
		fprintf(stderr, "rtvio config dump: the broker on %s sent no configuration\n", path);
		json_decref(doc);
		return 2;
	}
	fputs(text, stdout);
	json_decref(doc);
	return 0;
}
