/* Where an error is born: `return trace_error(-EINVAL);` returns the code unchanged and,
 * in builds with -DRTVIO_TRACE_ERRORS, first prints "file:line: function: error -22
 * (Invalid argument)" on stderr (after Jailhouse's trace_error). A failure that
 * surfaces far from its cause can then be traced without a debugger. Off by default:
 * stdio has no place on the real-time path, so enable it for debugging only. */
#ifndef RTVIO_COMMON_LOG_H
#define RTVIO_COMMON_LOG_H

#ifdef RTVIO_TRACE_ERRORS
#include <stdio.h>
#include <string.h>
#endif

static inline int rtvio_trace_error_at(int code, const char *file, int line, const char *func)
{
#ifdef RTVIO_TRACE_ERRORS
	fprintf(stderr, "%s:%d: %s: error %d (%s)\n", file, line, func, code,
		strerror(code < 0 ? -code : code));
#else
	(void)file;
	(void)line;
	(void)func;
#endif
	return code;
}

#define trace_error(code) rtvio_trace_error_at((code), __FILE__, __LINE__, __func__)

#endif
