//! The server hands out keys of its own making: a KeyPackage for a contact that is not
//! theirs, another root key for a verified contact, a phantom device for a contact or for
//! the user's own account, and a device's last-resort KeyPackage again and again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use sotto_api::{Account, ClaimedKeyPackages, KeyPackagePool, UploadKeyPackages};
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

/// Keeps what the server answers `owner`'s claims through `proxy`.
fn keep_claims_of(
    proxy: &sotto_hostile::Proxy,
    owner: &str,
) -> Arc<Mutex<Option<ClaimedKeyPackages>>> {
    let kept: Arc<Mutex<Option<ClaimedKeyPackages>>> = Arc::default();
    let keep = Arc::clone(&kept);
    let path = format!("/v1/accounts/{owner}/key-packages/claim");
    proxy.rule(move |exchange, phase| {
        if phase == Phase::Response && exchange.path == path {
            *keep.lock().unwrap() = serde_json::from_slice(&exchange.response).ok();
        }
    });
    kept
}

#[tokio::test]
async fn a_phantom_device_for_a_contact_is_refused() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let _mallory = person(&server, "mallory").await;
    // The server adds a device of its choosing (one of mallory's) to bob's real one.
    let kept = keep_claims_of(&alice.proxy, "mallory");
    let phantom = Arc::clone(&kept);
    alice.proxy.rule(move |exchange, phase| {
        if phase == Phase::Response && exchange.path == "/v1/accounts/bob/key-packages/claim" {
            if let Some(extra) = phantom.lock().unwrap().clone() {
                let mut claimed: ClaimedKeyPackages =
                    serde_json::from_slice(&exchange.response).unwrap();
                claimed.key_packages.extend(extra.key_packages);
                exchange.response = serde_json::to_vec(&claimed).unwrap();
            }
        }
    });
    alice
        .client
        .send_text("mallory", "hi mallory", SendOptions::default())
        .await
        .unwrap();
    assert!(kept.lock().unwrap().is_some());
    let refused = alice
        .client
        .send_text("bob", "for bob only", SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(refused, ClientError::Protocol(_)), "{refused}");
    assert!(refused.to_string().contains("not theirs"), "{refused}");
    assert!(alice.client.resolve("bob").unwrap().is_none());

    alice.proxy.behave();
    alice
        .client
        .send_text("bob", "for bob only", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut bob).await, ["for bob only"]);
    let id = alice.client.resolve("bob").unwrap().unwrap();
    let members = alice.client.mls_conversation(&id).unwrap().members();
    assert_eq!(members.len(), 2, "{members:?}");
}

#[tokio::test]
async fn a_phantom_device_listed_for_ones_own_account_never_joins() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let _mallory = person(&server, "mallory").await;
    alice
        .client
        .send_text("bob", "before", SendOptions::default())
        .await
        .unwrap();
    let id = alice.client.resolve("bob").unwrap().unwrap();
    assert_eq!(received(&mut bob).await, ["before"]);

    // The server lists mallory's device among alice's, and hands out its KeyPackage when
    // alice's client claims her own devices' KeyPackages.
    let http = mallory_account(&server.url).await;
    let phantom_device = http.devices[0].clone();
    alice.proxy.rule(move |exchange, phase| {
        if phase == Phase::Response && exchange.path == "/v1/accounts/alice" {
            let mut account: Account = serde_json::from_slice(&exchange.response).unwrap();
            account.devices.push(phantom_device.clone());
            exchange.response = serde_json::to_vec(&account).unwrap();
        }
    });
    let kept = keep_claims_of(&bob.proxy, "mallory");
    bob.client
        .send_text(
            "mallory",
            "so she has a KeyPackage claimed",
            SendOptions::default(),
        )
        .await
        .unwrap();
    let phantom_key = kept.lock().unwrap().clone().unwrap();
    alice.proxy.rule(move |exchange, phase| {
        if phase == Phase::Response && exchange.path == "/v1/accounts/alice/key-packages/claim" {
            exchange.response = serde_json::to_vec(&phantom_key).unwrap();
        }
    });
    alice.client.sync().await.unwrap();
    alice
        .client
        .send_text(&id, "after", SendOptions::default())
        .await
        .unwrap();
    // Nobody new joined: alice's client accepts as hers only devices her root key certified.
    let members = alice.client.mls_conversation(&id).unwrap().members();
    assert_eq!(members.len(), 2, "{members:?}");
    assert_eq!(received(&mut bob).await, ["after"]);
    let members = bob.client.mls_conversation(&id).unwrap().members();
    assert!(members
        .iter()
        .all(|m| m.identity.user.as_str() != "mallory"));
}

/// Mallory's account as the server publishes it.
async fn mallory_account(url: &str) -> Account {
    reqwest::get(format!("{url}/v1/accounts/mallory"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_last_resort_key_package_served_again_and_again_is_noticed_and_retired() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    // The server keeps every last-resort KeyPackage bob uploads, and tells bob his pool
    // is untouched.
    let uploaded: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let keep = Arc::clone(&uploaded);
    bob.proxy.rule(move |exchange, phase| {
        if exchange.path != "/v1/key-packages" {
            return;
        }
        if phase == Phase::Request && exchange.method == "POST" {
            let upload: UploadKeyPackages = serde_json::from_slice(&exchange.request).unwrap();
            if let Some(last_resort) = upload.last_resort {
                keep.lock().unwrap().push(last_resort.0);
            }
        }
        if phase == Phase::Response && exchange.method == "GET" && exchange.status == 200 {
            let mut pool: KeyPackagePool = serde_json::from_slice(&exchange.response).unwrap();
            pool.last_resort_used = false;
            pool.low_water = false;
            exchange.response = serde_json::to_vec(&pool).unwrap();
        }
    });
    bob.client.upload_key_packages(true).await.unwrap();
    let first = uploaded.lock().unwrap()[0].clone();
    // Every claim of bob's KeyPackages gets that one, labelled one-time.
    let served = first.clone();
    alice.proxy.rule(move |exchange, phase| {
        if phase == Phase::Response && exchange.path == "/v1/accounts/bob/key-packages/claim" {
            let mut claimed: ClaimedKeyPackages =
                serde_json::from_slice(&exchange.response).unwrap();
            claimed.key_packages[0].key_package = sotto_api::Bytes(served.clone());
            claimed.key_packages[0].last_resort = false;
            exchange.response = serde_json::to_vec(&claimed).unwrap();
        }
    });

    let one = alice
        .client
        .create_group(group("one", &["bob"]))
        .await
        .unwrap();
    let report = bob.client.sync().await.unwrap();
    assert_eq!(report.joined, std::slice::from_ref(&one.id));
    let seen = notices(&bob.client);
    assert!(
        seen.iter().any(|n| n.contains("last-resort KeyPackage")),
        "{seen:?}"
    );
    // Bob's client replaced it at once, without being told by the server.
    let replaced = uploaded.lock().unwrap().clone();
    assert_eq!(
        replaced.len(),
        2,
        "no new last-resort KeyPackage was uploaded"
    );
    assert_ne!(replaced[1], first);

    // The server hands the old one out again: bob's device deleted its private key.
    let two = alice
        .client
        .create_group(group("two", &["bob"]))
        .await
        .unwrap();
    let report = bob.client.sync().await.unwrap();
    assert!(report.joined.is_empty(), "{:?}", report.joined);
    let seen = notices(&bob.client);
    assert!(
        seen.iter()
            .any(|n| n.contains("invitation to a conversation was rejected")),
        "{seen:?}"
    );
    assert!(bob.client.resolve(&two.id).unwrap().is_none());
    // The conversation bob did join works.
    alice
        .client
        .send_text(&one.id, "still here", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut bob).await, ["still here"]);
}
