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

/* ICMP has no ports: in the table, an ICMP message's tuple names the entry's two ends instead.
 * An echo request and its replies share one entry, whose requester end is OSP_ICMP_REQUESTER
 * and responder end 0, so that the flush (flush.c) can name what each direction sent; the key
 * also holds the echo's identifier, so that each ping (each `ping` process, on Linux) between
 * two addresses is a connection of its own, with a start of its own, as in Cilium. Any other
 * message takes its type and code at both ends (type << 8 | code, at least 256: never a DNS
 * port): its entry holds only messages of that kind between the two addresses. Events still
 * name each packet's own type and code (osp_fill_trace). */
#define OSP_ICMP_REQUESTER 1

/* Sets an ICMP packet's ends in its tuple. Returns 1 for an echo reply: its destination opened
 * the entry. A global function, so that the verifier checks what follows once for whatever it
 * returns and writes: inlined, each of its three cases was a constant of its own, and the
 * rest of the pod program was verified once for each (105,000 and 136,000 instructions for the
 * two pod programs; 24,000 and 36,000 this way). */
__noinline int osp_icmp_ends(struct osp_packet *pkt)
{
	if (!pkt)
		return 0;
	__u8 protocol = pkt->tuple.protocol;
	if (pkt->icmp_type == osp_icmp_echo_request(protocol)) {
		pkt->tuple.sport = OSP_ICMP_REQUESTER;
		pkt->tuple.dport = 0;
		return 0;
	}
	if (pkt->icmp_type == osp_icmp_echo_reply(protocol)) {
		pkt->tuple.sport = 0;
		pkt->tuple.dport = OSP_ICMP_REQUESTER;
		return 1;
	}
	pkt->tuple.sport = ((__u16)pkt->icmp_type << 8) | pkt->icmp_code;
	pkt->tuple.dport = pkt->tuple.sport;
	return 0;
}

/* The type and code of what the source end of an entry's ICMP tuple sends, in place of its
 * ends (the inverse of osp_icmp_ends, for the flush's reports). */
static __always_inline void osp_icmp_message(struct osp_tuple *tuple)
{
	__u16 source = tuple->sport;
	if (source != tuple->dport) { /* an echo */
		tuple->sport = source == OSP_ICMP_REQUESTER ? osp_icmp_echo_request(tuple->protocol)
							    : osp_icmp_echo_reply(tuple->protocol);
		tuple->dport = 0;
	} else {
		tuple->sport = source >> 8;
		tuple->dport = source & 0xff;
	}
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

/* The connection table: two set-associative caches in BPF arrays (layout in osprey_abi.h). A
 * new connection enters the young table, a few hundred KiB; when its set there is full, the
 * set's least recently active connection moves to the old table (up to --conntrack-max, tens of
 * MiB), and when that set is full too, its least recently active connection is evicted for
 * good. A packet looks in the young table first. Short connections, most of a busy node's, thus
 * live and end in memory that stays in the CPUs' caches and TLBs: in one table of 42 MiB, the
 * first read of a connection's set was a third of the pod programs' time under churn. A SYN
 * without ACK opens a connection and looks only in the young table; an old entry with its
 * tuple stays until the new one replaces it on moving there, or until evicted.
 * Everything happens in the program: a hash, one line of tags, one way. Array lookups are
 * inlined by the verifier, so the packet path makes no helper call and takes no lock or list.
 * Concurrency: a connection claims its way with a compare-and-swap on the tag and publishes the
 * tag after the key. A packet racing with the eviction, move or reuse of its connection's way
 * may count towards the way's next connection, or be lost to the copy that moves: an increment
 * in the wrong delta, as with the plain adds below. Two CPUs adding the same new connection at
 * once may both add it; the copy that lookups do not find stays until its set needs the room.
 * Two CPUs adding different connections may pick the same way (in one jiffy a full set's ways
 * are all equally old); the one that loses reports its packet untracked (osp_track). */

enum {
	OSP_CT_SCRATCH_YOUNG = 0,
	OSP_CT_SCRATCH_OLD = 1,
};

/* Where a key lives or would live in one table. */
struct osp_ct_slot {
	struct osp_ct_set *set;
	struct osp_ct_scratch *scratch;
	__u32 tag;
	__u32 way; /* the connection's way, when found or claimed */
};

/* The key's six words, mixed (multiply and xor-shift after each): the low bits pick the set,
 * the high ones make the tag. */
static __always_inline __u64 osp_ct_hash(const struct osp_conn_key *key)
{
	const __u64 *words = (const __u64 *)key;
	__u64 hash = 0x9e3779b97f4a7c15ULL;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*key) / 8); i++) {
		hash = (hash ^ words[i]) * 0xff51afd7ed558ccdULL;
		hash ^= hash >> 32;
	}
	return hash;
}

static __always_inline int osp_ct_key_equal(const struct osp_conn_key *a,
					    const struct osp_conn_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]) |
		(x[5] ^ y[5])) == 0;
}

/* The slot of a hash in the set of the young or the old table that `set` is. The callers look
 * the set up themselves: a lookup call site that sees two maps is not inlined by the verifier. */
static __always_inline void osp_ct_slot(struct osp_ct_slot *slot, struct osp_ct_set *set,
					__u32 scratch, __u64 hash)
{
	slot->set = set;
	slot->scratch = bpf_map_lookup_elem(&osp_ct_scratch, &scratch);
	slot->tag = (__u32)(hash >> 32) | 1;
}

static __always_inline struct osp_ct_set *osp_ct_young_set(__u64 hash)
{
	__u32 index = (__u32)hash & osp_config.ct_young_mask;
	return bpf_map_lookup_elem(&osp_ct_young, &index);
}

static __always_inline struct osp_ct_set *osp_ct_old_set(__u64 hash)
{
	__u32 index = (__u32)hash & osp_config.ct_set_mask;
	return bpf_map_lookup_elem(&osp_conntrack, &index);
}

/* The loops below leave their results (a way's index) in per-CPU map memory, not in registers
 * or on the stack: the verifier tracks those exactly, so each way a loop could end at would be
 * a different constant and the whole rest of the program would be verified once per way (that
 * took the verifier 430,000 instructions and the agent's start 1.5 s). Read back from a map, an
 * index is one unknown value, masked to [0, OSP_CT_WAYS). */
static __always_inline __u32 osp_ct_read(__u32 *field)
{
	return *(volatile __u32 *)field & (OSP_CT_WAYS - 1);
}

/* The packet's direction in its connection (0: sent by the key's first end), through the same
 * per-CPU memory: computed by comparing the packet's addresses, it would be a known 0 or 1 on
 * each path of the comparison, and everything after it verified twice. */
static __always_inline __u32 osp_ct_direction(struct osp_ct_scratch *scratch, int source_first)
{
	if (!scratch)
		return !source_first;
	*(volatile __u32 *)&scratch->direction = !source_first;
	return *(volatile __u32 *)&scratch->direction & 1;
}

/* The key's connection in the slot's set, or 0 (scratch->free: the set's first free way,
 * OSP_CT_WAYS if none). */
static __always_inline struct osp_conn *osp_ct_find(const struct osp_conn_key *key,
						    struct osp_ct_slot *slot)
{
	struct osp_ct_set *set = slot->set;
	struct osp_ct_scratch *scratch = slot->scratch;
	if (!set || !scratch)
		return 0;
	*(volatile __u32 *)&scratch->free = OSP_CT_WAYS;
	*(volatile __u32 *)&scratch->way = OSP_CT_WAYS;
	for (__u32 i = 0; i < OSP_CT_WAYS; i++) {
		__u32 tag = *(volatile __u32 *)&set->tags[i];
		if (tag == slot->tag && osp_ct_key_equal(&set->ways[i].key, key)) {
			*(volatile __u32 *)&scratch->way = i;
			break;
		}
		if (tag == 0 && *(volatile __u32 *)&scratch->free == OSP_CT_WAYS)
			*(volatile __u32 *)&scratch->free = i;
	}
	if (*(volatile __u32 *)&scratch->way == OSP_CT_WAYS)
		return 0;
	slot->way = osp_ct_read(&scratch->way);
	return &set->ways[slot->way].conn;
}

/* Claims a way of the slot's set after a lookup that did not find the key: the free way it
 * saw, else the way whose last packet is oldest. Returns the way's tag before (0: it was free;
 * else its connection, still in the way, must go), or OSP_CT_CLAIMED when another CPU took the
 * way first. */
static __always_inline __u32 osp_ct_claim(struct osp_ct_slot *slot, __u32 now)
{
	struct osp_ct_set *set = slot->set;
	struct osp_ct_scratch *scratch = slot->scratch;
	if (!set || !scratch)
		return OSP_CT_CLAIMED;
	__u32 old = 0;
	if (*(volatile __u32 *)&scratch->free == OSP_CT_WAYS) {
		*(volatile __u32 *)&scratch->idlest = 0;
		*(volatile __u32 *)&scratch->free = 0;
		for (__u32 i = 0; i < OSP_CT_WAYS; i++) {
			__u32 idle = now - set->ways[i].conn.seen;
			if (idle > *(volatile __u32 *)&scratch->idlest) {
				*(volatile __u32 *)&scratch->idlest = idle;
				*(volatile __u32 *)&scratch->free = i;
			}
		}
		old = *(volatile __u32 *)&set->tags[osp_ct_read(&scratch->free)];
		if (old == OSP_CT_CLAIMED) /* another CPU is filling it */
			return OSP_CT_CLAIMED;
	}
	__u32 way = osp_ct_read(&scratch->free);
	if (__sync_val_compare_and_swap(&set->tags[way], old, OSP_CT_CLAIMED) != old)
		return OSP_CT_CLAIMED;
	slot->way = way;
	return old;
}

/* Makes the claimed way hold `key` and `conn` and publishes it. */
static __always_inline struct osp_conn *
osp_ct_fill(struct osp_ct_slot *slot, const struct osp_conn_key *key, const struct osp_conn *conn)
{
	struct osp_ct_way *entry = &slot->set->ways[slot->way & (OSP_CT_WAYS - 1)];
	__builtin_memcpy(&entry->key, key, sizeof(*key));
	__builtin_memcpy(&entry->conn, conn, sizeof(*conn));
	asm volatile("" ::: "memory"); /* the key before the tag that publishes it */
	*(volatile __u32 *)&slot->set->tags[slot->way & (OSP_CT_WAYS - 1)] = slot->tag;
	return &entry->conn;
}

/* Moves a connection pushed out of a young set (its way claimed, so its key stays) to the old
 * table: over an old copy of its tuple, or into a free way, or in place of the set's least
 * recently active connection, which is evicted. */
static __always_inline void osp_ct_age(const struct osp_ct_way *moving, __u32 now)
{
	struct osp_ct_slot slot = {};
	__u64 hash = osp_ct_hash(&moving->key);
	osp_ct_slot(&slot, osp_ct_old_set(hash), OSP_CT_SCRATCH_OLD, hash);
	struct osp_conn *stale = osp_ct_find(&moving->key, &slot);
	if (stale) {
		__builtin_memcpy(stale, &moving->conn, sizeof(*stale));
		return;
	}
	__u32 old = osp_ct_claim(&slot, now);
	if (old == OSP_CT_CLAIMED) { /* lost in a race: gone as if evicted */
		osp_count_ct(OSP_CT_EVICTED);
		return;
	}
	if (old)
		osp_count_ct(OSP_CT_EVICTED);
	osp_ct_fill(&slot, &moving->key, &moving->conn);
}

/* Adds the key's connection (zeroed, `seen` now; `pod_sends` is the direction that leaves the
 * pod) to the young table after a lookup there did not find it. 0 when another CPU took the
 * way first. */
static __always_inline struct osp_conn *
osp_ct_insert(const struct osp_conn_key *key, struct osp_ct_slot *slot, __u32 now, __u32 pod_sends)
{
	__u32 old = osp_ct_claim(slot, now);
	if (old == OSP_CT_CLAIMED)
		return 0;
	if (old)
		osp_ct_age(&slot->set->ways[slot->way & (OSP_CT_WAYS - 1)], now);
	/* The start's report is both directions' first. */
	__u32 reported = osp_report_clock();
	struct osp_conn conn = {
	    .last_report = {reported, reported}, .seen = now, .pod_sends = pod_sends};
	osp_count_ct(OSP_CT_INSERTED);
	return osp_ct_fill(slot, key, &conn);
}

/* Frees the connection's way — unless it was evicted or moved and taken meanwhile. */
static __always_inline void osp_ct_delete(struct osp_ct_slot *slot)
{
	if (__sync_val_compare_and_swap(&slot->set->tags[slot->way & (OSP_CT_WAYS - 1)], slot->tag,
					0) == slot->tag)
		osp_count_ct(OSP_CT_DELETED);
}

/* enum osp_quiet for a connection new at this interface (osp_config.local_aggregation). Both
 * ends must be pods of this node: the same lookups at the two pods' interfaces then make the
 * same decision, so each reports only what enters its pod and nothing goes unreported. Each
 * connection still ends on its FINs at both, since both track both directions. A connection to
 * a Service address is not between two pods where it leaves the client: the client's interface
 * reports it both ways (the backend's replies entering it with the translation); the backend's
 * reports what enters it, which the client's did report leaving (no OSP_QUIET_PEER). */
static __always_inline __u8 osp_quiet_of(struct __sk_buff *skb, const struct osp_packet *pkt,
					 __u8 observation)
{
	if (!osp_config.local_aggregation || osp_config.per_packet)
		return 0;
	/* The peer first (the destination of what leaves the pod): across nodes, one lookup. */
	int leaving = observation == OSP_OBS_FROM_ENDPOINT;
	struct osp_pod_address end = {.family = pkt->tuple.family};
	__builtin_memcpy(end.addr, leaving ? pkt->tuple.daddr : pkt->tuple.saddr, 16);
	if (!bpf_map_lookup_elem(&osp_local_pods, &end))
		return 0;
	__builtin_memcpy(end.addr, leaving ? pkt->tuple.saddr : pkt->tuple.daddr, 16);
	if (!bpf_map_lookup_elem(&osp_local_pods, &end))
		return 0;
	if (observation == OSP_OBS_TO_ENDPOINT && osp_translated_ct(skb))
		return OSP_QUIET_SENDS;
	return OSP_QUIET_SENDS | OSP_QUIET_PEER;
}

/* Whether `direction` of a connection goes unreported at this interface: what its pod sends a
 * pod of this node whose own interface reports it, where it enters (OSP_QUIET_SENDS). The packet
 * path and the flush ask the same. */
static __always_inline int osp_reported_elsewhere(const struct osp_conn *conn, __u32 direction)
{
	return (conn->quiet & OSP_QUIET_SENDS) && direction == conn->pod_sends;
}

/* Linux's ephemeral ports start here (net.ipv4.ip_local_port_range); Kubernetes' NodePorts end
 * below it. */
#define OSP_EPHEMERAL_PORTS 32768

/* A TCP connection picked up mid-stream (open when the agent started, or evicted and seen
 * again) has no SYN to say who opened it, and a UDP exchange never has one. A packet from a
 * port below the ephemeral range to one in it is taken as the server's answer; otherwise its
 * source is taken as the client, as netfilter's conntrack picks such a connection up. A client
 * sends from an ephemeral port, so the first datagram of a new exchange is never taken for an
 * answer. */
static __always_inline int osp_from_server_port(const struct osp_tuple *t)
{
	return t->sport < OSP_EPHEMERAL_PORTS && t->dport >= OSP_EPHEMERAL_PORTS;
}

/* Tracks the packet at an observation point and reports it when the connection starts, when
 * a TCP packet carries SYN, FIN or RST, for every DNS message, and periodically with deltas:
 * each report carries what the packet's direction sent since that direction's last report.
 * What a direction sent before falling silent is reported by the flush (flush.c).
 * A TCP connection leaves the table when it ends — at its RST, or at the first packet without
 * FIN once both sides sent theirs (the last ACK) — so that short connections do not fill it
 * and push out live ones. */
static __always_inline void osp_track(struct __sk_buff *skb, struct osp_packet *pkt,
				      __u8 observation)
{
	struct osp_conn_key key __attribute__((aligned(8))) = {.ifindex = osp_skb_ifindex(skb),
							       .echo_id = pkt->echo_id};
	/* A SYN-ACK or an echo reply: the packet's destination opened the connection. */
	int answer =
	    (pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_ACK)) == (OSP_TCPF_SYN | OSP_TCPF_ACK);
	if (osp_is_icmp(pkt->tuple.protocol))
		answer = osp_icmp_ends(pkt);
	int source_first = osp_source_first(&pkt->tuple);
	if (source_first)
		__builtin_memcpy(&key.tuple, &pkt->tuple, sizeof(key.tuple));
	else
		osp_reverse(&key.tuple, &pkt->tuple);
	__u32 now = bpf_jiffies64();
	__u8 report = 0;
	__u64 hash = osp_ct_hash(&key);
	struct osp_ct_slot young = {}, old = {};
	struct osp_ct_slot *slot = &young;
	osp_ct_slot(&young, osp_ct_young_set(hash), OSP_CT_SCRATCH_YOUNG, hash);
	__u32 direction = osp_ct_direction(young.scratch, source_first);
	struct osp_conn *conn = osp_ct_find(&key, &young);
	int opening = (pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_ACK)) == OSP_TCPF_SYN;
	if (!conn && !opening) {
		osp_ct_slot(&old, osp_ct_old_set(hash), OSP_CT_SCRATCH_OLD, hash);
		conn = osp_ct_find(&key, &old);
		if (conn)
			slot = &old;
	}
	if (!conn) {
		/* New here: this packet's source opened it — unless it answers, and its
		 * destination did (we missed the SYN or the echo request). */
		if ((pkt->tuple.protocol == IPPROTO_TCP && !opening) ||
		    pkt->tuple.protocol == IPPROTO_UDP)
			answer |= osp_from_server_port(&pkt->tuple);
		conn =
		    osp_ct_insert(&key, &young, now,
				  observation == OSP_OBS_FROM_ENDPOINT ? direction : direction ^ 1);
		if (!conn) {
			/* Another CPU claimed the way it would take: reported all the same, from a
			 * state of its own, so that no start goes missing; its next packet tries
			 * again. */
			osp_count_error(OSP_ERR_CONNTRACK_FULL);
			struct osp_conn untracked = {};
			untracked.packets[direction & 1] = 1;
			untracked.bytes[direction & 1] = skb->len;
			osp_report_trace(skb, pkt, &untracked, direction, observation,
					 OSP_REPORT_NEW, answer);
			return;
		}
		conn->initiator_first = source_first ^ answer;
		conn->quiet = osp_quiet_of(skb, pkt, observation);
		report = OSP_REPORT_NEW;
	}
	__u8 is_reply = conn->initiator_first != source_first;
	/* Plain adds: a connection's packets at one interface are handled by one CPU at a time
	 * in practice, and an occasional lost increment only shifts a delta to the next report. */
	conn->packets[direction & 1] += 1;
	conn->bytes[direction & 1] += skb->len;
	conn->seen = now;

	int dns = pkt->tuple.sport == 53 || pkt->tuple.dport == 53;
	if (!report) {
		if (pkt->tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_FIN | OSP_TCPF_RST))
			report = OSP_REPORT_FLAGS;
		else if (dns && skb->len > pkt->payload)
			report = OSP_REPORT_PAYLOAD;
		else if (osp_config.per_packet)
			report = OSP_REPORT_PACKET;
		else if (osp_report_due(conn->last_report[direction & 1]))
			report = OSP_REPORT_PERIODIC;
	}
	int ended = 0;
	if (pkt->tuple.protocol == IPPROTO_TCP) {
		if (pkt->tcp_flags & OSP_TCPF_FIN)
			conn->fins |= is_reply ? 2 : 1;
		ended = (pkt->tcp_flags & OSP_TCPF_RST) ||
			(conn->fins == 3 && !(pkt->tcp_flags & OSP_TCPF_FIN));
	}
	if (osp_reported_elsewhere(conn, direction))
		report = 0;
	if (report)
		osp_report_trace(skb, pkt, conn, direction, observation, report, is_reply);
	if (ended && slot->set)
		osp_ct_delete(slot);
}

#endif
