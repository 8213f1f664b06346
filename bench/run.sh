#!/usr/bin/env bash
# Authentication hot-path benchmarks for taskgate (see bench/README.md for the figures).
#
#   bash bench/run.sh [--quick] [--duration S] [--rounds N] [--connections N] [--threads N]
#                     [--backends sqlite,postgres] [--pg-url URL] [--rebuild] [--keep]
#
# For each backend it starts a fresh server on a free 127.0.0.1 port with a fresh data
# directory (and, for PostgreSQL, a fresh database it creates and drops with psql),
# bootstraps an org, a project and a rotated prod key over the HTTP API, then measures:
#   1. throughput and p50/p99 latency of /healthz and of /api/v1/auth/credential with the
#      current key, the grace key, a current-key JWT and a grace-key JWT, in interleaved
#      rounds: each round measures every path once, and each path is compared with the
#      baseline of its own round;
#   2. database queries per 1,000 requests of a garbage-key flood (one repeated unknown key,
#      then a fresh random key per request), from taskgate_db_queries_total;
#   3. resident memory idle after bootstrap and at the end of every load run.
# Every load is bounded by wrk's -d and only targets 127.0.0.1.
#
# Options:
#   --quick           3 s loads, 1 s warm-ups, 3 rounds (default: 10 s, 2 s, 5 rounds)
#   --duration S      seconds per load run
#   --rounds N        throughput rounds (every path once per round; default 5)
#   --connections N   wrk connections (default 32); --threads N wrk threads (default 2)
#   --backends LIST   comma-separated, sqlite and/or postgres (default: both)
#   --pg-url URL      a database URL psql can use to CREATE/DROP DATABASE; the server gets the
#                     same URL with the fresh database's name
#                     (default postgres://postgres@127.0.0.1:5432/test)
#   --rebuild         run `cargo build --release -p taskgate` even if the binary exists
#   --keep            keep the work directory (server logs, raw wrk output, metrics)
# Environment: TASKGATE_BIN overrides target/release/taskgate.
set -euo pipefail

ORIG_ARGS="$*"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BIN=${TASKGATE_BIN:-$ROOT/target/release/taskgate}

DURATION=10
WARMUP=2
ROUNDS=5
CONNECTIONS=32
THREADS=2
BACKENDS=sqlite,postgres
PG_URL=postgres://postgres@127.0.0.1:5432/test
REBUILD=0
KEEP=0

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; WARMUP=1; ROUNDS=3 ;;
    --duration) DURATION=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --backends) BACKENDS=$2; shift ;;
    --pg-url) PG_URL=$2; shift ;;
    --rebuild) REBUILD=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/taskgate-bench.XXXXXX")
RESULTS=$WORK/results.jsonl
SERVER_PID=""
ROUND=""
CREATED_DBS=()

# ------------------------------------------------------------------ setup and teardown

cleanup() {
  local status=$?
  stop_server
  for db in "${CREATED_DBS[@]}"; do
    psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 \
      || log "could not drop database $db"
  done
  if [ "$status" -ne 0 ]; then
    # The server's own log usually says why a step failed.
    for f in "$WORK"/server-*.log; do
      [ -f "$f" ] && { log "last lines of $f:"; tail -n 20 "$f" >&2; }
    done
  fi
  if [ "$KEEP" = 1 ] || [ "$status" -ne 0 ]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_tools() {
  command -v curl >/dev/null || die "curl is required"
  command -v python3 >/dev/null || die "python3 is required"
  if ! command -v wrk >/dev/null; then
    log "installing wrk with apt-get"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else
      sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null
    fi
  fi
  if [[ $BACKENDS == *postgres* ]]; then
    command -v psql >/dev/null || die "psql is required for the postgres backend"
    psql "$PG_URL" -qAtc 'select 1' >/dev/null || die "PostgreSQL is not reachable at $PG_URL"
  fi
}

ensure_binary() {
  if [ "$REBUILD" = 1 ] || [ ! -x "$BIN" ]; then
    log "building the release binary (cargo waits if another build holds the lock)"
    (cd "$ROOT" && cargo build --release -p taskgate)
  fi
  [ -x "$BIN" ] || die "no binary at $BIN"
}

# A port the kernel just handed out and released; nothing else on this host races for them.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server BACKEND: sets SERVER_PID, API, DATA_DIR.
start_server() {
  local backend=$1 port extra=()
  port=$(free_port)
  API=http://127.0.0.1:$port
  DATA_DIR=$WORK/data-$backend
  if [ "$backend" = postgres ]; then
    local db="taskgate_bench_$$_$RANDOM"
    psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
    CREATED_DBS+=("$db")
    extra=(--database-url "${PG_URL%/*}/$db")
  fi
  # warn level: per-request logging would measure the logger, not the auth path. The rate
  # limiter runs, with buckets too large to refuse anything (a load of one key at full speed
  # is what a limiter exists to stop); bench/ratelimit.sh measures what it costs.
  extra+=(--api-rate-limit-refill-rate 1000000 --api-rate-limit-interval 1s --api-rate-limit-max 1000000
    --api-rate-limit-jwt-tokens 1000000 --api-rate-limit-jwt-window 1s)
  RUST_LOG=warn TASKGATE_LOG_FORMAT=json \
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$DATA_DIR" "${extra[@]}" \
    >"$WORK/server-$backend.log" 2>&1 &
  SERVER_PID=$!
  local i
  for i in $(seq 1 300); do
    if curl -fsS --max-time 1 "$API/healthz" >/dev/null 2>&1 && [ -s "$DATA_DIR/admin-token" ]; then
      log "$backend server up on $API (pid $SERVER_PID)"
      return
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "the $backend server exited during start-up"
    sleep 0.1
  done
  die "the $backend server did not answer /healthz within 30 s"
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# ------------------------------------------------------------------ HTTP helpers

# api METHOD PATH TOKEN [JSON_BODY]: prints the response body; fails on a non-2xx status.
api() {
  local method=$1 path=$2 token=$3 body=${4:-}
  local args=(-sS --max-time 30 -X "$method" -H "Authorization: Bearer $token" -w '\n%{http_code}')
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -d "$body")
  local out code
  out=$(curl "${args[@]}" "$API$path")
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $code == 2* ]] || die "$method $path answered $code: $out"
  printf '%s' "$out"
}

# json FIELD.PATH: reads one field of the JSON document on stdin.
json() {
  python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v if not isinstance(v,(dict,list,bool)) and v is not None else json.dumps(v))' "$1"
}

snapshot_metrics() { curl -fsS --max-time 10 "$API/metrics" >"$1"; }
total_queries() { awk '/^taskgate_db_queries_total/ { s += $NF } END { printf "%d\n", s }' "$1"; }
proc_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVER_PID/status"; }

random_key() {
  python3 -c 'import secrets,string; a=string.ascii_letters+string.digits; print("tr_prod_"+"".join(secrets.choice(a) for _ in range(24)))'
}

# ------------------------------------------------------------------ bootstrap

# Sets K1 (grace key), K2 (current key), JWT1 (signed with K1), JWT2 (signed with K2).
bootstrap() {
  local admin slug ref rotation
  admin=$(cat "$DATA_DIR/admin-token")
  slug=$(api POST /api/v1/orgs "$admin" '{"title":"Bench"}' | json slug)
  ref=$(api POST "/api/v1/orgs/$slug/projects" "$admin" '{"name":"Bench"}' | json externalRef)
  K1=$(api GET "/api/v1/projects/$ref/prod" "$admin" | json apiKey)
  local claims='{"claims":{"scopes":["read:runs"]},"expirationTime":"2h"}'
  # Minted before the rotation, so it is signed with K1: after the rotation it only verifies
  # through the grace-window fallback.
  JWT1=$(api POST /api/v1/auth/jwt "$K1" "$claims" | json token)
  rotation=$(api POST "/api/v1/projects/$ref/prod/regenerate-api-key" "$admin")
  K2=$(json apiKey <<<"$rotation")
  GRACE_ID=$(json revokedApiKey.id <<<"$rotation")
  JWT2=$(api POST /api/v1/auth/jwt "$K2" "$claims" | json token)

  # Make sure each credential takes the path it is meant to measure: the grace ones must be
  # reported as matched through the revoked key, the current ones must not.
  check_credential "$K2" secretKey ""
  check_credential "$K1" secretKey "$GRACE_ID"
  check_credential "$JWT2" publicJwt ""
  check_credential "$JWT1" publicJwt "$GRACE_ID"
}

check_credential() {
  local token=$1 kind=$2 grace=$3 body
  body=$(api GET /api/v1/auth/credential "$token")
  [ "$(json credential <<<"$body")" = "$kind" ] || die "expected a $kind: $body"
  local got
  got=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("graceKeyId") or "")' <<<"$body")
  [ "$got" = "$grace" ] || die "expected graceKeyId '$grace': $body"
}

# ------------------------------------------------------------------ measurements

# measure BACKEND NAME PATH ROUTE_TEMPLATE [wrk options...]: one bounded wrk run against
# 127.0.0.1, with /metrics snapshots around it; appends one JSON line to $RESULTS.
measure() {
  local backend=$1 name=$2 path=$3 route=$4; shift 4
  local out=$WORK/$backend-$name${ROUND:+-$ROUND} opts=() script_args=()
  # wrk wants its options, then the URL, then `-- script arguments`.
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then shift; script_args=(-- "$@"); break; fi
    opts+=("$1"); shift
  done
  snapshot_metrics "$out.before"
  # timeout: a second bound in case wrk itself hangs on a dead server.
  timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${opts[@]}" \
    "$API$path" "${script_args[@]}" >"$out.wrk" 2>&1 || die "wrk failed for $name: $(tail -n 5 "$out.wrk")"
  # Let requests still in flight when wrk stopped finish, so their queries and statuses land
  # in this run's delta rather than the next one's.
  sleep 0.5
  snapshot_metrics "$out.after"
  python3 "$BENCH_DIR/analyze.py" delta "$out.before" "$out.after" "$route" >"$out.delta"
  python3 "$BENCH_DIR/analyze.py" record "$out.wrk" "$out.delta" "$name" "$backend" \
    "$(proc_kb VmRSS)" "$(proc_kb VmHWM)" ${ROUND:+round=$ROUND} >>"$RESULTS"
  tail -n 1 "$RESULTS" | python3 "$BENCH_DIR/analyze.py" line >&2
}

# warm BACKEND PATH [wrk options...]: short unrecorded load, so the first measured run does
# not pay for cold caches, lazily-grown pools and page faults.
warm() {
  local path=$1; shift
  timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$@" "$API$path" >/dev/null 2>&1 \
    || die "warm-up of $path failed"
}

bench_backend() {
  local backend=$1
  log "=== $backend"
  start_server "$backend"
  bootstrap

  # Idle: let start-up work settle, then sample memory and the background query rate (the
  # scheduler polls the database even with no traffic; the flood figures include it).
  sleep 2
  local idle_rss=$(proc_kb VmRSS) idle_a=$WORK/$backend-idle.a idle_b=$WORK/$backend-idle.b
  snapshot_metrics "$idle_a"; sleep 5; snapshot_metrics "$idle_b"
  python3 - "$BENCH_DIR/analyze.py" "$idle_a" "$idle_b" "$backend" "$idle_rss" >>"$RESULTS" <<'EOF'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("analyze", sys.argv[1]); a = importlib.util.module_from_spec(spec); spec.loader.exec_module(a)
d = a.delta(sys.argv[2], sys.argv[3], "")
print(json.dumps({"name": "meta", "backend": sys.argv[4], "idle_rss_kb": int(sys.argv[5]),
                  "background_queries_per_s": d["queries"] / 5,
                  "background_ops": ", ".join(d["queries_by_op"]) or "none"}))
EOF

  local cred=/api/v1/auth/credential
  log "warm-up (${WARMUP} s per path)"
  warm /healthz
  for t in "$K2" "$K1" "$JWT2" "$JWT1"; do warm "$cred" -H "Authorization: Bearer $t"; done

  # 1. Rounds of back-to-back loads: every path once per round, each compared with the
  #    baseline of its own round, so a machine that drifts over minutes (it is shared) moves
  #    both sides of a ratio together. The order rotates from round to round, so no path
  #    always runs first or right after the same neighbour.
  log "throughput ($ROUNDS rounds, ${DURATION} s per load, -t$THREADS -c$CONNECTIONS)"
  local report=(-s "$BENCH_DIR/wrk/report.lua")
  local names=(baseline current_key grace_key current_jwt grace_jwt)
  local tokens=("" "$K2" "$K1" "$JWT2" "$JWT1")
  local r i k
  for ((r = 1; r <= ROUNDS; r++)); do
    ROUND=$r
    for ((i = 0; i < ${#names[@]}; i++)); do
      k=$(((i + r - 1) % ${#names[@]}))
      if [ -z "${tokens[$k]}" ]; then
        measure "$backend" "${names[$k]}" /healthz /healthz "${report[@]}"
      else
        measure "$backend" "${names[$k]}" "$cred" "$cred" "${report[@]}" \
          -H "Authorization: Bearer ${tokens[$k]}"
      fi
    done
  done
  ROUND=""

  # 2. Garbage keys. One unknown key: after the first lookups it should be answered from the
  #    negative cache. A fresh key per request: each costs a lookup (current, then revoked)
  #    until the negative cache's bound; this run also grows that cache, so it is the one
  #    that should leave the largest resident set.
  log "garbage-key floods (${DURATION} s each)"
  measure "$backend" garbage_one_key "$cred" "$cred" "${report[@]}" -H "Authorization: Bearer $(random_key)"
  measure "$backend" garbage_distinct_keys "$cred" "$cred" -s "$BENCH_DIR/wrk/random-keys.lua" -- "$RANDOM$RANDOM"

  stop_server
}

# ------------------------------------------------------------------ main

need_tools
ensure_binary
log "binary: $BIN ($(date -r "$BIN" '+%F %T')); source: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
IFS=, read -ra backend_list <<<"$BACKENDS"
for b in "${backend_list[@]}"; do
  case "$b" in sqlite|postgres) bench_backend "$b" ;; *) die "unknown backend $b" ;; esac
done

echo
echo "## taskgate auth benchmarks — $(date '+%F %H:%M %Z')"
echo
echo "Command: \`bash bench/run.sh${ORIG_ARGS:+ $ORIG_ARGS}\`; ${DURATION} s per load, wrk -t$THREADS -c$CONNECTIONS;"
echo "host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load generator on the same cores;"
dirty=""
[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=" (with uncommitted changes)"
echo "binary built $(date -r "$BIN" '+%F %T'); source at commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$dirty."
echo
python3 "$BENCH_DIR/analyze.py" summary "$RESULTS"
