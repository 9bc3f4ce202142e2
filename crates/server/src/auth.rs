//! Device authentication: challenge, signed answer, session token.
//!
//! A device asks for a challenge (32 random bytes, valid [`CHALLENGE_TTL_SECS`], usable
//! once), signs it with its MLS signature key (`sotto_core::auth`), and receives a random
//! session token valid [`SESSION_TTL_SECS`]. The server stores only the SHA-256 of each
//! token, so a copy of its database cannot be used to act as a device. Authenticated
//! routes take a [`Session`] extractor reading `Authorization: Bearer <token>`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sotto_api::{Bytes, Challenge, ChallengeRequest, ErrorCode, Me, SessionRequest};
use sotto_core::auth::{verify_challenge, CHALLENGE_LEN};
use sotto_core::crypto;
use sotto_core::identity::{verify_revocation, DeviceCertificate, DeviceId, RootPublicKey, UserId};

use crate::hex;
use crate::http::{now, Failure};
use crate::state::AppState;
use crate::storage::{DeviceRef, StoreError};

/// How long a challenge may be answered.
pub const CHALLENGE_TTL_SECS: u64 = 60;
/// How long a session lasts.
pub const SESSION_TTL_SECS: u64 = 24 * 3600;

fn unauthorized(message: &str) -> Failure {
    Failure::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
}

/// A device named by user id and hex device id, validated.
pub fn device_ref(username: &str, device_hex: &str) -> Result<DeviceRef, Failure> {
    let user = UserId::new(username).map_err(|e| Failure::bad_request(e.to_string()))?;
    let device_id = hex::decode(device_hex, 16, "device id")?;
    Ok(DeviceRef {
        username: user.to_string(),
        device_id,
    })
}

/// `POST /v1/auth/challenge`.
pub async fn challenge(
    State(state): State<AppState>,
    body: Result<Json<ChallengeRequest>, JsonRejection>,
) -> Result<Json<Challenge>, Failure> {
    let Json(request) = body?;
    let device = device_ref(&request.username, &request.device_id)?;
    let challenge: [u8; CHALLENGE_LEN] = crypto::random_array().map_err(|_| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "no randomness",
        )
    })?;
    let now = now();
    let expires_at = now + CHALLENGE_TTL_SECS;
    if state.store.device_certificate(&device).await?.is_none() {
        return Err(Failure::not_found("device"));
    }
    state
        .store
        .put_challenge(&challenge, &device, expires_at)
        .await?;
    Ok(Json(Challenge {
        challenge: Bytes(challenge.to_vec()),
        expires_at,
    }))
}

/// `POST /v1/auth/session`.
pub async fn session(
    State(state): State<AppState>,
    body: Result<Json<SessionRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<sotto_api::Session>), Failure> {
    let Json(request) = body?;
    let device = device_ref(&request.username, &request.device_id)?;
    let challenge: [u8; CHALLENGE_LEN] = request
        .challenge
        .0
        .as_slice()
        .try_into()
        .map_err(|_| Failure::bad_request("a challenge is 32 bytes"))?;
    let now = now();
    if !state.store.take_challenge(&challenge, &device, now).await? {
        return Err(unauthorized("unknown, used or expired challenge"));
    }
    let certificate = state
        .store
        .device_certificate(&device)
        .await?
        .ok_or_else(|| unauthorized("unknown device"))?;
    let certificate = DeviceCertificate::from_bytes(&certificate).map_err(|_| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "stored certificate invalid",
        )
    })?;
    verify_challenge(&certificate, &challenge, &request.signature.0)
        .map_err(|_| unauthorized("the signature does not answer the challenge"))?;

    let token: [u8; 32] = crypto::random_array().map_err(|_| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "no randomness",
        )
    })?;
    let token_hash = crypto::sha256(&token);
    let expires_at = now + SESSION_TTL_SECS;
    let actor = state.actor(&device.username);
    state
        .store
        .put_session(&token_hash, &device, expires_at, &actor, now)
        .await?;
    tracing::info!(event = "login", "device logged in");
    Ok((
        StatusCode::CREATED,
        Json(sotto_api::Session {
            token: URL_SAFE_NO_PAD.encode(token),
            expires_at,
        }),
    ))
}

/// An authenticated device, from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Session(pub DeviceRef);

impl FromRequestParts<AppState> for Session {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        session_from_headers(&parts.headers, state)
            .await
            .map(Session)
    }
}

/// The SHA-256 of the request's bearer token: what sessions are stored under.
pub(crate) fn bearer_token_hash(headers: &axum::http::HeaderMap) -> Result<[u8; 32], Failure> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("a session token is required"))?;
    let token = URL_SAFE_NO_PAD
        .decode(header.trim())
        .map_err(|_| unauthorized("invalid session token"))?;
    Ok(crypto::sha256(&token))
}

/// The device of the session named by the request's bearer token.
async fn session_from_headers(
    headers: &axum::http::HeaderMap,
    state: &AppState,
) -> Result<DeviceRef, Failure> {
    let token_hash = bearer_token_hash(headers)?;
    let now = now();
    state
        .store
        .session(&token_hash, now)
        .await?
        .ok_or_else(|| unauthorized("invalid or expired session token"))
}

/// `GET /v1/me`.
pub async fn me(Session(device): Session) -> Json<Me> {
    Json(Me {
        username: device.username,
        device_id: device
            .device_id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    })
}

/// `POST /v1/accounts/{username}/devices/{device_id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Path((username, device_hex)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Result<Json<sotto_api::RevokeDevice>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    let Json(request) = body?;
    let device = device_ref(&username, &device_hex)?;
    let user = UserId::new(&device.username).map_err(|e| Failure::bad_request(e.to_string()))?;
    match request.root_signature {
        Some(signature) => {
            let account = state
                .store
                .account(&device.username)
                .await?
                .ok_or_else(|| Failure::not_found("account"))?;
            let root = RootPublicKey::from_bytes(&account.root_public_key).map_err(|_| {
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "stored key invalid",
                )
            })?;
            let id: [u8; 16] = device
                .device_id
                .as_slice()
                .try_into()
                .map_err(|_| Failure::bad_request("device id must be 16 bytes"))?;
            verify_revocation(&root, &user, &DeviceId(id), &signature.0)
                .map_err(|_| unauthorized("the root key did not sign this revocation"))?;
        }
        None => {
            let session = session_from_headers(&headers, &state).await?;
            if session.username != device.username {
                return Err(unauthorized(
                    "only the user's own devices may revoke a device",
                ));
            }
        }
    }
    state
        .store
        .revoke_device(&device)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => Failure::not_found("device"),
            e => Failure::from(e),
        })?;
    // Its live connections wake, find the session gone, and close.
    state.hub.notify(&device);
    if let Err(e) = state.store.announce(std::slice::from_ref(&device)).await {
        tracing::warn!(error = %e, "wake-up announcement failed");
    }
    tracing::info!(event = "device_revoked", "device revoked");
    Ok(StatusCode::NO_CONTENT)
}
