//! Seeds failed-run occurrences into an environment through the store, for the errors
//! benchmark (bench/errors.mjs): `--runs` occurrences across `--groups` groups (error
//! messages), five tasks and five worker versions, their creation times spread over the last
//! `--days` days (more recent ones denser, as failures cluster), in transactions of 1,000.
//! Prints one JSON line: the time and statements each occurrence took.
//!
//!   cargo run --release -p taskgate-server --example seed_errors -- \
//!       --database-url sqlite:///path/taskgate.db --env <environment id> \
//!       [--runs 1000000] [--groups 10000] [--days 30] [--concurrency 8]
#![expect(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use serde_json::json;
use taskgate_store::{ErrorOccurrence, Store};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1).cloned())
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).map(|v| v.parse().expect(name)).unwrap_or(default)
}

/// Occurrences per transaction: a failed run records its one inside the transaction that
/// finalises it, so batching keeps per-occurrence figures free of a commit each.
const BATCH: u64 = 1000;

/// `n` written in lowercase letters (`0` → `a`, `27` → `bb`): a group's stage name, which the
/// fingerprint's normalisation keeps as it is.
fn letters(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A small deterministic generator (xorshift), so runs are reproducible.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::main]
async fn main() {
    let url = arg("database-url").expect("--database-url");
    let env = arg("env").expect("--env");
    let runs = num("runs", 1_000_000);
    let groups = num("groups", 10_000);
    let days = num("days", 30) as i64;
    let concurrency = num("concurrency", 8);
    let metrics = taskgate_server::telemetry::init_metrics().expect("metrics recorder");
    let store: Arc<dyn Store> = if url.starts_with("postgres") {
        Arc::new(
            taskgate_store_postgres::PostgresStore::connect(&url, None, true, None)
                .await
                .unwrap(),
        )
    } else {
        Arc::new(
            taskgate_store_sqlite::SqliteStore::open_url(&url)
                .await
                .unwrap(),
        )
    };
    let now = Utc::now();
    let done = Arc::new(AtomicU64::new(0));
    // Nanoseconds spent inside the store's calls, all workers together.
    let busy = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let per_worker = runs / concurrency;
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (store, env, done, busy) = (store.clone(), env.clone(), done.clone(), busy.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (w + 1);
            let mut left = per_worker;
            while left > 0 {
                let n = left.min(BATCH);
                left -= n;
                let batch: Vec<(String, String, serde_json::Value, chrono::DateTime<Utc>)> = (0..n)
                    .map(|_| {
                        let g = next(&mut rng) % groups;
                        let task = format!("task-{}", g % 5);
                        let version = format!("20261101.{}", next(&mut rng) % 5 + 1);
                        // Squared: more failures in the recent days than in the old ones.
                        let r = (next(&mut rng) % 10_000) as f64 / 10_000.0;
                        let age = Duration::seconds((r * r * (days * 86_400) as f64) as i64);
                        let error = json!({
                            "type": "BUILT_IN_ERROR",
                            "name": if g.is_multiple_of(3) { "TypeError" } else { "Error" },
                            // The stage names the group; the account number is normalised away.
                            "message": format!("failure at stage {} while syncing account {}", letters(g), 10_000 + next(&mut rng) % 90_000),
                            "stackTrace": "Error: failure\n    at sync (src/sync.ts:10:5)",
                        });
                        (task, version, error, now - age)
                    })
                    .collect();
                let occurrences: Vec<ErrorOccurrence<'_>> = batch
                    .iter()
                    .map(|(task, version, error, at)| ErrorOccurrence {
                        environment_id: &env,
                        task_identifier: task,
                        task_version: Some(version),
                        error,
                        run_created_at: *at,
                    })
                    .collect();
                let call = Instant::now();
                store.record_error_occurrences(&occurrences, now).await.unwrap();
                busy.fetch_add(call.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let before = done.fetch_add(n, Ordering::Relaxed);
                if (before + n) / 100_000 > before / 100_000 {
                    eprintln!("# {} occurrences in {:.0}s", before + n, began.elapsed().as_secs_f64());
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let seconds = began.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    let statements: f64 = metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("taskgate_db_queries_total"))
        .filter(|l| {
            [
                "upsert_error_group",
                "count_error_occurrence",
                "write_error_triage",
                "append_error_activity",
            ]
            .iter()
            .any(|op| l.contains(&format!("operation=\"{op}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    println!(
        "{}",
        json!({
            "occurrences": total,
            "seconds": (seconds * 10.0).round() / 10.0,
            "occurrencesPerSecond": (total as f64 / seconds).round(),
            "microsPerOccurrence": (busy.load(Ordering::Relaxed) as f64 / 1e3 / total as f64).round(),
            "statementsPerOccurrence": statements / total as f64,
            "concurrency": concurrency,
        })
    );
    store.close().await;
}
