#!/usr/bin/env bash
# Runs every taskgate test: formatting and lints, the Rust suites on SQLite and PostgreSQL,
# the OpenAPI document check, a schema-driven fuzz run against the documented API, and the
# compatibility suite with the official trigger.dev SDK and CLI. Sets up what it needs on a fresh machine: a running local PostgreSQL (when the
# cluster is installed but stopped) and the compat suite's npm packages and those of its task
# project (both from their lockfiles).
#
#   TASKGATE_TEST_DATABASE_URL   PostgreSQL for the tests (default: the local cluster's `test`)
#   TASKGATE_SKIP_COMPAT=1       skip the compatibility suite (it is counted as not run)
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
