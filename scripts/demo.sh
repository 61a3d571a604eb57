#!/usr/bin/env bash
# Builds berth and runs its main job on the example stack in examples/compose/.
# Until containers run, the main job is loading the stack as Docker Compose
# would: `berth compose config`, plus the services and the hash of each.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
berth=target/x86_64-unknown-linux-gnu/release/berth
stack=examples/compose/webapp
echo "== berth compose config ($stack)"
"$berth" compose --project-directory "$stack" -f "$stack/compose.yaml" config
echo "== services (with the debug profile)"
"$berth" compose -f "$stack/compose.yaml" --profile debug config --services
echo "== configuration hashes"
"$berth" compose -f "$stack/compose.yaml" config --hash '*'
