// SPDX-License-Identifier: GPL-2.0
/* tc (clsact) programs on the node's uplink(s): the node's view, packets and bytes that cross
 * towards other nodes (networkobservability_forward_count/_bytes). They never change a
 * packet's fate (TC_ACT_UNSPEC). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "maps.h"

static __always_inline int osp_uplink(struct __sk_buff *skb, __u32 direction)
{
	struct osp_counter *counter = bpf_map_lookup_elem(&osp_forward, &direction);
	if (counter) {
		counter->packets += 1;
		counter->bytes += skb->len;
	}
	return TC_ACT_UNSPEC;
}

/* Received on the uplink: entering the node. */
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

char LICENSE[] SEC("license") = "GPL";
