//! Encrypted attachment blobs, fetched by capability.
//!
//! A device uploads a blob the client encrypted (the key travels inside the end-to-end
//! encrypted message, never here) and gets an id and a random capability token. Anyone
//! holding both may download or delete the blob — no session is needed, so the server
//! does not learn which device fetched it. The server stores only the SHA-256 of the
//! token and compares in constant time. Blobs expire after the server's retention (or a
//! shorter `ttl` the uploader asks for) and are deleted by the sweeper.

use axum::body::Bytes as Body;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::Deserialize;
use sotto_api::{AttachmentStored, ErrorCode};
use sotto_core::crypto;

use crate::auth::Session;
use crate::hex;
use crate::http::{now, Failure};
use crate::state::AppState;
use crate::storage::{AttachmentRow, StoreError};

/// Largest attachment (25 MiB of ciphertext).
pub const MAX_ATTACHMENT: usize = 25 << 20;
/// Most bytes of attachments one user may have stored at once (512 MiB).
pub const MAX_STORED_PER_USER: u64 = 512 << 20;
/// Length of an attachment id.
pub const ID_LEN: usize = 16;

fn internal(message: &str) -> Failure {
    Failure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        message,
    )
}

/// Query of `POST /v1/attachments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Seconds the blob should live (at most the server's retention, the default).
    ttl: Option<u64>,
}

/// `POST /v1/attachments`.
pub async fn upload(
    State(state): State<AppState>,
    Session(device): Session,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Result<Body, BytesRejection>,
) -> Result<(StatusCode, Json<AttachmentStored>), Failure> {
    let Query(query) = query.map_err(|e| Failure::bad_request(e.body_text()))?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                format!("an attachment may hold at most {MAX_ATTACHMENT} bytes"),
            )
        } else {
            Failure::bad_request(e.body_text())
        }
    })?;
    if body.is_empty() {
        return Err(Failure::bad_request("an attachment may not be empty"));
    }
    let ttl = query
        .ttl
        .unwrap_or(state.retention_secs)
        .min(state.retention_secs)
        .max(1);
    let id: [u8; ID_LEN] = crypto::random_array().map_err(|_| internal("no randomness"))?;
    let token: [u8; 32] = crypto::random_array().map_err(|_| internal("no randomness"))?;
    let expires_at = now().saturating_add(ttl);
    let row = AttachmentRow {
        token_hash: crypto::sha256(&token).to_vec(),
        blob: body.to_vec(),
        expires_at,
    };
    state
        .store
        .put_attachment(&id, &device.username, &row, MAX_STORED_PER_USER)
        .await
        .map_err(|e| match e {
            StoreError::RateLimited => Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!("at most {MAX_STORED_PER_USER} bytes of attachments per user"),
            ),
            e => Failure::from(e),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(AttachmentStored {
            id: hex::encode(&id),
            token: URL_SAFE_NO_PAD.encode(token),
            expires_at,
        }),
    ))
}

/// The attachment named by the path, if the request holds its capability. Unknown,
/// expired and wrong-token requests all look the same: 404.
async fn authorised(
    state: &AppState,
    id_hex: &str,
    headers: &HeaderMap,
) -> Result<(Vec<u8>, AttachmentRow), Failure> {
    let id = hex::decode(id_hex, ID_LEN, "attachment id")?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Capability "))
        .and_then(|t| URL_SAFE_NO_PAD.decode(t.trim()).ok())
        .ok_or_else(|| {
            Failure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "an attachment capability is required",
            )
        })?;
    let row = state
        .store
        .attachment(&id, now())
        .await?
        .ok_or_else(|| Failure::not_found("attachment"))?;
    if !crypto::ct_eq(&crypto::sha256(&token), &row.token_hash) {
        return Err(Failure::not_found("attachment"));
    }
    Ok((id, row))
}

/// `GET /v1/attachments/{id}` with `Authorization: Capability <token>`.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let (_, row) = authorised(&state, &id, &headers).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        row.blob,
    )
        .into_response())
}

/// `DELETE /v1/attachments/{id}` with `Authorization: Capability <token>`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    let (id, _) = authorised(&state, &id, &headers).await?;
    state.store.delete_attachment(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
