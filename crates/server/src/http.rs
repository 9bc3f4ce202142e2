//! The HTTP control plane: routes, JSON bodies with size limits, and errors as JSON.
//!
//! Every request body is limited ([`MAX_BODY`]); malformed, invalid or oversized input is a
//! 4xx with an [`ApiError`] body, never a 5xx or a panic. Nothing here logs or reads a
//! client's address.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use sotto_api::{
    Account, ApiError, Bytes, DeviceInfo, ErrorCode, Health, RegisterAccount, RegisterDevice,
};
use sotto_core::identity::{DeviceCertificate, RootPublicKey, UserId};

use crate::state::AppState;
use crate::storage::{Put, StoreError};

/// Largest request body accepted on the control plane (64 KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// An error answer: status and JSON body.
#[derive(Debug)]
pub struct Failure(pub(crate) StatusCode, ApiError);

impl Failure {
    pub(crate) fn new(status: StatusCode, error: ErrorCode, message: impl Into<String>) -> Self {
        Self(
            status,
            ApiError {
                error,
                message: message.into(),
            },
        )
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// The error's JSON body (for a WebSocket error frame).
    pub(crate) fn into_body(self) -> ApiError {
        self.1
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no such {what}"),
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<JsonRejection> for Failure {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                format!("request body exceeds {MAX_BODY} bytes"),
            )
        } else {
            Self::bad_request(rejection.body_text())
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => {
                Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, "already exists")
            }
            StoreError::NotFound => Self::not_found("account"),
            StoreError::Forbidden => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "forbidden")
            }
            StoreError::RateLimited => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many requests; try again later",
            ),
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    other.client_message(),
                )
            }
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn user_id(name: &str) -> Result<UserId> {
    UserId::new(name).map_err(|e| Failure::bad_request(e.to_string()))
}

/// The router of the control plane over `store`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/v1/accounts", post(register_account))
        .route("/v1/accounts/{username}", get(account))
        .route("/v1/accounts/{username}/devices", post(register_device))
        .route(
            "/v1/accounts/{username}/devices/{device_id}/revoke",
            post(crate::auth::revoke),
        )
        .route("/v1/auth/challenge", post(crate::auth::challenge))
        .route("/v1/auth/session", post(crate::auth::session))
        .route("/v1/me", get(crate::auth::me))
        .route(
            "/v1/key-packages",
            post(crate::key_packages::upload)
                .layer(DefaultBodyLimit::max(crate::key_packages::MAX_UPLOAD_BODY))
                .get(crate::key_packages::status),
        )
        .route(
            "/v1/accounts/{username}/key-packages/claim",
            post(crate::key_packages::claim),
        )
        .route(
            "/v1/conversations/{conversation}/messages",
            post(crate::delivery::send)
                .layer(DefaultBodyLimit::max(crate::delivery::MAX_SEND_BODY)),
        )
        .route("/v1/inbox", get(crate::delivery::inbox))
        .route("/v1/inbox/ack", post(crate::delivery::ack))
        .route("/v1/discovery/salt", get(crate::discovery::salt))
        .route("/v1/discovery", put(crate::discovery::publish))
        .route("/v1/discovery/lookup", post(crate::discovery::lookup))
        .route(
            "/v1/attachments",
            post(crate::attachments::upload)
                .layer(DefaultBodyLimit::max(crate::attachments::MAX_ATTACHMENT)),
        )
        .route(
            "/v1/attachments/{id}",
            get(crate::attachments::download).delete(crate::attachments::delete),
        )
        .merge(crate::passwords::routes())
        .route("/metrics", get(crate::metrics::serve))
        .route(crate::openapi::PATH, get(crate::openapi::serve))
        .route(sotto_api::WS_PATH, get(crate::ws::connect))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .fallback(|| async { Failure::not_found("route") })
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::clone(&state.metrics),
            crate::metrics::track,
        ))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Result<Json<Health>> {
    state.store.ping().await?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

async fn register_account(
    State(state): State<AppState>,
    body: std::result::Result<Json<RegisterAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<Account>)> {
    let Json(request) = body?;
    let user = user_id(&request.username)?;
    let root = RootPublicKey::from_bytes(&request.root_public_key.0)
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    let name = user.to_string();
    state
        .store
        .create_account(&name, root.as_bytes(), &state.actor(&name), now())
        .await?;
    tracing::info!(event = "account_registered", "account registered");
    Ok((
        StatusCode::CREATED,
        Json(Account {
            username: user.to_string(),
            root_public_key: Bytes(root.as_bytes().to_vec()),
            devices: Vec::new(),
        }),
    ))
}

async fn account(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Account>> {
    let user = user_id(&username)?;
    let row = state
        .store
        .account(user.as_str())
        .await?
        .ok_or_else(|| Failure::not_found("account"))?;
    let devices = row
        .devices
        .into_iter()
        .map(|(id, certificate)| DeviceInfo {
            device_id: crate::hex::encode(&id),
            certificate: Bytes(certificate),
        })
        .collect();
    Ok(Json(Account {
        username: user.to_string(),
        root_public_key: Bytes(row.root_public_key),
        devices,
    }))
}

async fn register_device(
    State(state): State<AppState>,
    Path(username): Path<String>,
    body: std::result::Result<Json<RegisterDevice>, JsonRejection>,
) -> Result<(StatusCode, Json<DeviceInfo>)> {
    let Json(request) = body?;
    let user = user_id(&username)?;
    let certificate = DeviceCertificate::from_bytes(&request.certificate.0)
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    let row = state
        .store
        .account(user.as_str())
        .await?
        .ok_or_else(|| Failure::not_found("account"))?;
    let root = RootPublicKey::from_bytes(&row.root_public_key).map_err(|_| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "stored key invalid",
        )
    })?;
    // The server cannot mint certificates: only one signed by this account's root key is
    // accepted, so only the user can add a device to the account.
    let device = certificate
        .verify_for_user(&user, &root.fingerprint())
        .map_err(|e| Failure::bad_request(format!("device certificate refused: {e}")))?;
    let put = state
        .store
        .put_device(
            user.as_str(),
            &device.device_id.0,
            &request.certificate.0,
            now(),
        )
        .await?;
    let status = match put {
        Put::Created => {
            tracing::info!(event = "device_registered", "device registered");
            StatusCode::CREATED
        }
        Put::Unchanged => StatusCode::OK,
    };
    Ok((
        status,
        Json(DeviceInfo {
            device_id: device.device_id.to_hex(),
            certificate: request.certificate,
        }),
    ))
}
