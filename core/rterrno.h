/* Error numbers used by core/.
 *
 * core/ is freestanding, and <errno.h> is not a freestanding header, so core/ names
 * the few errors it returns itself. The values are Linux's, so hosted callers compare
 * them with -EINVAL etc. directly (tests/test_vsock.c asserts they match <errno.h>).
 * Every core/ function that can fail returns 0 or a positive count on success and one
 * of these, negated, on failure. */
#ifndef RTVIO_CORE_RTERRNO_H
#define RTVIO_CORE_RTERRNO_H

#define RT_EFAULT 14    /* an address lies outside every memory region */
#define RT_EBUSY 16     /* a head is published again while still in flight */
#define RT_EAGAIN 11    /* not yet: try again later (memory not faulted in yet) */
#define RT_EINVAL 22    /* a malformed ring, descriptor or argument */
#define RT_ENOSPC 28    /* no free descriptors for the chain */
#define RT_E2BIG 7      /* a chain has more segments or bytes than allowed */
#define RT_ELOOP 40     /* a chain visits more descriptors than exist: a loop */
#define RT_EPROTO 71    /* the peer broke a protocol rule (credit, used entries) */

#endif
