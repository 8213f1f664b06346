//! Two taskgate nodes on one PostgreSQL database: a change made through one node reaches the
//! other's caches and realtime subscribers through LISTEN/NOTIFY.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

#[path = "http/common.rs"]
mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};
use taskgate_config::Config;

async fn send(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let r = common::call(router, method, path, token, body).await;
    (r.status, r.headers, r.body)
}

/// Two nodes on a fresh schema, sharing (as a deployment must) the master key and session
/// secret. Keep the schema and directory alive as long as the nodes.
struct Cluster {
    nodes: Vec<(axum::Router, taskgate_server::state::AppState)>,
    admin: String,
    _dir: tempfile::TempDir,
    _schema: taskgate_store_postgres::testing::TestSchema,
}

async fn cluster(tweak: impl Fn(&mut Config)) -> Cluster {
    let url = std::env::var("TASKGATE_TEST_DATABASE_URL")
        .expect("TASKGATE_TEST_DATABASE_URL must name a PostgreSQL database");
    let (opts, schema) = taskgate_store_postgres::testing::fresh_schema(&url)
        .await
        .unwrap();
    let channel = format!("tg_{schema}");
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let store = taskgate_store_postgres::PostgresStore::connect_with(
            opts.clone(),
            None,
            true,
            channel.clone(),
        )
        .await
        .unwrap();
        let mut config = Config::for_tests(dir.path());
        tweak(&mut config);
        nodes.push(common::node(store, config).await);
    }
    Cluster {
        nodes,
        admin: common::admin_token(dir.path()),
        _dir: dir,
        _schema: schema,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_ended_on_one_node_refuses_the_key_on_the_other() {
    let cluster = cluster(|_| {}).await;
    let (a, b) = (&cluster.nodes[0].0, &cluster.nodes[1].0);
    let tenant = cluster.tenant().await;
    // Node B caches the key; node A rotates and ends the grace; B refuses the key promptly.
    assert_eq!(
        send(b, "GET", "/api/v1/auth/credential", &tenant.key, None)
            .await
            .0,
        StatusCode::OK
    );
    let (_, _, rotated) = send(
        a,
        "POST",
        &format!(
            "/api/v1/projects/{}/prod/regenerate-api-key",
            tenant.project
        ),
        &cluster.admin,
        None,
    )
    .await;
    let revoked = rotated["revokedApiKey"]["id"].as_str().unwrap().to_string();
    send(
        a,
        "POST",
        &format!("/admin/api/v1/revoked-api-keys/{revoked}"),
        &cluster.admin,
        Some(json!({ "expiresAt": null })),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while send(b, "GET", "/api/v1/auth/credential", &tenant.key, None)
        .await
        .0
        != StatusCode::UNAUTHORIZED
    {
        assert!(
            Instant::now() < deadline,
            "node B kept accepting a key whose grace node A ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_wakes_a_subscriber_on_the_other() {
    let cluster = cluster(|c| c.engine.realtime_poll = Duration::from_secs(120)).await;
    let (a, b) = (&cluster.nodes[0].0, &cluster.nodes[1].0);
    let key = cluster.tenant().await.key;
    let (_, _, run) = send(a, "POST", "/api/v1/tasks/t/trigger", &key, Some(json!({}))).await;
    let run_id = run["id"].as_str().unwrap().to_string();
    let (_, headers, _) = send(
        b,
        "GET",
        &format!("/realtime/v1/runs/{run_id}?offset=-1"),
        &key,
        None,
    )
    .await;
    let (handle, offset) = (
        headers["electric-handle"].to_str().unwrap().to_string(),
        headers["electric-offset"].to_str().unwrap().to_string(),
    );
    let poll = {
        let (b, key, run_id) = (b.clone(), key.clone(), run_id.clone());
        tokio::spawn(async move {
            let path =
                format!("/realtime/v1/runs/{run_id}?handle={handle}&live=true&offset={offset}");
            let (_, _, body) = send(&b, "GET", &path, &key, None).await;
            body
        })
    };
    common::until_watching(&cluster.nodes[1].1, 1).await;
    send(
        a,
        "POST",
        &format!("/api/v2/runs/{run_id}/cancel"),
        &key,
        None,
    )
    .await;
    // The poll window is far longer than this wait: an answer within it came with the
    // notification.
    let body = tokio::time::timeout(Duration::from_secs(60), poll)
        .await
        .expect("the change arrives with the notification, not at the poll's end")
        .unwrap();
    assert_eq!(body[0]["value"]["status"], "CANCELED", "{body}");
    cluster.close().await;
}

/// An organization with a project, made through node A.
struct Tenant {
    org_id: String,
    /// The project's external ref.
    project: String,
    /// Its production environment's secret key.
    key: String,
}

impl Cluster {
    async fn close(self) {
        for (_, state) in &self.nodes {
            state.store.close().await;
        }
    }

    /// An organization with a project, through node A.
    async fn tenant(&self) -> Tenant {
        let a = &self.nodes[0].0;
        let (_, _, org) = send(
            a,
            "POST",
            "/api/v1/orgs",
            &self.admin,
            Some(json!({ "title": "Two" })),
        )
        .await;
        let slug = org["slug"].as_str().unwrap();
        let (_, _, project) = send(
            a,
            "POST",
            &format!("/api/v1/orgs/{slug}/projects"),
            &self.admin,
            Some(json!({ "name": "P" })),
        )
        .await;
        let project = project["externalRef"].as_str().unwrap().to_string();
        let (_, _, env) = send(
            a,
            "GET",
            &format!("/api/v1/projects/{project}/prod"),
            &self.admin,
            None,
        )
        .await;
        Tenant {
            org_id: org["id"].as_str().unwrap().to_string(),
            project,
            key: env["apiKey"].as_str().unwrap().to_string(),
        }
    }
}

/// Redis for the shared rate-limit buckets: `TASKGATE_TEST_REDIS_URL`, else the local server.
fn redis_url() -> String {
    std::env::var("TASKGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_hold_one_limit() {
    let cluster = cluster(|c| c.rate_limits.redis_url = Some(redis_url().into())).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    for (_, state) in &cluster.nodes {
        let shared = state.limiter.as_ref().unwrap().shared().unwrap().clone();
        while !shared.connected() {
            assert!(
                Instant::now() < deadline,
                "no Redis at {} (set TASKGATE_TEST_REDIS_URL)",
                redis_url()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let Tenant {
        org_id: org, key, ..
    } = cluster.tenant().await;
    // 100 a minute, the whole minute's allowance available at once.
    let limit = 100;
    let (status, _, body) = send(
        &cluster.nodes[0].0,
        "PUT",
        &format!("/admin/api/v1/orgs/{org}/rate-limit"),
        &cluster.admin,
        Some(json!({"type": "tokenBucket", "refillRate": limit, "interval": "1m", "maxTokens": limit})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Three times the limit, alternating nodes, 16 at a time.
    let mut admitted = 0;
    for round in 0..(3 * limit / 16 + 1) {
        let calls = (0..16).map(|i| {
            let router = cluster.nodes[(round + i) % 2].0.clone();
            let key = key.clone();
            async move {
                send(&router, "GET", "/api/v1/auth/credential", &key, None)
                    .await
                    .0
            }
        });
        for status in futures::future::join_all(calls).await {
            match status {
                StatusCode::OK => admitted += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("unexpected {other}"),
            }
        }
    }
    let slack = limit * 5 / 100;
    assert!(
        (limit - slack..=limit + slack).contains(&admitted),
        "{admitted} requests admitted across two nodes for a limit of {limit}"
    );
    cluster.close().await;
}

/// Many schedules due at once, two nodes firing them (their own loops and explicit passes,
/// all at the same time): every schedule fires once, no run twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_fire_each_due_schedule_once() {
    const SCHEDULES: usize = 60;
    let cluster = cluster(|_| {}).await;
    let tenant = cluster.tenant().await;
    let (_, _, claims) = send(
        &cluster.nodes[0].0,
        "POST",
        "/api/v1/auth/jwt/claims",
        &tenant.key,
        None,
    )
    .await;
    let env: taskgate_core::ids::EnvironmentId = claims["sub"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_default()
        .into();
    let store = cluster.nodes[0].1.store.clone();
    // Created three minutes ago: each is due since two minutes ago.
    let past = chrono::Utc::now() - chrono::Duration::minutes(3);
    let mut ids = Vec::new();
    for i in 0..SCHEDULES {
        let (s, _) = store
            .upsert_schedule(
                taskgate_store::NewSchedule {
                    environment_id: env.clone(),
                    deduplication_key: format!("s{i}"),
                    definition: taskgate_store::ScheduleDefinition {
                        task: "report".into(),
                        expression: "* * * * *".into(),
                        timezone: "UTC".into(),
                        window: None,
                        external_id: None,
                    },
                },
                past,
            )
            .await
            .unwrap();
        ids.push(s.friendly_id);
    }
    let passes = cluster.nodes.iter().map(|(_, state)| {
        let engine = state.engine.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                engine.fire_schedules().await.unwrap();
            }
        })
    });
    for p in passes.collect::<Vec<_>>() {
        p.await.unwrap();
    }
    let mut runs = Vec::new();
    for id in &ids {
        let s = store.get_schedule(&env, id).await.unwrap().unwrap();
        runs.push(s.last_run.expect("every due schedule fired").to_string());
    }
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), SCHEDULES, "each schedule has a run of its own");
    let (status, _, list) = send(
        &cluster.nodes[1].0,
        "GET",
        "/api/v1/runs?filter[taskIdentifier]=report&page[size]=100",
        &tenant.key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["data"].as_array().map(Vec::len),
        Some(SCHEDULES),
        "one run per fire, none twice"
    );
}
