#!/usr/bin/env bash
# Builds berth and runs its main job on the example stack in examples/compose/:
# the stack loaded as Docker Compose loads it (`berth compose config`), then its
# services started in dependency order as berth containers from an image
# (a busybox root filesystem imported into berth's store) on a berth network.
# Until `compose up` lands, the services are started here one by one.
# Needs root for the containers.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v busybox >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
cargo build --release --locked --quiet
berth="$(pwd)/target/x86_64-unknown-linux-gnu/release/berth"
stack=examples/compose/webapp
echo "== berth compose config ($stack)"
"$berth" compose -f "$stack/compose.yaml" config
echo "== the configuration hash of each service"
"$berth" compose -f "$stack/compose.yaml" config --hash '*'

if [ "$(id -u)" != 0 ] || ! command -v busybox >/dev/null; then
  echo "(run as root with busybox-static installed to start the containers)"
  exit 0
fi
work=$(mktemp -d)
export BERTH_ROOT=$work/state
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,www}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in $("$rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
cp "$stack/www/index.html" "$rootfs/www/"
echo "== the rootfs as an image, a network for the stack"
tar -C "$rootfs" -c . | "$berth" import - local/busybox:demo
"$berth" network create demo_default >/dev/null
trap 'BERTH_ROOT=$work/state "$berth" rm -f demo-db demo-api demo-proxy >/dev/null 2>&1; BERTH_ROOT=$work/state "$berth" network rm demo_default >/dev/null 2>&1; rm -rf "$work"' EXIT
"$berth" images
"$berth" network ls
echo "== containers (db, then api, then proxy: the stack's start order)"
"$berth" run -d --name demo-db --network demo_default --network-alias db -m 256m local/busybox:demo \
  sh -c 'mkdir -p /db && echo "rows: 3" > /db/index.html && httpd -f -p 80 -h /db' >/dev/null
"$berth" run -d --name demo-api --network demo_default --network-alias api -e DB_HOST=db local/busybox:demo \
  sh -c 'while true; do echo "api up, $DB_HOST ($(nslookup $DB_HOST | grep -A1 Name | tail -1)) says: $(wget -qO- http://$DB_HOST/)"; sleep 1; done' >/dev/null
"$berth" run -d --name demo-proxy --network demo_default -p 127.0.0.1:18080:80 local/busybox:demo httpd -f -p 80 -h /www >/dev/null
"$berth" ps
"$berth" port demo-proxy
sleep 1.5
echo "== logs of demo-api (it finds demo-db by its alias db on the demo_default network)"
"$berth" logs demo-api
echo "== the proxy answers on its published port 127.0.0.1:18080"
wget -qO- http://127.0.0.1:18080/ 2>/dev/null || busybox wget -qO- http://127.0.0.1:18080/
echo "== stopping"
"$berth" stop -t 2 demo-proxy demo-api demo-db
"$berth" ps -a
