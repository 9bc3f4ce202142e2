//! The ephemerality policy: acknowledgment before sending, TTL expiry and burn-on-read,
//! checked in the profile's database file itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_client::{Client, ClientError, SendOptions};

#[tokio::test]
async fn sending_is_refused_until_the_policy_is_acknowledged() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let _bob = person(&server, &profiles, "bob").await;
    let dir = profiles.dir("alice");
    let mut alice = Client::register(
        new_profile(&dir, &server.url, false),
        "alice",
        &password("alice"),
    )
    .await
    .unwrap();
    let err = alice
        .send_text("bob", "too early", SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::PolicyNotAccepted), "{err}");
    assert!(alice.conversations().unwrap().is_empty());
    alice.accept_policy().unwrap();
    alice
        .send_text("bob", "now", SendOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_messages_leave_the_store_even_if_the_client_was_not_running() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    let minute = SendOptions {
        ttl_seconds: Some(60),
        burn_on_read: false,
    };
    let day = SendOptions {
        ttl_seconds: Some(86_400),
        burn_on_read: false,
    };
    alice
        .send_text("bob", "short-lived secret", minute)
        .await
        .unwrap();
    alice
        .send_text("bob", "long-lived note", day)
        .await
        .unwrap();
    let got = bob.sync().await.unwrap();
    assert_eq!(got.messages.len(), 2);
    let first = &got.messages[0];
    assert!(first.expires_at <= first.sent_at + 60_000);
    let dir = profiles.dir("bob");
    assert_eq!(rows_of_kind(&dir, "message"), 2);
    drop(bob);

    // Two minutes later, the profile is opened again: the expired message is gone from
    // the database before anything is shown.
    let mut bob = Client::open(&dir, PASSPHRASE, None, None).unwrap();
    bob.advance_clock(120_000);
    assert_eq!(bob.purge_expired().unwrap(), 1);
    assert_eq!(rows_of_kind(&dir, "message"), 1);
    let left = bob.messages("alice").unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].text, "long-lived note");
    // The sender's copy expires the same way.
    alice.advance_clock(120_000);
    assert_eq!(alice.messages("bob").unwrap().len(), 1);
    assert_eq!(rows_of_kind(&profiles.dir("alice"), "message"), 1);
}

#[tokio::test]
async fn burn_on_read_messages_are_deleted_once_read() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    let burn = SendOptions {
        ttl_seconds: Some(3600),
        burn_on_read: true,
    };
    alice.send_text("bob", "read me once", burn).await.unwrap();
    alice
        .send_text("bob", "keep me", SendOptions::default())
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let dir = profiles.dir("bob");
    assert_eq!(rows_of_kind(&dir, "message"), 2);
    let read = bob.mark_read("alice").await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(rows_of_kind(&dir, "message"), 1);
    let left = bob.messages("alice").unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].text, "keep me");
    // The sender's copy burns when the read receipt arrives.
    alice.sync().await.unwrap();
    let at_alice = alice.messages("bob").unwrap();
    assert_eq!(at_alice.len(), 1);
    assert_eq!(at_alice[0].text, "keep me");
    assert!(!dir_contains(&dir, b"read me once"));
}
