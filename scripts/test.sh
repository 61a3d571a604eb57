#!/usr/bin/env bash
# Installs what the tests need when it is missing, then runs every test:
# formatting, clippy, unit tests, the Docker Compose golden cases and the
# bounded loader fuzzing (BERTH_FUZZ_SECS, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and tests use.
packages=(gcc libc6-dev pkg-config ca-certificates busybox-static util-linux bsdutils docker-registry skopeo umoci debootstrap iproute2 nftables iptables python3-venv podman catatonit python3-yaml e2fsprogs)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  else
    echo "missing packages: ${missing[*]} (install them as root)" >&2
    exit 1
  fi
fi

# The shared test material (real compose files, Docker Compose's golden
# output, host firewall rulesets) beside the clone, or where BERTH_SHARED
# points. Without it the tests that need it say they were skipped; with
# BERTH_REQUIRE_SHARED=1 (CI) its absence fails.
shared="${BERTH_SHARED:-$(pwd)/../shared}"
if [ -d "$shared/external" ]; then
  export BERTH_SHARED="$shared"
elif [ -n "${BERTH_REQUIRE_SHARED:-}" ]; then
  echo "the shared test material is missing at $shared (set BERTH_SHARED)" >&2
  exit 1
else
  echo "note: no shared test material at $shared; the tests that need it will say they were skipped" >&2
fi

# A Debian root filesystem for the multi-layer image tests, made once with
# debootstrap from the mirror apt already uses.
debian="$(pwd)/target/fixtures/debian"
if [ ! -x "$debian/bin/bash" ]; then
  . /etc/os-release
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  rm -rf "$debian.tmp"
  mkdir -p "$(dirname "$debian")"
  debootstrap --variant=minbase "${VERSION_CODENAME:-bookworm}" "$debian.tmp" ${mirror:+"$mirror"}
  mv "$debian.tmp" "$debian"
fi
export BERTH_DEBIAN_ROOTFS="$debian"

# The Kubernetes schema validator for `compose convert --kubernetes`
# (kubernetes-validate: it ships the schemas, so validating needs no
# network), installed once into a virtual environment under target/.
validate="$(pwd)/target/kube-validate"
if [ ! -x "$validate/bin/kubernetes-validate" ]; then
  rm -rf "$validate"
  python3 -m venv "$validate"
  "$validate/bin/pip" install --quiet kubernetes-validate
fi
export BERTH_KUBE_VALIDATE="$validate/bin/kubernetes-validate"

if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --check
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --locked --all-targets -- -D warnings
fi
cargo test --locked

# Real stacks: awesome-compose samples on real servers (PostgreSQL, MariaDB,
# Redis, nginx, Apache/PHP, Node.js, Python, Prometheus), from stand-in
# images berth builds from Debian's packages (built once, then cached).
./scripts/stacks.sh

# The shop converted to Kubernetes manifests, played on podman kube play.
./scripts/kube-play.sh
