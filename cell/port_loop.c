/* A cell in the caller's event loop, and its state: rtvio_cell_fd,
 * rtvio_cell_process and the calls around them (port_posix.h). */
#include "port_posix.h"
#include "port_cell.h"

#include <pthread.h>
#include <unistd.h>

int rtvio_cell_error(struct rtvio_cell *c)
{
	int e;

	pthread_mutex_lock(&c->lock);
	e = c->dead;
	pthread_mutex_unlock(&c->lock);
	return e;
}

int rtvio_cell_fd(struct rtvio_cell *c)
{
	pthread_mutex_lock(&c->lock);
	c->fd_used = true;
	pthread_mutex_unlock(&c->lock);
	return c->epfd;
}

int rtvio_cell_process(struct rtvio_cell *c)
{
	int e;

	pthread_mutex_lock(&c->lock);
	for (unsigned int q = 0; q < VHU_VSOCK_QUEUES; q++)
		port_drain_eventfd(c->call[q]);
	port_drain_eventfd(c->loop_fd);
	c->loop_written = false;
	port_check_socket(c);
	c->in_process = true;
	port_pump(c);
	c->in_process = false;
	port_wake_others(c, true);
	e = c->dead;
	pthread_mutex_unlock(&c->lock);
	return e;
}

void rtvio_cell_interrupt(struct rtvio_cell *c)
{
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	c->interrupted = true;
	pthread_cond_broadcast(&c->cond);
	if (write(c->wake_fd, &one, sizeof(one)) == sizeof(one))
		c->wake_written = true;
	pthread_mutex_unlock(&c->lock);
}

int rtvio_cell_poller_prio(struct rtvio_cell *c)
{
	int p;

	pthread_mutex_lock(&c->lock);
	p = c->poller ? c->poller_prio : -1;
	pthread_mutex_unlock(&c->lock);
	return p;
}

void rtvio_cell_spin_times(struct rtvio_cell *c, uint64_t *back_ns, uint64_t *news_ns)
{
	pthread_mutex_lock(&c->lock);
	*back_ns = c->spin_back_ns;
	*news_ns = c->spin_news_ns;
	pthread_mutex_unlock(&c->lock);
}

void rtvio_cell_stats(struct rtvio_cell *c, struct gv_stats *out)
{
	pthread_mutex_lock(&c->lock);
	gv_get_stats(c->stack, out);
	pthread_mutex_unlock(&c->lock);
}
