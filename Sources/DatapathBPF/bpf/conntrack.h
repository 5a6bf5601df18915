/* The connection table of the pod programs: which side opened a connection, and when to report
 * it to user space. */
#ifndef OSPREY_CONNTRACK_H
#define OSPREY_CONNTRACK_H

#include "config.h"
#include "events.h"
#include "maps.h"
#include "parse.h"

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

static __always_inline void osp_count_ct(__u32 stat)
{
	__u64 *count = bpf_map_lookup_elem(&osp_ct_stats, &stat);
	if (count)
		*count += 1;
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

/* Tracks the packet at an observation point and reports it when the connection starts, when
 * a TCP packet carries SYN, FIN or RST, for every DNS message, and periodically with deltas.
 * A TCP connection leaves the table when it ends — at its RST, or at the first packet without
 * FIN once both sides sent theirs (the last ACK) — so that short connections do not fill it
 * and push out live ones (the table is LRU: when full, inserting evicts the oldest). */
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
	/* A SYN without ACK nearly always opens a connection: insert first, skipping a lookup
	 * that would miss. */
	int opening = (pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_ACK)) == OSP_TCPF_SYN;
	struct osp_conn *conn = opening ? 0 : bpf_map_lookup_elem(&osp_conntrack, &key);
	if (!conn) {
		/* New here: this packet's source opened it — unless it is a SYN-ACK, whose
		 * destination did (we missed the SYN). */
		int synack = (pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_ACK)) ==
			     (OSP_TCPF_SYN | OSP_TCPF_ACK);
		struct osp_conn fresh = {.initiator_first = source_first ^ synack};
		if (bpf_map_update_elem(&osp_conntrack, &key, &fresh, BPF_NOEXIST) == 0) {
			osp_count_ct(OSP_CT_INSERTED);
			report = OSP_REPORT_NEW;
		}
		/* Not inserted: there already (a SYN sent again, or another CPU was first), or
		 * the table could make no room. */
		conn = bpf_map_lookup_elem(&osp_conntrack, &key);
		if (!conn) {
			osp_count_error(OSP_ERR_CONNTRACK_FULL);
			return;
		}
	}
	__u8 is_reply = conn->initiator_first != source_first;
	/* Plain adds: a connection's packets at one interface are handled by one CPU at a time
	 * in practice, and an occasional lost increment only shifts a delta to the next report. */
	conn->packets += 1;
	conn->bytes += skb->len;
	conn->flags_seen |= pkt->tcp_flags;

	int dns = pkt->tuple.sport == 53 || pkt->tuple.dport == 53;
	if (!report) {
		if (pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_FIN | OSP_TCPF_RST))
			report = OSP_REPORT_FLAGS;
		else if (dns && skb->len > pkt->payload)
			report = OSP_REPORT_PAYLOAD;
		else if (osp_config.per_packet)
			report = OSP_REPORT_PACKET;
		else if (osp_period_now() - conn->last_report_ns >= osp_config.report_interval_ns)
			report = OSP_REPORT_PERIODIC;
	}
	int ended = 0;
	if (pkt->tuple.protocol == IPPROTO_TCP) {
		if (pkt->tcp_flags & OSP_TCPF_FIN)
			conn->fins |= is_reply ? 2 : 1;
		ended = (pkt->tcp_flags & OSP_TCPF_RST) ||
			(conn->fins == 3 && !(pkt->tcp_flags & OSP_TCPF_FIN));
	}
	if (report)
		osp_report_trace(skb, pkt, conn, observation, report, is_reply);
	if (ended && bpf_map_delete_elem(&osp_conntrack, &key) == 0)
		osp_count_ct(OSP_CT_DELETED);
}

#endif
