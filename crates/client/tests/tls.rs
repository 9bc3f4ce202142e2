//! The client over HTTPS and a TLS WebSocket, trusting a deployment's own certificate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use sotto_client::{Client, ClientError, NewProfile, SendOptions};

fn with_ca<'a>(
    dir: &'a std::path::Path,
    server: &'a str,
    ca: &'a std::path::Path,
) -> NewProfile<'a> {
    NewProfile {
        ca_file: Some(ca),
        ..new_profile(dir, server, true)
    }
}

#[tokio::test]
async fn two_users_talk_over_https_and_a_tls_websocket() {
    let (server, ca) = Server::start_tls().await;
    assert!(server.url.starts_with("https://"));
    let profiles = Profiles::new();

    // An unknown certificate is refused, and no profile is left behind.
    let dir = profiles.dir("alice");
    let refused = Client::register(new_profile(&dir, &server.url, true), "alice", b"pw")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ClientError::Unreachable { .. }),
        "{refused}"
    );
    assert!(!dir.join("profile.key").exists());

    let mut alice = Client::register(with_ca(&dir, &server.url, &ca), "alice", &password("alice"))
        .await
        .unwrap();
    let bob_dir = profiles.dir("bob");
    let mut bob = Client::register(with_ca(&bob_dir, &server.url, &ca), "bob", &password("bob"))
        .await
        .unwrap();
    let (mut live, _) = bob.connect_live().await.unwrap();
    alice
        .send_text("bob", "over tls", SendOptions::default())
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        let report = bob
            .next_live(&mut live, Duration::from_secs(30))
            .await
            .unwrap()
            .expect("nothing arrived over the WebSocket in 30 s");
        got.extend(report.messages.into_iter().map(|m| m.text.clone()));
    }
    assert_eq!(got, ["over tls"]);
    drop(bob);
    // The CA file is remembered by the profile.
    let mut bob = Client::open(&bob_dir, PASSPHRASE, None, None).unwrap();
    bob.sync().await.unwrap();
}
