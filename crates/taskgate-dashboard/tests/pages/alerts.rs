//! The alerts page: owners and admins make a webhook channel (its secret shown once), disable
//! and delete it; a developer reads the page and changes nothing.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Backend, TestApp};

async fn administrators_make_switch_and_delete_alert_channels(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    app.sign_in("admin@taskgate.local").await;
    let base = format!("/orgs/{org}/projects/{project}/env/prod");
    let page = app.get(&format!("{base}/alerts")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("No alert channels yet"), "{}", page.text);
    let csrf = page.input_value("_csrf").unwrap();
    let create = format!("{base}/alerts/channels");
    assert_eq!(
        app.post_form(&create, &[("name", "ops")]).await.status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let bad = app
        .post_form(
            &create,
            &[
                ("_csrf", &csrf),
                ("name", "ops"),
                ("channel", "webhook"),
                ("url", "http://10.0.0.5/in"),
                ("type", "run_failure"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let made = app
        .post_form(
            &create,
            &[
                ("_csrf", &csrf),
                ("name", "<b>ops</b>"),
                ("channel", "webhook"),
                ("url", "https://hooks.example.com/secret-path-token"),
                ("type", "run_failure"),
                ("type", "deployment_failure"),
                ("env", "PRODUCTION"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    assert!(made.text.contains("shown once"), "{}", made.text);
    assert!(made.text.contains("&lt;b&gt;ops&lt;/b&gt;") && !made.text.contains("<b>ops"));
    assert!(made.text.contains("https://hooks.example.com/…"));
    assert!(
        !made.text.contains("secret-path-token"),
        "the URL's path is not shown"
    );
    assert!(made.text.contains("deployment_failure"));
    let id = made
        .text
        .split("alert_channel_")
        .nth(1)
        .map(|rest| format!("alert_channel_{}", &rest[..24]))
        .unwrap();
    let page = app.get(&format!("{base}/alerts")).await;
    assert!(
        !page.text.contains("shown once"),
        "the secret is shown only once"
    );
    let disable = format!("{base}/alerts/channels/{id}/disable");
    let done = app.post_form(&disable, &[("_csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let page = app.get(&format!("{base}/alerts")).await;
    assert!(page.text.contains("disabled"), "{}", page.text);
    assert!(page
        .text
        .contains(&format!("{base}/alerts/channels/{id}/enable")));

    // A developer reads the page and changes nothing.
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
    let page = app.get(&format!("{base}/alerts")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&id) && !page.text.contains("New channel"));
    let dev_csrf = page.input_value("_csrf").unwrap_or_default();
    let r = app
        .post_form(
            &format!("{base}/alerts/channels/{id}/delete"),
            &[("_csrf", &dev_csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    app.jar.lock().unwrap().clear();
    app.sign_in("admin@taskgate.local").await;
    let page = app.get(&format!("{base}/alerts")).await;
    let csrf = page.input_value("_csrf").unwrap();
    let r = app
        .post_form(
            &format!("{base}/alerts/channels/{id}/delete"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(app
        .get(&format!("{base}/alerts"))
        .await
        .text
        .contains("No alert channels yet"));
    app.cleanup().await;
}

crate::on_both!(administrators_make_switch_and_delete_alert_channels);
