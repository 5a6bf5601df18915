#include "CBPFGlue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
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

/* tcx (Linux 6.6): its attach types, the flag that places a program, and the query's layout,
 * spelled out here because the build's uapi headers and libbpf predate them. */
#define OSP_BPF_TCX_INGRESS 46
#define OSP_BPF_TCX_EGRESS 47
#define OSP_BPF_F_BEFORE (1U << 3)

int osp_tcx_attach(int ifindex, int ingress, int prog_fd)
{
	/* BPF_F_BEFORE with no relative program: first on the hook, ahead of a CNI's programs
	 * that may redirect the packet. Osprey's programs always let the next one run. */
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = OSP_BPF_F_BEFORE);
	return bpf_link_create(prog_fd, ifindex, ingress ? OSP_BPF_TCX_INGRESS : OSP_BPF_TCX_EGRESS,
			       &opts);
}

struct osp_tcx_query_attr {
	uint32_t target_ifindex;
	uint32_t attach_type;
	uint32_t query_flags;
	uint32_t attach_flags;
	uint64_t prog_ids;
	uint32_t count;
	uint32_t pad;
	uint64_t prog_attach_flags;
	uint64_t link_ids;
	uint64_t link_attach_flags;
	uint64_t revision;
};

int osp_tcx_query(int ifindex, int ingress, uint32_t *prog_ids, uint32_t *count)
{
	struct osp_tcx_query_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.target_ifindex = (uint32_t)ifindex;
	attr.attach_type = ingress ? OSP_BPF_TCX_INGRESS : OSP_BPF_TCX_EGRESS;
	attr.prog_ids = (uint64_t)(uintptr_t)prog_ids;
	attr.count = *count;
	if (syscall(__NR_bpf, BPF_PROG_QUERY, &attr, sizeof(attr)) < 0)
		return -errno;
	*count = attr.count;
	return 0;
}

int osp_prog_name(uint32_t prog_id, char *name, size_t len)
{
	int fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return -errno;
	struct bpf_prog_info info;
	memset(&info, 0, sizeof(info));
	uint32_t size = sizeof(info);
	int err = bpf_obj_get_info_by_fd(fd, &info, &size);
	close(fd);
	if (err)
		return -errno;
	snprintf(name, len, "%s", info.name);
	return 0;
}

/* The kernel's information about a loaded program: 0, or -errno. */
static int osp_prog_info(int prog_fd, struct bpf_prog_info *info)
{
	memset(info, 0, sizeof(*info));
	uint32_t size = sizeof(*info);
	return bpf_obj_get_info_by_fd(prog_fd, info, &size) ? -errno : 0;
}

int osp_prog_run_stats(int prog_fd, uint64_t *run_time_ns, uint64_t *run_cnt)
{
	struct bpf_prog_info info;
	int status = osp_prog_info(prog_fd, &info);
	if (status)
		return status;
	*run_time_ns = info.run_time_ns;
	*run_cnt = info.run_cnt;
	return 0;
}

int osp_enable_run_stats(void)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.enable_stats.type = BPF_STATS_RUN_TIME;
	int fd = syscall(__NR_bpf, BPF_ENABLE_STATS, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

int osp_prog_verified_insns(int prog_fd, uint32_t *count)
{
	struct bpf_prog_info info;
	int status = osp_prog_info(prog_fd, &info);
	if (status)
		return status;
	*count = info.verified_insns;
	return 0;
}

int osp_prog_test_run(int prog_fd, const void *packet, uint32_t size, int *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = size, .repeat = 1);
	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	*retval = (int)opts.retval;
	return 0;
}

int osp_prog_run_context(int prog_fd, void *context, uint32_t size, int *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = context, .ctx_size_in = size);
	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	*retval = (int)opts.retval;
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

int osp_btf_tracepoint_arguments(const char *tracepoint)
{
	struct btf *btf = btf__load_vmlinux_btf();
	if (!btf)
		return -errno;
	char name[128];
	snprintf(name, sizeof(name), "btf_trace_%s", tracepoint);
	int result = -ENOENT;
	int id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id >= 0) {
		/* typedef -> pointer -> function prototype, whose first parameter is the context */
		const struct btf_type *type = btf__type_by_id(btf, id);
		type = type ? btf__type_by_id(btf, type->type) : NULL;
		type = type && btf_is_ptr(type) ? btf__type_by_id(btf, type->type) : NULL;
		if (type && btf_is_func_proto(type) && btf_vlen(type) > 0)
			result = btf_vlen(type) - 1;
	}
	btf__free(btf);
	return result;
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
