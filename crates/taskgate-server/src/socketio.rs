//! The `/dev-worker` socket.io channel `trigger.dev dev` keeps open, so that a cancellation (or
//! a run the engine ended on its own) reaches a running attempt at once instead of at the
//! CLI's next 5-second snapshot poll.
//!
//! The CLI connects with socket.io-client v4 over the WebSocket transport only, so this speaks
//! just that much of the protocols: Engine.IO v4 (`0` open with the ping settings, `2`/`3`
//! ping and pong, `1` close) carrying Socket.IO v5 packets (`40` namespace connect, `41`
//! disconnect, `42` events, `44` connect error). The client subscribes to runs with
//! `run:subscribe {version, runFriendlyIds}` and unsubscribes with `run:unsubscribe`; the
//! server emits `run:notify {version: "1", run: {friendlyId}}` when one needs the worker's
//! attention, and the worker then reads the run's latest snapshot.
//!
//! The upgrade request carries the environment's secret key; a subscription only ever hears
//! of that environment's runs.
//!
//! The same channel serves a deployed run's controller as namespace `/workload` on the
//! runner's loopback listener: it announces its run with `run:start {run: {friendlyId}}` (and
//! `run:stop`), authenticated by the runner id it was started with, and hears only of that
//! run.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::auth::extract::SecretKeyAuth;
use crate::error::ApiError;
use crate::state::AppState;
use taskgate_engine::watchers::worker_key;
use taskgate_engine::Engine;

/// The namespace the CLI connects to.
const NAMESPACE: &str = "/dev-worker";
/// The namespace a deployed run's controller connects to.
const WORKLOAD_NAMESPACE: &str = "/workload";
/// Engine.IO ping settings sent in the open packet (socket.io's defaults).
const PING_INTERVAL: Duration = Duration::from_secs(25);
const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest frame read; the CLI's packets are a few hundred bytes.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Most runs one connection may be subscribed to (the CLI holds at most its concurrency).
const MAX_SUBSCRIPTIONS: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct HandshakeQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
}

/// `GET /socket.io/?EIO=4&transport=websocket`: the upgrade.
pub async fn socket_io(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    Query(q): Query<HandshakeQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if q.eio.as_deref() != Some("4") || q.transport.as_deref() != Some("websocket") {
        return Err(ApiError::bad_request(
            "Only Engine.IO 4 over the websocket transport is served",
        ));
    }
    let channel = Channel {
        namespace: NAMESPACE,
        env_id: principal.env.environment.id.to_string(),
        only_run: None,
    };
    let engine = state.engine.clone();
    Ok(ws
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(engine, channel, socket)))
}

/// `GET /socket.io/?EIO=4&transport=websocket` on the runner's loopback listener: a deployed
/// run's controller, known by its runner id.
pub async fn workload_socket_io(
    State(runner): State<std::sync::Arc<taskgate_runner::Runner>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<HandshakeQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if q.eio.as_deref() != Some("4") || q.transport.as_deref() != Some("websocket") {
        return Err(ApiError::bad_request(
            "Only Engine.IO 4 over the websocket transport is served",
        ));
    }
    let id = headers
        .get("x-trigger-workload-runner-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let active = runner
        .active(id)
        .ok_or_else(|| ApiError::unauthorized("Unknown runner"))?;
    let channel = Channel {
        namespace: WORKLOAD_NAMESPACE,
        env_id: active.environment_id.to_string(),
        only_run: Some(active.run.to_string()),
    };
    let engine = runner.engine().clone();
    Ok(ws
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(engine, channel, socket)))
}

/// Whose connection this is: its namespace, its environment, and the one run it may hear of
/// (a deployed run's controller).
struct Channel {
    namespace: &'static str,
    env_id: String,
    only_run: Option<String>,
}

/// One parsed client packet.
#[derive(Debug, PartialEq)]
enum Packet {
    Pong,
    Close,
    Connect,
    Disconnect,
    Event { name: String, data: Value },
    Other,
}

/// Parses an Engine.IO text frame holding a Socket.IO packet for `namespace`.
fn parse(frame: &str, namespace: &str) -> Packet {
    match frame.as_bytes().first() {
        Some(b'3') => return Packet::Pong,
        Some(b'1') => return Packet::Close,
        Some(b'4') => {}
        _ => return Packet::Other,
    }
    let sio = &frame[1..];
    let (Some(kind), Some(rest)) = (sio.get(..1), sio.get(1..)) else {
        return Packet::Other;
    };
    // `/dev-worker,` prefixes packets of a namespace other than `/`.
    let Some(rest) = rest
        .strip_prefix(namespace)
        .map(|r| r.strip_prefix(',').unwrap_or(r))
    else {
        return Packet::Other;
    };
    match kind {
        "0" => Packet::Connect,
        "1" => Packet::Disconnect,
        "2" => {
            // An acknowledgement id may precede the payload; it is not answered.
            let json = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            match serde_json::from_str::<Value>(json) {
                Ok(Value::Array(mut items)) if !items.is_empty() => {
                    let data = if items.len() > 1 {
                        items.remove(1)
                    } else {
                        Value::Null
                    };
                    match items.first().and_then(Value::as_str) {
                        Some(name) => Packet::Event {
                            name: name.to_string(),
                            data,
                        },
                        None => Packet::Other,
                    }
                }
                _ => Packet::Other,
            }
        }
        _ => Packet::Other,
    }
}

fn event_frame(namespace: &str, name: &str, data: Value) -> String {
    format!("42{namespace},{}", json!([name, data]))
}

/// The runs an event names: `runFriendlyIds` (the CLI), or `run.friendlyId` (a run
/// controller).
fn run_ids(data: &Value) -> Vec<String> {
    if let Some(one) = data
        .get("run")
        .and_then(|r| r.get("friendlyId"))
        .and_then(Value::as_str)
    {
        return vec![one.to_string()];
    }
    data.get("runFriendlyIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

async fn serve(engine: std::sync::Arc<Engine>, channel: Channel, socket: WebSocket) {
    let Channel {
        namespace,
        env_id,
        only_run,
    } = channel;
    let (mut tx, mut rx) = socket.split();
    let sid = taskgate_core::ids::new_id();
    let open = json!({
        "sid": sid, "upgrades": [], "pingInterval": PING_INTERVAL.as_millis() as u64,
        "pingTimeout": PING_TIMEOUT.as_millis() as u64, "maxPayload": MAX_FRAME_BYTES,
    });
    if tx
        .send(Message::Text(format!("0{open}").into()))
        .await
        .is_err()
    {
        return;
    }
    metrics::gauge!("taskgate_dev_worker_sockets").increment(1.0);
    // Subscriptions forward the friendly ids of runs needing attention here.
    let (notify_tx, mut notify_rx) = mpsc::channel::<(String, Option<std::time::Instant>)>(64);
    let mut subscriptions: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let mut awaiting_pong: Option<tokio::time::Instant> = None;
    let shutdown = engine.shutdown().wait();
    tokio::pin!(shutdown);
    loop {
        let pong_deadline = async {
            match awaiting_pong {
                Some(since) => tokio::time::sleep_until(since + PING_TIMEOUT).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ping.tick() => {
                if tx.send(Message::Text("2".into())).await.is_err() { break; }
                awaiting_pong.get_or_insert(tokio::time::Instant::now());
            }
            _ = pong_deadline => break,
            // The server is stopping: close, and the CLI reconnects to the next one.
            _ = &mut shutdown => {
                let _ = tx.send(Message::Text("1".into())).await;
                break;
            }
            Some((run, signalled)) = notify_rx.recv() => {
                let frame = event_frame(namespace, "run:notify", json!({ "version": "1", "run": { "friendlyId": run } }));
                if tx.send(Message::Text(frame.into())).await.is_err() { break; }
                // From the commit that changed the run (or its notification's arrival from
                // another node) to the worker's socket.
                if let Some(at) = signalled {
                    metrics::histogram!("taskgate_run_notify_seconds").record(at.elapsed().as_secs_f64());
                }
            }
            frame = rx.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => continue,
                    _ => break,
                };
                match parse(&text, namespace) {
                    Packet::Pong => awaiting_pong = None,
                    Packet::Close => break,
                    Packet::Connect => {
                        let reply = format!("40{namespace},{}", json!({ "sid": sid }));
                        if tx.send(Message::Text(reply.into())).await.is_err() { break; }
                    }
                    Packet::Disconnect => break,
                    Packet::Event { name, data } if name == "run:subscribe" || name == "run:start" => {
                        for run in run_ids(&data) {
                            if subscriptions.len() >= MAX_SUBSCRIPTIONS || subscriptions.contains_key(&run) {
                                continue;
                            }
                            if only_run.as_ref().is_some_and(|only| *only != run) {
                                continue;
                            }
                            let handle = subscribe(engine.watchers(), &env_id, &run, notify_tx.clone());
                            subscriptions.insert(run, handle);
                        }
                    }
                    Packet::Event { name, data } if name == "run:unsubscribe" || name == "run:stop" => {
                        for run in run_ids(&data) {
                            if let Some(h) = subscriptions.remove(&run) { h.abort(); }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for (_, h) in subscriptions {
        h.abort();
    }
    metrics::gauge!("taskgate_dev_worker_sockets").decrement(1.0);
}

/// After a change, the notification is sent again this long after it, and again after the
/// second delay, unless the run changes again first. The CLI drops a notification that arrives
/// while it is still acting on the previous snapshot (one lock covers reading and acting), so
/// a change right after another, such as a cancel just after a run started to wait, would
/// otherwise wait for its 5 s poll; a repeat it does not need costs it one read.
const NOTIFY_REPEATS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// Watches one run of the environment; each change that needs the worker's attention sends
/// its friendly id, repeated per [`NOTIFY_REPEATS`]. A run of another environment is never
/// signalled: the watch is keyed by this environment.
fn subscribe(
    watchers: &std::sync::Arc<taskgate_engine::Watchers>,
    env_id: &str,
    friendly_id: &str,
    notify: mpsc::Sender<(String, Option<std::time::Instant>)>,
) -> tokio::task::JoinHandle<()> {
    let mut watch = watchers.watch(worker_key(env_id, friendly_id));
    watch.rx.borrow_and_update();
    let friendly = friendly_id.to_string();
    tokio::spawn(async move {
        // The repeats still due after the last change, soonest first.
        let mut repeats: Vec<tokio::time::Instant> = Vec::new();
        loop {
            let next_repeat = repeats.first().copied();
            let signalled = tokio::select! {
                changed = watch.rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = tokio::time::Instant::now();
                    let mut at = now;
                    repeats = NOTIFY_REPEATS.iter().map(|d| { at += *d; at }).collect();
                    watch.rx.borrow().at
                }
                _ = async {
                    match next_repeat {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    repeats.remove(0);
                    None
                }
            };
            if notify.send((friendly.clone(), signalled)).await.is_err() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_of_the_dev_worker_namespace_parse() {
        assert_eq!(parse("3", NAMESPACE), Packet::Pong);
        assert_eq!(parse("40/dev-worker,", NAMESPACE), Packet::Connect);
        assert_eq!(
            parse("40/dev-worker,{\"token\":\"x\"}", NAMESPACE),
            Packet::Connect
        );
        assert_eq!(parse("41/dev-worker,", NAMESPACE), Packet::Disconnect);
        assert_eq!(
            parse(
                r#"42/dev-worker,["run:subscribe",{"version":"1","runFriendlyIds":["run_a"]}]"#,
                NAMESPACE
            ),
            Packet::Event {
                name: "run:subscribe".into(),
                data: json!({"version":"1","runFriendlyIds":["run_a"]})
            }
        );
        assert_eq!(
            parse(
                r#"42/dev-worker,7["run:unsubscribe",{"runFriendlyIds":[]}]"#,
                NAMESPACE
            ),
            Packet::Event {
                name: "run:unsubscribe".into(),
                data: json!({"runFriendlyIds":[]})
            }
        );
        assert_eq!(
            parse("40", NAMESPACE),
            Packet::Other,
            "the root namespace is not served"
        );
        assert_eq!(parse("42/other,[\"x\"]", NAMESPACE), Packet::Other);
        assert_eq!(parse("42/dev-worker,not json", NAMESPACE), Packet::Other);
        assert_eq!(parse("", NAMESPACE), Packet::Other);
        assert_eq!(parse("4", NAMESPACE), Packet::Other);
        assert_eq!(
            parse("4é", NAMESPACE),
            Packet::Other,
            "a multi-byte character after the type"
        );
    }

    #[test]
    fn notifications_are_socket_io_events() {
        assert_eq!(
            event_frame(
                NAMESPACE,
                "run:notify",
                json!({"version":"1","run":{"friendlyId":"run_a"}})
            ),
            r#"42/dev-worker,["run:notify",{"run":{"friendlyId":"run_a"},"version":"1"}]"#
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_is_notified_at_once_and_repeated_twice() {
        let watchers = std::sync::Arc::new(taskgate_engine::Watchers::default());
        let (tx, mut rx) = mpsc::channel(8);
        let task = subscribe(&watchers, "env_a", "run_a", tx);
        tokio::task::yield_now().await;
        let start = tokio::time::Instant::now();
        watchers.notify(&worker_key("env_a", "run_a"));
        let mut heard = Vec::new();
        // Nothing more comes after the repeats: the wait ends at the timeout.
        while let Ok(Some((run, _))) =
            tokio::time::timeout(Duration::from_secs(30), rx.recv()).await
        {
            assert_eq!(run, "run_a");
            heard.push(start.elapsed().as_millis());
        }
        assert_eq!(heard, vec![0, 1000, 3000]);
        // Another environment's run of the same id is not this subscription's.
        watchers.notify(&worker_key("env_b", "run_a"));
        assert!(tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .is_err());
        task.abort();
    }

    #[test]
    fn a_run_controller_names_its_run_on_the_workload_namespace() {
        let start = r#"42/workload,["run:start",{"version":"1","run":{"friendlyId":"run_b"},"snapshot":{"friendlyId":"snapshot_1"}}]"#;
        match parse(start, WORKLOAD_NAMESPACE) {
            Packet::Event { name, data } => {
                assert_eq!(name, "run:start");
                assert_eq!(run_ids(&data), vec!["run_b".to_string()]);
            }
            other => panic!("not an event: {other:?}"),
        }
        assert_eq!(parse(start, NAMESPACE), Packet::Other, "another namespace");
    }
}
