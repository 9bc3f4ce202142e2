//! The lockout and pending logins at the storage interface, with an injected clock: the
//! counts hold under concurrent starts, and locks begin, double and end when the clock
//! says, without sleeping.

use sotto_server::storage::{LoginGate, PendingLogin, Store, LOCKOUT};

use crate::common::*;

const T: u64 = 1_800_000_000;

/// Runs `n` login starts for `user` at once at `now`: (counted, locked until).
async fn starts(store: &Store, user: &'static str, n: usize, now: u64) -> (usize, Vec<u64>) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.begin_login(user, now).await.unwrap() })
        })
        .collect();
    let (mut open, mut locked) = (0, Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            LoginGate::Open(_) => open += 1,
            LoginGate::Locked { until } => locked.push(until),
        }
    }
    (open, locked)
}

async fn with_alice(db: &Db) -> (Stored, Store) {
    let (stored, store) = open_store(db).await;
    store
        .create_account("alice", &[4; 97], "alice", T)
        .await
        .unwrap();
    store
        .put_password("alice", &[1; 192], b"sealed backup", T)
        .await
        .unwrap();
    (stored, store)
}

async fn concurrent_starts_are_counted_exactly_and_locks_follow_the_clock(db: Db) {
    let (_stored, store) = with_alice(&db).await;
    for user in ["alice", "ghost"] {
        let (open, locked) = starts(&store, user, 25, T).await;
        assert_eq!(open, LOCKOUT.max_failures as usize, "{user}");
        assert_eq!(locked, vec![T + 900; 15], "{user}");
        // The lock holds to the second, then ten more starts, then twice as long.
        assert_eq!(starts(&store, user, 1, T + 899).await.0, 0);
        assert_eq!(starts(&store, user, 12, T + 900).await.0, 10);
        let (open, locked) = starts(&store, user, 1, T + 900 + 1799).await;
        assert_eq!((open, locked), (0, vec![T + 900 + 1800]));
    }
    // Only the known user's start returns a record.
    match store.begin_login("alice", T + 2700).await.unwrap() {
        LoginGate::Open(record) => assert_eq!(record.as_deref(), Some(&vec![1; 192])),
        other => panic!("{other:?}"),
    }
    match store.begin_login("ghost", T + 2700).await.unwrap() {
        LoginGate::Open(record) => assert!(record.is_none()),
        other => panic!("{other:?}"),
    }
    // A success forgets everything, and releases the backup.
    let backup = store
        .complete_login("alice", "alice", T + 2701)
        .await
        .unwrap();
    assert_eq!(backup.as_deref(), Some(&b"sealed backup"[..]));
    assert_eq!(store.login_limit("alice").await.unwrap(), None);
    assert_eq!(
        store.complete_login("ghost", "ghost", T).await.unwrap(),
        None
    );
}

async fn starts_spread_over_windows_never_lock(db: Db) {
    let (_stored, store) = with_alice(&db).await;
    for hour in 0..5 {
        let now = T + hour * LOCKOUT.window_secs;
        assert_eq!(starts(&store, "alice", 9, now).await.0, 9);
    }
    let limit = store.login_limit("alice").await.unwrap().unwrap();
    assert_eq!((limit.failures, limit.locked_until), (9, 0));
}

fn pending(id: u8, user: &str, expires_at: u64) -> PendingLogin {
    PendingLogin {
        id_hash: vec![id; 32],
        username: user.into(),
        state: vec![id; 156],
        expires_at,
    }
}

async fn pending_logins_are_taken_once_and_expire(db: Db) {
    let (_stored, store) = with_alice(&db).await;
    store.put_login(&pending(1, "alice", T + 60)).await.unwrap();
    store.put_login(&pending(2, "alice", T + 60)).await.unwrap();
    store.put_login(&pending(3, "ghost", T + 60)).await.unwrap();
    let taken = store.take_login(&[1; 32], T + 59).await.unwrap();
    assert_eq!(taken, Some(pending(1, "alice", T + 60)));
    assert_eq!(store.take_login(&[1; 32], T + 59).await.unwrap(), None);
    // Expired: refused, and gone.
    assert_eq!(store.take_login(&[3; 32], T + 60).await.unwrap(), None);
    store.put_login(&pending(3, "ghost", T + 60)).await.unwrap();
    // A new password drops the logins started against the old one.
    store
        .put_password("alice", &[2; 192], b"new", T)
        .await
        .unwrap();
    assert_eq!(store.take_login(&[2; 32], T).await.unwrap(), None);
    // The sweeper deletes expired logins, and lockout rows once they have no effect.
    starts(&store, "ghost", 10, T).await;
    let swept = store.sweep(T + 60, 3600).await.unwrap();
    assert!(swept.expired >= 1);
    assert_eq!(store.take_login(&[3; 32], T).await.unwrap(), None);
    store.sweep(T + 900, 3600).await.unwrap();
    assert!(store.login_limit("ghost").await.unwrap().is_some());
    store
        .sweep(T + 900 + LOCKOUT.memory_secs, 3600)
        .await
        .unwrap();
    assert_eq!(store.login_limit("ghost").await.unwrap(), None);
    // Replacing the backup needs a password record.
    assert!(store.put_backup("bob", b"x", T).await.is_err());
    store.put_backup("alice", b"newer", T).await.unwrap();
    let released = store.complete_login("alice", "alice", T).await.unwrap();
    assert_eq!(released.as_deref(), Some(&b"newer"[..]));
}

crate::on_both_backends!(
    concurrent_starts_are_counted_exactly_and_locks_follow_the_clock,
    starts_spread_over_windows_never_lock,
    pending_logins_are_taken_once_and_expire,
);
