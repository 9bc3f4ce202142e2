//! A real server on a fresh data directory, and helpers, for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use reqwest::StatusCode;
use sotto_api::{
    Account, ApiError, Bytes, Challenge, ChallengeRequest, ErrorCode, RegisterAccount,
    RegisterDevice, Session, SessionRequest, UploadKeyPackages,
};
use sotto_core::auth::sign_challenge;
use sotto_core::crypto::SigningKey;
use sotto_core::device::{Device, NewDevice};
use sotto_core::identity::{DeviceId, UserId, UserRootKey};
use sotto_server::{start, Config};
use tokio::sync::oneshot;

/// A server on a fresh data directory; dropped, it shuts down and removes the directory.
pub struct TestServer {
    pub base: String,
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn start_in(dir: PathBuf) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
        let running = start(config, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        Self {
            base: format!("http://{}", running.addr),
            dir,
            stop: Some(stop),
            task: Some(running.task),
            http: reqwest::Client::new(),
        }
    }

    pub async fn start() -> Self {
        let name: String = sotto_core::crypto::random_array::<8>()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self::start_in(std::env::temp_dir().join(format!("sotto-server-test-{name}"))).await
    }

    /// Stops gracefully and returns the data directory (kept).
    pub async fn stop(mut self) -> PathBuf {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        std::mem::take(&mut self.dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn register(&self, root: &UserRootKey) -> reqwest::Response {
        let body = RegisterAccount {
            username: root.user().to_string(),
            root_public_key: Bytes(root.public_key().as_bytes().to_vec()),
        };
        self.http
            .post(self.url("/v1/accounts"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn add_device(&self, user: &str, certificate: Vec<u8>) -> reqwest::Response {
        let body = RegisterDevice {
            certificate: Bytes(certificate),
        };
        let url = self.url(&format!("/v1/accounts/{user}/devices"));
        self.http.post(url).json(&body).send().await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn root(name: &str) -> UserRootKey {
    UserRootKey::generate(UserId::new(name).unwrap()).unwrap()
}

pub fn certificate(root: &UserRootKey, device: u8) -> Vec<u8> {
    let key = SigningKey::generate().unwrap().public_key();
    root.certify_device(DeviceId([device; 16]), &key, 1)
        .unwrap()
        .to_bytes()
        .unwrap()
}

pub async fn error(response: reqwest::Response, status: StatusCode, code: ErrorCode) -> String {
    assert_eq!(response.status(), status);
    let body: ApiError = response.json().await.unwrap();
    assert_eq!(body.error, code);
    body.message
}

/// A registered user with one registered device.
pub async fn registered(server: &TestServer, name: &str) -> (UserRootKey, NewDevice) {
    let root = root(name);
    server.register(&root).await;
    let device = NewDevice::generate(&root, 1).unwrap();
    let response = server
        .add_device(name, device.certificate.to_bytes().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (root, device)
}

pub async fn ask(server: &TestServer, user: &str, device: &str) -> reqwest::Response {
    let body = ChallengeRequest {
        username: user.into(),
        device_id: device.into(),
    };
    server
        .http
        .post(server.url("/v1/auth/challenge"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn answer(
    server: &TestServer,
    user: &str,
    device: &str,
    challenge: &[u8],
    sig: Vec<u8>,
) -> reqwest::Response {
    let body = SessionRequest {
        username: user.into(),
        device_id: device.into(),
        challenge: Bytes(challenge.to_vec()),
        signature: Bytes(sig),
    };
    server
        .http
        .post(server.url("/v1/auth/session"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub fn sign(device: &NewDevice, challenge: &[u8]) -> Vec<u8> {
    let who = device.certificate.verify().unwrap();
    sign_challenge(
        &device.secret,
        challenge.try_into().unwrap(),
        &who.user,
        &who.device_id,
    )
    .unwrap()
}

/// Logs `device` of `user` in and returns its session token.
pub async fn login(server: &TestServer, user: &str, device: &NewDevice) -> String {
    let id = device.certificate.verify().unwrap().device_id.to_hex();
    let challenge: Challenge = ask(server, user, &id).await.json().await.unwrap();
    let signature = sign(device, &challenge.challenge.0);
    let session: Session = answer(server, user, &id, &challenge.challenge.0, signature)
        .await
        .json()
        .await
        .unwrap();
    session.token
}

/// An in-memory MLS device for the same certified key as `device`.
pub fn mls_device(device: &NewDevice) -> Device {
    Device::in_memory(NewDevice {
        certificate: device.certificate.clone(),
        secret: device.secret.clone(),
    })
    .unwrap()
}

impl TestServer {
    /// `GET /v1/accounts/{user}`, which must succeed.
    pub async fn account(&self, user: &str) -> Account {
        let url = self.url(&format!("/v1/accounts/{user}"));
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /v1/me` with `token`.
    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `POST /v1/key-packages` with `token`.
    pub async fn upload_key_packages(
        &self,
        token: &str,
        key_packages: Vec<Vec<u8>>,
        last_resort: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let body = UploadKeyPackages {
            key_packages: key_packages.into_iter().map(Bytes).collect(),
            last_resort: last_resort.map(Bytes),
        };
        let url = self.url("/v1/key-packages");
        self.http
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}
