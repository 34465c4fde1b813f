/* The CPU latency PM QoS hold: see pmqos.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "pmqos.h"

int pmqos_hold(int latency_us)
{
	int32_t v = latency_us;
	int fd;

	if (latency_us < 0)
		return -EINVAL;
	fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The device takes the value as a binary 32-bit integer (or as text). */
	if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
		int e = errno ? errno : EIO;

		close(fd);
		return -e;
	}
	return fd;
}

void pmqos_release(int fd)
{
	if (fd >= 0)
		close(fd);
}
