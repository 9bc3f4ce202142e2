//! Accounts and device certificates over real HTTP against a real server on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::json;
use sotto_api::{Account, ApiError, Bytes, DeviceInfo, ErrorCode, RegisterAccount, RegisterDevice};
use sotto_core::crypto::SigningKey;
use sotto_core::identity::{DeviceId, UserId, UserRootKey};
use sotto_server::{start, Config};
use tokio::sync::oneshot;

/// A server on a fresh data directory; dropped, it shuts down and removes the directory.
struct TestServer {
    base: String,
    dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
}

impl TestServer {
    async fn start_in(dir: PathBuf) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.clone(),
        };
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

    async fn start() -> Self {
        let name: String = sotto_core::crypto::random_array::<8>()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self::start_in(std::env::temp_dir().join(format!("sotto-server-test-{name}"))).await
    }

    /// Stops gracefully and returns the data directory (kept).
    async fn stop(mut self) -> PathBuf {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        std::mem::take(&mut self.dir)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn register(&self, root: &UserRootKey) -> reqwest::Response {
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

    async fn add_device(&self, user: &str, certificate: Vec<u8>) -> reqwest::Response {
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

fn root(name: &str) -> UserRootKey {
    UserRootKey::generate(UserId::new(name).unwrap()).unwrap()
}

fn certificate(root: &UserRootKey, device: u8) -> Vec<u8> {
    let key = SigningKey::generate().unwrap().public_key();
    root.certify_device(DeviceId([device; 16]), &key, 1)
        .unwrap()
        .to_bytes()
        .unwrap()
}

async fn error(response: reqwest::Response, status: StatusCode, code: ErrorCode) -> String {
    assert_eq!(response.status(), status);
    let body: ApiError = response.json().await.unwrap();
    assert_eq!(body.error, code);
    body.message
}

#[tokio::test]
async fn health_answers() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn accounts_are_unique_and_validated() {
    let server = TestServer::start().await;
    let alice = root("alice");
    assert_eq!(server.register(&alice).await.status(), StatusCode::CREATED);
    // The same user id again, even with another key, is refused.
    let response = server.register(&root("alice")).await;
    error(response, StatusCode::CONFLICT, ErrorCode::Conflict).await;

    let bad_name = json!({"username": "Alice", "root_public_key": "BAAA"});
    let response = server
        .http
        .post(server.url("/v1/accounts"))
        .json(&bad_name)
        .send()
        .await
        .unwrap();
    let message = error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    assert!(message.contains("user id"), "{message}");
    let bad_key = json!({"username": "bob", "root_public_key": "BAAA"});
    let response = server
        .http
        .post(server.url("/v1/accounts"))
        .json(&bad_key)
        .send()
        .await
        .unwrap();
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;

    let account: Account = server
        .http
        .get(server.url("/v1/accounts/alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account.root_public_key.0, alice.public_key().as_bytes());
    let response = server
        .http
        .get(server.url("/v1/accounts/nobody"))
        .send()
        .await
        .unwrap();
    error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn only_the_root_key_can_add_a_device() {
    let server = TestServer::start().await;
    let alice = root("alice");
    server.register(&alice).await;

    let cert = certificate(&alice, 1);
    let response = server.add_device("alice", cert.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let info: DeviceInfo = response.json().await.unwrap();
    assert_eq!(info.device_id, "01".repeat(16));
    // Publishing the same certificate again is harmless.
    assert_eq!(
        server.add_device("alice", cert.clone()).await.status(),
        StatusCode::OK
    );
    // Another certificate for the same device id is a conflict.
    let response = server.add_device("alice", certificate(&alice, 1)).await;
    error(response, StatusCode::CONFLICT, ErrorCode::Conflict).await;

    // A certificate for "alice" signed by another root key (what a compromised server or
    // an attacker would mint) is refused, and so is another user's certificate.
    let forged = certificate(&root("alice"), 2);
    let message = error(
        server.add_device("alice", forged).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
    )
    .await;
    assert!(message.contains("another user"), "{message}");
    let bob = root("bob");
    server.register(&bob).await;
    let response = server.add_device("alice", certificate(&bob, 3)).await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    // A tampered certificate is refused.
    let mut tampered = certificate(&alice, 4);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let response = server.add_device("alice", tampered).await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;

    let account: Account = server
        .http
        .get(server.url("/v1/accounts/alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account.devices.len(), 1);
    assert_eq!(account.devices[0].certificate.0, cert);
}

#[tokio::test]
async fn hostile_bodies_get_json_errors() {
    let server = TestServer::start().await;
    server.register(&root("alice")).await;
    let url = server.url("/v1/accounts/alice/devices");
    for body in [
        "",
        "{",
        "[]",
        r#"{"certificate": 5}"#,
        r#"{"certificate": "!!"}"#,
        r#"{"certificate": "AAAA"}"#,
    ] {
        let response = server
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{body}: {}",
            response.status()
        );
        let _: ApiError = response.json().await.unwrap();
    }
    let huge = format!(r#"{{"certificate": "{}"}}"#, "A".repeat(100_000));
    let response = server
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    error(response, StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge).await;
    let response = server
        .http
        .get(server.url("/v1/nothing"))
        .send()
        .await
        .unwrap();
    error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let server = TestServer::start().await;
    let alice = root("alice");
    server.register(&alice).await;
    server.add_device("alice", certificate(&alice, 7)).await;
    let dir = server.stop().await;

    let server = TestServer::start_in(dir).await;
    let account: Account = server
        .http
        .get(server.url("/v1/accounts/alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account.devices.len(), 1);
    assert_eq!(account.devices[0].device_id, "07".repeat(16));
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let config = Config {
        listen: "0.0.0.0:0".parse().unwrap(),
        data_dir: std::env::temp_dir().join("sotto-never-created"),
    };
    let error = start(config, async {}).await.unwrap_err();
    assert!(error.to_string().contains("loopback"));
    assert!(!std::env::temp_dir().join("sotto-never-created").exists());
}
