// SPDX-License-Identifier: GPL-2.0
/* Tracepoint tcp:tcp_retransmit_skb: every TCP segment a socket of this node's namespaces
 * (map osp_netns) sends again because no acknowledgement came in time. One event each, with
 * the connection as the retransmitting socket sees it (local -> remote). Retransmissions are
 * rare on a healthy network; this program costs nothing until one happens. */
#include <linux/bpf.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "events.h"
#include "kernel.h"
#include "maps.h"

/* A BTF tracepoint (tp_btf): its arguments are (const struct sock *sk, const struct sk_buff *skb),
 * and since Linux 6.10 an error code. The connection is read from the socket: local end first. */
SEC("tp_btf/tcp_retransmit_skb")
int osp_tcp_retransmit_skb(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	struct sk_buff *skb = (struct sk_buff *)ctx[1];
	if (!sk)
		return 0;
	__u32 inum = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (!bpf_map_lookup_elem(&osp_netns, &inum))
		return 0;

	struct osp_event *event = osp_reserve(OSP_EVENT_BASE_SIZE);
	if (!event)
		return 0;
	event->timestamp_ns = bpf_ktime_get_ns();
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == 2 /* AF_INET */) {
		event->tuple.family = 4;
		bpf_core_read(event->tuple.saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(event->tuple.daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		event->tuple.family = 6;
		bpf_core_read(event->tuple.saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(event->tuple.daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	event->tuple.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	event->tuple.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	event->tuple.protocol = 6; /* IPPROTO_TCP */
	event->packets = 1;
	event->bytes = skb ? BPF_CORE_READ(skb, len) : 0;
	event->netns = inum;
	event->kind = OSP_EVENT_RETRANSMIT;
	event->observation = OSP_OBS_SOCKET;
	event->report = OSP_REPORT_RETRANSMIT;
	event->is_reply = 2;
	osp_submit(event, OSP_EVENT_BASE_SIZE);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
