/* The few kernel structures Osprey reads, declared minimally for CO-RE: libbpf relocates each
 * field to its offset in the running kernel's BTF, so no generated vmlinux.h is needed. Enum-typed
 * fields must keep their kernel enum's name for the relocation to match. */
#ifndef OSPREY_KERNEL_H
#define OSPREY_KERNEL_H

#include <linux/in6.h>
#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	int ifindex;
	unsigned int flags; /* IFF_* */
	possible_net_t nd_net;
};

/* The addresses and ports sit in anonymous unions in the kernel; libbpf finds them there. */
struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num; /* the local port, host byte order */
	unsigned short skc_family;
	unsigned char skc_state; /* TCP's state (include/net/tcp_states.h) */
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
	struct sock_common __sk_common;
};

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	unsigned int len;
	int skb_iif;
	unsigned char *head;
	__u16 network_header;
	__u16 protocol;
	unsigned long _nfct; /* struct nf_conn * | enum ip_conntrack_info (low 3 bits) */
};

/* Netfilter's connection tracking entry (include/net/netfilter/nf_conntrack.h). */
union nf_inet_addr {
	__u32 all[4];
};

union nf_conntrack_man_proto {
	__u16 all; /* network byte order: the port for TCP and UDP */
};

struct nf_conntrack_man {
	union nf_inet_addr u3;
	union nf_conntrack_man_proto u;
	__u16 l3num;
};

struct nf_conntrack_tuple {
	struct nf_conntrack_man src;
	struct {
		union nf_inet_addr u3;
		union {
			__u16 all;
		} u;
		__u8 protonum;
	} dst;
};

struct nf_conntrack_tuple_hash {
	struct nf_conntrack_tuple tuple;
};

struct nf_conn {
	struct nf_conntrack_tuple_hash tuplehash[2]; /* IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY */
	unsigned long status;			     /* enum ip_conntrack_status bits */
};

#define OSP_IPS_DST_NAT (1UL << 5) /* IPS_DST_NAT: the destination was translated */

enum skb_drop_reason {
	SKB_NOT_DROPPED_YET = 0,
	SKB_CONSUMED = 1,
};

#pragma clang attribute pop

#endif
