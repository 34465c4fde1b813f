/* The virtio-mmio transport (virtio 1.2 §4.2, version 2 registers) for the vsock
 * device: find it, negotiate features, hand the rings to it, kick it. Polled: the
 * cell never takes the device's interrupt. */
#ifndef RTVIO_BAREMETAL_VIRTIO_MMIO_H
#define RTVIO_BAREMETAL_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_ID_VSOCK 19u

/* Feature bits: core/virtq.h (VIRTIO_F_*) and core/vsock.h (VIRTIO_VSOCK_F_*). */

struct vmmio {
	uintptr_t base;
	unsigned int slot;
	uint64_t features;	/* negotiated */
};

/* Scans the arch's slots for a version-2 device of `device_id`: 0 and *out, or
 * -ENODEV (none; a version-1 "legacy" one is reported on the console, since QEMU
 * needs -global virtio-mmio.force-legacy=false to offer version 2). */
int vmmio_find(uint32_t device_id, struct vmmio *out);

/* Reset, ACKNOWLEDGE, DRIVER, then the features: `want` ∩ offered, which must
 * include `need`. 0, or -ENODEV (the device refused FEATURES_OK or lacks `need`). */
int vmmio_negotiate(struct vmmio *d, uint64_t want, uint64_t need);

/* Largest queue size the device takes for queue q (0: the queue does not exist). */
uint32_t vmmio_queue_max(struct vmmio *d, unsigned int q);

/* Gives queue q of `num` entries to the device (guest-physical addresses). */
int vmmio_queue_setup(struct vmmio *d, unsigned int q, uint32_t num, uint64_t desc,
		      uint64_t avail, uint64_t used);

/* DRIVER_OK: the device may use the queues. */
void vmmio_driver_ok(struct vmmio *d);

void vmmio_notify(struct vmmio *d, unsigned int q);

/* Device config space, 32 bits at `off` (read in a stable generation). */
uint32_t vmmio_config32(struct vmmio *d, uint32_t off);

uint32_t vmmio_status(struct vmmio *d);

#endif
