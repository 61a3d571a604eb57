#!/usr/bin/env bash
# Pulling a two-layer image of about 600 MB (about 240 MB compressed) from a
# registry on 127.0.0.1: berth pull against docker pull, in one run.
#
# The image is made here (umoci) and copied into Debian's docker-registry
# (skopeo); nothing comes from the internet. Needs root. Writes
# bench/results/image-pull.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
work="${BENCH_WORK:-/tmp/berth-bench-pull}"
port="${BENCH_PORT:-5099}"
mkdir -p "$work" bench/results

# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages docker-registry docker.io umoci skopeo
build_berth

# The registry, on loopback only.
mkdir -p "$work/registry"
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

image="127.0.0.1:$port/bench/big:1"
if ! skopeo inspect --tls-verify=false "docker://$image" >/dev/null 2>&1; then
  layout="$work/layout"; bundle="$work/bundle"
  rm -rf "$layout" "$bundle"
  umoci init --layout "$layout"
  umoci new --image "$layout:big"
  umoci unpack --rootless --image "$layout:big" "$bundle"
  head -c 240M /dev/urandom > "$bundle/rootfs/random.bin"      # incompressible: ~240 MB compressed
  umoci repack --image "$layout:big" "$bundle"
  head -c 360M /dev/zero > "$bundle/rootfs/zeros.bin"          # compresses to almost nothing
  umoci repack --image "$layout:big" "$bundle"
  skopeo copy --dest-tls-verify=false "oci:$layout:big" "docker://$image"
  rm -rf "$bundle"
fi

ensure_dockerd "$work/dockerd.log"

: > "$work/times.txt"
for _ in $(seq "$runs"); do
  rm -rf "$work/berth-state"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  s=$(date +%s%N); BERTH_ROOT="$work/berth-state" "$berth" pull -q "$image" >/dev/null; e=$(date +%s%N)
  echo "berth $(( (e - s) / 1000000 ))" >> "$work/times.txt"
  docker rmi -f "$image" >/dev/null 2>&1 || true
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  s=$(date +%s%N); docker pull -q "$image" >/dev/null; e=$(date +%s%N)
  echo "docker $(( (e - s) / 1000000 ))" >> "$work/times.txt"
done
docker rmi -f "$image" >/dev/null 2>&1 || true

python3 - "$work/times.txt" "$runs" <<'PY' | tee bench/results/image-pull.md
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    t.setdefault(k, []).append(int(v) / 1000)
m = {k: statistics.median(v) for k, v in t.items()}
print("# Pulling a 600 MB two-layer image (240 MB compressed) from a registry on 127.0.0.1\n")
print(f"{sys.argv[2]} runs each, page cache dropped before each; medians.\n")
print("| client | median s | min s |")
print("|---|---|---|")
for k in ("berth", "docker"):
    print(f"| {k} | {m[k]:.2f} | {min(t[k]):.2f} |")
print(f"\nratio berth/docker: {m['berth'] / m['docker']:.2f} (berth {m['docker'] / m['berth']:.1f}x faster)")
PY
