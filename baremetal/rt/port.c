/* Bare-metal gvsock port (see port.h). */
#include "port.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "arch.h"
#include "fence.h"
#include "console.h"
#include "virtio_mmio.h"
#include "virtq.h"
#include "vsock.h"

#define REGION_SIZE (6u << 20)
#define STACK_MEM_SIZE (8u << 20)
#define MAX_SOCKETS 8u
/* SEQPACKET messages up to 256 KiB must fit buf_alloc = 4/5 of rcvbuf. */
#define RCVBUF (512u << 10)
#define EVENT_QUEUE 2u
#define EVENT_NUM 4u

static uint8_t region[REGION_SIZE] __attribute__((aligned(4096)));
static uint8_t stack_mem[STACK_MEM_SIZE] __attribute__((aligned(16)));
/* The event queue is the device's (QEMU keeps it): a few buffers for its
 * TRANSPORT_RESET events, which this cell never acts on. */
static uint8_t event_ring[4096] __attribute__((aligned(4096)));
static uint8_t event_buf[EVENT_NUM][8] __attribute__((aligned(8)));
static struct vq_drv_slot event_slot[EVENT_NUM];
static struct vq_driver event_vq;
static struct vmmio dev;
static struct gv_layout layout; /* where the rings are, for bm_port_scribble() */

uint64_t bm_now_ns(void)
{
	uint64_t t = arch_ticks(), hz = arch_tick_hz();

	return t / hz * 1000000000ull + t % hz * 1000000000ull / hz;
}

static uint64_t op_now(void *ctx)
{
	(void)ctx;
	return bm_now_ns();
}

static void op_kick(void *ctx, unsigned int queue)
{
	(void)ctx;
	vmmio_notify(&dev, queue);
}

static const struct gv_ops ops = { .kick = op_kick, .now_ns = op_now };

static uint64_t addr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static int setup_event_queue(void)
{
	struct vq_layout l;
	struct vq_ring r;
	uint32_t max = vmmio_queue_max(&dev, EVENT_QUEUE);

	if (max < EVENT_NUM)
		return max ? -RT_EINVAL : 0; /* no event queue: nothing to set up */
	if (vq_layout(EVENT_NUM, &l) || l.total > sizeof(event_ring) ||
	    vq_ring_at(&r, event_ring, EVENT_NUM) ||
	    vq_driver_init(&event_vq, &r, event_slot, dev.features))
		return -RT_EINVAL;
	for (unsigned int i = 0; i < EVENT_NUM; i++) {
		struct vq_buf b = { addr(event_buf[i]), sizeof(event_buf[i]) };

		if (vq_driver_add(&event_vq, NULL, 0, &b, 1, event_buf[i]))
			return -RT_EINVAL;
	}
	vq_driver_publish(&event_vq);
	return vmmio_queue_setup(&dev, EVENT_QUEUE, EVENT_NUM, addr(event_ring + l.desc_off),
				 addr(event_ring + l.avail_off), addr(event_ring + l.used_off));
}

static int setup_queues(const struct gv_layout *l)
{
	uint8_t *b = region;
	int rc;

	rc = vmmio_queue_setup(&dev, GV_QUEUE_RX, l->queue_size, addr(b + l->rx_desc),
			       addr(b + l->rx_avail), addr(b + l->rx_used));
	if (!rc)
		rc = vmmio_queue_setup(&dev, GV_QUEUE_TX, l->queue_size, addr(b + l->tx_desc),
				       addr(b + l->tx_avail), addr(b + l->tx_used));
	if (!rc)
		rc = setup_event_queue();
	return rc;
}

static int fail(const char *what, int rc)
{
	con_puts("rtvio-bm: ");
	con_puts(what);
	con_puts(" failed: ");
	con_sdec(rc);
	con_puts("\n");
	return rc;
}

int bm_port_open(struct gv_stack **out)
{
	const uint64_t want = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_VSOCK_F_SEQPACKET |
			      1ull << VIRTIO_F_EVENT_IDX;
	struct gv_layout_params lp = { 0 };
	struct gv_config cfg = { 0 };
	uint32_t qmax;
	int rc;

	if ((rc = vmmio_find(VIRTIO_ID_VSOCK, &dev)) < 0)
		return fail("no virtio-mmio vsock device:", rc);
	if ((rc = vmmio_negotiate(&dev, want, 1ull << VIRTIO_F_VERSION_1)) < 0)
		return fail("feature negotiation", rc);
	qmax = vmmio_queue_max(&dev, GV_QUEUE_RX);
	lp.queue_size = qmax < GV_DEFAULT_QUEUE_SIZE ? qmax : GV_DEFAULT_QUEUE_SIZE;
	if ((rc = gv_layout_compute(&lp, REGION_SIZE, &cfg.layout)) < 0)
		return fail("region layout", rc);
	cfg.cid = vmmio_config32(&dev, 0) | (uint64_t)vmmio_config32(&dev, 4) << 32;
	cfg.seqpacket = dev.features & (1ull << VIRTIO_VSOCK_F_SEQPACKET);
	cfg.event_idx = dev.features & (1ull << VIRTIO_F_EVENT_IDX);
	cfg.region = region;
	cfg.region_dev = addr(region);
	cfg.region_size = REGION_SIZE;
	cfg.max_sockets = MAX_SOCKETS;
	cfg.rcvbuf = RCVBUF;
	cfg.connect_timeout_ns = 2000000000ull;
	cfg.ops = &ops;
	if (gv_stack_mem_size(&cfg) > sizeof(stack_mem))
		return fail("stack storage", -RT_ENOSPC);
	if ((rc = gv_stack_init(&cfg, stack_mem, sizeof(stack_mem), out)) < 0)
		return fail("gv_stack_init", rc);
	if ((rc = setup_queues(&cfg.layout)) < 0)
		return fail("queue set-up", rc);
	layout = cfg.layout;
	vmmio_driver_ok(&dev);
	gv_start(*out);
	con_puts("rtvio-bm: vsock on virtio-mmio slot ");
	con_dec(dev.slot);
	con_puts(", cid ");
	con_dec(cfg.cid);
	con_puts(cfg.seqpacket ? ", seqpacket" : ", stream only");
	con_puts(cfg.event_idx ? ", event_idx\n" : "\n");
	return 0;
}

int bm_port_poll(struct gv_stack *s)
{
	int rc;

	while ((rc = gv_process(s)) > 0)
		;
	return rc;
}

void bm_port_scribble(void)
{
	volatile uint8_t *desc = region + layout.tx_desc;
	/* The avail ring is 2-byte aligned inside the page-aligned region (virtio 1.2
	 * 2.7): the cast through void does not change the alignment. */
	shm_le16 *avail_idx = (shm_le16 *)(void *)(region + layout.tx_avail + 2);
	uint16_t idx = shm_load_relaxed(avail_idx); /* our own index: the device never writes it */

	/* Every descriptor: an address outside guest RAM, a huge length, a chain. */
	for (size_t i = 0; i < (size_t)layout.queue_size * 16; i++)
		desc[i] = (uint8_t)(0xa5u ^ i);
	/* Far more entries published than the ring holds (broken by any reading),
	 * released after the garbage descriptors. */
	shm_store_release(avail_idx, (uint16_t)(idx + layout.queue_size + 7));
	/* The index before the doorbell that makes the device read it. */
	fence_sync();
	vmmio_notify(&dev, GV_QUEUE_TX);
}
