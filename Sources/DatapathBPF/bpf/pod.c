// SPDX-License-Identifier: GPL-2.0
/* tc (clsact) programs on the node side of every pod veth: the pod's view (what the node side
 * receives, the pod sent). They count TCP flags, track connections (conntrack.h) and report
 * flows; they never change a packet's fate (TC_ACT_UNSPEC). Each hook's program only notes the
 * direction and passes the packet on to osp_tc_pod, which does the work. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "conntrack.h"
#include "maps.h"
#include "parse.h"

/* The counter of each flag a packet's flags count independently (SYN and ACK apart). */
static const struct {
	__u8 flag;
	__u8 counter;
} osp_flag_counters[] = {
    {OSP_TCPF_FIN, OSP_TCP_FIN}, {OSP_TCPF_RST, OSP_TCP_RST}, {OSP_TCPF_PSH, OSP_TCP_PSH},
    {OSP_TCPF_URG, OSP_TCP_URG}, {OSP_TCPF_ECE, OSP_TCP_ECE}, {OSP_TCPF_CWR, OSP_TCP_CWR},
};

/* networkobservability_tcp_flag_counters: a SYN with ACK counts as SYNACK only, every other
 * flag independently. */
static __always_inline void osp_count_tcp_flags(__u8 flags, __u32 direction)
{
	struct osp_tcp_flag_counts *counts = bpf_map_lookup_elem(&osp_tcp_flags, &direction);
	if (!counts)
		return;
	if ((flags & OSP_TCPF_SYN) && (flags & OSP_TCPF_ACK)) {
		counts->packets[OSP_TCP_SYNACK] += 1;
	} else {
		if (flags & OSP_TCPF_SYN)
			counts->packets[OSP_TCP_SYN] += 1;
		if (flags & OSP_TCPF_ACK)
			counts->packets[OSP_TCP_ACK] += 1;
	}
#pragma unroll
	for (int i = 0; i < (int)(sizeof(osp_flag_counters) / sizeof(osp_flag_counters[0])); i++) {
		if (flags & osp_flag_counters[i].flag)
			counts->packets[osp_flag_counters[i].counter] += 1;
	}
}

/* Headers are parsed once for both the flag counters and the connection table. */
static __always_inline int osp_pod(struct __sk_buff *skb, int from_pod)
{
	struct osp_packet pkt = {};
	int parsed = osp_parse(skb, &pkt);
	if (parsed != 0) {
		if (parsed < 0)
			osp_count_error(OSP_ERR_TC_HEADER);
		return TC_ACT_UNSPEC;
	}
	if (pkt.tuple.protocol == IPPROTO_TCP)
		osp_count_tcp_flags(pkt.tcp_flags, from_pod ? OSP_DIR_EGRESS : OSP_DIR_INGRESS);
	osp_track(skb, &pkt, from_pod ? OSP_OBS_FROM_ENDPOINT : OSP_OBS_TO_ENDPOINT);
	return TC_ACT_UNSPEC;
}

/* The packet's direction, which a hook's program leaves for osp_tc_pod in the first word of
 * the sk_buff's control block (`cb`): the scratch space tc gives its programs, which lasts
 * through a tail call. A tc program sets what it reads there before reading it, and the
 * queueing disciplines that keep their own data in it run after the egress hook. */
#define OSP_CB_FROM_POD 0

/* The work of both hooks, in one program that each hook's program passes the packet on to (a
 * tail call): one copy of the code for both directions, so that a connection's packets run the
 * same instructions whichever way they go and those stay in the CPU's caches. A copy inlined
 * into each hook's program cost about 4 % more time per request under connection churn
 * (docs/performance.md, twentieth session). */
SEC("tc")
int osp_tc_pod(struct __sk_buff *skb)
{
	return osp_pod(skb, skb->cb[OSP_CB_FROM_POD] != 0);
}

/* osp_tc_pod, which libbpf puts in the only slot when the object is loaded. Sizes, not types:
 * the kernel takes no BTF for a program array's key and value, and libbpf would log the
 * refusal before retrying without it. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} osp_pod_body SEC(".maps") = {
    .values = {[0] = (void *)&osp_tc_pod},
};

/* Hands the packet to osp_tc_pod; returns only when the tail call fails, which is counted. */
static __always_inline int osp_pass_on(struct __sk_buff *skb, __u32 from_pod)
{
	skb->cb[OSP_CB_FROM_POD] = from_pod;
	bpf_tail_call(skb, &osp_pod_body, 0);
	osp_count_error(OSP_ERR_TAIL_CALL);
	return TC_ACT_UNSPEC;
}

/* tc ingress of the node side: the packet leaves the pod. */
SEC("tc")
int osp_tc_pod_ingress(struct __sk_buff *skb)
{
	return osp_pass_on(skb, 1);
}

/* tc egress of the node side: the packet enters the pod. */
SEC("tc")
int osp_tc_pod_egress(struct __sk_buff *skb)
{
	return osp_pass_on(skb, 0);
}

char LICENSE[] SEC("license") = "GPL";
