#!/usr/bin/env bash
# Instructions per request of each authentication path, counted by valgrind's callgrind.
#
#   bash bench/callgrind.sh [--requests N] [--keep] [--limiter on|off] [--database-url URL]
#
# Starts one taskgate server (SQLite, fresh data directory, 127.0.0.1 only; or the empty
# PostgreSQL database --database-url names, which it leaves behind) under
# `valgrind --tool=callgrind`, bootstraps an org, a project and a rotated prod key over the
# HTTP API as run.sh does, then sends N sequential keep-alive requests (default 3000) on each
# path: /healthz, /api/v1/auth/credential with the current key, with the grace key and with
# a current-key JWT. Counters are zeroed before and dumped after each path, so every figure
# covers that path's requests only (plus whatever the server's background tasks did
# meanwhile, which is small next to N requests).
#
# Instruction counts do not depend on what else the machine is doing, so unlike wrk's
# throughput they can be compared between runs and machines of the same architecture.
# valgrind hides the CPU's SHA extensions, so SHA-256 runs in software here and costs more
# than it does natively (about 3,500 instructions per 32-byte key).
#
# The API rate limiter is on (--limiter on, the default) with a bucket too large to ever
# refuse, so every request pays for it and none is refused; --limiter off measures the same
# paths with `--api-rate-limit false`.
#
# --keep keeps the callgrind profiles (callgrind_annotate FILE shows where the time goes).
# Environment: TASKGATE_BIN overrides target/release/taskgate.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BIN=${TASKGATE_BIN:-$ROOT/target/release/taskgate}
N=3000
KEEP=0
LIMITER=on
DB_ARGS=()
BACKEND=SQLite
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) N=$2; shift ;;
    --keep) KEEP=1 ;;
    --limiter) LIMITER=$2; shift ;;
    --database-url) DB_ARGS=(--database-url "$2"); BACKEND=PostgreSQL; shift ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[callgrind %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v valgrind >/dev/null || die "valgrind is required"
command -v callgrind_control >/dev/null || die "callgrind_control (valgrind) is required"
command -v python3 >/dev/null || die "python3 is required"
if [ ! -x "$BIN" ]; then
  log "building the release binary"
  (cd "$ROOT" && cargo build --release -p taskgate)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/taskgate-callgrind.XXXXXX")
VG_PID=""
cleanup() {
  local status=$?
  if [ -n "$VG_PID" ]; then kill "$VG_PID" 2>/dev/null || true; wait "$VG_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ] || [ "$status" -ne 0 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case "$LIMITER" in
  on) LIMIT_ARGS=(--api-rate-limit-refill-rate 1000000 --api-rate-limit-interval 1s --api-rate-limit-max 1000000
        --api-rate-limit-jwt-tokens 1000000 --api-rate-limit-jwt-window 1s) ;;
  off) LIMIT_ARGS=(--api-rate-limit false) ;;
  *) die "--limiter takes on or off, not $LIMITER" ;;
esac

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API=http://127.0.0.1:$PORT
mkdir -p "$WORK/data"
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" "${DB_ARGS[@]}" "${LIMIT_ARGS[@]}" >"$WORK/server.log" 2>&1 &
VG_PID=$!
for _ in $(seq 120); do
  curl -fsS --max-time 2 "$API/healthz" >/dev/null 2>&1 && [ -s "$WORK/data/admin-token" ] && break
  kill -0 "$VG_PID" 2>/dev/null || die "the server exited during start-up: $(tail -n 5 "$WORK/server.log")"
  sleep 1
done
curl -fsS --max-time 2 "$API/healthz" >/dev/null || die "the server did not start within 120 s"
log "server up under callgrind on $API"

# The bootstrap and the measurements, in one Python process (stdlib only).
python3 - "$API" "$WORK/data/admin-token" "$N" "$VG_PID" "$WORK" "$BACKEND" <<'EOF'
import http.client, json, re, subprocess, sys, urllib.parse

api, token_file, n, pid, work, backend = sys.argv[1:3] + [int(sys.argv[3])] + sys.argv[4:7]
u = urllib.parse.urlparse(api)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)

def call(method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    text = resp.read()
    if resp.status // 100 != 2:
        sys.exit(f"{method} {path} answered {resp.status}: {text[:200]!r}")
    return json.loads(text) if text else None

admin = open(token_file).read().strip()
slug = call("POST", "/api/v1/orgs", admin, {"title": "Bench"})["slug"]
ref = call("POST", f"/api/v1/orgs/{slug}/projects", admin, {"name": "Bench"})["externalRef"]
k1 = call("GET", f"/api/v1/projects/{ref}/prod", admin)["apiKey"]
k2 = call("POST", f"/api/v1/projects/{ref}/prod/regenerate-api-key", admin)["apiKey"]
jwt = call("POST", "/api/v1/auth/jwt", k2, {"claims": {"scopes": ["read:runs"]}, "expirationTime": "2h"})["token"]
assert "graceKeyId" in call("GET", "/api/v1/auth/credential", k1), "K1 must match through its grace window"

def control(*args):
    subprocess.run(["callgrind_control", *args, pid], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

paths = [("healthz", "/healthz", None), ("current key", "/api/v1/auth/credential", k2),
         ("grace key", "/api/v1/auth/credential", k1), ("current-key JWT", "/api/v1/auth/credential", jwt)]
results = []
for i, (name, path, token) in enumerate(paths, start=1):
    for _ in range(100):  # warm: caches filled, buffers grown
        call("GET", path, token)
    control("-z")
    for _ in range(n):
        call("GET", path, token)
    control("-d", f"path{i}")
    out = subprocess.run(["sh", "-c", f"ls {work}/callgrind.out.{pid}.{i}"], capture_output=True, text=True).stdout.strip()
    total = None
    with open(out) as f:
        for line in f:
            m = re.match(r"^summary:\s+(\d+)", line)
            if m:
                total = int(m.group(1))
    if total is None:
        sys.exit(f"no summary in {out}")
    results.append((name, total / n))

base = results[0][1]
print()
print(f"Instructions per request, {n} sequential requests per path (callgrind, {backend}):")
print()
print("| path | instructions / request | above `/healthz` |")
print("|---|---:|---:|")
for name, per in results:
    print(f"| {name} | {per:,.0f} | {per - base:+,.0f} |")
EOF
