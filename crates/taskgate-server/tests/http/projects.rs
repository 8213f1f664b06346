use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Backend, TestApp};
use crate::on_both;

async fn a_project_gets_every_environment_with_upstream_key_formats(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, _) = app.org_and_project(&token).await;
    let r = app
        .post(
            &format!("/api/v1/orgs/{org}/projects"),
            &token,
            json!({ "name": "Mobile App" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let ext = r.body["externalRef"].as_str().unwrap().to_string();
    assert!(
        ext.starts_with("proj_")
            && ext.len() == 25
            && ext[5..]
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
        "{ext}"
    );
    assert_eq!(r.body["slug"], "mobile-app");
    assert_eq!(r.body["organization"]["slug"], org.as_str());
    for (env, prefix) in [
        ("dev", "tr_dev_"),
        ("staging", "tr_stg_"),
        ("prod", "tr_prod_"),
        ("preview", "tr_preview_"),
    ] {
        let r = app
            .get(&format!("/api/v1/projects/{ext}/{env}"), &token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{env}: {}", r.text);
        let key = r.body["apiKey"].as_str().unwrap();
        assert!(
            key.starts_with(prefix) && key.len() == prefix.len() + 24,
            "{key}"
        );
        assert!(key[prefix.len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(r.body["name"], "Mobile App");
        assert_eq!(r.body["apiUrl"], "http://127.0.0.1:3030");
        assert!(r.body["projectId"].is_string());
    }
    let listed = app
        .get(&format!("/api/v1/orgs/{org}/projects"), &token)
        .await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(2));
    app.cleanup().await;
}

async fn unknown_projects_and_environments_are_clear(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (_, project) = app.org_and_project(&token).await;
    let r = app
        .get("/api/v1/projects/proj_doesnotexist0000000/prod", &token)
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Project not found"))
    );
    let r = app
        .get(&format!("/api/v1/projects/{project}/stg"), &token)
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid Params"))
    );
    assert_eq!(
        r.body["detail"],
        "The environment must be one of dev, staging, prod or preview"
    );
    let r = app
        .request(
            axum::http::Method::GET,
            &format!("/api/v1/projects/{project}/preview"),
            Some(&token),
            None,
            &[("x-trigger-branch", "nope")],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Branch not found"))
    );
    app.cleanup().await;
}

async fn keys_are_not_stored_in_plaintext(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let env_id = app
        .request(
            axum::http::Method::GET,
            "/api/v1/auth/credential",
            Some(&key),
            None,
            &[],
        )
        .await
        .body["environmentId"]
        .as_str()
        .unwrap()
        .to_string();
    let row = app
        .state
        .store
        .get_environment_auth(&env_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !row.environment.api_key_sealed.contains(&key[8..]),
        "the stored key is sealed"
    );
    assert_eq!(row.environment.api_key_last_four, key[key.len() - 4..]);
    if b == Backend::Sqlite {
        let dump = std::fs::read(app.data_dir().join("taskgate.db")).unwrap();
        let hay = String::from_utf8_lossy(&dump);
        assert!(
            !hay.contains(&key),
            "the secret key appears in the database file"
        );
        let wal = std::fs::read(app.data_dir().join("taskgate.db-wal")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&wal).contains(&key),
            "the secret key appears in the WAL"
        );
    }
    let admin = std::fs::read_to_string(app.data_dir().join("admin-token")).unwrap();
    assert!(admin.trim().starts_with("tr_pat_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["admin-token", "master.key", "session.secret"] {
            let mode = std::fs::metadata(app.data_dir().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
    app.cleanup().await;
}

async fn names_with_control_characters_are_refused(b: Backend) {
    let app = TestApp::new(b).await;
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    for branch in ["\u{0}", " ", ".", "..", "a\nb", "x\u{202E}y"] {
        let r = app
            .post(
                &format!("/api/v1/projects/{project}/branches"),
                &token,
                json!({ "env": "preview", "branch": branch }),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{branch:?}: {}", r.text);
        assert!(
            r.body["issues"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("branch must be 1 to 255 bytes"),
            "{}",
            r.text
        );
    }
    let r = app
        .post(
            &format!("/api/v1/projects/{project}/branches"),
            &token,
            json!({ "env": "preview", "branch": "feature/login" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/orgs/{org}/projects"),
            &token,
            json!({ "name": "evil\u{202E}gpj.exe" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let key = app.env_key(&token, &project, "prod").await;
    for task in ["a%00b", "a%0Ab", &"x".repeat(129)] {
        let r = app
            .post(&format!("/api/v1/tasks/{task}/trigger"), &key, json!({}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{task}: {}", r.text);
        assert!(r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("A task id must be"));
    }
    app.cleanup().await;
}

async fn api_url_follows_the_request_without_a_public_url(b: Backend) {
    let app = TestApp::with_config(b, |c| c.server.public_url = None).await;
    let token = app.admin_token.clone();
    let (_, project) = app.org_and_project(&token).await;
    let path = format!("/api/v1/projects/{project}/prod");
    let get = |headers: &'static [(&'static str, &'static str)]| {
        app.request(axum::http::Method::GET, &path, Some(&token), None, headers)
    };
    let r = get(&[("host", "taskgate.internal:3030")]).await;
    assert_eq!(r.body["apiUrl"], "http://taskgate.internal:3030");
    let r = get(&[("host", "tg.example.com"), ("x-forwarded-proto", "https")]).await;
    assert_eq!(r.body["apiUrl"], "https://tg.example.com");
    // A Host that is not a plain authority is not put into a URL.
    let r = get(&[("host", "evil.com/phish")]).await;
    assert_eq!(r.body["apiUrl"], "http://127.0.0.1:0");
    app.cleanup().await;
}

/// Two users with an organization and a project each: (first user's token, its project ref,
/// second user's token, its project ref).
async fn two_tenants(app: &TestApp) -> (String, String, String, String) {
    let mine = app.admin_token.clone();
    let (_, my_ref) = app.org_and_project(&mine).await;
    let (_, theirs) = app.user("other@example.com").await;
    let (_, their_ref) = app.org_and_project(&theirs).await;
    (mine, my_ref, theirs, their_ref)
}

async fn every_project_of_the_callers_organizations_is_listed(b: Backend) {
    let app = TestApp::new(b).await;
    let (mine, my_ref, theirs, their_ref) = two_tenants(&app).await;
    let r = app.get("/api/v1/projects", &mine).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let refs: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["externalRef"].as_str().unwrap())
        .collect();
    assert_eq!(refs, vec![my_ref.as_str()]);
    assert_eq!(r.body[0]["organization"]["title"], "Acme");
    let r = app.get("/api/v1/projects", &theirs).await;
    assert_eq!(r.body[0]["externalRef"], their_ref.as_str());
    assert_eq!(
        app.get("/api/v1/projects", "tr_pat_nope").await.status,
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn a_project_is_read_by_its_ref_by_members_only(b: Backend) {
    let app = TestApp::new(b).await;
    let (mine, my_ref, theirs, _) = two_tenants(&app).await;
    let r = app.get(&format!("/api/v1/projects/{my_ref}"), &mine).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["externalRef"], my_ref.as_str());
    assert_eq!(r.body["name"], "Web");
    assert_eq!(r.body["slug"], "web");
    let r = app
        .get(&format!("/api/v1/projects/{my_ref}"), &theirs)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "Project not found");
    app.cleanup().await;
}

async fn runtimes_list_each_production_environment_undeployed(b: Backend) {
    let app = TestApp::new(b).await;
    let mine = app.admin_token.clone();
    let (org, my_ref) = app.org_and_project(&mine).await;
    let (_, theirs) = app.user("other@example.com").await;
    app.org_and_project(&theirs).await;
    let r = app.get("/api/v1/projects/runtimes", &mine).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!([{
            "organization": { "title": "Acme", "slug": org },
            "project": { "name": "Web", "slug": "web", "externalRef": my_ref },
            "environment": { "slug": "prod" },
            "deployment": null,
        }])
    );
    app.cleanup().await;
}

async fn routes_taskgate_does_not_serve_say_so(b: Backend) {
    let app = TestApp::new(b).await;
    let (mine, my_ref, _, _) = two_tenants(&app).await;
    for (path, subject) in [
        (
            "/api/v1/remote-build-provider-status".to_string(),
            "remote builds",
        ),
        ("/api/v1/query/dashboards".to_string(), "dashboards"),
        (
            format!("/api/v1/projects/{my_ref}/monitoring-alerts"),
            "monitoring alerts",
        ),
    ] {
        let r = app.get(&path, &mine).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        let error = r.body["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("taskgate does not serve {subject}:")),
            "{path}: {error}"
        );
    }
    // A route the SDK or a worker may call that has no counterpart says so, naming it.
    let r = app.get("/api/v1/nothing-here?secret=1", &mine).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let error = r.body["error"].as_str().unwrap();
    assert!(
        error.starts_with("taskgate does not serve GET /api/v1/nothing-here:"),
        "{error}"
    );
    assert!(
        !error.contains("secret"),
        "the query is not echoed: {error}"
    );
    let r = app.get("/nothing-here", &mine).await;
    assert_eq!(r.body, json!({ "error": "Not found" }));
    app.cleanup().await;
}

on_both!(
    every_project_of_the_callers_organizations_is_listed,
    a_project_is_read_by_its_ref_by_members_only,
    runtimes_list_each_production_environment_undeployed,
    routes_taskgate_does_not_serve_say_so,
    api_url_follows_the_request_without_a_public_url,
    names_with_control_characters_are_refused,
    a_project_gets_every_environment_with_upstream_key_formats,
    unknown_projects_and_environments_are_clear,
    keys_are_not_stored_in_plaintext
);
