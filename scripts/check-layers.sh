#!/bin/sh
# check-layers.sh - fails when an include in user/ goes up the architecture.
#
# Data flows one way: bpf/ -> capture -> symbolize -> aggregate -> formats, with
# the agent and diff on top and the CLI above everything. Each folder of user/
# is a layer; a file may include headers of its own layer and of layers below
# it, never above. The table below is the architecture: rank (lower is more
# basic), folder, and the header whose opening comment says what the layer is
# for (it must contain "Layer <folder>:").
#
# The BPF ABI headers in bpf/ (included by bare name, e.g. "sample.h") and the
# generated skeletons (*.skel.h) count as the layer "bpf": the kernel/user
# contract, below everything that talks to the BPF programs and above the pure
# model (a profile, a symbol table and the statistics know nothing of BPF).
#
# Usage: scripts/check-layers.sh [ROOT]   (exit 0 clean, 1 on a violation)
set -eu
root=${1:-.}
cd "$root"

layers='
0 util      util/errmsg.h
0 stats     stats/ratio_ci.h
1 profile   profile/profile.h
2 symbolize symbolize/symbolizer.h
3 bpf       -
4 python    python/py_resolver.h
4 unwind    unwind/cfi_table.h
5 tags      tags/tag_registry.h
6 capture   capture/sampler.h
7 aggregate aggregate/aggregate.h
8 formats   formats/format.h
9 diff      diff/diff.h
10 pipeline pipeline/pipeline.h
11 agent    agent/agent.h
12 cli      cli/cli.h
'

rank_of() {
	echo "$layers" | awk -v l="$1" '$2 == l { print $1; found = 1 } END { if (!found) print "" }'
}

status=0
violations=$(mktemp)
trap 'rm -f "$violations"' EXIT
# Every folder of user/ must be a known layer.
for dir in user/*/; do
	name=$(basename "$dir")
	if [ -z "$(rank_of "$name")" ]; then
		echo "check-layers: user/$name/ is not a layer in scripts/check-layers.sh (add it to the table)"
		status=1
	fi
done

# Every layer's main header says what the layer is for.
echo "$layers" | while read -r rank name header; do
	[ -n "$name" ] && [ "$header" != "-" ] || continue
	[ -d "user/$name" ] || continue
	if [ ! -f "user/$header" ]; then
		echo "check-layers: user/$header (the main header of layer $name) is missing"
		exit 1
	fi
	if ! head -n 30 "user/$header" | grep -q "Layer $name:"; then
		echo "check-layers: user/$header: its opening comment must say 'Layer $name: <what the layer is for>'"
		exit 1
	fi
done || status=1

# Every include goes down (or sideways within a layer).
for file in $(find user -name '*.[ch]' | sort); do
	from=$(echo "$file" | cut -d/ -f2)
	from_rank=$(rank_of "$from")
	[ -n "$from_rank" ] || continue
	grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" | while IFS= read -r line; do
		inc=$(echo "$line" | sed 's/.*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/')
		case "$inc" in
		*/*) to=$(echo "$inc" | cut -d/ -f1) ;;
		*.skel.h) to=bpf ;;
		*) if [ -f "bpf/$inc" ]; then to=bpf; else to=$from; fi ;;
		esac
		to_rank=$(rank_of "$to")
		if [ -z "$to_rank" ]; then
			echo "check-layers: $file:${line%%:*}: includes \"$inc\" from no known layer"
			continue
		fi
		if [ "$to_rank" -gt "$from_rank" ]; then
			echo "check-layers: $file:${line%%:*}: layer $from ($from_rank) includes \"$inc\" from layer $to ($to_rank), which is above it"
		fi
	done
done > "$violations"
if [ -s "$violations" ]; then
	cat "$violations"
	status=1
fi

[ "$status" -eq 0 ] && echo "check-layers: every include in user/ goes down the layers"
exit "$status"
