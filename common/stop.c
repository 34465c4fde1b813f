/* The process's stop flag and the handler that sets it. */
#include "stop.h"

volatile sig_atomic_t rtvio_stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	rtvio_stop_requested = 1;
}

void rtvio_stop_on_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	rtvio_stop_requested = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}
