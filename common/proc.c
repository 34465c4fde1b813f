/* Child-process plumbing for orchestrating commands. */
#include "clock.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	return (long long)(rtvio_now_ns() / 1000000u);
}

int proc_start(struct proc *p, const char *const argv[], enum proc_out out)
{
	int pipefd[2] = { -1, -1 };
	bool capture = out == PROC_CAPTURE;
	pid_t parent;

	memset(p, 0, sizeof(*p));
	p->out_fd = -1;
	if (capture && pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	parent = getpid();
	p->pid = fork();
	if (p->pid < 0) {
		int err = -errno;

		if (capture) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return err;
	}
	if (p->pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		/* A process group of its own: a terminal's Ctrl-C reaches only the
		 * orchestrating command, which then stops its children in order (cells
		 * before their broker). Should that command die instead, its children
		 * are told to stop too. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		if (capture)
			dup2(pipefd[1], STDOUT_FILENO);
		else if (out == PROC_TO_STDERR)
			dup2(STDERR_FILENO, STDOUT_FILENO);
		/* execvp's prototype predates const; it does not write the strings. */
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "rtvio: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (capture) {
		close(pipefd[1]);
		p->out_fd = pipefd[0];
	}
	return 0;
}

static void append(struct proc *p, const char *buf, size_t n)
{
	if (p->out_len + n + 1 > p->out_cap) {
		size_t cap = p->out_cap ? p->out_cap : 4096;
		char *grown;

		while (p->out_len + n + 1 > cap)
			cap *= 2;
		grown = realloc(p->out, cap);
		if (!grown)
			return; /* keep what we have; the caller sees truncated output */
		p->out = grown;
		p->out_cap = cap;
	}
	memcpy(p->out + p->out_len, buf, n);
	p->out_len += n;
	p->out[p->out_len] = '\0';
}

void proc_drain(struct proc *p, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (p->out_fd >= 0) {
		struct pollfd pfd = { .fd = p->out_fd, .events = POLLIN };
		long long left = end - now_ms();
		char buf[4096];
		ssize_t n;

		if (poll(&pfd, 1, left > 0 ? (int)left : 0) <= 0)
			return;
		n = read(p->out_fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			close(p->out_fd);
			p->out_fd = -1;
			return;
		}
		append(p, buf, (size_t)n);
	}
}

int proc_wait(struct proc *p, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (!p->reaped) {
		pid_t r = waitpid(p->pid, &p->status, WNOHANG);

		if (r == p->pid) {
			p->reaped = 1;
			break;
		}
		if (r < 0 && errno != EINTR) {
			p->reaped = 1; /* not our child any more: nothing to wait for */
			break;
		}
		if (now_ms() >= end)
			return 0;
		/* Drain while waiting: a child blocked on a full pipe never exits. */
		if (p->out_fd >= 0)
			proc_drain(p, 20);
		else
			usleep(20000);
	}
	proc_drain(p, 1000);
	return 1;
}

void proc_stop(struct proc *p, int sig, int timeout_ms)
{
	if (p->reaped || p->pid <= 0)
		return;
	kill(p->pid, sig);
	if (!proc_wait(p, timeout_ms)) {
		kill(p->pid, SIGKILL);
		proc_wait(p, 5000);
	}
}

void proc_free(struct proc *p)
{
	if (p->out_fd >= 0)
		close(p->out_fd);
	free(p->out);
	memset(p, 0, sizeof(*p));
	p->out_fd = -1;
}

const char *proc_status_str(const struct proc *p, char *buf, size_t len)
{
	if (!p->reaped)
		snprintf(buf, len, "still running");
	else if (WIFEXITED(p->status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(p->status));
	else if (WIFSIGNALED(p->status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(p->status),
			 strsignal(WTERMSIG(p->status)));
	else
		snprintf(buf, len, "status 0x%x", (unsigned)p->status);
	return buf;
}

const char *proc_self_exe(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	if (n <= 0)
		return "rtvio";
	path[n] = '\0';
	return path;
}
