/* Reading a packet's headers in tc programs: direct packet access for the common case, the
 * bounds-checked bpf_skb_load_bytes path for everything else. */
#ifndef OSPREY_PARSE_H
#define OSPREY_PARSE_H

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include "maps.h"
#include "osprey_abi.h"

/* IPv6 extension headers walked to find the L4 header; a packet with more reports the
 * extension's next-header value as its protocol. */
#define OSP_IPV6_EXTENSIONS_MAX 6

/* ICMP or ICMPv6: type and code where other protocols have ports. */
static __always_inline int osp_is_icmp(__u8 protocol)
{
	return protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6;
}

static __always_inline __u8 osp_icmp_echo_request(__u8 protocol)
{
	return protocol == IPPROTO_ICMP ? 8 : 128;
}

static __always_inline __u8 osp_icmp_echo_reply(__u8 protocol)
{
	return protocol == IPPROTO_ICMP ? 0 : 129;
}

/* Whether an ICMP message of `type` is an echo request or reply (ICMP or ICMPv6). */
static __always_inline int osp_icmp_is_echo(__u8 protocol, __u8 type)
{
	return type == osp_icmp_echo_request(protocol) || type == osp_icmp_echo_reply(protocol);
}

/* Where a packet is in its datagram, when the datagram was fragmented. */
struct osp_fragment {
	__u32 id;   /* the datagram's identification */
	__u8 first; /* the first fragment: it has the L4 header */
	__u8 later; /* a later fragment: no L4 header */
};

/* IPv4 fragmentation: more fragments follow, and the fragment's offset (host byte order). */
#define OSP_IP_MF 0x2000
#define OSP_IP_OFFSET 0x1fff

/* A fragment of an IPv4 datagram, from its header's identification and fragment field (both
 * in network byte order). */
static __always_inline void osp_ipv4_fragment(struct osp_fragment *frag, __be16 id, __be16 field)
{
	__u16 flags = bpf_ntohs(field);
	if (!(flags & (OSP_IP_MF | OSP_IP_OFFSET)))
		return;
	frag->id = bpf_ntohs(id);
	frag->later = (flags & OSP_IP_OFFSET) != 0;
	frag->first = !frag->later;
}

/* Whether an IPv6 next-header value is an extension header osp_ipv6_extension steps over. */
static __always_inline int osp_ipv6_is_extension(__u8 protocol)
{
	return protocol == IPPROTO_HOPOPTS || protocol == IPPROTO_ROUTING ||
	       protocol == IPPROTO_DSTOPTS || protocol == IPPROTO_MH || protocol == IPPROTO_AH ||
	       protocol == IPPROTO_FRAGMENT;
}

/* One step over an IPv6 extension header: `*protocol` is its type (osp_ipv6_is_extension) and
 * `hdr` its first 8 bytes. Returns its length and sets `*protocol` to the next header's type.
 * Hop-by-hop, routing, destination options and mobility headers count 8-byte units past the
 * first 8, the authentication header 4-byte units past the first 8; a fragment header is 8
 * bytes and fills `frag` (a later fragment has no more headers: its next-header value is the
 * datagram's protocol). */
static __always_inline __u32 osp_ipv6_extension(__u8 *protocol, const __u8 hdr[8],
						struct osp_fragment *frag)
{
	__u8 type = *protocol;
	*protocol = hdr[0];
	if (type == IPPROTO_FRAGMENT) {
		frag->id =
		    ((__u32)hdr[4] << 24) | ((__u32)hdr[5] << 16) | ((__u32)hdr[6] << 8) | hdr[7];
		frag->later = ((((__u32)hdr[2] << 8) | hdr[3]) & 0xfff8) != 0;
		frag->first = !frag->later;
		return 8;
	}
	return type == IPPROTO_AH ? ((__u32)hdr[1] + 2) * 4 : ((__u32)hdr[1] + 1) * 8;
}

/* The key of a fragmented datagram whose tuple's addresses, family and protocol are set. */
static __always_inline void osp_fragment_key(struct osp_fragment_key *key,
					     const struct osp_tuple *tuple,
					     const struct osp_fragment *frag)
{
	__builtin_memcpy(key->saddr, tuple->saddr, 16);
	__builtin_memcpy(key->daddr, tuple->daddr, 16);
	key->id = frag->id;
	key->family = tuple->family;
	key->protocol = tuple->protocol;
	key->pad = 0;
}

/* The ports (or ICMP type and code) of a later fragment's datagram, from its first fragment;
 * left 0 when that was not seen. */
static __always_inline void osp_fragment_recall(const struct osp_tuple *tuple,
						const struct osp_fragment *frag,
						struct osp_fragment_ports *ports)
{
	struct osp_fragment_key key = {};
	osp_fragment_key(&key, tuple, frag);
	struct osp_fragment_ports *seen = bpf_map_lookup_elem(&osp_fragments, &key);
	if (seen)
		*ports = *seen;
}

/* Offset of the L4 header and its protocol, or -1 if not IPv4/IPv6 (or unreadable); `frag`
 * says where a fragment is in its datagram (a later one has no L4 header: the offset is where
 * its data begins). IPv6 extension headers are walked (osp_ipv6_extension). */
static __always_inline int osp_l4_offset(struct __sk_buff *skb, __u8 *protocol,
					 struct osp_fragment *frag)
{
	__u16 proto = bpf_ntohs(skb->protocol);
	if (proto == ETH_P_IP) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
			return -1;
		*protocol = ip.protocol;
		osp_ipv4_fragment(frag, ip.id, ip.frag_off);
		return ETH_HLEN + (ip.ihl & 0x0f) * 4;
	}
	if (proto == ETH_P_IPV6) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, nexthdr), protocol,
				       1) < 0)
			return -1;
		__u32 offset = ETH_HLEN + sizeof(struct ipv6hdr);
#pragma unroll
		for (int i = 0; i < OSP_IPV6_EXTENSIONS_MAX; i++) {
			if (!osp_ipv6_is_extension(*protocol))
				break;
			__u8 hdr[8];
			if (bpf_skb_load_bytes(skb, offset, hdr, sizeof(hdr)) < 0)
				return -1;
			offset += osp_ipv6_extension(protocol, hdr, frag);
			if (frag->later)
				break;
		}
		return offset;
	}
	return -1;
}

/* skb->ifindex. With a plain field read clang may keep the field's address (skb + 40) in a
 * register or on the stack for a later read, and the verifier refuses a load through a context
 * pointer that was moved; this load is always from the context itself. */
static __always_inline __u32 osp_skb_ifindex(struct __sk_buff *skb)
{
	__u32 ifindex;
	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(ifindex)
		     : "r"(skb), "i"(offsetof(struct __sk_buff, ifindex)));
	return ifindex;
}

/* Everything the tracker needs from one packet. */
struct osp_packet {
	struct osp_tuple tuple;
	__u32 l4;      /* offset of the L4 header */
	__u32 payload; /* offset of the L4 payload */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u16 echo_id; /* an ICMP echo's identifier, else 0 */
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
	if (ip->frag_off & bpf_htons(OSP_IP_MF | OSP_IP_OFFSET))
		return -1; /* a fragment */
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

/* A first fragment's ports (or ICMP type and code), kept for its datagram's later fragments. */
static __always_inline void osp_fragment_remember(const struct osp_packet *pkt,
						  const struct osp_fragment *frag)
{
	struct osp_fragment_key key = {};
	osp_fragment_key(&key, &pkt->tuple, frag);
	struct osp_fragment_ports ports = {
	    .sport = pkt->tuple.sport,
	    .dport = pkt->tuple.dport,
	    .icmp_type = pkt->icmp_type,
	    .icmp_code = pkt->icmp_code,
	    .echo_id = pkt->echo_id,
	};
	bpf_map_update_elem(&osp_fragments, &key, &ports, BPF_ANY);
}

/* The general path of osp_parse: every packet but IPv4 TCP/UDP whose headers are in the
 * linear data — IPv6, ICMP, fragments, headers the direct path cannot see. A global function:
 * the verifier checks it once on its own, and the rest of the program once for what it returns,
 * not once for every path through its header walk (inlined, it took each pod program's
 * verification past 100,000 instructions; about 56,000 this way). A datagram's later fragments,
 * which have no L4 header, take their ports from its first fragment (osp_fragments) and carry no
 * TCP flags or DNS message. */
__noinline int osp_parse_general(struct __sk_buff *skb, struct osp_packet *pkt)
{
	if (!pkt)
		return -1;
	if (bpf_skb_load_bytes(skb, 0, pkt->macs, 12) < 0)
		return -1;
	__u8 protocol = 0;
	struct osp_fragment frag = {};
	int l4 = osp_l4_offset(skb, &protocol, &frag);
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
	if (frag.later) {
		struct osp_fragment_ports ports = {};
		osp_fragment_recall(&pkt->tuple, &frag, &ports);
		pkt->tuple.sport = ports.sport;
		pkt->tuple.dport = ports.dport;
		pkt->icmp_type = ports.icmp_type;
		pkt->icmp_code = ports.icmp_code;
		pkt->echo_id = ports.echo_id;
		pkt->payload = skb->len; /* nothing to read past the headers */
		return 0;
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
	} else if (osp_is_icmp(protocol)) {
		__u8 typecode[2];
		if (bpf_skb_load_bytes(skb, l4, typecode, 2) < 0)
			return -1;
		pkt->icmp_type = typecode[0];
		pkt->icmp_code = typecode[1];
		pkt->payload = l4 + 8;
		__be16 id;
		if (osp_icmp_is_echo(protocol, typecode[0]) &&
		    bpf_skb_load_bytes(skb, l4 + 4, &id, sizeof(id)) == 0)
			pkt->echo_id = bpf_ntohs(id);
	}
	if (frag.first)
		osp_fragment_remember(pkt, &frag);
	return 0;
}

/* 0: parsed; 1: not an IP packet (ARP and the like), nothing to track; -1: headers unreadable. */
static __always_inline int osp_parse(struct __sk_buff *skb, struct osp_packet *pkt)
{
	if (osp_parse_direct(skb, pkt) == 0)
		return 0;
	return osp_parse_general(skb, pkt);
}

#endif
