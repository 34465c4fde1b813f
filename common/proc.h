/* Child processes for the commands that orchestrate others (`rtvio demo`,
 * `rtvio bench`): start, collect output, stop with a deadline. Not real-time code. */
#ifndef RTVIO_COMMON_PROC_H
#define RTVIO_COMMON_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct proc {
	pid_t pid;
	int out_fd;     /* read end of the child's stdout when captured, else -1 */
	char *out;      /* captured stdout so far (NUL-terminated) */
	size_t out_len, out_cap;
	int status;     /* waitpid status once reaped */
	int reaped;
};

/* What becomes of the child's stdout. */
enum proc_out {
	PROC_INHERIT,   /* ours */
	PROC_CAPTURE,   /* collected by proc_drain() into p->out */
	PROC_TO_STDERR, /* our stderr: its chatter stays out of our stdout */
};

/* Runs argv (argv[0] is looked up in PATH unless it has a slash) with stdin from
 * /dev/null. Returns 0 or a negative errno. */
int proc_start(struct proc *p, const char *const argv[], enum proc_out out);
/* Reads whatever the child has written, waiting at most timeout_ms. */
void proc_drain(struct proc *p, int timeout_ms);
/* Waits up to timeout_ms for the child to exit (draining its output meanwhile);
 * returns 1 when it exited, 0 when it is still running. */
int proc_wait(struct proc *p, int timeout_ms);
/* Sends sig, waits up to timeout_ms, then SIGKILLs and reaps. */
void proc_stop(struct proc *p, int sig, int timeout_ms);
void proc_free(struct proc *p);
/* "exit 0", "killed by SIGKILL", ... for messages. */
const char *proc_status_str(const struct proc *p, char *buf, size_t len);
/* The running rtvio binary, for re-executing it as a subcommand. */
const char *proc_self_exe(void);

#endif
