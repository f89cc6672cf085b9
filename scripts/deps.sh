#!/bin/sh
# Installs the Debian packages dynoprof needs to build and test, and nothing when
# they are all present already (idempotent; apt-get runs only for what is missing).
# Usage: scripts/deps.sh [build|test|all]   (default: build)
set -eu
build_pkgs="clang llvm make gcc libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev pkg-config libstdc++-12-dev libmicrohttpd-dev libsqlite3-dev liblzma-dev"
test_pkgs="libcmocka-dev golang-go python3 python3-pytest procps util-linux curl chromium chromium-driver python3-selenium python3-django python3-flask gunicorn uwsgi uwsgi-plugin-python3 wrk prometheus g++ binutils sqlite3 linux-perf xz-utils systemd man-db libcap2-bin passwd libclang-rt-14-dev debootstrap python3-pytest-xdist"
case "${1:-build}" in
  build) want="$build_pkgs" ;;
  test|all) want="$build_pkgs $test_pkgs" ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing Debian packages:$missing — run 'sudo $0 ${1:-build}' (needs root)" >&2
  exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
