/* gvsock's connection calls: socket, bind, connect, listen, accept, shutdown and
 * close. */
#include "gv_internal.h"

int gv_socket(struct gv_stack *s, unsigned int type)
{
	struct gv_sock *k;

	if (type != GV_SOCK_STREAM && type != GV_SOCK_SEQPACKET)
		return -GV_EINVAL;
	if (type == GV_SOCK_SEQPACKET && !s->cfg.seqpacket)
		return -GV_EPROTONOSUPPORT;
	k = gv_sock_alloc(s);
	if (!k)
		return -GV_EMFILE;
	gv_sock_setup(s, k, type);
	return gv_sock_id(s, k);
}

int gv_bind(struct gv_stack *s, int id, uint32_t port)
{
	struct gv_sock *k = gv_sock_get(s, id);

	if (!k || k->state != GV_S_OPEN || k->bound)
		return -GV_EINVAL;
	if (port == GV_PORT_ANY)
		return gv_bind_ephemeral(s, k);
	if (gv_port_in_use(s, port))
		return -GV_EADDRINUSE;
	k->local_port = port;
	k->bound = true;
	return 0;
}

int gv_connect(struct gv_stack *s, int id, uint64_t cid, uint32_t port)
{
	struct gv_sock *k = gv_sock_get(s, id);
	int r;

	if (!k)
		return -GV_EINVAL;
	if (k->state == GV_S_CONNECTING)
		return -GV_EALREADY;
	if (k->state == GV_S_CONNECTED)
		return -GV_EISCONN;
	if (k->state != GV_S_OPEN)
		return -GV_EINVAL;
	if (s->dead)
		return s->dead;
	if (!k->bound && (r = gv_bind_ephemeral(s, k)))
		return r;
	gv_credit_base(s, k);
	k->peer_cid = cid;
	k->peer_port = port;
	k->state = GV_S_CONNECTING;
	k->err = 0;
	k->deadline = s->cfg.ops->now_ns(s->cfg.ctx) + s->cfg.connect_timeout_ns;
	gv_ctrl(s, k, P_REQUEST);
	gv_tx_publish(s);
	return -GV_EINPROGRESS;
}

int gv_listen(struct gv_stack *s, int id, uint32_t port, uint32_t backlog)
{
	struct gv_sock *k = gv_sock_get(s, id);

	if (!k || backlog < 1)
		return -GV_EINVAL;
	if (k->state == GV_S_LISTEN) {
		k->backlog = backlog;
		return 0;
	}
	if (k->state != GV_S_OPEN)
		return -GV_EINVAL;
	if (!k->bound) {
		int r = gv_bind(s, id, port);

		if (r)
			return r;
	} else if (port != k->local_port && port != GV_PORT_ANY) {
		return -GV_EINVAL;
	}
	k->state = GV_S_LISTEN;
	k->backlog = backlog;
	return 0;
}

int gv_accept(struct gv_stack *s, int id, uint64_t *peer_cid, uint32_t *peer_port)
{
	struct gv_sock *l = gv_sock_get(s, id), *k;
	int c;

	if (!l || l->state != GV_S_LISTEN)
		return -GV_EINVAL;
	c = l->acc_head;
	if (c < 0)
		return -GV_EAGAIN;
	k = &s->sk[c];
	l->acc_head = k->next;
	if (l->acc_head < 0)
		l->acc_tail = -1;
	l->npending--;
	k->next = -1;
	k->parent = -1;
	k->accepted = true;
	if (peer_cid)
		*peer_cid = k->peer_cid;
	if (peer_port)
		*peer_port = k->peer_port;
	return c;
}


int gv_shutdown(struct gv_stack *s, int id, unsigned int how)
{
	struct gv_sock *k = gv_sock_get(s, id);
	uint8_t f = 0;

	if (!k || !how || (how & ~(GV_SHUT_RD | GV_SHUT_WR)))
		return -GV_EINVAL;
	if (k->state != GV_S_CONNECTED)
		return -GV_ENOTCONN;
	if ((how & GV_SHUT_RD) && !(k->shut & GV_SHUT_RD))
		f |= VSOCK_SHUTDOWN_RCV;
	if ((how & GV_SHUT_WR) && !(k->shut & GV_SHUT_WR))
		f |= VSOCK_SHUTDOWN_SEND;
	k->shut |= (uint8_t)how;
	if (!f)
		return 0;
	k->shut_pend |= f;
	gv_ctrl(s, k, P_SHUTDOWN);
	gv_tx_publish(s);
	gv_wake(s, k);
	return 0;
}

int gv_close(struct gv_stack *s, int id)
{
	struct gv_sock *k = gv_sock_get(s, id);

	if (!k)
		return -GV_EINVAL;
	switch (k->state) {
	case GV_S_LISTEN:
		while (k->acc_head >= 0) {
			struct gv_sock *c = &s->sk[k->acc_head];

			gv_send_rst(s, c);
			gv_conn_gone(s, c, 0);
		}
		gv_sock_free(s, k);
		break;
	case GV_S_CONNECTING:
		gv_send_rst(s, k);
		k->state = GV_S_LINGER;
		gv_conn_gone(s, k, 0);
		break;
	case GV_S_CONNECTED:
		if (k->parent >= 0) {
			/* Not accepted yet: cannot happen through the API (no id given out). */
			return -GV_EINVAL;
		}
		k->state = GV_S_LINGER;
		k->rlen = 0;
		k->msgs = 0;
		gv_zc_drop(s, k); /* unread held buffers and an unsent loan */
		if (k->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) || s->dead) {
			gv_send_rst(s, k);
			gv_conn_gone(s, k, 0);
			break;
		}
		k->deadline = s->cfg.ops->now_ns(s->cfg.ctx) + s->cfg.close_timeout_ns;
		k->shut_pend = (uint8_t)(VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
		k->pend &= (uint8_t)~P_CREDIT_UPDATE;
		gv_ctrl(s, k, P_SHUTDOWN);
		break;
	case GV_S_DONE:
		/* Only an RST can be owed now (gv_conn_gone): parked, the slot is free. */
		if (k->pend && !gv_rst_park(s, k)) {
			k->state = GV_S_LINGER;
			k->deadline = 0;
		} else {
			gv_sock_free(s, k);
		}
		break;
	default:
		gv_sock_free(s, k);
		break;
	}
	gv_tx_publish(s);
	return 0;
}
