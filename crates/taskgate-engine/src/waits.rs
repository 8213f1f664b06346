//! Waits: a run blocking on a point in time or a token, and wait tokens themselves (made,
//! listed, completed by the API or by their callback URL). Children and batches block their
//! parent where they are triggered ([`crate::trigger`], [`crate::batch`]); the timers that
//! complete points in time and time tokens out are [`crate::timers`].
//!
//! A waiting run's process keeps running: it learns each result from the snapshot that
//! continues it, which lists every waitpoint it waited for.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use taskgate_core::engine::waitpoint::{WaitpointKind, WaitpointOutput};
use taskgate_core::engine::EngineError;
use taskgate_core::hash::{constant_time_eq, hmac_sha256};
use taskgate_core::ids::{EnvironmentId, RunFriendlyId, WaitpointFriendlyId};
use taskgate_core::run::{
    parse_deadline, parse_idempotency_ttl, DEFAULT_IDEMPOTENCY_TTL, MAX_RUN_DURATION,
};
use taskgate_store::{
    Blocked, Refusal, StoreError, TokenFilter, TokenPage, WaitFor, WaitRefusal, Waitpoint,
    WaitpointIdempotency,
};

use crate::{Engine, Error, Result};

/// Longest idempotency key a waitpoint takes (the SDK's own limit).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 2048;
/// Hex characters of a callback URL's mac (128 bits).
const CALLBACK_MAC_HEX_LEN: usize = 32;

/// `POST /engine/v1/runs/{run}/wait/duration`'s body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationWait {
    pub date: DateTime<Utc>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default, rename = "idempotencyKeyTTL")]
    pub idempotency_key_ttl: Option<String>,
}

/// `POST /api/v1/waitpoints/tokens`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default, rename = "idempotencyKeyTTL")]
    pub idempotency_key_ttl: Option<String>,
    /// `"30s"`, `"2h"`, … or an ISO-8601 date.
    #[serde(default)]
    pub timeout: Option<Value>,
    /// One tag or a list of them.
    #[serde(default)]
    pub tags: Option<Value>,
}

/// `POST /api/v1/runs/{runId}/input-streams/wait`'s body (`inputStream.wait()`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputStreamWaitRequest {
    pub stream_id: String,
    /// The last record the task has seen (S2's sequence numbers: the stream's first record
    /// is 0); absent, every record of the stream counts.
    #[serde(default)]
    pub last_seq_num: Option<i64>,
    #[serde(flatten)]
    pub token: TokenRequest,
}

/// Longest input stream id.
const MAX_STREAM_ID_BYTES: usize = 256;

/// A waitpoint idempotency key and its lifetime, checked.
fn idempotency(
    key: Option<String>,
    ttl: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<WaitpointIdempotency>> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(Error::Invalid(format!(
            "idempotencyKey must be {MAX_IDEMPOTENCY_KEY_LEN} characters or less"
        )));
    }
    let ttl = match ttl {
        Some(t) => parse_idempotency_ttl(t).map_err(Error::Invalid)?,
        None => None,
    };
    Ok(Some(WaitpointIdempotency {
        key,
        expires_at: now + ttl.unwrap_or(DEFAULT_IDEMPOTENCY_TTL),
    }))
}

/// What a refused wait answers.
fn refused(r: WaitRefusal) -> Error {
    match r {
        WaitRefusal::NoToken => Error::NotFound("Waitpoint not found"),
        WaitRefusal::Run(Refusal::Engine(EngineError::AlreadyFinished)) => Error::Finished,
        WaitRefusal::Run(Refusal::Engine(e)) => Error::Refused(e.to_string()),
        WaitRefusal::Run(Refusal::StaleSnapshot { .. }) => Error::StaleSnapshot { at_start: false },
    }
}

/// The packet a token is completed with (upstream's `stringifyIO`): a string as plain text,
/// anything else as superjson, which for JSON values is `{"json": value}`; nothing at all is
/// an empty packet.
pub fn token_packet(data: Option<&Value>) -> WaitpointOutput {
    match data {
        None | Some(Value::Null) => WaitpointOutput::empty(),
        Some(Value::String(s)) => WaitpointOutput {
            data: Some(s.clone()),
            data_type: "text/plain".into(),
            is_error: false,
        },
        Some(other) => WaitpointOutput {
            data: Some(json!({ "json": other }).to_string()),
            data_type: "application/super+json".into(),
            is_error: false,
        },
    }
}

impl Engine {
    fn block_error(e: StoreError) -> Error {
        match e {
            StoreError::NotFound => Error::RunNotFound,
            StoreError::Conflict { .. } => {
                Error::Invalid("idempotencyKey is already used by another kind of waitpoint".into())
            }
            other => other.into(),
        }
    }

    /// Blocks an executing run until `wait.date` (`wait.for`, `wait.until` longer than the
    /// SDK's local 5 s). With an idempotency key, a second call gets the first waitpoint (and
    /// does not wait at all if it has passed).
    pub async fn wait_for_duration(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        wait: DurationWait,
    ) -> Result<Blocked> {
        let now = self.now();
        if wait.date > now + MAX_RUN_DURATION {
            return Err(Error::Invalid(
                "date must be at most 365 days from now".into(),
            ));
        }
        let idempotency = idempotency(
            wait.idempotency_key,
            wait.idempotency_key_ttl.as_deref(),
            now,
        )?;
        let mut waitpoint = Waitpoint::new(environment_id, WaitpointKind::DateTime, now);
        waitpoint.completed_after = Some(wait.date);
        let blocked = self
            .store
            .block_run(
                environment_id,
                run_id,
                WaitFor::DateTime {
                    waitpoint: Box::new(waitpoint),
                    idempotency,
                },
                now,
            )
            .await
            .map_err(Self::block_error)?
            .map_err(refused)?;
        self.timers.wake_by(blocked.waitpoint.due_at());
        tracing::info!(run.id = %run_id, waitpoint.id = %blocked.waitpoint.friendly_id, until = %wait.date, "run waits for a time");
        Ok(blocked)
    }

    /// Blocks an executing run until a token of its environment is completed or times out; a
    /// completed token continues it at once.
    pub async fn wait_for_token(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        token: &WaitpointFriendlyId,
    ) -> Result<Blocked> {
        let blocked = self
            .store
            .block_run(
                environment_id,
                run_id,
                WaitFor::Token(token.clone()),
                self.now(),
            )
            .await
            .map_err(Self::block_error)?
            .map_err(refused)?;
        tracing::info!(run.id = %run_id, waitpoint.id = %token, "run waits for a token");
        Ok(blocked)
    }

    /// Makes a token (or returns the one with the same live idempotency key: `true`).
    pub async fn create_token(
        &self,
        environment_id: &EnvironmentId,
        request: TokenRequest,
    ) -> Result<(Waitpoint, bool)> {
        let now = self.now();
        let idempotency = idempotency(
            request.idempotency_key,
            request.idempotency_key_ttl.as_deref(),
            now,
        )?;
        let mut token = Waitpoint::new(environment_id, WaitpointKind::Manual, now);
        token.timeout_at = match &request.timeout {
            None => None,
            Some(t) => parse_deadline("timeout", t, now).map_err(Error::Invalid)?,
        };
        token.tags = crate::trigger::tags(request.tags.as_ref())?;
        let (token, cached) = self
            .store
            .create_token(token, idempotency, now)
            .await
            .map_err(Self::block_error)?;
        if !cached {
            self.timers.wake_by(token.due_at());
        }
        Ok((token, cached))
    }

    /// Makes a run's wait for the next record of one of its input streams
    /// (`inputStream.wait()`): a token that completes with the first record after the one the
    /// task saw last (at once when it is already there), or times out. The run blocks on it
    /// as on any token.
    pub async fn wait_for_input_stream(
        &self,
        environment_id: &EnvironmentId,
        run_id: &RunFriendlyId,
        request: InputStreamWaitRequest,
    ) -> Result<(Waitpoint, bool)> {
        if request.stream_id.is_empty() || request.stream_id.len() > MAX_STREAM_ID_BYTES {
            return Err(Error::InvalidBody(format!(
                "streamId must be 1 to {MAX_STREAM_ID_BYTES} bytes"
            )));
        }
        // S2 numbers a stream's records from 0; taskgate's chunks from 1.
        let after_seq = match request.last_seq_num {
            None => 0,
            Some(n) if (0..1 << 53).contains(&n) => n + 1,
            Some(_) => return Err(Error::InvalidBody("lastSeqNum must be 0 or more".into())),
        };
        let run = self
            .store
            .get_run(environment_id, run_id)
            .await?
            .ok_or(Error::RunNotFound)?;
        let now = self.now();
        let t = request.token;
        let idempotency = idempotency(t.idempotency_key, t.idempotency_key_ttl.as_deref(), now)?;
        let mut token = Waitpoint::new(environment_id, WaitpointKind::Manual, now);
        token.timeout_at = match &t.timeout {
            None => None,
            Some(v) => parse_deadline("timeout", v, now).map_err(Error::Invalid)?,
        };
        token.tags = crate::trigger::tags(t.tags.as_ref())?;
        let (token, cached) = self
            .store
            .create_input_stream_wait(
                token,
                &run.id,
                &request.stream_id,
                after_seq,
                idempotency,
                now,
            )
            .await
            .map_err(Self::block_error)?;
        if !cached {
            self.timers.wake_by(token.due_at());
        }
        tracing::info!(run.id = %run_id, waitpoint.id = %token.friendly_id, stream = %request.stream_id, "run waits for an input stream");
        Ok((token, cached))
    }

    /// A record was sent to a run's input stream: the run's waits for that stream complete
    /// with its `data`.
    pub async fn input_stream_record_sent(
        &self,
        run_id: &taskgate_core::ids::RunId,
        stream: &str,
        data: &Value,
    ) -> Result<u64> {
        let output = WaitpointOutput {
            data: Some(data.to_string()),
            data_type: "application/json".into(),
            is_error: false,
        };
        Ok(self
            .store
            .complete_input_stream_waits(run_id, stream, output, self.now())
            .await?)
    }

    /// A token of the environment.
    pub async fn token(
        &self,
        environment_id: &EnvironmentId,
        id: &WaitpointFriendlyId,
    ) -> Result<Waitpoint> {
        match self.store.get_waitpoint(environment_id, id).await? {
            Some(w) if w.kind == WaitpointKind::Manual => Ok(w),
            _ => Err(Error::NotFound("Waitpoint not found")),
        }
    }

    /// A page of the environment's tokens, newest first.
    pub async fn list_tokens(
        &self,
        environment_id: &EnvironmentId,
        filter: &TokenFilter,
        page: &TokenPage,
    ) -> Result<Vec<Waitpoint>> {
        Ok(self.store.list_tokens(environment_id, filter, page).await?)
    }

    /// Completes a token with `data` (see [`token_packet`]) and continues the runs waiting for
    /// it. Completing a completed token changes nothing and succeeds.
    pub async fn complete_token(
        &self,
        environment_id: &EnvironmentId,
        id: &WaitpointFriendlyId,
        data: Option<&Value>,
    ) -> Result<Waitpoint> {
        let packet = token_packet(data);
        if packet
            .data
            .as_ref()
            .is_some_and(|d| d.len() > self.settings.max_payload_bytes)
        {
            return Err(Error::PayloadTooLarge(self.settings.max_payload_bytes));
        }
        let done = self
            .store
            .complete_token(environment_id, id, packet, self.now())
            .await?
            .ok_or(Error::NotFound("Waitpoint not found"))?;
        tracing::info!(waitpoint.id = %id, "token completed");
        Ok(done)
    }

    fn callback_mac(&self, w: &Waitpoint) -> String {
        let digest = hmac_sha256(
            self.signing_secret.expose_secret(),
            format!("taskgate:waitpoint-callback:{}", w.id).as_bytes(),
        );
        hex::encode(&digest[..CALLBACK_MAC_HEX_LEN / 2])
    }

    /// A token's callback URL under `base` (the public URL): a POST to it completes the token
    /// with the request's JSON body, without credentials.
    pub fn token_url(&self, base: &str, w: &Waitpoint) -> String {
        format!(
            "{base}/api/v1/waitpoints/tokens/{}/callback/{}",
            w.friendly_id,
            self.callback_mac(w)
        )
    }

    /// Completes a token through its callback URL: `mac` must be the URL's; the body is the
    /// output (anything that is not JSON counts as `{}`, as upstream).
    pub async fn complete_token_by_callback(
        &self,
        id: &WaitpointFriendlyId,
        mac: &str,
        body: &[u8],
    ) -> Result<Waitpoint> {
        let w = self
            .store
            .find_waitpoint(id)
            .await?
            .filter(|w| w.kind == WaitpointKind::Manual)
            .ok_or(Error::NotFound("Waitpoint not found"))?;
        if !constant_time_eq(mac.as_bytes(), self.callback_mac(&w).as_bytes()) {
            return Err(Error::Unauthenticated(
                "Invalid URL, hash doesn't match".into(),
            ));
        }
        let data: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
        self.complete_token(&w.environment_id, id, Some(&data))
            .await
    }
}
