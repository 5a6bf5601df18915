/* Prints where each source line of a loaded eBPF program starts in its JIT-compiled code, one
 * "offset<TAB>file:line" per line, from the kernel's line info (bpftool can only do this when
 * built with libbfd, Debian's is not). Used by scripts/profile-programs.sh to attribute perf
 * samples, which name a program and an offset into its code, to source lines.
 * Usage: jit-lines PROGRAM_ID */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: jit-lines PROGRAM_ID\n");
		return 2;
	}
	int fd = bpf_prog_get_fd_by_id(atoi(argv[1]));
	if (fd < 0) {
		fprintf(stderr, "jit-lines: no eBPF program with id %s (run as root)\n", argv[1]);
		return 1;
	}
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || !info.nr_line_info ||
	    info.nr_jited_line_info != info.nr_line_info) {
		fprintf(stderr, "jit-lines: program %s has no JIT line info\n", argv[1]);
		return 1;
	}
	__u32 lines = info.nr_line_info, record = info.line_info_rec_size;
	__u64 *jited = calloc(lines, sizeof(*jited));
	char *line_info = calloc(lines, record);
	__u64 start = 0;
	__u32 btf_id = info.btf_id;
	memset(&info, 0, sizeof(info));
	info.nr_line_info = lines;
	info.line_info_rec_size = record;
	info.line_info = (__u64)(unsigned long)line_info;
	info.nr_jited_line_info = lines;
	info.jited_line_info_rec_size = sizeof(*jited);
	info.jited_line_info = (__u64)(unsigned long)jited;
	info.nr_jited_ksyms = 1;
	info.jited_ksyms = (__u64)(unsigned long)&start;
	len = sizeof(info);
	struct btf *btf = btf__load_from_kernel_by_id(btf_id);
	if (!jited || !line_info || bpf_obj_get_info_by_fd(fd, &info, &len) || !btf) {
		fprintf(stderr, "jit-lines: cannot read program %s's line info\n", argv[1]);
		return 1;
	}
	for (__u32 i = 0; i < lines; i++) {
		const struct bpf_line_info *line = (const void *)(line_info + i * record);
		const char *file = btf__name_by_offset(btf, line->file_name_off);
		const char *base = file ? strrchr(file, '/') : NULL;
		printf("%llu\t%s:%u\n", (unsigned long long)(jited[i] - start),
		       base ? base + 1 : (file ? file : "?"),
		       BPF_LINE_INFO_LINE_NUM(line->line_col));
	}
	return 0;
}
