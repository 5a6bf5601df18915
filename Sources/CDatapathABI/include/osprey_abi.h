/*
 * The kernel <-> user-space ABI of Osprey's eBPF datapath: every constant, map key and value
 * that both the BPF C programs (Sources/DatapathBPF/bpf) and Swift (module CDatapathABI) use.
 * Change it in one place; the static asserts keep both sides' layout honest.
 */
#ifndef OSPREY_ABI_H
#define OSPREY_ABI_H

#include <linux/types.h>

/* Role of an interface of the node's network namespace (value of map osp_ifaces). */
enum osp_if_role {
	OSP_IF_UPLINK = 1, /* towards other nodes: forward_count/bytes are counted here */
	OSP_IF_POD = 2,	   /* node-side end of a pod's veth */
};

/* Role of a network namespace on this node (value of map osp_netns). */
enum osp_netns_role {
	OSP_NETNS_NODE = 1,
	OSP_NETNS_POD = 2,
};

/* Direction as the metrics report it: of the node (uplink) or of the pod (pod veths). */
enum osp_direction {
	OSP_DIR_INGRESS = 0,
	OSP_DIR_EGRESS = 1,
	OSP_DIR_UNKNOWN = 2,
	OSP_DIR_MAX = 3,
};

/* TCP flags as networkobservability_tcp_flag_counters names them. A SYN with ACK counts as
 * SYNACK only; every other flag counts independently. */
enum osp_tcp_flag {
	OSP_TCP_SYN = 0,
	OSP_TCP_SYNACK = 1,
	OSP_TCP_ACK = 2,
	OSP_TCP_FIN = 3,
	OSP_TCP_RST = 4,
	OSP_TCP_PSH = 5,
	OSP_TCP_URG = 6,
	OSP_TCP_ECE = 7,
	OSP_TCP_CWR = 8,
	OSP_TCP_FLAG_MAX = 9,
};

/* Failures of the programs themselves (map osp_errors). They never affect traffic. */
enum osp_error {
	OSP_ERR_TC_IFACE_LOOKUP = 0, /* tc program on an interface missing from osp_ifaces */
	OSP_ERR_TC_HEADER = 1,	     /* packet headers could not be read */
	OSP_ERR_DROP_MAP_FULL = 2,   /* osp_drops had no room for a new (reason, direction) */
	OSP_ERR_MAX = 3,
};

/* Packets and bytes; the value of every per-CPU counter map. */
struct osp_counter {
	__u64 packets;
	__u64 bytes;
};

/* Key of osp_drops: the kernel's drop reason (enum skb_drop_reason) and direction. */
struct osp_drop_key {
	__u32 reason;
	__u32 direction;
};

/* Priority and handle of Osprey's tc filters: fixed, so a restarted agent replaces its own
 * filters in place instead of stacking a second program on the hook. */
#define OSP_TC_PRIORITY 0x4f53 /* "OS" */
#define OSP_TC_HANDLE 0x5052   /* "PR" */

_Static_assert(sizeof(struct osp_counter) == 16, "osp_counter layout");
_Static_assert(sizeof(struct osp_drop_key) == 8, "osp_drop_key layout");

#endif
