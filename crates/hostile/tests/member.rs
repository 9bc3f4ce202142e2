//! A malicious member: a modified client that sends what an honest one never would — a
//! message claiming another sender or another device, a message living longer than the policy allows, a
//! commit adding a member or changing the policy without being a manager, two different
//! messages for one position of its ratchet — straight through MLS, past its own client's
//! checks. Honest members refuse it and say so; they are never shown it, and they never
//! disagree about what was said.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mls_rs::client_builder::PaddingMode;
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules, EncryptionOptions};
use mls_rs::ExtensionList;
use sotto_api::{Bytes, DeviceAddress, SendMessage, WelcomeDelivery};
use sotto_client::SendOptions;
use sotto_core::content::{Body, Content};
use sotto_core::identity::DeviceId;
use sotto_core::policy::{BurnOnRead, Policy};

/// mls-rs's pass-through rules (no membership rule at all), framed like Sotto's on the
/// wire (encrypted handshakes, update paths), so that only the honest members' own rule
/// can tell the commit apart.
fn no_rules() -> DefaultMlsRules {
    DefaultMlsRules::new()
        .with_commit_options(
            CommitOptions::new()
                .with_path_required(true)
                .with_ratchet_tree_extension(true)
                .with_single_welcome_message(true),
        )
        .with_encryption_options(EncryptionOptions::new(true, PaddingMode::StepFunction))
}

/// The other member devices of conversation `id`, as `member` sees them.
fn others(member: &mut Person, id: &str) -> Vec<DeviceAddress> {
    let me = member.client.device_id().to_owned();
    member
        .client
        .mls_conversation(id)
        .unwrap()
        .members()
        .into_iter()
        .map(|m| DeviceAddress {
            username: m.identity.user.to_string(),
            device_id: m.identity.device_id.to_hex(),
        })
        .filter(|a| a.device_id != me)
        .collect()
}

/// Forges a text from `user`'s `device` living `ttl` seconds, and posts it as `member`.
async fn forge_text(
    member: &mut Person,
    id: &str,
    (user, device): (&str, DeviceId),
    ttl: u32,
    text: &str,
) {
    let now = member.client.now();
    let content = Content::new(user, device, now, ttl, false, Body::Text(text.into())).unwrap();
    forge(member, id, &content).await;
}

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
    let (alice, mut bob, mut carol, id) = group_of_three(&server).await;
    let device = bob.client.identity().device_id;
    let alices = alice.client.identity().device_id;
    // Bob's message claims to come from alice.
    forge_text(&mut bob, &id, ("alice", device), 60, "I am alice").await;
    // Bob's message claims to come from another device (alice's) under his own name.
    forge_text(&mut bob, &id, ("bob", alices), 60, "from my other phone").await;
    // Bob's message would outlive the group's maximum of an hour.
    forge_text(&mut bob, &id, ("bob", device), 7 * 24 * 3600, "forever").await;

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
    let device = alice.client.device_id().to_owned();
    assert!(
        seen.iter().any(|n| n.contains(&format!(
            "claims to be from bob (device {device}) but was sent by bob (device"
        ))),
        "{seen:?}"
    );
    assert!(seen.iter().any(|n| n.contains("was rejected")), "{seen:?}");
    assert_eq!(seen.len(), 3, "{seen:?}");

    // The conversation goes on for everyone.
    bob.client
        .send_text(&id, "honest again", SendOptions::default())
        .await
        .unwrap();
    let texts = received(&mut carol).await;
    assert_eq!(texts, ["honest again"]);
}

#[tokio::test]
async fn a_commit_by_a_non_manager_adding_a_member_is_refused_by_everyone() {
    let server = Server::start().await;
    let (mut alice, mut bob, mut carol, id) = group_of_three(&server).await;
    let mut mallory = person(&server, "mallory").await;
    let recipients = others(&mut bob, &id);
    let group_id = bob.client.mls_conversation(&id).unwrap().id().to_vec();

    // Bob's modified client adds mallory with one of her real KeyPackages.
    let key_package = mallory
        .client
        .modified_mls_client(no_rules())
        .unwrap()
        .generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    let rogue = bob.client.modified_mls_client(no_rules()).unwrap();
    let mut rogue_group = rogue.load_group(&group_id).unwrap();
    let commit = rogue_group
        .commit_builder()
        .add_member(key_package)
        .unwrap()
        .build()
        .unwrap();
    let body = SendMessage {
        message_id: String::new(),
        payload: Bytes(commit.commit_message.to_bytes().unwrap()),
        recipients,
        welcome: Some(WelcomeDelivery {
            payload: Bytes(commit.welcome_messages[0].to_bytes().unwrap()),
            recipients: vec![DeviceAddress {
                username: "mallory".into(),
                device_id: mallory.client.device_id().to_owned(),
            }],
        }),
        removed: Vec::new(),
    };
    bob.client.post_raw_message(&id, body).await.unwrap();

    for honest in [&mut alice, &mut carol] {
        let report = honest.client.sync().await.unwrap();
        assert!(report.messages.is_empty() && report.joined.is_empty());
        let seen = notices(&honest.client);
        assert!(
            seen.iter()
                .any(|n| n.contains("was rejected") && n.contains("membership rule")),
            "{seen:?}"
        );
        let members = honest.client.mls_conversation(&id).unwrap().members();
        assert_eq!(members.len(), 3, "the roster changed");
        assert!(members
            .iter()
            .all(|m| m.identity.user.as_str() != "mallory"));
    }
    // Mallory's own client refuses the Welcome: it was not made by a manager.
    let report = mallory.client.sync().await.unwrap();
    assert!(report.joined.is_empty(), "mallory joined");
    let seen = notices(&mallory.client);
    assert!(
        seen.iter()
            .any(|n| n.contains("invitation to a conversation was rejected")),
        "{seen:?}"
    );
    assert!(mallory.client.resolve(&id).unwrap().is_none());

    // Messages still flow among the real members.
    alice
        .client
        .send_text(&id, "still just us", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut carol).await, ["still just us"]);
    assert_eq!(received(&mut bob).await, ["still just us"]);
}

#[tokio::test]
async fn a_policy_change_by_a_non_manager_is_refused_by_everyone() {
    let server = Server::start().await;
    let (mut alice, mut bob, mut carol, id) = group_of_three(&server).await;
    let recipients = others(&mut bob, &id);
    let conversation = bob.client.mls_conversation(&id).unwrap();
    let group_id = conversation.id().to_vec();
    let before = conversation.policy().clone();

    // Bob makes himself a manager and lets messages live a week.
    let mut managers = before.managers().to_vec();
    managers.push(bob.client.identity().root_fingerprint);
    let grabbed = Policy::new(managers, 7 * 24 * 3600, BurnOnRead::Allowed).unwrap();
    let rogue = bob.client.modified_mls_client(no_rules()).unwrap();
    let mut rogue_group = rogue.load_group(&group_id).unwrap();
    let commit = rogue_group
        .commit_builder()
        .set_group_context_ext(grabbed.to_extensions().unwrap())
        .unwrap()
        .build()
        .unwrap();
    let body = SendMessage {
        message_id: String::new(),
        payload: Bytes(commit.commit_message.to_bytes().unwrap()),
        recipients,
        welcome: None,
        removed: Vec::new(),
    };
    bob.client.post_raw_message(&id, body).await.unwrap();

    for honest in [&mut alice, &mut carol] {
        let report = honest.client.sync().await.unwrap();
        assert!(report.messages.is_empty());
        let seen = notices(&honest.client);
        assert!(
            seen.iter()
                .any(|n| n.contains("was rejected") && n.contains("membership rule")),
            "{seen:?}"
        );
        let policy = honest
            .client
            .mls_conversation(&id)
            .unwrap()
            .policy()
            .clone();
        assert_eq!(policy, before, "the policy changed");
    }
    // The policy honest members enforce is still the manager's: a week is refused.
    let too_long = carol
        .client
        .send_text(
            &id,
            "for a week",
            SendOptions {
                ttl_seconds: Some(7 * 24 * 3600),
                ..SendOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(too_long.to_string().contains("3600 s"), "{too_long}");
    alice
        .client
        .send_text(&id, "policy unchanged", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut carol).await, ["policy unchanged"]);
}

#[tokio::test]
async fn two_messages_for_one_ratchet_position_are_seen_alike_by_everyone() {
    let server = Server::start().await;
    let (mut alice, mut bob, mut carol, id) = group_of_three(&server).await;
    let group_id = bob.client.mls_conversation(&id).unwrap().id().to_vec();
    let device = bob.client.identity().device_id;
    let now = bob.client.now();

    // Bob's modified client encrypts two different texts from the same state: the same
    // sender, epoch and generation, so the same message key, different contents.
    let rogue = bob.client.modified_mls_client(no_rules()).unwrap();
    let mut sealed = Vec::new();
    for text in ["meet at ten", "meet at eleven"] {
        let content = Content::new("bob", device, now, 60, false, Body::Text(text.into())).unwrap();
        let mut from_same_state = rogue.load_group(&group_id).unwrap();
        let message = from_same_state
            .encrypt_application_message(&content.to_bytes().unwrap(), Vec::new())
            .unwrap();
        sealed.push(message.to_bytes().unwrap());
    }
    assert_ne!(sealed[0], sealed[1]);
    // Both reach every member, in the order the server fixed.
    for message in &sealed {
        bob.client.post_raw(&id, message.clone()).await.unwrap();
    }
    // Everyone is shown the first and only the first: the second uses a message key
    // that was deleted when the first was read (MLS's secret tree), so no member can be
    // shown "eleven" after "ten", and all agree.
    assert_eq!(received(&mut alice).await, ["meet at ten"]);
    assert_eq!(received(&mut carol).await, ["meet at ten"]);
    // The conversation goes on.
    alice
        .client
        .send_text(&id, "ten it is", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut carol).await, ["ten it is"]);
}
