//! Offloaded packets: the SDK's handshakes (`PUT /api/v2/packets/{filename}` to upload,
//! `GET /api/v1/packets/{filename}` and `GET /api/v1/runs/{runId}/packets/{field}` to
//! download; the environment's secret key, as upstream's legacy API-key check), answered with
//! a signed URL under `/packets/v1/…` that moves the bytes without credentials for an hour:
//! adapters over [`taskgate_engine::packets`].

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use taskgate_api::packets::PacketUrlResponse;
use taskgate_api::ErrorBody;
use taskgate_core::ids::{EnvironmentId, RunFriendlyId};
use taskgate_engine::packets::{check_packet_path, PacketAccess, RunPacketField};

use crate::auth::extract::LegacyKeyAuth;
use crate::error::{ApiError, ApiResult};
use crate::public_url::PublicUrl;
use crate::state::AppState;

fn handshake(
    state: &AppState,
    principal: &taskgate_auth::EnvPrincipal,
    base: &str,
    access: PacketAccess,
    filename: &str,
    with_path: bool,
) -> ApiResult<Json<PacketUrlResponse>> {
    check_packet_path(filename)?;
    let env = &principal.env.environment.id;
    Ok(Json(PacketUrlResponse {
        presigned_url: state.engine.packet_url(base, access, env, filename),
        storage_path: with_path.then(|| filename.to_string()),
    }))
}

/// An upload URL for a packet of 128 KiB or more; once the bytes are there, the SDK sends
/// `storagePath` as the payload (type `application/store`).
#[utoipa::path(put, path = "/api/v2/packets/{filename}", tag = "packets", security(("secretKey" = [])),
    params(("filename" = String, Path, description = "the packet's path, URL-encoded (`trigger%2Fpacket_…%2Fpayload.json`)")),
    responses((status = 200, body = PacketUrlResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn upload_packet_url(
    State(state): State<AppState>,
    LegacyKeyAuth(principal): LegacyKeyAuth,
    PublicUrl(base): PublicUrl,
    Path(filename): Path<String>,
) -> ApiResult<Json<PacketUrlResponse>> {
    handshake(
        &state,
        &principal,
        &base,
        PacketAccess::Write,
        &filename,
        true,
    )
}

/// The same for clients before `/api/v2/packets`: an upload URL without `storagePath` (the
/// filename is the path).
#[utoipa::path(put, path = "/api/v1/packets/{filename}", tag = "packets", security(("secretKey" = [])),
    params(("filename" = String, Path, description = "the packet's path, URL-encoded")),
    responses((status = 200, body = PacketUrlResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn upload_packet_url_v1(
    State(state): State<AppState>,
    LegacyKeyAuth(principal): LegacyKeyAuth,
    PublicUrl(base): PublicUrl,
    Path(filename): Path<String>,
) -> ApiResult<Json<PacketUrlResponse>> {
    handshake(
        &state,
        &principal,
        &base,
        PacketAccess::Write,
        &filename,
        false,
    )
}

/// A download URL for a packet of the environment (the path an `application/store` payload or
/// output holds).
#[utoipa::path(get, path = "/api/v1/packets/{filename}", tag = "packets", security(("secretKey" = [])),
    params(("filename" = String, Path, description = "the packet's path, URL-encoded")),
    responses((status = 200, body = PacketUrlResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn download_packet_url(
    State(state): State<AppState>,
    LegacyKeyAuth(principal): LegacyKeyAuth,
    PublicUrl(base): PublicUrl,
    Path(filename): Path<String>,
) -> ApiResult<Json<PacketUrlResponse>> {
    handshake(
        &state,
        &principal,
        &base,
        PacketAccess::Read,
        &filename,
        false,
    )
}

/// A download URL for a run's offloaded payload or output; 404 when that packet of the run is
/// inline (or the run is unknown).
#[utoipa::path(get, path = "/api/v1/runs/{runId}/packets/{field}", tag = "packets", security(("secretKey" = [])),
    params(("runId" = String, Path), ("field" = String, Path, description = "`payload` or `output`")),
    responses((status = 200, body = PacketUrlResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run_packet_url(
    State(state): State<AppState>,
    LegacyKeyAuth(principal): LegacyKeyAuth,
    PublicUrl(base): PublicUrl,
    Path((run_id, field)): Path<(RunFriendlyId, String)>,
) -> ApiResult<Json<PacketUrlResponse>> {
    let field = match field.as_str() {
        "payload" => RunPacketField::Payload,
        "output" => RunPacketField::Output,
        _ => {
            return Err(ApiError::not_found(
                "Unknown packet field: use payload or output",
            ))
        }
    };
    let env = &principal.env.environment.id;
    let path = state.engine.run_packet_path(env, &run_id, field).await?;
    Ok(Json(PacketUrlResponse {
        presigned_url: state
            .engine
            .packet_url(&base, PacketAccess::Read, env, &path),
        storage_path: None,
    }))
}

/// The signature of a packet URL.
#[derive(Debug, Deserialize)]
pub struct Signed {
    expires: i64,
    signature: String,
}

fn signed(q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>) -> ApiResult<Signed> {
    q.map(|Query(s)| s)
        .map_err(|_| ApiError::forbidden("This packet URL is not valid"))
}

/// `PUT` to an upload URL: the body is the packet, `Content-Type` its data type.
pub async fn put_packet(
    State(state): State<AppState>,
    Path((env, path)): Path<(EnvironmentId, String)>,
    query: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<StatusCode> {
    let q = signed(query)?;
    check_packet_path(&path)?;
    state
        .engine
        .check_packet_url(PacketAccess::Write, &env, &path, q.expires, &q.signature)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            taskgate_engine::Error::PacketTooLarge(state.config.engine.max_packet_bytes).into()
        } else {
            ApiError::bad_request(format!("Cannot read the packet: {}", e.body_text()))
        }
    })?;
    let kind = headers
        .get(header::CONTENT_TYPE)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request("Invalid Content-Type"))
        })
        .transpose()?;
    state.engine.store_packet(&env, &path, kind, &body).await?;
    Ok(StatusCode::OK)
}

/// `GET` from a download URL: the packet with its data type. It is served as an attachment
/// in a sandbox, so no packet can act as a page of this origin.
pub async fn get_packet(
    State(state): State<AppState>,
    Path((env, path)): Path<(EnvironmentId, String)>,
    query: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let q = signed(query)?;
    check_packet_path(&path)?;
    state
        .engine
        .check_packet_url(PacketAccess::Read, &env, &path, q.expires, &q.signature)?;
    let packet = state.engine.read_packet(&env, &path).await?;
    let kind = HeaderValue::from_str(&packet.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        packet.data,
    )
        .into_response())
}
