#!/usr/bin/env bash
# The real stacks of scripts/stacks.sh (awesome-compose samples on the
# stand-in images: PostgreSQL, MariaDB, Redis, nginx, Apache/PHP, Node.js,
# Python, Prometheus) on berth and on Docker Compose v2.40.3 with Docker
# Engine, in one run: each sample's `up -d --wait` (second up: images built,
# volumes kept) and `down`. Needs root. Writes bench/results/stacks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${BENCH_WORK:-/tmp/berth-bench}"
mkdir -p "$work" bench/results
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_berth
BERTH="$berth" BERTH_STACKS_WORK="${BERTH_STACKS_WORK:-$(pwd)/target/stacks}" scripts/stacks.sh --vs-docker "$@"
python3 - "${BERTH_STACKS_WORK:-$(pwd)/target/stacks}/results.txt" <<'PY' | tee bench/results/stacks.md
import re, sys, subprocess
what = {
    "nginx-flask-mysql": "proxy → Flask → MariaDB; secret, `service_healthy`, 2 networks",
    "nginx-golang-postgres": "nginx (ro bind conf) → backend → PostgreSQL as `postgres`, `_FILE` secret",
    "nextcloud-redis-mariadb": "PHP/Apache app with Redis and MariaDB; segmented networks",
    "wordpress-mysql": "WordPress (Debian's) installed through its page, MariaDB",
    "react-express-mysql": "Express + MariaDB, bind-mounted sources, `npm run`, inspector port",
    "nginx-nodejs-redis": "nginx balancing two Node.js replicas (one context), Redis",
    "postgresql-pgadmin": "PostgreSQL + pgAdmin query tool, `.env` interpolation, container names",
    "prometheus-grafana": "Prometheus as nobody (volume kept), Grafana data-source proxy",
    "fastapi": "FastAPI on uvicorn, `container_name`, built target",
}
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+)\s+(berth|docker)\s+up\s+(\d+) ms\s+down\s+(\d+) ms", line)
    if m:
        rows.setdefault(m[1], {})[m[2]] = (int(m[3]), int(m[4]))
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"# Real stacks: berth vs Docker Compose v2.40.3 on Docker Engine 20.10 ({cores} cores, one run)\n")
print("| sample | what it exercises | berth up / down | Docker Compose up / down | ratio up / down |")
print("|---|---|---|---|---|")
for s, d in rows.items():
    b = d.get("berth"); k = d.get("docker")
    bt = f"{b[0]} / {b[1]} ms" if b else "—"
    kt = f"{k[0]} / {k[1]} ms" if k else "—"
    rt = f"{k[0]/b[0]:.1f}x / {k[1]/b[1]:.1f}x" if b and k else "—"
    print(f"| `{s}` | {what.get(s, '')} | {bt} | {kt} | {rt} |")
PY
