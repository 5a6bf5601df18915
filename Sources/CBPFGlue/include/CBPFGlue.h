/*
 * The libbpf calls Swift cannot make directly: option structs built with LIBBPF_OPTS (Swift
 * does not zero their tail padding, which libbpf rejects), and BTF walks that are simpler in C.
 * Every function returns 0 (or a count) on success and -errno on failure.
 */
#ifndef OSPREY_CBPFGLUE_H
#define OSPREY_CBPFGLUE_H

#include <stddef.h>
#include <stdint.h>

/* Attaches prog_fd to the clsact ingress (ingress=1) or egress hook of ifindex in the calling
 * thread's network namespace, at Osprey's fixed handle and priority, replacing whatever
 * program was there (a stale Osprey filter from a killed run). Creates clsact if needed. */
int osp_tc_attach(int ifindex, int ingress, int prog_fd);

/* Removes Osprey's filter from the hook. -ENOENT when there is none. */
int osp_tc_detach(int ifindex, int ingress);

/* The id of the program in Osprey's filter slot on the hook, 0 if the slot is empty. */
int osp_tc_query(int ifindex, int ingress, uint32_t *prog_id);

/* Attaches prog_fd to the tcx ingress (ingress=1) or egress hook of ifindex, first in line.
 * Returns the link's fd: the program stays attached while the fd is open and no longer (a
 * killed agent leaves nothing behind). -EINVAL on kernels before 6.6. */
int osp_tcx_attach(int ifindex, int ingress, int prog_fd);

/* The ids of the programs on a tcx hook, in order; *count is the room in prog_ids on entry
 * and the number of programs on return. */
int osp_tcx_query(int ifindex, int ingress, uint32_t *prog_ids, uint32_t *count);

/* The name of a loaded program (at most 15 characters, as the kernel keeps it). */
int osp_prog_name(uint32_t prog_id, char *name, size_t len);

/* Nanoseconds the kernel spent running a program and how often it ran, counted while the
 * kernel.bpf_stats_enabled sysctl is 1. 0, or -errno. */
int osp_prog_run_stats(int prog_fd, uint64_t *run_time_ns, uint64_t *run_cnt);

/* Turns the kernel's run statistics on until the returned fd is closed (BPF_ENABLE_STATS, as
 * the sysctl does but without changing it); -errno on failure. */
int osp_enable_run_stats(void);

/* How many instructions the verifier went through to accept the program (its work at load). */
int osp_prog_verified_insns(int prog_fd, uint32_t *count);

/* Runs a tc program once on `packet`, an Ethernet frame (BPF_PROG_TEST_RUN: the kernel builds an
 * sk_buff on the loopback device), and puts its return code in *retval. 0, or -errno. */
int osp_prog_test_run(int prog_fd, const void *packet, uint32_t size, int *retval);

/* Runs a syscall program once on `context` (`size` bytes, which it may change in place) and puts
 * its return code in *retval. 0, or -errno. */
int osp_prog_run_context(int prog_fd, void *context, uint32_t size, int *retval);

/* Writes "value name\n" for every enumerator of the kernel enum `enum_name` (from
 * /sys/kernel/btf/vmlinux) into buf. Returns the number of bytes written. */
int osp_btf_enum_dump(const char *enum_name, char *buf, size_t len);

/* The number of arguments the kernel passes to BTF programs on `tracepoint` (from its
 * btf_trace_<tracepoint> type in /sys/kernel/btf/vmlinux), or a negative errno. */
int osp_btf_tracepoint_arguments(const char *tracepoint);

/* Routes libbpf's messages: 0 = silent, 1 = warnings to stderr, 2 = debug too. */
void osp_libbpf_set_verbosity(int level);

/* libbpf's number of possible CPUs (the length of a per-CPU map value array). */
int osp_possible_cpus(void);

/* A BPF ring buffer map read over its mapped pages (ring.c). One thread reads it. */
struct osp_ring;

/* Maps the ring of map_fd and an epoll set that its wakeups signal. NULL with errno set. */
struct osp_ring *osp_ring_open(int map_fd);

void osp_ring_close(struct osp_ring *ring);

/* Waits until a producer wakes the ring, osp_ring_interrupt is called (every wait after it
 * returns at once) or timeout_ms pass: 1, 0, or -errno (EINTR too). */
int osp_ring_wait(struct osp_ring *ring, int timeout_ms);

/* Ends the current and every later wait; any thread may call it. */
void osp_ring_interrupt(struct osp_ring *ring);

/* Bytes of records (with their 8-byte headers, 8-aligned) drained since the ring was created;
 * any thread may call it. */
uint64_t osp_ring_consumed(const struct osp_ring *ring);

/* Copies up to `max` committed records, in order, into `slots` (slot_size bytes apart; a longer
 * record is cut to slot_size; a slot's bytes past a shorter record are zeroed up to
 * zeroed_size, those after that keep what an earlier record left) and then releases their space
 * to the producers in one store. Records shorter than min_size are skipped and counted in
 * *malformed. Returns the number copied. *stopped_at_busy is 1 when it stopped at a record
 * reserved but not yet submitted: records after it wait for the next drain. */
int osp_ring_drain(struct osp_ring *ring, void *slots, size_t slot_size, size_t min_size,
		   size_t zeroed_size, int max, uint64_t *malformed, int *stopped_at_busy);

#endif
