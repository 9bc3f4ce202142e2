//! Accounts and device certificates over real HTTP against a real server on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use reqwest::StatusCode;
use serde_json::json;
use sotto_api::{ApiError, DeviceInfo, ErrorCode};
use sotto_server::{start, Config};

async fn health_answers(db: Db) {
    let server = TestServer::start(db.clone()).await;
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

async fn accounts_are_unique_and_validated(db: Db) {
    let server = TestServer::start(db.clone()).await;
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

    let account = server.account("alice").await;
    assert_eq!(account.root_public_key.0, alice.public_key().as_bytes());
    let response = server
        .http
        .get(server.url("/v1/accounts/nobody"))
        .send()
        .await
        .unwrap();
    error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

async fn only_the_root_key_can_add_a_device(db: Db) {
    let server = TestServer::start(db.clone()).await;
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

    let account = server.account("alice").await;
    assert_eq!(account.devices.len(), 1);
    assert_eq!(account.devices[0].certificate.0, cert);
}

async fn hostile_bodies_get_json_errors(db: Db) {
    let server = TestServer::start(db.clone()).await;
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

async fn data_survives_a_restart(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let alice = root("alice");
    server.register(&alice).await;
    server.add_device("alice", certificate(&alice, 7)).await;
    let stored = server.stop().await;

    let server = TestServer::start_on(stored).await;
    let account = server.account("alice").await;
    assert_eq!(account.devices.len(), 1);
    assert_eq!(account.devices[0].device_id, "07".repeat(16));
}

/// Ten registrations of one user id race: exactly one is created, the rest are
/// conflicts, and the account has the winner's key.
async fn concurrent_registrations_of_one_user_id_admit_exactly_one(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let roots: Vec<_> = (0..10).map(|_| root("alice")).collect();
    let tasks: Vec<_> = roots
        .iter()
        .map(|root| {
            let (http, url) = (server.http.clone(), server.url("/v1/accounts"));
            let body = sotto_api::RegisterAccount {
                username: "alice".into(),
                root_public_key: sotto_api::Bytes(root.public_key().as_bytes().to_vec()),
            };
            tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status() })
        })
        .collect();
    let mut created = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            StatusCode::CREATED => created.push(i),
            StatusCode::CONFLICT => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    let account = server.account("alice").await;
    assert_eq!(
        account.root_public_key.0,
        roots[created[0]].public_key().as_bytes()
    );
    let registrations = server
        .stored
        .count("SELECT COUNT(*) FROM events WHERE kind = 'registration'")
        .await;
    assert_eq!(registrations, 1);
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let config = Config::new(
        "0.0.0.0:0".parse().unwrap(),
        std::env::temp_dir().join("sotto-never-created"),
    );
    let error = start(config, async {}).await.unwrap_err();
    assert!(error.to_string().contains("loopback"));
    assert!(!std::env::temp_dir().join("sotto-never-created").exists());
}

on_both_backends!(
    health_answers,
    accounts_are_unique_and_validated,
    only_the_root_key_can_add_a_device,
    hostile_bodies_get_json_errors,
    data_survives_a_restart,
    concurrent_registrations_of_one_user_id_admit_exactly_one,
);
