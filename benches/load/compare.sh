#!/usr/bin/env bash
# Runs issue 5's load targets against papo and the peer servers (shared/peers), each server
# started fresh for each run on 127.0.0.1, and appends every run's JSON line to a file.
#
#   benches/load/compare.sh [OUT.jsonl] [RUN-NAME-FILTER]
#
# SERVERS="papo node-ws" limits the servers (default: all); PAPO_REV=REV measures that
# commit of papo (and of the bench) instead of HEAD.
# Peers are installed with their own install.sh into $PEERS_WORK (default /tmp/papo-peers),
# outside the repository. Extra load flags for every run: LOAD_FLAGS="--workers 1".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEERS_SRC=${PEERS_SRC:-$ROOT/../shared/peers}
PEERS_WORK=${PEERS_WORK:-/tmp/papo-peers}
OUT=${1:-$ROOT/target/load-results.jsonl}
FILTER=${2:-}
SERVERS=${SERVERS:-papo node-ws node-socketio flask-seed flask-nodelay}
LOAD_FLAGS=${LOAD_FLAGS:-}

install_peer() { # NAME
  local dir=$PEERS_WORK/$1
  if [ ! -e "$dir/.installed" ]; then
    mkdir -p "$PEERS_WORK"
    rm -rf "$dir" && cp -r "$PEERS_SRC/$1" "$dir" && chmod -R u+w "$dir"
    (cd "$dir" && ./install.sh) && touch "$dir/.installed"
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_peer NAME PORT: starts the peer in the background, prints its pid once it listens.
start_peer() {
  local dir=$PEERS_WORK/$1 port=$2 pid
  case $1 in
    node-ws|node-socketio) (cd "$dir" && exec node server.js "$port") >"$PEERS_WORK/$1.log" 2>&1 & pid=$! ;;
    flask-seed) (cd "$dir" && exec .venv/bin/python app.py "$port") >"$PEERS_WORK/$1.log" 2>&1 & pid=$! ;;
    flask-nodelay) (cd "$PEERS_WORK/flask-seed" && exec .venv/bin/python nodelay.py "$port") >"$PEERS_WORK/$1.log" 2>&1 & pid=$! ;;
  esac
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$pid"; return; fi
    sleep 0.1
  done
  kill "$pid"; echo "peer $1 did not start" >&2; return 1
}

# Builds the bench and papo from a clean export of revision $PAPO_REV (default HEAD), never
# from the work tree, whose uncommitted edits would be measured under the wrong name.
# Every revision gets its own directory; the build cache is shared.
snapshot() {
  local rev src exe
  rev=$(cd "$ROOT" && git rev-parse --short "${PAPO_REV:-HEAD}")
  SNAP=$PEERS_WORK/snapshot-$rev
  REV=$rev
  if [ ! -x "$SNAP/load" ] || [ ! -x "$SNAP/papo" ]; then
    src=$PEERS_WORK/src-$rev
    rm -rf "$src" && mkdir -p "$src" "$SNAP"
    (cd "$ROOT" && git archive "$rev") | tar -x -C "$src"
    # git archive stamps files with the commit's time; cargo would take an older commit's
    # build in the shared target directory as fresh.
    find "$src" -type f -exec touch {} +
    exe=$(cd "$src" && CARGO_TARGET_DIR=$PEERS_WORK/target \
      cargo bench --bench load --no-run --message-format=json -q |
      python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="load" and m.get("executable"): print(m["executable"])')
    cp "$exe" "$SNAP/load" && cp "$PEERS_WORK/target/release/papo" "$SNAP/papo"
    rm -rf "$src"
  fi
}

# run NAME SERVER SCENARIO-FLAGS...: SERVER is papo or a peer name.
run() {
  local name=$1 server=$2; shift 2
  if [ -n "$FILTER" ] && [[ $name != *$FILTER* ]]; then return; fi
  [[ " $SERVERS " == *" $server "* ]] || return 0
  echo "=== $name ($server): $*" >&2
  local line
  if [ "$server" = papo ]; then
    line=$("$SNAP/load" "$@" --papo-bin "$SNAP/papo" $LOAD_FLAGS | tee /dev/stderr | tail -1) || true
  else
    local port pid proto=papo
    case $server in node-socketio|flask-*) proto=socketio ;; esac
    install_peer "${server/flask-nodelay/flask-seed}"
    port=$(free_port)
    pid=$(start_peer "$server" "$port")
    line=$("$SNAP/load" "$@" --url "ws://127.0.0.1:$port" --proto "$proto" --pid "$pid" --label "$server" $LOAD_FLAGS | tee /dev/stderr | tail -1) || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  [[ $line == "{"* ]] || line=null
  echo "{\"run\":\"$name\",\"date\":\"$(date -u +%FT%TZ)\",\"papo_rev\":\"$REV\",\"result\":$line}" >>"$OUT"
}

snapshot
for s in papo node-ws node-socketio; do
  run fanout1000 "$s" fanout --members 1000 --senders 10 --rate 5 --duration 10
done
for s in papo node-ws node-socketio flask-seed flask-nodelay; do
  run fanout100closed "$s" fanout --members 100 --senders 4 --rate 0 --duration 10
done
for s in papo node-ws; do
  run rooms "$s" rooms --rooms 100 --members 10 --rate 5000 --duration 10
  run joinstorm "$s" joinstorm --clients 5000
  run idle10000 "$s" idle --clients 10000 --room-size 100 --duration 10
  # Grows until p95 passes 500 ms or the server (or this machine) refuses connections.
  run shootout "$s" shootout --start 5000 --step 1000 --max 20000
done
echo "results appended to $OUT" >&2
