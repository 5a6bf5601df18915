// SPDX-License-Identifier: GPL-2.0
/* The flush of silent connections: a program the agent runs once a second (BPF_PROG_TEST_RUN of
 * a syscall program; it is attached nowhere). The pod programs report what a direction of a
 * connection sent only at one of its own packets (conntrack.h): at a SYN, FIN or RST, or at its
 * first packet after the report interval. A direction that falls silent between reports would
 * keep its last packets forever — a UDP reply, the last burst of a keep-alive connection. This
 * program reports them: every direction that sent something since its last report, and last
 * reported an interval ago or more, gets a report of reason OSP_REPORT_IDLE, stamped now.
 * It walks the whole young table and, each run, the part of the old table user space asks for
 * (struct osp_flush_args), reading a set's tag line and only the ways in use. It stops before
 * a set whose reports could take the ring past OSP_FLUSH_RING_LIMIT bytes, and the next run goes
 * on from there: a table full of silent connections is reported over a few runs, never by
 * events lost.
 * An ICMP report names the type and code its direction sent, from the entry's ends
 * (osp_icmp_message): an echo's request or reply, or the one kind of message of its entry. */
#include <linux/bpf.h>

#include "conntrack.h"

/* What the walk carries from set to set. */
struct osp_flush_walk {
	struct osp_ct_set *set; /* the set being walked */
	__u32 old_start;
	__u32 reports;
	__u32 now;	  /* the report clock */
	__u32 old_walked; /* old sets walked to the end */
};

/* Whether the ring lacks room below OSP_FLUSH_RING_LIMIT for a set's worth of reports (two per
 * way). Asked before each set in use, not before each report: a flag the walk kept and tested at
 * each report would split the verifier's paths at each of a set's 32 reports. */
static __always_inline int osp_flush_ring_full(void)
{
	__u64 set_reports = 2 * OSP_CT_WAYS * (BPF_RINGBUF_HDR_SZ + OSP_EVENT_BASE_SIZE);
	return bpf_ringbuf_query(&osp_events, BPF_RB_AVAIL_DATA) + set_reports >
	       OSP_FLUSH_RING_LIMIT;
}

/* Reports what direction `direction` of the connection in `way` sent since its last report:
 * the counts are taken with atomic exchanges, so a packet counted meanwhile on another CPU goes
 * to the next report (unless its plain add races with the exchange itself). Returns 1 when it
 * made a report. */
static __always_inline int osp_flush_direction(struct osp_ct_way *way,
					       const struct osp_conn_key *key, __u32 direction,
					       struct osp_flush_walk *walk)
{
	struct osp_conn *conn = &way->conn;
	if (*(volatile __u64 *)&conn->packets[direction & 1] == 0)
		return 0;
	if (osp_reported_elsewhere(conn, direction))
		return 0;
	if (!osp_report_due_at(conn->last_report[direction & 1], walk->now))
		return 0;
	struct osp_event *event = osp_reserve(OSP_EVENT_BASE_SIZE);
	if (!event)
		return 0;
	event->packets = __sync_lock_test_and_set(&conn->packets[direction & 1], 0);
	event->bytes = __sync_lock_test_and_set(&conn->bytes[direction & 1], 0);
	conn->last_report[direction & 1] = walk->now;
	event->timestamp_ns = bpf_ktime_get_ns();
	if (direction == 0)
		__builtin_memcpy(&event->tuple, &key->tuple, sizeof(event->tuple));
	else
		osp_reverse(&event->tuple, &key->tuple);
	if (osp_is_icmp(key->tuple.protocol))
		osp_icmp_message(&event->tuple);
	event->ifindex = key->ifindex;
	event->kind = OSP_EVENT_TRACE;
	event->observation =
	    direction == conn->pod_sends ? OSP_OBS_FROM_ENDPOINT : OSP_OBS_TO_ENDPOINT;
	event->report = OSP_REPORT_IDLE;
	event->is_reply = conn->initiator_first != (direction == 0);
	event->flags = conn->quiet;
	osp_submit(event, OSP_EVENT_BASE_SIZE);
	return 1;
}

/* One way of walk->set: if in use (an odd tag; 0 is free, OSP_CT_CLAIMED being filled) and its
 * tag is still the same once its key is copied, each direction. A loop of its own
 * (bpf_loop), so that the verifier goes through a way once, not once for each of the 16. */
static long osp_flush_way(__u32 index, struct osp_flush_walk *walk)
{
	struct osp_ct_set *set = walk->set;
	__u32 i = index & (OSP_CT_WAYS - 1);
	__u32 tag = *(volatile __u32 *)&set->tags[i];
	if (!(tag & 1))
		return 0;
	struct osp_conn_key key __attribute__((aligned(8)));
	__builtin_memcpy(&key, &set->ways[i].key, sizeof(key));
	if (*(volatile __u32 *)&set->tags[i] != tag)
		return 0;
	walk->reports += osp_flush_direction(&set->ways[i], &key, 0, walk);
	walk->reports += osp_flush_direction(&set->ways[i], &key, 1, walk);
	return 0;
}

/* Whether any way of the set is in use (an odd tag), from the set's line of tags alone: most
 * sets of a quiet node's table are empty, and the walk then skips them without a call per way
 * (which was half an idle agent's CPU). */
static __always_inline int osp_flush_set_used(const struct osp_ct_set *set)
{
	const __u64 *tags = (const __u64 *)set->tags;
	__u64 any = 0;
#pragma unroll
	for (int i = 0; i < OSP_CT_WAYS / 2; i++) /* two tags a word */
		any |= tags[i];
	return (any & 0x0000000100000001ULL) != 0;
}

/* Reports what the set's ways hold. 1 when the set has a way in use and the ring lacks room for
 * its reports: the walk stops before it (empty sets cost no ring query). */
static __always_inline int osp_flush_set(struct osp_ct_set *set, struct osp_flush_walk *walk)
{
	if (!osp_flush_set_used(set))
		return 0;
	if (osp_flush_ring_full())
		return 1;
	walk->set = set;
	bpf_loop(OSP_CT_WAYS, osp_flush_way, walk, 0);
	return 0;
}

static long osp_flush_young(__u32 index, struct osp_flush_walk *walk)
{
	struct osp_ct_set *set = bpf_map_lookup_elem(&osp_ct_young, &index);
	return !set || osp_flush_set(set, walk);
}

static long osp_flush_old(__u32 index, struct osp_flush_walk *walk)
{
	__u32 set_index = (walk->old_start + index) & osp_config.ct_set_mask;
	struct osp_ct_set *set = bpf_map_lookup_elem(&osp_conntrack, &set_index);
	if (!set || osp_flush_set(set, walk))
		return 1;
	walk->old_walked += 1;
	return 0;
}

SEC("syscall")
int osp_flush_idle(struct osp_flush_args *args)
{
	struct osp_flush_walk walk = {
	    .old_start = args->old_start,
	    .now = osp_report_clock(),
	};
	__u32 old_sets = args->old_sets;
	if (old_sets > osp_config.ct_set_mask + 1)
		old_sets = osp_config.ct_set_mask + 1;
	__u32 young_sets = osp_config.ct_young_mask + 1;
	if (bpf_loop(young_sets, osp_flush_young, &walk, 0) == young_sets)
		bpf_loop(old_sets, osp_flush_old, &walk, 0);
	args->reports = walk.reports;
	args->old_walked = walk.old_walked;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
