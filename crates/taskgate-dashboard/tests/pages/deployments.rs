//! The deployments page: an environment's versions, which one runs, a failed one's error,
//! promoting another; and the notice on a deployed environment's runs that nothing runs there
//! until a version is deployed.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Backend, TestApp};

/// A deployment of the environment of `key`, indexed (its worker registered as a bundle's
/// index controller does): its version.
async fn deployed(app: &TestApp, key: &str, hash: &str) -> String {
    let env = app
        .api(Method::POST, "/api/v1/auth/jwt/claims", Some(key), None)
        .await;
    let env = env.json()["sub"].as_str().unwrap().to_string();
    let (d, _) = app
        .state
        .store
        .create_deployment(
            taskgate_test_support::building_deployment(
                &env,
                hash,
                Some(r#"{"commitMessage":"Ship the greeter"}"#),
            ),
            false,
            app.state.now(),
        )
        .await
        .unwrap();
    let tasks = vec![json!({ "id": "hello", "filePath": "src/hello.ts" })];
    let r = app
        .api(
            Method::POST,
            &format!("/api/v1/deployments/{}/background-workers", d.friendly_id),
            Some(key),
            Some(json!({ "metadata": { "contentHash": hash, "packageVersion": "4.8.3", "tasks": tasks } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    d.version
}

async fn versions_are_listed_and_promoted_from_the_page(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "prod").await;
    app.sign_in("admin@taskgate.local").await;
    let base = format!("/orgs/{org}/projects/{project}/env/prod");
    // Nothing deployed: the runs and deployments pages say that runs wait.
    let r = app
        .api(
            Method::POST,
            "/api/v1/tasks/hello/trigger",
            Some(&key),
            Some(json!({ "payload": {} })),
        )
        .await;
    let run = r.json()["id"].as_str().unwrap().to_string();
    for path in [
        format!("{base}/runs"),
        format!("{base}/runs/{run}"),
        format!("{base}/deployments"),
    ] {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        assert!(
            page.text.contains("No version is deployed"),
            "{path}: {}",
            page.text
        );
    }
    // Two versions; the first promoted through the API, the second then from the page.
    let first = deployed(&app, &key, "h1").await;
    app.clock.advance(chrono::Duration::seconds(1));
    let second = deployed(&app, &key, "h2").await;
    let r = app
        .api(
            Method::POST,
            &format!("/api/v1/deployments/{first}/promote"),
            Some(&key),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page = app.get(&format!("{base}/deployments")).await;
    assert!(!page.text.contains("No version is deployed"));
    assert!(page.text.contains(&first) && page.text.contains(&second));
    assert!(page.text.contains("Ship the greeter"));
    assert!(page.text.contains("current"));
    let promote = format!("{base}/deployments/{second}/promote");
    assert!(
        page.text.contains(&promote),
        "the other version offers Promote"
    );
    assert!(
        !page
            .text
            .contains(&format!("{base}/deployments/{first}/promote")),
        "the current one does not"
    );
    let runs = app.get(&format!("{base}/runs")).await;
    assert!(!runs.text.contains("No version is deployed"));
    assert_eq!(
        app.post_form(&promote, &[]).await.status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let csrf = page.input_value("_csrf").unwrap();
    let done = app.post_form(&promote, &[("_csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let page = app.get(&format!("{base}/deployments")).await;
    assert!(
        page.text.contains(&format!("Version {second} is current")),
        "{}",
        page.text
    );
    let r = app
        .api(
            Method::GET,
            &format!("/api/v1/deployments/{second}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["isCurrent"], true);
    // A version that is not deployed cannot be promoted; it is said plainly.
    let missing = app
        .post_form(
            &format!("{base}/deployments/20990101.1/promote"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // A developer reads the page but promotes nothing.
    app.user("dev@example.com").await;
    app.api(
        Method::POST,
        &format!("/api/v1/orgs/{org}/members"),
        Some(&app.admin_token),
        Some(json!({ "email": "dev@example.com", "role": "developer" })),
    )
    .await;
    app.jar.lock().unwrap().clear();
    app.sign_in("dev@example.com").await;
    let page = app.get(&format!("{base}/deployments")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(!page.text.contains("/promote"), "{}", page.text);
    let csrf = page.input_value("_csrf").unwrap();
    assert_eq!(
        app.post_form(
            &format!("{base}/deployments/{first}/promote"),
            &[("_csrf", &csrf)]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

crate::on_both!(versions_are_listed_and_promoted_from_the_page);
