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

#endif
