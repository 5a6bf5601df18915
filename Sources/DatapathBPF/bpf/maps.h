/* Every map of Osprey's datapath. Keys and values are defined in osprey_abi.h. */
#ifndef OSPREY_MAPS_H
#define OSPREY_MAPS_H

#include "osprey_abi.h"
#include <bpf/bpf_helpers.h>

/* ifindex (node namespace) -> enum osp_if_role; written by the agent as links come and go. The
 * drop program reads it for direction (tc programs know their role from which one is attached). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} osp_ifaces SEC(".maps");

/* The addresses of this node's pods (osp_config.local_aggregation), kept by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct osp_pod_address);
	__type(value, __u8);
} osp_local_pods SEC(".maps");

/* network namespace inode -> enum osp_netns_role: the namespaces whose drops this node counts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} osp_netns SEC(".maps");

/* enum osp_direction -> TCP packets of pods by flag: one lookup per packet, whatever its flags. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OSP_DIR_MAX);
	__type(key, __u32);
	__type(value, struct osp_tcp_flag_counts);
} osp_tcp_flags SEC(".maps");

/* struct osp_drop_key -> packets and bytes the kernel dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2048);
	__type(key, struct osp_drop_key);
	__type(value, struct osp_counter);
} osp_drops SEC(".maps");

/* enum osp_error -> how often a program could not do its job. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OSP_ERR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} osp_errors SEC(".maps");

/* Connections by 5-tuple and observing interface -> reporting state: sets of OSP_CT_WAYS ways
 * (struct osp_ct_set; lookups, inserts and evictions in conntrack.h). The connections pushed
 * out of osp_ct_young live here. The agent sets the number of sets at load (--conntrack-max /
 * OSP_CT_WAYS, a power of two) and osp_config.ct_set_mask. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 524288 / OSP_CT_WAYS);
	__type(key, __u32);
	__type(value, struct osp_ct_set);
} osp_conntrack SEC(".maps");

/* The same for new connections: a few hundred KiB, so that the sets of the connections a node
 * is busy with stay in the CPUs' caches and TLBs (conntrack.h). The agent sets its sets at load
 * and osp_config.ct_young_mask. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct osp_ct_set);
} osp_ct_young SEC(".maps");

/* OSP_CT_SCRATCH_* -> where the table's loops keep their results (conntrack.h says why not on
 * the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct osp_ct_scratch);
} osp_ct_scratch SEC(".maps");

/* enum osp_ct_stat -> how many connections entered and left osp_conntrack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OSP_CT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} osp_ct_stats SEC(".maps");

/* Flow and drop events (struct osp_event) for user space. The reader polls; producers wake it
 * only when a lot is pending (see osp_submit). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, OSP_EVENTS_RING_BYTES);
} osp_events SEC(".maps");

/* 0 -> 1 while the reader sleeps between slow polls of an idle ring: the next event wakes it
 * (osp_submit) and clears this. Written by the reader only when it falls asleep or wakes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} osp_reader SEC(".maps");

/* Fragmented datagrams -> the ports (or ICMP type and code) their first fragment carried: a
 * later fragment has no L4 header and takes them from here (parse.h). Written by the pod
 * programs at a first fragment; least recently used entries make room. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct osp_fragment_key);
	__type(value, struct osp_fragment_ports);
} osp_fragments SEC(".maps");

/* 0 -> events that could not be reserved in osp_events (user space reports them as lost). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} osp_lost SEC(".maps");

static __always_inline void osp_count_error(__u32 error)
{
	__u64 *count = bpf_map_lookup_elem(&osp_errors, &error);
	if (count)
		*count += 1;
}

#endif
