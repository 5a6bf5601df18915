/* The pod programs' own cost per run with hot caches: loads the datapath's pod object (as the
 * agent would, with the connection table sizes compiled into it), and runs each pod
 * program many times on one packet in the kernel (BPF_PROG_TEST_RUN), which reports the mean
 * nanoseconds a run. One CPU, one connection: its lines, the ring's and the packet stay in the
 * caches, so this is the instructions' and helper calls' cost, the part a code change moves.
 * What a run costs under real traffic (caches, two CPUs sharing connections) is
 * scripts/bench-programs.sh's figure; the difference between the two is the memory's share.
 * Usage: program-cost POD_OBJECT [RUNS]   (as root; POD_OBJECT: the build's pod.bpf.o) */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osprey_abi.h"

/* A TCP segment from 10.244.1.4:40000 to 10.244.1.3:80 with the SYN, ACK and FIN flags given
 * and 60 bytes of payload; returns its length. */
static int segment(unsigned char *packet, int syn, int ack, int fin)
{
	memset(packet, 0, 128);
	struct ethhdr *eth = (struct ethhdr *)packet;
	eth->h_proto = htons(ETH_P_IP);
	struct iphdr *ip = (struct iphdr *)(packet + sizeof(*eth));
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(sizeof(*ip) + sizeof(struct tcphdr) + 60);
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->saddr = inet_addr("10.244.1.4");
	ip->daddr = inet_addr("10.244.1.3");
	struct tcphdr *tcp = (struct tcphdr *)(ip + 1);
	tcp->source = htons(40000);
	tcp->dest = htons(80);
	tcp->doff = 5;
	tcp->syn = syn;
	tcp->ack = ack;
	tcp->fin = fin;
	return sizeof(*eth) + sizeof(*ip) + sizeof(*tcp) + 60;
}

/* Mean nanoseconds a run of `program` on the packet took over `runs` runs, or -1. */
static long cost(int program, unsigned char *packet, int size, int runs)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = size,
		    .repeat = runs);
	if (bpf_prog_test_run_opts(program, &opts) || opts.retval != TC_ACT_UNSPEC)
		return -1;
	return opts.duration;
}

/* Events the programs could not reserve in the ring (map osp_lost, summed over CPUs). */
static unsigned long long lost(struct bpf_object *object)
{
	int fd = bpf_object__find_map_fd_by_name(object, "osp_lost");
	int cpus = libbpf_num_possible_cpus();
	if (fd < 0 || cpus <= 0)
		return ~0ULL;
	unsigned long long values[cpus], sum = 0;
	unsigned int zero = 0;
	if (bpf_map_lookup_elem(fd, &zero, values))
		return ~0ULL;
	for (int i = 0; i < cpus; i++)
		sum += values[i];
	return sum;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: program-cost POD_OBJECT [RUNS]\n");
		return 2;
	}
	int runs = argc == 3 ? atoi(argv[2]) : 10000;
	/* Each run of a FIN makes an event (a record of 104 bytes), and each program's first SYN
	 * one of at most 168: 3 rounds of both programs must fit the ring, which nothing drains. */
	long most = (OSP_EVENTS_RING_BYTES - 2 * 168) / (6 * 104);
	if (runs <= 0 || runs > most) {
		fprintf(stderr,
			"program-cost: RUNS must be 1 to %ld (the events must fit the ring)\n",
			most);
		return 2;
	}
	libbpf_set_print(NULL);
	struct bpf_object *object = bpf_object__open(argv[1]);
	if (!object) {
		fprintf(stderr, "program-cost: cannot open %s as an eBPF object\n", argv[1]);
		return 1;
	}
	/* The table's masks from the sizes compiled into the object (the agent's defaults), as the
	 * agent derives them from the sizes it sets. */
	struct bpf_map *old_sets = bpf_object__find_map_by_name(object, "osp_conntrack");
	struct bpf_map *young_sets = bpf_object__find_map_by_name(object, "osp_ct_young");
	struct osp_config *config = 0;
	struct bpf_map *map;
	bpf_object__for_each_map(map, object)
	{
		if (!strstr(bpf_map__name(map), ".rodata.config"))
			continue;
		size_t size = 0;
		config = (struct osp_config *)bpf_map__initial_value(map, &size);
		if (size < sizeof(*config))
			config = 0;
	}
	if (!config || !old_sets || !young_sets) {
		fprintf(stderr,
			"program-cost: %s has no osp_config, osp_conntrack or osp_ct_young: "
			"not the datapath's pod object\n",
			argv[1]);
		return 1;
	}
	config->ct_set_mask = bpf_map__max_entries(old_sets) - 1;
	config->ct_young_mask = bpf_map__max_entries(young_sets) - 1;
	config->tick_ns = 4000000; /* a jiffy's length only scales the report clock */
	config->report_interval_ns = 10000000000ULL;
	if (bpf_object__load(object)) {
		fprintf(stderr, "program-cost: the kernel refused %s (run as root)\n", argv[1]);
		return 1;
	}
	static const char *const programs[] = {"osp_tc_pod_ingress", "osp_tc_pod_egress"};
	printf("| the pod program on one packet, %d runs, hot caches | ns a run (3 rounds) "
	       "|\n|---|---|\n",
	       runs);
	unsigned char packet[128];
	for (int p = 0; p < 2; p++) {
		struct bpf_program *program = bpf_object__find_program_by_name(object, programs[p]);
		int fd = program ? bpf_program__fd(program) : -1;
		if (fd < 0) {
			fprintf(stderr, "program-cost: %s is not in %s\n", programs[p], argv[1]);
			return 1;
		}
		/* The connection's SYN enters it into the table once. */
		int size = segment(packet, 1, 0, 0);
		if (cost(fd, packet, size, 1) < 0) {
			fprintf(stderr, "program-cost: the kernel could not run %s\n", programs[p]);
			return 1;
		}
		static const struct {
			const char *what;
			int fin;
		} cases[] = {{"an ACK of a tracked connection (no event)", 0},
			     {"a FIN of a tracked connection (an event each run)", 1}};
		for (int c = 0; c < 2; c++) {
			size = segment(packet, 0, 1, cases[c].fin);
			long rounds[3];
			for (int r = 0; r < 3; r++)
				rounds[r] = cost(fd, packet, size, runs);
			printf("| %s, %s | %ld / %ld / %ld |\n", programs[p], cases[c].what,
			       rounds[0], rounds[1], rounds[2]);
		}
	}
	unsigned long long missed = lost(object);
	if (missed) {
		fprintf(stderr, "program-cost: %llu events found the ring full: fewer RUNS\n",
			missed);
		return 1;
	}
	bpf_object__close(object);
	return 0;
}
