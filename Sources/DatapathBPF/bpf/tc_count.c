// SPDX-License-Identifier: GPL-2.0
/* tc (clsact) programs on the node's uplink(s) and on the node side of every pod veth.
 * They count, track connections of pods (conntrack.h) and never change a packet's fate: both
 * return TC_ACT_UNSPEC. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>

#include "conntrack.h"
#include "maps.h"
#include "packet.h"

/* flags: TCP header byte 13, CWR ECE URG ACK PSH RST SYN FIN (high to low). */
static __always_inline void osp_count_tcp_flags(__u8 flags, __u32 direction)
{
	__u32 hits[OSP_TCP_FLAG_MAX] = {};
	if ((flags & 0x02) && (flags & 0x10)) {
		hits[OSP_TCP_SYNACK] = 1;
	} else {
		hits[OSP_TCP_SYN] = (flags & 0x02) != 0;
		hits[OSP_TCP_ACK] = (flags & 0x10) != 0;
	}
	hits[OSP_TCP_FIN] = (flags & 0x01) != 0;
	hits[OSP_TCP_RST] = (flags & 0x04) != 0;
	hits[OSP_TCP_PSH] = (flags & 0x08) != 0;
	hits[OSP_TCP_URG] = (flags & 0x20) != 0;
	hits[OSP_TCP_ECE] = (flags & 0x40) != 0;
	hits[OSP_TCP_CWR] = (flags & 0x80) != 0;
#pragma unroll
	for (__u32 flag = 0; flag < OSP_TCP_FLAG_MAX; flag++) {
		if (!hits[flag])
			continue;
		__u32 key = flag * OSP_DIR_MAX + direction;
		__u64 *count = bpf_map_lookup_elem(&osp_tcp_flags, &key);
		if (count)
			*count += 1;
	}
}

/* Uplink: the node's view; received on the uplink = entering the node. */
static __always_inline int osp_uplink(struct __sk_buff *skb, __u32 direction)
{
	struct osp_counter *counter = bpf_map_lookup_elem(&osp_forward, &direction);
	if (counter) {
		counter->packets += 1;
		counter->bytes += skb->len;
	}
	return TC_ACT_UNSPEC;
}

/* Pod veth (node side): the pod's view; what the node side receives, the pod sent. Headers are
 * parsed once for both the flag counters and the connection table. */
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

/* One program per role and hook: the role is known when attaching, so no packet pays for a
 * lookup of its interface. */
SEC("tc")
int osp_tc_uplink_ingress(struct __sk_buff *skb)
{
	return osp_uplink(skb, OSP_DIR_INGRESS);
}

SEC("tc")
int osp_tc_uplink_egress(struct __sk_buff *skb)
{
	return osp_uplink(skb, OSP_DIR_EGRESS);
}

SEC("tc")
int osp_tc_pod_ingress(struct __sk_buff *skb)
{
	return osp_pod(skb, 1);
}

SEC("tc")
int osp_tc_pod_egress(struct __sk_buff *skb)
{
	return osp_pod(skb, 0);
}

char LICENSE[] SEC("license") = "GPL";
