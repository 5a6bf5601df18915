/* The programs' load-time settings (struct osp_config in osprey_abi.h). User space writes the
 * section before loading; afterwards it is read-only, and the verifier prunes what a switch
 * turns off. */
#ifndef OSPREY_CONFIG_H
#define OSPREY_CONFIG_H

#include "osprey_abi.h"
#include <bpf/bpf_helpers.h>

volatile const struct osp_config osp_config SEC(".rodata.config") = {
    .report_interval_ns = 10ULL * 1000 * 1000 * 1000,
};

/* The clock of the periodic reports: jiffies (a memory read) when user space told the tick's
 * length, else the coarse clock (three kernel calls). A tick is plenty for an interval of
 * seconds. Its epoch is not CLOCK_MONOTONIC's: compare it only with itself. */
static __always_inline __u64 osp_period_now(void)
{
	if (osp_config.tick_ns)
		return bpf_jiffies64() * osp_config.tick_ns;
	return bpf_ktime_get_coarse_ns();
}

/* The periodic reports' clock in units of 2^20 ns (about a millisecond), in 32 bits: a
 * connection's report times take 4 bytes each, and the differences of two of them are right
 * for 52 days, across a wrap too. */
#define OSP_REPORT_CLOCK_SHIFT 20

static __always_inline __u32 osp_report_clock(void)
{
	return (__u32)(osp_period_now() >> OSP_REPORT_CLOCK_SHIFT);
}

/* Whether the report interval has passed from `last` to `now` (both osp_report_clock): the
 * interval rounded up to whole units, so that no report comes early. */
static __always_inline int osp_report_due_at(__u32 last, __u32 now)
{
	__u32 interval =
	    (__u32)((osp_config.report_interval_ns + (1ULL << OSP_REPORT_CLOCK_SHIFT) - 1) >>
		    OSP_REPORT_CLOCK_SHIFT);
	return now - last >= interval;
}

/* Whether the report interval has passed since `last`. */
static __always_inline int osp_report_due(__u32 last)
{
	return osp_report_due_at(last, osp_report_clock());
}

#endif
