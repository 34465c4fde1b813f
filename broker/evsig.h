/* Signalling an eventfd a cell holds, in a way the cell cannot make block.
 *
 * A cell shares the open file of every eventfd it hands the broker (call and error
 * eventfds), flags included: it can clear O_NONBLOCK and raise the counter to its
 * maximum, and a write(2) by the broker would then sleep until the cell reads. So
 * the broker never write(2)s to them. It submits a Linux AIO request that cannot
 * block (a zero-byte write to /dev/null) with IOCB_FLAG_RESFD set to the cell's
 * eventfd: the kernel completes it inside io_submit and signals the eventfd with
 * eventfd_signal(), the in-kernel path vhost uses, which adds to the counter under
 * a spinlock, saturates instead of waiting, and never looks at the file's flags.
 * See docs/broker.md, *Nothing a cell holds can block the broker*. */
#ifndef RTVIO_BROKER_EVSIG_H
#define RTVIO_BROKER_EVSIG_H

#include <stdint.h>

/* Completions reaped with one io_getevents once EVSIG_REAP signals are unreaped; the
 * context holds EVSIG_RING, more than EVSIG_REAP + EVSIG_BATCH, so submission never
 * finds it full. A batch of up to EVSIG_BATCH signals goes in one io_submit. */
#define EVSIG_RING 256u
#define EVSIG_REAP 64u
#define EVSIG_BATCH 32u

struct evsig {
	uint64_t ctx;       /* aio_context_t, 0 none */
	int null_fd;        /* /dev/null, the request's target */
	unsigned int unreaped;
	unsigned int n_queued;
	int queued[EVSIG_BATCH]; /* eventfds of the batch not yet submitted */
	uint64_t signals;   /* eventfds signalled */
	uint64_t failures;  /* submissions refused (a closed or foreign descriptor) */
	uint64_t submits;   /* io_submit calls */
};

/* Sets up the AIO context and opens /dev/null (the only allocations: at start). */
int evsig_open(struct evsig *s);
void evsig_close(struct evsig *s);

/* Adds 1 to the counter of eventfd efd without ever sleeping, whatever the file's
 * flags and counter. Returns 0, or -errno (-EBADF/-EINVAL: efd is no eventfd). */
int evsig_signal(struct evsig *s, int efd);

/* The same, batched: evsig_queue adds efd to the batch (submitting the batch when it
 * is full), evsig_flush submits the batch in one system call. Returns 0, or the
 * first -errno of a refused signal (the others still go). */
int evsig_queue(struct evsig *s, int efd);
int evsig_flush(struct evsig *s);

#endif
