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
	/* Formerly the interface role lookup (roles are per program now). */
	OSP_ERR_RESERVED = 0,
	/* The packet's headers could not be read. */
	OSP_ERR_TC_HEADER = 1,
	/* osp_drops had no room for a new (reason, direction). */
	OSP_ERR_DROP_MAP_FULL = 2,
	/* A new connection lost the race for a way: reported, not kept. */
	OSP_ERR_CONNTRACK_FULL = 3,
	/* A pod hook's program could not pass the packet on to osp_tc_pod. */
	OSP_ERR_TAIL_CALL = 4,
	OSP_ERR_MAX = 5,
};

/* Counters of the connection table (map osp_ct_stats): live = inserted - deleted - evicted. */
enum osp_ct_stat {
	OSP_CT_INSERTED = 0, /* connections added to the table */
	OSP_CT_DELETED = 1,  /* connections the programs removed when they ended */
	OSP_CT_EVICTED = 2,  /* connections pushed out of a full set by a new one */
	OSP_CT_STAT_MAX = 3,
};

/* Which drops of a kernel drop reason are no drops of the network path (bits of
 * osp_config.drops_ignored[reason]). */
enum osp_drop_ignore {
	OSP_DROP_IGNORE_ALWAYS = 1,    /* every one (a closing socket's freed buffers) */
	OSP_DROP_IGNORE_MULTICAST = 2, /* those to a multicast group nobody here listens to */
	OSP_DROP_IGNORE_LOOPBACK = 4,  /* those on a loopback device: host-internal traffic */
	OSP_DROP_IGNORE_LIST = 8, /* a GRO list's datagrams freed with their head (list_free_*) */
	OSP_DROP_IGNORE_TIME_WAIT = 16,	 /* segments TCP answered at a socket in TIME-WAIT
					  * (needs osp_config.drop_rx_sk) */
	OSP_DROP_IGNORE_ECHO_REPLY = 32, /* ICMP echo replies no ping socket took */
	OSP_DROP_IGNORE_OPENING = 64,	 /* a SYN sent again or an RST that TCP handled at a
					  * connection still opening (needs drop_rx_sk) */
};

/* TCP header flag bits (byte 13 of the header), as the programs and the decoder read them. */
enum osp_tcp_flag_bit {
	OSP_TCPF_FIN = 0x01,
	OSP_TCPF_SYN = 0x02,
	OSP_TCPF_RST = 0x04,
	OSP_TCPF_PSH = 0x08,
	OSP_TCPF_ACK = 0x10,
	OSP_TCPF_URG = 0x20,
	OSP_TCPF_ECE = 0x40,
	OSP_TCPF_CWR = 0x80,
};

/* TCP packets of pods by enum osp_tcp_flag: the value of osp_tcp_flags, one per direction. */
struct osp_tcp_flag_counts {
	__u64 packets[OSP_TCP_FLAG_MAX];
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

/* ---- Flow events (ring buffer osp_events) ---- */

/* What an event reports. */
enum osp_event_kind {
	OSP_EVENT_TRACE = 1,	  /* a packet of a connection crossed a pod's veth */
	OSP_EVENT_DROP = 2,	  /* the kernel dropped a packet (skb:kfree_skb) */
	OSP_EVENT_RETRANSMIT = 3, /* a socket sent a TCP segment again (tcp:tcp_retransmit_skb) */
};

/* Where the packet was seen (Hubble's trace observation points). */
enum osp_observation {
	OSP_OBS_FROM_ENDPOINT = 1, /* leaving a pod: tc ingress of the node side of its veth */
	OSP_OBS_TO_ENDPOINT = 2,   /* entering a pod: tc egress of the node side of its veth */
	OSP_OBS_DROP = 3,	   /* where the kernel dropped it */
	OSP_OBS_SOCKET = 4,	   /* at the sending socket, before any device */
};

/* Why the connection table reported now. */
enum osp_report_reason {
	OSP_REPORT_NEW = 1,	 /* first packet of a connection at this observation point */
	OSP_REPORT_FLAGS = 2,	 /* a TCP packet with SYN, FIN or RST */
	OSP_REPORT_PERIODIC = 3, /* an active connection's packet/byte deltas */
	OSP_REPORT_PAYLOAD = 4,	 /* DNS: every message, with its bytes */
	OSP_REPORT_PACKET = 5,	 /* per-packet debugging mode */
	OSP_REPORT_DROP = 6,
	OSP_REPORT_RETRANSMIT = 7,
	OSP_REPORT_IDLE = 8, /* what a direction sent before it fell silent (the flush program) */
};

#define OSP_DNS_SNAPLEN 256 /* bytes of a DNS message carried by an event */

/* A connection's 5-tuple as the packet carries it (source -> destination). IPv4 addresses use
 * the first 4 bytes. Also the key of osp_conntrack, with the observing interface. */
struct osp_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 family; /* 4 or 6 */
	__u8 protocol;
	__u16 pad;
};

struct osp_conn_key {
	struct osp_tuple tuple; /* canonical: the lower (address, port) end first, so that both
				 * directions of a connection find the same entry with one lookup;
				 * ICMP's "ports" name an echo's requester or a message's kind
				 * (osp_icmp_ends, conntrack.h) */
	__u32 ifindex;
	__u16 echo_id; /* an ICMP echo's identifier, which its request and replies share: each
			* ping is a connection of its own, as in Cilium; 0 for everything else */
	__u16 pad;
};

/* State of one connection at one observation point. Each direction counts and reports its own
 * packets, so that a flow's packets and bytes are those that went its way. Index [0]: sent by
 * the key's first end, [1]: by its second. 48 bytes, so that a way (key and state) of the
 * set takes two cache lines wherever it starts. */
struct osp_conn {
	__u64 packets[2]; /* since the direction's last report */
	__u64 bytes[2];
	__u32 last_report[2]; /* the direction's last report, on the report clock (config.h) */
	__u32 seen; /* jiffies (low 32 bits) of its last packet: a full set evicts the oldest */
	__u8 initiator_first; /* 1: the key's first end opened the connection */
	__u8 fins;	      /* TCP: 1 once the initiator sent FIN, 2 once the responder did */
	__u8 pod_sends;	      /* the direction that leaves the pod behind the interface */
	__u8 quiet;	      /* enum osp_quiet bits (osp_config.local_aggregation) */
};

/* A connection between two pods of this node (osp_config.local_aggregation), decided once when
 * it enters an interface's table from the map of the node's pod addresses: each pod's interface
 * reports only what enters its pod, as Cilium's default monitor aggregation. The connection's
 * trace events carry these bits too (osp_event.flags). */
enum osp_quiet {
	OSP_QUIET_SENDS = 1, /* pod_sends is not reported here: the peer's interface reports it */
	OSP_QUIET_PEER = 2,  /* and the peer's interface does not report what enters here either
			      * (no Service translation between them): this report stands for both
			      * observation points */
};

/* The connection table: two arrays of sets of OSP_CT_WAYS connections, set-associative caches
 * like a CPU's. New connections enter the small osp_ct_young; a connection pushed out of a full
 * young set moves to the large osp_conntrack, where a full set evicts for good (conntrack.h).
 * A key hashes to one set of each; the set's first cache line holds a tag per way, so a lookup
 * reads that line and the one way whose tag matches. A tag is odd (hash bits | 1); 0 is a free
 * way, OSP_CT_CLAIMED one being filled. */
#define OSP_CT_WAYS 16
#define OSP_CT_CLAIMED 2

struct osp_ct_way {
	struct osp_conn_key key;
	struct osp_conn conn;
};

struct osp_ct_set {
	__u32 tags[OSP_CT_WAYS];
	struct osp_ct_way ways[OSP_CT_WAYS];
};

/* Per-CPU scratch of the table's loops, one per table (map osp_ct_scratch; see osp_ct_find). */
struct osp_ct_scratch {
	__u32 way;
	__u32 free;
	__u32 idlest;
	__u32 direction; /* the packet's (osp_track) */
};

/* The flush program's context (BPF_PROG_TEST_RUN of osp_flush_idle, flush.c): which sets of
 * osp_conntrack it walks this run (the young table it walks whole), and what it did. */
struct osp_flush_args {
	__u32 old_start;  /* in: the first set of osp_conntrack */
	__u32 old_sets;	  /* in: how many sets from there (wrapping around) */
	__u32 reports;	  /* out: reports made */
	__u32 old_walked; /* out: sets of osp_conntrack walked (fewer when the ring neared
			   * OSP_FLUSH_RING_LIMIT: the next run goes on from there) */
};

/* The event ring's size, and how full the flush leaves it at most: a quarter, so that a table
 * full of silent connections never crowds out the pod programs' events. */
#define OSP_EVENTS_RING_BYTES (8 << 20)
#define OSP_FLUSH_RING_LIMIT (OSP_EVENTS_RING_BYTES / 4)

/* A Service translation the node's netfilter made (kube-proxy's DNAT), read from the
 * conntrack entry a packet carried when it entered a pod or was dropped: the connection as its
 * client opened it (client -> Service address) and the backend the NAT chose. Lets user space
 * name the backend even for connections whose entry is gone by the time it looks (refused by a
 * RST) or was never confirmed (the SYN dropped by a network policy after the NAT). */
struct osp_nat {
	struct osp_tuple original; /* client -> Service address, ports in host byte order */
	__u8 backend[16];
	__u16 backend_port;
	__u8 present; /* 1: filled */
	__u8 pad[5];
};

/* One event. An event takes only the bytes it uses in the ring buffer: its base
 * (OSP_EVENT_BASE_SIZE, up to `nat`) when it carries neither a Service translation nor a DNS
 * message — most events: retransmits, drops but those of translated packets, and every trace
 * event but a connection's first packets into a pod —, up to `payload` (OSP_EVENT_HEADER_SIZE) with
 * a translation, the whole struct with a DNS message. That keeps the ring's memory traffic per
 * event, for the programs writing and the agent reading, to 104 bytes with the record's header
 * instead of 424. A reader treats the bytes an event did not take as zero; bytes of `payload` past
 * `payload_len` mean nothing. */
struct osp_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	struct osp_tuple tuple;
	__u64 packets; /* packets and bytes this report covers */
	__u64 bytes;
	__u32 ifindex;
	__u32 drop_reason; /* enum skb_drop_reason, for OSP_EVENT_DROP */
	__u32 netns;	   /* inode of the namespace the drop happened in */
	__u8 kind;	   /* enum osp_event_kind */
	__u8 observation;  /* enum osp_observation */
	__u8 report;	   /* enum osp_report_reason */
	__u8 tcp_flags;	   /* TCP flags byte of this packet */
	__u8 is_reply;	   /* 1: responder -> initiator; 0: initiator -> responder; 2: unknown */
	__u8 flags;	   /* trace events: their connection's enum osp_quiet bits */
	__u16 payload_len; /* bytes of DNS message in payload (0 if none) */
	union {
		struct {
			__u8 smac[6]; /* trace events: Ethernet source and destination */
			__u8 dmac[6];
		};
		/* drops: the kernel text address that freed the packet (skb:kfree_skb's location,
		 * the caller of kfree_skb_reason), unaligned: user space names the function */
		__u8 location[8];
	};
	struct osp_nat nat; /* trace events entering a pod, and drops, of a translated connection */
	__u8 payload[OSP_DNS_SNAPLEN];
};

/* Bytes of an event without a translation or a DNS message (offsetof(struct osp_event, nat)). */
#define OSP_EVENT_BASE_SIZE 96
/* Bytes of an event with a translation and no DNS message (offsetof(struct osp_event, payload)). */
#define OSP_EVENT_HEADER_SIZE 160

/* Kernel drop reasons below this value can be ignored (enum skb_drop_reason's core reasons;
 * subsystem reasons, 0x10000 and up, are always reported). */
#define OSP_DROP_REASON_SLOTS 512

/* Settings fixed when the agent loads the programs: the programs' `osp_config` constant
 * (section .rodata.config, see config.h), written by user space between open and load. The
 * verifier sees constants, so a switch that is off costs a packet nothing. */
struct osp_config {
	__u64 report_interval_ns; /* periodic report of active connections */
	__u32 per_packet;	  /* 1: report every packet (debugging) */
	__u32 tick_ns;	   /* nanoseconds per jiffy (1e9 / CONFIG_HZ); 0: not known, see config.h */
	__u32 ct_set_mask; /* sets of osp_conntrack - 1 (a power of two - 1) */
	__u32 ct_young_mask; /* sets of osp_ct_young - 1 */
	__u32 drop_rx_sk;    /* 1: the kernel's kfree_skb tracepoint passes the receiving socket as
			      * its fourth argument (Linux 6.12 and later) */
	__u32 local_aggregation; /* 1: what a pod sends a pod of this node is reported only where it
				  * enters that pod, as Cilium's default monitor aggregation does
				  * (no from-* observation points); map osp_local_pods */
	/* The kernel text that frees a GRO list's datagrams after their head (skb_release_data):
	 * [start, end) of kfree_skb's location; 0, 0: not known. */
	__u64 list_free_start;
	__u64 list_free_end;
	__u8 drops_ignored[OSP_DROP_REASON_SLOTS]; /* reason -> enum osp_drop_ignore bits */
};

/* An address of a pod of this node (key of osp_local_pods): IPv4 in the first 4 bytes. */
struct osp_pod_address {
	__u8 addr[16];
	__u8 family; /* 4 or 6 */
	__u8 pad[3];
};

/* A fragmented datagram (key of osp_fragments): its addresses, identification and protocol. */
struct osp_fragment_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 id; /* IPv4: the 16-bit identification; IPv6: the fragment header's 32 bits */
	__u8 family;
	__u8 protocol;
	__u16 pad;
};

/* What a datagram's first fragment carried for the later ones, which have no L4 header. */
struct osp_fragment_ports {
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 icmp_type;
	__u8 icmp_code;
	__u16 echo_id; /* an ICMP echo's identifier (osp_conn_key) */
};

/* Priority and handle of Osprey's tc filters: fixed, so a restarted agent replaces its own
 * filters in place instead of stacking a second program on the hook. */
#define OSP_TC_PRIORITY 0x4f53 /* "OS" */
#define OSP_TC_HANDLE 0x5052   /* "PR" */

_Static_assert(sizeof(struct osp_counter) == 16, "osp_counter layout");
_Static_assert(sizeof(struct osp_tcp_flag_counts) == 8 * OSP_TCP_FLAG_MAX,
	       "osp_tcp_flag_counts layout");
_Static_assert(sizeof(struct osp_tuple) == 40, "osp_tuple layout");
_Static_assert(sizeof(struct osp_conn_key) == 48, "osp_conn_key layout");
_Static_assert(sizeof(struct osp_conn) == 48, "osp_conn layout");
_Static_assert(sizeof(struct osp_ct_way) == 96, "osp_ct_way layout");
_Static_assert(sizeof(struct osp_ct_set) == 64 + 96 * OSP_CT_WAYS, "osp_ct_set layout");
_Static_assert(sizeof(struct osp_flush_args) == 16, "osp_flush_args layout");
_Static_assert(sizeof(struct osp_nat) == 64, "osp_nat layout");
_Static_assert(sizeof(struct osp_event) == 416, "osp_event layout");
_Static_assert(__builtin_offsetof(struct osp_event, payload) == OSP_EVENT_HEADER_SIZE,
	       "osp_event header size");
_Static_assert(__builtin_offsetof(struct osp_event, nat) == OSP_EVENT_BASE_SIZE,
	       "osp_event base size");
_Static_assert(__builtin_offsetof(struct osp_event, location) ==
		   __builtin_offsetof(struct osp_event, smac),
	       "a drop's location in place of the Ethernet addresses");
_Static_assert(sizeof(struct osp_config) == 48 + OSP_DROP_REASON_SLOTS, "osp_config layout");
_Static_assert(sizeof(struct osp_drop_key) == 8, "osp_drop_key layout");
_Static_assert(sizeof(struct osp_fragment_key) == 40, "osp_fragment_key layout");
_Static_assert(sizeof(struct osp_pod_address) == 20, "osp_pod_address layout");
_Static_assert(sizeof(struct osp_fragment_ports) == 8, "osp_fragment_ports layout");

/* The datapath's clock as user space reads it: bpf_ktime_get_ns() is CLOCK_MONOTONIC. */
#ifndef __bpf__
#include <time.h>
static inline __u64 osp_monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (__u64)now.tv_sec * 1000000000ULL + (__u64)now.tv_nsec;
}
#endif

#endif
