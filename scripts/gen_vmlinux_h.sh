#!/bin/sh
# Regenerates vmlinux/x86/vmlinux.h from the running kernel's BTF.
# Usage: scripts/gen_vmlinux_h.sh [BTF_FILE]   (default /sys/kernel/btf/vmlinux)
# The pre-generated header lets the BPF programs build without BTF at build time;
# CO-RE relocations make the resulting object run on other kernels.
set -eu
btf=${1:-/sys/kernel/btf/vmlinux}
out=$(dirname "$0")/../vmlinux/x86/vmlinux.h
[ -r "$btf" ] || { echo "gen_vmlinux_h: $btf not readable: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y)" >&2; exit 1; }
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
