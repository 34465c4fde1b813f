/* core/virtq.c's split-virtqueue protocol under a weak memory model (Promela, spin).
 *
 * Two cores share nothing but the ring: the driver (a cell) and the device (the
 * broker). Each shared location has one writer, so every location lives in one
 * direction: d = 0 holds what the driver writes and the device reads, d = 1 what the
 * device writes and the driver reads. A store enters the writer's store buffer
 * (q[d], stage "undrained"), drains to memory in any order across locations (in
 * order per location: coherence), then waits in the reader's invalidation queue
 * (same q[d], stage "drained") until the reader's view takes it, again in any order
 * across locations. A load reads the reader's view, so it may return a value older
 * than one another load already saw: loads are reordered against loads. This is the
 * store-buffer plus invalidation-queue machine; for two cores it allows every
 * reordering of Armv8 and RVWMO between independent accesses except load->store
 * (see docs/verification.md for why that one does not matter here).
 *
 * Fences, by what they order (core/fence.h):
 *   release store   wflush (every earlier store drains first), then the store
 *   acquire load    the load, then rsync (the view takes every drained store, so no
 *                   later load can return anything older)
 *   fence_sync()    wflush, then rsync: earlier stores are in memory before later
 *                   loads read it (store->load, the Dekker barrier)
 * Each fence of core/virtq.c has a switch F_* (1 = present, as in core/): build with
 * spin -DF_X=0 to remove one. core/model/check.sh runs every variant.
 *
 * The driver sends ROUNDS one-descriptor chains over a ring of NUM = 2; each
 * descriptor has its own buffer with an out part (driver -> device) and an in part
 * (device -> driver). Every value a round stores is the round number (1..ROUNDS), so
 * a stale read is one that returns another round's value (or the initial 0).
 * VIRTIO_F_EVENT_IDX is on. Both sides sleep as core/README.md says: only after
 * enable_*() returned false. The device completes in batches, as the broker's data
 * plane does: after each pop it may pop again, adding used elements without
 * publishing them (vq_device_add_used), or publish the batch with one index store
 * and take one notify decision for it (vq_device_should_notify); it always publishes
 * before it sleeps. Every batch size from 1 to NUM is explored. */

#ifndef F_AVAIL_PUB
#define F_AVAIL_PUB 1		/* vq_driver_publish: release store of avail->idx */
#endif
#ifndef F_PUB_SYNC
#define F_PUB_SYNC 1		/* vq_driver_publish: fence_sync before avail_event */
#endif
#ifndef F_USED_ACQ
#define F_USED_ACQ 1		/* vq_driver_get_used: acquire load of used->idx */
#endif
#ifndef F_ENABLE_CB_SYNC
#define F_ENABLE_CB_SYNC 1	/* vq_driver_enable_cb: fence_sync before used->idx */
#endif
#ifndef F_ENABLE_CB_ACQ
#define F_ENABLE_CB_ACQ 1	/* vq_driver_enable_cb: acquire load of used->idx */
#endif
#ifndef F_AVAIL_ACQ
#define F_AVAIL_ACQ 1		/* vq_device_pop: acquire load of avail->idx */
#endif
#ifndef F_USED_PUB
#define F_USED_PUB 1		/* vq_device_publish_used: release store of used->idx */
#endif
#ifndef F_NOTIFY_SYNC
#define F_NOTIFY_SYNC 1		/* vq_device_should_notify: fence_sync before used_event */
#endif
#ifndef F_ENABLE_NOTIFY_SYNC
#define F_ENABLE_NOTIFY_SYNC 1	/* vq_device_enable_notify: fence_sync before avail->idx */
#endif

/* Not a fence: the rule that a device publishes its batch before it sleeps (the
 * broker's dp_run flushes before it returns; core/README.md). 0 lets the device
 * re-enable kicks and sleep with used elements added and not published. */
#ifndef P_PUBLISH_BEFORE_SLEEP
#define P_PUBLISH_BEFORE_SLEEP 1
#endif

#define NUM 2
#ifndef ROUNDS
#define ROUNDS 3
#endif
#define QMAX 20

/* d = 0: written by the driver, read by the device. */
#define D_ADDR(i)  (0 + (i))
#define D_LEN(i)   (2 + (i))
#define D_FLAGS(i) (4 + (i))
#define D_NEXT(i)  (6 + (i))
#define AV_RING(i) (8 + (i))
#define AV_IDX     10
#define USED_EVENT 11
#define BUF_OUT(i) (12 + (i))
/* d = 1: written by the device, read by the driver. */
#define U_ID(i)    (0 + (i))
#define U_LEN(i)   (2 + (i))
#define U_IDX      4
#define AVAIL_EVENT 5
#define BUF_IN(i)  (6 + (i))
#define NLOC 14

typedef Queue {
	byte loc[QMAX];
	byte val[QMAX];
	bit drained[QMAX];
	byte n
};
typedef View {
	byte v[NLOC]
};

Queue q[2];	/* stores in flight, in program order, per direction */
View view[2];	/* view[d]: what the reader of direction d sees */
View cnt[2];	/* cnt[d].v[l]: stores to l in flight in q[d] */
bit kick;	/* driver -> device notification pending (an eventfd) */
bit irq;	/* device -> driver notification pending */
byte ghost_head[ROUNDS + 1];	/* the head the driver used in each round */
bit driver_done;

/* ---- the memory machine ---- */

/* Stores in flight (in the writer's store buffer, or in the reader's invalidation
 * queue once drained) are entries of q[d] in program order. Nothing moves on its own:
 * a store becomes visible when the reader looks. A load of l may first let the
 * reader's view take any number of the stores to l in flight, oldest first (they
 * drained and reached the reader meanwhile, regardless of other locations); a read
 * fence makes the view take every drained store. That is the same set of behaviours
 * as draining and invalidating at arbitrary moments (stores that could have become
 * visible earlier but were not looked at make no difference), with far fewer states. */

/* The reader's view of l takes the oldest store to l in flight. */
inline take(d, l)
{
	d_step {
		k = 0;
		do
		:: q[d].loc[k] != l -> k++
		:: else -> break
		od;
		view[d].v[l] = q[d].val[k];
		cnt[d].v[l]--;
		do
		:: k + 1 < q[d].n ->
			q[d].loc[k] = q[d].loc[k + 1];
			q[d].val[k] = q[d].val[k + 1];
			q[d].drained[k] = q[d].drained[k + 1];
			k++
		:: else -> break
		od;
		q[d].loc[k] = 0;
		q[d].val[k] = 0;
		q[d].drained[k] = 0;
		q[d].n--;
		k = 0
	}
}

inline store(d, l, x)
{
	d_step {
		/* A full queue makes room: its oldest store reaches the reader (a thing
		 * memory may do at any time). This only trims behaviours with QMAX stores
		 * in flight, all of which already got that far. */
		if
		:: q[d].n == QMAX ->
			view[d].v[q[d].loc[0]] = q[d].val[0];
			cnt[d].v[q[d].loc[0]]--;
			k = 0;
			do
			:: k + 1 < QMAX ->
				q[d].loc[k] = q[d].loc[k + 1];
				q[d].val[k] = q[d].val[k + 1];
				q[d].drained[k] = q[d].drained[k + 1];
				k++
			:: else -> break
			od;
			q[d].n--;
			k = 0
		:: else -> skip
		fi;
		q[d].loc[q[d].n] = l;
		q[d].val[q[d].n] = x;
		q[d].drained[q[d].n] = 0;
		q[d].n++;
		cnt[d].v[l]++
	}
}

/* The writer's write fence: every earlier store of direction d reaches memory. */
inline wflush(d)
{
	d_step {
		k = 0;
		do
		:: k < q[d].n -> q[d].drained[k] = 1; k++
		:: else -> break
		od;
		k = 0
	}
}

/* The reader's read fence: its view takes every store that reached memory. */
inline rsync(d)
{
	d_step {
		k = 0;
		m = 0;
		do
		:: k < q[d].n ->
			if
			:: q[d].drained[k] ->
				view[d].v[q[d].loc[k]] = q[d].val[k];
				cnt[d].v[q[d].loc[k]]--
			:: else ->
				q[d].loc[m] = q[d].loc[k];
				q[d].val[m] = q[d].val[k];
				q[d].drained[m] = 0;
				m++
			fi;
			k++
		:: else -> break
		od;
		k = m;
		do
		:: k < q[d].n -> q[d].loc[k] = 0; q[d].val[k] = 0; q[d].drained[k] = 0; k++
		:: else -> break
		od;
		q[d].n = m;
		k = 0;
		m = 0
	}
}

/* A relaxed load: dst = some value of l no older than the last one seen. */
inline ld(d, l, dst)
{
	do
	:: cnt[d].v[l] > 0 -> take(d, l)
	:: true -> break
	od;
	dst = view[d].v[l]
}

/* (u16)(new - event - 1) < (u16)(new - old), as vq_need_event(); the indices here never
 * reach 2^8, so byte arithmetic modulo 256 is the same. */
#define need_event(ev, new, old) \
	(((new - ev - 1) & 255) < ((new - old) & 255))

/* ---- driver side (vq_driver_*) ---- */

proctype driver()
{
	byte k, m;
	byte free_head = 0, num_free = NUM, avail_idx = 0, published = 0, last_used = 0;
	byte slot_next[NUM], slot_tok[NUM];	/* tok: the round in flight, 0 = free */
	byte sent = 0, reclaimed = 0, head, used, id, n, x;
	bit need, cb_disabled;

	slot_next[0] = 1;
	slot_next[1] = 2;
	do
	:: reclaimed == ROUNDS -> break
	:: else ->
		/* vq_driver_add(), one chain at a time, while descriptors are free; the
		 * driver may publish after any of them */
		do
		:: sent < ROUNDS && num_free > 0 ->
			atomic {
				sent++;
				head = free_head;
				ghost_head[sent] = head;
				store(0, BUF_OUT(head), sent);	/* the caller fills the buffer */
				store(0, D_ADDR(head), sent);
				store(0, D_LEN(head), sent);
				store(0, D_FLAGS(head), sent);
				store(0, D_NEXT(head), sent);
				free_head = slot_next[head];
				num_free--;
				slot_tok[head] = sent;
				store(0, AV_RING(avail_idx % NUM), head);
				avail_idx++;
				head = 0
			}
		:: true -> break
		od;
		/* vq_driver_publish() */
		if
		:: published != avail_idx ->
			atomic {
#if F_AVAIL_PUB
				wflush(0);	/* release */
#endif
				store(0, AV_IDX, avail_idx)
			};
#if F_PUB_SYNC
			wflush(0);	/* fence_sync(), store side */
#endif
			atomic {
#if F_PUB_SYNC
				rsync(1);	/* fence_sync(), load side */
#endif
				ld(1, AVAIL_EVENT, x);
				need = need_event(x, avail_idx, published);
				published = avail_idx;
				x = 0
			};
			if
			:: need -> kick = 1
			:: else -> skip
			fi;
			need = 0
		:: else -> skip
		fi;
		/* vq_driver_get_used() until it returns 0 */
		do
		:: atomic {
			ld(1, U_IDX, used);
#if F_USED_ACQ
			rsync(1);	/* acquire */
#endif
			if
			:: used == last_used -> used = 0; break
			:: else -> skip
			fi;
			assert(((used - last_used) & 255) <= NUM);	/* else -EPROTO */
			ld(1, U_ID(last_used % NUM), id);
			ld(1, U_LEN(last_used % NUM), n);
			/* (b): the element the device completed for this chain ... */
			assert(id < NUM && slot_tok[id] != 0 && n == slot_tok[id]);
			/* ... and what the device wrote into its buffer (the caller reads it) */
			ld(1, BUF_IN(id), x);
			assert(x == slot_tok[id]);
			slot_next[id] = free_head;
			free_head = id;
			num_free++;
			slot_tok[id] = 0;
			last_used++;
			reclaimed++;
			if
			:: !cb_disabled -> store(0, USED_EVENT, last_used)	/* the hint */
			:: else -> skip
			fi;
			used = 0; id = 0; n = 0; x = 0
		   }
		od;
		if
		:: reclaimed == ROUNDS -> skip
		:: reclaimed < ROUNDS && sent < ROUNDS && num_free > 0 -> skip
		:: else ->
			/* vq_driver_enable_cb(): sleep only when it returns false */
			cb_disabled = 0;
			store(0, USED_EVENT, last_used);
#if F_ENABLE_CB_SYNC
			wflush(0);	/* fence_sync(), store side */
#endif
			atomic {
#if F_ENABLE_CB_SYNC
				rsync(1);	/* fence_sync(), load side */
#endif
				ld(1, U_IDX, used);
#if F_ENABLE_CB_ACQ
				rsync(1);	/* acquire */
#endif
				if
				:: used != last_used -> skip
				:: else -> used = 0; irq == 1	/* sleeps: no end label */
				fi;
				irq = 0;
				used = 0
			};
			/* woken (or told to poll): a callback may turn notifications off
			 * while it polls, vq_driver_disable_cb() */
			if
			:: cb_disabled = 1; store(0, USED_EVENT, last_used - 1)
			:: skip
			fi
		fi
	od;
	driver_done = 1
}

/* ---- device side (vq_device_*) ---- */

proctype device()
{
	byte k, m;
	byte last_avail = 0, avail_idx = 0, used_idx = 0, published = 0, signalled = 0;
	bit signalled_valid = 0;
	bit inflight[NUM];
	byte idx, head, round, old, x;
	bit need, popped;

end_dev:
	do
	:: atomic {
		/* vq_device_pop() */
		if
		:: last_avail == avail_idx ->
			ld(0, AV_IDX, idx);
#if F_AVAIL_ACQ
			rsync(0);	/* acquire */
#endif
			assert(((idx - last_avail) & 255) <= NUM);	/* else -EINVAL */
			avail_idx = idx;
			idx = 0
		:: else -> skip
		fi;
		popped = (last_avail != avail_idx);
		if
		:: popped ->
			round = last_avail + 1;
			ld(0, AV_RING(last_avail % NUM), head);
			/* (a): this round's head, descriptor and buffer, all written */
			assert(head == ghost_head[round]);
			assert(!inflight[head]);	/* else -EBUSY */
			ld(0, D_ADDR(head), x);
			assert(x == round);
			ld(0, D_LEN(head), x);
			assert(x == round);
			ld(0, D_FLAGS(head), x);
			assert(x == round);
			ld(0, D_NEXT(head), x);
			assert(x == round);
			inflight[head] = 1;
			last_avail++;
			/* the broker reads the buffer and writes its reply ... */
			ld(0, BUF_OUT(head), x);
			assert(x == round);
			store(1, BUF_IN(head), round);
			/* ... and vq_device_add_used(): the element, not yet published */
			inflight[head] = 0;
			store(1, U_ID(used_idx % NUM), head);
			store(1, U_LEN(used_idx % NUM), round);
			used_idx++;
			head = 0;
			round = 0;
			x = 0
		:: else ->
			/* pop returned 0 with nothing left to publish:
			 * vq_device_enable_notify() */
			if
			:: published == used_idx || !P_PUBLISH_BEFORE_SLEEP ->
				store(1, AVAIL_EVENT, avail_idx)
			:: else -> skip
			fi
		fi
	   };
		if
		:: popped -> skip	/* the batch goes on: pop again before publishing */
#if P_PUBLISH_BEFORE_SLEEP
		:: popped || published != used_idx ->
#else
		:: popped ->
#endif
			/* vq_device_should_notify(): vq_device_publish_used() first, one
			 * index store for the whole batch ... */
			atomic {
#if F_USED_PUB
				wflush(1);	/* release */
#endif
				store(1, U_IDX, used_idx)
			};
			published = used_idx;
			/* ... then the decision over everything since the last one */
#if F_NOTIFY_SYNC
			wflush(1);	/* fence_sync(), store side */
#endif
			atomic {
#if F_NOTIFY_SYNC
				rsync(0);	/* fence_sync(), load side */
#endif
				ld(0, USED_EVENT, x);
				need = !signalled_valid || need_event(x, used_idx, signalled);
				signalled = used_idx;
				signalled_valid = 1;
				x = 0
			};
			if
			:: need -> irq = 1
			:: else -> skip
			fi;
			need = 0
		:: else ->
			/* nothing popped, nothing to publish */
#if F_ENABLE_NOTIFY_SYNC
			wflush(1);	/* fence_sync(), store side */
#endif
			atomic {
#if F_ENABLE_NOTIFY_SYNC
				rsync(0);	/* fence_sync(), load side */
#endif
				ld(0, AV_IDX, x);
				if
				:: x != last_avail -> skip
				:: else -> x = 0;
end_sleep:			kick == 1	/* sleeps, a valid end state */
				fi;
				kick = 0;
				x = 0
			}
		fi;
		popped = 0
	od
}

init {
	atomic {
		run driver();
		run device()
	}
}

/* (c) no lost notification: a state where the driver still waits for completions
 * while the device sleeps is an invalid end state (the driver has no end label). */
