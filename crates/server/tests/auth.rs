//! Device authentication over real HTTP: a device signs a server challenge with its MLS
//! key and receives a session token, which the server keeps only hashed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use reqwest::StatusCode;
use sotto_api::{Challenge, ErrorCode, Me, Session};
use sotto_core::device::NewDevice;

async fn a_device_logs_in_by_signing_a_challenge(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, device) = registered(&server, "alice").await;
    let id = device.certificate.verify().unwrap().device_id.to_hex();

    let challenge: Challenge = ask(&server, "alice", &id).await.json().await.unwrap();
    let response = answer(
        &server,
        "alice",
        &id,
        &challenge.challenge.0,
        sign(&device, &challenge.challenge.0),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let session: Session = response.json().await.unwrap();
    assert!(!format!("{session:?}").contains(&session.token));

    let who: Me = server.me(&session.token).await.json().await.unwrap();
    assert_eq!(
        (who.username.as_str(), who.device_id.as_str()),
        ("alice", id.as_str())
    );

    // The same answer again is refused: a challenge is good for one session.
    let again = answer(
        &server,
        "alice",
        &id,
        &challenge.challenge.0,
        sign(&device, &challenge.challenge.0),
    )
    .await;
    error(again, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
}

async fn wrong_answers_and_tokens_are_refused(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (root, device) = registered(&server, "alice").await;
    let id = device.certificate.verify().unwrap().device_id.to_hex();

    // Signed by another device of the same user (not the one named).
    let other = NewDevice::generate(&root, 1).unwrap();
    let challenge: Challenge = ask(&server, "alice", &id).await.json().await.unwrap();
    let response = answer(
        &server,
        "alice",
        &id,
        &challenge.challenge.0,
        sign(&other, &challenge.challenge.0),
    )
    .await;
    error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    // A challenge the server never issued.
    let made_up = [9u8; 32];
    let response = answer(&server, "alice", &id, &made_up, sign(&device, &made_up)).await;
    error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    // Unknown device, malformed ids.
    error(
        ask(&server, "alice", &"ab".repeat(16)).await,
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
    )
    .await;
    error(
        ask(&server, "alice", "xyz").await,
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
    )
    .await;
    // No token, a bad token, a made-up token.
    let response = server.http.get(server.url("/v1/me")).send().await.unwrap();
    error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    error(
        server.me("!!!").await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
    error(
        server
            .me("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
}

async fn the_database_holds_no_usable_token(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, device) = registered(&server, "alice").await;
    let id = device.certificate.verify().unwrap().device_id.to_hex();
    let challenge: Challenge = ask(&server, "alice", &id).await.json().await.unwrap();
    let session: Session = answer(
        &server,
        "alice",
        &id,
        &challenge.challenge.0,
        sign(&device, &challenge.challenge.0),
    )
    .await
    .json()
    .await
    .unwrap();
    let stored = server.stop().await;
    use base64::Engine as _;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&session.token)
        .unwrap();
    // Nothing the server stored (every file, every row) holds the raw token.
    assert!(!stored.contains(&token).await);
    assert!(!stored.contains(session.token.as_bytes()).await);
    // The session still works after a restart (it is stored, hashed).
    let server = TestServer::start_on(stored).await;
    assert_eq!(server.me(&session.token).await.status(), StatusCode::OK);
}

on_both_backends!(
    a_device_logs_in_by_signing_a_challenge,
    wrong_answers_and_tokens_are_refused,
    the_database_holds_no_usable_token,
);
