#!/usr/bin/env bash
# Real stacks: awesome-compose samples (../shared/external/awesome-compose)
# run on berth with real servers. Builds the stand-in images of
# tests/stacks/images/ once with `berth build` (Debian's packages, fetched by
# apt from the mirror it already uses, installed offline in the build), then
# for each sample: `compose up -d --wait` with the sample's compose file
# unmodified, tests/stacks/<sample>/ as the project directory (the files the
# sample's repository has beside its compose file: secrets, app sources,
# configuration) and its override.yaml; the checks a user would make
# (tests/stacks/<sample>/check.sh); `down`, `up` again (named-volume data
# still there), `down -v`, and nothing left behind. One line per sample with
# its up and down times; with --vs-docker the same for Docker Compose v2 on
# Docker Engine (images loaded with `berth save | docker load`).
#
#   scripts/stacks.sh [--vs-docker] [SAMPLE...]
#
# Needs root and the debootstrap root scripts/test.sh makes. Every stack runs
# in a network namespace of its own; traffic stays inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

vs_docker=
samples=()
for a in "$@"; do
  case "$a" in
    --vs-docker) vs_docker=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) samples+=("$a") ;;
  esac
done
all_samples=(nginx-flask-mysql nginx-golang-postgres nextcloud-redis-mariadb wordpress-mysql
  react-express-mysql nginx-nodejs-redis postgresql-pgadmin prometheus-grafana fastapi)
[ ${#samples[@]} -gt 0 ] || samples=("${all_samples[@]}")

shared="${BERTH_SHARED:-$repo/../shared}"
if [ ! -d "$shared/external/awesome-compose" ]; then
  if [ -n "${BERTH_REQUIRE_SHARED:-}" ]; then
    echo "stacks: the shared test material is missing at $shared (set BERTH_SHARED)" >&2
    exit 1
  fi
  echo "stacks: skipped: no shared test material at $shared (the samples live there)"
  exit 0
fi
samples_dir=$(cd "$shared/external/awesome-compose" && pwd)
debian="${BERTH_DEBIAN_ROOTFS:-$repo/target/fixtures/debian}"
[ -x "$debian/bin/bash" ] || { echo "stacks: no debootstrap root at $debian: scripts/test.sh makes it" >&2; exit 1; }

# curl and psql for the checks, nsenter and ip for the namespaces.
need=()
for p in curl iproute2 util-linux postgresql-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work="${BERTH_STACKS_WORK:-$repo/target/stacks}"
mkdir -p "$work"
berth="${BERTH:-}"
if [ -z "$berth" ]; then
  cargo build --release --locked --quiet
  berth="$repo/target/x86_64-unknown-linux-gnu/release/berth"
fi
# The stand-ins' store persists between runs (the images are built once and
# kept by the build cache); each run's containers, networks and volumes are
# removed by the run itself.
export BERTH_ROOT="$work/root"
export BERTH_RUN="$work/run"
images="$repo/tests/stacks/images"

# --- stand-in images --------------------------------------------------------

# debs_for DIR: the .deb files of DIR's packages (and its parent's), with
# their dependencies against the base image's dpkg status, less what the
# parent's set already has; into $work/debs/DIR.
debs_for() {
  local dir=$1 parent=$2 out="$work/debs/$1" pkgs=()
  [ -f "$images/$dir/packages" ] || return 0
  [ "$parent" = - ] || mapfile -t -O 0 pkgs < "$images/$parent/packages"
  mapfile -t -O "${#pkgs[@]}" pkgs < "$images/$dir/packages"
  # Fetched once for a package list (apt's lists are updated once per work
  # directory); remove $work/debs to fetch again.
  if [ -f "$out/.packages" ] && [ "$(cat "$out/.packages")" = "${pkgs[*]}" ]; then return 0; fi
  rm -rf "$out.tmp" && mkdir -p "$out.tmp/partial"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only --no-install-recommends \
    -o Dir::State::status="$debian/var/lib/dpkg/status" -o Dir::Cache::archives="$out.tmp" \
    -o Debug::NoLocking=1 "${pkgs[@]}" >/dev/null
  rmdir "$out.tmp/partial"
  if [ "$parent" != - ]; then
    local f
    for f in "$work/debs/$parent"/*.deb; do rm -f "$out.tmp/$(basename "$f")"; done
  fi
  echo "${pkgs[*]}" > "$out.tmp/.packages"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_images() {
  [ -f "$work/apt-updated" ] || { apt-get update -qq && touch "$work/apt-updated"; }
  if ! "$berth" image inspect debian:base >/dev/null 2>&1; then
    tar -C "$debian" -c . | "$berth" import - debian:base >/dev/null
  fi
  local dir parent tags pids=() failed=0
  # Downloads first (apt, one at a time), then the builds: those without a
  # parent in parallel, then their children.
  while read -r dir parent tags; do
    case "$dir" in ''|'#'*) continue ;; esac
    debs_for "$dir" "$parent"
  done < "$images/IMAGES"
  build_one() { # dir tags...
    local dir=$1 ctx="$work/context/$1" args=() t; shift
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp -r "$images/$dir/." "$ctx/"
    rm -f "$ctx/packages"
    if [ -d "$work/debs/$dir" ]; then
      cp -al "$work/debs/$dir" "$ctx/debs"
      cp "$images/install-debs" "$ctx/debs/install-debs"
    fi
    for t in "$@"; do args+=(-t "$t"); done
    if ! "$berth" build -q "${args[@]}" "$ctx" > "$work/build-$dir.log" 2>&1; then
      echo "stacks: building the $dir stand-in failed:" >&2
      tail -n 30 "$work/build-$dir.log" >&2
      return 1
    fi
  }
  for round in roots children; do
    pids=()
    while read -r dir parent tags; do
      case "$dir" in ''|'#'*) continue ;; esac
      if { [ $round = roots ] && [ "$parent" = - ]; } || { [ $round = children ] && [ "$parent" != - ]; }; then
        # shellcheck disable=SC2086
        build_one "$dir" $tags &
        pids+=($!)
      fi
    done < "$images/IMAGES"
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
    [ $failed = 0 ] || exit 1
  done
}

t0=$(date +%s)
build_images
echo "stacks: stand-in images ready ($(( $(date +%s) - t0 )) s)"

# --- samples ----------------------------------------------------------------

ms() { echo $(( $(date +%s%N) / 1000000 )); }

# What the checks use: page URL [curl args...] prints a page fetched inside
# the stack's namespace (retried while the server is still coming up:
# refused, reset or 5xx, for up to 60 s); fail says what was wrong.
page() {
  local url=$1 out deadline=$(( $(date +%s) + 60 )); shift
  while :; do
    if out=$(in_ns curl -sS --fail --max-time 10 "$@" "$url" 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 0.5
  done
  echo "  $url did not answer: $out" >&2
  return 1
}
# visits URL FIRST AGAIN: a page that answers "Visits: N" counts two
# requests one after the other; the first is FIRST after the first up and
# AGAIN after down and up (the database kept its volume). $round is the
# check's argument.
visits() {
  local n m
  n=$(page "$1" | sed -n 's/^Visits: //p')
  m=$(page "$1" | sed -n 's/^Visits: //p')
  [ -n "$n" ] && [ "$m" = $((n + 1)) ] || fail "$1: visits $n then $m"
  if [ "$round" = 1 ] && [ "$n" != "$2" ]; then fail "$1: the first visit was counted $n"; fi
  if [ "$round" = 2 ] && [ "$n" != "$3" ]; then fail "$1: after down and up the count is $n, not $3"; fi
  return 0
}

# A check runs in a subshell of its own (run_check): fail ends it.
fail() { echo "  check failed: $*" >&2; exit 1; }
# Pipes there are judged by their last command (`page … | grep -q` may
# close the pipe early).
run_check() { ( set +o pipefail; . "$dir/check.sh" "$1" ) ; }

# leftovers: what a project left behind after `down -v` (empty when nothing).
leftovers() { # project
  local p=$1
  if [ "$engine" = berth ]; then
    "$berth" ps -a -q --filter "label=com.docker.compose.project=$p"
    "$berth" volume ls -q --filter "label=com.docker.compose.project=$p"
    "$berth" network ls -q --filter "label=com.docker.compose.project=$p"
    in_ns ip -o link show | awk -F': ' '$2 != "lo" { print "link " $2 }'
    grep -F "$BERTH_ROOT/" /proc/self/mountinfo | awk '{ print "mount " $5 }' || true
    # berth's helpers (shims, DNS responders, port proxies, watchers) of
    # this state root: after down -v of the only project, none.
    local pid
    for pid in $(pgrep -f '__berth_(shim|dns|proxy|watch|net_down)' || true); do
      # (A helper that exits meanwhile has no environ left to read.)
      if { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | grep -qxF "BERTH_RUN=$BERTH_RUN"; then
        echo "helper $pid $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
      fi
    done
  else
    docker ps -a -q --filter "label=com.docker.compose.project=$p"
    docker volume ls -q --filter "label=com.docker.compose.project=$p"
    docker network ls -q --filter "label=com.docker.compose.project=$p"
  fi
}

# run_sample SAMPLE: up, check, down, up, check again, down -v, nothing left.
# Prints "SAMPLE ENGINE up N ms down N ms (first up N ms)".
run_sample() {
  local s=$1 dir="$repo/tests/stacks/$1" args t first up down out
  args=(-f "$samples_dir/$s/compose.yaml" -f "$dir/override.yaml" --project-directory "$dir")
  [ -f "$samples_dir/$s/.env" ] && args+=(--env-file "$samples_dir/$s/.env")
  if [ "$engine" = berth ]; then
    c() { in_ns "$berth" compose "${args[@]}" "$@"; }
  else
    c() { "$docker_compose" "${args[@]}" "$@"; }
  fi
  log="$work/$s-$engine.log"
  : > "$log"
  step() { # what, command...
    local what=$1; shift
    if ! "$@" >>"$log" 2>&1; then
      echo "stacks: $s on $engine: $what failed; the last of $log:" >&2
      tail -n 40 "$log" >&2
      c logs --no-color >>"$log" 2>&1 || true
      c down -v --rmi local >/dev/null 2>&1 || true
      return 1
    fi
  }
  t=$(ms); step "up" c up -d --wait --wait-timeout 300 || return 1; first=$(( $(ms) - t ))
  step "the checks after the first up" run_check 1 || return 1
  t=$(ms); step "down" c down || return 1; down=$(( $(ms) - t ))
  t=$(ms); step "the second up" c up -d --wait --wait-timeout 300 || return 1; up=$(( $(ms) - t ))
  step "the checks after down and up" run_check 2 || return 1
  # -v: its volumes; --rmi local: the images its builds made (the next run
  # builds them again from the build cache, on the stand-ins as they are).
  step "down -v" c down -v --rmi local || return 1
  # Teardown helpers (a bridge's deletion) may still be finishing: a leak is
  # what is still there after 10 s.
  local deadline=$(( $(date +%s) + 10 ))
  while out=$(leftovers "$s") && [ -n "$out" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if [ -n "$out" ]; then
    echo "stacks: $s on $engine: left behind after down -v:" >&2
    echo "$out" | sed 's/^/  /' >&2
    return 1
  fi
  printf '%-26s %-7s up %6d ms  down %6d ms  (first up, with builds: %d ms)\n' "$s" "$engine" "$up" "$down" "$first"
}

in_ns() { nsenter --net="/run/netns/$ns" "$@"; }
engine=berth
ns=
trap '[ -z "$ns" ] || ip netns del "$ns" 2>/dev/null || true' EXIT
failed=()
: > "$work/results.txt"
for s in "${samples[@]}"; do
  [ -d "$repo/tests/stacks/$s" ] || { echo "stacks: no sample $s in tests/stacks/" >&2; exit 2; }
  # Each sample in a network namespace of its own: its published ports are
  # that namespace's, and what it leaves there is seen.
  ns="berth-stacks-$$-$s"
  ip netns add "$ns"
  in_ns ip link set lo up
  run_sample "$s" | tee -a "$work/results.txt" || failed+=("$s")
  ip netns del "$ns"
  ns=
done

if [ -n "$vs_docker" ]; then
  # Docker Compose v2 on Docker Engine, in a network namespace of its own
  # (bench/lib.sh), with the same stand-in images.
  # shellcheck source=bench/lib.sh
  . "$repo/bench/lib.sh"
  need_packages docker.io python3-pip
  docker_compose=$(compose_v2 "$work")
  export DOCKER_BUILDKIT=0 # the legacy builder: no buildx plugin needed
  engine=docker
  trap 'bench_netns_down "$work"' EXIT
  bench_netns "$work"
  mapfile -t tags < <(awk '!/^#/ && NF { for (i = 3; i <= NF; i++) print $i }' "$images/IMAGES")
  "$berth" save "${tags[@]}" | docker load >/dev/null
  for s in "${samples[@]}"; do
    run_sample "$s" | tee -a "$work/results.txt" || failed+=("$s on docker")
  done
  bench_netns_down "$work"
  trap - EXIT
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "stacks: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "stacks: ${#samples[@]} samples passed"
