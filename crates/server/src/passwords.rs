//! Password login (OPAQUE, `sotto_core::password`) and the sealed root-key backup it
//! releases.
//!
//! A logged-in device registers (or replaces) its account's OPAQUE record together with
//! the root key sealed under the password. A new device that knows only the username and
//! the password runs an OPAQUE login; if it succeeds, the server hands over the sealed
//! backup, and nothing else (no session: the device has no certificate yet, and makes one
//! with the root key it unseals). The server never sees the password.
//!
//! The server's OPAQUE key ([`ServerKeys`]) is created once and kept among the store's
//! settings, so servers sharing a database agree on it. The state a login keeps between
//! start and finish is stored encrypted under a key derived from it, for
//! [`LOGIN_TTL_SECS`], by the hash of a random login id, and deleted by the finish that
//! names it, whatever the outcome. Every start counts against the username's lockout
//! ([`crate::storage::LOCKOUT`]); see `docs/operations.md` for the policy.

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use sotto_api::{
    Bytes, ErrorCode, PasswordLoginFinish, PasswordLoginFinished, PasswordLoginStart,
    PasswordLoginStarted, PasswordRegistrationFinish, PasswordRegistrationResponse,
    PasswordRegistrationStart, PutBackup,
};
use sotto_core::backup::SealedBackup;
use sotto_core::crypto;
use sotto_core::identity::UserId;
use sotto_core::password::{
    server_login_start, server_registration_start, PasswordError, PasswordFile, ServerLoginState,
    CREDENTIAL_REQUEST_LEN,
};

use crate::auth::Session;
use crate::http::{now, Failure};
use crate::state::AppState;
use crate::storage::{DeviceRef, LoginGate, PendingLogin, StoreError};

mod keys;
pub use keys::{ServerKeys, SetupError, SETUP_SETTING};

/// How long a login may take from start to finish.
pub const LOGIN_TTL_SECS: u64 = 60;
/// Length of a login id.
pub const LOGIN_ID_LEN: usize = 32;
/// Largest sealed backup accepted (a sealed root key takes about 320 bytes).
pub const MAX_SEALED_BACKUP: usize = 4096;
/// Largest request body on these routes.
pub const MAX_BODY: usize = 8 * 1024;

/// The routes of password registration, login and the backup.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/password/register/start", post(register_start))
        .route("/v1/password/register/finish", post(register_finish))
        .route("/v1/password/login/start", post(login_start))
        .route("/v1/password/login/finish", post(login_finish))
        .route("/v1/backup", put(put_backup))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Failure> {
    body.map(|Json(value)| value).map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                format!("request body exceeds {MAX_BODY} bytes"),
            )
        } else {
            Failure::bad_request(rejection.body_text())
        }
    })
}

fn internal(message: &str) -> Failure {
    Failure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        message,
    )
}

fn login_failed() -> Failure {
    Failure::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        "the password login failed",
    )
}

/// Malformed OPAQUE messages are the client's fault; anything else but a failed
/// authentication is ours.
fn refused(error: PasswordError) -> Failure {
    match error {
        PasswordError::WrongLength { .. }
        | PasswordError::Malformed(_)
        | PasswordError::InvalidUsername
        | PasswordError::PasswordTooLong => Failure::bad_request(error.to_string()),
        PasswordError::AuthenticationFailed => login_failed(),
        _ => internal("password protocol failure"),
    }
}

fn own_account(device: &DeviceRef, username: &str) -> Result<(), Failure> {
    if device.username == username {
        Ok(())
    } else {
        Err(Failure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "a device may register a password only for its own account",
        ))
    }
}

/// Checks the size and the container (magic, version, scrypt bounds) of a sealed backup;
/// its contents are the client's business.
fn check_backup(sealed: &[u8]) -> Result<(), Failure> {
    if sealed.len() > MAX_SEALED_BACKUP {
        return Err(Failure::bad_request(format!(
            "a sealed backup may hold at most {MAX_SEALED_BACKUP} bytes"
        )));
    }
    SealedBackup::from_bytes(sealed)
        .map(|_| ())
        .map_err(|e| Failure::bad_request(format!("not a sealed backup: {e}")))
}

/// `POST /v1/password/register/start` (session).
async fn register_start(
    State(state): State<AppState>,
    Session(device): Session,
    request: Result<Json<PasswordRegistrationStart>, JsonRejection>,
) -> Result<Json<PasswordRegistrationResponse>, Failure> {
    let request = body(request)?;
    own_account(&device, &request.username)?;
    let response = server_registration_start(
        state.passwords.setup(),
        &request.request.0,
        device.username.as_bytes(),
    )
    .map_err(refused)?;
    Ok(Json(PasswordRegistrationResponse {
        response: Bytes(response),
    }))
}

/// `POST /v1/password/register/finish` (session).
async fn register_finish(
    State(state): State<AppState>,
    Session(device): Session,
    request: Result<Json<PasswordRegistrationFinish>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    let request = body(request)?;
    own_account(&device, &request.username)?;
    let record = PasswordFile::from_upload(&request.upload.0).map_err(refused)?;
    check_backup(&request.sealed_backup.0)?;
    state
        .store
        .put_password(
            &device.username,
            &record.to_bytes(),
            &request.sealed_backup.0,
            now(),
        )
        .await?;
    tracing::info!(event = "password_registered", "password registered");
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/backup` (session).
async fn put_backup(
    State(state): State<AppState>,
    Session(device): Session,
    request: Result<Json<PutBackup>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    let request = body(request)?;
    check_backup(&request.sealed_backup.0)?;
    state
        .store
        .put_backup(&device.username, &request.sealed_backup.0, now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => Failure::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "this account has no password; register one first",
            ),
            e => Failure::from(e),
        })?;
    tracing::info!(event = "backup_replaced", "sealed backup replaced");
    Ok(StatusCode::NO_CONTENT)
}

/// The answer while a username is locked: 429 with `Retry-After`.
fn locked(until: u64, now: u64) -> Response {
    let wait = until.saturating_sub(now).max(1);
    let mut response = Failure::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!(
            "too many password logins for this username: password login is locked \
             for {wait} more seconds"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    response
}

/// `POST /v1/password/login/start`. Known and unknown usernames get the same answers.
async fn login_start(
    State(state): State<AppState>,
    request: Result<Json<PasswordLoginStart>, JsonRejection>,
) -> Result<Json<PasswordLoginStarted>, Response> {
    let request = body(request).map_err(IntoResponse::into_response)?;
    let user = UserId::new(&request.username)
        .map_err(|e| Failure::bad_request(e.to_string()).into_response())?;
    if request.request.0.len() != CREDENTIAL_REQUEST_LEN {
        return Err(Failure::bad_request(format!(
            "a credential request is {CREDENTIAL_REQUEST_LEN} bytes"
        ))
        .into_response());
    }
    let now = now();
    let record = match state.store.begin_login(user.as_str(), now).await {
        Ok(LoginGate::Open(record)) => record,
        Ok(LoginGate::Locked { until }) => {
            tracing::debug!(event = "password_login_locked", "password login refused");
            return Err(locked(until, now));
        }
        Err(e) => return Err(Failure::from(e).into_response()),
    };
    let record = record.as_ref().map(|r| r.as_slice());
    let started = start_opaque(&state, &user, record, &request.request.0, now).await;
    started.map(Json).map_err(IntoResponse::into_response)
}

async fn start_opaque(
    state: &AppState,
    user: &UserId,
    record: Option<&[u8]>,
    request: &[u8],
    now: u64,
) -> Result<PasswordLoginStarted, Failure> {
    let record = record
        .map(PasswordFile::from_bytes)
        .transpose()
        .map_err(|_| internal("stored password record invalid"))?;
    let keys = &state.passwords;
    let (server, response) = server_login_start(
        keys.setup(),
        record.as_ref(),
        request,
        user.as_str().as_bytes(),
    )
    .map_err(refused)?;
    let login_id: [u8; LOGIN_ID_LEN] =
        crypto::random_array().map_err(|_| internal("no randomness"))?;
    let id_hash = crypto::sha256(&login_id);
    let sealed = keys
        .seal_state(&id_hash, user.as_str(), &server.to_bytes())
        .map_err(|_| internal("cannot seal the login state"))?;
    let pending = PendingLogin {
        id_hash: id_hash.to_vec(),
        username: user.to_string(),
        state: sealed,
        expires_at: now + LOGIN_TTL_SECS,
    };
    state.store.put_login(&pending).await?;
    Ok(PasswordLoginStarted {
        login_id: Bytes(login_id.to_vec()),
        response: Bytes(response),
    })
}

/// `POST /v1/password/login/finish`: the sealed backup, only if the finalization proves
/// the password. Any finish consumes the login it names.
async fn login_finish(
    State(state): State<AppState>,
    request: Result<Json<PasswordLoginFinish>, JsonRejection>,
) -> Result<Json<PasswordLoginFinished>, Failure> {
    let request = body(request)?;
    if request.login_id.0.len() != LOGIN_ID_LEN {
        return Err(Failure::bad_request(format!(
            "a login id is {LOGIN_ID_LEN} bytes"
        )));
    }
    let id_hash = crypto::sha256(&request.login_id.0);
    let now = now();
    let pending = state
        .store
        .take_login(&id_hash, now)
        .await?
        .ok_or_else(|| {
            Failure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "unknown, used or expired login",
            )
        })?;
    let keys = &state.passwords;
    let server = keys
        .open_state(&id_hash, &pending.username, &pending.state)
        .and_then(|bytes| ServerLoginState::from_bytes(&bytes).ok())
        .ok_or_else(|| internal("stored login state invalid"))?;
    if let Err(e) = server.finish(&request.finalization.0) {
        tracing::debug!(event = "password_login_failed", "password login failed");
        return Err(refused(e));
    }
    let actor = state.actor(&pending.username);
    let backup = state
        .store
        .complete_login(&pending.username, &actor, now)
        .await?
        .ok_or_else(login_failed)?;
    tracing::info!(event = "password_login", "sealed backup released");
    Ok(Json(PasswordLoginFinished {
        sealed_backup: Bytes(backup),
    }))
}
