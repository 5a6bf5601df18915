// SPDX-License-Identifier: GPL-2.0
/* Tracepoint skb:kfree_skb: every packet the kernel drops, with the kernel's reason. Fires in
 * every network namespace of the machine; only drops in this node's namespaces (map osp_netns)
 * are counted. Consumed packets (normal end of life) are not drops and are skipped. */
#include <linux/bpf.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "kernel.h"
#include "maps.h"

static __always_inline __u32 osp_netns_of(struct sk_buff *skb, struct net_device *dev)
{
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

SEC("tracepoint/skb/kfree_skb")
int osp_kfree_skb(struct trace_event_raw_kfree_skb *ctx)
{
	__u32 reason = BPF_CORE_READ(ctx, reason);
	if (reason == bpf_core_enum_value(enum skb_drop_reason, SKB_NOT_DROPPED_YET) ||
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;

	struct sk_buff *skb = BPF_CORE_READ(ctx, skbaddr);
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u32 inum = osp_netns_of(skb, dev);
	__u32 *netns_role = bpf_map_lookup_elem(&osp_netns, &inum);
	if (!netns_role)
		return 0;

	/* Direction, where it can be known: a received packet (skb_iif set) entered the node on
	 * its uplink or a pod from its veth (ingress), or left a pod into the node (egress); a
	 * packet the stack produced itself was on its way out (egress). */
	__u32 direction = OSP_DIR_UNKNOWN;
	if (dev) {
		if (BPF_CORE_READ(skb, skb_iif) == 0) {
			direction = OSP_DIR_EGRESS;
		} else if (*netns_role == OSP_NETNS_POD) {
			direction = OSP_DIR_INGRESS;
		} else {
			__u32 ifindex = BPF_CORE_READ(dev, ifindex);
			__u32 *if_role = bpf_map_lookup_elem(&osp_ifaces, &ifindex);
			direction = (if_role && *if_role == OSP_IF_UPLINK) ? OSP_DIR_INGRESS
									   : OSP_DIR_EGRESS;
		}
	}

	struct osp_drop_key key = {.reason = reason, .direction = direction};
	struct osp_counter *counter = bpf_map_lookup_elem(&osp_drops, &key);
	if (!counter) {
		struct osp_counter zero = {};
		/* Another CPU may have inserted it meanwhile (-EEXIST): look it up either way. */
		bpf_map_update_elem(&osp_drops, &key, &zero, BPF_NOEXIST);
		counter = bpf_map_lookup_elem(&osp_drops, &key);
		if (!counter) {
			osp_count_error(OSP_ERR_DROP_MAP_FULL);
			return 0;
		}
	}
	counter->packets += 1;
	counter->bytes += BPF_CORE_READ(skb, len);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
