/* Events for user space (struct osp_event through ring buffer osp_events): reserving and
 * submitting them, and the parts of a trace event read from the packet and the kernel. */
#ifndef OSPREY_EVENTS_H
#define OSPREY_EVENTS_H

#include <bpf/bpf_core_read.h>

#include "config.h"
#include "kernel.h"
#include "maps.h"
#include "parse.h"

/* Reserves an event of `size` bytes — OSP_EVENT_BASE_SIZE, OSP_EVENT_HEADER_SIZE with a
 * Service translation, or the whole struct with a DNS message (osprey_abi.h) — with all but its
 * payload zeroed; counts it as lost when the ring is full. */
static __always_inline struct osp_event *osp_reserve(__u64 size)
{
	struct osp_event *event = bpf_ringbuf_reserve(&osp_events, size, 0);
	if (!event) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&osp_lost, &zero);
		if (lost)
			*lost += 1;
		return 0;
	}
	__builtin_memset(event, 0, size < OSP_EVENT_HEADER_SIZE ? size : OSP_EVENT_HEADER_SIZE);
	return event;
}

/* Batched wakeups: the reader polls every few milliseconds anyway, so a producer wakes it only
 * when its event takes the bytes pending past a multiple of 64 KiB — once per 64 KiB, not for
 * every event while that much is pending (each wakeup is an interrupt). `size` is what the
 * event was reserved with. A crossing missed between two producers is caught at the next one,
 * or by the poll. A reader asleep on an idle ring is woken by the first event, so that a quiet
 * node's flows are not held until its slow poll. */
static __always_inline void osp_submit(struct osp_event *event, __u64 size)
{
	__u64 record = (size + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL;
	__u64 pending = bpf_ringbuf_query(&osp_events, BPF_RB_AVAIL_DATA);
	__u64 flags = pending >= record && (pending >> 16) != ((pending - record) >> 16)
			  ? BPF_RB_FORCE_WAKEUP
			  : BPF_RB_NO_WAKEUP;
	__u32 zero = 0;
	__u32 *asleep = bpf_map_lookup_elem(&osp_reader, &zero);
	if (asleep && *asleep) {
		*asleep = 0;
		flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(event, flags);
}

/* Bytes of a DNS message the packet's event carries (up to OSP_DNS_SNAPLEN; 0 for none). */
static __always_inline __u32 osp_dns_len(struct __sk_buff *skb, const struct osp_packet *pkt)
{
	if (pkt->tuple.sport != 53 && pkt->tuple.dport != 53)
		return 0;
	if (skb->len <= pkt->payload)
		return 0;
	__u32 len = skb->len - pkt->payload;
	return len > OSP_DNS_SNAPLEN ? OSP_DNS_SNAPLEN : len;
}

/* Copies the DNS message (len from osp_dns_len, not 0) into an event reserved whole. */
static __always_inline void osp_copy_payload(struct __sk_buff *skb, const struct osp_packet *pkt,
					     struct osp_event *event, __u32 len)
{
	/* Identity for 1..OSP_DNS_SNAPLEN, written so the verifier sees that range. */
	len = ((len - 1) & (OSP_DNS_SNAPLEN - 1)) + 1;
	if (bpf_skb_load_bytes(skb, pkt->payload, event->payload, len) == 0)
		event->payload_len = len;
}

/* The kernel's sk_buff of a tc program's context (a kfunc since Linux 6.3). */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* The conntrack entry of a sk_buff's `_nfct` (its low bits are the packet's ctinfo), when the
 * node's NAT translated its connection's destination (a Service address to a backend); else 0. */
static __always_inline struct nf_conn *osp_dst_nat_ct(unsigned long nfct)
{
	struct nf_conn *ct = (struct nf_conn *)(nfct & ~7UL);
	if (!ct || !(BPF_CORE_READ(ct, status) & OSP_IPS_DST_NAT))
		return 0;
	return ct;
}

/* The conntrack entry the packet carries, when the node's NAT translated its connection's
 * destination (a Service address to a backend); else 0. Only packets entering a pod carry one:
 * they have crossed the node's netfilter hooks. */
static __always_inline struct nf_conn *osp_translated_ct(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	return osp_dst_nat_ct(kskb->_nfct); /* a trusted pointer: a plain load, no helper call */
}

/* Fills the event's Service translation from a conntrack entry whose destination the node's
 * NAT translated (osp_dst_nat_ct): the connection as its client opened it and the backend. */
static __always_inline void osp_fill_nat(struct nf_conn *ct, struct osp_event *event)
{
	struct osp_nat *nat = &event->nat;
	struct osp_tuple *original = &nat->original;
	original->family = event->tuple.family;
	original->protocol = event->tuple.protocol;
	__u32 size = original->family == 6 ? 16 : 4;
	if (bpf_core_read(original->saddr, size, &ct->tuplehash[0].tuple.src.u3) < 0 ||
	    bpf_core_read(original->daddr, size, &ct->tuplehash[0].tuple.dst.u3) < 0 ||
	    bpf_core_read(nat->backend, size, &ct->tuplehash[1].tuple.src.u3) < 0)
		return;
	original->sport = bpf_ntohs(BPF_CORE_READ(ct, tuplehash[0].tuple.src.u.all));
	original->dport = bpf_ntohs(BPF_CORE_READ(ct, tuplehash[0].tuple.dst.u.all));
	nat->backend_port = bpf_ntohs(BPF_CORE_READ(ct, tuplehash[1].tuple.src.u.all));
	nat->present = 1;
}

/* Fills the event's Service translation from the conntrack entry the packet carries, when the
 * node's NAT translated the connection's destination. Only packets entering a pod carry one:
 * they have crossed the node's netfilter hooks. */
static __always_inline void osp_nat_of(struct __sk_buff *skb, struct osp_event *event)
{
	struct nf_conn *ct = osp_translated_ct(skb);
	if (ct)
		osp_fill_nat(ct, event);
}

/* Fills a trace event's base: the packet's time, tuple and headers, the packets and bytes its
 * direction of the connection sent since that direction's last report (which restart from
 * zero). */
static __always_inline void osp_fill_trace(struct osp_event *event, struct __sk_buff *skb,
					   const struct osp_packet *pkt, struct osp_conn *conn,
					   __u32 direction, __u8 observation, __u8 report,
					   __u8 is_reply)
{
	event->timestamp_ns = bpf_ktime_get_ns();
	__builtin_memcpy(&event->tuple, &pkt->tuple, sizeof(event->tuple));
	if (osp_is_icmp(pkt->tuple.protocol)) {
		event->tuple.sport = pkt->icmp_type;
		event->tuple.dport = pkt->icmp_code;
	}
	event->packets = conn->packets[direction & 1];
	event->bytes = conn->bytes[direction & 1];
	conn->packets[direction & 1] = 0;
	conn->bytes[direction & 1] = 0;
	conn->last_report[direction & 1] = osp_report_clock();
	event->ifindex = osp_skb_ifindex(skb);
	event->kind = OSP_EVENT_TRACE;
	event->observation = observation;
	event->report = report;
	event->tcp_flags = pkt->tcp_flags;
	event->is_reply = is_reply;
	event->flags = conn->quiet;
	__builtin_memcpy(event->dmac, pkt->macs, 6);
	__builtin_memcpy(event->smac, pkt->macs + 6, 6);
}

/* Whether the packet's event looks for a Service translation: packets entering a pod (only
 * they have crossed the node's netfilter hooks), and for TCP only those of the handshake — the
 * SYN, the SYN-ACK, or the RST that refuses it. User space keeps the translation for the
 * connection's later flows: the kernel reads of the conntrack entry are the costliest part of
 * an event, and the translation its largest, neither worth repeating at every FIN. */
static __always_inline int osp_wants_nat(const struct osp_packet *pkt, __u8 observation)
{
	return observation == OSP_OBS_TO_ENDPOINT &&
	       (pkt->tuple.protocol != IPPROTO_TCP ||
		(pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_RST)));
}

/* Reserves, fills and submits one trace event of `size` bytes (a constant at each call, as the
 * verifier wants a reservation's size): with the Service translation when `nat`, with the DNS
 * message when `dns_len`. */
static __always_inline void osp_emit_trace(struct __sk_buff *skb, const struct osp_packet *pkt,
					   struct osp_conn *conn, __u32 direction, __u8 observation,
					   __u8 report, __u8 is_reply, __u64 size, int nat,
					   __u32 dns_len)
{
	struct osp_event *event = osp_reserve(size);
	if (!event)
		return;
	osp_fill_trace(event, skb, pkt, conn, direction, observation, report, is_reply);
	if (nat)
		osp_nat_of(skb, event);
	if (dns_len)
		osp_copy_payload(skb, pkt, event, dns_len);
	osp_submit(event, size);
}

/* Reports a packet of a tracked connection, in an event of the size it needs (osp_reserve). */
static __always_inline void osp_report_trace(struct __sk_buff *skb, const struct osp_packet *pkt,
					     struct osp_conn *conn, __u32 direction,
					     __u8 observation, __u8 report, __u8 is_reply)
{
	__u32 dns_len = osp_dns_len(skb, pkt);
	int nat = osp_wants_nat(pkt, observation);
	if (dns_len)
		osp_emit_trace(skb, pkt, conn, direction, observation, report, is_reply,
			       sizeof(struct osp_event), nat, dns_len);
	else if (nat)
		osp_emit_trace(skb, pkt, conn, direction, observation, report, is_reply,
			       OSP_EVENT_HEADER_SIZE, 1, 0);
	else
		osp_emit_trace(skb, pkt, conn, direction, observation, report, is_reply,
			       OSP_EVENT_BASE_SIZE, 0, 0);
}

#endif
