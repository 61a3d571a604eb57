#!/usr/bin/env bash
# What berth keeps per container and how fast it starts one, beside its
# peers on this machine in one run (issue "Lean"):
#
#   - everything resident per running container (berth: shim + init, and a
#     port proxy where there is one; podman: conmon; Docker: containerd-shim),
#     as PSS from /proc/PID/smaps_rollup;
#   - the DNS responder of a network (berth's __berth_dns against podman's
#     aardvark-dns), PSS;
#   - `run --rm --network none IMAGE true`, start to exit, beside the floor
#     on this machine (`unshare` of the same namespaces + `chroot` into the
#     same root filesystem + `true`: no cgroup, no mounts, no record);
#   - `compose up -d` / `down` of 3 and 20 independent services (berth
#     against Docker Compose v2.40.3 on Docker Engine).
#
# Podman is Debian's (4.3, `--runtime runc`, netavark and aardvark-dns);
# its default rlimits are above what this host allows a process without
# CAP_SYS_RESOURCE, so it runs with a containers.conf that keeps them at
# 4096. Everything that makes a network runs in a namespace this script
# makes. Needs root. Writes bench/results/lean.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-20}"
work="${BENCH_WORK:-/tmp/berth-bench}"
mkdir -p "$work" bench/results

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages busybox-static docker.io podman catatonit iproute2 nftables python3-pip
build_berth
rootfs="$work/rootfs"
make_rootfs "$rootfs"
compose=$(compose_v2 "$work")

export BERTH_ROOT="$work/berth-lean-state"
export CONTAINERS_CONF="$work/containers.conf"
printf '[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n' > "$CONTAINERS_CONF"
pod() { podman --root "$work/podman-storage" --runroot "$work/podman-run" --runtime runc "$@"; }

cleanup() {
  for s in i3 i20; do
    in_ns "$berth" compose -f "$work/lean/$s/compose.yaml" down -v >/dev/null 2>&1 || true
    "$compose" -f "$work/lean/$s/compose.yaml" down -v >/dev/null 2>&1 || true
  done
  in_ns "$berth" rm -f lean-dns >/dev/null 2>&1 || true
  in_ns "$berth" network rm lean-net >/dev/null 2>&1 || true
  in_ns podman --root "$work/podman-storage" --runroot "$work/podman-run" rm -f -a >/dev/null 2>&1 || true
  in_ns podman --root "$work/podman-storage" --runroot "$work/podman-run" network rm -f lean-pnet >/dev/null 2>&1 || true
  bench_netns_down "$work"
}
trap cleanup EXIT
bench_netns "$work"

image=berth-bench/busybox:latest
tar -C "$rootfs" -c . | "$berth" import - busybox:latest >/dev/null
pod image exists "$image" 2>/dev/null || tar -C "$rootfs" -c . | pod import - "$image" >/dev/null
docker image inspect busybox:latest >/dev/null 2>&1 || tar -C "$rootfs" -c . | docker import - busybox:latest >/dev/null

pss() { # pids... → KiB summed
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/smaps_rollup" ] || continue
    t=$(( t + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup") ))
  done
  echo "$t"
}

# Each timed command starts once what the one before left running in the
# background (Docker's and podman's clean-up after a container or a
# project went away) has settled, so no tool pays for another's.
settle() { sleep "${SETTLE:-0.5}"; }

# Start to exit.
{
  for _ in $(seq "$runs"); do
    settle; once berth-run "$berth" run --rm --network none busybox:latest true
    settle; once podman-run pod run --rm --network none "$image" true
    settle; once docker-run in_ns docker run --rm --network none busybox:latest true
    settle; once floor-run unshare --mount --pid --fork --net --uts --ipc chroot "$rootfs" /bin/true
  done
} > "$work/lean-times.txt"

# Resident per container: N sleeping containers each, the PSS of every
# process kept for them summed and divided by N (PSS shares the pages the
# processes map alike, as N containers on a host do).
n="${CONTAINERS:-10}"
bshims=(); binits=(); bids=()
for _ in $(seq "$n"); do
  bid=$("$berth" run -d --network none busybox:latest sleep 300)
  bids+=("$bid")
done
# berth's helpers give back their start-up pages once settled (1 s).
sleep 2
for bid in "${bids[@]}"; do
  st="$BERTH_ROOT/run/containers/$bid/state.json"
  bshims+=("$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['shim_pid'])" "$st")")
  binits+=("$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$st")")
done
berth_shim=$(( $(pss "${bshims[@]}") / n )); berth_init=$(( $(pss "${binits[@]}") / n ))
pids=(); for _ in $(seq "$n"); do pids+=("$(pod run -d --network none "$image" sleep 300)"); done
sleep 1
conmons=(); for p in "${pids[@]}"; do conmons+=($(pgrep -f "conmon.*$p" | head -1 || true)); done
podman_conmon=$(( $(pss "${conmons[@]}") / n ))
dids=(); for _ in $(seq "$n"); do dids+=("$(in_ns docker run -d --network none busybox:latest sleep 300)"); done
sleep 1
dshims=(); for d in "${dids[@]}"; do dshims+=($(pgrep -f "containerd-shim.*$d" | head -1 || true)); done
docker_shim=$(( $(pss "${dshims[@]}") / n ))
"$berth" rm -f "${bids[@]}" >/dev/null
pod rm -f -t 0 "${pids[@]}" >/dev/null
in_ns docker rm -f "${dids[@]}" >/dev/null

# A network's name server, with one container on the network.
in_ns "$berth" network create lean-net >/dev/null
in_ns "$berth" run -d --name lean-dns --network lean-net busybox:latest sleep 120 >/dev/null
sleep 2
resolver=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resolver_pid'])" "$BERTH_ROOT/run/networks/lean-net.json")
berth_dns=$(pss "$resolver")
in_ns podman --root "$work/podman-storage" --runroot "$work/podman-run" network create lean-pnet >/dev/null
in_ns podman --root "$work/podman-storage" --runroot "$work/podman-run" --runtime runc run -d --network lean-pnet "$image" sleep 120 >/dev/null
aardvark=$(pgrep -x aardvark-dns | head -1 || true)
podman_dns=$(pss $aardvark)

# compose up -d / down of independent services.
mkdir -p "$work/lean/i3" "$work/lean/i20"
gen() { # dir count
  {
    echo "services:"
    for i in $(seq "$2"); do
      printf '  svc%s:\n    image: busybox:latest\n    init: true\n    command: ["httpd", "-f", "-p", "80", "-h", "/www"]\n' "$i"
    done
  } > "$1/compose.yaml"
}
gen "$work/lean/i3" 3
gen "$work/lean/i20" 20
tar -C "$rootfs" -c . | in_ns "$berth" import - busybox:latest >/dev/null
{
  for _ in $(seq 5); do
    for s in i3 i20; do
      f="$work/lean/$s/compose.yaml"
      settle; once "berth-up-$s" in_ns "$berth" compose -f "$f" up -d
      settle; once "berth-down-$s" in_ns "$berth" compose -f "$f" down -v
      settle; once "docker-up-$s" "$compose" -f "$f" up -d
      settle; once "docker-down-$s" "$compose" -f "$f" down -v
    done
  done
} >> "$work/lean-times.txt"

python3 - "$work/lean-times.txt" "$runs" "$n" "$berth_shim" "$berth_init" "$podman_conmon" "$docker_shim" "$berth_dns" "$podman_dns" <<'PY' | tee bench/results/lean.md
import statistics, sys, platform, subprocess
times = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    times.setdefault(k, []).append(int(v) / 1000)
med = {k: statistics.median(v) for k, v in times.items()}
runs, n = sys.argv[2], sys.argv[3]
shim, init, conmon, cshim, bdns, pdns = (int(x) for x in sys.argv[4:10])
cores = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()
mib = lambda k: f"{k / 1024:.2f} MiB"
ratio = lambda a, b: f"{a / b:.2f}x" if b else "n/a"
print("# Lean: what berth keeps per container, and how fast it starts one\n")
print(f"{platform.release()}, {cores} cores, one run; PSS from /proc/PID/smaps_rollup, per container with {n} running of each kind; times are medians ({runs} runs; compose 5 rounds).\n")
print("| | berth | peer | berth / peer |")
print("|---|---|---|---|")
print(f"| per running container, PSS (berth: shim + init; {n} running) | {mib(shim + init)} ({mib(shim)} + {mib(init)}) | podman's conmon {mib(conmon)}; containerd-shim {mib(cshim)} | {ratio(shim + init, conmon)} of conmon |")
print(f"| DNS responder of a network, PSS | {mib(bdns)} | aardvark-dns {mib(pdns)} (one per host) | {ratio(bdns, pdns)} |")
print(f"| `run --rm --network none IMAGE true` | {med['berth-run']:.1f} ms | podman (runc) {med['podman-run']:.1f} ms; docker {med['docker-run']:.1f} ms | {ratio(med['berth-run'], med['podman-run'])} of podman, {ratio(med['berth-run'], med['docker-run'])} of docker |")
print(f"| the floor for that: `unshare` of the same namespaces + `chroot` + `true` | {med['floor-run']:.1f} ms | | berth is {ratio(med['berth-run'], med['floor-run'])} the floor |")
for s, n in [("i3", 3), ("i20", 20)]:
    print(f"| `compose up -d` / `down`, {n} independent services | {med['berth-up-' + s]:.0f} / {med['berth-down-' + s]:.0f} ms | Docker Compose {med['docker-up-' + s]:.0f} / {med['docker-down-' + s]:.0f} ms | {ratio(med['berth-up-' + s], med['docker-up-' + s])} / {ratio(med['berth-down-' + s], med['docker-down-' + s])} |")
PY
