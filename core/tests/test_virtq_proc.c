/* Driver and device in two processes sharing only a memfd, as a process cell and
 * the broker do: the device maps the memfd at an address of its own and reaches the
 * ring and every buffer through its memory table; kicks and notifications travel
 * over eventfds, sent only when the ring asks for them. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtq.h"
#include "vqenv.h"
#include "vqpair.h"

#define WAIT_MS 20000

struct fds {
	int kick, call;
};

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

static int wait_fd(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t n;
	int r;

	while ((r = poll(&p, 1, WAIT_MS)) < 0 && errno == EINTR)
		;
	if (r != 1 || read(fd, &n, sizeof(n)) != sizeof(n))
		return -1;
	return 0;
}

static void kick(void *ctx)
{
	signal_fd(((struct fds *)ctx)->kick);
}

static int wait_kick(void *ctx)
{
	return wait_fd(((struct fds *)ctx)->kick);
}

static void call(void *ctx)
{
	signal_fd(((struct fds *)ctx)->call);
}

static int wait_call(void *ctx)
{
	return wait_fd(((struct fds *)ctx)->call);
}

/* The device process: its own mapping, its own view of the ring. */
static int device_main(int memfd, size_t size, unsigned int num, uint64_t features,
		       const struct vqpair_ops *ops, const void *driver_view)
{
	uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	struct vq_mem_region region;
	uint64_t inflight[VQ_INFLIGHT_WORDS(VQ_MAX_SIZE)];
	struct vqpair_stats st = { 0 };
	struct vq_device dev;
	struct vq_ring ring;

	if (mem == MAP_FAILED || mem == driver_view)
		return 1;
	region = (struct vq_mem_region){ .gpa = VQENV_GPA, .size = size, .host = mem };
	if (vq_ring_at(&ring, mem, num) ||
	    vq_device_init(&dev, &ring, &region, 1, inflight, features, 0))
		return 1;
	return vqpair_device(&dev, ops, 4, &st) ? 1 : 0;
}

static void run(unsigned int num, uint64_t features, uint64_t total)
{
	size_t size = vqenv_size(num, num, 8);
	int memfd = memfd_create("rtvio-test-ring", MFD_CLOEXEC);
	struct fds fds = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
	struct vqpair_ops ops = { kick, wait_kick, call, wait_call, &fds };
	struct vqpair_stats st = { 0 };
	struct vqenv e = { 0 };
	uint8_t *mem;
	pid_t pid;
	int status, r;

	assert_true(memfd >= 0 && fds.kick >= 0 && fds.call >= 0);
	assert_int_equal(ftruncate(memfd, (off_t)size), 0);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(vqenv_setup(&e, mem, size, num, features, num, 8, 1, 0), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(device_main(memfd, size, num, features, &ops, mem));
	r = vqpair_driver(&e, &ops, total, &st);
	if (r)
		kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(r, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(st.chains, total + 1);
	assert_int_equal(vq_driver_num_free(&e.drv), num);
	print_message("# num %u: %llu chains, %llu kicks, %llu driver sleeps\n", num,
		      (unsigned long long)total, (unsigned long long)st.kicks,
		      (unsigned long long)st.sleeps);
	free(e.slot);
	munmap(mem, size);
	close(memfd);
	close(fds.kick);
	close(fds.call);
}

static void processes_event_idx(void **state)
{
	(void)state;
	run(8, 1ull << VIRTIO_F_EVENT_IDX, 100000);
}

static void processes_flags(void **state)
{
	(void)state;
	run(64, 0, 100000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(processes_event_idx),
		cmocka_unit_test(processes_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
