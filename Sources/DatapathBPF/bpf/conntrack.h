/* The connection table of the tc programs: which side opened a connection, when to report it,
 * and the events that carry it to user space. */
#ifndef OSPREY_CONNTRACK_H
#define OSPREY_CONNTRACK_H

#include <bpf/bpf_core_read.h>

#include "kernel.h"
#include "maps.h"
#include "packet.h"

#define OSP_TCPF_FIN 0x01
#define OSP_TCPF_SYN 0x02
#define OSP_TCPF_RST 0x04
#define OSP_TCPF_ACK 0x10
#define OSP_DEFAULT_REPORT_INTERVAL_NS (10ULL * 1000 * 1000 * 1000)

/* Everything the tracker needs from one packet. */
struct osp_packet {
	struct osp_tuple tuple;
	__u32 l4;      /* offset of the L4 header */
	__u32 payload; /* offset of the L4 payload */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 macs[12]; /* destination, then source, as on the wire */
};

/* The common case, IPv4 TCP/UDP with headers in the linear data, read by direct packet access
 * (much cheaper than a helper call per field). 0: parsed; -1: take the general path. */
static __always_inline int osp_parse_direct(struct __sk_buff *skb, struct osp_packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	__builtin_memcpy(pkt->macs, eth, 12);
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return -1;
	__u32 ihl = (ip->ihl & 0x0f) * 4;
	if (ihl < sizeof(*ip))
		return -1;
	__u8 *l4 = (void *)ip + ihl;
	if ((void *)(l4 + 20) > end) /* a TCP header; UDP needs only 8, but also its payload */
		return -1;
	pkt->tuple.family = 4;
	pkt->tuple.protocol = ip->protocol;
	__builtin_memcpy(pkt->tuple.saddr, &ip->saddr, 4);
	__builtin_memcpy(pkt->tuple.daddr, &ip->daddr, 4);
	pkt->tuple.sport = ((__u16)l4[0] << 8) | l4[1];
	pkt->tuple.dport = ((__u16)l4[2] << 8) | l4[3];
	pkt->l4 = ETH_HLEN + ihl;
	if (ip->protocol == IPPROTO_TCP) {
		pkt->payload = pkt->l4 + (l4[12] >> 4) * 4;
		pkt->tcp_flags = l4[13];
	} else {
		pkt->payload = pkt->l4 + 8;
	}
	return 0;
}

/* 0: parsed; 1: not an IP packet (ARP and the like), nothing to track; -1: headers unreadable. */
static __always_inline int osp_parse(struct __sk_buff *skb, struct osp_packet *pkt)
{
	if (osp_parse_direct(skb, pkt) == 0)
		return 0;
	if (bpf_skb_load_bytes(skb, 0, pkt->macs, 12) < 0)
		return -1;
	__u8 protocol = 0;
	int l4 = osp_l4_offset(skb, &protocol);
	if (l4 < 0)
		return 1;
	pkt->l4 = l4;
	pkt->tuple.protocol = protocol;
	if (bpf_ntohs(skb->protocol) == ETH_P_IP) {
		pkt->tuple.family = 4;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr),
				       pkt->tuple.saddr, 4) < 0 ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, daddr),
				       pkt->tuple.daddr, 4) < 0)
			return -1;
	} else {
		pkt->tuple.family = 6;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, saddr),
				       pkt->tuple.saddr, 16) < 0 ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, daddr),
				       pkt->tuple.daddr, 16) < 0)
			return -1;
	}
	if (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) {
		__be16 ports[2];
		if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) < 0)
			return -1;
		pkt->tuple.sport = bpf_ntohs(ports[0]);
		pkt->tuple.dport = bpf_ntohs(ports[1]);
		if (protocol == IPPROTO_TCP) {
			__u8 hdr[2];
			if (bpf_skb_load_bytes(skb, l4 + 12, hdr, 2) < 0)
				return -1;
			pkt->payload = l4 + ((hdr[0] >> 4) * 4);
			pkt->tcp_flags = hdr[1];
		} else {
			pkt->payload = l4 + 8;
		}
	} else if (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6) {
		__u8 typecode[2];
		if (bpf_skb_load_bytes(skb, l4, typecode, 2) < 0)
			return -1;
		pkt->icmp_type = typecode[0];
		pkt->icmp_code = typecode[1];
		pkt->payload = l4 + 8;
	}
	return 0;
}

/* True when the tuple's source end sorts before its destination end (address, then port). */
static __always_inline int osp_source_first(const struct osp_tuple *t)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (t->saddr[i] != t->daddr[i])
			return t->saddr[i] < t->daddr[i];
	}
	return t->sport <= t->dport;
}

static __always_inline void osp_reverse(struct osp_tuple *out, const struct osp_tuple *in)
{
	__builtin_memcpy(out->saddr, in->daddr, 16);
	__builtin_memcpy(out->daddr, in->saddr, 16);
	out->sport = in->dport;
	out->dport = in->sport;
	out->family = in->family;
	out->protocol = in->protocol;
	out->pad = 0;
}

/* Copies up to OSP_DNS_SNAPLEN bytes of a DNS message into the event. */
static __always_inline void osp_copy_payload(struct __sk_buff *skb, struct osp_packet *pkt,
					     struct osp_event *event)
{
	if (pkt->tuple.sport != 53 && pkt->tuple.dport != 53)
		return;
	if (skb->len <= pkt->payload)
		return;
	__u32 len = skb->len - pkt->payload;
	if (len > OSP_DNS_SNAPLEN)
		len = OSP_DNS_SNAPLEN;
	/* Identity for 1..OSP_DNS_SNAPLEN, written so the verifier sees that range. */
	len = ((len - 1) & (OSP_DNS_SNAPLEN - 1)) + 1;
	if (bpf_skb_load_bytes(skb, pkt->payload, event->payload, len) == 0)
		event->payload_len = len;
}

/* The kernel's sk_buff of a tc program's context (a kfunc since Linux 6.3). */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* Fills the event's Service translation from the conntrack entry the packet carries, when the
 * node's NAT translated the connection's destination (a Service address to a backend). Only
 * packets entering a pod carry one: they have crossed the node's netfilter hooks. */
static __always_inline void osp_nat_of(struct __sk_buff *skb, struct osp_event *event)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	unsigned long nfct = BPF_CORE_READ(kskb, _nfct);
	struct nf_conn *ct = (struct nf_conn *)(nfct & ~7UL);
	if (!ct)
		return;
	if (!(BPF_CORE_READ(ct, status) & OSP_IPS_DST_NAT))
		return;
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

/* Tracks the packet at an observation point and reports it when the connection starts, when
 * a TCP packet carries SYN, FIN or RST, for every DNS message, and periodically with deltas. */
static __always_inline void osp_track(struct __sk_buff *skb, struct osp_packet *pkt,
				      __u8 observation)
{

	struct osp_conn_key key = {.ifindex = skb->ifindex};
	int source_first = osp_source_first(&pkt->tuple);
	if (source_first)
		__builtin_memcpy(&key.tuple, &pkt->tuple, sizeof(key.tuple));
	else
		osp_reverse(&key.tuple, &pkt->tuple);
	if (pkt->tuple.protocol == IPPROTO_ICMP || pkt->tuple.protocol == IPPROTO_ICMPV6) {
		key.tuple.sport = 0; /* echo request and reply share one entry */
		key.tuple.dport = 0;
	}
	__u8 report = 0;
	struct osp_conn *conn = bpf_map_lookup_elem(&osp_conntrack, &key);
	if (!conn) {
		/* New here: this packet's source opened it — unless it is a SYN-ACK, whose
		 * destination did (we missed the SYN). */
		int synack = (pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_ACK)) ==
			     (OSP_TCPF_SYN | OSP_TCPF_ACK);
		struct osp_conn fresh = {.initiator_first = source_first ^ synack};
		if (bpf_map_update_elem(&osp_conntrack, &key, &fresh, BPF_NOEXIST) < 0 &&
		    !bpf_map_lookup_elem(&osp_conntrack, &key)) {
			osp_count_error(OSP_ERR_CONNTRACK_FULL);
			return;
		}
		conn = bpf_map_lookup_elem(&osp_conntrack, &key);
		if (!conn)
			return;
		report = OSP_REPORT_NEW;
	}
	__u8 is_reply = conn->initiator_first != source_first;
	/* Plain adds: a connection's packets at one interface are handled by one CPU at a time
	 * in practice, and an occasional lost increment only shifts a delta to the next report. */
	conn->packets += 1;
	conn->bytes += skb->len;
	conn->flags_seen |= pkt->tcp_flags;

	__u32 zero = 0;
	struct osp_config *config = bpf_map_lookup_elem(&osp_config_map, &zero);
	__u64 interval = config && config->report_interval_ns ? config->report_interval_ns
							      : OSP_DEFAULT_REPORT_INTERVAL_NS;
	__u64 now = bpf_ktime_get_ns();
	int dns = pkt->tuple.sport == 53 || pkt->tuple.dport == 53;
	if (!report) {
		if (pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_FIN | OSP_TCPF_RST))
			report = OSP_REPORT_FLAGS;
		else if (dns && skb->len > pkt->payload)
			report = OSP_REPORT_PAYLOAD;
		else if (config && config->per_packet)
			report = OSP_REPORT_PACKET;
		else if (now - conn->last_report_ns >= interval)
			report = OSP_REPORT_PERIODIC;
	}
	if (!report)
		return;

	struct osp_event *event = osp_reserve();
	if (!event)
		return;
	__builtin_memset(event, 0, offsetof(struct osp_event, payload));
	event->timestamp_ns = now;
	__builtin_memcpy(&event->tuple, &pkt->tuple, sizeof(event->tuple));
	if (pkt->tuple.protocol == IPPROTO_ICMP || pkt->tuple.protocol == IPPROTO_ICMPV6) {
		event->tuple.sport = pkt->icmp_type;
		event->tuple.dport = pkt->icmp_code;
	}
	event->packets = conn->packets;
	event->bytes = conn->bytes;
	conn->packets = 0;
	conn->bytes = 0;
	conn->last_report_ns = now;
	event->ifindex = skb->ifindex;
	event->kind = OSP_EVENT_TRACE;
	event->observation = observation;
	event->report = report;
	event->tcp_flags = pkt->tcp_flags;
	event->is_reply = is_reply;
	__builtin_memcpy(event->dmac, pkt->macs, 6);
	__builtin_memcpy(event->smac, pkt->macs + 6, 6);
	if (observation == OSP_OBS_TO_ENDPOINT)
		osp_nat_of(skb, event);
	osp_copy_payload(skb, pkt, event);
	osp_submit(event);
}

#endif
