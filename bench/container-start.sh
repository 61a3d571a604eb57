#!/usr/bin/env bash
# Container start-to-exit time and shim memory: berth against Docker Engine,
# side by side on this machine, in one run.
#
#   berth run --rm --network none --rootfs ROOTFS true
#   docker run --rm --network none IMAGE true      (the same rootfs, imported)
#
# (bench/network.sh measures what a bridge network adds.)
#
# Needs root. Installs busybox-static and docker.io when missing and starts
# dockerd (without iptables or a bridge) when none runs. Writes
# bench/results/container-start.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-30}"
work="${BENCH_WORK:-/tmp/berth-bench}"
mkdir -p "$work" bench/results

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages busybox-static docker.io
build_berth

# The rootfs: busybox-static and its applets.
rootfs="$work/rootfs"
make_rootfs "$rootfs"

ensure_dockerd "$work/dockerd.log"
image=berth-bench/busybox:latest
docker image inspect "$image" >/dev/null 2>&1 || tar -C "$rootfs" -c . | docker import - "$image" >/dev/null

export BERTH_ROOT="$work/berth-state"
time_runs() { # label, command...: one duration per line, in ms
  local label=$1; shift
  "$@" >/dev/null 2>&1 # warm up
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    echo "$label $(( (e - s) / 1000 ))"
  done
}
{
  time_runs berth "$berth" run --rm --network none --rootfs "$rootfs" true
  time_runs berth-noinit "$berth" run --rm --network none --init=false --rootfs "$rootfs" true
  time_runs docker docker run --rm --network none "$image" true
  time_runs docker-init docker run --rm --init --network none "$image" true
} > "$work/times.txt"

# Memory: resident size of the per-container monitor while a container sleeps.
bid=$("$berth" run -d --network none --rootfs "$rootfs" sleep 60)
bshim=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['shim_pid'])" "$BERTH_ROOT/run/containers/$bid/state.json")
berth_rss=$(awk '/VmRSS/{print $2}' "/proc/$bshim/status")
did=$(docker run -d --network none "$image" sleep 60)
dshim=$(pgrep -f "containerd-shim.*$did" | head -1 || true)
docker_rss=$( [ -n "$dshim" ] && awk '/VmRSS/{print $2}' "/proc/$dshim/status" || echo 0)
daemons_rss=0
for p in $(pgrep -x dockerd; pgrep -x containerd); do
  daemons_rss=$(( daemons_rss + $(awk '/VmRSS/{print $2}' "/proc/$p/status") ))
done
"$berth" rm -f "$bid" >/dev/null
docker rm -f "$did" >/dev/null

python3 - "$work/times.txt" "$berth_rss" "$docker_rss" "$daemons_rss" "$runs" <<'PY' | tee bench/results/container-start.md
import statistics, sys, platform, subprocess
times = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    times.setdefault(k, []).append(int(v) / 1000)
med = {k: statistics.median(v) for k, v in times.items()}
berth_rss, docker_rss, daemons = (int(x) for x in sys.argv[2:5])
kernel = platform.release()
print("# Container start to exit: berth vs Docker Engine\n")
print(f"{sys.argv[5]} runs each on {kernel}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; medians.\n")
print("| command | median ms | min ms | ratio to docker |")
print("|---|---|---|---|")
for k, ref in [("berth", "docker"), ("berth-noinit", "docker"), ("docker", "docker"), ("docker-init", "docker")]:
    print(f"| {k} | {med[k]:.1f} | {min(times[k]):.1f} | {med[k] / med[ref]:.3f} |")
print(f"\nberth run --rm true is {med['docker'] / med['berth']:.1f}x faster than docker run --rm --network none true.\n")
print("| memory | KiB |")
print("|---|---|")
print(f"| berth shim (per container) | {berth_rss} |")
print(f"| containerd-shim (per container) | {docker_rss} |")
print(f"| dockerd + containerd (always running) | {daemons} |")
PY
