/* The `scribble` task: a cell that turns hostile after a delay (see app.h). */
#include "app.h"
#include "console.h"
#include "port.h"

struct scribble {
	uint64_t at_ns;   /* absolute time to scribble; 0 until the first step */
	uint64_t after_ns;
	uint64_t hold_ns; /* how long to stay up afterwards (the broker's verdict) */
	bool done;
};

static struct scribble scribbler;

static bool scribble_step(void *arg, uint64_t now)
{
	struct scribble *w = arg;

	if (!w->at_ns)
		w->at_ns = now + w->after_ns;
	if (now < w->at_ns)
		return false;
	if (!w->done) {
		bm_port_scribble();
		w->done = true;
		con_puts("RTVIO-RESULT {\"task\":\"scribble\",\"status\":\"ok\"}\n");
	}
	/* Powering off at once would let the broker see a hang-up, not the garbage. */
	return now >= w->at_ns + w->hold_ns;
}

int app_scribble(struct app_ctx *c, struct bm_task *t, uint64_t after_ms, uint64_t hold_ms)
{
	(void)c;
	if (scribbler.after_ns || scribbler.hold_ns)
		return -GV_EINVAL;
	scribbler.after_ns = after_ms * 1000000ull;
	scribbler.hold_ns = hold_ms * 1000000ull;
	*t = (struct bm_task){ .name = "scribble", .period_ns = 1000000, .step = scribble_step,
			       .arg = &scribbler };
	return 0;
}
