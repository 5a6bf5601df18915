#include "CBPFGlue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "osprey_abi.h"

int osp_tc_attach(int ifindex, int ingress, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	int err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = OSP_TC_HANDLE, .priority = OSP_TC_PRIORITY,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	return bpf_tc_attach(&hook, &opts);
}

int osp_tc_detach(int ifindex, int ingress)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = OSP_TC_HANDLE, .priority = OSP_TC_PRIORITY);
	return bpf_tc_detach(&hook, &opts);
}

int osp_tc_query(int ifindex, int ingress, uint32_t *prog_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = OSP_TC_HANDLE, .priority = OSP_TC_PRIORITY);
	int err = bpf_tc_query(&hook, &opts);
	if (err == -ENOENT) {
		*prog_id = 0;
		return 0;
	}
	if (err)
		return err;
	*prog_id = opts.prog_id;
	return 0;
}

int osp_btf_enum_dump(const char *enum_name, char *buf, size_t len)
{
	struct btf *btf = btf__load_vmlinux_btf();
	if (!btf)
		return -errno;
	int id = btf__find_by_name_kind(btf, enum_name, BTF_KIND_ENUM);
	if (id < 0) {
		btf__free(btf);
		return -ENOENT;
	}
	const struct btf_type *type = btf__type_by_id(btf, id);
	const struct btf_enum *entries = btf_enum(type);
	size_t used = 0;
	for (int i = 0; i < btf_vlen(type); i++) {
		const char *name = btf__name_by_offset(btf, entries[i].name_off);
		int n =
		    snprintf(buf + used, len - used, "%d %s\n", entries[i].val, name ? name : "");
		if (n < 0 || (size_t)n >= len - used) {
			btf__free(btf);
			return -ENOSPC;
		}
		used += (size_t)n;
	}
	btf__free(btf);
	return (int)used;
}

static int verbosity = 1;

static int osp_libbpf_print(enum libbpf_print_level level, const char *format, va_list args)
{
	if ((level == LIBBPF_DEBUG && verbosity < 2) || (level == LIBBPF_INFO && verbosity < 2) ||
	    verbosity < 1)
		return 0;
	/* bpf_tc_hook_create on an interface that already has clsact: expected, and handled. */
	if (strstr(format, "Kernel error message") != NULL && verbosity < 2)
		return 0;
	fputs("libbpf: ", stderr);
	return vfprintf(stderr, format, args);
}

void osp_libbpf_set_verbosity(int level)
{
	verbosity = level;
	libbpf_set_print(osp_libbpf_print);
}

int osp_possible_cpus(void)
{
	return libbpf_num_possible_cpus();
}
