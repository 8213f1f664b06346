#!/usr/bin/env bash
# Runs every taskgate test: formatting and lints, the Rust suites on SQLite and PostgreSQL,
# the OpenAPI document check, a schema-driven fuzz run against the documented API, and the
# compatibility suite with the official trigger.dev SDK and CLI, and the dashboard in headless
# Chromium. Sets up what it needs on a fresh machine: a running local PostgreSQL (when the
# cluster is installed but stopped), a running local Redis (likewise), the npm packages of
# the compat suite, its task project and the browser suite (from their lockfiles), and
# Debian's chromium package.
#
#   TASKGATE_TEST_DATABASE_URL   PostgreSQL for the tests (default: the local cluster's `test`)
#   TASKGATE_TEST_REDIS_URL      Redis for the shared rate-limit test (default: a local one,
#                                started if it is installed and not running)
#   TASKGATE_SKIP_COMPAT=1       skip the compatibility suite (it is counted as not run)
#   TASKGATE_SKIP_BROWSER=1      skip the browser suite
#   TASKGATE_FUZZ_SECONDS        time budget of the fuzz run (default 150)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

export TASKGATE_TEST_DATABASE_URL="${TASKGATE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    log "starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not reachable at 127.0.0.1:5432; set TASKGATE_TEST_DATABASE_URL" >&2; exit 1; }

# Redis holds the rate-limit buckets several nodes share; one test runs two nodes on it.
export TASKGATE_TEST_REDIS_URL="${TASKGATE_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
if [ "$TASKGATE_TEST_REDIS_URL" = redis://127.0.0.1:6379 ] && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    log "starting a local Redis"
    redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >/dev/null
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test (SQLite and PostgreSQL)"
cargo test --workspace --locked

log "OpenAPI document is current"
cargo run --locked --quiet -p taskgate -- openapi > target/openapi.json
if ! diff -u docs/openapi.json target/openapi.json; then
  echo "docs/openapi.json is stale: run 'cargo run -p taskgate -- openapi > docs/openapi.json'" >&2
  exit 1
fi

cargo build --release --locked -p taskgate

log "schema-driven fuzzing of the documented API (schemathesis)"
TASKGATE_BIN="$PWD/target/release/taskgate" bash tests/fuzz/run.sh --max-time "${TASKGATE_FUZZ_SECONDS:-150}"

if [ "${TASKGATE_SKIP_COMPAT:-}" != "1" ]; then
  log "compatibility suite (@trigger.dev/sdk and trigger.dev CLI 4.8.3)"
  (cd tests/compat/dev && npm ci --no-audit --no-fund --loglevel=error)
  (cd tests/compat && npm ci --no-audit --no-fund --loglevel=error && TASKGATE_BIN="$PWD/../../target/release/taskgate" npm test)
fi

if [ "${TASKGATE_SKIP_BROWSER:-}" != "1" ]; then
  log "dashboard in headless Chromium (Debian's chromium package, driven by puppeteer-core)"
  if ! command -v chromium >/dev/null; then
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q chromium >/dev/null || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q chromium >/dev/null; }
  fi
  # The browser cases drive the official CLI and a `trigger.dev dev` worker from the compat
  # suite's packages.
  [ -d tests/compat/node_modules ] || (cd tests/compat && npm ci --no-audit --no-fund --loglevel=error)
  [ -d tests/compat/dev/node_modules ] || (cd tests/compat/dev && npm ci --no-audit --no-fund --loglevel=error)
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && CHROMIUM="$(command -v chromium)" TASKGATE_BIN="$PWD/../../target/release/taskgate" npm test)
fi
