/* Reading packet headers in tc programs, through bpf_skb_load_bytes (bounds-checked). */
#ifndef OSPREY_PACKET_H
#define OSPREY_PACKET_H

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

/* Offset of the L4 header and its protocol, or -1 if not IPv4/IPv6 (or unreadable). Of IPv6
 * extension headers only a leading hop-by-hop header is walked (MLD carries one); packets with
 * others report the extension's next-header value. */
static __always_inline int osp_l4_offset(struct __sk_buff *skb, __u8 *protocol)
{
	__u16 proto = bpf_ntohs(skb->protocol);
	if (proto == ETH_P_IP) {
		__u8 vihl;
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &vihl, 1) < 0)
			return -1;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, protocol), protocol,
				       1) < 0)
			return -1;
		return ETH_HLEN + (vihl & 0x0f) * 4;
	}
	if (proto == ETH_P_IPV6) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, nexthdr), protocol,
				       1) < 0)
			return -1;
		int offset = ETH_HLEN + sizeof(struct ipv6hdr);
		if (*protocol == 0) { /* hop-by-hop: next header, then length in 8-byte units - 1 */
			__u8 ext[2];
			if (bpf_skb_load_bytes(skb, offset, ext, 2) < 0)
				return -1;
			*protocol = ext[0];
			offset += (ext[1] + 1) * 8;
		}
		return offset;
	}
	return -1;
}

#endif
