// SPDX-License-Identifier: GPL-2.0
/* Tracepoint skb:kfree_skb: every packet the kernel drops, with the kernel's reason. Fires in
 * every network namespace of the machine; only drops in this node's namespaces (map osp_netns)
 * are counted. Consumed packets (normal end of life) are not drops and are skipped, as are the
 * reasons the agent marked in osp_config.drops_ignored.
 * Attached as a BTF tracepoint (tp_btf): the kernel passes the tracepoint's arguments as they
 * are, and the sk_buff's fields are plain loads. A classic tracepoint first copies every field
 * into a perf record, and each field read is a helper call. The program runs about twice per
 * connection under churn (sockets' queue purges, skipped at once): 95 ns a run against 149. Only
 * the packet's headers, behind a pointer the verifier does not type, are read with a helper. */
#include <linux/bpf.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include "config.h"
#include "events.h"
#include "kernel.h"
#include "maps.h"

/* TCP states (include/net/tcp_states.h): a timewait socket's, and a listener's. */
#define OSP_TCP_TIME_WAIT 6
#define OSP_TCP_LISTEN 10
/* The loopback device's index, the same in every network namespace (net/core/dev.c). */
#define OSP_LOOPBACK_IFINDEX 1

/* Where a drop's network namespace came from (osp_netns_of). */
enum osp_netns_source {
	OSP_NETNS_UNPLACED,   /* neither a device nor a socket: not this node's */
	OSP_NETNS_DEVICE,     /* the device the packet was on */
	OSP_NETNS_OWN_SOCKET, /* the socket that owns it (sent by, or queued at) */
	OSP_NETNS_RX_SOCKET,  /* the socket that received it (tracepoint argument, 6.12+) */
};

/* The network namespace a drop happened in, and in `source` what placed it: its device's, else
 * its owning socket's, else the receiving socket's (`rx_sk`, 0 where the kernel names none):
 * TCP takes a segment off its device before the socket's own processing (tcp_v4_rcv clears
 * skb->dev), so what that drops — a full receive buffer or backlog, a segment outside the
 * window, a duplicate — is placed by the socket that received it. */
static __always_inline __u32 osp_netns_of(struct sk_buff *skb, struct net_device *dev,
					  struct sock *rx_sk, enum osp_netns_source *source)
{
	if (dev) {
		*source = OSP_NETNS_DEVICE;
		return dev->nd_net.net->ns.inum;
	}
	struct sock *sk = skb->sk;
	if (sk) {
		*source = OSP_NETNS_OWN_SOCKET;
		return sk->__sk_common.skc_net.net->ns.inum;
	}
	if (rx_sk) {
		*source = OSP_NETNS_RX_SOCKET;
		return rx_sk->__sk_common.skc_net.net->ns.inum;
	}
	*source = OSP_NETNS_UNPLACED;
	return 0;
}

/* The dropped packet's 5-tuple (and TCP flags) from its headers in kernel memory, read once;
 * -1 when they are not there. */
static __always_inline int osp_drop_tuple(struct sk_buff *skb, struct osp_tuple *tuple,
					  __u8 *tcp_flags)
{
	unsigned char *head = skb->head;
	__u16 network = skb->network_header;
	__u16 protocol = bpf_ntohs(skb->protocol);
	if (!head || network == (__u16)~0U)
		return -1;
	unsigned char *ip = head + network;
	__u32 l4 = 0;
	struct osp_fragment frag = {};
	if (protocol == ETH_P_IP) {
		struct iphdr iph;
		if (bpf_probe_read_kernel(&iph, sizeof(iph), ip) < 0 || iph.version != 4)
			return -1;
		tuple->family = 4;
		__builtin_memcpy(tuple->saddr, &iph.saddr, 4);
		__builtin_memcpy(tuple->daddr, &iph.daddr, 4);
		tuple->protocol = iph.protocol;
		l4 = iph.ihl * 4;
		osp_ipv4_fragment(&frag, iph.id, iph.frag_off);
	} else if (protocol == ETH_P_IPV6) {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), ip) < 0 || ip6.version != 6)
			return -1;
		tuple->family = 6;
		__builtin_memcpy(tuple->saddr, &ip6.saddr, 16);
		__builtin_memcpy(tuple->daddr, &ip6.daddr, 16);
		tuple->protocol = ip6.nexthdr;
		l4 = sizeof(ip6);
#pragma unroll
		for (int i = 0; i < OSP_IPV6_EXTENSIONS_MAX; i++) {
			if (!osp_ipv6_is_extension(tuple->protocol))
				break;
			__u8 hdr[8];
			if (bpf_probe_read_kernel(hdr, sizeof(hdr), ip + (l4 & 0x3fff)) < 0)
				return -1;
			l4 += osp_ipv6_extension(&tuple->protocol, hdr, &frag);
			if (frag.later)
				break;
		}
	} else {
		return -1;
	}
	if (frag.later) { /* no L4 header: the ports its datagram's first fragment carried */
		struct osp_fragment_ports ports = {};
		osp_fragment_recall(tuple, &frag, &ports);
		int icmp = osp_is_icmp(tuple->protocol);
		tuple->sport = icmp ? ports.icmp_type : ports.sport;
		tuple->dport = icmp ? ports.icmp_code : ports.dport;
		return 0;
	}
	int icmp = osp_is_icmp(tuple->protocol);
	if (tuple->protocol == IPPROTO_TCP || tuple->protocol == IPPROTO_UDP || icmp) {
		__be16 ports[2];
		if (bpf_probe_read_kernel(ports, sizeof(ports), ip + (l4 & 0x3fff)) == 0) {
			/* ICMP: type and code in place of the ports */
			tuple->sport = icmp ? ((__u8 *)ports)[0] : bpf_ntohs(ports[0]);
			tuple->dport = icmp ? ((__u8 *)ports)[1] : bpf_ntohs(ports[1]);
		}
		if (tuple->protocol == IPPROTO_TCP)
			bpf_probe_read_kernel(tcp_flags, 1, ip + (l4 & 0x3fff) + 13);
	}
	return 0;
}

/* True for a packet to a multicast group (224.0.0.0/4, ff00::/8). */
static __always_inline int osp_multicast(const struct osp_tuple *tuple)
{
	if (tuple->family == 4)
		return (tuple->daddr[0] & 0xf0) == 0xe0;
	return tuple->daddr[0] == 0xff;
}

/* Reserves, fills and submits one drop event of `size` bytes (a constant at each call, as the
 * verifier wants a reservation's size): with the Service translation of `ct` when given. */
static __always_inline void osp_emit_drop(struct sk_buff *skb, struct net_device *dev,
					  const struct osp_tuple *tuple, __u8 tcp_flags,
					  __u32 reason, __u32 netns, __u64 location,
					  struct nf_conn *ct, __u64 size)
{
	struct osp_event *event = osp_reserve(size);
	if (!event)
		return;
	event->timestamp_ns = bpf_ktime_get_ns();
	__builtin_memcpy(&event->tuple, tuple, sizeof(*tuple));
	event->packets = 1;
	event->bytes = skb->len;
	event->ifindex = dev ? dev->ifindex : 0;
	event->drop_reason = reason;
	event->netns = netns;
	event->kind = OSP_EVENT_DROP;
	event->observation = OSP_OBS_DROP;
	event->report = OSP_REPORT_DROP;
	event->is_reply = 2;
	event->tcp_flags = tcp_flags;
	__builtin_memcpy(event->location, &location, sizeof(location));
	if (ct)
		osp_fill_nat(ct, event);
	osp_submit(event, size);
}

/* Reports one drop with its tuple, for TCP its flags, and where in the kernel it was freed. A
 * packet the node's NAT translated (a Service address to a backend) and then dropped — by a
 * network policy in the node's netfilter, before its conntrack entry was confirmed and so
 * before user space could look the connection up — carries the translation, so that the
 * client's flows of that connection can name the backend the drop names. */
static __always_inline void osp_report_drop(struct sk_buff *skb, struct net_device *dev,
					    const struct osp_tuple *tuple_in, __u8 tcp_flags,
					    __u32 reason, __u32 netns, __u64 location)
{
	struct osp_tuple tuple = *tuple_in;
	struct nf_conn *ct = osp_dst_nat_ct(skb->_nfct);
	if (ct)
		osp_emit_drop(skb, dev, &tuple, tcp_flags, reason, netns, location, ct,
			      OSP_EVENT_HEADER_SIZE);
	else
		osp_emit_drop(skb, dev, &tuple, tcp_flags, reason, netns, location, 0,
			      OSP_EVENT_BASE_SIZE);
}

/* The tracepoint's arguments: (struct sk_buff *skb, void *location, enum skb_drop_reason
 * reason), since Linux 5.17; 6.12 appended the receiving socket (struct sock *rx_sk). */
SEC("tp_btf/kfree_skb")
int osp_kfree_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	__u32 reason = (__u32)ctx[2];
	if (reason == bpf_core_enum_value(enum skb_drop_reason, SKB_NOT_DROPPED_YET) ||
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;
	/* The mask repeats the bound for the verifier, which sees the compare on another copy. */
	__u8 ignore = reason < OSP_DROP_REASON_SLOTS
			  ? osp_config.drops_ignored[reason & (OSP_DROP_REASON_SLOTS - 1)]
			  : 0;
	if (ignore & OSP_DROP_IGNORE_ALWAYS)
		return 0; /* freed on a socket's way out, not dropped by the network */
	/* A datagram GRO merged behind a head, freed with it and without the head's reason: a
	 * dropped head's own free reports it, with its reason and a length covering the list. */
	__u64 location = ctx[1];
	if ((ignore & OSP_DROP_IGNORE_LIST) && location >= osp_config.list_free_start &&
	    location < osp_config.list_free_end)
		return 0;

	/* The receiving socket (0 where none is named): the tracepoint's fourth argument since
	 * Linux 6.12; on older kernels drop_rx_sk is 0 and the verifier, which prunes what the
	 * read-only config turns off, never sees the read of an argument they do not have. Its
	 * state is read for the rules that need it. */
	struct sock *rx_sk = 0;
	if (osp_config.drop_rx_sk)
		rx_sk = (struct sock *)ctx[3];
	__u8 rx_state = 0;
	if ((ignore & (OSP_DROP_IGNORE_TIME_WAIT | OSP_DROP_IGNORE_OPENING)) && rx_sk)
		rx_state = rx_sk->__sk_common.skc_state;
	/* A segment that reached a socket in TIME-WAIT (its peer's FIN sent again because the last
	 * ACK was lost, a late duplicate): TCP answered it, as it should, and freed it. */
	if ((ignore & OSP_DROP_IGNORE_TIME_WAIT) && rx_state == OSP_TCP_TIME_WAIT)
		return 0;

	struct net_device *dev = skb->dev;
	/* IFF_LOOPBACK: host-internal traffic (e.g. TCP discarding a FIN that reached a TIME-WAIT
	 * socket over lo, on kernels without the receiving socket). A segment TCP took off its
	 * device still names the device it came in on: lo is interface 1 in every namespace. */
	if ((ignore & OSP_DROP_IGNORE_LOOPBACK) &&
	    (dev ? (dev->flags & 0x8) : (rx_sk && skb->skb_iif == OSP_LOOPBACK_IFINDEX)))
		return 0;
	enum osp_netns_source placed;
	__u32 inum = osp_netns_of(skb, dev, rx_sk, &placed);
	__u32 *netns_role = bpf_map_lookup_elem(&osp_netns, &inum);
	if (!netns_role)
		return 0;

	/* Direction, where it can be known: a received packet (skb_iif set) entered the node on
	 * its uplink or a pod from its veth (ingress), or left a pod into the node (egress); a
	 * packet the stack produced itself was on its way out (egress). */
	__u32 direction = OSP_DIR_UNKNOWN;
	if (placed == OSP_NETNS_RX_SOCKET) {
		direction = OSP_DIR_INGRESS; /* received, and dropped at the socket */
	} else if (placed == OSP_NETNS_DEVICE) {
		if (skb->skb_iif == 0) {
			direction = OSP_DIR_EGRESS;
		} else if (*netns_role == OSP_NETNS_POD) {
			direction = OSP_DIR_INGRESS;
		} else {
			__u32 ifindex = dev->ifindex;
			__u32 *if_role = bpf_map_lookup_elem(&osp_ifaces, &ifindex);
			direction = (if_role && *if_role == OSP_IF_UPLINK) ? OSP_DIR_INGRESS
									   : OSP_DIR_EGRESS;
		}
	}

	struct osp_tuple tuple = {};
	__u8 tcp_flags = 0;
	int has_tuple = osp_drop_tuple(skb, &tuple, &tcp_flags) == 0;
	if ((ignore & OSP_DROP_IGNORE_MULTICAST) && has_tuple && osp_multicast(&tuple))
		return 0; /* a group report that no listener on this host wanted */
	/* An echo reply that reached its host, where no ping socket took it (ping_rcv): a raw
	 * socket, `ping` run as root, has had its copy before that lookup. */
	if ((ignore & OSP_DROP_IGNORE_ECHO_REPLY) && has_tuple && osp_is_icmp(tuple.protocol) &&
	    tuple.sport == osp_icmp_echo_reply(tuple.protocol))
		return 0;
	/* A connection still opening (a request socket; the listener is the receiving socket the
	 * tracepoint names, tcp_check_req): a SYN sent again because the SYN-ACK was lost or slow,
	 * which TCP answers with the SYN-ACK again, and an RST that resets the connection, as an
	 * established connection's RST does (consumed there). Handled, not dropped. */
	if ((ignore & OSP_DROP_IGNORE_OPENING) && rx_state == OSP_TCP_LISTEN && has_tuple &&
	    tuple.protocol == IPPROTO_TCP &&
	    ((tcp_flags & (OSP_TCPF_SYN | OSP_TCPF_ACK)) == OSP_TCPF_SYN ||
	     (tcp_flags & OSP_TCPF_RST)))
		return 0;

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
	counter->bytes += skb->len;
	if (has_tuple) /* not IP (or headers gone): counted in the metrics, no flow */
		osp_report_drop(skb, dev, &tuple, tcp_flags, reason, inum, location);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
