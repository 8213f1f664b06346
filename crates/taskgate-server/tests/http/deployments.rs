//! Deployments over HTTP, as `trigger.dev deploy`, a bundle's index controller, `trigger.dev
//! promote` and the MCP server call them. Indexing a real bundle needs Node and is the
//! compatibility suite's (`tests/compat/cases/deploy.mjs`); here a deployment is indexed by
//! calling its routes as the index controller does.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::common::{Backend, Response, TestApp};
use crate::engine::manifest;
use crate::on_both;

const BOUNDARY: &str = "----taskgate-test-boundary";

/// Posts `file` as the CLI uploads a bundle: a multipart form, no credential but the URL.
async fn upload(app: &TestApp, url: &str, file: &[u8]) -> Response {
    let path = url
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .unwrap();
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nignored\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bundle.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap();
    app.send(req).await
}

async fn slot(app: &TestApp, key: &str, len: usize) -> Response {
    app.post(
        "/api/v1/artifacts",
        key,
        json!({ "type": "deployment_bundle", "contentType": "application/gzip", "contentLength": len }),
    )
    .await
}

async fn building(app: &TestApp, key: &str, hash: &str) -> String {
    let env = app.whoami_env(key).await.body["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let (d, _) = app
        .state
        .store
        .create_deployment(
            taskgate_test_support::building_deployment(&env, hash, None),
            false,
            app.state.now(),
        )
        .await
        .unwrap();
    d.friendly_id.to_string()
}

async fn the_cli_is_told_to_build_locally_and_uploads_once(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key) = app.project_with_key("prod").await;
    let r = app
        .get(
            &format!("/api/v1/projects/{project}/prod/deploy-settings"),
            &key,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["build_path"], "native_local_bundle");
    // Another environment's settings need that environment's key.
    let r = app
        .get(
            &format!("/api/v1/projects/{project}/staging/deploy-settings"),
            &key,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // Slots: only bundles, of a size in range; development is not deployed.
    let r = app
        .post(
            "/api/v1/artifacts",
            &key,
            json!({ "type": "deployment_context", "contentLength": 10 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("without --native-build"), "{}", r.text);
    for len in [0, 200 * 1024 * 1024] {
        assert_eq!(
            slot(&app, &key, len).await.status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
    let dev = app.env_key(&app.admin_token, &project, "dev").await;
    assert_eq!(slot(&app, &dev, 10).await.status, StatusCode::BAD_REQUEST);
    let r = slot(&app, &key, 5).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let url = r.body["uploadUrl"].as_str().unwrap().to_string();
    assert!(r.body["artifactKey"]
        .as_str()
        .unwrap()
        .starts_with(&format!("bundles/{project}/")));
    // The URL is the credential: a wrong secret, too many bytes, a second upload are refused.
    let (base, _) = url.rsplit_once('/').unwrap();
    let r = upload(&app, &format!("{base}/wrongsecret"), b"12345").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Not a multipart form: a JSON error like every other refusal.
    let path = url
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header("content-type", "multipart/form-data")
        .body(Body::from("x"))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .starts_with("Invalid multipart form"));
    let r = upload(&app, &url, b"123456").await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    let r = upload(&app, &url, b"12345").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = upload(&app, &url, b"12345").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.text.contains("uploaded to this URL already"),
        "{}",
        r.text
    );
    // A bundle that is not one fails its deployment, and the CLI's answer says why.
    let artifact = url
        .split("/uploads/")
        .nth(1)
        .and_then(|rest| rest.rsplit_once('/'))
        .map(|(key_part, _)| format!("bundles/{key_part}.tar.gz"))
        .unwrap();
    let r = app
        .post(
            "/api/v1/deployments",
            &key,
            json!({ "contentHash": "h1", "artifactKey": artifact, "fromBundle": true, "isNativeBuild": true, "selfHosted": false }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app.get("/api/v1/deployments", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.text);
    assert_eq!(r.body["data"][0]["status"], "FAILED");
    assert!(r.body["data"][0]["error"]["message"].as_str().is_some());
    // Bodies that are not deployments are refused plainly.
    for body in [json!({}), json!({ "contentHash": 5 })] {
        let r = app.post("/api/v1/deployments", &key, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    app.cleanup().await;
}

async fn an_indexed_deployment_is_promoted_and_read(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let first = building(&app, &key, "hash-1").await;
    let r = app.get(&format!("/api/v1/deployments/{first}"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "BUILDING");
    assert_eq!(r.body["isCurrent"], false);
    // Not deployed yet: not promotable.
    let r = app
        .post(
            &format!("/api/v1/deployments/{first}/promote"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // The index controller registers its worker: the deployment is deployed, once.
    let path = format!("/api/v1/deployments/{first}/background-workers");
    let r = app.post(&path, &key, manifest(&["hello", "bye"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let worker = r.body["id"].as_str().unwrap().to_string();
    let version = r.body["version"].as_str().unwrap().to_string();
    let r = app.post(&path, &key, manifest(&["other"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["id"],
        worker.as_str(),
        "the first registration stands"
    );
    let r = app.get(&format!("/api/v1/deployments/{first}"), &key).await;
    assert_eq!(r.body["status"], "DEPLOYED");
    assert_eq!(r.body["version"], version.as_str());
    let mut tasks: Vec<&str> = r.body["worker"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    tasks.sort_unstable();
    assert_eq!(tasks, ["bye", "hello"]);
    // Promoted by version, it is current; the current worker is its.
    let r = app
        .post(
            &format!("/api/v1/deployments/{version}/promote"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], first.as_str());
    let r = app.get(&format!("/api/v1/deployments/{first}"), &key).await;
    assert_eq!(r.body["isCurrent"], true);
    let short_code = r.body["shortCode"].as_str().unwrap().to_string();
    // The CLI's `projects list` reads the production deployment's runtime.
    let r = app.get("/api/v1/projects/runtimes", &app.admin_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let listed = r.body.as_array().unwrap();
    let mine = listed
        .iter()
        .find(|p| p["deployment"]["shortCode"] == short_code.as_str())
        .unwrap_or_else(|| panic!("{}", r.text));
    assert_eq!(mine["deployment"]["nodeMajor"], 20);
    assert_eq!(mine["deployment"]["runtimeVersion"], "20.20.2");
    // The index controller of a second one reports failure: it stays failed, the first
    // stays current.
    app.clock.advance(chrono::Duration::seconds(1));
    let second = building(&app, &key, "hash-2").await;
    let r = app
        .post(
            &format!("/api/v1/deployments/{second}/fail"),
            &key,
            json!({ "error": { "name": "Error", "message": "Cannot find module 'x'", "stderr": "at index" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/deployments/{second}"), &key)
        .await;
    assert_eq!(r.body["status"], "FAILED");
    assert_eq!(r.body["errorData"]["message"], "Cannot find module 'x'");
    let r = app
        .post(
            &format!("/api/v1/deployments/{second}/promote"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("FAILED"), "{}", r.text);
    // Listed newest first, in pages, to a key or a JWT that may read deployments (what the
    // MCP server's list_deploys sends); not to one that may not.
    let r = app.get("/api/v1/deployments?page[size]=1", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"][0]["id"], second.as_str());
    let next = r.body["pagination"]["next"].as_str().unwrap().to_string();
    let r = app
        .get(
            &format!("/api/v1/deployments?page[size]=1&page[after]={next}"),
            &key,
        )
        .await;
    assert_eq!(r.body["data"][0]["id"], first.as_str(), "{}", r.text);
    assert_eq!(r.body["pagination"]["next"], Value::Null);
    let jwt = |scopes: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            let r = app
                .post(
                    "/api/v1/auth/jwt",
                    &key,
                    json!({ "claims": { "scopes": scopes } }),
                )
                .await;
            r.body["token"].as_str().unwrap().to_string()
        }
    };
    let reader = jwt(json!(["read:deployments"])).await;
    let r = app.get("/api/v1/deployments", &reader).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    let other = jwt(json!(["read:runs"])).await;
    assert_eq!(
        app.get("/api/v1/deployments", &other).await.status,
        StatusCode::FORBIDDEN
    );
    // Promoting takes the secret key.
    let r = app
        .post(
            &format!("/api/v1/deployments/{version}/promote"),
            &reader,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    for bad in ["page[size]=0", "page[size]=101", "page[after]=nope"] {
        let r = app.get(&format!("/api/v1/deployments?{bad}"), &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    // Another environment's key sees none of it.
    let (_, staging) = app.project_with_key("staging").await;
    assert_eq!(
        app.get(&format!("/api/v1/deployments/{first}"), &staging)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;
}

on_both!(
    the_cli_is_told_to_build_locally_and_uploads_once,
    an_indexed_deployment_is_promoted_and_read
);
