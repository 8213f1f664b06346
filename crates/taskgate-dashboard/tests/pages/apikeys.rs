//! The API keys page: the key, regenerating it with a typed confirmation, and the previous
//! key's grace window, visible and (for administrators) controllable.

use axum::http::StatusCode;

use crate::common::{Backend, TestApp};

/// Signs the admin in and opens the prod keys page: (app's page path, prod key).
async fn keys_page(app: &TestApp) -> (String, String, String) {
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "prod").await;
    app.sign_in("admin@taskgate.local").await;
    (
        format!("/orgs/{org}/projects/{project}/env/prod/apikeys"),
        project,
        key,
    )
}

async fn the_page_shows_the_key_masked_and_how_to_use_it(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, _, key) = keys_page(&app).await;
    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let masked = format!("tr_prod_{}{}", "\u{2022}".repeat(8), &key[key.len() - 4..]);
    assert!(page.text.contains(&masked), "{}", page.text);
    assert!(page.text.contains("TRIGGER_SECRET_KEY"));
    assert!(page.text.contains("Root API key"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.text.contains("None: no previous key still works."));
    app.cleanup().await;
}

async fn regenerating_needs_the_typed_words(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, _, key) = keys_page(&app).await;
    let page = app.get(&path).await;
    let csrf = page.input_value("_csrf").unwrap();
    let words = page.attr("data-confirm").unwrap();
    assert!(page
        .text
        .contains("The previous key stays valid for 24 hours so you can roll out the new key"));
    let wrong = app
        .post_form(
            &format!("{path}/regenerate"),
            &[("_csrf", &csrf), ("confirm", "not it")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(app.key_works(&key).await);
    let no_csrf = app
        .post_form(&format!("{path}/regenerate"), &[("confirm", &words)])
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let page = app.get(&path).await;
    assert!(
        page.text.contains("None: no previous key still works."),
        "nothing rotated"
    );
    app.cleanup().await;
}

async fn after_regenerating_the_old_key_is_listed_in_its_grace_and_still_works(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, project, old) = keys_page(&app).await;
    let page = app.get(&path).await;
    let csrf = page.input_value("_csrf").unwrap();
    let words = page.attr("data-confirm").unwrap();
    let done = app
        .post_form(
            &format!("{path}/regenerate"),
            &[("_csrf", &csrf), ("confirm", &words)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), path);
    let new = app.env_key(&app.admin_token, &project, "prod").await;
    assert_ne!(new, old);

    let page = app.get(&path).await;
    assert!(page
        .text
        .contains("API keys regenerated for production environment"));
    assert!(page.text.contains(&new), "the new key is shown once");
    assert!(page
        .text
        .contains(&format!("••••{}", &old[old.len() - 4..])));
    assert!(
        page.text
            .contains("Valid until <time datetime=\"2026-03-02T12:00:00Z\">"),
        "{}",
        page.text
    );
    assert!(
        app.key_works(&old).await,
        "the old key works through its grace"
    );
    assert!(app.key_works(&new).await);

    let reload = app.get(&path).await;
    assert!(
        !reload.text.contains("API keys regenerated"),
        "the message is shown once"
    );
    assert_ne!(
        reload.attr("data-confirm").unwrap(),
        words,
        "new words for the new key"
    );
    app.cleanup().await;
}

async fn an_administrator_ends_the_grace_now_and_the_old_key_fails_at_once(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, _, old) = keys_page(&app).await;
    let page = app.get(&path).await;
    let csrf = page.input_value("_csrf").unwrap();
    let words = page.attr("data-confirm").unwrap();
    app.post_form(
        &format!("{path}/regenerate"),
        &[("_csrf", &csrf), ("confirm", &words)],
    )
    .await;
    assert!(app.key_works(&old).await);
    let page = app.get(&path).await;
    let end = page
        .text
        .find("/grace/")
        .map(|i| {
            let start = page.text[..i].rfind('"').unwrap() + 1;
            let stop = i + page.text[i..].find('"').unwrap();
            page.text[start..stop].to_string()
        })
        .unwrap();
    let ended = app
        .post_form(&end, &[("_csrf", &csrf), ("action", "end")])
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", ended.text);
    assert!(!app.key_works(&old).await, "ended at once");
    let page = app.get(&path).await;
    assert!(page.text.contains("no longer works"));
    assert!(page.text.contains("None: no previous key still works."));
    assert!(page.text.contains("Retired keys"));

    let extended = app
        .post_form(
            &end,
            &[("_csrf", &csrf), ("action", "extend"), ("hours", "24")],
        )
        .await;
    assert_eq!(extended.status, StatusCode::SEE_OTHER);
    assert!(app.key_works(&old).await, "extended again from now");
    let odd = app
        .post_form(
            &end,
            &[("_csrf", &csrf), ("action", "extend"), ("hours", "100000")],
        )
        .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

async fn members_without_admin_cannot_change_a_grace_and_strangers_see_nothing(b: Backend) {
    let app = TestApp::new(b).await;
    let (ada, ada_token) = app.user("ada@example.com").await;
    let _ = ada;
    let (org, project) = app.org_and_project(&ada_token).await;
    let path = format!("/orgs/{org}/projects/{project}/env/prod/apikeys");
    app.sign_in("ada@example.com").await;
    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.text.contains("/grace/"),
        "no grace controls for a non-administrator"
    );
    let csrf = page.input_value("_csrf").unwrap();
    let words = page.attr("data-confirm").unwrap();
    app.post_form(
        &format!("{path}/regenerate"),
        &[("_csrf", &csrf), ("confirm", &words)],
    )
    .await;
    let revoked = app
        .api(
            axum::http::Method::GET,
            &format!("/api/v1/projects/{project}/prod/revoked-api-keys"),
            Some(&ada_token),
            None,
        )
        .await;
    let id = revoked.json()["revokedApiKeys"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = app
        .post_form(
            &format!("{path}/grace/{id}"),
            &[("_csrf", &csrf), ("action", "end")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    app.jar.lock().unwrap().clear();
    app.user("bob@example.com").await;
    app.sign_in("bob@example.com").await;
    let stranger = app.get(&path).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    let other_org = app
        .get(&format!(
            "/orgs/not-{org}/projects/{project}/env/prod/apikeys"
        ))
        .await;
    assert_eq!(other_org.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn an_administrator_picks_another_grace_when_regenerating(b: Backend) {
    let app = TestApp::new(b).await;
    let (path, _, old) = keys_page(&app).await;
    let page = app.get(&path).await;
    assert!(page.text.contains("keep the previous key valid for"));
    let csrf = page.input_value("_csrf").unwrap();
    let words = page.attr("data-confirm").unwrap();
    let odd = app
        .post_form(
            &format!("{path}/regenerate"),
            &[("_csrf", &csrf), ("confirm", &words), ("grace", "5")],
        )
        .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    assert!(
        app.get(&path)
            .await
            .text
            .contains("None: no previous key still works."),
        "nothing rotated"
    );
    let done = app
        .post_form(
            &format!("{path}/regenerate"),
            &[("_csrf", &csrf), ("confirm", &words), ("grace", "1")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let page = app.get(&path).await;
    assert!(
        page.text
            .contains("Valid until <time datetime=\"2026-03-01T13:00:00Z\">"),
        "{}",
        page.text
    );
    // One rotation, recorded once with the chosen window: not a rotation with the default
    // window and then a separate change of it.
    let audit = app
        .api(
            axum::http::Method::GET,
            "/admin/api/v1/audit-events",
            Some(&app.admin_token),
            None,
        )
        .await
        .json();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.contains("key"))
        .collect();
    assert_eq!(actions, ["api_key.rotated"], "{audit}");
    app.clock.advance(chrono::Duration::minutes(61));
    assert!(!app.key_works(&old).await, "the hour is over");
    app.cleanup().await;
}

crate::on_both!(
    an_administrator_picks_another_grace_when_regenerating,
    the_page_shows_the_key_masked_and_how_to_use_it,
    regenerating_needs_the_typed_words,
    after_regenerating_the_old_key_is_listed_in_its_grace_and_still_works,
    an_administrator_ends_the_grace_now_and_the_old_key_fails_at_once,
    members_without_admin_cannot_change_a_grace_and_strangers_see_nothing,
);
