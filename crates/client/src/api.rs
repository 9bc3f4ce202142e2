//! The server's HTTP API, typed (see `docs/operations.md` and the server's `/openapi.json`).
//!
//! Everything the server says is untrusted: bodies are size-limited and decoded into the
//! `sotto-api` types, and errors become [`ClientError`]s. Nothing sent here is secret
//! except the session token (and the OPAQUE messages, which reveal nothing).

use reqwest::{Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};
use sotto_api::{
    Account, Ack, ApiError, AttachmentStored, Bytes, Challenge, ChallengeRequest,
    ClaimedKeyPackages, DeviceInfo, ErrorCode, Inbox, KeyPackagePool, PasswordLoginFinish,
    PasswordLoginFinished, PasswordLoginStart, PasswordLoginStarted, PasswordRegistrationFinish,
    PasswordRegistrationResponse, PasswordRegistrationStart, RegisterAccount, RegisterDevice,
    RevokeDevice, SendMessage, Sent, Session, SessionRequest, UploadKeyPackages,
};

use crate::error::{ClientError, Result};

/// Largest JSON answer accepted from the server (an inbox page of large messages).
const MAX_ANSWER: usize = 64 << 20;

/// A connection to one Sotto server.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    tls: std::sync::Arc<rustls::ClientConfig>,
}

impl Api {
    /// A client for the server at `base` (e.g. `https://chat.example.org`, or
    /// `http://127.0.0.1:8480` for a server on this machine), trusting the system's
    /// certificate authorities and those in `extra_ca` (a PEM file).
    pub fn new(base: &str, extra_ca: Option<&std::path::Path>) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Invalid(format!(
                "the server address {base} must start with https:// (or http:// for a server \
                 on this machine)"
            )));
        }
        if let Some(rest) = base.strip_prefix("http://") {
            // Plain HTTP would carry the session token in clear: only to this machine.
            let host = rest.split('/').next().unwrap_or_default();
            let host = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => host.rsplit_once(':').map_or(host, |(h, _)| h),
            };
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(ClientError::Invalid(format!(
                    "{base} is plain HTTP to another machine, which would expose your session; \
                     use https://"
                )));
            }
        }
        let tls = crate::tls::client_config(extra_ca)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .https_only(base.starts_with("https://"))
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| ClientError::Invalid(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { base, http, tls })
    }

    /// The server's base address.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<T> {
        let bytes = self.raw(method, path, token, body).await?;
        decode_answer(path, &bytes)
    }

    async fn raw<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<Vec<u8>> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        read(response).await
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    /// `POST /v1/accounts`.
    pub async fn register_account(&self, body: &RegisterAccount) -> Result<Account> {
        self.call(Method::POST, "/v1/accounts", None, Some(body))
            .await
    }

    /// `GET /v1/accounts/{user}`; an unknown user is [`ClientError::UnknownUser`].
    pub async fn account(&self, user: &str) -> Result<Account> {
        let path = format!("/v1/accounts/{user}");
        match self
            .call::<(), Account>(Method::GET, &path, None, None)
            .await
        {
            Err(ClientError::Server { status: 404, .. }) => {
                Err(ClientError::UnknownUser(user.into()))
            }
            other => other,
        }
    }

    /// `POST /v1/accounts/{user}/devices`.
    pub async fn add_device(&self, user: &str, certificate: Vec<u8>) -> Result<DeviceInfo> {
        let body = RegisterDevice {
            certificate: Bytes(certificate),
        };
        let path = format!("/v1/accounts/{user}/devices");
        self.call(Method::POST, &path, None, Some(&body)).await
    }

    /// `POST /v1/accounts/{user}/devices/{device}/revoke`.
    pub async fn revoke(&self, token: &str, user: &str, device: &str) -> Result<()> {
        let path = format!("/v1/accounts/{user}/devices/{device}/revoke");
        self.raw(
            Method::POST,
            &path,
            Some(token),
            Some(&RevokeDevice::default()),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/auth/challenge`.
    pub async fn challenge(&self, body: &ChallengeRequest) -> Result<Challenge> {
        self.call(Method::POST, "/v1/auth/challenge", None, Some(body))
            .await
    }

    /// `POST /v1/auth/session`.
    pub async fn session(&self, body: &SessionRequest) -> Result<Session> {
        self.call(Method::POST, "/v1/auth/session", None, Some(body))
            .await
    }

    /// `POST /v1/key-packages`.
    pub async fn upload_key_packages(
        &self,
        token: &str,
        body: &UploadKeyPackages,
    ) -> Result<KeyPackagePool> {
        self.call(Method::POST, "/v1/key-packages", Some(token), Some(body))
            .await
    }

    /// `GET /v1/key-packages`.
    pub async fn key_package_pool(&self, token: &str) -> Result<KeyPackagePool> {
        self.call::<(), _>(Method::GET, "/v1/key-packages", Some(token), None)
            .await
    }

    /// `POST /v1/accounts/{user}/key-packages/claim`: one KeyPackage per device of `user`.
    pub async fn claim(&self, token: &str, user: &str) -> Result<ClaimedKeyPackages> {
        let path = format!("/v1/accounts/{user}/key-packages/claim");
        match self
            .call::<(), _>(Method::POST, &path, Some(token), None)
            .await
        {
            Err(ClientError::Server { status: 404, .. }) => {
                Err(ClientError::UnknownUser(user.into()))
            }
            other => other,
        }
    }

    /// `POST /v1/conversations/{conversation}/messages`.
    pub async fn send(&self, token: &str, conversation: &str, body: &SendMessage) -> Result<Sent> {
        let path = format!("/v1/conversations/{conversation}/messages");
        self.call(Method::POST, &path, Some(token), Some(body))
            .await
    }

    /// `GET /v1/inbox?after=..&limit=..`.
    pub async fn inbox(&self, token: &str, after: u64, limit: u32) -> Result<Inbox> {
        let path = format!("/v1/inbox?after={after}&limit={limit}");
        self.call::<(), _>(Method::GET, &path, Some(token), None)
            .await
    }

    /// `POST /v1/inbox/ack`.
    pub async fn ack(&self, token: &str, cursors: Vec<u64>) -> Result<()> {
        self.raw(
            Method::POST,
            "/v1/inbox/ack",
            Some(token),
            Some(&Ack { cursors }),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/password/register/start` (with a session of the account).
    pub async fn password_register_start(
        &self,
        token: &str,
        body: &PasswordRegistrationStart,
    ) -> Result<PasswordRegistrationResponse> {
        self.call(
            Method::POST,
            "/v1/password/register/start",
            Some(token),
            Some(body),
        )
        .await
    }

    /// `POST /v1/password/register/finish` (with a session of the account).
    pub async fn password_register_finish(
        &self,
        token: &str,
        body: &PasswordRegistrationFinish,
    ) -> Result<()> {
        self.raw(
            Method::POST,
            "/v1/password/register/finish",
            Some(token),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/password/login/start`.
    pub async fn password_login_start(
        &self,
        body: &PasswordLoginStart,
    ) -> Result<PasswordLoginStarted> {
        self.call(Method::POST, "/v1/password/login/start", None, Some(body))
            .await
    }

    /// `POST /v1/password/login/finish`.
    pub async fn password_login_finish(
        &self,
        body: &PasswordLoginFinish,
    ) -> Result<PasswordLoginFinished> {
        self.call(Method::POST, "/v1/password/login/finish", None, Some(body))
            .await
    }

    /// `POST /v1/attachments`: stores an encrypted blob for `ttl` seconds.
    pub async fn upload_attachment(
        &self,
        token: &str,
        blob: Vec<u8>,
        ttl: u32,
    ) -> Result<AttachmentStored> {
        let url = format!("{}/v1/attachments?ttl={ttl}", self.base);
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .body(blob)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let bytes = read(response).await?;
        decode_answer("attachment upload", &bytes)
    }

    /// `GET /v1/attachments/{id}` with its capability token.
    pub async fn download_attachment(&self, id: &str, capability: &str) -> Result<Vec<u8>> {
        let url = format!("{}/v1/attachments/{id}", self.base);
        let response = self
            .http
            .get(url)
            .header("authorization", format!("Capability {capability}"))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        read(response).await
    }

    /// The TLS configuration (for the WebSocket).
    pub fn tls(&self) -> std::sync::Arc<rustls::ClientConfig> {
        std::sync::Arc::clone(&self.tls)
    }

    /// `DELETE /v1/attachments/{id}` with its capability token.
    pub async fn delete_attachment(&self, id: &str, capability: &str) -> Result<()> {
        let url = format!("{}/v1/attachments/{id}", self.base);
        let response = self
            .http
            .delete(url)
            .header("authorization", format!("Capability {capability}"))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        read(response).await.map(drop)
    }

    /// The WebSocket URL for live delivery.
    pub fn websocket_url(&self) -> String {
        let rest = self
            .base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| {
                self.base
                    .strip_prefix("http://")
                    .map(|r| format!("ws://{r}"))
            })
            .unwrap_or_default();
        format!("{rest}{}", sotto_api::WS_PATH)
    }
}

/// Reads an answer: its body if successful (bounded), its error otherwise.
async fn read(mut response: reqwest::Response) -> Result<Vec<u8>> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ClientError::Protocol(format!("the answer broke off: {e}")))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(ClientError::Protocol("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return Ok(body);
    }
    Err(answer_error(status.as_u16(), &body))
}

/// Decodes a successful answer's body (to the request `what`) as a `T`: anything else is a
/// [`ClientError::Protocol`]. Public for the fuzz targets and property tests.
#[doc(hidden)]
pub fn decode_answer<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| ClientError::Protocol(format!("{what}: unexpected answer ({e})")))
}

/// The error an unsuccessful answer stands for: a [`ClientError::Server`] with the status,
/// the error code if the body is an [`ApiError`], and its message (or the status's name)
/// cut to 300 characters. A status outside 100..=999, which HTTP cannot carry, counts as
/// 502. Public for the fuzz targets and property tests.
#[doc(hidden)]
pub fn answer_error(status: u16, body: &[u8]) -> ClientError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let (code, message) = match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => (Some(e.error), e.message),
        Err(_) => (None, status.to_string()),
    };
    let message: String = message.chars().take(300).collect();
    match (status, code) {
        (StatusCode::TOO_MANY_REQUESTS, _) | (_, Some(ErrorCode::RateLimited)) => {
            ClientError::Server {
                status: status.as_u16(),
                code,
                message: format!("{message} (too many requests; try again later)"),
            }
        }
        _ => ClientError::Server {
            status: status.as_u16(),
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_only_for_this_machine() {
        for ok in [
            "http://127.0.0.1:8480",
            "http://localhost:8480/",
            "http://[::1]:8480",
            "https://chat.example.org",
        ] {
            assert!(Api::new(ok, None).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.1:8480",
            "http://chat.example.org",
            "ftp://x",
            "127.0.0.1",
        ] {
            assert!(Api::new(refused, None).is_err(), "{refused}");
        }
    }
}
