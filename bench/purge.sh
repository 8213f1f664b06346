#!/usr/bin/env bash
# The hourly purge of error count buckets past the retention, on SQLite.
#
#   bash bench/purge.sh [--runs N] [--old-bin PATH]
#
# Seeds N failed-run occurrences (default 200000) across 10,000 groups and five worker
# versions, spread over the last 30 days, into a fresh SQLite data directory through the
# store (the seed_errors example), then starts the server with `--error-retention-days 7`,
# so everything older than 8 days is past the retention, and prints the purge's log line
# (rows deleted, elapsed). It starts the server a second time on the purged data, which is
# the hourly steady state, and prints that purge's line too. --old-bin PATH does the first
# purge again with another binary on a copy of the same data, to compare (a binary that does
# not log the purge's time is timed by its slow-statement warning, or the server's). Needs
# target/release/taskgate and target/release/examples/seed_errors (both built if missing),
# curl and python3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TASKGATE_BIN:-$ROOT/target/release/taskgate}
SEEDER=$ROOT/target/release/examples/seed_errors
RUNS=200000
OLD_BIN=
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --old-bin) OLD_BIN=$2; shift ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[purge %s] %s\n' "$(date +%T)" "$*" >&2; }
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -q -p taskgate)
[ -x "$SEEDER" ] || (cd "$ROOT" && cargo build --release -q -p taskgate-server --example seed_errors)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/taskgate-purge.XXXXXX")
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

# An environment to seed: made over the HTTP API, as an operator would.
P=$(port)
RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$P" --data-dir "$WORK/data" >"$WORK/setup.log" 2>&1 &
PID=$!
U=http://127.0.0.1:$P
for _ in $(seq 1 300); do
  curl -fsS --max-time 1 "$U/healthz" >/dev/null 2>&1 && [ -s "$WORK/data/admin-token" ] && break
  sleep 0.1
done
A=$(cat "$WORK/data/admin-token")
slug=$(curl -fsS -X POST "$U/api/v1/orgs" -H "Authorization: Bearer $A" \
  -H 'content-type: application/json' -d '{"title":"Bench"}' | json slug)
ref=$(curl -fsS -X POST "$U/api/v1/orgs/$slug/projects" -H "Authorization: Bearer $A" \
  -H 'content-type: application/json' -d '{"name":"Bench"}' | json externalRef)
key=$(curl -fsS "$U/api/v1/projects/$ref/prod" -H "Authorization: Bearer $A" | json apiKey)
env=$(curl -fsS -X POST "$U/api/v1/auth/jwt/claims" -H "Authorization: Bearer $key" | json sub)
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=

log "seeding $RUNS occurrences over 30 days"
"$SEEDER" --database-url "sqlite://$WORK/data/taskgate.db" --env "$env" --runs "$RUNS" \
  --groups 10000 --days 30 --concurrency 1 >&2
[ -z "$OLD_BIN" ] || cp -r "$WORK/data" "$WORK/old"

# purge BIN DIR LABEL: starts the server, waits for its purge (up to 10 minutes), stops it.
N=0
purge() {
  local bin=$1 dir=$2 label=$3 out
  N=$((N + 1))
  out=$WORK/purge-$N.log
  : >"$out"
  RUST_LOG=info,sqlx=warn,taskgate_server::jobs::errors=debug "$bin" serve \
    --listen "127.0.0.1:$(port)" --data-dir "$dir" --error-retention-days 7 >"$out" 2>&1 &
  PID=$!
  local started
  started=$(date +%s%N)
  for _ in $(seq 1 1200); do
    grep -q "error count buckets" "$out" && break
    sleep 0.5
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  echo "$label (server up to the line: $((($(date +%s%N) - started) / 1000000)) ms):"
  grep -E "error count buckets|slow statement|time to acquire" "$out" \
    | sed -E 's/db\.statement="[^"]*" //; s/^[^ ]+ +//' | cut -c1-240 || echo "  (no purge line)"
}

echo "error counts: $(sqlite3 "$WORK/data/taskgate.db" 'SELECT count(*) FROM error_counts' 2>/dev/null || echo '?') rows"
purge "$BIN" "$WORK/data" "first purge"
purge "$BIN" "$WORK/data" "steady state (nothing left past the retention)"
[ -z "$OLD_BIN" ] || purge "$OLD_BIN" "$WORK/old" "first purge, $OLD_BIN"
