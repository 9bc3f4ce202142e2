//! Delivery over real HTTP between real MLS devices: a Welcome and messages reach the
//! right device, commits race for an epoch and exactly one wins, sends are idempotent,
//! acknowledged ciphertext is deleted, and the server's files never hold plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use reqwest::StatusCode;
use sotto_api::{Bytes, DeviceAddress, ErrorCode, MessageKind, SendMessage, Sent};
use sotto_core::content::Body;
use sotto_core::conversation::Event;
use sotto_core::policy::{BurnOnRead, Policy};

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

on_both_backends!(
    a_message_travels_from_alice_to_bob_through_the_server,
    of_two_commits_for_one_epoch_exactly_one_is_accepted,
    bad_sends_are_refused,
    only_members_post_and_removed_devices_no_longer_can,
);
