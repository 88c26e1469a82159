#!/usr/bin/env bash
# Times `make demo` on a fresh Debian 12 (bookworm) chroot, from nothing to the
# demo's first status line, for a commit of this repository. Root only; needs
# debootstrap and network access to deb.debian.org. Leaves nothing behind but
# its base chroot (reused by the next run) and a log.
#   scripts/fresh-demo-time.sh [COMMIT]      (default HEAD)
# The base holds what a new machine of our kind has before anything of ours:
# g++, cmake, git, python3, GoogleTest/Mock and Google Benchmark.
set -euo pipefail
commit=${1:-HEAD}
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=${FRESH_DEMO_DIR:-/tmp/jamnet-fresh-demo}
base=$work/base run=$work/run log=$work/$(git -C "$repo" rev-parse --short "$commit").log
[ "$(id -u)" -eq 0 ] || { echo "fresh-demo-time: needs root (chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "fresh-demo-time: apt-get install debootstrap" >&2; exit 1; }
mkdir -p "$work"
if [ ! -e "$base/.ready" ]; then
  rm -rf "$base"
  debootstrap --variant=minbase bookworm "$base" http://deb.debian.org/debian
  cp /etc/resolv.conf "$base/etc/resolv.conf"
  mount -t proc proc "$base/proc"
  chroot "$base" /bin/bash -c 'DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake git python3 libgtest-dev libgmock-dev libbenchmark-dev ca-certificates &&
    apt-get clean' || { umount "$base/proc"; exit 1; }
  umount "$base/proc"
  touch "$base/.ready"
fi
rm -rf "$run"; cp -a "$base" "$run"; mkdir -p "$run/src"
git -C "$repo" archive "$commit" | tar -x -C "$run/src"
mount -t proc proc "$run/proc"; mount --rbind /dev "$run/dev"; mount --rbind /sys "$run/sys"
cleanup() { pkill -f "build/release/jamnet demo" 2>/dev/null || true; umount -R "$run/proc" "$run/dev" "$run/sys" 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
start=$(date +%s.%N)
chroot "$run" /bin/bash -c 'cd /src && make demo 2>&1' | while IFS= read -r line; do
  t=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%8s %s\n' "$t" "$line"
  if [[ "$line" =~ ^\[\ *[0-9.]+\ s\] ]]; then echo "first status line after $t s"; break; fi
done > "$log" || true
grep -m1 "install-deps" "$log" || true
tail -1 "$log"
