#!/usr/bin/env bash
# papo's HTTP side beside the static-file peers (issue 11, item 5), side by side in one run:
# wrk keep-alive load (-t1 -c50 -d5s unless told) on (a) GET /healthz and (b) GET /app.js
# against papo, nginx and Node serve-static (../shared/peers/static-files), a few rounds,
# and the medians of requests/s and p99 latency per server and target.
#
# Usage: benches/http.sh [--rounds N] [--duration 5s] [--connections 50] [--papo BIN]
#                        [--peers DIR] [--jpeg FILE]
#   --papo BIN   the papo binary (default: the release build, built if missing)
#   --peers DIR  the static-files peers (default /work/shared/peers/static-files; run its
#                install.sh first: nginx-light and serve-static)
#   --jpeg FILE  adds (c) GET of a file (a ~200 KB JPEG): nginx and Node serve FILE from
#                disk; papo gets it through POST /api/files (as a fresh account) and serves
#                GET /files/ID. Skipped, with a message, while papo's /api/files answers 404.
#
# Everything listens on 127.0.0.1 only, and every server this script starts is stopped when
# it ends. wrk shares the machine with the servers: on 2 cores the load generator takes one.
set -euo pipefail

rounds=3 duration=5s connections=50 papo="" peers=/work/shared/peers/static-files jpeg=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --papo) papo=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --jpeg) jpeg=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the head of $0)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "$papo" ]; then
  papo=$target/release/papo
  [ -x "$papo" ] || (cd "$root" && cargo build --release)
fi
command -v wrk >/dev/null || { echo "wrk is not installed (Debian package wrk)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx missing: run $peers/install.sh" >&2; exit 1; }
[ -d "$peers/node_modules" ] || { echo "serve-static missing: run $peers/install.sh" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The peers serve the same page files papo embeds, from disk.
mkdir -p "$work/www"
cp "$root"/ui/* "$work/www/"
[ -z "$jpeg" ] || cp "$jpeg" "$work/www/photo.jpg"
# nginx's workers run as another user when started by root: let them read the folder.
chmod 755 "$work" "$work/www"
chmod 644 "$work"/www/*

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
papo_port=$(free_port) nginx_port=$(free_port) node_port=$(free_port)

"$papo" --host 127.0.0.1 --port "$papo_port" --db :memory: --log-level warn >"$work/papo.log" 2>&1 &
pids+=($!)
"$peers/run-nginx.sh" "$nginx_port" "$work/www" >"$work/nginx.log" 2>&1 &
pids+=($!)
node "$peers/server.js" "$node_port" "$work/www" >"$work/node.log" 2>&1 &
pids+=($!)

for port in "$papo_port" "$nginx_port" "$node_port"; do
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && continue 2
    sleep 0.1
  done
  echo "nothing answers on port $port; logs in $work" >&2
  cat "$work"/*.log >&2
  exit 1
done

# name, path on papo, path on the peers
targets=("healthz /healthz /healthz" "app.js /app.js /app.js")
if [ -n "$jpeg" ]; then
  base="http://127.0.0.1:$papo_port"
  curl -fs -c "$work/jar" -H 'Content-Type: application/json' \
    -d '{"name":"benchuser","password":"bench-password-123"}' "$base/api/register" >/dev/null
  status=$(curl -s -o "$work/upload.json" -w '%{http_code}' -b "$work/jar" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$jpeg" \
    "$base/api/files?name=photo.jpg")
  case "$status" in
    201)
      id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/upload.json")
      targets+=("file /files/$id /photo.jpg") ;;
    404) echo "(c) skipped: papo has no /api/files yet (404)" >&2 ;;
    *) echo "(c) skipped: the upload answered $status: $(cat "$work/upload.json")" >&2 ;;
  esac
fi

echo "# $(date -u +%FT%TZ) $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# wrk -t1 -c$connections -d$duration --latency, $rounds rounds"
: >"$work/results"
for round in $(seq "$rounds"); do
  for t in "${targets[@]}"; do
    read -r name papo_path peer_path <<<"$t"
    for server in papo nginx node; do
      case $server in
        papo) url="http://127.0.0.1:$papo_port$papo_path" ;;
        nginx) url="http://127.0.0.1:$nginx_port$peer_path" ;;
        node) url="http://127.0.0.1:$node_port$peer_path" ;;
      esac
      out=$(wrk -t1 -c"$connections" -d"$duration" --latency "$url")
      rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
      p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
      errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
      echo "round $round $name $server: $rps req/s, p99 $p99 ${errors}" >&2
      echo "$name $server $rps $p99" >>"$work/results"
    done
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$work/results" <<'EOF'
import statistics, sys
def ms(text):
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)
rows = {}
for line in open(sys.argv[1]):
    name, server, rps, p99 = line.split()
    rows.setdefault((name, server), []).append((float(rps), ms(p99)))
print(f"{'target':<8} {'server':<6} {'req/s (median)':>15} {'p99 ms (median)':>16}")
for (name, server), runs in rows.items():
    rps = statistics.median(r for r, _ in runs)
    p99 = statistics.median(p for _, p in runs)
    print(f"{name:<8} {server:<6} {rps:>15,.0f} {p99:>16.2f}")
EOF
