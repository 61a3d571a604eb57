#!/usr/bin/env bash
# Cold build (no cache) and no-change rebuild of examples/compose/shop/db
# (two stages, three RUN steps, COPY --from, HEALTHCHECK): `berth build`
# against `docker build` with Docker's legacy builder (Debian's docker.io,
# DOCKER_BUILDKIT=0), side by side in one run, rounds alternating. RUN steps
# use no network on either side. Needs root. Writes bench/results/build.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-10}"
work="${BENCH_WORK:-/tmp/berth-bench}"
mkdir -p "$work" bench/results

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages busybox-static docker.io iproute2 nftables
build_berth
rootfs="$work/rootfs"
make_rootfs "$rootfs"

export BERTH_ROOT="$work/berth-build-state"
ctx=examples/compose/shop/db
cleanup() { bench_netns_down "$work"; }
trap cleanup EXIT
bench_netns "$work"
export DOCKER_BUILDKIT=0
docker image inspect busybox:latest >/dev/null 2>&1 || tar -C "$rootfs" -c . | docker import - busybox:latest >/dev/null
tar -C "$rootfs" -c . | in_ns "$berth" import - busybox:latest >/dev/null

{
  for _ in $(seq "$runs"); do
    once berth-cold in_ns "$berth" build --no-cache --network none -t bench-db:1 "$ctx"
    once berth-rebuild in_ns "$berth" build --network none -t bench-db:1 "$ctx"
    once docker-cold docker build --no-cache --network none -t bench-db:1 "$ctx"
    once docker-rebuild docker build --network none -t bench-db:1 "$ctx"
  done
} > "$work/build-times.txt"

python3 - "$work/build-times.txt" "$runs" <<'PY' | tee bench/results/build.md
import statistics, sys, platform, subprocess
times = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    times.setdefault(k, []).append(int(v) / 1000)
med = {k: statistics.median(v) for k, v in times.items()}
cores = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()
print("# build: berth vs docker build (legacy builder, Docker Engine 20.10)\n")
print(f"{platform.release()}, {cores} cores; examples/compose/shop/db (two stages, three RUN steps);")
print(f"medians of {sys.argv[2]} alternating rounds, in ms.\n")
print("| build | berth | docker build | ratio |")
print("|---|---|---|---|")
for k, name in (("cold", "cold (--no-cache)"), ("rebuild", "no-change rebuild")):
    b, d = med[f"berth-{k}"], med[f"docker-{k}"]
    print(f"| {name} | {b:.0f} | {d:.0f} | {d / b:.1f}x |")
PY
