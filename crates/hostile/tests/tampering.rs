//! The server tampers with what it relays: bit flips in messages, Welcomes and attachment
//! blobs; replays, duplicates and withheld messages. Each time the user sees a notice (or
//! nothing wrong at all), never a wrong message, and the conversation goes on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_api::MessageKind;
use sotto_client::SendOptions;
use sotto_hostile::Phase;

async fn talking(server: &Server) -> (Person, Person) {
    let mut alice = person(server, "alice").await;
    let mut bob = person(server, "bob").await;
    alice
        .client
        .send_text("bob", "hello", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(bob.client.sync().await.unwrap().messages.len(), 1);
    alice.client.sync().await.unwrap();
    (alice, bob)
}

#[tokio::test]
async fn a_flipped_bit_in_a_message_is_rejected_and_the_conversation_goes_on() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    for at in [1, 20, 100] {
        flip_bits(&bob.proxy, MessageKind::Application, at, 1);
        alice
            .client
            .send_text("bob", "altered in transit", SendOptions::default())
            .await
            .unwrap();
        let report = bob.client.sync().await.unwrap();
        assert!(report.messages.is_empty(), "a tampered message was shown");
        let seen = notices(&bob.client);
        assert!(seen.iter().any(|n| n.contains("was rejected")), "{seen:?}");
        bob.proxy.behave();
        alice
            .client
            .send_text("bob", "intact", SendOptions::default())
            .await
            .unwrap();
        assert_eq!(received(&mut bob).await, ["intact"]);
    }
}

#[tokio::test]
async fn replayed_and_duplicated_messages_are_shown_once() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    let mut seen: Vec<sotto_api::InboxMessage> = Vec::new();
    on_inbox(&bob.proxy, move |entries| {
        // Every entry twice, and everything served before served again, under the cursor
        // of a new entry (the server numbers the mailbox, so it can pass old as new).
        let mut all = Vec::new();
        for entry in entries.iter() {
            for old in &seen {
                all.push(sotto_api::InboxMessage {
                    cursor: entry.cursor,
                    ..old.clone()
                });
            }
            all.push(entry.clone());
            all.push(entry.clone());
        }
        seen.extend(entries.iter().cloned());
        *entries = all;
    });
    for text in ["one", "two"] {
        alice
            .client
            .send_text("bob", text, SendOptions::default())
            .await
            .unwrap();
        let report = bob.client.sync().await.unwrap();
        let texts: Vec<_> = report.messages.iter().map(|m| m.text.clone()).collect();
        assert_eq!(texts, [text]);
    }
    assert_eq!(bob.client.messages("alice").unwrap().len(), 3);
}

#[tokio::test]
async fn a_withheld_message_leaves_the_conversation_intact() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    // The server drops the next application message for bob (it never reaches him).
    let mut dropped = false;
    on_inbox(&bob.proxy, move |entries| {
        if !dropped {
            if let Some(i) = entries
                .iter()
                .position(|e| e.kind == MessageKind::Application)
            {
                entries.remove(i);
                dropped = true;
            }
        }
    });
    for text in ["withheld", "delivered"] {
        alice
            .client
            .send_text("bob", text, SendOptions::default())
            .await
            .unwrap();
    }
    let texts = received(&mut bob).await;
    assert_eq!(texts, ["delivered"]);
    assert!(notices(&bob.client).is_empty());
}

#[tokio::test]
async fn a_tampered_welcome_is_refused_with_a_notice() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    flip_bits(&bob.proxy, MessageKind::Welcome, 50, 1);
    alice
        .client
        .send_text("bob", "join me", SendOptions::default())
        .await
        .unwrap();
    let report = bob.client.sync().await.unwrap();
    assert!(report.joined.is_empty() && report.messages.is_empty());
    let seen = notices(&bob.client);
    assert!(
        seen.iter()
            .any(|n| n.contains("invitation to a conversation was rejected")),
        "{seen:?}"
    );
    assert!(bob.client.conversations().unwrap().is_empty());
}

#[tokio::test]
async fn a_tampered_attachment_is_detected_and_not_saved() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    bob.proxy.rule(|exchange, phase| {
        if phase == Phase::Response
            && exchange.method == "GET"
            && exchange.path.starts_with("/v1/attachments/")
        {
            if let Some(byte) = exchange.response.get_mut(10) {
                *byte ^= 0x80;
            }
        }
    });
    let file = server.profiles.path().join("plan.txt");
    std::fs::write(&file, b"the plan").unwrap();
    alice
        .client
        .send_file("bob", &file, SendOptions::default())
        .await
        .unwrap();
    let report = bob.client.sync().await.unwrap();
    let message = &report.messages[0];
    assert!(bob.client.attachment_data(message).unwrap().is_none());
    let seen = notices(&bob.client);
    assert!(seen.iter().any(|n| n.contains("was altered")), "{seen:?}");
}

#[tokio::test]
async fn a_replayed_commit_of_a_past_epoch_is_rejected_and_changes_nothing() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    let mut carol = person(&server, "carol").await;
    // Bob's server keeps every commit it relays, and serves them all again later.
    let mut commits: Vec<sotto_api::InboxMessage> = Vec::new();
    let replayed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&replayed);
    on_inbox(&bob.proxy, move |entries| {
        let fresh: Vec<_> = entries
            .iter()
            .filter(|e| e.kind == MessageKind::Commit)
            .cloned()
            .collect();
        // Every earlier commit again, in front of each new entry and under its cursor.
        let mut all = Vec::new();
        for entry in entries.iter() {
            for old in &commits {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                all.push(sotto_api::InboxMessage {
                    cursor: entry.cursor,
                    ..old.clone()
                });
            }
            all.push(entry.clone());
        }
        commits.extend(fresh);
        *entries = all;
    });
    let group = alice
        .client
        .create_group(group("g", &["bob"]))
        .await
        .unwrap();
    bob.client.sync().await.unwrap();
    alice.client.add_member(&group.id, "carol").await.unwrap();
    bob.client.sync().await.unwrap();
    carol.client.sync().await.unwrap();
    alice
        .client
        .send_text(&group.id, "after the replay", SendOptions::default())
        .await
        .unwrap();
    let report = bob.client.sync().await.unwrap();
    let texts: Vec<_> = report.messages.iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, ["after the replay"]);
    // Old commits were served again, and refused without a trace: a replay is no news.
    assert!(replayed.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert!(notices(&bob.client).is_empty());
    assert_eq!(
        bob.client.conversation_info(&group.id).unwrap().members,
        ["alice", "bob", "carol"]
    );
}
