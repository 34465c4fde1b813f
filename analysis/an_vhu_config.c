/* The vhost-user work a configuration lets its cells cost the broker's loop
 * (an_vhu.c): per cell, [broker] vhost_user_budget = N/P messages at vhost_user_msg
 * and vhost_user_maps = M/Q heavy ones at vhost_user_map ([platform]); all cells
 * together at most vhost_user_total = Ng/Pg and vhost_user_total_maps = Mg/Qg. */
#include "an_vhu_config.h"
#include "an_arith.h"
#include "config.h"

void an_vhu_of_config(const struct rtvio_config *cfg, const struct rtvio_platform_cfg *plat,
		      struct an_vhu *v)
{
	const struct rtvio_broker_cfg *k = &cfg->broker;
	uint64_t msg = (plat->present & RTVIO_PLAT_VHOST_USER_MSG) ? plat->vhost_user_msg :
								      RTVIO_PLAT_VHU_MSG_DEFAULT_NS;
	uint64_t map = (plat->present & RTVIO_PLAT_VHOST_USER_MAP) ? plat->vhost_user_map :
								      RTVIO_PLAT_VHU_MAP_DEFAULT_NS;
	uint64_t cells = 0;

	for (int i = 0; i < cfg->ncells; i++)
		/* A vacant slot has no socket yet; a [host] cell has no vhost-user one. */
		if (!cfg->cells[i].vacant && !cfg->cells[i].host)
			cells++;
	v->work[0] = smul(cells, smul(k->vhu_msgs, msg));
	v->period[0] = k->vhu_period_ns;
	v->work[1] = smul(cells, smul(k->vhu_maps, map));
	v->period[1] = k->vhu_map_period_ns;
	v->cap_work[0] = smul(k->vhu_total_msgs, msg);
	v->cap_period[0] = k->vhu_total_period_ns;
	v->cap_work[1] = smul(k->vhu_total_maps, map);
	v->cap_period[1] = k->vhu_total_map_period_ns;
}
