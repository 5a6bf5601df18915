/* libbpf's user-space API (Debian libbpf-dev), as Swift sees it. */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
