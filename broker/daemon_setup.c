/* Opening the broker (its cells' sockets, the data plane, the event descriptors, the
 * control socket, real-time settings) and closing it again. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "daemon_int.h"
#include "live.h"
#include "pmqos.h"
#include "stat_json.h"

/* ---- set-up and teardown --------------------------------------------------------------- */

const char *broker_cell_state_name(enum broker_cell_state s)
{
	switch (s) {
	case BROKER_CELL_WAITING:
		return "waiting";
	case BROKER_CELL_CONNECTED:
		return "connected";
	default:
		return "broken";
	}
}

/* mkdir -p with mode 0700 for what is created; an existing directory is kept. */
static int make_dir(const char *path, char *err, size_t errlen)
{
	char tmp[RTVIO_PATH_MAX];
	struct stat st;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create socket_dir %s: %s", tmp, strerror(errno));
		return -errno;
	}
	if (stat(tmp, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "socket_dir %s is not a directory", tmp);
		return -ENOTDIR;
	}
	return 0;
}

/* dst = dir/name+suffix into a sockaddr_un-sized buffer; false when it does not fit
 * (the config loader already refuses such paths). */
static bool join_path(char dst[RTVIO_PATH_MAX], const char *dir, const char *name,
		      const char *suffix)
{
	size_t a = strlen(dir), n = strlen(name), s = strlen(suffix);

	if (a + 1 + n + s + 1 > RTVIO_PATH_MAX)
		return false;
	memcpy(dst, dir, a);
	dst[a] = '/';
	memcpy(dst + a + 1, name, n);
	memcpy(dst + a + 1 + n, suffix, s + 1);
	return true;
}

/* Slot i as the configuration now describes it (a vacant slot gets its event
 * sources and closed descriptors only). */
static void cell_init_slot(struct broker *b, unsigned int i)
{
	const struct rtvio_cell_cfg *cc = &b->cfg->cells[i];
	struct cell *c = &b->cells[i];

	memset(c, 0, sizeof(*c));
	c->br = b;
	c->idx = i;
	c->listen_fd = -1;
	c->kick_reg[0] = c->kick_reg[1] = -1;
	c->src_listen = (struct ev_src){ .kind = SRC_LISTEN, .cell = i };
	c->src_conn = (struct ev_src){ .kind = SRC_CONN, .cell = i };
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		c->src_kick[q] = (struct ev_src){ .kind = SRC_KICK, .cell = i, .queue = q };
	vhu_backend_init(&c->vhu, cc->name, cc->cid, &daemon_dev_ops, c);
	c->vhu.verbose = b->opts.verbose;
	c->vhu.evsig = &b->evsig;
	/* Its memory is faulted in off the loop, by the populate thread, before its
	 * device starts (populate.h); a process cell's file is sealed so that the
	 * cell cannot take pages out of it again (vhost_user.h, `seal`). A memory
	 * table change stays at most VHU_MAX_REGIONS mmap and munmap calls in the loop,
	 * whatever the sizes (the vhost-user budget charges that, docs/broker.md). */
	c->vhu.seal = !cc->vm;
	c->vhu.pop = &b->pop;
	c->vhu.maps = vhu_pop_slots(&b->pop, i);
	/* A cell maps no more than the configuration grants it. */
	c->vhu.max_mem = cc->vm ? cc->memory : cc->region;
	c->vhu.max_mem_key = cc->vm ? "memory" : "region";
}

/* The populate thread, started before the broker pins itself: on the cpus the
 * process may use minus the broker's cores (all of them when that leaves none). */
static int broker_open_pop(struct broker *b)
{
	const struct rtvio_broker_cfg *bc = &b->cfg->broker;
	int cores[RTVIO_MAX_BROKER_CORES + 1];
	cpu_set_t allowed, cpus;
	int n = 0;

	cores[n++] = bc->cpu;
	for (int k = 0; k < bc->ncores && k < RTVIO_MAX_BROKER_CORES; k++)
		cores[n++] = bc->cpus[k];
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return vhu_pop_open(&b->pop, b->ncells, NULL);
	vhu_pop_cpus(&allowed, cores, n, &cpus);
	return vhu_pop_open(&b->pop, b->ncells, &cpus);
}

/* The broker object with every descriptor closed (-1) and every event source named,
 * its cells' vhost-user back ends initialised from the configuration. */
static struct broker *broker_alloc(const struct rtvio_config *cfg, const struct broker_opts *opts)
{
	struct broker *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	/* The broker owns the live configuration from here on. */
	b->live = *cfg;
	b->cfg = &b->live;
	b->opts = *opts;
	b->ep = b->kick_ep = b->sig_fd = b->wake_fd = b->ctl_fd = b->qos_fd = -1;
	b->evsig.null_fd = -1;
	b->dp_evsig.null_fd = -1;
	for (unsigned int k = 0; k < RTVIO_MAX_BROKER_CORES; k++)
		b->dp_core_evsig[k].null_fd = -1;
	b->multicore = cfg->broker.ncores > 1;
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++) {
		b->ctl[i].fd = -1;
		b->src_ctl[i] = (struct ev_src){ .kind = SRC_CTL_CLIENT, .slot = i };
	}
	b->src_ctl_listen.kind = SRC_CTL_LISTEN;
	b->src_sig.kind = SRC_SIGNAL;
	b->src_wake.kind = SRC_WAKE;
	atomic_init(&b->stop, false);
	b->src_admit.kind = SRC_ADMIT;
	b->src_host.kind = SRC_HOST;
	b->src_pop.kind = SRC_POPULATE;
	b->pop.work_fd = b->pop.done_fd = -1;
	b->ncells = (unsigned int)cfg->ncells;
	b->cells = calloc(b->ncells ? b->ncells : 1, sizeof(*b->cells));
	b->vhu_rr = calloc(b->ncells ? b->ncells : 1, sizeof(*b->vhu_rr));
	if (!b->cells || !b->vhu_rr) {
		free(b->vhu_rr);
		b->vhu_rr = NULL;
		free(b->cells);
		b->cells = NULL;
		return b; /* the caller sees cells == NULL */
	}
	if (broker_open_pop(b) < 0) {
		free(b->vhu_rr);
		b->vhu_rr = NULL;
		free(b->cells);
		b->cells = NULL;
		return b;
	}
	for (unsigned int i = 0; i < b->ncells; i++)
		cell_init_slot(b, i);
	return b;
}

/* epoll, the wake eventfd, the signal descriptor, SIGPIPE ignored and the SIGBUS
 * guard. */
static int broker_open_events(struct broker *b, char *err, size_t errlen)
{
	sigset_t mask;
	int rc;

	rc = evsig_open(&b->evsig);
	if (!rc && b->multicore)
		rc = evsig_open(&b->dp_evsig);
	for (int k = 0; !rc && b->multicore && k < b->cfg->broker.ncores; k++)
		rc = evsig_open(&b->dp_core_evsig[k]);
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up eventfd signalling (Linux AIO): %s",
			 strerror(-rc));
		return rc;
	}
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	if (b->multicore)
		b->kick_ep = epoll_create1(EPOLL_CLOEXEC);
	b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->ep < 0 || b->wake_fd < 0 || (b->multicore && b->kick_ep < 0)) {
		rc = -errno;
		snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
		return rc;
	}
	/* SIGTERM/SIGINT arrive through a descriptor the loop already watches. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &mask, &b->old_mask) == 0)
		b->mask_set = true;
	b->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (b->sig_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = vhu_sigbus_install();
	if (rc < 0)
		snprintf(err, errlen, "cannot install the SIGBUS guard: %s", strerror(-rc));
	return rc;
}

/* Cell i's socket <socket_dir>/<cell>.sock, listening. */
static int cell_listen(struct broker *b, unsigned int i, char *err, size_t errlen)
{
	struct cell *c = &b->cells[i];
	const struct rtvio_config *cfg = b->cfg;
	int rc;

	if (!join_path(c->path, cfg->broker.socket_dir, cfg->cells[i].name, ".sock")) {
		snprintf(err, errlen, "socket path for cell %s too long", cfg->cells[i].name);
		return -ENAMETOOLONG;
	}
	rc = ctl_listen_unix(c->path, 4, err, errlen);
	if (rc < 0) {
		c->path[0] = '\0';
		return rc;
	}
	c->listen_fd = rc;
	return 0;
}

/* One listening socket per cell and the control socket in socket_dir, all of them
 * and the loop's own descriptors in epoll. */
static int broker_open_sockets(struct broker *b, char *err, size_t errlen)
{
	const struct rtvio_config *cfg = b->cfg;
	int rc = make_dir(cfg->broker.socket_dir, err, errlen);

	if (rc < 0)
		return rc;
	for (unsigned int i = 0; i < b->ncells; i++) {
		if (cfg->cells[i].vacant)
			continue;
		/* The host endpoint is driven by the broker itself: no vhost-user socket. */
		rc = cfg->cells[i].host ? host_open(cfg, i, b->dp, &b->host, err, errlen) :
					  cell_listen(b, i, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (!join_path(b->ctl_path, cfg->broker.socket_dir, CTL_SOCKET_NAME, "")) {
		snprintf(err, errlen, "control socket path too long");
		return -ENAMETOOLONG;
	}
	rc = ctl_listen_unix(b->ctl_path, 8, err, errlen);
	if (rc < 0) {
		b->ctl_path[0] = '\0';
		return rc;
	}
	b->ctl_fd = rc;
	rc = daemon_ep_add(b, b->sig_fd, &b->src_sig);
	if (!rc)
		rc = daemon_ep_add(b, b->wake_fd, &b->src_wake);
	if (!rc)
		rc = daemon_ep_add(b, b->ctl_fd, &b->src_ctl_listen);
	for (unsigned int i = 0; !rc && i < b->ncells; i++)
		if (b->cells[i].listen_fd >= 0)
			rc = daemon_ep_add(b, b->cells[i].listen_fd, &b->cells[i].src_listen);
	if (!rc)
		rc = daemon_ep_add(b, admit_fd(b->adm), &b->src_admit);
	if (!rc)
		rc = daemon_ep_add(b, vhu_pop_fd(&b->pop), &b->src_pop);
	if (!rc && b->host)
		rc = daemon_ep_add(b, host_fd(b->host), &b->src_host);
	if (rc < 0)
		snprintf(err, errlen, "epoll_ctl: %s", strerror(-rc));
	return rc;
}

static void admit_cell_close(void *ctx, unsigned int slot);

/* A cell added at run time: its slot is filled in the configuration. */
static int admit_cell_open(void *ctx, unsigned int slot, char *err, size_t errlen)
{
	struct broker *b = ctx;
	struct cell *c = &b->cells[slot];
	int rc;

	cell_init_slot(b, slot);
	rc = cell_listen(b, slot, err, errlen);
	if (!rc)
		rc = daemon_ep_add(b, c->listen_fd, &c->src_listen);
	if (rc < 0)
		admit_cell_close(ctx, slot);
	return rc;
}

/* A cell leaving: its front end is cut off (the data plane resets its peers'
 * connections, its memory is unmapped) and its socket goes. */
static void admit_cell_close(void *ctx, unsigned int slot)
{
	struct broker *b = ctx;
	struct cell *c = &b->cells[slot];

	if (c->vhu.sock >= 0)
		daemon_cell_disconnect(c, BROKER_CELL_WAITING);
	/* Nothing of it is to be watched again once its budget is back. */
	c->conn_paused = c->listen_paused = false;
	c->rr_wait = 0;
	if (c->listen_fd >= 0) {
		daemon_ep_del(b, c->listen_fd);
		close(c->listen_fd);
	}
	if (c->path[0])
		unlink(c->path);
	c->listen_fd = -1;
	c->path[0] = '\0';
	c->broken_pending = false;
	daemon_update_must_poll(b);
}

int broker_open(const struct rtvio_config *cfg, const struct broker_opts *opts,
		struct broker **out, char *err, size_t errlen)
{
	struct dp_hooks hooks = { .notify = daemon_hook_notify,
				  .notify_flush = daemon_hook_notify_flush,
				  .notify_core = daemon_hook_notify_core,
				  .notify_flush_core = daemon_hook_notify_flush_core,
				  .broken = daemon_hook_broken,
				  .conn_limit = daemon_hook_conn_limit, .now = NULL,
				  .wake = daemon_hook_wake,
				  .gate_wait = daemon_hook_gate_wait };
	struct broker *b;
	int rc;

	static const struct admit_ops aops = { .cell_open = admit_cell_open,
					       .cell_close = admit_cell_close };
	struct rtvio_config live;

	*out = NULL;
	/* A kernel without what the memory thread and the seals need: refused, named. */
	rc = vhu_pop_probe(err, errlen);
	if (rc < 0)
		return rc;
	if (live_create(cfg, &live)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b = broker_alloc(&live, opts);
	if (!b)
		rtvio_config_free(&live); /* else b owns it */
	if (!b || !b->cells) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	rc = dp_create(b->cfg, &hooks, b, &b->dp);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create the data plane: %s", strerror(-rc));
		goto fail;
	}
	rc = admit_create(&b->live, b->dp, &aops, b, &b->adm);
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up admission: %s", strerror(-rc));
		goto fail;
	}
	rc = broker_open_events(b, err, errlen);
	if (!rc)
		rc = broker_open_sockets(b, err, errlen);
	if (rc < 0)
		goto fail;
	b->start_ns = rtvio_now_ns();
	*out = b;
	return 0;
fail:
	broker_close(b);
	return rc;
}

void broker_apply_rt(struct broker *b)
{
	const struct rtvio_broker_cfg *bc = &b->cfg->broker;

	/* Several cores: each data-plane thread pins itself and takes SCHED_FIFO
	 * (broker/dp_mc.c); this thread is the event loop's, left to the scheduler. */
	if (bc->cpu >= 0 && !b->multicore) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(bc->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			fprintf(stderr, "rtvio broker: warning: cannot pin to cpu %d (%s): running "
					"unpinned\n", bc->cpu, strerror(errno));
	}
	/* Idle cpus kept awake: a notification inside a step then wakes its cell
	 * without a halted cpu to rouse (the cost rtvio calibrate puts in
	 * packet_overhead assumes the same setting). */
	if (bc->pm_qos && b->qos_fd < 0) {
		b->qos_fd = pmqos_hold(0);
		if (b->qos_fd < 0)
			fprintf(stderr, "rtvio broker: warning: cannot keep idle cpus awake "
					"(/dev/cpu_dma_latency: %s): wake-ups cost more than with "
					"pm_qos held\n", strerror(-b->qos_fd));
	}
	if (bc->rt_priority > 0 && !b->multicore) {
		struct sched_param sp = { .sched_priority = bc->rt_priority };

		if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
			fprintf(stderr, "rtvio broker: warning: SCHED_FIFO %d not permitted (%s): "
					"running SCHED_OTHER\n", bc->rt_priority, strerror(errno));
	}
	/* Page faults in the data path would be unbounded stalls; region mappings made
	 * later are locked as they are created (MCL_FUTURE). Under a finite
	 * RLIMIT_MEMLOCK without privilege, MCL_FUTURE would make later mmap() and
	 * malloc() fail once the limit is reached, so only what exists now is locked. */
	{
		struct rlimit rl;
		int flags = MCL_CURRENT | MCL_FUTURE;

		if (geteuid() != 0 && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY) {
			flags = MCL_CURRENT;
			fprintf(stderr, "rtvio broker: warning: RLIMIT_MEMLOCK is finite: cell "
					"memory mapped later is not locked\n");
		}
		/* What exists now is faulted in and locked; mappings made later are
		 * locked page by page as they are faulted in (MCL_ONFAULT), so that an
		 * mmap in the loop costs nothing up front: the populate thread faults a
		 * cell's memory in (and so locks it) before its device starts
		 * (populate.h). */
		if (mlockall(MCL_CURRENT) < 0 ||
		    ((flags & MCL_FUTURE) && mlockall(MCL_FUTURE | MCL_ONFAULT) < 0))
			fprintf(stderr, "rtvio broker: warning: mlockall failed (%s): memory may "
					"be paged\n", strerror(errno));
	}
}

void broker_stop(struct broker *b)
{
	uint64_t one = 1;

	atomic_store_explicit(&b->stop, true, memory_order_relaxed);
	if (write(b->wake_fd, &one, sizeof(one)) < 0) {
		/* Counter full: the loop is already due to wake up. */
	}
}

void broker_close(struct broker *b)
{
	if (!b)
		return;
	for (unsigned int i = 0; b->cells && i < b->ncells; i++) {
		struct cell *c = &b->cells[i];

		if (c->vhu.sock >= 0)
			daemon_cell_disconnect(c, BROKER_CELL_WAITING);
		if (c->listen_fd >= 0)
			close(c->listen_fd);
		if (c->path[0])
			unlink(c->path);
	}
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++)
		ctl_client_close(&b->ctl[i]);
	host_close(b->host);
	/* After every cell let go of its memory: what the thread still owned goes. */
	vhu_pop_close(&b->pop);
	evsig_close(&b->evsig);
	if (b->multicore)
		evsig_close(&b->dp_evsig);
	pmqos_release(b->qos_fd);
	if (b->ctl_fd >= 0)
		close(b->ctl_fd);
	if (b->ctl_path[0])
		unlink(b->ctl_path);
	admit_destroy(b->adm);
	if (b->dp)
		dp_destroy(b->dp);
	/* After the cores have stopped: each signalled through its own. */
	for (unsigned int k = 0; k < RTVIO_MAX_BROKER_CORES; k++)
		if (b->dp_core_evsig[k].null_fd >= 0)
			evsig_close(&b->dp_core_evsig[k]);
	rtvio_config_free(&b->live);
	if (b->sig_fd >= 0)
		close(b->sig_fd);
	if (b->mask_set)
		pthread_sigmask(SIG_SETMASK, &b->old_mask, NULL);
	if (b->wake_fd >= 0)
		close(b->wake_fd);
	if (b->ep >= 0)
		close(b->ep);
	if (b->kick_ep >= 0)
		close(b->kick_ep);
	free(b->cells);
	free(b->vhu_rr);
	free(b);
}

