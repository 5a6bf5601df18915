// SPDX-License-Identifier: GPL-2.0
/* Tracepoint tcp:tcp_retransmit_skb: every TCP segment a socket of this node's namespaces
 * (map osp_netns) sends again because no acknowledgement came in time. One event each, with
 * the connection as the retransmitting socket sees it (local -> remote). Retransmissions are
 * rare on a healthy network; this program costs nothing until one happens. */
#include <linux/bpf.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "events.h"
#include "kernel.h"
#include "maps.h"

/* The tracepoint's record as its format file gives it (the same from Linux 4.16 on; 6.10 named
 * the event's struct anew and appended `err`, so it is read by offset, not by BTF name). Ports
 * are in host byte order. */
struct osp_tcp_retransmit_record {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
};

SEC("tracepoint/tcp/tcp_retransmit_skb")
int osp_tcp_retransmit_skb(struct osp_tcp_retransmit_record *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	if (!sk)
		return 0;
	__u32 inum = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (!bpf_map_lookup_elem(&osp_netns, &inum))
		return 0;

	struct osp_event *event = osp_reserve(OSP_EVENT_HEADER_SIZE);
	if (!event)
		return 0;
	event->timestamp_ns = bpf_ktime_get_ns();
	if (ctx->family == 2 /* AF_INET */) {
		event->tuple.family = 4;
		__builtin_memcpy(event->tuple.saddr, ctx->saddr, 4);
		__builtin_memcpy(event->tuple.daddr, ctx->daddr, 4);
	} else {
		event->tuple.family = 6;
		__builtin_memcpy(event->tuple.saddr, ctx->saddr_v6, 16);
		__builtin_memcpy(event->tuple.daddr, ctx->daddr_v6, 16);
	}
	event->tuple.sport = ctx->sport;
	event->tuple.dport = ctx->dport;
	event->tuple.protocol = 6; /* IPPROTO_TCP */
	event->packets = 1;
	struct sk_buff *skb = (struct sk_buff *)ctx->skbaddr;
	event->bytes = skb ? BPF_CORE_READ(skb, len) : 0;
	event->netns = inum;
	event->kind = OSP_EVENT_RETRANSMIT;
	event->observation = OSP_OBS_SOCKET;
	event->report = OSP_REPORT_RETRANSMIT;
	event->is_reply = 2;
	osp_submit(event, OSP_EVENT_HEADER_SIZE);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
