// SPDX-License-Identifier: GPL-2.0
/* empty-hooks IFNAME...: attaches a tc program that does nothing (it returns TC_ACT_UNSPEC at
 * once) as tcx links on the ingress and egress of each interface of the current network
 * namespace, as the agent's programs hang on pod veths, and holds them until SIGTERM or SIGINT;
 * the links go with the process. scripts/bench-hooks.sh measures what the hooks alone cost.
 * Built by that script: cc -O1 -o empty-hooks scripts/hooks/empty-hooks.c -lbpf */
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The tcx attach types (Linux 6.6), for uapi headers older than them. */
enum { OSP_TCX_INGRESS = 46, OSP_TCX_EGRESS = 47 };

static volatile sig_atomic_t stop;

static void on_signal(int signal)
{
	(void)signal;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr,
			"usage: empty-hooks IFNAME... (as root, in the interfaces' namespace)\n");
		return 2;
	}
	struct bpf_insn program[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K,
	     .dst_reg = BPF_REG_0,
	     .imm = -1}, /* TC_ACT_UNSPEC */
	    {.code = BPF_JMP | BPF_EXIT},
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "osp_empty", "GPL", program, 2, NULL);
	if (fd < 0) {
		fprintf(stderr, "empty-hooks: the kernel refused the program: %s\n",
			strerror(errno));
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		unsigned index = if_nametoindex(argv[i]);
		if (index == 0) {
			fprintf(stderr, "empty-hooks: no interface %s in this namespace\n",
				argv[i]);
			return 1;
		}
		for (int type = OSP_TCX_INGRESS; type <= OSP_TCX_EGRESS; type++) {
			if (bpf_link_create(fd, (int)index, (enum bpf_attach_type)type, NULL) < 0) {
				fprintf(stderr,
					"empty-hooks: cannot attach to %s as a tcx link: %s\n",
					argv[i], strerror(errno));
				return 1;
			}
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop)
		pause();
	return 0;
}
