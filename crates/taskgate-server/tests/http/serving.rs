//! The server on a real socket: slow clients are cut off, idle connections closed, slow
//! bodies answered 408, panics answered 500, and a shutdown ends streams at once, drains
//! other requests within its deadline and gives up on a second signal.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::{Backend, TestApp};
use crate::on_both;

/// A server on an ephemeral port, with its two signals.
struct Running {
    addr: SocketAddr,
    first: Option<oneshot::Sender<()>>,
    second: Option<oneshot::Sender<()>>,
    done: JoinHandle<()>,
}

async fn start(app: &TestApp, router: Router) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (first, first_rx) = oneshot::channel::<()>();
    let (second, second_rx) = oneshot::channel::<()>();
    let state = app.state.clone();
    let done = tokio::spawn(async move {
        taskgate_server::serve::serve(
            listener,
            router,
            state,
            async {
                let _ = first_rx.await;
            },
            async {
                let _ = second_rx.await;
            },
        )
        .await
    });
    Running {
        addr,
        first: Some(first),
        second: Some(second),
        done,
    }
}

/// Reads until the peer closes the connection or `limit` passes; what was read, and whether
/// it closed.
async fn read_until_closed(conn: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

async fn a_trickled_request_head_is_cut_off(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.server.timeouts.header_read = Duration::from_secs(1);
    })
    .await;
    let server = start(&app, app.router.clone()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let began = Instant::now();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header line every 200 ms, never the blank line that ends the head.
    let mut cut = false;
    for i in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if conn
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
    }
    let (_, closed) = read_until_closed(&mut conn, Duration::from_secs(1)).await;
    assert!(cut || closed, "the connection was held");
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "cut off after {took:?}, not about 1 s"
    );
    app.cleanup().await;
}

async fn a_head_sent_in_parts_within_the_limit_is_served(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.server.timeouts.header_read = Duration::from_secs(2);
    })
    .await;
    let server = start(&app, app.router.clone()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(b"Host: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    app.cleanup().await;
}

async fn an_idle_connection_is_closed_after_the_keepalive_timeout(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.server.timeouts.keepalive = Duration::from_secs(1);
    })
    .await;
    let server = start(&app, app.router.clone()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let began = Instant::now();
    let (text, closed) = read_until_closed(&mut conn, Duration::from_secs(4)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "the idle connection was kept past its timeout");
    assert!(
        began.elapsed() >= Duration::from_millis(900),
        "closed too early"
    );
    // A connection that never sends a byte is idle too.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(4)).await;
    assert!(closed, "a silent connection was kept");
    app.cleanup().await;
}

async fn an_oversized_request_head_is_refused(b: Backend) {
    let app = TestApp::new(b).await;
    let server = start(&app, app.router.clone()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let big = "a".repeat(100 * 1024);
    let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let _ = conn.write_all(head.as_bytes()).await;
    let (text, closed) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(closed, "{}", &text[..text.len().min(200)]);
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "{}",
        &text[..text.len().min(80)]
    );
    app.cleanup().await;
}

/// Sends a trigger's head, with `framing` (its body's length headers, the blank line and the
/// start of a body that never ends), to a server whose body deadline is 1 s; returns what it
/// answered and how long that took.
async fn answer_to_a_trickled_trigger(b: Backend, framing: &str) -> (String, Duration) {
    let app = TestApp::with_config(b, |c| {
        c.server.timeouts.body = Duration::from_secs(1);
    })
    .await;
    let (_, key) = app.project_with_key("prod").await;
    let server = start(&app, app.router.clone()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/tasks/t/trigger HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\n{framing}"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let began = Instant::now();
    let (text, _) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    let took = began.elapsed();
    app.cleanup().await;
    (text, took)
}

async fn a_trickled_body_is_answered_408(b: Backend) {
    let (text, took) =
        answer_to_a_trickled_trigger(b, "Content-Length: 100\r\n\r\n{\"payload\":").await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("The request body was not received within 1 s"),
        "{text}"
    );
    assert!(took < Duration::from_secs(3));
}

/// A body of unknown length (chunked) gets the deadline too: only a body known to be empty
/// goes without it.
async fn a_trickled_chunked_body_is_answered_408(b: Backend) {
    let (text, took) = answer_to_a_trickled_trigger(
        b,
        "Transfer-Encoding: chunked\r\n\r\nb\r\n{\"payload\":\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(took < Duration::from_secs(3));
}

async fn a_panicking_handler_answers_500(b: Backend) {
    let app = TestApp::new(b).await;
    let routes = Router::new().route(
        "/boom",
        get(|| async {
            let v: Vec<u8> = Vec::new();
            v[std::hint::black_box(3)].to_string()
        }),
    );
    let router = taskgate_server::router::with_middleware(routes, app.state.clone());
    let server = start(&app, router).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 500"), "{text}");
    assert!(
        text.ends_with(r#"{"error":"Internal Server Error"}"#),
        "{text}"
    );
    app.cleanup().await;
}

async fn a_shutdown_ends_open_streams_at_once(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.server.timeouts.shutdown = Duration::from_secs(30);
    })
    .await;
    let (project, key) = crate::engine::dev_project(&app).await;
    let worker = crate::engine::register(&app, &project, &key, &["t"]).await;
    let mut server = start(&app, app.router.clone()).await;
    // The presence stream runs 30 s; a dequeue long-polls 10 s.
    let mut sse = TcpStream::connect(server.addr).await.unwrap();
    sse.write_all(
        format!(
            "GET /engine/v1/dev/presence HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut started = [0u8; 256];
    let n = sse.read(&mut started).await.unwrap();
    assert!(String::from_utf8_lossy(&started[..n]).starts_with("HTTP/1.1 200"));
    let mut poll = TcpStream::connect(server.addr).await.unwrap();
    let body = json!({ "currentWorker": worker["id"] }).to_string();
    poll.write_all(
        format!(
            "POST /engine/v1/dev/dequeue HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    while app.state.engine.watchers().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let began = Instant::now();
    server.first.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut server.done)
        .await
        .expect("the shutdown waited on streams")
        .unwrap();
    assert!(began.elapsed() < Duration::from_secs(3));
    let (_, closed) = read_until_closed(&mut sse, Duration::from_secs(2)).await;
    assert!(closed, "the event stream was left open");
    let (answer, _) = read_until_closed(&mut poll, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"dequeuedMessages":[]}"#), "{answer}");
    drop(server.second);
    app.cleanup().await;
}

/// A request that stays in flight: its body never completes (within the 30 s body limit).
async fn stalled_request(addr: SocketAddr, key: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        format!(
            "POST /api/v1/tasks/t/trigger HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    conn
}

async fn a_shutdown_cuts_off_requests_at_its_deadline(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.server.timeouts.shutdown = Duration::from_secs(1);
    })
    .await;
    let (_, key) = app.project_with_key("prod").await;
    let mut server = start(&app, app.router.clone()).await;
    let _stalled = stalled_request(server.addr, &key).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let began = Instant::now();
    server.first.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut server.done)
        .await
        .expect("the shutdown outlived its deadline")
        .unwrap();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "it did not wait for the request ({took:?})"
    );
    drop(server.second);
    app.cleanup().await;
}

async fn a_second_signal_ends_the_shutdown_at_once(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.server.timeouts.shutdown = Duration::from_secs(60);
    })
    .await;
    let (_, key) = app.project_with_key("prod").await;
    let mut server = start(&app, app.router.clone()).await;
    let _stalled = stalled_request(server.addr, &key).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.first.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.done.is_finished(),
        "the request in flight was waited for"
    );
    server.second.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), &mut server.done)
        .await
        .expect("the second signal did not end the wait")
        .unwrap();
    app.cleanup().await;
}

async fn a_slow_handler_is_answered_503_at_the_request_deadline(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.server.timeouts.request = Duration::from_secs(1);
    })
    .await;
    let (_, key) = app.project_with_key("prod").await;
    // A body that trickles in slower than the request deadline but within the body's.
    let server = start(&app, app.router.clone()).await;
    let mut conn = stalled_request(server.addr, &key).await;
    let began = Instant::now();
    let (text, _) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(began.elapsed() < Duration::from_secs(3));
    app.cleanup().await;
}

on_both!(
    a_trickled_request_head_is_cut_off,
    a_head_sent_in_parts_within_the_limit_is_served,
    an_idle_connection_is_closed_after_the_keepalive_timeout,
    an_oversized_request_head_is_refused,
    a_trickled_body_is_answered_408,
    a_trickled_chunked_body_is_answered_408,
    a_panicking_handler_answers_500,
    a_shutdown_ends_open_streams_at_once,
    a_shutdown_cuts_off_requests_at_its_deadline,
    a_second_signal_ends_the_shutdown_at_once,
    a_slow_handler_is_answered_503_at_the_request_deadline
);
