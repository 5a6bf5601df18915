#!/usr/bin/env bash
# Prepares this machine for Osprey: Debian packages, bpffs, and a check that the
# kernel has what Osprey needs. Idempotent: a second run installs nothing and takes a second.
# Usage: scripts/bootstrap.sh   (as root; `make demo` and `make test` call it)
set -euo pipefail

say() { printf 'bootstrap: %s\n' "$*"; }
fail() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "Osprey needs root (eBPF, network namespaces, nftables); run this with sudo."
[ "$(uname -s)" = Linux ] || fail "Osprey runs on Linux only; this is $(uname -s)."

# Debian packages: build (libbpf, libelf, zlib), lab (iproute2, nftables, nginx, dnsmasq, curl,
# util-linux for setsid/setpriv, procps for sysctl, openssl for the lab's TLS certificates, socat for its port forward;
# ethtool for the drop tests' GRO settings), tests and benchmarks (iperf3, wrk, prometheus
# for promtool; Chromium and chromedriver for the web UI's browser tests), formatting and lint (clang-format,
# python3).
packages=(
  ca-certificates make pkg-config libbpf-dev libelf-dev zlib1g-dev
  iproute2 nftables nginx-light dnsmasq-base curl util-linux procps libc-bin openssl socat ethtool
  iperf3 wrk prometheus clang-format bc gcc python3 chromium chromium-driver
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start system services (nginx, prometheus) on the host: the lab runs its own.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
  trap '[ $created_policy -eq 1 ] && rm -f "$policy"' EXIT
  apt-get update -qq || fail "apt-get update failed; check the network route to Debian's package mirror."
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /tmp/osprey-bootstrap-apt.log 2>&1 \
    || fail "apt-get install ${missing[*]} failed; see /tmp/osprey-bootstrap-apt.log."
fi

# kubectl: the tests and the demo talk to the lab's Kubernetes API with the real one. It is not
# in Debian's registry; these machines have it (/usr/bin/kubectl, the Google Cloud SDK's, which
# picks a release from the server's /version).
command -v kubectl > /dev/null \
  || fail "kubectl is missing: install it (https://kubernetes.io/docs/tasks/tools/) so that /usr/bin/kubectl exists; the tests and the demo use the real kubectl against the lab's Kubernetes API."

# bpffs, for the tests that pin and unmount it. (The tracepoint programs attach through BTF: no
# tracefs needed.)
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || fail "cannot mount bpffs at /sys/fs/bpf."

# Kernel features: say exactly which is missing.
problems=()
[ -r /sys/kernel/btf/vmlinux ] || problems+=("BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF)")
[ -e /proc/sys/kernel/unprivileged_bpf_disabled ] || problems+=("the bpf() system call (CONFIG_BPF_SYSCALL)")
[ -e /proc/self/ns/net ] || problems+=("network namespaces (CONFIG_NET_NS)")
# The tracepoints' BTF types, named in the kernel's BTF as btf_trace_<tracepoint>.
for tracepoint in kfree_skb tcp_retransmit_skb; do
  grep -qa "btf_trace_$tracepoint" /sys/kernel/btf/vmlinux 2> /dev/null \
    || problems+=("the $tracepoint tracepoint as a BTF tracepoint (CONFIG_TRACEPOINTS, CONFIG_DEBUG_INFO_BTF)")
done
nft list tables > /dev/null 2>&1 || problems+=("nftables (CONFIG_NF_TABLES)")
# Link types are probed in a throwaway namespace: the host's own network is never touched.
probe="ospboot$$"
if ip netns add "$probe" 2> /dev/null; then
  if ip -n "$probe" link add name ospv0 type veth peer name ospv1 2> /dev/null; then
    tc -n "$probe" qdisc add dev ospv0 clsact 2> /dev/null \
      || problems+=("the clsact qdisc for tc eBPF programs (CONFIG_NET_SCH_INGRESS)")
  else
    problems+=("veth links (CONFIG_VETH)")
  fi
  ip -n "$probe" link add name ospbr0 type bridge 2> /dev/null || problems+=("Linux bridges (CONFIG_BRIDGE)")
  ip netns del "$probe"
else
  problems+=("named network namespaces (ip netns add failed)")
fi
if [ ${#problems[@]} -gt 0 ]; then
  fail "this kernel ($(uname -r)) lacks: $(IFS=';'; echo "${problems[*]}")."
fi

command -v swift > /dev/null || fail "the Swift toolchain is not on PATH (expected /opt/swift/usr/bin)."
say "ready (kernel $(uname -r), $(swift --version 2>/dev/null | head -1))"
