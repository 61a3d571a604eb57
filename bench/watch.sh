#!/usr/bin/env bash
# Watch mode latency: from a file write to the change being served (a sync
# rule), to a bind-mounted service answering again after a restart rule,
# and to a rebuilt service answering (rebuild rule), with `berth compose
# watch` running. Inside a network namespace this script makes; polls every
# 5 ms. Needs root. Writes bench/results/watch.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-10}"
work="${BENCH_WORK:-/tmp/berth-bench}"
mkdir -p "$work" bench/results

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages busybox-static iproute2 nftables
build_berth
rootfs="$work/rootfs"
make_rootfs "$rootfs"

export BERTH_ROOT="$work/berth-watch-state"
proj="$work/watch-stack"
rm -rf "$proj"
mkdir -p "$proj/web/www" "$proj/api/cgi-bin"
cat > "$proj/compose.yaml" <<'YAML'
name: wbench
services:
  web:
    build: ./web
    init: true
    ports: ["18095:80"]
    develop:
      watch:
        - {path: ./web/www, action: sync, target: /www}
        - {path: ./web/Dockerfile, action: rebuild}
  api:
    image: busybox:latest
    init: true
    command: ["sh", "-c", "cat /proc/sys/kernel/random/uuid > /tmp/started; exec httpd -f -p 80 -h /srv"]
    ports: ["18096:80"]
    volumes: ["./api:/srv"]
    develop:
      watch:
        - {path: ./api, action: restart}
YAML
printf 'FROM busybox:latest\nCOPY www/ /www/\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n' > "$proj/web/Dockerfile"
echo start > "$proj/web/www/index.html"
printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\ncat /tmp/started\n' > "$proj/api/cgi-bin/started"
chmod +x "$proj/api/cgi-bin/started"

watcher_pid=
cleanup() {
  if [ -n "$watcher_pid" ]; then kill "$watcher_pid" 2>/dev/null || true; wait "$watcher_pid" 2>/dev/null || true; fi
  in_ns "$berth" compose -f "$proj/compose.yaml" down --rmi local >/dev/null 2>&1 || true
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
ns="berth-bench-$$"
ip netns add "$ns"
in_ns ip link set lo up
tar -C "$rootfs" -c . | "$berth" import - busybox:latest >/dev/null
in_ns "$berth" compose -f "$proj/compose.yaml" up -d --wait >/dev/null 2>&1
# nsenter execs berth: $! is the watcher itself.
nsenter --net="/run/netns/$ns" "$berth" compose -f "$proj/compose.yaml" watch --no-up >"$work/watch.log" 2>&1 &
watcher_pid=$!
for _ in $(seq 100); do grep -q "Watch enabled" "$work/watch.log" && break; sleep 0.1; done

in_ns python3 - "$proj" "$runs" <<'PY' | tee bench/results/watch.md
import os, statistics, sys, time, urllib.request, platform, subprocess
proj, runs = sys.argv[1], int(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def get(url):
    try:
        return opener.open(url, timeout=2).read().decode()
    except Exception:
        return None
def wait_for(check, limit=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if check():
            return
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting: {check.__doc__ or ''}")
def timed(what, change, check):
    t0 = time.monotonic()
    change()
    try:
        wait_for(check)
    except SystemExit:
        raise SystemExit(f"timed out waiting for {what}: {check.__name__}")
    return (time.monotonic() - t0) * 1000
def write(path, text):
    with open(path, "w") as f:
        f.write(text)
sync, restart, rebuild = [], [], []
for i in range(runs):
    token = f"sync {i} {time.time_ns()}\n"
    sync.append(timed("sync", lambda: write(f"{proj}/web/www/index.html", token),
                      lambda: get("http://127.0.0.1:18095/index.html") == token))
    time.sleep(0.3)
    before = get("http://127.0.0.1:18096/cgi-bin/started")
    def restarted():
        now = get("http://127.0.0.1:18096/cgi-bin/started")
        restarted.last = now
        return now is not None and now != before
    restarted.last = None
    try:
        restart.append(timed("restart", lambda: write(f"{proj}/api/touch.txt", str(i)), restarted))
    except SystemExit as e:
        raise SystemExit(f"{e}: before={before!r} last={restarted.last!r}")
    time.sleep(0.3)
for i in range(max(3, runs // 3)):
    token = f"rebuilt-{i}-{time.time_ns()}"
    df = ('FROM busybox:latest\nCOPY www/ /www/\n'
          f'RUN echo {token} > /www/v.txt\n'
          'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n')
    rebuild.append(timed("rebuild", lambda: write(f"{proj}/web/Dockerfile", df),
                         lambda: (get("http://127.0.0.1:18095/v.txt") or "").strip() == token))
    time.sleep(0.5)
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print("# watch: from a file write to the change answering (berth compose watch)\n")
print(f"{platform.release()}, {cores} cores; medians in ms (debounce: 100 ms of quiet).\n")
print("| rule | median | min | max | runs |")
print("|---|---|---|---|---|")
for name, xs in (("sync (edit served)", sync), ("restart (service answers again)", restart), ("rebuild (new image answers)", rebuild)):
    print(f"| {name} | {statistics.median(xs):.0f} | {min(xs):.0f} | {max(xs):.0f} | {len(xs)} |")
PY
