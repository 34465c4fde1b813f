/* Keeping idle cores awake: a hold on the kernel's CPU latency PM QoS request
 * (/dev/cpu_dma_latency), as cyclictest takes one. With it, an idle core polls
 * instead of entering a sleep state, so waking a thread there costs microseconds
 * rather than the tens a halted vCPU needs (notes on this machine: ~21 µs halted,
 * ~3.7 µs held), and the broker's own notifications, which do that waking inside
 * its non-preemptive steps, stay short. The hold lasts while the descriptor is
 * open: the kernel drops it when the holder exits, however it exits. */
#ifndef RTVIO_PMQOS_H
#define RTVIO_PMQOS_H

/* Asks that no core take longer than latency_us to wake (0: never sleep). Returns
 * the descriptor that holds the request, or negative errno (-EACCES without the
 * privilege, -ENOENT without the device). */
int pmqos_hold(int latency_us);

/* Ends the hold (fd < 0: nothing). */
void pmqos_release(int fd);

#endif
