//! Two and three users talking through a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_client::{ClientError, GroupSpec, SendOptions};

#[tokio::test]
async fn two_users_exchange_messages_both_ways() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;

    let sent = alice
        .send_text("bob", "hello bob", SendOptions::default())
        .await
        .unwrap();
    let got = bob.sync().await.unwrap();
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].text, "hello bob");
    assert_eq!(got.messages[0].from, "alice");
    assert_eq!(got.messages[0].id, sent.id);

    bob.send_text("alice", "hi alice", SendOptions::default())
        .await
        .unwrap();
    let got = alice.sync().await.unwrap();
    let texts: Vec<_> = got.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hi alice"]);
    // Both sides see one 1:1 conversation with both messages.
    assert_eq!(alice.conversations().unwrap().len(), 1);
    let at_bob = bob.messages("alice").unwrap();
    assert_eq!(at_bob.len(), 2);
    // Bob's delivery receipt reached alice with his message.
    let mine = alice.messages("bob").unwrap();
    let first = mine.iter().find(|m| m.id == sent.id).unwrap();
    assert_eq!(first.delivered_to, ["bob"]);
    // Read receipts.
    bob.mark_read("alice").await.unwrap();
    alice.sync().await.unwrap();
    let first = alice
        .messages("bob")
        .unwrap()
        .into_iter()
        .find(|m| m.id == sent.id)
        .unwrap();
    assert_eq!(first.read_by, ["bob"]);
    // No message text on the server's disk.
    let stored = server.stored_bytes();
    for text in ["hello bob", "hi alice"] {
        assert!(!stored.windows(text.len()).any(|w| w == text.as_bytes()));
    }
}

#[tokio::test]
async fn only_managers_add_and_remove_group_members() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    let mut carol = person(&server, &profiles, "carol").await;
    let _dave = person(&server, &profiles, "dave").await;

    let group = alice
        .create_group(GroupSpec {
            name: "ops".into(),
            members: vec!["bob".into(), "carol".into()],
            max_ttl_seconds: 3600,
            burn_on_read_required: false,
        })
        .await
        .unwrap();
    assert_eq!(group.members, ["alice", "bob", "carol"]);
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    assert_eq!(
        bob.conversation_info(&group.id).unwrap().name.as_deref(),
        Some("ops")
    );

    let refused = bob.add_member(&group.id, "dave").await.unwrap_err();
    assert!(matches!(refused, ClientError::NotAManager), "{refused}");
    let refused = bob.remove_member(&group.id, "carol").await.unwrap_err();
    assert!(matches!(refused, ClientError::NotAManager), "{refused}");

    alice
        .send_text(&group.id, "all hands", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(bob.sync().await.unwrap().messages[0].text, "all hands");
    assert_eq!(carol.sync().await.unwrap().messages[0].text, "all hands");

    let info = alice.remove_member(&group.id, "carol").await.unwrap();
    assert_eq!(info.members, ["alice", "bob"]);
    carol.sync().await.unwrap();
    assert!(!carol.conversation_info(&group.id).unwrap().active);
    // A TTL above the group's policy is refused before anything is sent.
    let too_long = SendOptions {
        ttl_seconds: Some(7200),
        burn_on_read: false,
    };
    let refused = alice
        .send_text(&group.id, "late", too_long)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ClientError::PolicyViolation(_)),
        "{refused}"
    );
}

#[tokio::test]
async fn a_member_who_leaves_is_removed_at_the_next_sync_of_another() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    let group = alice
        .create_group(GroupSpec {
            name: "ops".into(),
            members: vec!["bob".into()],
            max_ttl_seconds: 3600,
            burn_on_read_required: false,
        })
        .await
        .unwrap();
    bob.sync().await.unwrap();
    bob.leave(&group.id).await.unwrap();
    assert!(!bob.conversation_info(&group.id).unwrap().active);
    let report = alice.sync().await.unwrap();
    assert!(report.notices.is_empty(), "{:?}", report.notices);
    assert_eq!(
        alice.conversation_info(&group.id).unwrap().members,
        ["alice"]
    );
}
