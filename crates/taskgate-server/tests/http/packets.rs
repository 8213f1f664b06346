//! Offloaded packets over HTTP, as the SDK moves a payload or output of 128 KiB or more: a
//! handshake with the secret key answers a signed URL; the bytes go there and come back from
//! another signed URL, byte for byte with their type. The URLs work for one packet, one
//! method and one hour; packets belong to their environment.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use serde_json::json;

use crate::common::{Backend, Response, TestApp};
use crate::engine::dev_project;
use crate::on_both;

const PATH: &str = "trigger/packet_abc/payload.json";
const ENCODED: &str = "trigger%2Fpacket_abc%2Fpayload.json";

/// The path and query of a presigned URL (the test app is reached without a host).
fn local(url: &str) -> String {
    let at = url.find("/packets/v1/").expect("a packet URL");
    url[at..].to_string()
}

async fn raw(
    app: &TestApp,
    method: Method,
    url: &str,
    kind: Option<&str>,
    body: Vec<u8>,
) -> Response {
    let mut req = Request::builder().method(method).uri(local(url));
    if let Some(kind) = kind {
        req = req.header("content-type", kind);
    }
    app.send(req.body(Body::from(body)).unwrap()).await
}

async fn handshake(app: &TestApp, method: Method, path: &str, key: &str) -> Response {
    app.request(method, path, Some(key), None, &[]).await
}

/// A SuperJSON document of about `n` bytes.
fn packet(n: usize) -> Vec<u8> {
    json!({ "json": { "blob": "é".repeat(n / 2) } })
        .to_string()
        .into_bytes()
}

async fn uploaded_packets_come_back_byte_for_byte_through_signed_urls(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = dev_project(&app).await;
    let (_, other_key) = dev_project(&app).await;

    let r = handshake(
        &app,
        Method::PUT,
        &format!("/api/v2/packets/{ENCODED}"),
        &key,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["storagePath"], PATH);
    let upload = r.body["presignedUrl"].as_str().unwrap().to_string();
    assert!(upload.contains("/packets/v1/"), "{upload}");
    let data = packet(300_000);
    let r = raw(
        &app,
        Method::PUT,
        &upload,
        Some("application/super+json"),
        data.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = handshake(
        &app,
        Method::GET,
        &format!("/api/v1/packets/{ENCODED}"),
        &key,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body.get("storagePath").is_none(), "{}", r.text);
    let download = r.body["presignedUrl"].as_str().unwrap().to_string();
    let req = Request::builder()
        .uri(local(&download))
        .body(Body::empty())
        .unwrap();
    let got = taskgate_test_support::send_via(&app.router, req).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.bytes.as_ref(), data.as_slice(), "the same bytes");
    let header = |name: &str| {
        got.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "application/super+json");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-security-policy").contains("sandbox"));
    assert_eq!(header("content-disposition"), "attachment");

    // One URL, one method: the upload URL does not read, the download URL does not write.
    let r = raw(&app, Method::GET, &upload, None, Vec::new()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = raw(
        &app,
        Method::PUT,
        &download,
        Some("text/plain"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // An altered signature, path or expiry is refused.
    let last = download.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &download[..download.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    for bad in [
        flipped,
        download.replace("packet_abc", "packet_abd"),
        download.replace("expires=", "expires=9"),
        download.split('?').next().unwrap().to_string(),
    ] {
        let r = raw(&app, Method::GET, &bad, None, Vec::new()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad}: {}", r.text);
    }
    // Another environment's same path is another packet, and it has none.
    let r = handshake(
        &app,
        Method::GET,
        &format!("/api/v1/packets/{ENCODED}"),
        &other_key,
    )
    .await;
    let theirs = r.body["presignedUrl"].as_str().unwrap().to_string();
    let r = raw(&app, Method::GET, &theirs, None, Vec::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // A URL lasts an hour.
    app.clock.advance(Duration::minutes(61));
    let r = raw(&app, Method::GET, &download, None, Vec::new()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("expired"), "{}", r.text);
    app.cleanup().await;
}

async fn packets_refuse_bad_paths_types_sizes_and_callers(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.max_packet_bytes = 128 * 1024).await;
    let (_, key) = dev_project(&app).await;
    for bad in ["..%2Fetc%2Fpasswd", "a%2F%2Fb", "a%3Cscript%3E", "%2Fabs"] {
        let r = handshake(&app, Method::PUT, &format!("/api/v2/packets/{bad}"), &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    let r = app
        .request(
            Method::PUT,
            &format!("/api/v2/packets/{ENCODED}"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = handshake(
        &app,
        Method::PUT,
        &format!("/api/v2/packets/{ENCODED}"),
        &key,
    )
    .await;
    let upload = r.body["presignedUrl"].as_str().unwrap().to_string();
    // Only the SDK's data types: nothing a browser would run.
    let r = raw(
        &app,
        Method::PUT,
        &upload,
        Some("text/html"),
        b"<script>1</script>".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // At most --max-packet-bytes.
    let r = raw(
        &app,
        Method::PUT,
        &upload,
        Some("application/json"),
        vec![b' '; 128 * 1024 + 1],
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert!(r.text.contains("131072"), "{}", r.text);
    let r = raw(
        &app,
        Method::PUT,
        &upload,
        Some("application/json"),
        vec![b' '; 128 * 1024],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.cleanup().await;
}

async fn a_run_with_an_offloaded_payload_hands_out_a_url_for_it(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = dev_project(&app).await;
    let r = handshake(
        &app,
        Method::PUT,
        &format!("/api/v2/packets/{ENCODED}"),
        &key,
    )
    .await;
    let upload = r.body["presignedUrl"].as_str().unwrap().to_string();
    let data = packet(200_000);
    let r = raw(
        &app,
        Method::PUT,
        &upload,
        Some("application/super+json"),
        data.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            "/api/v1/tasks/report/trigger",
            &key,
            json!({ "payload": PATH, "options": { "payloadType": "application/store" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();

    let run = app.get(&format!("/api/v3/runs/{id}"), &key).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert!(run.body.get("payload").is_none(), "{}", run.text);
    let url = run.body["payloadPresignedUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let got = raw(&app, Method::GET, &url, None, Vec::new()).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.text.as_bytes(), data.as_slice());

    let r = app
        .get(&format!("/api/v1/runs/{id}/packets/payload"), &key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let got = raw(
        &app,
        Method::GET,
        r.body["presignedUrl"].as_str().unwrap(),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(got.text.as_bytes(), data.as_slice());
    // Its output is not offloaded (it has none yet); nor is a field that does not exist.
    for field in ["output", "metadata"] {
        let r = app
            .get(&format!("/api/v1/runs/{id}/packets/{field}"), &key)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{field}: {}", r.text);
    }
    // A store payload must be a packet path.
    let r = app
        .post(
            "/api/v1/tasks/report/trigger",
            &key,
            json!({ "payload": "../x", "options": { "payloadType": "application/store" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    app.cleanup().await;
}

on_both!(
    uploaded_packets_come_back_byte_for_byte_through_signed_urls,
    packets_refuse_bad_paths_types_sizes_and_callers,
    a_run_with_an_offloaded_payload_hands_out_a_url_for_it
);
