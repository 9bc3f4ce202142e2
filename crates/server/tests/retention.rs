//! Retention under an injected clock, on both back-ends: undelivered ciphertext lives
//! exactly as long as the configured retention, expired challenges and sessions are swept,
//! and account events are kept seven days.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use sotto_server::storage::{
    self, AppendRequest, DeviceRef, EventRow, Kind, Store, Swept, EVENT_RETENTION_SECS,
};
use sotto_server::{DEFAULT_RETENTION_SECS, SHORT_RETENTION_SECS};

async fn store(db: &Db) -> (Stored, Store) {
    let stored = Stored::new(db).await;
    std::fs::create_dir_all(&stored.dir).unwrap();
    let store = storage::open(&stored.config().backend()).await.unwrap();
    (stored, store)
}

fn bob() -> DeviceRef {
    DeviceRef {
        username: "bob".into(),
        device_id: vec![1; 16],
    }
}

fn message(id: u8, kind: Kind, epoch: u64, now: u64) -> AppendRequest {
    AppendRequest {
        sender: DeviceRef {
            username: "alice".into(),
            device_id: vec![2; 16],
        },
        conversation: b"conversation".to_vec(),
        message_id: vec![id; 16],
        kind,
        epoch,
        payload: b"ciphertext".to_vec(),
        recipients: vec![bob()],
        welcome: None,
        removed: Vec::new(),
        actor: "alice".into(),
        now,
    }
}

async fn append(store: &Store, id: u8, now: u64) {
    store
        .append(message(id, Kind::Application, 0, now))
        .await
        .unwrap();
}

async fn undelivered_ciphertext_lives_exactly_as_long_as_the_retention(db: Db) {
    for retention in [DEFAULT_RETENTION_SECS, SHORT_RETENTION_SECS] {
        let (_stored, store) = store(&db).await;
        let t0 = 1_800_000_000;
        append(&store, 1, t0).await;
        append(&store, 2, t0 + 100).await;
        // Just inside the retention: both kept.
        let swept = store.sweep(t0 + retention, retention).await.unwrap();
        assert_eq!(swept.messages, 0);
        assert_eq!(store.inbox(&bob(), 0, 10).await.unwrap().len(), 2);
        // One second past the first one's retention: it, and only it, is gone.
        assert_eq!(
            store.sweep(t0 + retention + 1, retention).await.unwrap(),
            Swept {
                messages: 1,
                expired: 0
            }
        );
        let left = store.inbox(&bob(), 0, 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].seq, 1);
        let swept = store.sweep(t0 + retention + 101, retention).await.unwrap();
        assert_eq!(swept.messages, 1);
        assert!(store.inbox(&bob(), 0, 10).await.unwrap().is_empty());
        assert_eq!(store.log_len().await.unwrap(), 0);
    }
}

async fn expired_challenges_and_sessions_are_swept(db: Db) {
    let (_stored, store) = store(&db).await;
    let t0 = 1_800_000_000;
    store
        .put_challenge(&[1; 32], &bob(), t0 + 60)
        .await
        .unwrap();
    store
        .put_session(&[2; 32], &bob(), t0 + 3600, "bob", t0)
        .await
        .unwrap();
    let swept = store.sweep(t0 + 59, DEFAULT_RETENTION_SECS).await.unwrap();
    assert_eq!(swept.expired, 0);
    assert!(store.session(&[2; 32], t0 + 59).await.unwrap().is_some());
    let swept = store
        .sweep(t0 + 3600, DEFAULT_RETENTION_SECS)
        .await
        .unwrap();
    assert_eq!(swept.expired, 2);
    assert!(!store.take_challenge(&[1; 32], &bob(), t0).await.unwrap());
    assert!(store.session(&[2; 32], t0).await.unwrap().is_none());
}

async fn account_events_are_kept_seven_days(db: Db) {
    let (_stored, store) = store(&db).await;
    let t0 = 1_800_000_000;
    store
        .put_session(&[2; 32], &bob(), t0 + 3600, "bob", t0)
        .await
        .unwrap();
    append(&store, 1, t0 + 10).await;
    let week = EVENT_RETENTION_SECS;
    store
        .sweep(t0 + week, DEFAULT_RETENTION_SECS)
        .await
        .unwrap();
    assert_eq!(store.events().await.unwrap().len(), 2);
    store
        .sweep(t0 + week + 1, DEFAULT_RETENTION_SECS)
        .await
        .unwrap();
    assert_eq!(
        store.events().await.unwrap(),
        vec![EventRow {
            at: t0 + 10,
            kind: "message_sent".into(),
            actor: "alice".into()
        }]
    );
}

async fn an_extreme_epoch_is_refused_not_a_panic(db: Db) {
    let (_stored, store) = store(&db).await;
    let outcome = store
        .append(message(1, Kind::Commit, u64::MAX, 1_800_000_000))
        .await;
    assert!(outcome.is_err(), "{outcome:?}");
}

async fn a_delivered_message_resent_is_still_a_duplicate_until_the_retention_ends(db: Db) {
    let (_stored, store) = store(&db).await;
    let t0 = 1_800_000_000;
    let retention = SHORT_RETENTION_SECS;
    append(&store, 1, t0).await;
    let got = store.inbox(&bob(), 0, 10).await.unwrap();
    store.ack(&bob(), &[got[0].cursor]).await.unwrap();
    assert_eq!(
        store.log_len().await.unwrap(),
        0,
        "delivered ciphertext is deleted"
    );
    // The sender, never having seen the answer, sends the same message again: it is
    // recognised, not delivered a second time.
    let again = store
        .append(message(1, Kind::Application, 0, t0 + 5))
        .await
        .unwrap();
    assert_eq!(again, sotto_server::storage::Appended::Duplicate(0));
    assert!(store.inbox(&bob(), 0, 10).await.unwrap().is_empty());
    // The id is remembered only as long as the retention.
    store.sweep(t0 + retention + 1, retention).await.unwrap();
    let late = store
        .append(message(1, Kind::Application, 0, t0 + retention + 2))
        .await
        .unwrap();
    assert!(matches!(late, sotto_server::storage::Appended::New(_)));
}

on_both_backends!(
    a_delivered_message_resent_is_still_a_duplicate_until_the_retention_ends,
    undelivered_ciphertext_lives_exactly_as_long_as_the_retention,
    expired_challenges_and_sessions_are_swept,
    account_events_are_kept_seven_days,
    an_extreme_epoch_is_refused_not_a_panic,
);
