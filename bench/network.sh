#!/usr/bin/env bash
# Networks: throughput and latency through a published port against going
# straight to the container's address, and what a bridge network adds to a
# container's start — berth against Docker Engine, side by side, one run.
#
#   wrk -t1 -c4 -d${WRK_SECS}s http://127.0.0.1:PORT/     published port
#   wrk ... http://CONTAINER_IP/                          direct
#   run --rm [--network none|bridge|NET] ROOTFS true      start to exit
#
# Everything runs inside a network namespace this script makes (bridges,
# nftables rules, Docker's iptables rules and its bridge live and die with
# it); traffic stays on its loopback and bridges. The web server is busybox
# httpd serving a 1 KiB page (it forks per connection: the numbers are about
# the path, not the server). Needs root. Installs busybox-static, docker.io,
# wrk, iproute2 and nftables when missing. Writes bench/results/network.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-30}"
cold_runs="${COLD_RUNS:-10}"
secs="${WRK_SECS:-10}"
work="${BENCH_WORK:-/tmp/berth-bench}"
mkdir -p "$work" bench/results

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages busybox-static docker.io wrk iproute2 nftables
build_berth
rootfs="$work/rootfs"
make_rootfs "$rootfs"

export BERTH_ROOT="$work/berth-net-state"
cleanup() {
  in_ns "$berth" rm -f bweb bkeep >/dev/null 2>&1 || true
  in_ns "$berth" network rm benchnet >/dev/null 2>&1 || true
  docker rm -f dweb >/dev/null 2>&1 || true
  bench_netns_down "$work"
}
trap cleanup EXIT
bench_netns "$work"
image=berth-bench/busybox:latest
docker image inspect "$image" >/dev/null 2>&1 || tar -C "$rootfs" -c . | docker import - "$image" >/dev/null

# --- Throughput and latency -------------------------------------------------
in_ns "$berth" run -d --name bweb -p 18080:80 -p 19000:9000 --rootfs "$rootfs" sh -c \
  "httpd -p 80 -h /www; exec nc -ll -p 9000 -e dd if=/dev/zero bs=1M count=1024" >/dev/null
docker run -d --name dweb -p 18081:80 -p 19001:9000 "$image" sh -c \
  "httpd -p 80 -h /www; exec nc -ll -p 9000 -e dd if=/dev/zero bs=1M count=1024" >/dev/null
bip=$(in_ns "$berth" inspect bweb | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["NetworkSettings"]["IPAddress"])')
dip=$(docker inspect dweb | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["NetworkSettings"]["IPAddress"])')
for url in "http://127.0.0.1:18080/" "http://$bip/" "http://127.0.0.1:18081/" "http://$dip/"; do
  for _ in $(seq 50); do in_ns busybox wget -q -O /dev/null "$url" 2>/dev/null && break; sleep 0.1; done
done
# Below the server's saturation (it forks per connection), in rounds that
# alternate between the four paths; the median round counts.
load() { # label url
  in_ns wrk -t1 -c4 -d"${secs}s" --latency "$2" > "$work/wrk-$1.txt"
  echo "$1 $(awk '/Requests\/sec/{print $2}' "$work/wrk-$1.txt") $(awk '$1=="50%"{print $2}' "$work/wrk-$1.txt") $(awk '$1=="99%"{print $2}' "$work/wrk-$1.txt")"
}
{
  for _ in 1 2 3; do
    load berth-published "http://127.0.0.1:18080/"
    load berth-direct "http://$bip/"
    load docker-published "http://127.0.0.1:18081/"
    load docker-direct "http://$dip/"
  done
} > "$work/wrk.txt"
# Bulk throughput: one TCP stream of 1 GiB per round, read in 1 MiB chunks.
stream() { # label host port
  in_ns python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
t, n = time.time(), 0
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    n += len(b)
print(sys.argv[1], n * 8 / (time.time() - t) / 1e9, n)' "$@"
}
{
  for _ in 1 2 3; do
    stream berth-published 127.0.0.1 19000
    stream berth-direct "$bip" 9000
    stream docker-published 127.0.0.1 19001
    stream docker-direct "$dip" 9000
  done
} > "$work/stream.txt"
in_ns "$berth" rm -f bweb >/dev/null
docker rm -f dweb >/dev/null

# --- Start time -------------------------------------------------------------
# Variants take turns within each round, so drift on the machine (RCU grace
# periods behind cgroup moves, namespaces being torn down) falls on all alike.
none() { in_ns "$berth" run --rm --network none --rootfs "$rootfs" true; }
bridge() { in_ns "$berth" run --rm --rootfs "$rootfs" true; }
usernet() { in_ns "$berth" run --rm --network benchnet --rootfs "$rootfs" true; }
in_ns "$berth" network create benchnet >/dev/null
none; bridge; usernet; docker run --rm --network none "$image" true >/dev/null; docker run --rm "$image" true >/dev/null
{
  # Alone on a network: the bridge, its rules and (user networks) the DNS
  # responder come up for the container (each round waits out the grace
  # period after which an empty network's bridge goes).
  for _ in $(seq "$cold_runs"); do
    sleep 3
    once berth-none-1 none
    once berth-bridge-first bridge
    once berth-usernet-first usernet
  done
  # Joining networks that are up (another container keeps them).
  in_ns "$berth" run -d --name bkeep --rootfs "$rootfs" sleep 600 >/dev/null
  in_ns "$berth" network connect benchnet bkeep >/dev/null
  for _ in $(seq "$runs"); do
    once berth-none none
    once berth-bridge bridge
    once berth-usernet usernet
    once docker-none docker run --rm --network none "$image" true
    once docker-bridge docker run --rm "$image" true
  done
} > "$work/net-times.txt"

python3 - "$work/wrk.txt" "$work/net-times.txt" "$runs" "$secs" "$cold_runs" "$work/stream.txt" <<'PY' | tee bench/results/network.md
import statistics, sys, platform, subprocess
def ms(v):
    return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
rounds = {}
for line in open(sys.argv[1]):
    k, rps, p50, p99 = line.split()
    rounds.setdefault(k, []).append((float(rps), ms(p50), ms(p99)))
# The median round by throughput.
wrk = {k: sorted(v)[len(v) // 2] for k, v in rounds.items()}
times = {}
for line in open(sys.argv[2]):
    k, v = line.split()
    times.setdefault(k, []).append(int(v) / 1000)
med = {k: statistics.median(v) for k, v in times.items()}
cores = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()
print("# Networks: published ports and start cost, berth vs Docker Engine\n")
print(f"{platform.release()}, {cores} cores; wrk -t1 -c4 against busybox httpd (1 KiB page), three alternating rounds of {sys.argv[4]} s per path, median round; start times are medians of {sys.argv[3]} runs ({sys.argv[5]} for the -first rows).\n")
print("| path | requests/s | p50 ms | p99 ms | share of direct |")
print("|---|---|---|---|---|")
for who in ("berth", "docker"):
    d = wrk[f"{who}-direct"][0]
    for how in ("published", "direct"):
        rps, p50, p99 = wrk[f"{who}-{how}"]
        print(f"| {who} {how} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {rps / d:.1%} |")
streams = {}
for line in open(sys.argv[6]):
    k, gbps, n = line.split()
    streams.setdefault(k, []).append(float(gbps))
gb = {k: statistics.median(v) for k, v in streams.items()}
print("\nBulk: one TCP stream of 1 GiB, median of three alternating rounds.\n")
print("| path | Gbit/s | share of direct |")
print("|---|---|---|")
for who in ("berth", "docker"):
    for how in ("published", "direct"):
        print(f"| {who} {how} | {gb[f'{who}-{how}']:.2f} | {gb[f'{who}-{how}'] / gb[f'{who}-direct']:.1%} |")
b, dk = wrk["berth-published"][0], wrk["docker-published"][0]
print(f"\nThrough a published port on 127.0.0.1 berth keeps {gb['berth-published'] / gb['berth-direct']:.1%} of direct bulk throughput and {b / wrk['berth-direct'][0]:.1%} of direct requests/s (kernel DNAT); Docker keeps {gb['docker-published'] / gb['docker-direct']:.1%} and {dk / wrk['docker-direct'][0]:.1%} (its userland proxy serves loopback). Requests/s are noisy here: each request is a new connection (busybox httpd has no keep-alive), and tens of thousands of TIME_WAIT sockets make rounds stall now and then.\n")
print("Start to exit of `run --rm ... true`. `-first` rows: the container is alone on its network, so the bridge, its rules and the DNS responder come up and go with it (compared with `berth-none-1`, measured in the same rounds); the others join networks another container keeps up.\n")
print("| start to exit | median ms | added by the network, ms |")
print("|---|---|---|")
for k, base in [("berth-none", "berth-none"), ("berth-bridge", "berth-none"), ("berth-usernet", "berth-none"),
                ("berth-none-1", "berth-none-1"), ("berth-bridge-first", "berth-none-1"), ("berth-usernet-first", "berth-none-1"),
                ("docker-none", "docker-none"), ("docker-bridge", "docker-none")]:
    print(f"| {k} | {med[k]:.1f} | {med[k] - med[base]:+.1f} |")
print(f"\nberth on its default bridge starts {med['docker-bridge'] / med['berth-bridge']:.1f}x faster than docker run on its default bridge.")
PY
