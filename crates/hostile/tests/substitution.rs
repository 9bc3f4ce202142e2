//! The server hands out keys of its own making: a KeyPackage for a contact that is not
//! theirs, and another root key for a verified contact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use sotto_api::{Account, ClaimedKeyPackages};
use sotto_client::{ClientError, SendOptions};
use sotto_hostile::Phase;

#[tokio::test]
async fn a_key_package_substituted_for_a_contacts_is_refused() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let _mallory = person(&server, "mallory").await;
    // The server keeps a KeyPackage of mallory's device, and serves it as bob's.
    let kept: Arc<Mutex<Option<ClaimedKeyPackages>>> = Arc::default();
    let keep = Arc::clone(&kept);
    alice.proxy.rule(move |exchange, phase| {
        if phase != Phase::Response || !exchange.path.ends_with("/key-packages/claim") {
            return;
        }
        if exchange.path.contains("/mallory/") {
            *keep.lock().unwrap() = serde_json::from_slice(&exchange.response).ok();
        } else if exchange.path.contains("/bob/") {
            if let Some(mut fake) = keep.lock().unwrap().clone() {
                let real: ClaimedKeyPackages = serde_json::from_slice(&exchange.response).unwrap();
                fake.key_packages[0].device_id = real.key_packages[0].device_id.clone();
                exchange.response = serde_json::to_vec(&fake).unwrap();
            }
        }
    });
    alice
        .client
        .send_text("mallory", "hi mallory", SendOptions::default())
        .await
        .unwrap();
    let refused = alice
        .client
        .send_text("bob", "for bob", SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(refused, ClientError::Protocol(_)), "{refused}");
    assert!(refused.to_string().contains("not theirs"), "{refused}");
    assert!(
        alice.client.resolve("bob").unwrap().is_none(),
        "a conversation was made"
    );
    // Once the server behaves, the real bob is reached.
    alice.proxy.behave();
    alice
        .client
        .send_text("bob", "for bob", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(bob.client.sync().await.unwrap().messages[0].text, "for bob");
}

#[tokio::test]
async fn another_root_key_for_a_verified_contact_blocks_sending() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let _bob = person(&server, "bob").await;
    let mallory = person(&server, "mallory").await;
    let safety = alice.client.safety("bob").await.unwrap();
    alice
        .client
        .verify("bob", &safety.number.to_string())
        .await
        .unwrap();
    alice
        .client
        .send_text("bob", "verified", SendOptions::default())
        .await
        .unwrap();
    let fake_key = mallory.client.identity().root_key.as_bytes().to_vec();
    alice.proxy.rule(move |exchange, phase| {
        if phase == Phase::Response && exchange.path == "/v1/accounts/bob" {
            let mut account: Account = serde_json::from_slice(&exchange.response).unwrap();
            account.root_public_key = sotto_api::Bytes(fake_key.clone());
            exchange.response = serde_json::to_vec(&account).unwrap();
        }
    });
    let blocked = alice
        .client
        .send_text("bob", "still you?", SendOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(blocked, ClientError::VerifiedKeyChanged { .. }),
        "{blocked}"
    );
    let now = alice.client.safety("bob").await.unwrap();
    assert!(now.changed && !now.verified);
    assert_ne!(now.number.digits(), safety.number.digits());
}
