/* host_client: a host program of the host-endpoint tests (tests/e2e_host.py), the
 * way a Firecracker user's program talks to a guest: connect to the broker's
 * uds_path, write "CONNECT P\n", read "OK <port>\n", then plain bytes.
 *
 *   host_client echo UDS PORT BYTES   sends BYTES of a pattern and checks every byte
 *                                     the cell echoes back (sending and reading
 *                                     interleaved through poll)
 *   host_client stall UDS PORT SECS   sends as much as it can, never reads, for SECS
 *
 * Prints one line; exits 0 when it saw what the test expects, 1 when not, 2 on usage
 * or set-up errors. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint8_t pattern_byte(unsigned long long i)
{
	return (uint8_t)(i * 131u + (i >> 12));
}

/* Connected and greeted, or -1. The "OK" line is read a byte at a time so that no
 * data after it is consumed here. */
static int open_host(const char *uds, const char *port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char line[64];
	size_t n = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    dprintf(fd, "CONNECT %s\n", port) < 0)
		return -1;
	while (n < sizeof(line) - 1 && read(fd, &line[n], 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		printf("host_client: no OK line (got '%s')\n", line);
		close(fd);
		return -1;
	}
	return fd;
}

static int echo(int fd, unsigned long long bytes)
{
	unsigned long long sent = 0, got = 0, bad = 0;
	uint8_t buf[8192];

	while (got < bytes) {
		struct pollfd p = { fd, POLLIN | (sent < bytes ? POLLOUT : 0), 0 };

		if (poll(&p, 1, 10000) <= 0)
			break;
		if ((p.revents & POLLOUT) && sent < bytes) {
			size_t n = bytes - sent < sizeof(buf) ? (size_t)(bytes - sent) : sizeof(buf);

			for (size_t i = 0; i < n; i++)
				buf[i] = pattern_byte(sent + i);
			ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (w < 0 && errno != EAGAIN)
				break;
			sent += w > 0 ? (unsigned long long)w : 0;
		}
		if (p.revents & (POLLIN | POLLHUP)) {
			ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (r == 0 || (r < 0 && errno != EAGAIN))
				break;
			for (ssize_t i = 0; i < r; i++)
				bad += buf[i] != pattern_byte(got + (unsigned long long)i);
			got += r > 0 ? (unsigned long long)r : 0;
		}
	}
	printf("host_client echo: %llu bytes sent, %llu echoed, %llu wrong\n", sent, got, bad);
	return got == bytes && !bad ? 0 : 1;
}

static int stall(int fd, int seconds)
{
	time_t end = time(NULL) + seconds;
	unsigned long long sent = 0;
	uint8_t buf[8192];

	memset(buf, 0x5a, sizeof(buf));
	while (time(NULL) < end) {
		ssize_t w = send(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w > 0)
			sent += (unsigned long long)w;
		else
			usleep(10000);
	}
	printf("host_client stall: %llu bytes sent, none read\n", sent);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5 || (strcmp(argv[1], "echo") && strcmp(argv[1], "stall"))) {
		fprintf(stderr, "usage: see the comment at the top of tests/host_client.c\n");
		return 2;
	}
	int fd = open_host(argv[2], argv[3]);

	if (fd < 0) {
		printf("host_client: cannot connect through %s to port %s\n", argv[2], argv[3]);
		return 1;
	}
	int rc = !strcmp(argv[1], "echo") ? echo(fd, strtoull(argv[4], NULL, 0)) :
					    stall(fd, atoi(argv[4]));

	close(fd);
	return rc;
}
