#!/bin/sh
# coverage.sh OBJDIR SRC... - line coverage of each source file from gcov's data
# (OBJDIR/SRC with .c -> .gcno/.gcda, built with gcc --coverage; a file whose
# code never ran has no .gcda and counts 0), summed per folder (user/X) and in
# total. Prints the folders and the total; every file's line goes to
# OBJDIR/coverage-files.txt, most lines left uncovered first.
# Run from the repository root (the objects name their sources relative to it).
set -eu
objdir=$1
shift
files=$objdir/coverage-files.txt
for src in "$@"; do
	obj=$objdir/${src%.c}.o
	# -n: no .gcov files, the summary only. It lists headers' inline code too:
	# only the block of src itself counts.
	gcov -n -o "$obj" "$src" 2>/dev/null | awk -v src="$src" '
		/^File / { mine = ($0 == "File \047" src "\047") }
		mine && /^Lines executed:/ {
			split($0, a, /[:% ]+/)        # Lines executed:85.00% of 200
			total = a[length(a)] + 0
			printf "%s %d %d\n", src, int(a[3] * total / 100 + 0.5), total
			found = 1; mine = 0
		}
		mine && /^No executable lines/ { printf "%s 0 0\n", src; found = 1; mine = 0 }
		END { if (!found) printf "%s 0 -1\n", src }'
done > "$files.tmp"
if awk '$3 < 0 { print "coverage.sh: no gcov data for " $1 > "/dev/stderr"; bad = 1 }
	END { exit bad }' "$files.tmp"; then :; else exit 1; fi
sort -k1,1 "$files.tmp" | awk '{
	n = split($1, p, "/"); dir = p[1]; for (i = 2; i < n; i++) dir = dir "/" p[i]
	run[dir] += $2; all[dir] += $3; tr += $2; ta += $3
	if (!(dir in seen)) { seen[dir] = 1; order[++nd] = dir }
} END {
	printf "%-16s %13s %7s\n", "folder", "lines run", "cover"
	for (i = 1; i <= nd; i++) { d = order[i]
		printf "%-16s %6d/%-6d %6.1f%%\n", d, run[d], all[d], all[d] ? 100 * run[d] / all[d] : 100 }
	printf "%-16s %6d/%-6d %6.1f%%\n", "total", tr, ta, ta ? 100 * tr / ta : 100
}'
awk '{ printf "%-40s %6d/%-6d %6.1f%% %6d left\n", $1, $2, $3,
	$3 ? 100 * $2 / $3 : 100, $3 - $2 }' "$files.tmp" | sort -k4,4nr > "$files"
rm -f "$files.tmp"
echo "per file (most lines left first): $files"
