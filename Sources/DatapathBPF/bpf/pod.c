// SPDX-License-Identifier: GPL-2.0
/* tc (clsact) programs on the node side of every pod veth: the pod's view (what the node side
 * receives, the pod sent). They count TCP flags, track connections (conntrack.h) and report
 * flows; they never change a packet's fate (TC_ACT_UNSPEC). */
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

/* tc ingress of the node side: the packet leaves the pod. */
SEC("tc")
int osp_tc_pod_ingress(struct __sk_buff *skb)
{
	return osp_pod(skb, 1);
}

/* tc egress of the node side: the packet enters the pod. */
SEC("tc")
int osp_tc_pod_egress(struct __sk_buff *skb)
{
	return osp_pod(skb, 0);
}

char LICENSE[] SEC("license") = "GPL";
