#!/usr/bin/env bash
# Makes the base images the examples in examples/compose/ build on, with no
# internet: busybox:latest, a root filesystem of Debian's busybox-static
# imported into berth's store; and debian:base, a debootstrap root
# filesystem (BERTH_DEBIAN_ROOTFS, default target/fixtures/debian, which
# scripts/test.sh makes) when one is there. Needs root (apt-get installs
# busybox-static when missing).
#   scripts/example-images.sh [BERTH_BINARY]
set -euo pipefail
berth="${1:-berth}"
if ! command -v busybox >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,root,www}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in $("$rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nwww-data:x:33:\n' > "$rootfs/etc/group"
tar -C "$rootfs" -c . | "$berth" import - busybox:latest >/dev/null
echo "busybox:latest made from $(busybox | head -1)"
debian="${BERTH_DEBIAN_ROOTFS:-$(dirname "$0")/../target/fixtures/debian}"
if [ -x "$debian/bin/bash" ]; then
  tar -C "$debian" -c . | "$berth" import - debian:base >/dev/null
  echo "debian:base made from $debian"
else
  echo "debian:base not made: no debootstrap root at $debian (scripts/test.sh makes one); examples/compose/greeter needs it"
fi
