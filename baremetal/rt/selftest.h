/* Boot-time self-check of byte order and alignment handling (see selftest.c). */
#ifndef RTVIO_BAREMETAL_SELFTEST_H
#define RTVIO_BAREMETAL_SELFTEST_H

/* Number of failed checks (0: all good); each failure is printed. */
int bm_selftest(void);

#endif
