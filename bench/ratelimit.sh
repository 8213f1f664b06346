#!/usr/bin/env bash
# The API rate limiter's cost on the authenticated hot path.
#
#   bash bench/ratelimit.sh [--duration S] [--rounds N] [--redis-url URL]
#                           [--pin | --paired [--against-healthz] [--jwt]]
#
# Starts three taskgate servers on SQLite, alike but for the limiter:
#   off      --api-rate-limit false
#   local    the limiter with in-process buckets
#   redis    the limiter with buckets in Redis (--redis-url, default redis://127.0.0.1:6379)
# The two limited servers get buckets too large to ever refuse (1000000 a second), so every
# request pays for the limiter and none is refused. Each round loads `GET /api/v1/auth/credential`
# with a secret key on each server in turn (the order rotates between rounds), with wrk, and
# divides the limited servers' req/s by the unlimited one's of the same round. It also reads
# each server's CPU time (user + system, from /proc) around every load and divides it by the
# requests served: the server's own cost per request, apart from wrk's share of the cores,
# whose ratio (off's over the limited server's) is what the limiter leaves of the throughput
# the server alone would allow. Prints each round's ratios of both kinds and their medians.
#
# --pin runs every server on CPU 0 and wrk (one thread) on CPU 1, so the load generator does
# not compete with the server for a core (on a two-core machine, unpinned rounds swing by
# ±10 %). --paired (which pins) instead loads the unlimited and the in-process servers at the
# same time, both servers on CPU 0 and a wrk for each on CPU 1, so that a round's ratio is
# not moved by the machine getting faster or slower between loads; Redis is left out.
# With --paired, --against-healthz loads the unlimited server's /healthz instead (the
# baseline of run.sh, which no limiter counts), so the ratio is an authenticated, limited
# request's cost against the cheapest request the server answers; --jwt sends a public JWT
# minted with the server's key instead of the key.
#
# Needs wrk (installed with apt-get if missing), curl, python3, redis-cli, and a release
# binary (built if missing; TASKGATE_BIN picks another).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TASKGATE_BIN:-$ROOT/target/release/taskgate}
DURATION=10
ROUNDS=5
CONNECTIONS=32
THREADS=2
REDIS_URL=redis://127.0.0.1:6379
PIN=0
PAIRED=0
AGAINST_HEALTHZ=0
JWT=0
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --redis-url) REDIS_URL=$2; shift ;;
    --quick) DURATION=3; ROUNDS=3 ;;
    --pin) PIN=1 ;;
    --paired) PAIRED=1; PIN=1 ;;
    --against-healthz) AGAINST_HEALTHZ=1 ;;
    --jwt) JWT=1 ;;
    -h|--help) sed -n 2,31p "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[ratelimit %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$PAIRED" = 1 ] || [ "$AGAINST_HEALTHZ$JWT" = 00 ] || die "--against-healthz and --jwt go with --paired"

command -v wrk >/dev/null || {
  log "installing wrk with apt-get"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; else sudo apt-get install -y -qq wrk >/dev/null; fi
}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p taskgate)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/taskgate-ratelimit.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

SERVER_CPU=() LOAD_CPU=()
if [ "$PIN" = 1 ]; then
  [ "$(nproc)" -ge 2 ] || die "--pin needs two CPUs"
  SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1) THREADS=1
fi

declare -A URL KEY PID TOKEN ROUTE
CREDENTIAL=/api/v1/auth/credential
BIG=(--api-rate-limit-refill-rate 1000000 --api-rate-limit-interval 1s --api-rate-limit-max 1000000
  --api-rate-limit-jwt-tokens 1000000 --api-rate-limit-jwt-window 1s)

start() {
  local name=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  RUST_LOG=warn "${SERVER_CPU[@]}" "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  PID[$name]=$!
  URL[$name]=http://127.0.0.1:$port
  for _ in $(seq 1 300); do
    curl -fsS --max-time 1 "${URL[$name]}/healthz" >/dev/null 2>&1 && [ -s "$WORK/$name/admin-token" ] && break
    sleep 0.1
  done
  local admin slug ref
  admin=$(cat "$WORK/$name/admin-token")
  slug=$(curl -fsS -X POST "${URL[$name]}/api/v1/orgs" -H "Authorization: Bearer $admin" \
    -H 'content-type: application/json' -d '{"title":"Bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["slug"])')
  ref=$(curl -fsS -X POST "${URL[$name]}/api/v1/orgs/$slug/projects" -H "Authorization: Bearer $admin" \
    -H 'content-type: application/json' -d '{"name":"Bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["externalRef"])')
  KEY[$name]=$(curl -fsS "${URL[$name]}/api/v1/projects/$ref/prod" -H "Authorization: Bearer $admin" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')
  # What each load sends, and where: the key, to the credential route, unless --paired says
  # otherwise below.
  TOKEN[$name]=${KEY[$name]}
  ROUTE[$name]=$CREDENTIAL
  log "$name server up on ${URL[$name]}"
}

start off --api-rate-limit false
start local "${BIG[@]}"
start redis "${BIG[@]}" --redis-url "$REDIS_URL"
# The Redis server's buckets must be in Redis: its key's bucket appears there after a request.
sleep 1
curl -fsS -o /dev/null "${URL[redis]}/api/v1/auth/credential" -H "Authorization: Bearer ${KEY[redis]}"
redis-cli -u "$REDIS_URL" --scan --pattern 'taskgate:ratelimit:*' | grep -q . \
  || die "the redis server keeps no bucket in Redis at $REDIS_URL: $(tail -n 3 "$WORK/redis.log")"
# The limited servers must answer with the limiter's headers, the unlimited one without.
curl -fsS -D - -o /dev/null "${URL[local]}/api/v1/auth/credential" -H "Authorization: Bearer ${KEY[local]}" | grep -qi '^x-ratelimit-limit' \
  || die "the local server does not rate-limit"
if curl -fsS -D - -o /dev/null "${URL[off]}/api/v1/auth/credential" -H "Authorization: Bearer ${KEY[off]}" | grep -qi '^x-ratelimit-limit'; then
  die "the unlimited server rate-limits"
fi

# CPU time (user + system) the server NAME has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/${PID[$1]}/stat"; }

load() { # load NAME SECONDS: prints req/s, non-2xx count and the server's CPU µs per request
  local name=$1 secs=$2 out before after
  before=$(cpu_ticks "$name")
  out=$(timeout $((secs + 60)) "${LOAD_CPU[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" \
    -H "Authorization: Bearer ${TOKEN[$name]}" "${URL[$name]}${ROUTE[$name]}")
  after=$(cpu_ticks "$name")
  local rps non2xx requests
  rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  requests=$(awk '/requests in/ { print $1 }' <<<"$out")
  echo "$rps ${non2xx:-0} $(python3 -c "import sys; t, n, hz = map(int, sys.argv[1:]); print(round(t / hz * 1e6 / max(n, 1), 3))" \
    $((after - before)) "$requests" "$(getconf CLK_TCK)")"
}

# summarize FILE: a tab-separated rounds file (a header, then one line per round) as a
# markdown table, with each column's median (ratios, whose header has a ` / `, in bold).
summarize() {
  python3 - "$1" <<'EOF'
import statistics, sys
lines = open(sys.argv[1]).read().splitlines()
head, rows = lines[0].split("\t"), [l.split("\t") for l in lines[1:]]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in rows:
    print("| " + " | ".join(r) + " |")
medians = []
for i, name in enumerate(head[1:], start=1):
    m = statistics.median(float(r[i]) for r in rows)
    medians.append(f"**{m:.3f}**" if " / " in name else f"{m:.2f}" if m < 1000 else f"{m:.0f}")
print("| **median** | " + " | ".join(medians) + " |")
EOF
}

if [ "$PAIRED" = 1 ]; then
  # Both servers share CPU 0 and are loaded at once, each by its own wrk on CPU 1: whatever
  # the machine does to one round's speed, it does to both, and the scheduler gives each
  # server half the core, so the ratio of their req/s is the ratio of their costs.
  half=$((CONNECTIONS / 2))
  A=off B=in-process A_WHAT="\`GET $CREDENTIAL\` with a secret key" B_WHAT="the same"
  if [ "$AGAINST_HEALTHZ" = 1 ]; then
    ROUTE[off]=/healthz A="/healthz (off)" A_WHAT="\`GET /healthz\`" B_WHAT="\`GET $CREDENTIAL\` with a secret key"
  fi
  if [ "$JWT" = 1 ]; then
    # A public JWT, minted by each server loaded on the credential route.
    for n in off local; do
      [ "${ROUTE[$n]}" = "$CREDENTIAL" ] || continue
      TOKEN[$n]=$(curl -fsS -X POST "${URL[$n]}/api/v1/auth/jwt" -H "Authorization: Bearer ${KEY[$n]}" \
        -H 'content-type: application/json' -d '{"claims":{"scopes":["read:runs"]},"expirationTime":"2h"}' \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    done
    A_WHAT=${A_WHAT/with a secret key/with a public JWT} B_WHAT=${B_WHAT/with a secret key/with a public JWT}
  fi
  for n in off local; do load "$n" 2 >/dev/null; done
  printf 'round\t%s req/s\t%s req/s\t%s / %s\t%s µs/request\t%s µs/request\tby server CPU: %s / %s\n' \
    "$A" "$B" "$B" "$A" "$A" "$B" "$B" "$A" >"$WORK/rounds"
  for r in $(seq 1 "$ROUNDS"); do
    loads=()
    declare -A BEFORE=()
    order=(off local)
    # Which wrk starts first alternates between rounds.
    [ $((r % 2)) = 0 ] && order=(local off)
    for n in "${order[@]}"; do BEFORE[$n]=$(cpu_ticks "$n"); done
    for n in "${order[@]}"; do
      timeout $((DURATION + 60)) taskset -c 1 wrk -t1 -c"$half" -d"${DURATION}s" \
        -H "Authorization: Bearer ${TOKEN[$n]}" "${URL[$n]}${ROUTE[$n]}" >"$WORK/paired-$n" &
      loads+=($!)
    done
    wait "${loads[@]}"
    if grep -q Non-2xx "$WORK/paired-off" "$WORK/paired-local"; then die "answers were not 2xx"; fi
    # Each server's req/s, requests, and CPU ticks over the round.
    args=()
    for n in off local; do
      args+=($(awk '/^Requests\/sec/ { r = $2 } /requests in/ { n = $1 } END { print r, n }' "$WORK/paired-$n"))
      args+=($(($(cpu_ticks "$n") - BEFORE[$n])))
    done
    python3 - "$r" "$(getconf CLK_TCK)" "${args[@]}" >>"$WORK/rounds" <<'EOF'
import sys
r, hz, o_rps, o_n, o_t, l_rps, l_n, l_t = sys.argv[1:]
hz = int(hz)
o_us = int(o_t) / hz * 1e6 / max(int(o_n), 1)
l_us = int(l_t) / hz * 1e6 / max(int(l_n), 1)
print(r, f"{float(o_rps):.0f}", f"{float(l_rps):.0f}", round(float(l_rps) / float(o_rps), 3),
      f"{o_us:.2f}", f"{l_us:.2f}", round(o_us / l_us, 3), sep="\t")
EOF
    log "round $r: $(tail -n 1 "$WORK/rounds")"
  done
  echo
  FLAGS=""; [ "$AGAINST_HEALTHZ" = 1 ] && FLAGS+=" --against-healthz"; [ "$JWT" = 1 ] && FLAGS+=" --jwt"
  echo "Command: \`bash bench/ratelimit.sh --duration $DURATION --rounds $ROUNDS --paired$FLAGS\`; the off and in-process servers on CPU 0, loaded at once by two wrk -t1 -c$half on CPU 1, SQLite; $A_WHAT on the off server, $B_WHAT on the in-process one."
  echo
  summarize "$WORK/rounds"
  exit 0
fi

names=(off local redis)
for n in "${names[@]}"; do load "$n" 2 >/dev/null; done
printf 'round\toff req/s\tin-process req/s\tRedis req/s\tin-process / off\tRedis / off\toff µs/request\tin-process µs/request\tRedis µs/request\tby server CPU: in-process / off\tby server CPU: Redis / off\n' >"$WORK/rounds"
bad=0
for r in $(seq 1 "$ROUNDS"); do
  declare -A RPS=() US=()
  for i in 0 1 2; do
    n=${names[$(((i + r) % 3))]}
    read -r rps non2xx us < <(load "$n" "$DURATION")
    RPS[$n]=$rps
    US[$n]=$us
    bad=$((bad + non2xx))
  done
  python3 - "$r" "${RPS[off]}" "${RPS[local]}" "${RPS[redis]}" "${US[off]}" "${US[local]}" "${US[redis]}" >>"$WORK/rounds" <<'EOF'
import sys
r = sys.argv[1]
o, l, d, ou, lu, du = map(float, sys.argv[2:])
print(r, f"{o:.0f}", f"{l:.0f}", f"{d:.0f}", round(l / o, 3), round(d / o, 3),
      f"{ou:.2f}", f"{lu:.2f}", f"{du:.2f}", round(ou / lu, 3), round(ou / du, 3), sep="\t")
EOF
  log "round $r: $(tail -n 1 "$WORK/rounds")"
done
[ "$bad" = 0 ] || die "$bad answers were not 2xx"

echo
PINNED=""; [ "$PIN" = 1 ] && PINNED=" --pin"
echo "Command: \`bash bench/ratelimit.sh --duration $DURATION --rounds $ROUNDS$PINNED\`; wrk -t$THREADS -c$CONNECTIONS, SQLite, \`GET /api/v1/auth/credential\` with a secret key."
echo
# The server's own CPU time per request (user + system, from /proc): its ratio (off's time
# over the limited server's) is the throughput the server alone would allow.
summarize "$WORK/rounds"
