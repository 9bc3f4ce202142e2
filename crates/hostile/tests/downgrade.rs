//! The server tries to move a conversation off Sotto's only ciphersuite (0x0005: P-521,
//! AES-256-GCM, SHA-512) or off MLS 1.0: it rewrites the version and ciphersuite fields
//! of the KeyPackages it hands out, of a Welcome and of a message. Every such message is
//! refused with a clear error or notice, and nothing changes in the client's state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_api::{ClaimedKeyPackages, MessageKind};
use sotto_client::{ClientError, SendOptions};
use sotto_hostile::Phase;

/// Ciphersuite 0x0001: X25519, AES-128-GCM, SHA-256, Ed25519.
const SUITE_1: [u8; 2] = [0x00, 0x01];
/// Offset of the outer `MLSMessage.version`.
const VERSION_AT: usize = 0;
/// Offset of `KeyPackage.cipher_suite` and `Welcome.cipher_suite` in an `MLSMessage`
/// (after the outer version, the wire format and, for a KeyPackage, its own version).
const KEY_PACKAGE_SUITE_AT: usize = 6;
const WELCOME_SUITE_AT: usize = 4;

/// Rewrites two bytes of every KeyPackage the server hands `proxy`'s client for `user`.
fn rewrite_key_packages(proxy: &sotto_hostile::Proxy, user: &str, at: usize, value: [u8; 2]) {
    let path = format!("/v1/accounts/{user}/key-packages/claim");
    proxy.rule(move |exchange, phase| {
        if phase == Phase::Response && exchange.path == path && exchange.status == 200 {
            let mut claimed: ClaimedKeyPackages =
                serde_json::from_slice(&exchange.response).unwrap();
            for kp in &mut claimed.key_packages {
                kp.key_package.0[at..at + 2].copy_from_slice(&value);
            }
            exchange.response = serde_json::to_vec(&claimed).unwrap();
        }
    });
}

#[tokio::test]
async fn key_packages_of_another_suite_or_version_are_refused() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    // The suite is checked before anything else (a signature check would catch the
    // rewrite too, but says nothing of a downgrade).
    let downgrades = [
        (
            KEY_PACKAGE_SUITE_AT,
            SUITE_1,
            "ciphersuite 0x0001",
            "unsupported MLS ciphersuite",
        ),
        (VERSION_AT, [0x00, 0x02], "protocol version 2", "not theirs"),
        (4, [0x00, 0x02], "KeyPackage version 2", "not theirs"),
    ];
    for (at, value, what, said) in downgrades {
        rewrite_key_packages(&alice.proxy, "bob", at, value);
        let refused = alice
            .client
            .send_text("bob", "hello", SendOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ClientError::Protocol(_)),
            "{what}: {refused}"
        );
        assert!(
            refused.to_string().contains("not theirs"),
            "{what}: {refused}"
        );
        assert!(refused.to_string().contains(said), "{what}: {refused}");
        assert!(alice.client.resolve("bob").unwrap().is_none(), "{what}");
        alice.proxy.behave();
    }
    // Unaltered, bob's KeyPackage is of suite 0x0005 and the conversation starts.
    alice
        .client
        .send_text("bob", "hello", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut bob).await, ["hello"]);
}

#[tokio::test]
async fn a_welcome_of_another_suite_is_refused() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    on_inbox(&bob.proxy, |entries| {
        for entry in entries.iter_mut() {
            if entry.kind == MessageKind::Welcome {
                entry.payload.0[WELCOME_SUITE_AT..WELCOME_SUITE_AT + 2].copy_from_slice(&SUITE_1);
            }
        }
    });
    let group = alice
        .client
        .create_group(group("ops", &["bob"]))
        .await
        .unwrap();
    let report = bob.client.sync().await.unwrap();
    assert!(report.joined.is_empty());
    let seen = notices(&bob.client);
    assert!(
        seen.iter()
            .any(|n| n.contains("invitation to a conversation was rejected")),
        "{seen:?}"
    );
    assert!(bob.client.resolve(&group.id).unwrap().is_none());
    assert!(bob.client.conversations().unwrap().is_empty());
}

#[tokio::test]
async fn a_message_of_another_protocol_version_is_refused() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    alice
        .client
        .send_text("bob", "first", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut bob).await, ["first"]);
    let mut left = 1;
    on_inbox(&bob.proxy, move |entries| {
        for entry in entries.iter_mut() {
            if entry.kind == MessageKind::Application && left > 0 {
                left -= 1;
                entry.payload.0[VERSION_AT..VERSION_AT + 2].copy_from_slice(&[0x00, 0x02]);
            }
        }
    });
    for text in ["rewritten", "intact"] {
        alice
            .client
            .send_text("bob", text, SendOptions::default())
            .await
            .unwrap();
    }
    // The rewritten message is refused and said so; the next one is read.
    assert_eq!(received(&mut bob).await, ["intact"]);
    let seen = notices(&bob.client);
    assert!(seen.iter().any(|n| n.contains("was rejected")), "{seen:?}");
    assert_eq!(seen.len(), 1, "{seen:?}");
    // Later messages are untouched and read as usual.
    alice
        .client
        .send_text("bob", "later", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut bob).await, ["later"]);
}
