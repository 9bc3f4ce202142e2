//! Retention under an injected clock: undelivered ciphertext lives exactly as long as the
//! configured retention, and expired challenges and sessions are swept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sotto_server::delivery_store::{Append, Kind, Swept};
use sotto_server::store::{DeviceRef, Store};
use sotto_server::{DEFAULT_RETENTION_SECS, SHORT_RETENTION_SECS};

struct TempDb(std::path::PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store() -> (TempDb, Store) {
    let name: String = sotto_core::crypto::random_array::<8>()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = std::env::temp_dir().join(format!("sotto-retention-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir.join("db.sqlite3")).unwrap();
    (TempDb(dir), store)
}

fn bob() -> DeviceRef {
    DeviceRef {
        username: "bob".into(),
        device_id: vec![1; 16],
    }
}

fn append(store: &Store, id: u8, now: u64) {
    let recipients = [bob()];
    let message = Append {
        conversation: b"conversation",
        message_id: &[id; 16],
        kind: Kind::Application,
        epoch: 0,
        payload: b"ciphertext",
        recipients: &recipients,
    };
    let alice = DeviceRef {
        username: "alice".into(),
        device_id: vec![2; 16],
    };
    store.append(&alice, &message, None, &[], now).unwrap();
}

#[test]
fn undelivered_ciphertext_lives_exactly_as_long_as_the_retention() {
    for retention in [DEFAULT_RETENTION_SECS, SHORT_RETENTION_SECS] {
        let (_dir, store) = store();
        let t0 = 1_800_000_000;
        append(&store, 1, t0);
        append(&store, 2, t0 + 100);
        // Just inside the retention: both kept.
        assert_eq!(store.sweep(t0 + retention, retention).unwrap().messages, 0);
        assert_eq!(store.inbox(&bob(), 0, 10).unwrap().len(), 2);
        // One second past the first one's retention: it, and only it, is gone.
        assert_eq!(
            store.sweep(t0 + retention + 1, retention).unwrap(),
            Swept {
                messages: 1,
                expired: 0
            }
        );
        let left = store.inbox(&bob(), 0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].seq, 1);
        assert_eq!(
            store
                .sweep(t0 + retention + 101, retention)
                .unwrap()
                .messages,
            1
        );
        assert!(store.inbox(&bob(), 0, 10).unwrap().is_empty());
        assert_eq!(store.log_len().unwrap(), 0);
    }
}

#[test]
fn expired_challenges_and_sessions_are_swept() {
    let (_dir, store) = store();
    let t0 = 1_800_000_000;
    store.put_challenge(&[1; 32], &bob(), t0 + 60).unwrap();
    store.put_session(&[2; 32], &bob(), t0 + 3600).unwrap();
    assert_eq!(
        store
            .sweep(t0 + 59, DEFAULT_RETENTION_SECS)
            .unwrap()
            .expired,
        0
    );
    assert!(store.session(&[2; 32], t0 + 59).unwrap().is_some());
    assert_eq!(
        store
            .sweep(t0 + 3600, DEFAULT_RETENTION_SECS)
            .unwrap()
            .expired,
        2
    );
    assert!(!store.take_challenge(&[1; 32], &bob(), t0).unwrap());
    assert!(store.session(&[2; 32], t0).unwrap().is_none());
}

#[test]
fn account_events_are_kept_seven_days() {
    let (_dir, store) = store();
    let t0 = 1_800_000_000;
    store
        .record(sotto_server::store::Event::Login, "bob", t0)
        .unwrap();
    store
        .record(sotto_server::store::Event::MessageSent, "bob", t0 + 10)
        .unwrap();
    let week = sotto_server::store::EVENT_RETENTION_SECS;
    store.sweep(t0 + week, DEFAULT_RETENTION_SECS).unwrap();
    assert_eq!(store.events().unwrap().len(), 2);
    store.sweep(t0 + week + 1, DEFAULT_RETENTION_SECS).unwrap();
    let left = store.events().unwrap();
    assert_eq!(
        left,
        vec![(t0 + 10, "message_sent".to_string(), "bob".to_string())]
    );
}

#[test]
fn an_extreme_epoch_is_refused_not_a_panic() {
    let (_dir, store) = store();
    let alice = DeviceRef {
        username: "alice".into(),
        device_id: vec![2; 16],
    };
    let recipients = [bob()];
    let commit = Append {
        conversation: b"conversation",
        message_id: &[1; 16],
        kind: Kind::Commit,
        epoch: u64::MAX,
        payload: b"ciphertext",
        recipients: &recipients,
    };
    let outcome = store.append(&alice, &commit, None, &[], 1_800_000_000);
    assert!(outcome.is_err(), "{outcome:?}");
}
