//! The server tampers with what it relays: bit flips and truncation in messages, Welcomes
//! and attachment blobs; messages moved to another conversation, blobs swapped; replays,
//! duplicates, reordering and withheld messages. Each time the user sees a notice (or
//! nothing wrong at all), never a wrong message, and the conversation goes on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_api::MessageKind;
use sotto_client::SendOptions;
use sotto_hostile::Phase;

/// What a rule and the test both see.
type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;

/// Writes `body` to a file named `name` and sends it from `from` to bob.
async fn send_file(server: &Server, from: &mut Person, name: &str, body: &[u8]) {
    let file = server.profiles.path().join(name);
    std::fs::write(&file, body).unwrap();
    from.client
        .send_file("bob", &file, SendOptions::default())
        .await
        .unwrap();
}

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
    send_file(&server, &mut alice, "plan.txt", b"the plan").await;
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

#[tokio::test]
async fn a_truncated_message_is_rejected_and_the_conversation_goes_on() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    let mut left = 1;
    on_inbox(&bob.proxy, move |entries| {
        for entry in entries.iter_mut() {
            if entry.kind == MessageKind::Application && left > 0 {
                left -= 1;
                let keep = entry.payload.0.len() - 16;
                entry.payload.0.truncate(keep);
            }
        }
    });
    for text in ["cut short", "whole"] {
        alice
            .client
            .send_text("bob", text, SendOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(received(&mut bob).await, ["whole"]);
    let seen = notices(&bob.client);
    assert!(
        seen.len() == 1 && seen[0].contains("was rejected"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_message_moved_to_another_conversation_is_refused_there() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    let direct = bob.client.resolve("alice").unwrap().unwrap();
    let group = alice
        .client
        .create_group(group("g", &["bob"]))
        .await
        .unwrap();
    bob.client.sync().await.unwrap();
    // The server files the group's next message under the 1:1 conversation.
    let (from, to) = (group.id.clone(), direct.clone());
    let mut left = 1;
    on_inbox(&bob.proxy, move |entries| {
        for entry in entries.iter_mut() {
            if entry.conversation == from && entry.kind == MessageKind::Application && left > 0 {
                left -= 1;
                entry.conversation = to.clone();
            }
        }
    });
    alice
        .client
        .send_text(&group.id, "for the group", SendOptions::default())
        .await
        .unwrap();
    assert!(received(&mut bob).await.is_empty());
    let seen = notices(&bob.client);
    assert!(
        seen.len() == 1 && seen[0].contains("another conversation"),
        "{seen:?}"
    );
    // Both conversations go on.
    for (id, text) in [(&direct, "direct"), (&group.id, "group")] {
        alice
            .client
            .send_text(id, text, SendOptions::default())
            .await
            .unwrap();
    }
    let report = bob.client.sync().await.unwrap();
    let got: Vec<_> = report
        .messages
        .iter()
        .map(|m| (m.conversation.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [(direct.as_str(), "direct"), (group.id.as_str(), "group")]
    );
}

#[tokio::test]
async fn swapped_attachment_blobs_are_detected() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    // The server answers a request for one blob with the other blob.
    let blobs: Shared<Vec<(String, Vec<u8>)>> = Default::default();
    let seen_blobs = std::sync::Arc::clone(&blobs);
    bob.proxy.rule(move |exchange, phase| {
        if phase != Phase::Response
            || exchange.method != "GET"
            || !exchange.path.starts_with("/v1/attachments/")
        {
            return;
        }
        let mut all = seen_blobs.lock().unwrap();
        let other = all
            .iter()
            .find(|(path, _)| *path != exchange.path)
            .map(|(_, body)| body.clone());
        all.push((exchange.path.clone(), exchange.response.clone()));
        if let Some(other) = other {
            exchange.response = other;
        }
    });
    for (name, body) in [
        ("a.txt", &b"first file"[..]),
        ("b.txt", &b"second file"[..]),
    ] {
        send_file(&server, &mut alice, name, body).await;
    }
    let report = bob.client.sync().await.unwrap();
    assert_eq!(report.messages.len(), 2);
    // The first download is genuine; the second was answered with the first blob.
    let first = bob.client.attachment_data(&report.messages[0]).unwrap();
    assert_eq!(first.map(|d| d.to_vec()), Some(b"first file".to_vec()));
    assert!(bob
        .client
        .attachment_data(&report.messages[1])
        .unwrap()
        .is_none());
    let seen = notices(&bob.client);
    assert!(seen.iter().any(|n| n.contains("was altered")), "{seen:?}");
    assert_eq!(blobs.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn reordered_messages_are_each_shown_once() {
    let server = Server::start().await;
    let (mut alice, mut bob) = talking(&server).await;
    on_inbox(&bob.proxy, |entries| entries.reverse());
    let sent = ["one", "two", "three"];
    for text in sent {
        alice
            .client
            .send_text("bob", text, SendOptions::default())
            .await
            .unwrap();
    }
    let mut got = received(&mut bob).await;
    assert_eq!(
        got,
        ["three", "two", "one"],
        "processed in the order served"
    );
    got.sort();
    let mut expected = sent.to_vec();
    expected.sort();
    assert_eq!(got, expected);
    assert!(notices(&bob.client).is_empty());
    // The conversation goes on, both ways.
    bob.client
        .send_text("alice", "got them", SendOptions::default())
        .await
        .unwrap();
    assert_eq!(received(&mut alice).await, ["got them"]);
}
