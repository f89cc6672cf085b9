#!/bin/sh
# Builds, once per machine, the Debian unstable root that CPython 3.14 and 3.15
# (with their debug builds, and a 3.13 on the same newer C library) run from in
# the tests (with libpython3.14/3.15 and their headers, for the embedding
# program tests/integration/test_python_embedded.py builds): Debian ships them
# only in unstable, built against a newer C library than Debian 12's, so they
# run the way fleets run them, in their own root. A complete root is reused as it is
# (the stamp lists its packages); a missing or partial one is built afresh.
# Usage: scripts/python-root.sh [--check] [DIR]
#   DIR defaults to $DYNOPROF_PYTHON_ROOT or /var/cache/dynoprof-test/sid.
#   Prints DIR on success. Needs root and network access to the Debian archive
#   ($DYNOPROF_DEBIAN_MIRROR, default http://deb.debian.org/debian).
#   --check: never builds; prints DIR and exits 0 when it is complete, exits 1
#   otherwise (tests/integration/pyutil.py asks so at collection).
set -eu
check=
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi
dir="${1:-${DYNOPROF_PYTHON_ROOT:-/var/cache/dynoprof-test/sid}}"
pkgs="python3.13 python3.14 python3.15 python3.14-dbg python3.15-dbg libpython3.14 libpython3.15 libpython3.14-dev libpython3.15-dev"
mirror="${DYNOPROF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
stamp=".dynoprof-python-root"
if [ -f "$dir/$stamp" ] && [ "$(cat "$dir/$stamp")" = "$pkgs" ]; then
  echo "$dir"
  exit 0
fi
if [ -n "$check" ]; then
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "python-root.sh: building $dir needs root (debootstrap)" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  echo "python-root.sh: debootstrap is missing: run 'scripts/deps.sh test'" >&2
  exit 1
fi
mkdir -p "$(dirname "$dir")"
partial="$dir.partial"
log="$dir.log"
rm -rf "$partial"
echo "python-root.sh: building $dir (Debian unstable with $pkgs; a few minutes)" >&2
if ! debootstrap --variant=minbase --include="$(echo $pkgs | tr ' ' ,)" \
     sid "$partial" "$mirror" >"$log" 2>&1; then
  echo "python-root.sh: debootstrap failed; the end of $log:" >&2
  tail -n 15 "$log" >&2
  exit 1
fi
echo "$pkgs" > "$partial/$stamp"
rm -rf "$dir"
mv "$partial" "$dir"
echo "$dir"
