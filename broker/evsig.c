/* Signalling a cell's eventfd without write(2): see evsig.h. */
#include "evsig.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The payload of the zero-byte write: never read, but the pointer must be valid. */
static char evsig_byte;

static void evsig_reap(struct evsig *s)
{
	struct io_event ev[EVSIG_REAP];
	struct timespec zero = { 0, 0 };
	long n;

	/* min_nr = 0 and a zero timeout: takes what is there and never waits. Every
	 * request completed inside io_submit, so everything submitted is there. */
	do {
		n = syscall(SYS_io_getevents, (aio_context_t)s->ctx, 0L, (long)EVSIG_REAP, ev,
			    &zero);
	} while (n == (long)EVSIG_REAP);
	s->unreaped = 0;
}

int evsig_open(struct evsig *s)
{
	aio_context_t ctx = 0;

	memset(s, 0, sizeof(*s));
	s->null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (s->null_fd < 0)
		return -errno;
	if (syscall(SYS_io_setup, (unsigned)EVSIG_RING, &ctx) < 0) {
		int rc = -errno;

		close(s->null_fd);
		s->null_fd = -1;
		return rc;
	}
	s->ctx = ctx;
	return 0;
}

void evsig_close(struct evsig *s)
{
	if (s->ctx)
		syscall(SYS_io_destroy, (aio_context_t)s->ctx);
	if (s->null_fd >= 0)
		close(s->null_fd);
	s->ctx = 0;
	s->null_fd = -1;
}

static void evsig_iocb(const struct evsig *s, struct iocb *cb, int efd)
{
	*cb = (struct iocb){
		.aio_lio_opcode = IOCB_CMD_PWRITE,
		.aio_fildes = (uint32_t)s->null_fd,
		.aio_buf = (uint64_t)(uintptr_t)&evsig_byte,
		.aio_nbytes = 0,
		.aio_flags = IOCB_FLAG_RESFD,
		.aio_resfd = (uint32_t)efd,
	};
}

/* Submits list[0..n): io_submit takes them in order and stops at the first it
 * refuses (returning how many it took, or -1 when that is the first): the refused
 * one is counted and skipped, the rest submitted again. */
static int submit(struct evsig *s, struct iocb **list, long n)
{
	int rc = 0;
	bool retried = false;

	if (s->unreaped + (unsigned int)n > EVSIG_REAP)
		evsig_reap(s);
	while (n > 0) {
		long k = syscall(SYS_io_submit, (aio_context_t)s->ctx, n, list);

		s->submits++;
		if (k > 0) {
			s->unreaped += (unsigned int)k;
			s->signals += (uint64_t)k;
			list += k;
			n -= k;
			continue;
		}
		if (k < 0 && errno == EAGAIN && !retried) {
			/* Only if completions were left behind: take them, once. */
			evsig_reap(s);
			retried = true;
			continue;
		}
		s->failures++;
		if (!rc)
			rc = k < 0 ? -errno : -EIO;
		list++;
		n--;
	}
	return rc;
}

int evsig_flush(struct evsig *s)
{
	struct iocb cb[EVSIG_BATCH], *list[EVSIG_BATCH];
	unsigned int n = s->n_queued;

	s->n_queued = 0;
	if (!n)
		return 0;
	for (unsigned int i = 0; i < n; i++) {
		evsig_iocb(s, &cb[i], s->queued[i]);
		list[i] = &cb[i];
	}
	return submit(s, list, (long)n);
}

int evsig_queue(struct evsig *s, int efd)
{
	if (!s->ctx || efd < 0)
		return -EBADF;
	s->queued[s->n_queued++] = efd;
	if (s->n_queued == EVSIG_BATCH)
		return evsig_flush(s);
	return 0;
}

int evsig_signal(struct evsig *s, int efd)
{
	struct iocb cb, *list[1] = { &cb };

	if (!s->ctx || efd < 0)
		return -EBADF;
	evsig_iocb(s, &cb, efd);
	return submit(s, list, 1);
}
