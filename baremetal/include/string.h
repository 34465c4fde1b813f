/* The four memory functions gvsock, core/ and common/rtmsg.h use, for a cell with
 * no C library (baremetal/rt/libc.c). */
#ifndef RTVIO_BAREMETAL_STRING_H
#define RTVIO_BAREMETAL_STRING_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
