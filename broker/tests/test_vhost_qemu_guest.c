/* Guest side of test_vhost_qemu.sh: a static program for a Linux VM that connects
 * to CID:PORT over AF_VSOCK and sends COUNT rtmsg messages of SIZE bytes, one per
 * PERIOD_US, as a STREAM or SEQPACKET socket. Prints one line per step so that the
 * host side can read the serial console. Built with -static; runs as the initrd's
 * only program besides busybox.
 *
 * usage: vsend CID PORT COUNT SIZE PERIOD_US stream|seqpacket|seqpacket-eor
 * (seqpacket-eor: each message sent with MSG_EOR). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "rtmsg.h"

static uint8_t buf[1u << 20];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK };
	unsigned int local = 0, count, size, period_us;
	int seq, eor, s, fd;

	if (argc != 7) {
		fprintf(stderr, "usage: vsend CID PORT COUNT SIZE PERIOD_US stream|seqpacket|seqpacket-eor\n");
		return 2;
	}
	a.svm_cid = (unsigned int)strtoul(argv[1], NULL, 0);
	a.svm_port = (unsigned int)strtoul(argv[2], NULL, 0);
	count = (unsigned int)strtoul(argv[3], NULL, 0);
	size = (unsigned int)strtoul(argv[4], NULL, 0);
	period_us = (unsigned int)strtoul(argv[5], NULL, 0);
	eor = !strcmp(argv[6], "seqpacket-eor");
	seq = eor || !strcmp(argv[6], "seqpacket");
	if (size < RTMSG_HDR || size > sizeof(buf))
		return 2;
	fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &local) == 0)
		printf("vsend: local cid %u\n", local);
	s = socket(AF_VSOCK, seq ? SOCK_SEQPACKET : SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		printf("vsend: connect %u:%u: %s\n", a.svm_cid, a.svm_port, strerror(errno));
		return 1;
	}
	/* A receiver that stops reading must not keep the VM up for long. */
	{
		struct timeval tv = { .tv_sec = 10 };

		setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	for (unsigned int i = 0; i < count; i++) {
		size_t off = 0;

		/* The guest's clock is not the host's: no stamp, integrity only. */
		rtmsg_fill(buf, size, i, 0);
		while (off < size) {
			ssize_t n = send(s, buf + off, size - off, eor ? MSG_EOR : 0);

			if (n < 0) {
				printf("vsend: send %u: %s\n", i, strerror(errno));
				return 1;
			}
			off += (size_t)n;
			if (seq && off != size) {
				printf("vsend: short seqpacket send %u\n", i);
				return 1;
			}
		}
		if (period_us) {
			uint64_t until = now_ns() + period_us * 1000ull;

			while (now_ns() < until)
				usleep(100);
		}
	}
	printf("vsend: sent %u messages of %u bytes (%s) to %u:%u\n", count, size,
	       seq ? "seqpacket" : "stream", a.svm_cid, a.svm_port);
	/* Let the last bytes leave before the socket goes. */
	shutdown(s, SHUT_WR);
	sleep(1);
	close(s);
	return 0;
}
