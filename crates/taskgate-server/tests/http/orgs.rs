use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::common::{Backend, TestApp};
use crate::on_both;

async fn creating_an_org_makes_the_creator_its_owner(b: Backend) {
    let app = TestApp::new(b).await;
    let (alice_id, alice) = app.user("alice@example.com").await;
    let r = app
        .post("/api/v1/orgs", &alice, json!({ "title": "Acme, Inc." }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["slug"], "acme-inc");
    let r = app.get("/api/v1/orgs", &alice).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    let r = app.get("/api/v1/orgs/acme-inc/members", &alice).await;
    assert_eq!(r.body[0]["userId"], alice_id.as_str());
    assert_eq!(r.body[0]["role"], "owner");
    // A second org with the same title gets a distinct slug.
    let r = app
        .post("/api/v1/orgs", &alice, json!({ "title": "Acme, Inc." }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let slug = r.body["slug"].as_str().unwrap_or_default();
    assert!(
        slug.starts_with("acme-inc-") && slug.len() > "acme-inc-".len(),
        "a distinct slug from the same title, got {slug:?}"
    );
    app.cleanup().await;
}

async fn members_get_a_dev_environment_in_every_project(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, owner) = app.user("owner@example.com").await;
    let (_, dev) = app.user("dev@example.com").await;
    let (org, project) = app.org_and_project(&owner).await;
    // Not a member yet: 403 on the org, 404 on its project.
    assert_eq!(
        app.get(&format!("/api/v1/orgs/{org}/projects"), &dev)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(&format!("/api/v1/projects/{project}/dev"), &dev)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &owner,
            json!({ "email": "dev@example.com", "role": "developer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["role"], "developer");
    let owner_dev = app.env_key(&owner, &project, "dev").await;
    let dev_dev = app.env_key(&dev, &project, "dev").await;
    assert!(dev_dev.starts_with("tr_dev_") && owner_dev.starts_with("tr_dev_"));
    assert_ne!(
        owner_dev, dev_dev,
        "each member has their own dev environment"
    );
    let again = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &owner,
            json!({ "email": "dev@example.com", "role": "viewer" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let nobody = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &owner,
            json!({ "email": "ghost@example.com", "role": "viewer" }),
        )
        .await;
    assert_eq!(
        (nobody.status, nobody.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("User not found"))
    );
    let bad_role = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &owner,
            json!({ "email": "dev@example.com", "role": "god" }),
        )
        .await;
    assert_eq!(bad_role.status, StatusCode::BAD_REQUEST);
    // A developer cannot add members; nor can a viewer.
    let (_, _) = app.user("viewer@example.com").await;
    let r = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &dev,
            json!({ "email": "viewer@example.com", "role": "viewer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A member added after the project exists also gets a dev environment: checked above.
    let members = app.get(&format!("/api/v1/orgs/{org}/members"), &dev).await;
    assert_eq!(members.body.as_array().map(Vec::len), Some(2));
    app.cleanup().await;
}

async fn admins_cannot_make_owners(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, owner) = app.user("owner@example.com").await;
    let (_, admin) = app.user("admin2@example.com").await;
    app.user("third@example.com").await;
    let (org, _) = app.org_and_project(&owner).await;
    let r = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &owner,
            json!({ "email": "admin2@example.com", "role": "admin" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &admin,
            json!({ "email": "third@example.com", "role": "owner" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &admin,
            json!({ "email": "third@example.com", "role": "developer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.cleanup().await;
}

async fn bad_bodies_are_clear_400s_and_413s(b: Backend) {
    let app = TestApp::new(b).await;
    let send = |body: Body, ct: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/orgs")
            .header("authorization", format!("Bearer {}", app.admin_token))
            .header("content-type", ct.to_string())
            .body(body)
            .unwrap()
    };
    let r = app
        .send(send(Body::from("{not json"), "application/json"))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid JSON"))
    );
    let r = app
        .send(send(Body::from(r#"{"title": 42}"#), "application/json"))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid request body"))
    );
    let r = app
        .send(send(Body::from(r#"{"title": "   "}"#), "application/json"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let huge = format!(r#"{{"title": "{}"}}"#, "a".repeat(2 * 1024 * 1024));
    let r = app.send(send(Body::from(huge), "application/json")).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("Request body too large")
        )
    );
    let r = app
        .send(send(Body::from(r#"{"title": "x"}"#), "text/plain"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

async fn missing_authorization_on_api_is_problem_json(b: Backend) {
    let app = TestApp::new(b).await;
    let r = app
        .request(Method::GET, "/api/v1/orgs", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.body["error"], "No authorization header provided");
    assert_eq!(r.body["status"], 401);
    // Exempt: the claims route answers with its own error.
    let r = app
        .request(Method::POST, "/api/v1/auth/jwt/claims", None, None, &[])
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid or Missing API key"))
    );
    let r = app
        .request(
            Method::GET,
            "/api/v1/orgs",
            Some("tr_pat_unknown"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid PAT"))
    );
    let r = app
        .request(
            Method::GET,
            "/api/v1/orgs",
            Some("tr_prod_notapat"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid or Missing PAT"))
    );
    let long = "x".repeat(10_000);
    let r = app
        .request(Method::GET, "/api/v1/orgs", Some(&long), None, &[])
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "oversized credentials are refused before any lookup"
    );
    app.cleanup().await;
}

async fn deleting_an_org_ends_its_keys(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, owner) = app.user("owner@example.com").await;
    let (_, admin) = app.user("second@example.com").await;
    let (org, project) = app.org_and_project(&owner).await;
    app.post(
        &format!("/api/v1/orgs/{org}/members"),
        &owner,
        json!({ "email": "second@example.com", "role": "admin" }),
    )
    .await;
    let key = app.env_key(&owner, &project, "prod").await;
    let cred = |k: String| {
        let app = &app;
        async move {
            app.request(Method::GET, "/api/v1/auth/credential", Some(&k), None, &[])
                .await
                .status
        }
    };
    assert_eq!(cred(key.clone()).await, StatusCode::OK);
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/orgs/{org}"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "only owners delete organizations"
    );
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/orgs/{org}"),
            Some(&owner),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        cred(key).await,
        StatusCode::UNAUTHORIZED,
        "a cached key dies with its organization"
    );
    assert_eq!(app.get("/api/v1/orgs", &owner).await.body, json!([]));
    assert_eq!(
        app.get(&format!("/api/v1/projects/{project}/prod"), &owner)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;
}

async fn members_change_role_and_leave_as_the_role_rules_allow(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, owner) = app.user("owner@example.com").await;
    let (_, admin) = app.user("admin2@example.com").await;
    let (_, dev) = app.user("dev@example.com").await;
    let (org, project) = app.org_and_project(&owner).await;
    let add = |email: &str, role: &str| json!({ "email": email, "role": role });
    for (email, role) in [
        ("admin2@example.com", "admin"),
        ("dev@example.com", "developer"),
    ] {
        let r = app
            .post(
                &format!("/api/v1/orgs/{org}/members"),
                &owner,
                add(email, role),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let members = app
        .get(&format!("/api/v1/orgs/{org}/members"), &owner)
        .await;
    let id_of = |email: &str| {
        members
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (owner_id, dev_id) = (id_of("owner@example.com"), id_of("dev@example.com"));
    let dev_key = app.env_key(&dev, &project, "dev").await;
    assert_eq!(app.whoami_env(&dev_key).await.status, StatusCode::OK);
    let path = |id: &str| format!("/api/v1/orgs/{org}/members/{id}");
    let patch = |token: String, id: String, role: &'static str| {
        let (app, path) = (&app, path(&id));
        async move {
            app.request(
                Method::PATCH,
                &path,
                Some(&token),
                Some(json!({ "role": role })),
                &[],
            )
            .await
        }
    };
    let r = patch(admin.clone(), dev_id.clone(), "viewer").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["role"], "viewer");
    let r = patch(admin.clone(), dev_id.clone(), "owner").await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "an admin cannot make owners"
    );
    let r = patch(dev.clone(), dev_id.clone(), "admin").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a viewer changes nothing");
    let r = patch(owner.clone(), owner_id.clone(), "admin").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["code"], "last_owner");
    let r = patch(owner.clone(), dev_id.clone(), "wizard").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = patch(owner.clone(), "no-such-member".into(), "admin").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app
        .request(Method::DELETE, &path(&dev_id), Some(&admin), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.get(&format!("/api/v1/projects/{project}"), &dev)
            .await
            .status,
        StatusCode::NOT_FOUND,
        "a removed member loses the project"
    );
    assert_eq!(
        app.whoami_env(&dev_key).await.status,
        StatusCode::UNAUTHORIZED,
        "and their dev key stops working at once"
    );
    app.cleanup().await;
}

on_both!(
    members_change_role_and_leave_as_the_role_rules_allow,
    deleting_an_org_ends_its_keys,
    creating_an_org_makes_the_creator_its_owner,
    members_get_a_dev_environment_in_every_project,
    admins_cannot_make_owners,
    bad_bodies_are_clear_400s_and_413s,
    missing_authorization_on_api_is_problem_json
);
