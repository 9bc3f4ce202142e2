//! Delivery over real HTTP between real MLS devices: a Welcome and messages reach the
//! right device, commits race for an epoch and exactly one wins, sends are idempotent,
//! acknowledged ciphertext is deleted, and the server's files never hold plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use sotto_api::{Bytes, DeviceAddress, ErrorCode, MessageKind, SendMessage, Sent};
use sotto_core::content::Body;
use sotto_core::conversation::Event;
use sotto_core::policy::{BurnOnRead, Policy};
use sotto_server::storage::{AppendRequest, Appended, DeviceRef, Kind, StoreError};

async fn a_message_travels_from_alice_to_bob_through_the_server(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob) = (person(&server, "alice").await, person(&server, "bob").await);
    let (mut ca, mut cb) = conversation(&server, &alice, &bob).await;

    let (_, ct) = ca
        .send_text("the eagle lands at noon", 600, false, NOW_MS)
        .unwrap();
    let body = to(ct, &[&bob, &bob]); // listing a device twice still delivers to it once
    let sent: Sent = post(&server, &alice, ca.id(), &body)
        .await
        .json()
        .await
        .unwrap();
    // The same message id again stores nothing new.
    let again = post(&server, &alice, ca.id(), &body).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        again.json::<Sent>().await.unwrap(),
        Sent {
            seq: sent.seq,
            duplicate: true
        }
    );

    let got = inbox(&server, &bob).await;
    assert_eq!(got.messages.len(), 1);
    let Event::Message(m) = cb.process(&got.messages[0].payload.0, NOW_MS).unwrap() else {
        panic!()
    };
    assert_eq!(m.content.body, Body::Text("the eagle lands at noon".into()));
    assert!(
        inbox(&server, &alice).await.messages.is_empty(),
        "not delivered to the sender"
    );

    // The server's store holds ciphertext only.
    assert!(!server.stored.contains(b"the eagle").await);
    // The account-event log holds time, kind and sender only: no recipient, no address.
    assert_eq!(
        server.stored.columns("events").await,
        ["at", "kind", "sender"]
    );
    let rows = server
        .stored
        .text_rows("SELECT kind, sender FROM events ORDER BY at")
        .await;
    let sent: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "message_sent").collect();
    assert_eq!(
        sent.len(),
        2,
        "the Welcome commit and the message, once each: {rows:?}"
    );
    assert!(sent.iter().all(|r| r[1] == "alice"));
    assert!(rows.iter().any(|r| r[0] == "login" && r[1] == "bob"));
    assert!(
        !server.stored.contains(b"127.0.0.1").await,
        "a client address was stored"
    );
    // Once bob acknowledges, the ciphertext is gone.
    ack(&server, &bob, vec![got.messages[0].cursor]).await;
    assert!(inbox(&server, &bob).await.messages.is_empty());
    assert_eq!(server.stored.count("SELECT COUNT(*) FROM log").await, 0);
}

async fn of_two_commits_for_one_epoch_exactly_one_is_accepted(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob) = (person(&server, "alice").await, person(&server, "bob").await);
    let (mut ca, mut cb) = conversation(&server, &alice, &bob).await;
    let a_commit = ca.update().unwrap();
    let b_commit = cb.update().unwrap();
    let body = |commit: Vec<u8>, peer: &Person| to(commit, &[peer]);
    let first = post(&server, &alice, ca.id(), &body(a_commit.commit, &bob)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = post(&server, &bob, cb.id(), &body(b_commit.commit, &alice)).await;
    error(second, StatusCode::CONFLICT, ErrorCode::Conflict).await;

    // The loser drops its commit, catches up with the winner's, and both stay in step.
    ca.merge_pending_commit().unwrap();
    cb.discard_pending_commit();
    let got = inbox(&server, &bob).await;
    assert_eq!(got.messages[0].kind, MessageKind::Commit);
    cb.process(&got.messages[0].payload.0, NOW_MS).unwrap();
    assert_eq!(ca.epoch(), cb.epoch());
}

async fn bad_sends_are_refused(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob) = (person(&server, "alice").await, person(&server, "bob").await);
    let (mut ca, _cb) = conversation(&server, &alice, &bob).await;
    let (_, ct) = ca.send_text("hi", 60, false, NOW_MS).unwrap();
    let good = to(ct.clone(), &[&bob]);
    // For another conversation than the path says.
    let url = server.url(&format!("/v1/conversations/{}/messages", "00".repeat(16)));
    let response = server
        .http
        .post(url)
        .bearer_auth(&alice.token)
        .json(&good)
        .send()
        .await
        .unwrap();
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    // Not an MLS message; an unknown recipient; a bad message id; no session.
    let mut bad = good.clone();
    bad.payload = Bytes(b"plaintext".to_vec());
    error(
        post(&server, &alice, ca.id(), &bad).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
    )
    .await;
    let mut bad = good.clone();
    bad.recipients = vec![DeviceAddress {
        username: "bob".into(),
        device_id: "ab".repeat(16),
    }];
    error(
        post(&server, &alice, ca.id(), &bad).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
    )
    .await;
    let mut bad = good.clone();
    bad.message_id = "xyz".into();
    error(
        post(&server, &alice, ca.id(), &bad).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
    )
    .await;
    let url = server.url(&format!("/v1/conversations/{}/messages", hex(ca.id())));
    let response = server.http.post(url).json(&good).send().await.unwrap();
    error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    assert!(inbox(&server, &bob).await.messages.is_empty());
}

async fn only_members_post_and_removed_devices_no_longer_can(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (alice, bob, mallory) = (
        person(&server, "alice").await,
        person(&server, "bob").await,
        person(&server, "mallory").await,
    );
    let (mut ca, mut cb) = conversation(&server, &alice, &bob).await;

    // Mallory makes a commit with the conversation's id in her own group and posts it:
    // she is not a member, so it is refused and cannot move the epoch.
    let policy = Policy::new(
        vec![mallory.root.public_key().fingerprint()],
        60,
        BurnOnRead::Allowed,
    )
    .unwrap();
    let mut fake = mallory
        .device
        .mls_client()
        .create_group_with_id(
            ca.id().to_vec(),
            policy.to_extensions().unwrap(),
            Default::default(),
            None,
        )
        .unwrap();
    // Her group is brought to the conversation's epoch, so only membership stops her.
    fake.commit_builder().build().unwrap();
    fake.apply_pending_commit().unwrap();
    assert_eq!(fake.current_epoch(), ca.epoch());
    let junk = fake
        .commit_builder()
        .build()
        .unwrap()
        .commit_message
        .to_bytes()
        .unwrap();
    let body = to(junk, &[&alice]);
    error(
        post(&server, &mallory, ca.id(), &body).await,
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
    )
    .await;

    // Alice removes bob; bob gets the commit but may post no more.
    let bob_index = ca
        .members()
        .iter()
        .find(|m| m.identity.user.as_str() == "bob")
        .unwrap()
        .index;
    let out = ca.add_and_remove(&[], &[bob_index]).unwrap();
    let body = SendMessage {
        removed: vec![bob.address.clone()],
        ..to(out.commit, &[])
    };
    assert_eq!(
        post(&server, &alice, ca.id(), &body).await.status(),
        StatusCode::CREATED
    );
    ca.merge_pending_commit().unwrap();
    let got = inbox(&server, &bob).await;
    let Event::Commit(summary) = cb.process(&got.messages[0].payload.0, NOW_MS).unwrap() else {
        panic!()
    };
    assert!(summary.self_removed);
    let (_, ct) = ca.send_text("bob is gone", 60, false, NOW_MS).unwrap();
    let body = to(ct, &[]);
    assert_eq!(
        post(&server, &alice, ca.id(), &body).await.status(),
        StatusCode::CREATED
    );
    let late = to(got.messages[0].payload.0.clone(), &[]);
    error(
        post(&server, &bob, ca.id(), &late).await,
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
    )
    .await;
}

fn device(name: &str) -> DeviceRef {
    DeviceRef {
        username: name.into(),
        device_id: vec![7; 16],
    }
}

fn append_request(
    sender: &DeviceRef,
    conversation: &[u8],
    message_id: Vec<u8>,
    kind: Kind,
    epoch: u64,
    recipients: Vec<DeviceRef>,
) -> AppendRequest {
    AppendRequest {
        sender: sender.clone(),
        conversation: conversation.to_vec(),
        payload: message_id.clone(),
        message_id,
        kind,
        epoch,
        recipients,
        welcome: None,
        removed: Vec::new(),
        actor: sender.username.clone(),
        now: 1_800_000_000,
    }
}

/// Many members race a commit for each epoch: in every round exactly one is accepted,
/// the others are conflicts, and only the winner's commit is stored and delivered.
async fn concurrent_commits_for_one_epoch_admit_exactly_one(db: Db) {
    const MEMBERS: usize = 12;
    const ROUNDS: u64 = 5;
    let (_stored, store) = open_store(&db).await;
    let members: Vec<DeviceRef> = (0..MEMBERS).map(|i| device(&format!("m{i}"))).collect();
    let others = |i: usize| -> Vec<DeviceRef> {
        let mut v = members.clone();
        v.remove(i);
        v
    };
    let conversation = b"racing conversation".to_vec();
    let first = append_request(
        &members[0],
        &conversation,
        vec![0; 16],
        Kind::Commit,
        0,
        others(0),
    );
    assert_eq!(store.append(first).await.unwrap(), Appended::New(0));

    let mut winners = Vec::new();
    for epoch in 1..=ROUNDS {
        let tasks: Vec<_> = (0..MEMBERS)
            .map(|i| {
                let store = store.clone();
                let id = [vec![epoch as u8, i as u8], vec![1; 14]].concat();
                let request = append_request(
                    &members[i],
                    &conversation,
                    id,
                    Kind::Commit,
                    epoch,
                    others(i),
                );
                tokio::spawn(async move { (i, store.append(request).await) })
            })
            .collect();
        let mut accepted = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (i, Ok(Appended::New(seq))) => accepted.push((i, seq)),
                (_, Err(StoreError::Conflict)) => {}
                (i, other) => panic!("member {i} in epoch {epoch}: {other:?}"),
            }
        }
        assert_eq!(accepted.len(), 1, "epoch {epoch}: {accepted:?}");
        assert_eq!(
            accepted[0].1, epoch,
            "one sequence number per accepted commit"
        );
        winners.push(accepted[0].0);
    }
    // The losers stored nothing; each member holds every winning commit but its own.
    assert_eq!(store.log_len().await.unwrap(), 1 + ROUNDS);
    for (i, member) in members.iter().enumerate() {
        let inbox = store.inbox(member, 0, 100).await.unwrap();
        let expected = usize::from(i != 0) + winners.iter().filter(|w| **w != i).count();
        assert_eq!(inbox.len(), expected, "member {i}");
        assert!(inbox.iter().all(|d| d.kind == Kind::Commit));
    }
    // The conversation moved on by exactly one epoch per round.
    let late = append_request(
        &members[1],
        &conversation,
        vec![9; 16],
        Kind::Commit,
        ROUNDS,
        others(1),
    );
    assert!(matches!(
        store.append(late).await,
        Err(StoreError::Conflict)
    ));
    let next = append_request(
        &members[1],
        &conversation,
        vec![8; 16],
        Kind::Commit,
        ROUNDS + 1,
        others(1),
    );
    assert!(matches!(store.append(next).await, Ok(Appended::New(_))));
}

/// Many senders, each in a conversation of its own, send to one device while it reads
/// and acknowledges its inbox page by page, moving its cursor past each page: it sees
/// every message exactly once, in increasing cursor order — none is skipped by a cursor
/// that moved past it before it committed.
async fn a_device_paging_its_inbox_during_concurrent_sends_sees_each_message_once(db: Db) {
    const SENDERS: usize = 6;
    const MESSAGES: usize = 40;
    let (_stored, store) = open_store(&db).await;
    let reader = device("reader");
    let bystander = device("bystander");
    let done = Arc::new(AtomicBool::new(false));

    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let store = store.clone();
            // Half the senders list the two recipients the other way round.
            let mut to = vec![reader.clone(), bystander.clone()];
            if s % 2 == 1 {
                to.reverse();
            }
            tokio::spawn(async move {
                let sender = device(&format!("sender{s}"));
                let conversation = format!("conversation {s}").into_bytes();
                for n in 0..MESSAGES {
                    let id = [vec![s as u8, n as u8], vec![2; 14]].concat();
                    let request = append_request(
                        &sender,
                        &conversation,
                        id,
                        Kind::Application,
                        0,
                        to.clone(),
                    );
                    assert!(matches!(store.append(request).await, Ok(Appended::New(_))));
                }
            })
        })
        .collect();
    let all_sent = {
        let done = done.clone();
        tokio::spawn(async move {
            for sender in senders {
                sender.await.unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        // Read the flag before the page: an empty page after the last send committed
        // means there is nothing left.
        let finished = done.load(Ordering::SeqCst);
        let page = store.inbox(&reader, cursor, 7).await.unwrap();
        if page.is_empty() {
            if finished {
                break;
            }
            tokio::task::yield_now().await;
            continue;
        }
        for message in &page {
            assert!(message.cursor > cursor, "cursors increase");
            cursor = message.cursor;
            seen.push(message.payload.clone());
        }
        let cursors = page.iter().map(|m| m.cursor).collect::<Vec<_>>();
        store.ack(&reader, &cursors).await.unwrap();
    }
    all_sent.await.unwrap();

    let distinct: HashSet<&Vec<u8>> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "a message was delivered twice");
    assert_eq!(seen.len(), SENDERS * MESSAGES, "a message was skipped");
    // The other recipient holds them all too; once it acknowledges them, nothing is left.
    let rest = store.inbox(&bystander, 0, 1000).await.unwrap();
    assert_eq!(rest.len(), SENDERS * MESSAGES);
    let cursors = rest.iter().map(|m| m.cursor).collect::<Vec<_>>();
    store.ack(&bystander, &cursors).await.unwrap();
    assert_eq!(store.log_len().await.unwrap(), 0);
}

on_both_backends!(
    concurrent_commits_for_one_epoch_admit_exactly_one,
    a_device_paging_its_inbox_during_concurrent_sends_sees_each_message_once,
    a_message_travels_from_alice_to_bob_through_the_server,
    of_two_commits_for_one_epoch_exactly_one_is_accepted,
    bad_sends_are_refused,
    only_members_post_and_removed_devices_no_longer_can,
);
