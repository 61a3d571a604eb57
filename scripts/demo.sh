#!/usr/bin/env bash
# Builds berth and runs its main job on the example stack
# examples/compose/shop (a web front, an app, a database with a health check
# and a named volume, a one-shot migration), its images built from the
# Dockerfiles beside it: `compose up -d --wait --build`, the front answering
# through its published port, then `compose down -v`.
# Images come from scripts/example-images.sh (Debian's busybox-static); no
# internet is needed. Needs root for the containers.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
berth="$(pwd)/target/x86_64-unknown-linux-gnu/release/berth"
stack=examples/compose/shop/compose.yaml
echo "== berth compose config --services ($stack)"
"$berth" compose -f "$stack" config --services
if [ "$(id -u)" != 0 ]; then
  echo "(run as root to start the stack)"
  exit 0
fi
work=$(mktemp -d)
export BERTH_ROOT=$work/state
trap '"$berth" compose -f "$stack" down -v >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/example-images.sh "$berth"
port=${SHOP_PORT:-8080}
export SHOP_PORT=$port
echo "== berth compose up -d --wait --build"
time "$berth" compose -f "$stack" up -d --wait --build
"$berth" compose -f "$stack" ps
echo "== the front, through its published port: http://127.0.0.1:$port/cgi-bin/api"
answer=$("$berth" run --rm --network host busybox:latest wget -qO- "http://127.0.0.1:$port/cgi-bin/api" || true)
printf '%s\n' "$answer"
# The front answers only through the app, and the app only from the
# database: the migration's row proves the whole chain.
if ! printf '%s\n' "$answer" | grep -qx 'item: banana'; then
  echo "error: the shop did not answer through web → api → db (no 'item: banana' above)" >&2
  "$berth" compose -f "$stack" ps -a >&2 || true
  "$berth" compose -f "$stack" logs --no-color >&2 || true
  exit 1
fi
echo "== the stack answered"
echo "== berth compose down -v"
time "$berth" compose -f "$stack" down -v
