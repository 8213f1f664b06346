//! `trigger.dev login`'s browser flow: the authorization code, the consent page and the token.

use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::json;

use crate::common::{Backend, Page, TestApp};

/// RFC 7636's example pair.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn start(app: &TestApp, callback_port: Option<u16>) -> (String, String) {
    let mut body = json!({ "codeChallenge": CHALLENGE, "codeChallengeMethod": "S256" });
    if let Some(p) = callback_port {
        body["callbackPort"] = json!(p);
    }
    let r = app
        .api(Method::POST, "/api/v1/authorization-code", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(
        v["approval"],
        if callback_port.is_some() {
            "callback"
        } else {
            "paste"
        }
    );
    let code = v["authorizationCode"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 64);
    assert_eq!(
        v["url"],
        format!("http://127.0.0.1:3030/account/authorization-code/{code}")
    );
    let consent = format!("/account/authorization-code/{code}");
    (code, consent)
}

async fn redeem(app: &TestApp, code: &str, verifier: Option<&str>, approval: Option<&str>) -> Page {
    let mut body = json!({ "authorizationCode": code });
    if let Some(v) = verifier {
        body["codeVerifier"] = json!(v);
    }
    if let Some(a) = approval {
        body["approvalCode"] = json!(a);
    }
    app.api(Method::POST, "/api/v1/token", None, Some(body))
        .await
}

/// Approves on the consent page; the answer to the form.
async fn approve(app: &TestApp, consent: &str) -> Page {
    let page = app.get(consent).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("admin@taskgate.local"));
    let csrf = page.input_value("_csrf").unwrap();
    app.post_form(consent, &[("_csrf", &csrf)]).await
}

fn shown_code(page: &Page) -> String {
    let at = page.text.find("id=\"approval-code\">").unwrap() + 19;
    page.text[at..at + 14].to_string()
}

async fn a_pasted_approval_code_and_the_verifier_redeem_a_cli_token_once(b: Backend) {
    let app = TestApp::new(b).await;
    let (code, consent) = start(&app, None).await;
    let pending = redeem(&app, &code, Some(VERIFIER), Some("ABCD-EFGH-JKMN")).await;
    assert_eq!(pending.status, StatusCode::OK);
    assert_eq!(pending.json(), json!({ "token": null }), "not approved yet");

    app.sign_in("admin@taskgate.local").await;
    let approved = approve(&app, &consent).await;
    assert_eq!(approved.status, StatusCode::OK);
    assert_eq!(approved.headers["cache-control"], "no-store");
    let approval = shown_code(&approved);

    let no_proof = redeem(&app, &code, None, None).await;
    assert_eq!(
        no_proof.status,
        StatusCode::BAD_REQUEST,
        "the code alone is not enough"
    );
    let wrong_verifier = redeem(&app, &code, Some(&"x".repeat(43)), Some(&approval)).await;
    assert_eq!(wrong_verifier.status, StatusCode::BAD_REQUEST);
    let wrong_code = redeem(&app, &code, Some(VERIFIER), Some("ABCD-EFGH-JKMN")).await;
    assert_eq!(wrong_code.status, StatusCode::BAD_REQUEST);

    let typed = approval.to_lowercase().replace('-', " ");
    let done = redeem(&app, &code, Some(VERIFIER), Some(&typed)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let token = done.json()["token"]["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("tr_pat_"));
    assert!(done.json()["token"]["obfuscatedToken"]
        .as_str()
        .unwrap()
        .starts_with("tr_pat_"));
    let who = app
        .api(Method::GET, "/api/v2/whoami", Some(&token), None)
        .await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.json()["email"], "admin@taskgate.local");
    let tokens = app
        .api(
            Method::GET,
            "/api/v1/personal-access-tokens",
            Some(&token),
            None,
        )
        .await;
    assert!(tokens.text.contains("\"cli\""), "{}", tokens.text);

    let again = redeem(&app, &code, Some(VERIFIER), Some(&approval)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.text.contains("already been used"));
    let reapprove = app.get(&consent).await;
    assert_eq!(reapprove.status, StatusCode::CONFLICT);
    app.cleanup().await;
}

async fn a_listening_cli_gets_the_approval_code_by_redirect(b: Backend) {
    let app = TestApp::new(b).await;
    let (code, consent) = start(&app, Some(51234)).await;
    app.sign_in("admin@taskgate.local").await;
    let page = app.get(&consent).await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:51234"),
        "{csp}"
    );
    let csrf = page.input_value("_csrf").unwrap();
    let approved = app.post_form(&consent, &[("_csrf", &csrf)]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    let location = approved.location().to_string();
    let approval = location
        .strip_prefix("http://127.0.0.1:51234/callback?approval_code=")
        .unwrap();
    let done = redeem(&app, &code, Some(VERIFIER), Some(approval)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    app.cleanup().await;
}

async fn authorization_codes_need_a_pkce_challenge_and_expire(b: Backend) {
    let app = TestApp::new(b).await;
    for body in [
        json!({}),
        json!({ "codeChallenge": "short", "codeChallengeMethod": "S256" }),
        json!({ "codeChallenge": CHALLENGE, "codeChallengeMethod": "plain" }),
        json!({ "codeChallenge": CHALLENGE, "codeChallengeMethod": "S256", "callbackPort": 80 }),
    ] {
        let r = app
            .api(
                Method::POST,
                "/api/v1/authorization-code",
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
    }
    let unknown = redeem(&app, "nope", Some(VERIFIER), Some("x")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let malformed = app
        .api(
            Method::POST,
            "/api/v1/token",
            None,
            Some(json!({ "code": 1 })),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);

    let (code, consent) = start(&app, None).await;
    app.sign_in("admin@taskgate.local").await;
    app.clock.advance(Duration::minutes(10));
    assert_eq!(app.get(&consent).await.status, StatusCode::NOT_FOUND);
    let late = redeem(&app, &code, Some(VERIFIER), Some("ABCD-EFGH-JKMN")).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.text.contains("expired"));
    app.cleanup().await;
}

async fn approving_needs_the_session_and_its_csrf_token(b: Backend) {
    let app = TestApp::new(b).await;
    let (code, consent) = start(&app, None).await;
    let anonymous = app.post_form(&consent, &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    app.sign_in("admin@taskgate.local").await;
    let forged = app.post_form(&consent, &[("_csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let pending = redeem(&app, &code, Some(VERIFIER), Some("ABCD-EFGH-JKMN")).await;
    assert_eq!(pending.json(), json!({ "token": null }));
    app.cleanup().await;
}

crate::on_both!(
    a_pasted_approval_code_and_the_verifier_redeem_a_cli_token_once,
    a_listening_cli_gets_the_approval_code_by_redirect,
    authorization_codes_need_a_pkce_challenge_and_expire,
    approving_needs_the_session_and_its_csrf_token,
);
