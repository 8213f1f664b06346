//! The execution loop: runs of every environment that runs a deployment are taken from the
//! queue (as many at once as the runner's capacity) and each is started as a `node` process of
//! its deployment's own run controller. The process speaks the workload protocol back to this
//! node, so starting, heartbeats, waits, cancellation and completion go through the engine as
//! a development CLI's do. A process that ends before its run does has its attempt failed at
//! once (retried per the task's settings), never left for the stall timeout.
//!
//! Several nodes may run this loop on one database: a dequeue hands a run to one of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::select_all;
use taskgate_core::ids::EnvironmentId;
use taskgate_engine::watchers::{queue_key, slots_key};
use taskgate_store::{
    Deployment, DequeueLimits, DequeueOutcome, Dequeued, EnvironmentAuth, Worker,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::process::{tail, Launch};
use crate::{new_runner_id, ActiveRun, Error, Result, Runner};

/// How often the list of environments running a deployment is read again.
const ENVIRONMENTS_REFRESH: Duration = Duration::from_secs(5);
/// Longest wait for a run before looking again.
const IDLE_WAIT: Duration = Duration::from_secs(10);
/// Pause after a failed pass.
const FAILURE_PAUSE: Duration = Duration::from_secs(2);
/// Output of a run controller kept for the log when it fails.
const OUTPUT_TAIL: usize = 4000;

impl Runner {
    /// Starts the execution loop (unless the capacity is 0); it ends when the server stops.
    pub fn start(self: &Arc<Self>) {
        if self.settings.capacity == 0 {
            tracing::info!("the runner executes no runs on this node (capacity 0)");
            return;
        }
        let runner = self.clone();
        tokio::spawn(async move { runner.run_loop().await });
    }

    async fn run_loop(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(self.settings.capacity));
        let mut environments: Vec<EnvironmentId> = Vec::new();
        let mut refreshed: Option<Instant> = None;
        let mut turn = 0usize;
        loop {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = self.engine.shutdown().wait() => return,
            };
            if refreshed.is_none_or(|at| at.elapsed() >= ENVIRONMENTS_REFRESH) {
                match self.store.deployed_environments().await {
                    Ok(envs) => {
                        environments = envs.into_iter().map(|(e, _)| e).collect();
                        refreshed = Some(Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "runner: cannot list the environments running deployments; will retry");
                        tokio::time::sleep(FAILURE_PAUSE).await;
                        continue;
                    }
                }
            }
            // Watch before looking, so a run queued while we look wakes the wait below.
            let mut watches: Vec<_> = environments
                .iter()
                .flat_map(|e| [queue_key(e), slots_key(e)])
                .map(|k| self.engine.watchers().watch(k))
                .collect();
            for w in &mut watches {
                w.rx.borrow_and_update();
            }
            let mut found = None;
            let n = environments.len();
            for i in 0..n {
                let env = &environments[(turn + i) % n];
                match self.take(env).await {
                    Ok(Some(taken)) => {
                        turn = (turn + i + 1) % n.max(1);
                        found = Some(taken);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(env.id = %env, error = %e, "runner: cannot take a run; will retry");
                    }
                }
            }
            if let Some(taken) = found {
                let runner = self.clone();
                tokio::spawn(async move { runner.execute(taken, permit).await });
                continue;
            }
            drop(permit);
            let changed = async {
                if watches.is_empty() {
                    std::future::pending::<()>().await;
                }
                let futures = watches.iter_mut().map(|w| Box::pin(w.rx.changed()));
                let _ = select_all(futures).await;
            };
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(IDLE_WAIT) => {}
                _ = self.engine.shutdown().wait() => return,
            }
        }
    }

    /// The next run of an environment for its deployment, or for an older deployment a queued
    /// retry is locked to.
    async fn take(&self, env: &EnvironmentId) -> Result<Option<Taken>> {
        let Some((deployment, worker, tasks)) = self.store.current_deployment(env).await? else {
            return Ok(None);
        };
        let limits = DequeueLimits {
            concurrency: self.engine.settings().concurrency_limit,
        };
        let now = self.engine.now();
        match self
            .store
            .dequeue_run(env, &worker, &tasks, limits, now)
            .await?
        {
            DequeueOutcome::Taken(d) => return Ok(Some(Taken { run: d, deployment })),
            DequeueOutcome::AtCapacity => return Ok(None),
            DequeueOutcome::Empty { .. } => {}
        }
        for older in self.store.locked_queued_workers(env, &worker.id).await? {
            let Some((w, tasks)) = self.store.get_worker(env, &older).await? else {
                continue;
            };
            let Some(deployment) = self.deployment_of(env, &w).await? else {
                continue;
            };
            if let DequeueOutcome::Taken(d) =
                self.store.dequeue_run(env, &w, &tasks, limits, now).await?
            {
                return Ok(Some(Taken { run: d, deployment }));
            }
        }
        Ok(None)
    }

    async fn deployment_of(&self, env: &EnvironmentId, w: &Worker) -> Result<Option<Deployment>> {
        let Some(id) = &w.deployment_id else {
            return Ok(None);
        };
        Ok(self.store.get_deployment(env, id).await?)
    }

    /// Runs one dequeued run's controller to its end.
    async fn execute(self: Arc<Self>, taken: Taken, _permit: OwnedSemaphorePermit) {
        let run = taken.run.run.friendly_id.clone();
        if let Err(e) = self.execute_inner(&taken).await {
            tracing::warn!(run.id = %run, deployment.id = %taken.deployment.friendly_id, error = %e, "runner: the run's process could not run it");
            self.lost(&taken, &e.to_string()).await;
        }
    }

    async fn execute_inner(&self, taken: &Taken) -> Result<()> {
        let d = &taken.run;
        let env = self
            .store
            .get_environment_auth(&d.run.environment_id)
            .await?
            .ok_or(Error::Store(taskgate_store::StoreError::NotFound))?;
        let bundle = self.bundle(&env, &taken.deployment).await?;
        let port = self
            .workload_port
            .get()
            .copied()
            .ok_or_else(|| Error::Process("the workload listener is not up".into()))?;
        let runner_id = new_runner_id();
        let launch = self.controller_launch(&env, taken, &bundle, &runner_id, port)?;
        let active = ActiveRun {
            environment_id: env.environment.id.clone(),
            run: d.run.friendly_id.clone(),
            deployment: taken.deployment.friendly_id.clone(),
        };
        self.active.lock().insert(runner_id.clone(), active);
        let _forget = Forget {
            runner: self,
            id: runner_id.clone(),
        };
        let allow = [bundle.dir.clone(), self.home()?];
        let sandbox = self.sandbox().map(|s| (s, &allow[..]));
        let mut cmd = launch.command(sandbox);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = cmd
            .spawn()
            .map_err(|e| Error::Process(format!("cannot start the run controller: {e}")))?;
        tracing::info!(run.id = %d.run.friendly_id, deployment.version = %taken.deployment.version, pid = child.id(), "runner: run started");
        metrics::counter!("taskgate_runner_processes_started_total").increment(1);
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            let text = String::from_utf8_lossy(&output.stderr).to_string()
                + &String::from_utf8_lossy(&output.stdout);
            return Err(Error::Process(format!(
                "the run controller exited with {}: {}",
                output.status,
                tail(&text, OUTPUT_TAIL)
            )));
        }
        // It exited cleanly; if its run is still in an attempt, the attempt is lost.
        self.lost(taken, "the run's process exited before the run finished")
            .await;
        Ok(())
    }

    /// Fails the run's attempt if it is still in one, so it is retried now rather than after
    /// the stall timeout.
    async fn lost(&self, taken: &Taken, why: &str) {
        let d = &taken.run;
        match self
            .engine
            .attempt_lost(&d.run.environment_id, &d.run.friendly_id, why)
            .await
        {
            Ok(true) => {
                tracing::warn!(run.id = %d.run.friendly_id, reason = why, "runner: the attempt ended with its process")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(run.id = %d.run.friendly_id, error = %e, "runner: cannot record a lost attempt; the stall timeout will")
            }
        }
    }

    /// The command of a run's controller, with the environment the bundle's run controller
    /// reads.
    fn controller_launch(
        &self,
        env: &EnvironmentAuth,
        taken: &Taken,
        bundle: &crate::bundles::Bundle,
        runner_id: &str,
        port: u16,
    ) -> Result<Launch> {
        let d = &taken.run;
        let deployment = &taken.deployment;
        let machine = taskgate_engine::execution::machine(&d.run, Some(&d.task));
        let now_ms = Utc::now().timestamp_millis().to_string();
        let otlp = self
            .engine
            .otlp_endpoint(self.api_url()?, &env.environment.id);
        let home = self.home()?;
        let env_vars: Vec<(String, String)> = [
            ("HOME", home.display().to_string()),
            ("NODE_ENV", "production".into()),
            ("TRIGGER_CONTENT_HASH", deployment.content_hash.clone()),
            ("TRIGGER_PROJECT_ID", env.environment.project_id.to_string()),
            ("TRIGGER_PROJECT_REF", env.project_ref.clone()),
            ("TRIGGER_DEPLOYMENT_ID", deployment.friendly_id.to_string()),
            ("TRIGGER_DEPLOYMENT_VERSION", deployment.version.clone()),
            ("TRIGGER_ENV_ID", env.environment.id.to_string()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
            ("TRIGGER_RUNNER_ID", runner_id.to_string()),
            ("TRIGGER_POD_SCHEDULED_AT_MS", now_ms.clone()),
            ("TRIGGER_DEQUEUED_AT_MS", now_ms),
            ("TRIGGER_SUPERVISOR_API_PROTOCOL", "http".into()),
            ("TRIGGER_SUPERVISOR_API_DOMAIN", "127.0.0.1".into()),
            ("TRIGGER_SUPERVISOR_API_PORT", port.to_string()),
            (
                "TRIGGER_WORKER_INSTANCE_NAME",
                self.settings.instance_name.clone(),
            ),
            ("TRIGGER_RUN_ID", d.run.friendly_id.to_string()),
            ("TRIGGER_SNAPSHOT_ID", d.run.snapshot_id.to_string()),
            ("TRIGGER_MACHINE_CPU", machine.cpu.to_string()),
            ("TRIGGER_MACHINE_MEMORY", machine.memory.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(Launch {
            program: self.settings.node.clone(),
            args: vec![bundle.run_controller.clone().into_os_string()],
            cwd: bundle.dir.clone(),
            env: env_vars,
        })
    }
}

/// A run taken from the queue, with the deployment it runs on.
struct Taken {
    run: Box<Dequeued>,
    deployment: Deployment,
}

/// Forgets a runner id when its process is done.
struct Forget<'a> {
    runner: &'a Runner,
    id: String,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.runner.active.lock().remove(&self.id);
    }
}
