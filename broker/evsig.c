/* Signalling a cell's eventfd without write(2): see evsig.h. */
#include "evsig.h"

#include <errno.h>
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

int evsig_signal(struct evsig *s, int efd)
{
	struct iocb cb = {
		.aio_lio_opcode = IOCB_CMD_PWRITE,
		.aio_fildes = (uint32_t)s->null_fd,
		.aio_buf = (uint64_t)(uintptr_t)&evsig_byte,
		.aio_nbytes = 0,
		.aio_flags = IOCB_FLAG_RESFD,
		.aio_resfd = (uint32_t)efd,
	};
	struct iocb *list[1] = { &cb };
	long n;

	if (!s->ctx || efd < 0)
		return -EBADF;
	if (s->unreaped >= EVSIG_REAP)
		evsig_reap(s);
	n = syscall(SYS_io_submit, (aio_context_t)s->ctx, 1L, list);
	if (n == -1 && errno == EAGAIN) {
		/* Only if completions were left behind: take them and try once more. */
		evsig_reap(s);
		n = syscall(SYS_io_submit, (aio_context_t)s->ctx, 1L, list);
	}
	if (n != 1) {
		s->failures++;
		return n < 0 ? -errno : -EIO;
	}
	s->unreaped++;
	s->signals++;
	return 0;
}
