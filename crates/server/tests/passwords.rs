//! Password login over real HTTP with real OPAQUE on the client side: a device registers
//! a password and a sealed root-key backup; a new device that knows only the username and
//! the password gets the backup back, and nobody else does. Plus the lockout, at the store
//! with an injected clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use reqwest::StatusCode;
use sotto_api::{ErrorCode, PasswordLoginFinished, PasswordLoginStarted};
use sotto_core::backup::SealedBackup;
use sotto_core::identity::{UserId, UserRootKey};
use sotto_core::password::PasswordError;

#[path = "passwords/client.rs"]
mod client;
#[path = "passwords/lockout.rs"]
mod lockout;
use client::{post, *};

const PASSWORD: &[u8] = b"correct horse battery staple";

async fn a_new_device_gets_the_backup_with_the_password(db: Db) {
    capture_logs();
    let server = TestServer::start(db).await;
    let (root, token) = owner(&server, "alice").await;
    let backup = seal(&root, PASSWORD);
    let upload = register(&server, &token, "alice", PASSWORD, &backup).await;

    // A new device: only the username and the password.
    let (client, response) = start_login(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let started: PasswordLoginStarted = response.json().await.unwrap();
    let (finalization, _, _) = client.finish(PASSWORD, &started.response.0).unwrap();
    let response = finish(&server, &started.login_id.0, &finalization).await;
    assert_eq!(response.status(), StatusCode::OK);
    let released: PasswordLoginFinished = response.json().await.unwrap();
    assert_eq!(released.sealed_backup.0, backup);

    let sealed = SealedBackup::from_bytes(&released.sealed_backup.0).unwrap();
    let user = UserId::new("alice").unwrap();
    let fingerprint = root.public_key().fingerprint();
    let opened = UserRootKey::open_backup(user, &fingerprint, &sealed, PASSWORD).unwrap();
    assert_eq!(opened.public_key().as_bytes(), root.public_key().as_bytes());

    // The same finish again is refused: a login releases the backup once.
    let again = finish(&server, &started.login_id.0, &finalization).await;
    error(again, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;

    let kinds = server.stored.text_rows("SELECT kind FROM events").await;
    assert!(kinds.contains(&vec!["password_login".to_owned()]));
    assert!(!server.stored.contains(PASSWORD).await);
    let logs = logs();
    assert!(logs.contains("sealed backup released"), "logs not captured");
    assert!(!logs.contains(std::str::from_utf8(PASSWORD).unwrap()));
    for secret in [&backup, &upload, &started.login_id.0, &finalization] {
        for needle in log_needles(secret) {
            assert!(!logs.contains(&needle), "logged: {needle}");
        }
    }
}

async fn a_wrong_password_or_a_forged_finalization_gets_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let (root, token) = owner(&server, "alice").await;
    register(&server, &token, "alice", PASSWORD, &seal(&root, PASSWORD)).await;

    // A wrong password fails at the client, which has nothing to send.
    let (client, response) = start_login(&server, "alice", b"hunter2").await;
    let started: PasswordLoginStarted = response.json().await.unwrap();
    let refused = client.finish(b"hunter2", &started.response.0);
    assert_eq!(refused.unwrap_err(), PasswordError::AuthenticationFailed);
    // A made-up finalization for that login does not get the backup either.
    let forged = finish(&server, &started.login_id.0, &[7; 64]).await;
    let message = error(forged, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    assert_eq!(message, "the password login failed");

    // A forged finalization consumes the login: the real one comes too late.
    let (client, response) = start_login(&server, "alice", PASSWORD).await;
    let started: PasswordLoginStarted = response.json().await.unwrap();
    let (real, _, _) = client.finish(PASSWORD, &started.response.0).unwrap();
    let forged = finish(&server, &started.login_id.0, &[0; 64]).await;
    error(forged, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    let late = finish(&server, &started.login_id.0, &real).await;
    error(late, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;

    // Garbage of the wrong length is a bad request, and consumes the login as well.
    let (client, response) = start_login(&server, "alice", PASSWORD).await;
    let started: PasswordLoginStarted = response.json().await.unwrap();
    let (real, _, _) = client.finish(PASSWORD, &started.response.0).unwrap();
    let short = finish(&server, &started.login_id.0, &real[..63]).await;
    error(short, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    let late = finish(&server, &started.login_id.0, &real).await;
    error(late, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;

    let kinds = server.stored.text_rows("SELECT kind FROM events").await;
    assert!(!kinds.contains(&vec!["password_login".to_owned()]));
}

async fn unknown_users_look_like_known_ones(db: Db) {
    let server = TestServer::start(db).await;
    let (root, token) = owner(&server, "alice").await;
    register(&server, &token, "alice", PASSWORD, &seal(&root, PASSWORD)).await;
    registered(&server, "bob").await; // an account without a password

    let mut lengths = Vec::new();
    for user in ["alice", "bob", "nobody"] {
        let (client, response) = start_login(&server, user, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "{user}");
        let text = response.text().await.unwrap();
        lengths.push(text.len());
        let started: PasswordLoginStarted = serde_json::from_str(&text).unwrap();
        let outcome = client.finish(PASSWORD, &started.response.0);
        assert_eq!(outcome.is_ok(), user == "alice", "{user}");
        if user != "alice" {
            assert_eq!(outcome.unwrap_err(), PasswordError::AuthenticationFailed);
            let forged = finish(&server, &started.login_id.0, &[1; 64]).await;
            error(forged, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
        }
    }
    assert!(lengths.iter().all(|&n| n == lengths[0]), "{lengths:?}");
}

async fn expired_unknown_and_replayed_logins_are_refused(db: Db) {
    let server = TestServer::start(db).await;
    let (root, token) = owner(&server, "alice").await;
    register(&server, &token, "alice", PASSWORD, &seal(&root, PASSWORD)).await;

    let (client, response) = start_login(&server, "alice", PASSWORD).await;
    let started: PasswordLoginStarted = response.json().await.unwrap();
    let (finalization, _, _) = client.finish(PASSWORD, &started.response.0).unwrap();
    server
        .stored
        .execute("UPDATE login_states SET expires_at = 1")
        .await;
    let expired = finish(&server, &started.login_id.0, &finalization).await;
    let message = error(expired, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    assert_eq!(message, "unknown, used or expired login");

    let unknown = finish(&server, &[9; 32], &finalization).await;
    error(unknown, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    let malformed = finish(&server, &[9; 31], &finalization).await;
    error(malformed, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;

    // A login still works, once.
    assert!(password_login(&server, "alice", PASSWORD).await.is_ok());
}

async fn only_the_owner_registers_a_password(db: Db) {
    let server = TestServer::start(db).await;
    let (root, _) = owner(&server, "alice").await;
    let (_, bob) = owner(&server, "bob").await;
    let backup = seal(&root, PASSWORD);
    let start = serde_json::json!({"username": "alice", "request": STANDARD.encode([0; 32])});
    let finish = serde_json::json!({
        "username": "alice",
        "upload": STANDARD.encode([0; 192]),
        "sealed_backup": STANDARD.encode(&backup),
    });
    for (path, body) in [
        ("/v1/password/register/start", &start),
        ("/v1/password/register/finish", &finish),
    ] {
        let anonymous = post(&server, path, None, body).await;
        refused(anonymous, StatusCode::UNAUTHORIZED).await;
        let by_bob = post(&server, path, Some(&bob), body).await;
        refused(by_bob, StatusCode::FORBIDDEN).await;
    }
    refused(
        put_backup(&server, None, &backup).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // Bob's session replaces Bob's backup only, and Bob has no password yet.
    refused(
        put_backup(&server, Some(&bob), &backup).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn malformed_requests_are_4xx(db: Db) {
    let server = TestServer::start(db).await;
    let (root, token) = owner(&server, "alice").await;
    let backup = seal(&root, PASSWORD);
    let path = "/v1/password/register/finish";
    let finish = |upload: serde_json::Value, sealed: &[u8]| {
        let sealed = STANDARD.encode(sealed);
        serde_json::json!({"username": "alice", "upload": upload, "sealed_backup": sealed})
    };
    for body in [
        finish("%%".into(), &backup),
        finish(STANDARD.encode([0; 191]).into(), &backup),
        finish(STANDARD.encode([0; 192]).into(), b"SOTTOBK"),
        serde_json::json!({"username": "alice"}),
    ] {
        refused(
            post(&server, path, Some(&token), &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let path = "/v1/password/register/start";
    let start = serde_json::json!({"username": "alice", "request": "AA==", "extra": 1});
    refused(
        post(&server, path, Some(&token), &start).await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    register(&server, &token, "alice", PASSWORD, &backup).await;
    let too_big = [&backup[..], &[0; 4096]].concat();
    for sealed in [&b"NOTABACKUP".repeat(10)[..], &backup[..60], &too_big] {
        let response = put_backup(&server, Some(&token), sealed).await;
        refused(response, StatusCode::BAD_REQUEST).await;
    }
    let huge = put_backup(&server, Some(&token), &[0; 9000]).await;
    refused(huge, StatusCode::PAYLOAD_TOO_LARGE).await;

    let path = "/v1/password/login/start";
    for (user, request) in [("Alice!", 96), ("alice", 95), ("alice", 0)] {
        let body =
            serde_json::json!({"username": user, "request": STANDARD.encode(vec![0; request])});
        refused(
            post(&server, path, None, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    // A request of the right length that is no group element.
    let body = serde_json::json!({"username": "alice", "request": STANDARD.encode([0xff; 96])});
    refused(
        post(&server, path, None, &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let body = serde_json::json!({"login_id": "AA==", "finalization": "AA==", "x": 1});
    let response = post(&server, "/v1/password/login/finish", None, &body).await;
    refused(response, StatusCode::BAD_REQUEST).await;
    // The stored backup is the one registered: nothing above replaced it.
    assert_eq!(
        password_login(&server, "alice", PASSWORD).await.unwrap(),
        backup
    );
}

async fn a_new_password_or_backup_replaces_the_old(db: Db) {
    let server = TestServer::start(db).await;
    let (root, token) = owner(&server, "alice").await;
    register(&server, &token, "alice", PASSWORD, &seal(&root, PASSWORD)).await;
    // A login started before the password changes cannot finish after.
    let (client, response) = start_login(&server, "alice", PASSWORD).await;
    let started: PasswordLoginStarted = response.json().await.unwrap();
    let (finalization, _, _) = client.finish(PASSWORD, &started.response.0).unwrap();

    let new_backup = seal(&root, b"new password");
    register(&server, &token, "alice", b"new password", &new_backup).await;
    let stale = finish(&server, &started.login_id.0, &finalization).await;
    refused(stale, StatusCode::UNAUTHORIZED).await;
    let old = password_login(&server, "alice", PASSWORD).await;
    assert_eq!(old.unwrap_err(), PasswordError::AuthenticationFailed);
    let released = password_login(&server, "alice", b"new password").await;
    assert_eq!(released.unwrap(), new_backup);

    let resealed = seal(&root, b"new password");
    let response = put_backup(&server, Some(&token), &resealed).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let released = password_login(&server, "alice", b"new password").await;
    assert_eq!(released.unwrap(), resealed);
}

async fn ten_starts_lock_a_username_known_or_not(db: Db) {
    let server = std::sync::Arc::new(TestServer::start(db).await);
    let (root, token) = owner(&server, "alice").await;
    register(&server, &token, "alice", PASSWORD, &seal(&root, PASSWORD)).await;

    let mut messages = Vec::new();
    for user in ["alice", "nobody"] {
        let tasks: Vec<_> = (0..15)
            .map(|_| {
                let server = std::sync::Arc::clone(&server);
                tokio::spawn(async move { start_login(&server, user, PASSWORD).await.1 })
            })
            .collect();
        let (mut ok, mut locked) = (0, Vec::new());
        for task in tasks {
            let response = task.await.unwrap();
            match response.status() {
                StatusCode::OK => ok += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(response.headers().contains_key("retry-after"));
                    locked.push(
                        error(
                            response,
                            StatusCode::TOO_MANY_REQUESTS,
                            ErrorCode::RateLimited,
                        )
                        .await,
                    );
                }
                other => panic!("{user}: {other}"),
            }
        }
        assert_eq!((ok, locked.len()), (10, 5), "{user}");
        // Even the right password waits out the lock.
        let (_, response) = start_login(&server, user, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        messages.push(locked[0].replace(|c: char| c.is_ascii_digit(), ""));
    }
    assert_eq!(messages[0], messages[1]);
    assert!(messages[0].contains("locked"), "{}", messages[0]);
}

on_both_backends!(
    a_new_device_gets_the_backup_with_the_password,
    a_wrong_password_or_a_forged_finalization_gets_nothing,
    unknown_users_look_like_known_ones,
    expired_unknown_and_replayed_logins_are_refused,
    only_the_owner_registers_a_password,
    malformed_requests_are_4xx,
    a_new_password_or_backup_replaces_the_old,
    ten_starts_lock_a_username_known_or_not,
);
