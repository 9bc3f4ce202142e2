//! The server forks a group: it withholds one commit from a member and pretends to accept
//! that member's own commit for the same epoch, so the member lives on in a branch of its
//! own. Neither branch can then read the other, and both sides are told; nobody is shown
//! a wrong message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_api::MessageKind;
use sotto_client::{Client, NewProfile, SendOptions};
use sotto_core::backup::ScryptParams;
use sotto_hostile::Phase;

#[tokio::test]
async fn a_forked_member_is_told_and_never_shown_a_wrong_message() {
    let server = Server::start().await;
    let (mut alice, mut bob, mut carol, id) = group_of_three(&server).await;
    let _dave = person(&server, "dave").await;

    // Carol's server hides every commit from her, and answers her own commits itself.
    on_inbox(&carol.proxy, |entries| {
        entries.retain(|e| e.kind != MessageKind::Commit)
    });
    carol.proxy.rule(|exchange, phase| {
        if phase == Phase::Request
            && exchange.method == "POST"
            && exchange.path.ends_with("/messages")
        {
            let request: serde_json::Value = serde_json::from_slice(&exchange.request).unwrap();
            if request["welcome"].is_object() {
                exchange.status = 201;
                exchange.response = br#"{"seq":1,"duplicate":false}"#.to_vec();
            }
        }
    });
    // Branch one: alice adds dave. Branch two: carol adds her new laptop.
    alice.client.add_member(&id, "dave").await.unwrap();
    let laptop_dir = server.profile("carol-laptop");
    let _laptop = Client::login(
        NewProfile {
            dir: &laptop_dir,
            passphrase: PASSPHRASE,
            server: &server.url,
            ca_file: None,
            accept_policy: true,
            scrypt: ScryptParams::new(10, 8, 1).unwrap(),
        },
        "carol",
        b"password of carol",
    )
    .await
    .unwrap();
    carol.client.sync().await.unwrap();
    notices(&carol.client);

    // Across the fork, nothing is readable, and both sides hear of it.
    alice
        .client
        .send_text(&id, "from the main branch", SendOptions::default())
        .await
        .unwrap();
    carol
        .client
        .send_text(&id, "from carol's branch", SendOptions::default())
        .await
        .unwrap();
    let at_carol = carol.client.sync().await.unwrap();
    assert!(
        at_carol.messages.is_empty(),
        "carol was shown {:?}",
        at_carol.messages
    );
    let seen = notices(&carol.client);
    assert!(seen.iter().any(|n| n.contains("was rejected")), "{seen:?}");
    let at_bob = bob.client.sync().await.unwrap();
    let texts: Vec<_> = at_bob.messages.iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, ["from the main branch"]);
    let seen = notices(&bob.client);
    assert!(seen.iter().any(|n| n.contains("was rejected")), "{seen:?}");
}
