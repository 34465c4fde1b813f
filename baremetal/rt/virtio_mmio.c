/* virtio-mmio, version 2 register layout (see virtio_mmio.h). Register accesses are
 * volatile 32-bit; the fences order ring memory against the doorbell and the
 * status handshake, which the device reads as MMIO. */
#include "virtio_mmio.h"

#include "arch.h"
#include "console.h"
#include "fence.h"
#include "rterrno.h"

#define R_MAGIC 0x000u
#define R_VERSION 0x004u
#define R_DEVICE_ID 0x008u
#define R_DEV_FEATURES 0x010u
#define R_DEV_FEATURES_SEL 0x014u
#define R_DRV_FEATURES 0x020u
#define R_DRV_FEATURES_SEL 0x024u
#define R_QUEUE_SEL 0x030u
#define R_QUEUE_NUM_MAX 0x034u
#define R_QUEUE_NUM 0x038u
#define R_QUEUE_READY 0x044u
#define R_QUEUE_NOTIFY 0x050u
#define R_STATUS 0x070u
#define R_QUEUE_DESC_LO 0x080u
#define R_QUEUE_DESC_HI 0x084u
#define R_QUEUE_DRIVER_LO 0x090u
#define R_QUEUE_DRIVER_HI 0x094u
#define R_QUEUE_DEVICE_LO 0x0a0u
#define R_QUEUE_DEVICE_HI 0x0a4u
#define R_CONFIG_GEN 0x0fcu
#define R_CONFIG 0x100u

#define MMIO_MAGIC 0x74726976u /* "virt" */

#define S_ACKNOWLEDGE 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u
#define S_FAILED 128u

#define ENODEV 19

static uint32_t rd(uintptr_t base, uint32_t reg)
{
	return *(volatile uint32_t *)(base + reg);
}

static void wr(uintptr_t base, uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(base + reg) = v;
}

int vmmio_find(uint32_t device_id, struct vmmio *out)
{
	struct arch_mmio m;

	arch_mmio_slots(&m);
	for (unsigned int n = 0; n < m.count; n++) {
		uintptr_t b = m.base + n * m.stride;

		if (rd(b, R_MAGIC) != MMIO_MAGIC || rd(b, R_DEVICE_ID) != device_id)
			continue;
		if (rd(b, R_VERSION) != 2) {
			con_puts("virtio-mmio: legacy (version 1) device in slot ");
			con_dec(n);
			con_puts(": start QEMU with -global virtio-mmio.force-legacy=false\n");
			continue;
		}
		out->base = b;
		out->slot = n;
		out->features = 0;
		return 0;
	}
	return -ENODEV;
}

int vmmio_negotiate(struct vmmio *d, uint64_t want, uint64_t need)
{
	uint64_t offered, f;

	wr(d->base, R_STATUS, 0);
	while (rd(d->base, R_STATUS) != 0)
		;
	wr(d->base, R_STATUS, S_ACKNOWLEDGE);
	wr(d->base, R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	wr(d->base, R_DEV_FEATURES_SEL, 0);
	offered = rd(d->base, R_DEV_FEATURES);
	wr(d->base, R_DEV_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(d->base, R_DEV_FEATURES) << 32;
	f = offered & want;
	if ((f & need) != need) {
		wr(d->base, R_STATUS, S_FAILED);
		return -ENODEV;
	}
	wr(d->base, R_DRV_FEATURES_SEL, 0);
	wr(d->base, R_DRV_FEATURES, (uint32_t)f);
	wr(d->base, R_DRV_FEATURES_SEL, 1);
	wr(d->base, R_DRV_FEATURES, (uint32_t)(f >> 32));
	wr(d->base, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	if (!(rd(d->base, R_STATUS) & S_FEATURES_OK)) {
		wr(d->base, R_STATUS, S_FAILED);
		return -ENODEV;
	}
	d->features = f;
	return 0;
}

uint32_t vmmio_queue_max(struct vmmio *d, unsigned int q)
{
	wr(d->base, R_QUEUE_SEL, q);
	return rd(d->base, R_QUEUE_NUM_MAX);
}

int vmmio_queue_setup(struct vmmio *d, unsigned int q, uint32_t num, uint64_t desc,
		      uint64_t avail, uint64_t used)
{
	wr(d->base, R_QUEUE_SEL, q);
	if (rd(d->base, R_QUEUE_READY) || num > rd(d->base, R_QUEUE_NUM_MAX))
		return -RT_EINVAL;
	wr(d->base, R_QUEUE_NUM, num);
	wr(d->base, R_QUEUE_DESC_LO, (uint32_t)desc);
	wr(d->base, R_QUEUE_DESC_HI, (uint32_t)(desc >> 32));
	wr(d->base, R_QUEUE_DRIVER_LO, (uint32_t)avail);
	wr(d->base, R_QUEUE_DRIVER_HI, (uint32_t)(avail >> 32));
	wr(d->base, R_QUEUE_DEVICE_LO, (uint32_t)used);
	wr(d->base, R_QUEUE_DEVICE_HI, (uint32_t)(used >> 32));
	/* The rings' initial contents (zeroed, RX buffers posted) before the device
	 * may look at them. */
	fence_sync();
	wr(d->base, R_QUEUE_READY, 1);
	return 0;
}

void vmmio_driver_ok(struct vmmio *d)
{
	fence_sync(); /* every queue's set-up before the device starts on it */
	wr(d->base, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

void vmmio_notify(struct vmmio *d, unsigned int q)
{
	/* The published avail index before the doorbell the device acts on. */
	fence_sync();
	wr(d->base, R_QUEUE_NOTIFY, q);
}

uint32_t vmmio_config32(struct vmmio *d, uint32_t off)
{
	uint32_t gen, v;

	do {
		gen = rd(d->base, R_CONFIG_GEN);
		v = rd(d->base, R_CONFIG + off);
	} while (gen != rd(d->base, R_CONFIG_GEN));
	return v;
}

uint32_t vmmio_status(struct vmmio *d)
{
	return rd(d->base, R_STATUS);
}
