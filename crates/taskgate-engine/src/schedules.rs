//! The schedule loop: triggers a run for every schedule whose time has come.
//!
//! Fires are claimed from the database (see `taskgate_store::ScheduleStore`): each due fire is
//! handed to one node, which triggers its run with a request key made from the schedule and
//! the fire's nominal time and then completes the fire. A node that dies in between leaves
//! the fire leased; once the lease runs out another node takes it over, and the request key
//! makes its trigger return the run the first one made, if it made one. So every fire runs
//! once, whichever nodes come and go.
//!
//! Each node sleeps until the earliest fire (or until a schedule of its own is set sooner),
//! and looks again at least every [`IDLE_CHECK`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use serde_json::Value;
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ids::{EnvironmentId, RunFriendlyId};
use taskgate_core::schedule::{CronSchedule, ScheduledPayload, UPCOMING};
use taskgate_core::time::to_millis;
use taskgate_store::{Environment, RequestKey, ScheduleFire, WorkerTask};

use crate::trigger::{TriggerBody, TriggerOptions};
use crate::{Engine, Error, Result};

/// Fires claimed in one pass; more due than this are taken in the next pass at once.
const BATCH: u32 = 200;
/// How long a claimed fire is this node's before another node may take it over.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// Longest sleep with nothing due: a schedule set on another node is found within this.
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// Pause after a failed pass.
const FAILURE_PAUSE: Duration = Duration::from_secs(1);
/// How long a fire's request key finds its run: far longer than any lease.
const REQUEST_KEY_WINDOW: chrono::Duration = chrono::Duration::days(1);

/// Fires of one pass triggered at once.
const CONCURRENT_FIRES: usize = 8;

/// A due fire's environment, as a pass reads it once: `None` when it is gone (archived, its
/// project deleted); whether a development CLI is connected (always for other types).
struct FireEnv {
    environment: Option<Environment>,
    connected: bool,
}

/// What one fire did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireOutcome {
    /// A run was triggered (or found: the fire had been triggered before its node stopped).
    Triggered(RunFriendlyId),
    /// Nothing ran: a development environment with no CLI connected, an archived environment,
    /// or a trigger the engine refused (logged).
    Skipped(&'static str),
}

/// What a pass of the loop did.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    pub fired: u64,
    pub skipped: u64,
    pub claimed: u64,
    /// Fires left to their lease because the store failed.
    pub failed: u64,
}

impl Engine {
    /// One pass: claims what is due now and fires it.
    pub async fn fire_schedules(&self) -> Result<Pass> {
        let fires = self
            .store
            .claim_schedule_fires(self.now(), BATCH, LEASE)
            .await?;
        let mut pass = Pass {
            claimed: fires.len() as u64,
            ..Pass::default()
        };
        // Each environment is read once per pass, however many of its schedules are due.
        let mut envs: HashMap<EnvironmentId, Arc<FireEnv>> = HashMap::new();
        for fire in &fires {
            let id = &fire.schedule.environment_id;
            if !envs.contains_key(id) {
                let env = self.fire_env(fire).await?;
                envs.insert(id.clone(), Arc::new(env));
            }
        }
        // Fires run a few at a time: each is its own trigger transaction.
        let outcomes: Vec<(ScheduleFire, Result<FireOutcome>)> = stream::iter(fires)
            .map(|fire| {
                let env = envs.get(&fire.schedule.environment_id).cloned();
                async move {
                    let outcome = match env {
                        Some(env) => self.fire_in(&fire, &env).await,
                        None => Ok(FireOutcome::Skipped("environment_gone")),
                    };
                    (fire, outcome)
                }
            })
            .buffer_unordered(CONCURRENT_FIRES)
            .collect()
            .await;
        for (fire, outcome) in outcomes {
            match outcome {
                Ok(FireOutcome::Triggered(_)) => pass.fired += 1,
                Ok(FireOutcome::Skipped(_)) => pass.skipped += 1,
                // The database failed mid-fire: the fire stays leased and is taken over
                // (by this node or another) when its lease runs out, without a second run.
                Err(e) => {
                    pass.failed += 1;
                    tracing::warn!(schedule.id = %fire.schedule.friendly_id, nominal = %fire.nominal, error = %e, "schedule fire failed; it is retried when its lease runs out");
                }
            }
        }
        Ok(pass)
    }

    /// What a fire needs of its environment, read once per pass.
    async fn fire_env(&self, fire: &ScheduleFire) -> Result<FireEnv> {
        let id = &fire.schedule.environment_id;
        let auth = self
            .store
            .get_environment_auth(id)
            .await?
            .filter(|a| !a.project_deleted && a.environment.archived_at.is_none());
        let connected = match (&auth, fire.env_type) {
            (Some(_), EnvType::Development) => self.dev_connected(id).await?,
            _ => true,
        };
        Ok(FireEnv {
            environment: auth.map(|a| a.environment),
            connected,
        })
    }

    /// Triggers the run of one claimed fire and completes it.
    pub async fn fire(&self, fire: &ScheduleFire) -> Result<FireOutcome> {
        let env = self.fire_env(fire).await?;
        self.fire_in(fire, &env).await
    }

    async fn fire_in(&self, fire: &ScheduleFire, env: &FireEnv) -> Result<FireOutcome> {
        let outcome = self.trigger_in(fire, env).await?;
        let run = match &outcome {
            FireOutcome::Triggered(run) => Some(run.clone()),
            FireOutcome::Skipped(_) => None,
        };
        self.store
            .complete_schedule_fire(&fire.schedule.id, fire.nominal, run.as_ref(), self.now())
            .await?;
        let outcome_label = match outcome {
            FireOutcome::Triggered(_) => "triggered",
            FireOutcome::Skipped(why) => why,
        };
        metrics::counter!("taskgate_schedule_fires_total", "outcome" => outcome_label).increment(1);
        Ok(outcome)
    }

    /// Triggers the run of a claimed fire without completing it (what a node that dies right
    /// after has done): the fire's request key makes a second trigger of it return this run.
    pub async fn trigger_fire(&self, fire: &ScheduleFire) -> Result<FireOutcome> {
        let env = self.fire_env(fire).await?;
        self.trigger_in(fire, &env).await
    }

    async fn trigger_in(&self, fire: &ScheduleFire, env: &FireEnv) -> Result<FireOutcome> {
        let s = &fire.schedule;
        let Some(environment) = &env.environment else {
            return Ok(FireOutcome::Skipped("environment_gone"));
        };
        if !env.connected {
            tracing::debug!(schedule.id = %s.friendly_id, env.id = %s.environment_id, "schedule skipped: no trigger.dev dev connected");
            return Ok(FireOutcome::Skipped("dev_not_connected"));
        }
        let upcoming = match CronSchedule::parse(&s.expression, &s.timezone) {
            Ok(cron) => cron.upcoming(fire.nominal, UPCOMING),
            Err(_) => Vec::new(),
        };
        let payload = ScheduledPayload {
            schedule_id: s.friendly_id.to_string(),
            schedule_type: s.kind.as_str().to_string(),
            timestamp: fire.nominal,
            last_timestamp: fire.last_at,
            external_id: s.external_id.clone(),
            timezone: s.timezone.clone(),
            upcoming,
        };
        let body = TriggerBody {
            payload: Some(Value::String(payload.to_superjson())),
            options: TriggerOptions {
                payload_type: Some("application/super+json".into()),
                ..TriggerOptions::default()
            },
        };
        let key = RequestKey {
            hash: sha256_hex(
                &serde_json::json!(["schedule", s.id, to_millis(fire.nominal)]).to_string(),
            ),
            expires_at: fire.nominal.max(self.now()) + REQUEST_KEY_WINDOW,
        };
        let triggered = match self.build_run(environment, &s.task, body, None) {
            Ok((mut run, _)) => {
                run.schedule_id = Some(s.friendly_id.to_string());
                self.trigger(run, None, None, Some(key), None, None).await
            }
            Err(e) => Err(e),
        };
        match triggered {
            Ok(t) => {
                let lateness_ms = (self.now() - fire.nominal).num_milliseconds();
                tracing::info!(schedule.id = %s.friendly_id, task = %s.task, run.id = %t.run.friendly_id, nominal = %fire.nominal, lateness_ms, "schedule fired");
                Ok(FireOutcome::Triggered(t.run.friendly_id))
            }
            Err(Error::Store(e)) => Err(Error::Store(e)),
            Err(e) => {
                tracing::warn!(schedule.id = %s.friendly_id, task = %s.task, env.id = %s.environment_id, error = %e, "schedule could not trigger its task; this fire is skipped");
                Ok(FireOutcome::Skipped("refused"))
            }
        }
    }

    /// The tasks of the version the environment runs: a development CLI's newest build, or
    /// the promoted deployment's. `None` before there is one.
    pub async fn current_tasks(&self, env: &Environment) -> Result<Option<Vec<WorkerTask>>> {
        if env.env_type == EnvType::Development {
            return Ok(self
                .store
                .current_worker(&env.id)
                .await?
                .map(|(_, tasks)| tasks));
        }
        Ok(self
            .store
            .current_deployment(&env.id)
            .await?
            .map(|(_, _, tasks)| tasks))
    }

    /// Wakes the schedule loop if a schedule is now due before it would wake.
    pub fn schedule_set(&self, due: Option<chrono::DateTime<Utc>>) {
        self.schedule_timers.wake_by(due);
    }
}

/// Starts the schedule loop; it ends when the server shuts down.
pub fn start(engine: Arc<Engine>) {
    tokio::spawn(async move {
        loop {
            let sleep = match engine.fire_schedules().await {
                Ok(p) if u64::from(BATCH) <= p.claimed => Duration::ZERO,
                Ok(_) => match engine.store.next_schedule_due().await {
                    Ok(Some(next)) => (next - engine.now())
                        .to_std()
                        // Due already (another node holds it, or it came due during the
                        // pass): look again shortly rather than spin.
                        .unwrap_or(Duration::from_millis(200))
                        .min(IDLE_CHECK),
                    Ok(None) => IDLE_CHECK,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read when schedules are due; will retry");
                        FAILURE_PAUSE
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "could not fire schedules; will retry");
                    FAILURE_PAUSE
                }
            };
            if sleep.is_zero() {
                continue;
            }
            engine.schedule_timers.sleeping_until(engine.now(), sleep);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = engine.schedule_timers.notified() => {}
                _ = engine.shutdown.wait() => return,
            }
        }
    });
}
