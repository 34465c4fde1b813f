/* The zero-copy ends of the rtvio bench peer (transport rtvio-zc): the sender writes
 * each message in place in the TX payload slots it loans (rtvio_loan/rtvio_commit),
 * the receiver checks it in place in the RX buffers it borrows
 * (rtvio_borrow/rtvio_release), so the broker's copy from one region into the other
 * is the only one. A STREAM message longer than one TX slot goes as several loans and
 * arrives as several pieces; a piece may end inside the next message, and only the
 * bytes of this message are released, so the next call starts there. */
#include <errno.h>
#include <string.h>

#include "clock.h"
#include "rtmsg.h"
#include "port_posix.h"
#include "peer.h"

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Writes bytes [off, off + n) of message seq at b; the header bytes among them come
 * from hdr, which is stamped when the first piece is ready to go. */
static void zc_fill(uint8_t *b, size_t off, size_t n, const struct peer_args *a, uint64_t seq,
		    uint8_t *hdr, uint64_t *stamp_ns)
{
	size_t h = off < RTMSG_HDR ? min_sz(n, RTMSG_HDR - off) : 0;

	peer_fill_range(b + h, off + h, n - h, a->throughput ? 0 : seq);
	if (!h)
		return;
	if (!off) {
		*stamp_ns = rtvio_now_ns();
		peer_stamp(hdr, a->size, seq, *stamp_ns);
	}
	memcpy(b, hdr + off, h);
}

int peer_zc_send(struct rtvio_cell *c, int id, const struct peer_args *a, uint64_t seq,
		 uint64_t *stamp_ns)
{
	uint8_t hdr[RTMSG_HDR];
	size_t off = 0;

	while (off < a->size) {
		void *p;
		int n = rtvio_loan(c, id, a->size - off, &p, -1), r;

		if (n < 0)
			return n;
		/* Credit can grant fewer bytes than the header: those few go on their
		 * own, the rest of the header follows in the next piece. */
		zc_fill(p, off, (size_t)n, a, seq, hdr, stamp_ns);
		r = rtvio_commit(c, id, (size_t)n, 0);
		if (r == -EAGAIN) {
			/* The peer's credit shrank under the loan: give it back, loan anew. */
			rtvio_commit(c, id, 0, 0);
			continue;
		}
		if (r < 0)
			return r;
		off += (size_t)n;
	}
	return 0;
}

int peer_zc_recv(struct rtvio_cell *c, int id, struct peer_rx *rx, size_t len)
{
	uint8_t hdr[RTMSG_HDR], diff = 0;
	uint64_t seq = 0, stamp = 0, base = 0, now = 0;
	bool hdr_ok = false, check = false;
	size_t off = 0;

	while (off < len) {
		const void *p;
		size_t n, h;
		int r = rtvio_borrow(c, id, &p, &n, NULL, -1);

		if (r < 0)
			return r;
		if (r == 0)
			return off ? -EPIPE : 0;
		now = rtvio_now_ns();
		n = min_sz(n, len - off);
		h = off < RTMSG_HDR ? min_sz(n, RTMSG_HDR - off) : 0;
		/* The header is copied out (it is checked, then used); the payload is
		 * checked in place, each byte read once. */
		memcpy(hdr + off, p, h);
		if (h && off + h == RTMSG_HDR) {
			hdr_ok = peer_rx_header(hdr, len, &seq, &stamp);
			check = hdr_ok && peer_rx_checks_payload(rx, seq);
			base = peer_rx_pattern_base(rx, seq);
		}
		if (check)
			diff |= peer_pattern_diff((const uint8_t *)p + h, off + h, n - h, base);
		off += n;
		r = rtvio_release(c, id, n);
		if (r < 0)
			return r;
	}
	if (!hdr_ok || diff)
		rx->corrupt++;
	else
		peer_rx_note(rx, len, seq, stamp, now);
	return 1;
}
