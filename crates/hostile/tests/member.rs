//! A malicious member: a modified client that sends what an honest one never would — a
//! message claiming another sender, a message living longer than the policy allows —
//! straight through MLS, past its own client's checks. Honest members refuse it and say
//! so; they are never shown it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_client::SendOptions;
use sotto_core::content::{Body, Content};

/// Encrypts `content` in conversation `id` of `member` without any Sotto check, and posts it.
async fn forge(member: &mut Person, id: &str, content: &Content) {
    let bytes = content.to_bytes().unwrap();
    let conversation = member.client.mls_conversation(id).unwrap();
    let message = conversation
        .mls_group_mut()
        .encrypt_application_message(&bytes, Vec::new())
        .unwrap()
        .to_bytes()
        .unwrap();
    conversation.persist().unwrap();
    member.client.post_raw(id, message).await.unwrap();
}

#[tokio::test]
async fn honest_members_refuse_forged_senders_and_ttls_above_the_policy() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let mut carol = person(&server, "carol").await;
    let group = alice
        .client
        .create_group(group("ops", &["bob", "carol"]))
        .await
        .unwrap();
    bob.client.sync().await.unwrap();
    carol.client.sync().await.unwrap();
    let device = bob.client.identity().device_id;
    let now = bob.client.now();

    // Bob's message claims to come from alice.
    let as_alice = Content::new(
        "alice",
        device,
        now,
        60,
        false,
        Body::Text("I am alice".into()),
    )
    .unwrap();
    forge(&mut bob, &group.id, &as_alice).await;
    // Bob's message would outlive the group's maximum of an hour.
    let too_long = Content::new(
        "bob",
        device,
        now,
        7 * 24 * 3600,
        false,
        Body::Text("forever".into()),
    )
    .unwrap();
    forge(&mut bob, &group.id, &too_long).await;

    let report = carol.client.sync().await.unwrap();
    assert!(
        report.messages.is_empty(),
        "carol was shown {:?}",
        report.messages
    );
    let seen = notices(&carol.client);
    assert!(
        seen.iter()
            .any(|n| n.contains("claims to be from alice but was sent by bob")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|n| n.contains("was rejected")), "{seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");

    // The conversation goes on for everyone.
    bob.client
        .send_text(&group.id, "honest again", SendOptions::default())
        .await
        .unwrap();
    let texts = received(&mut carol).await;
    assert_eq!(texts, ["honest again"]);
}
