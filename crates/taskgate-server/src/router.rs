//! The one router. Every route is registered here through utoipa-axum, so the OpenAPI
//! document is generated from the same definitions that serve requests and cannot drift.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use tower::util::MapResponseLayer;
use tower::ServiceBuilder;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::deadline::DeadlinesLayer;
use crate::openapi::{docs_page, ApiDoc};
use crate::realtime;
use crate::routes::*;
use crate::state::AppState;
use crate::telemetry::TrackRequestsLayer;
use taskgate_config::Timeouts;

/// Room for a trigger body's envelope (options, encoding) around the largest payload.
const TRIGGER_ENVELOPE_BYTES: usize = 1024 * 1024;

fn api_router(
    max_payload_bytes: usize,
    max_bundle_bytes: i64,
    timeouts: Timeouts,
) -> OpenApiRouter<AppState> {
    // Routes that carry payloads get a body limit of their own; the rest the default.
    let payload_routes = OpenApiRouter::new()
        .routes(routes!(runs::trigger::trigger_task))
        .routes(routes!(runs::batch::stream_batch_items))
        .routes(routes!(engine::attempts::complete_run_attempt))
        .routes(routes!(waitpoints::complete_token))
        .routes(routes!(waitpoints::token_callback))
        .layer(DefaultBodyLimit::max(
            max_payload_bytes.saturating_add(TRIGGER_ENVELOPE_BYTES),
        ));
    // A worker's manifest carries its project's source files.
    let registration = OpenApiRouter::new()
        .routes(routes!(workers::create_background_worker))
        .layer(DefaultBodyLimit::max(
            taskgate_engine::registration::MAX_REGISTRATION_BYTES,
        ));
    // A deploy's bundle, up to --max-bundle-bytes.
    let bundles = OpenApiRouter::new()
        .routes(routes!(deployments::upload_artifact))
        .layer(DefaultBodyLimit::max(
            usize::try_from(max_bundle_bytes)
                .unwrap_or(usize::MAX)
                .saturating_add(1024 * 1024),
        ));
    // Offloaded packets come through their signed URL (`/packets/v1/…`, beside the API);
    // the handshakes are small.
    let packet_handshakes = OpenApiRouter::new()
        .routes(routes!(
            packets::upload_packet_url_v1,
            packets::download_packet_url
        ))
        .routes(routes!(packets::upload_packet_url))
        .routes(routes!(packets::run_packet_url));
    let otlp = OpenApiRouter::new()
        .routes(routes!(otel::export_logs))
        .routes(routes!(otel::export_signal))
        .routes(routes!(otel::export_anonymous))
        .layer(DefaultBodyLimit::max(otel::MAX_OTLP_BYTES));
    // Long polls and streams keep their own limits: no request or body deadline.
    let streaming = OpenApiRouter::new()
        .merge(bundles)
        // Indexing a deployment (npm, the bundle's index controller) takes its time.
        .routes(routes!(
            deployments::initialize_deployment,
            deployments::list_deployments
        ))
        .routes(routes!(engine::presence::dev_presence))
        .routes(routes!(engine::dequeue::dequeue))
        .routes(routes!(realtime::run_feed::subscribe_to_run))
        .routes(routes!(realtime::run_sets::subscribe_to_runs))
        .routes(routes!(realtime::run_sets::subscribe_to_batch))
        .routes(routes!(realtime::streams::read_stream))
        .routes(routes!(realtime::streams::read_input_stream))
        .routes(routes!(realtime::streams::append_to_stream))
        // A task's streaming writer: one long request of lines.
        .routes(routes!(
            realtime::streams::create_stream,
            realtime::streams::ingest_stream,
            realtime::streams::probe_stream
        ));
    let bounded = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(payload_routes)
        .merge(registration)
        .merge(otlp)
        .merge(packet_handshakes)
        .routes(routes!(engine::presence::dev_config))
        .routes(routes!(engine::presence::dev_disconnect))
        .routes(routes!(engine::presence::platform_notifications))
        .routes(routes!(engine::attempts::start_run_attempt))
        .routes(routes!(engine::attempts::heartbeat_run))
        .routes(routes!(engine::attempts::latest_snapshot))
        .routes(routes!(engine::attempts::debug_log))
        .routes(routes!(engine::waits::wait_for_duration))
        .routes(routes!(engine::waits::wait_for_token))
        .routes(routes!(waitpoints::create_token, waitpoints::list_tokens))
        .routes(routes!(waitpoints::retrieve_token))
        .routes(routes!(waitpoints::wait_for_input_stream))
        .routes(routes!(deployments::deploy_settings))
        .routes(routes!(deployments::create_artifact))
        .routes(routes!(deployments::get_deployment))
        .routes(routes!(deployments::promote_deployment))
        .routes(routes!(deployments::create_deployment_worker))
        .routes(routes!(deployments::fail_deployment))
        .routes(routes!(workers::dev_status))
        .routes(routes!(workers::current_worker))
        .routes(routes!(envvars::worker_env_vars))
        .routes(routes!(envvars::list_env_vars, envvars::create_env_var))
        .routes(routes!(
            envvars::get_env_var,
            envvars::update_env_var,
            envvars::delete_env_var
        ))
        .routes(routes!(envvars::import_env_vars))
        .routes(routes!(runs::batch::create_batch))
        .routes(routes!(runs::batch::retrieve_batch))
        .routes(routes!(runs::batch::retrieve_batch_v1))
        .routes(routes!(runs::tags::add_tags))
        .routes(routes!(
            schedules::create_schedule,
            schedules::list_schedules
        ))
        .routes(routes!(
            schedules::retrieve_schedule,
            schedules::update_schedule,
            schedules::delete_schedule
        ))
        .routes(routes!(schedules::activate_schedule))
        .routes(routes!(schedules::deactivate_schedule))
        .routes(routes!(schedules::list_timezones))
        .routes(routes!(alerts::create_alert_channel))
        .routes(routes!(queues::list_queues))
        .routes(routes!(queues::retrieve_queue))
        .routes(routes!(queues::pause_queue))
        .routes(routes!(queues::override_queue_limit))
        .routes(routes!(queues::reset_queue_limit))
        .routes(routes!(runs::list::list_runs))
        .routes(routes!(errors::list_errors))
        .routes(routes!(errors::retrieve_error))
        .routes(routes!(errors::error_activity))
        .routes(routes!(errors::resolve_error))
        .routes(routes!(errors::ignore_error))
        .routes(routes!(errors::unresolve_error))
        .routes(routes!(runs::retrieve::retrieve_run))
        .routes(routes!(runs::history::list_run_attempts))
        .routes(routes!(runs::history::list_run_logs))
        .routes(routes!(runs::trace::retrieve_run_trace))
        .routes(routes!(runs::trace::retrieve_span))
        .routes(routes!(runs::cancel::cancel_run))
        .routes(routes!(runs::cancel::replay_run))
        .routes(routes!(realtime::streams::send_input_stream))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(orgs::list_orgs, orgs::create_org))
        .routes(routes!(orgs::delete_org))
        .routes(routes!(orgs::list_members, orgs::add_member))
        .routes(routes!(orgs::set_member_role, orgs::remove_member))
        .routes(routes!(projects::list_projects, projects::create_project))
        .routes(routes!(projects::get_environment_key))
        .routes(routes!(projects::list_branches, projects::upsert_branch))
        .routes(routes!(projects::archive_branch))
        .routes(routes!(projects::list_all_projects))
        .routes(routes!(projects::list_project_runtimes))
        .routes(routes!(projects::get_project, projects::delete_project))
        .routes(routes!(keys::regenerate_api_key))
        .routes(routes!(keys::list_revoked_api_keys))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(whoami::whoami))
        .routes(routes!(cli_login::create_authorization_code))
        .routes(routes!(cli_login::redeem_authorization_code))
        .routes(routes!(auth_tokens::mint_jwt))
        .routes(routes!(auth_tokens::jwt_claims))
        .routes(routes!(auth_tokens::create_public_token))
        .routes(routes!(auth_tokens::describe_credential))
        .routes(routes!(user_actor::mint_user_actor_token))
        .routes(routes!(user_actor::exchange_env_jwt))
        .routes(routes!(admin::create_user, admin::list_users))
        .routes(routes!(admin::set_user_admin))
        .routes(routes!(admin::list_organizations))
        .routes(routes!(
            rate_limits::get_org_rate_limit,
            rate_limits::set_org_rate_limit,
            rate_limits::clear_org_rate_limit
        ))
        .routes(routes!(admin::create_user_token))
        .routes(routes!(admin::update_revoked_api_key))
        .routes(routes!(admin::list_audit_events));
    // Every route that neither streams nor long-polls has the body and request deadlines.
    bounded.layer(DeadlinesLayer(timeouts)).merge(streaming)
}

/// The OpenAPI document (what `GET /api/openapi.json` serves and `docs/openapi.json` holds).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = api_router(
        taskgate_config::engine::DEFAULT_MAX_PAYLOAD_BYTES,
        taskgate_config::runner::DEFAULT_MAX_BUNDLE_BYTES,
        Timeouts::default(),
    )
    .into_openapi();
    // Applied once every route is in: what any route may answer besides its own outcomes.
    utoipa::Modify::modify(&crate::openapi::CommonResponses, &mut doc);
    doc
}

/// The application with its middleware: the API alone.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The API and `pages` (the dashboard, from its own crate), behind the same middleware. Pages
/// get the request and body deadlines; a path neither serves falls through to the API's JSON
/// 404.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    let timeouts = state.config.server.timeouts;
    let (routes, mut api) = api_router(
        state.config.engine.max_payload_bytes,
        state.config.runner.max_bundle_bytes,
        timeouts,
    )
    .split_for_parts();
    utoipa::Modify::modify(&crate::openapi::CommonResponses, &mut api);
    let api = Arc::new(api);
    let app = routes
        .route(
            "/api/openapi.json",
            get(move || async move { Json(api.as_ref().clone()) }),
        )
        .route("/api/docs", get(docs_page))
        // A packet's bytes, through the signed URL a handshake answered (as an object
        // store's presigned URL; not part of the API document).
        .route(
            "/packets/v1/{environmentId}/{*path}",
            axum::routing::put(packets::put_packet)
                .get(packets::get_packet)
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(
                    state.config.engine.max_packet_bytes,
                ))
                .layer(DeadlinesLayer(timeouts)),
        )
        // The dev-worker channel is socket.io over WebSocket, not an HTTP API.
        .route("/socket.io/", get(crate::socketio::socket_io))
        // Upstream answers every non-GET method on this route with the same action (§1.11).
        .route(
            "/admin/api/v1/revoked-api-keys/{revokedApiKeyId}",
            axum::routing::put(admin::update_revoked_api_key)
                .patch(admin::update_revoked_api_key)
                .delete(admin::update_revoked_api_key)
                .layer(DeadlinesLayer(timeouts)),
        )
        .merge(unserved::routes())
        .merge(pages.layer(DeadlinesLayer(timeouts)))
        .fallback(unserved::fallback);
    with_middleware(app, state)
}

/// `routes` with the middleware every route gets: the API's rate limits (and its answer to a
/// missing authorization header), body limits,
/// CORS, panics answered 500, and every response counted and logged.
///
/// They are one layer (a [`ServiceBuilder`] stack): the router wraps each route in every
/// layer it is given, boxing it again each time, and clones that chain of boxes for every
/// request; one stack costs one box.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    let body_limit = state.config.server.max_body_bytes;
    let middleware = ServiceBuilder::new()
        // Every response is counted and logged, refusals and preflights included.
        .layer(TrackRequestsLayer)
        // A panic answers 500 (logged once, by `telemetry::log_panics`), not a dropped
        // connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            crate::telemetry::panic_response,
        ))
        .layer(crate::cors::CorsLayer)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(crate::ratelimit::RateLimitLayer::new(state.clone()));
    let app = routes.layer(middleware).with_state(state);
    // A 405's `Allow` header is set by the route's method router after its own layers ran, so
    // the JSON body that names the allowed methods is written out here, around everything.
    Router::new()
        .fallback_service(app)
        .layer(MapResponseLayer::new(
            crate::telemetry::json_method_not_allowed as fn(Response) -> Response,
        ))
}
