/* The cyclic executive (see exec.h). */
#include "exec.h"

#include "port.h"

static void release(struct bm_task *t, uint64_t now)
{
	t->releases++;
	if (t->period_ns && now > t->next_ns + t->period_ns / 2)
		t->late++;
	t->done = t->step(t->arg, now);
	if (!t->period_ns)
		return;
	t->next_ns += t->period_ns;
	if (t->next_ns <= now) /* a whole period lost: move the grid */
		t->next_ns = now + t->period_ns;
}

int bm_exec_run(struct gv_stack *s, struct bm_task *tasks, unsigned int n, uint64_t limit_ns)
{
	uint64_t now = bm_now_ns();

	for (unsigned int i = 0; i < n; i++)
		tasks[i].next_ns = now;
	for (;;) {
		unsigned int left = 0;

		if (bm_port_poll(s) < 0)
			return -GV_EIO;
		now = bm_now_ns();
		for (unsigned int i = 0; i < n; i++) {
			if (tasks[i].done)
				continue;
			left++;
			if (now >= tasks[i].next_ns)
				release(&tasks[i], now);
		}
		if (!left)
			return 0;
		if (now > limit_ns)
			return -GV_ETIMEDOUT;
	}
}

void bm_exec_idle(struct gv_stack *s, uint64_t ns)
{
	uint64_t end = bm_now_ns() + ns;

	while (bm_now_ns() < end)
		if (bm_port_poll(s) < 0)
			return;
}
