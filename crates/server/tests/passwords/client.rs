//! The client side of the password tests: OPAQUE over HTTP, sealed backups, and every
//! log line of the test binary.

use std::sync::{Mutex, Once};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use reqwest::StatusCode;
use serde::Serialize;
use sotto_api::{
    Bytes, ErrorCode, PasswordLoginFinish, PasswordLoginFinished, PasswordLoginStart,
    PasswordLoginStarted, PasswordRegistrationFinish, PasswordRegistrationResponse,
    PasswordRegistrationStart, PutBackup,
};
use sotto_core::backup::ScryptParams;
use sotto_core::identity::UserRootKey;
use sotto_core::password::{ClientLogin, ClientRegistration, PasswordError};

use crate::common::*;

// Every log line of this test binary, at the most verbose level the server allows.

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Through the binary's own filter and caps, at the most detailed level.
        sotto_server::logging::init_with_writer("trace", || Capture);
    });
}

pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// The ways `bytes` could show up in a log line: base64, hex, and Rust's `Debug` of a
/// byte slice (how tokio-postgres prints parameters) of its last 16 bytes, which are
/// random in every secret checked here (a tag, a MAC, a random id).
pub fn log_needles(bytes: &[u8]) -> Vec<String> {
    let list = format!("{:?}", &bytes[bytes.len() - 16..]);
    let list = list.trim_start_matches('[');
    vec![
        STANDARD.encode(bytes),
        hex(bytes),
        list.trim_end_matches(']').to_owned(),
    ]
}

pub async fn post<T: Serialize>(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    body: &T,
) -> reqwest::Response {
    let mut request = server.http.post(server.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

pub fn seal(root: &UserRootKey, password: &[u8]) -> Vec<u8> {
    let params = ScryptParams::new(10, 8, 1).unwrap();
    root.seal_backup(password, params).unwrap().to_bytes()
}

/// Registers `password` for the logged-in `user`, with `backup`; returns the upload (the
/// record the server stores).
pub async fn register(
    server: &TestServer,
    token: &str,
    user: &str,
    password: &[u8],
    backup: &[u8],
) -> Vec<u8> {
    let (client, request) = ClientRegistration::start(user.as_bytes(), password).unwrap();
    let start = PasswordRegistrationStart {
        username: user.into(),
        request: Bytes(request),
    };
    let response = post(server, "/v1/password/register/start", Some(token), &start).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response: PasswordRegistrationResponse = response.json().await.unwrap();
    let (upload, _export_key) = client.finish(password, &response.response.0).unwrap();
    let finish = PasswordRegistrationFinish {
        username: user.into(),
        upload: Bytes(upload.clone()),
        sealed_backup: Bytes(backup.to_vec()),
    };
    let response = post(server, "/v1/password/register/finish", Some(token), &finish).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    upload
}

pub async fn start_login(
    server: &TestServer,
    user: &str,
    password: &[u8],
) -> (ClientLogin, reqwest::Response) {
    let (client, request) = ClientLogin::start(user.as_bytes(), password).unwrap();
    let body = PasswordLoginStart {
        username: user.into(),
        request: Bytes(request),
    };
    (
        client,
        post(server, "/v1/password/login/start", None, &body).await,
    )
}

pub async fn finish(
    server: &TestServer,
    login_id: &[u8],
    finalization: &[u8],
) -> reqwest::Response {
    let body = PasswordLoginFinish {
        login_id: Bytes(login_id.to_vec()),
        finalization: Bytes(finalization.to_vec()),
    };
    post(server, "/v1/password/login/finish", None, &body).await
}

/// A whole login with `password`: the released backup, or the client's error, or the
/// server's refusal of the finish.
pub async fn password_login(
    server: &TestServer,
    user: &str,
    password: &[u8],
) -> Result<Vec<u8>, PasswordError> {
    let (client, response) = start_login(server, user, password).await;
    assert_eq!(response.status(), StatusCode::OK);
    let started: PasswordLoginStarted = response.json().await.unwrap();
    let (finalization, _, _) = client.finish(password, &started.response.0)?;
    let response = finish(server, &started.login_id.0, &finalization).await;
    assert_eq!(response.status(), StatusCode::OK);
    let finished: PasswordLoginFinished = response.json().await.unwrap();
    Ok(finished.sealed_backup.0)
}

pub async fn owner(server: &TestServer, name: &str) -> (UserRootKey, String) {
    let (root, device) = registered(server, name).await;
    let token = login(server, name, &device).await;
    (root, token)
}

/// Asserts the status of `response` and the error code that goes with it.
pub async fn refused(response: reqwest::Response, status: StatusCode) {
    let code = match status {
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
        other => panic!("{other}"),
    };
    error(response, status, code).await;
}

pub async fn put_backup(
    server: &TestServer,
    token: Option<&str>,
    sealed: &[u8],
) -> reqwest::Response {
    let body = PutBackup {
        sealed_backup: Bytes(sealed.to_vec()),
    };
    let mut request = server.http.put(server.url("/v1/backup")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}
