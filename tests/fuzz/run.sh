#!/usr/bin/env bash
# Schema-driven fuzzing: schemathesis generates requests from docs/openapi.json (valid and
# invalid ones) against a fresh taskgate on SQLite, with every credential the document
# declares, and fails on any 5xx, any dropped connection, and any answer the document does
# not describe (status code, content type, body schema).
#
#   bash tests/fuzz/run.sh [--max-time SECONDS]     (default 150)
#
# The batch-items stream (NDJSON) is left out: schemathesis cannot generate that media type.
# The HTTP tests cover it.
#
# Needs python3 (a virtualenv with tests/fuzz/requirements.txt is made under target/) and a
# built binary (target/debug/taskgate, or TASKGATE_BIN). Only loopback is used.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
max_time=150
while [ $# -gt 0 ]; do
  case "$1" in
    --max-time) max_time="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

venv="$root/target/fuzz-venv"
if ! "$venv/bin/st" --version >/dev/null 2>&1; then
  echo "# installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/fuzz/requirements.txt
fi

bin="${TASKGATE_BIN:-$root/target/debug/taskgate}"
[ -x "$bin" ] || { echo "no binary at $bin: cargo build -p taskgate" >&2; exit 1; }
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
# Long polls answer within 2 s here: schemathesis gives each request 10 s, and a dequeue or a
# live realtime read that waited its full default (10 s, 20 s) would be reported as a timeout.
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
  --dequeue-wait-seconds 2 --realtime-poll-seconds 2 \
  --api-rate-limit-refill-rate 1000000 --api-rate-limit-interval 1s --api-rate-limit-max 1000000 \
  --api-rate-limit-jwt-tokens 1000000 >"$work/server.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "${keep:-0}" = 1 ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

api() { # method path token [json]
  curl -fsS -X "$1" "$base$2" -H "authorization: Bearer $3" -H 'content-type: application/json' ${4:+-d "$4"}
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

TG_PAT="$(tr -d '\n' <"$work/data/admin-token")"
org="$(api POST /api/v1/orgs "$TG_PAT" '{"title":"Fuzz"}' | field '["slug"]')"
project="$(api POST "/api/v1/orgs/$org/projects" "$TG_PAT" '{"name":"Fuzz"}' | field '["externalRef"]')"
TG_SECRET_KEY="$(api GET "/api/v1/projects/$project/prod" "$TG_PAT" | field '["apiKey"]')"
TG_PUBLIC_TOKEN="$(api POST /api/v1/auth/public-tokens "$TG_SECRET_KEY" '{"scopes":["read:all","write:all"],"expirationTime":"1h"}' | field '["token"]')"
TG_UAT="$(api POST /api/v1/auth/user-actor-token "$TG_PAT" '{"cap":["admin"],"ttlSeconds":3600}' | field '["token"]')"
export TG_PAT TG_SECRET_KEY TG_PUBLIC_TOKEN TG_UAT

echo "# fuzzing $base for up to ${max_time}s"
status=0
"$venv/bin/st" --config-file tests/fuzz/schemathesis.toml run docs/openapi.json \
  --url "$base" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "$max_time" --workers 2 --seed 20261127 \
  --exclude-path '/api/v3/batches/{batchId}/items' \
  --no-color || status=$?
if [ "$status" -ne 0 ]; then
  keep=1
  echo "# schemathesis failed ($status); the server's log is $work/server.log"
  grep -E '"level":"(ERROR|WARN)"|ERROR|WARN' "$work/server.log" | tail -20 || true
fi
exit "$status"
