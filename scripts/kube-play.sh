#!/usr/bin/env bash
# Runs examples/compose/shop as `berth compose convert --kubernetes` makes
# it, on a local engine that consumes Kubernetes manifests: Debian's podman
# (`podman kube play`, runc), with the shop's images built by berth and
# loaded there. It passes when the front answers through its published port
# with the row the migration wrote, and when no main container started
# before the dependency its init container waits for was published.
#
# podman is not a cluster; what the manifests ask of one, this script does,
# and each stand-in is printed as it is applied:
#   - podman has no Services, no endpoints controller and no API server.
#     Each workload is played on one network of its own; once its pod is
#     ready (running, and its readiness probe passing, run here with
#     `podman exec` as the kubelet runs it: podman 4.3 joins an exec probe's
#     words into one shell line, which breaks `sh -c SCRIPT`) the script gives
#     the pod its service's name there — as Kubernetes publishes only ready
#     endpoints — so the init containers' name waits hold until then.
#   - The init container that waits for a Job with `kubectl wait` needs the
#     API: it is left out, and the script plays that workload once the Job's
#     pod has exited 0.
#   - Kinds podman 4.3 does not play (Job, Service, NetworkPolicy and the
#     waiter's RBAC) are a Pod (a Job's template with its restart policy) or
#     skipped; Deployments are Pods restarting on failure (podman 4.3 restarts
#     an init container with its pod's policy, so `Always` never gets past
#     it); the published Service's port is a hostPort.
# Everything runs in a network namespace the script makes; traffic goes to
# 127.0.0.1 there only. Needs root; no internet (packages from the
# distribution mirror apt uses).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "error: scripts/kube-play.sh needs root (containers, a network namespace)" >&2
  exit 1
fi
need=()
for p in podman catatonit python3-yaml iproute2; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked --quiet
berth="$(pwd)/target/x86_64-unknown-linux-gnu/release/berth"
stack=examples/compose/shop/compose.yaml
work=$(mktemp -d /tmp/berth-kube-play.XXXXXX)
export BERTH_ROOT="$work/berth"
# podman's default rlimits are above what a process without
# CAP_SYS_RESOURCE may set here.
export CONTAINERS_CONF="$work/containers.conf"
printf '[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n' > "$CONTAINERS_CONF"
ns="berth-kube-play-$$"
net=shop
port=18080
# podman 4.3 keeps its DNS responder's state host-wide
# (/run/containers/networks): the script's podman runs in a mount
# namespace of its own with a tmpfs there, so it neither sees nor signals
# another podman's responder.
mnt="$work/ns/mnt"
pod() {
  nsenter --net="/run/netns/$ns" --mount="$mnt" podman --root "$work/podman" --runroot "$work/podman-run" \
    --network-config-dir "$work/networks" --runtime runc --log-level error "$@"
}
cleanup() {
  if [ -e "$mnt" ]; then
    pod pod rm -f -a -t 0 >/dev/null 2>&1 || true
    pod system reset -f >/dev/null 2>&1 || true
    umount "$mnt" 2>/dev/null || true
  fi
  umount "$work/ns" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$work/ns" /run/containers/networks
mount --bind "$work/ns" "$work/ns"
mount --make-private "$work/ns"
touch "$mnt"
unshare --mount="$mnt" --propagation private mount -t tmpfs tmpfs /run/containers/networks

echo "== the shop's images, built by berth and loaded into podman"
scripts/example-images.sh "$berth" >/dev/null
SHOP_PORT=$port "$berth" compose -f "$stack" build > "$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; exit 1; }
images=(localhost/busybox:latest)
"$berth" tag busybox:latest localhost/busybox:latest
for s in web api db migrate; do
  "$berth" tag "shop-$s" "localhost/shop-$s:latest"
  images+=("localhost/shop-$s:latest")
done
"$berth" save "${images[@]}" | pod load -q >/dev/null
pod images --format '{{.Repository}}:{{.Tag}}'

echo "== berth compose convert --kubernetes"
SHOP_PORT=$port "$berth" compose -f "$stack" convert --kubernetes --registry localhost \
  --wait-image localhost/busybox:latest -o "$work/k8s"
ls "$work/k8s"

echo "== what podman 4.3 cannot play, stood in for"
mkdir -p "$work/play"
python3 - "$work/k8s" "$work/play" <<'PY'
import json, os, sys, yaml
src, out = sys.argv[1], sys.argv[2]
docs = []
for f in sorted(os.listdir(src)):
    docs += [d for d in yaml.safe_load_all(open(os.path.join(src, f))) if d]
SERVICE = "com.docker.compose.service"
host_ports = {}  # service -> {targetPort: port}
for d in docs:
    if d["kind"] == "Service" and d["spec"].get("type") in ("NodePort", "LoadBalancer"):
        svc = d["spec"]["selector"][SERVICE]
        for p in d["spec"]["ports"]:
            host_ports.setdefault(svc, {})[p["targetPort"]] = p["port"]
            print(f"  Service {d['metadata']['name']}: port {p['port']} -> a hostPort of {svc}'s port {p['targetPort']}")
shared, plan = [], []
for d in docs:
    kind, name = d["kind"], d["metadata"]["name"]
    if kind in ("Secret", "PersistentVolumeClaim", "ConfigMap"):
        shared.append(d)
        continue
    if kind in ("Service", "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding"):
        print(f"  {kind} {name}: skipped (podman kube play has no {kind})")
        continue
    if kind not in ("Deployment", "Job"):
        sys.exit(f"error: {kind} {name}: this script does not stand in for it")
    if kind == "Deployment" and d["spec"].get("replicas", 1) != 1:
        sys.exit(f"error: Deployment {name}: only one replica is played")
    template = d["spec"]["template"]
    spec = template["spec"]
    if kind == "Deployment":
        spec["restartPolicy"] = "OnFailure"
        print(f"  Deployment {name}: a Pod restarting on failure")
    else:
        print(f"  Job {name}: a Pod of its template (restartPolicy {spec.get('restartPolicy')})")
    jobs, waits = [], []
    kept = []
    for c in spec.get("initContainers", []):
        cmd = c.get("command", [])
        if cmd[:2] == ["kubectl", "wait"]:
            job = next(a.split("/", 1)[1] for a in cmd if a.startswith("job/"))
            jobs.append(job)
            print(f"  {name}: init container {c['name']} (kubectl wait) left out; played once Job {job} completed")
        else:
            kept.append(c)
            if c["name"].startswith("wait-for-"):
                waits.append(c["name"][len("wait-for-"):])
    if kept:
        spec["initContainers"] = kept
    else:
        spec.pop("initContainers", None)
    spec.pop("serviceAccountName", None)
    service = template["metadata"]["labels"][SERVICE]
    probed = []
    for c in spec["containers"]:
        for p in c.get("ports", []):
            hp = host_ports.get(service, {}).get(p["containerPort"])
            if hp:
                p["hostPort"] = hp
        probe = c.get("readinessProbe", {}).get("exec")
        if probe:
            probed.append(c["name"])
            with open(os.path.join(out, f"probe-{name}-pod-{c['name']}"), "w") as f:
                f.write("\n".join(probe["command"]) + "\n")
    # Not the service's name: podman gives a pod's name to the network at
    # once, and the name must resolve only once the pod is ready.
    name = f"{name}-pod"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": template["metadata"]["labels"]},
           "spec": spec}
    path = os.path.join(out, f"{name}.yaml")
    yaml.safe_dump(pod, open(path, "w"))
    plan.append({"pod": name, "file": path, "service": service, "job": kind == "Job",
                 "jobs": jobs, "waits": waits, "probed": probed,
                 "containers": [c["name"] for c in spec["containers"]]})
yaml.safe_dump_all(shared, open(os.path.join(out, "shared.yaml"), "w"))
json.dump(plan, open(os.path.join(out, "plan.json"), "w"), indent=1)
PY

echo "== podman kube play"
pod network create "$net" >/dev/null
pod kube play --network "$net" "$work/play/shared.yaml" >/dev/null
# One line per pod: name, service, Jobs it waits for, services its init
# containers wait for, probed containers, containers, whether a Job.
python3 -c "import json,sys; [print(e['pod'], e['service'], ','.join(e['jobs']) or '-', ','.join(e['waits']) or '-', ','.join(e['probed']) or '-', ','.join(e['containers']), int(e['job'])) for e in json.load(open(sys.argv[1]))]" "$work/play/plan.json" > "$work/plan.txt"
declare -A played=() published=() done_job=() held=()
state() { pod inspect "$1" --format '{{.State.Status}} {{.State.ExitCode}}' 2>/dev/null || echo "absent 0"; }
publish() { # pod service
  local infra
  infra=$(pod pod inspect "$1" --format '{{.InfraContainerID}}')
  pod network disconnect "$net" "$infra" >/dev/null
  pod network connect --alias "$2" "$net" "$infra" >/dev/null
  published[$2]=1
  echo "  $1 ready: the name $2 now resolves"
}
answer=""
deadline=$(( $(date +%s) + ${KUBE_PLAY_TIMEOUT:-180} ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  while read -r p svc jobs waits probed containers is_job; do
    if [ -z "${played[$p]:-}" ]; then
      ok=1
      for j in ${jobs//,/ }; do [ "$j" = - ] || [ -n "${done_job[$j]:-}" ] || ok=0; done
      if [ "$ok" = 1 ]; then
        # kube play returns once the pod's init containers are done: in
        # the background, so the others can be played meanwhile.
        pod kube play --network "$net" "$work/play/$p.yaml" > "$work/play/$p.log" 2>&1 &
        played[$p]=$!
        echo "  playing $p"
      fi
      continue
    fi
    if [ "${played[$p]}" != done ] && ! kill -0 "${played[$p]}" 2>/dev/null; then
      if ! wait "${played[$p]}"; then
        echo "error: podman kube play of $p failed:" >&2
        cat "$work/play/$p.log" >&2
        exit 1
      fi
      played[$p]=done
    fi
    # Did a main container start before what it waits for was published?
    for w in ${waits//,/ }; do
      [ "$w" = - ] && continue
      for c in ${containers//,/ }; do
        read -r st _ <<< "$(state "$p-$c")"
        if [ -z "${published[$w]:-}" ]; then
          if [ "$st" = running ] || [ "$st" = exited ]; then
            echo "error: $p-$c started before $w was ready: its init container did not hold it" >&2
            exit 1
          fi
          [ -n "${held[$p/$w]:-}" ] || { held[$p/$w]=1; echo "  $p held by its init container until $w is ready"; }
        fi
      done
    done
    if [ "$is_job" = 1 ]; then
      read -r st code <<< "$(state "$p-${containers%%,*}")"
      if [ "$st" = exited ] && [ -z "${done_job[${p%-pod}]:-}" ]; then
        [ "$code" = 0 ] || { echo "error: Job $p failed (exit $code)" >&2; pod logs "$p-${containers%%,*}" >&2 || true; exit 1; }
        done_job[${p%-pod}]=1
        echo "  Job $p completed"
      fi
      continue
    fi
    [ -n "${published[$svc]:-}" ] && continue
    ready=1
    for c in ${containers//,/ }; do
      read -r st _ <<< "$(state "$p-$c")"
      [ "$st" = running ] || ready=0
    done
    # The readiness probe, run as the kubelet runs an exec probe.
    for c in ${probed//,/ }; do
      [ "$c" = - ] || [ "$ready" = 0 ] || {
        mapfile -t probe < "$work/play/probe-$p-$c"
        pod exec "$p-$c" "${probe[@]}" >/dev/null 2>&1 || ready=0
      }
    done
    [ "$ready" = 1 ] && publish "$p" "$svc"
  done < "$work/plan.txt"
  answer=$(nsenter --net="/run/netns/$ns" python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' \
    "http://127.0.0.1:$port/cgi-bin/api" 2>/dev/null || true)
  if printf '%s\n' "$answer" | grep -qx 'item: banana'; then
    break
  fi
  sleep 0.5
done
pod ps -a --format '{{.Names}} {{.Status}}'
echo "== the front, through its published port: http://127.0.0.1:$port/cgi-bin/api"
printf '%s\n' "$answer"
if ! printf '%s\n' "$answer" | grep -qx 'item: banana'; then
  echo "error: the converted shop did not answer through web → api → db on podman" >&2
  while read -r p _; do pod pod logs "$p" >&2 2>&1 || true; done < "$work/plan.txt"
  exit 1
fi
[ "${#held[@]}" -gt 0 ] || { echo "error: no init container was seen holding its pod" >&2; exit 1; }
echo "== the converted shop answered on podman kube play; ${#held[@]} init-container waits held"
