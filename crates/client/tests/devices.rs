//! Logging in on a new device, the device list, revocation, and what a later device can
//! read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_client::{Client, ClientError, GroupSpec, SendOptions};

#[tokio::test]
async fn a_device_added_later_joins_at_the_next_sync_but_cannot_read_earlier_messages() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    alice
        .send_text("bob", "before the laptop", SendOptions::default())
        .await
        .unwrap();
    bob.sync().await.unwrap();

    let laptop_dir = profiles.dir("bob-laptop");
    let mut laptop = new_device(&server, &laptop_dir, "bob").await;
    assert_ne!(laptop.device_id(), bob.device_id());
    let devices = bob.devices().await.unwrap();
    assert_eq!(devices.len(), 2);
    assert!(devices
        .iter()
        .any(|d| d.device_id == laptop.device_id() && !d.this_device));

    // Bob's phone adds the laptop to his conversations at its next sync.
    bob.sync().await.unwrap();
    let joined = laptop.sync().await.unwrap();
    assert_eq!(joined.joined.len(), 1);
    let id = joined.joined[0].clone();
    assert!(
        laptop.messages(&id).unwrap().is_empty(),
        "the laptop read an earlier message"
    );
    assert!(!dir_contains(&laptop_dir, b"before the laptop"));

    alice.sync().await.unwrap();
    alice
        .send_text("bob", "after the laptop", SendOptions::default())
        .await
        .unwrap();
    let at_laptop = laptop.sync().await.unwrap();
    let texts: Vec<_> = at_laptop.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["after the laptop"]);
    assert_eq!(
        bob.sync().await.unwrap().messages[0].text,
        "after the laptop"
    );

    // Revoking the laptop removes it from the conversation.
    let laptop_id = laptop.device_id().to_owned();
    bob.revoke_device(&laptop_id).await.unwrap();
    assert_eq!(bob.devices().await.unwrap().len(), 1);
    // Alice sends before and after learning of the removal: the revoked device gets
    // neither message.
    alice
        .send_text("bob", "laptop revoked", SendOptions::default())
        .await
        .unwrap();
    alice.sync().await.unwrap();
    alice
        .send_text("bob", "laptop gone", SendOptions::default())
        .await
        .unwrap();
    let report = bob.sync().await.unwrap();
    assert!(report.notices.is_empty(), "{:?}", report.notices);
    let texts: Vec<_> = report.messages.iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, ["laptop revoked", "laptop gone"]);
    assert!(
        laptop.sync().await.is_err(),
        "a revoked device can still sync"
    );
}

#[tokio::test]
async fn wrong_password_and_wrong_passphrase_are_clear_and_change_nothing() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let alice = person(&server, &profiles, "alice").await;
    let dir = profiles.dir("alice");
    drop(alice);
    let before = std::fs::read(dir.join("profile.db")).unwrap();
    let err = Client::open(&dir, b"not the passphrase", None, None).unwrap_err();
    assert!(matches!(err, ClientError::WrongPassphrase), "{err}");
    assert_eq!(std::fs::read(dir.join("profile.db")).unwrap(), before);

    let other = profiles.dir("alice-2");
    let err = Client::login(new_profile(&other, &server.url, true), "alice", b"guess")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::WrongPassword), "{err}");
    assert!(!other.join("profile.key").exists());
    let err = Client::login(new_profile(&other, &server.url, true), "nobody", b"guess")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::UnknownUser(_)), "{err}");
    let err = Client::register(
        new_profile(&other, "http://127.0.0.1:9", true),
        "zed",
        b"pw",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    assert!(!other.join("profile.key").exists());
}

#[tokio::test]
async fn the_owner_is_warned_when_the_last_resort_key_package_was_used() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    // Registration uploaded a batch of one-time KeyPackages; one conversation more than
    // that makes the server hand out bob's last-resort KeyPackage.
    for i in 0..=sotto_client::account::KEY_PACKAGE_BATCH {
        alice
            .create_group(GroupSpec {
                name: format!("room {i}"),
                members: vec!["bob".into()],
                max_ttl_seconds: 3600,
                burn_on_read_required: false,
            })
            .await
            .unwrap();
    }
    let report = bob.sync().await.unwrap();
    assert_eq!(
        report.joined.len(),
        sotto_client::account::KEY_PACKAGE_BATCH + 1
    );
    let notices = bob.take_new_notices().unwrap();
    let warned = notices
        .iter()
        .any(|n| n.text.contains("last-resort KeyPackage"));
    assert!(warned, "bob was not warned: {notices:?}");
    // The pool was refilled: a new conversation gets a one-time KeyPackage again, and no
    // further warning follows.
    alice
        .send_text("bob", "fresh keys", SendOptions::default())
        .await
        .unwrap();
    bob.sync().await.unwrap();
    assert!(bob.take_new_notices().unwrap().is_empty());
}
