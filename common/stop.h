/* A stop request by SIGINT or SIGTERM, for the commands that run until told to stop
 * (`rtvio demo`, `bench`, `hog` and the bench's relay). One flag per process: the
 * signal is the process's, whoever installed the handler. */
#ifndef RTVIO_COMMON_STOP_H
#define RTVIO_COMMON_STOP_H

#include <signal.h>

/* Set by the handler; the command polls it and may clear it to wait for another. */
extern volatile sig_atomic_t rtvio_stop_requested;

/* Clears the flag and installs the handler for SIGINT and SIGTERM. No SA_RESTART: a
 * system call they interrupt returns EINTR, so a blocked command sees the request. */
void rtvio_stop_on_signals(void);

#endif
