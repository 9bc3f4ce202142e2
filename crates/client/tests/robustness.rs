//! What must not go wrong between devices, processes and conversations: a registration
//! cut short, two processes on one profile, names that imitate users, a user's own
//! devices reading or leaving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_client::{Client, GroupSpec, SendOptions};

fn group(name: &str, members: &[&str]) -> GroupSpec {
    GroupSpec {
        name: name.into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        max_ttl_seconds: 3600,
        burn_on_read_required: false,
    }
}

#[tokio::test]
async fn a_registration_cut_short_after_the_account_exists_is_finished_by_running_it_again() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let dir = profiles.dir("alice");
    // A password the OPAQUE step refuses: the account exists by then.
    let too_long = vec![b'p'; sotto_core::password::MAX_PASSWORD_LEN + 1];
    let err = Client::register(new_profile(&dir, &server.url, true), "alice", &too_long)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not finished"), "{err}");
    assert!(dir.join("profile.key").exists(), "the profile was deleted");
    let mut alice = Client::register(
        new_profile(&dir, &server.url, true),
        "alice",
        &password("alice"),
    )
    .await
    .unwrap();
    assert_eq!(alice.devices().await.unwrap().len(), 1);
    assert_eq!(
        rows_of_kind(&dir, "secret"),
        1,
        "the pending root key was kept"
    );
    drop(alice);
    let laptop = profiles.dir("alice-laptop");
    new_device(&server, &laptop, "alice").await;
}

#[tokio::test]
async fn a_profile_is_used_by_one_process_at_a_time() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let alice = person(&server, &profiles, "alice").await;
    let err = Client::open(&profiles.dir("alice"), PASSPHRASE, None, None).unwrap_err();
    assert!(err.to_string().contains("in use by another sotto"), "{err}");
    drop(alice);
    Client::open(&profiles.dir("alice"), PASSPHRASE, None, None).unwrap();
}

#[tokio::test]
async fn a_group_named_like_a_user_never_receives_what_is_sent_to_that_user() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    let mut mallory = person(&server, &profiles, "mallory").await;
    let trap = mallory
        .create_group(group("bob", &["alice"]))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        alice.conversation_info(&trap.id).unwrap().name.as_deref(),
        Some("bob")
    );

    alice
        .send_text("bob", "for bob only", SendOptions::default())
        .await
        .unwrap();
    assert!(mallory.sync().await.unwrap().messages.is_empty());
    assert_eq!(bob.sync().await.unwrap().messages[0].text, "for bob only");
    // The group is reached by `#name`.
    alice
        .send_text("#bob", "to the group", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(
        mallory.sync().await.unwrap().messages[0].text,
        "to the group"
    );
}

#[tokio::test]
async fn a_users_other_device_neither_burns_nor_acknowledges_the_users_own_messages() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    let laptop_dir = profiles.dir("alice-laptop");
    let mut laptop = new_device(&server, &laptop_dir, "alice").await;
    alice
        .send_text("bob", "hello", SendOptions::default())
        .await
        .unwrap();
    bob.sync().await.unwrap();
    laptop.sync().await.unwrap();

    let burn = SendOptions {
        ttl_seconds: Some(3600),
        burn_on_read: true,
    };
    let sent = alice
        .send_text("bob", "burn after bob reads", burn)
        .await
        .unwrap();
    let at_laptop = laptop.sync().await.unwrap();
    let copy = at_laptop.messages.iter().find(|m| m.id == sent.id).unwrap();
    assert!(copy.outgoing && copy.read, "{copy:?}");
    laptop.mark_read("bob").await.unwrap();
    alice.sync().await.unwrap();
    assert!(alice
        .messages("bob")
        .unwrap()
        .iter()
        .any(|m| m.id == sent.id));
    bob.sync().await.unwrap();
    bob.mark_read("alice").await.unwrap();
    alice.sync().await.unwrap();
    assert!(!alice
        .messages("bob")
        .unwrap()
        .iter()
        .any(|m| m.id == sent.id));
}

#[tokio::test]
async fn leaving_from_one_device_takes_the_users_other_devices_along() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    let laptop_dir = profiles.dir("bob-laptop");
    let mut laptop = new_device(&server, &laptop_dir, "bob").await;
    let room = alice.create_group(group("room", &["bob"])).await.unwrap();
    bob.sync().await.unwrap();
    laptop.sync().await.unwrap();
    assert!(laptop.conversation_info(&room.id).unwrap().active);

    laptop.leave(&room.id).await.unwrap();
    bob.sync().await.unwrap();
    alice.sync().await.unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    laptop.sync().await.unwrap();
    assert!(!bob.conversation_info(&room.id).unwrap().active);
    assert!(!laptop.conversation_info(&room.id).unwrap().active);
    assert_eq!(
        alice.conversation_info(&room.id).unwrap().members,
        ["alice"]
    );
}
