//! Runs: how many execute at once, how workers wait for them, how large their payloads may
//! be, how long realtime readers wait, and how long error counts are kept.

use std::time::Duration;

use anyhow::bail;

use crate::{in_range, Names};

/// Runs an environment executes at once unless configured: enough for a developer's machine
/// (the CLI runs each in its own process) and a batch to make progress in parallel.
pub const DEFAULT_CONCURRENCY_LIMIT: u32 = 10;
/// How long a worker's dequeue waits for a run: upstream's long poll, which the CLI expects.
pub const DEFAULT_DEQUEUE_WAIT_SECONDS: u64 = 10;
/// How long a worker waits after a dequeue that found a run: the CLI takes one run per
/// dequeue, so this paces how fast a backlog starts (upstream's 250 ms caps a worker at four
/// runs a second; waiting is the long poll's job, not this pause's).
pub const DEFAULT_DEQUEUE_INTERVAL_MS: u64 = 25;
/// Largest trigger payload stored inline (3 MiB, upstream's limit).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 3 * 1024 * 1024;
/// Largest offloaded packet (a payload or output of 128 KiB or more, which the SDK uploads
/// on its own): 16 MiB, held in memory while it is stored or served.
pub const DEFAULT_MAX_PACKET_BYTES: usize = 16 * 1024 * 1024;
/// The SDK offloads packets from this size on, so a smaller limit would refuse them all.
pub const MIN_MAX_PACKET_BYTES: usize = 128 * 1024;
/// How long a live realtime request waits for a change: Electric clients expect about 20 s.
pub const DEFAULT_REALTIME_POLL_SECONDS: u64 = 20;
/// How long error count buckets are kept unless configured (upstream's default retention).
pub const DEFAULT_ERROR_RETENTION_DAYS: i64 = 30;

options! {
    /// Concurrency, the queue, dequeues, payloads, realtime and error counts.
    pub struct EngineArgs {
        /// Runs an environment may execute at once (1 to 1000) [default: 10].
        #[arg(long, env = "TASKGATE_CONCURRENCY_LIMIT", value_name = "RUNS")]
        pub concurrency_limit: Option<u32>,

        /// Runs a `trigger.dev dev` keeps a process for at once, counting runs that wait for
        /// others (a run that waits holds its process but no concurrency slot); at least the
        /// concurrency limit (1 to 10000) [default: twice the concurrency limit].
        #[arg(long, env = "TASKGATE_DEV_MAX_CONCURRENT_RUNS", value_name = "RUNS")]
        pub dev_max_concurrent_runs: Option<u32>,

        /// Most runs an environment may have waiting in its queue; triggers beyond it are
        /// refused (422) [default: unlimited].
        #[arg(long, env = "TASKGATE_MAX_QUEUE_SIZE", value_name = "RUNS")]
        pub max_queue_size: Option<u64>,

        /// Seconds a worker's dequeue waits for a run before answering empty (0 to 30)
        /// [default: 10].
        #[arg(long, env = "TASKGATE_DEQUEUE_WAIT_SECONDS", value_name = "SECONDS")]
        pub dequeue_wait_seconds: Option<u64>,

        /// Milliseconds a worker waits after a dequeue that found a run before the next one
        /// (0 to 5000) [default: 25].
        #[arg(long, env = "TASKGATE_DEQUEUE_INTERVAL_MS", value_name = "MS")]
        pub dequeue_interval_ms: Option<u64>,

        /// Largest trigger payload, in bytes (1024 to 1073741824) [default: 3145728].
        #[arg(long, env = "TASKGATE_MAX_PAYLOAD_BYTES", value_name = "BYTES")]
        pub max_payload_bytes: Option<usize>,

        /// Largest payload or output the SDK offloads (it uploads any of 128 KiB or more and
        /// sends its path instead), in bytes (131072 to 536870912) [default: 16777216].
        #[arg(long, env = "TASKGATE_MAX_PACKET_BYTES", value_name = "BYTES")]
        pub max_packet_bytes: Option<usize>,

        /// Seconds a live realtime request waits for a change (1 to 60; Electric clients
        /// expect about 20) [default: 20].
        #[arg(long, env = "TASKGATE_REALTIME_POLL_SECONDS", value_name = "SECONDS")]
        pub realtime_poll_seconds: Option<u64>,

        /// Days an error group's per-minute, per-hour and per-day counts are kept: the oldest
        /// window the errors list can count (1 to 365; all-time counts are kept regardless)
        /// [default: 30].
        #[arg(long, env = "TASKGATE_ERROR_RETENTION_DAYS", value_name = "DAYS")]
        pub error_retention_days: Option<i64>,
    }
}

/// The runs section, validated.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Runs an environment may execute at once.
    pub concurrency_limit: u32,
    /// Runs a development CLI keeps a process for (its `maxConcurrentRuns`), waiting ones
    /// included.
    pub dev_max_concurrent_runs: u32,
    /// Most runs an environment may have waiting; `None` is unlimited.
    pub max_queue_size: Option<u64>,
    /// How long a dequeue waits for a run (the long poll).
    pub dequeue_wait: Duration,
    /// What workers wait between a dequeue that found a run and the next.
    pub dequeue_interval: Duration,
    pub max_payload_bytes: usize,
    /// Largest offloaded packet.
    pub max_packet_bytes: usize,
    /// How long a live realtime request waits for a change before answering "up to date".
    pub realtime_poll: Duration,
    /// How long error count buckets are kept (the errors list's oldest window).
    pub error_retention: chrono::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            dev_max_concurrent_runs: 2 * DEFAULT_CONCURRENCY_LIMIT,
            max_queue_size: None,
            dequeue_wait: Duration::from_secs(DEFAULT_DEQUEUE_WAIT_SECONDS),
            dequeue_interval: Duration::from_millis(DEFAULT_DEQUEUE_INTERVAL_MS),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
            realtime_poll: Duration::from_secs(DEFAULT_REALTIME_POLL_SECONDS),
            error_retention: chrono::Duration::days(DEFAULT_ERROR_RETENTION_DAYS),
        }
    }
}

impl EngineArgs {
    pub(crate) fn validate(self, n: &impl Names) -> anyhow::Result<EngineConfig> {
        let concurrency_limit = self.concurrency_limit.unwrap_or(DEFAULT_CONCURRENCY_LIMIT);
        in_range(n("concurrency-limit"), concurrency_limit, 1, 1000)?;
        let dev_max_concurrent_runs = self
            .dev_max_concurrent_runs
            .unwrap_or(2 * concurrency_limit);
        in_range(
            n("dev-max-concurrent-runs"),
            dev_max_concurrent_runs,
            concurrency_limit,
            10_000,
        )?;
        if self.max_queue_size == Some(0) {
            bail!(
                "{}: must be at least 1 (leave it unset for no limit)",
                n("max-queue-size")
            );
        }
        let dequeue_wait_seconds = self
            .dequeue_wait_seconds
            .unwrap_or(DEFAULT_DEQUEUE_WAIT_SECONDS);
        in_range(n("dequeue-wait-seconds"), dequeue_wait_seconds, 0, 30)?;
        let dequeue_interval_ms = self
            .dequeue_interval_ms
            .unwrap_or(DEFAULT_DEQUEUE_INTERVAL_MS);
        in_range(n("dequeue-interval-ms"), dequeue_interval_ms, 0, 5000)?;
        let max_payload_bytes = self.max_payload_bytes.unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES);
        in_range(n("max-payload-bytes"), max_payload_bytes, 1024, 1 << 30)?;
        let max_packet_bytes = self.max_packet_bytes.unwrap_or(DEFAULT_MAX_PACKET_BYTES);
        in_range(
            n("max-packet-bytes"),
            max_packet_bytes,
            MIN_MAX_PACKET_BYTES,
            512 << 20,
        )?;
        let realtime_poll_seconds = self
            .realtime_poll_seconds
            .unwrap_or(DEFAULT_REALTIME_POLL_SECONDS);
        in_range(n("realtime-poll-seconds"), realtime_poll_seconds, 1, 60)?;
        let error_retention_days = self
            .error_retention_days
            .unwrap_or(DEFAULT_ERROR_RETENTION_DAYS);
        in_range(n("error-retention-days"), error_retention_days, 1, 365)?;
        Ok(EngineConfig {
            concurrency_limit,
            dev_max_concurrent_runs,
            max_queue_size: self.max_queue_size,
            dequeue_wait: Duration::from_secs(dequeue_wait_seconds),
            dequeue_interval: Duration::from_millis(dequeue_interval_ms),
            max_payload_bytes,
            max_packet_bytes,
            realtime_poll: Duration::from_secs(realtime_poll_seconds),
            error_retention: chrono::Duration::days(error_retention_days),
        })
    }
}
