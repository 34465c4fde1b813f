/* The DDS side of the gateway: one participant in the remote's domain, discovering
 * its peers by unicast (no multicast needed on loopback), and one topic per flow
 * with QoS taken from the flow. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "gw_sample.h"
#include "rtmsg.h"

uint32_t gw_checksum(const uint8_t *p, size_t n)
{
	uint64_t h = rtmsg_hash(RTMSG_SEED, p, n);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)(h ^ (h >> 32));
}

/* Cyclone's configuration: unicast discovery of the configured peers, on the
 * loopback interface when the first peer is a loopback address. A lease of 1 s
 * (default 10 s) lets a gateway notice a far gateway that died within a second, and
 * count what it publishes meanwhile as unmatched rather than silently lost. */
static void domain_xml(const struct rtvio_remote_cfg *rm, char *xml, size_t len)
{
	char peers[RTVIO_PEERS_MAX * 3], word[RTVIO_PEERS_MAX];
	const char *p = rm->peers;
	size_t n = 0;
	int k;

	peers[0] = '\0';
	while (sscanf(p, "%191s%n", word, &k) == 1) {
		int w = snprintf(peers + n, sizeof(peers) - n, "<Peer address=\"%s\"/>", word);

		if (w < 0 || (size_t)w >= sizeof(peers) - n)
			break;
		n += (size_t)w;
		p += k;
	}
	bool lo = strncmp(rm->peers, "127.", 4) == 0 || strncmp(rm->peers, "::1", 3) == 0;

	snprintf(xml, len,
		 "<CycloneDDS><Domain id=\"any\"><General>%s<AllowMulticast>false"
		 "</AllowMulticast></General><Discovery><ParticipantIndex>auto"
		 "</ParticipantIndex><MaxAutoParticipantIndex>30</MaxAutoParticipantIndex>"
		 "<LeaseDuration>1s</LeaseDuration>"
		 "<Peers>%s</Peers></Discovery></Domain></CycloneDDS>",
		 lo ? "<Interfaces><NetworkInterface address=\"127.0.0.1\"/></Interfaces>" : "",
		 peers);
}

int gw_dds_open(struct gw *g, char *err, size_t errlen)
{
	char xml[2048];

	/* A CYCLONEDDS_URI of the user's outranks ours. */
	if (!getenv("CYCLONEDDS_URI")) {
		domain_xml(g->rm, xml, sizeof(xml));
		g->dom = dds_create_domain((dds_domainid_t)g->rm->domain, xml);
		if (g->dom < 0) {
			snprintf(err, errlen, "DDS domain %u: %s", g->rm->domain,
				 dds_strretcode(g->dom));
			return -EIO;
		}
	}
	g->pp = dds_create_participant((dds_domainid_t)g->rm->domain, NULL, NULL);
	if (g->pp < 0) {
		snprintf(err, errlen, "DDS participant in domain %u: %s", g->rm->domain,
			 dds_strretcode(g->pp));
		return -EIO;
	}
	return 0;
}

/* RELIABLE, KEEP_LAST, DEADLINE = the period, LATENCY_BUDGET = the network budget:
 * the same on both sides, so that a writer and a reader always match. */
static dds_qos_t *flow_qos(const struct gw *g, const struct rtvio_flow_cfg *f)
{
	dds_qos_t *q = dds_create_qos();

	dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_MSECS(100));
	dds_qset_history(q, DDS_HISTORY_KEEP_LAST, GW_HISTORY);
	dds_qset_durability(q, DDS_DURABILITY_VOLATILE);
	dds_qset_deadline(q, f->best_effort ? DDS_INFINITY : (dds_duration_t)f->period_ns);
	dds_qset_latency_budget(q, (dds_duration_t)g->rm->network_budget_ns);
	return q;
}

int gw_dds_flow(struct gw *g, struct gw_flow *f, char *err, size_t errlen)
{
	char name[RTVIO_NAME_MAX + 8];
	dds_qos_t *q = flow_qos(g, f->f);

	/* Both configs name the flow alike: the topic is the flow's name. */
	snprintf(name, sizeof(name), "rtvio_%s", f->f->name);
	f->topic = dds_create_topic(g->pp, &rtvio_gw_sample_desc, name, q, NULL);
	/* The reader requests the declared budget; the writer offers none (0: every
	 * sample goes out at once). Cyclone DDS sends every sample of a writer with a
	 * nonzero LATENCY_BUDGET from its own thread later (asynchronous mode), which
	 * made the median one-way time across the gateways 1.2 ms instead of 0.15 ms
	 * (`rtvio bench remote`); LATENCY_BUDGET is request/offered with offered <=
	 * requested, so 0 still matches. */
	if (f->out)
		dds_qset_latency_budget(q, 0);
	if (f->topic >= 0)
		f->ent = f->out ? dds_create_writer(g->pp, f->topic, q, NULL)
				: dds_create_reader(g->pp, f->topic, q, NULL);
	dds_delete_qos(q);
	if (f->topic < 0 || f->ent < 0) {
		snprintf(err, errlen, "flow %s: DDS %s: %s", f->f->name,
			 f->topic < 0 ? "topic" : f->out ? "writer" : "reader",
			 dds_strretcode(f->topic < 0 ? f->topic : f->ent));
		return -EIO;
	}
	if (!f->out)
		dds_set_status_mask(f->ent, DDS_DATA_AVAILABLE_STATUS);
	return 0;
}

void gw_dds_deadlines(struct gw_flow *f)
{
	if (f->out) {
		dds_offered_deadline_missed_status_t s;

		if (dds_get_offered_deadline_missed_status(f->ent, &s) == 0)
			f->n.deadline_missed = s.total_count;
	} else {
		dds_requested_deadline_missed_status_t s;

		if (dds_get_requested_deadline_missed_status(f->ent, &s) == 0)
			f->n.deadline_missed = s.total_count;
	}
}

void gw_dds_close(struct gw *g)
{
	if (g->pp > 0)
		dds_delete(g->pp);
	if (g->dom > 0)
		dds_delete(g->dom);
	g->pp = g->dom = 0;
}
