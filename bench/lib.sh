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
