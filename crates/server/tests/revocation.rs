//! Revoking a device over real HTTP: only the user (another device's session, or the root
//! key's signature) can do it, and it ends the device's sessions and bars its id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use reqwest::StatusCode;
use sotto_api::{Bytes, ErrorCode, RevokeDevice};
use sotto_core::device::NewDevice;

async fn revoke(
    server: &TestServer,
    user: &str,
    device: &str,
    token: Option<&str>,
    body: &RevokeDevice,
) -> reqwest::Response {
    let url = server.url(&format!("/v1/accounts/{user}/devices/{device}/revoke"));
    let mut request = server.http.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn me(server: &TestServer, token: &str) -> StatusCode {
    server.me(token).await.status()
}

async fn a_users_other_device_revokes_a_lost_one(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (root, phone) = registered(&server, "alice").await;
    let laptop = NewDevice::generate(&root, 2).unwrap();
    server
        .add_device("alice", laptop.certificate.to_bytes().unwrap())
        .await;
    let (phone_token, laptop_token) = (
        login(&server, "alice", &phone).await,
        login(&server, "alice", &laptop).await,
    );
    let phone_id = phone.certificate.verify().unwrap().device_id.to_hex();
    let (_, mallory) = registered(&server, "mallory").await;
    let mallory_token = login(&server, "mallory", &mallory).await;

    // Nobody else may revoke it: no session, another user's session.
    let none = RevokeDevice::default();
    error(
        revoke(&server, "alice", &phone_id, None, &none).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
    error(
        revoke(&server, "alice", &phone_id, Some(&mallory_token), &none).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;

    // The phone has a KeyPackage on file before it is revoked.
    let kp = mls_device(&phone).key_package().unwrap();
    let response = server
        .upload_key_packages(&phone_token, vec![kp], None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(
        revoke(&server, "alice", &phone_id, Some(&laptop_token), &none)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    // Its KeyPackages went with it (checked in the database itself).
    let left = server
        .stored
        .count("SELECT COUNT(*) FROM key_packages WHERE username = 'alice'")
        .await;
    assert_eq!(left, 0);
    // The revoked device's session is over, it is no longer listed, and its id is barred.
    assert_eq!(me(&server, &phone_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&server, &laptop_token).await, StatusCode::OK);
    let account = server.account("alice").await;
    assert_eq!(account.devices.len(), 1);
    let again = server
        .add_device("alice", phone.certificate.to_bytes().unwrap())
        .await;
    error(again, StatusCode::CONFLICT, ErrorCode::Conflict).await;
    error(
        revoke(&server, "alice", &phone_id, Some(&laptop_token), &none).await,
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
    )
    .await;
}

async fn the_root_key_revokes_without_any_device(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (root, phone) = registered(&server, "alice").await;
    let token = login(&server, "alice", &phone).await;
    let id = phone.certificate.verify().unwrap().device_id;

    // A signature by another root key is refused.
    let impostor = common::root("alice");
    let forged = RevokeDevice {
        root_signature: Some(Bytes(impostor.sign_revocation(&id).unwrap())),
    };
    error(
        revoke(&server, "alice", &id.to_hex(), None, &forged).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
    assert_eq!(me(&server, &token).await, StatusCode::OK);

    let signed = RevokeDevice {
        root_signature: Some(Bytes(root.sign_revocation(&id).unwrap())),
    };
    assert_eq!(
        revoke(&server, "alice", &id.to_hex(), None, &signed)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(me(&server, &token).await, StatusCode::UNAUTHORIZED);
}

on_both_backends!(
    a_users_other_device_revokes_a_lost_one,
    the_root_key_revokes_without_any_device,
);
