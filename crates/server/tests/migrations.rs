//! Opening a store migrates it, on both back-ends: opening a migrated store again changes
//! nothing, a store written by a newer server is refused, and two servers starting at
//! once on an empty store both come up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use sotto_server::storage::{self, StoreError};

/// The schema version, read the back-end's own way.
async fn version(stored: &Stored) -> i64 {
    if stored.is_postgres() {
        stored.count("SELECT version FROM schema_version").await
    } else {
        stored.count("PRAGMA user_version").await
    }
}

async fn set_version(stored: &Stored, version: i64) {
    if stored.is_postgres() {
        stored
            .execute(&format!("UPDATE schema_version SET version = {version}"))
            .await;
    } else {
        stored
            .execute(&format!("PRAGMA user_version = {version}"))
            .await;
    }
}

async fn a_second_open_of_a_migrated_store_changes_nothing(db: Db) {
    let (stored, store) = open_store(&db).await;
    store
        .create_account("alice", &[4; 97], "alice", 1_800_000_000)
        .await
        .unwrap();
    let migrated = version(&stored).await;
    assert!(migrated >= 1);
    // On PostgreSQL, the transaction that last wrote the version row.
    let writer = "SELECT xmin::text::bigint FROM schema_version";
    let written_by = if stored.is_postgres() {
        Some(stored.count(writer).await)
    } else {
        None
    };
    drop(store);

    let again = storage::open(&stored.config().backend()).await.unwrap();
    assert_eq!(version(&stored).await, migrated);
    if let Some(written_by) = written_by {
        assert_eq!(
            stored.count(writer).await,
            written_by,
            "version row rewritten"
        );
    }
    assert!(again.account("alice").await.unwrap().is_some());
}

async fn a_store_from_a_newer_server_is_refused(db: Db) {
    let (stored, store) = open_store(&db).await;
    drop(store);
    let newer = version(&stored).await + 1;
    set_version(&stored, newer).await;
    match storage::open(&stored.config().backend()).await {
        Err(StoreError::TooNew(v)) => assert_eq!(v, newer),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
    assert_eq!(
        version(&stored).await,
        newer,
        "the newer schema was touched"
    );
}

async fn servers_starting_at_once_on_an_empty_store_both_come_up(db: Db) {
    let stored = Stored::new(&db).await;
    std::fs::create_dir_all(&stored.dir).unwrap();
    let backend = stored.config().backend();
    // Both opens run at once (on PostgreSQL their statements interleave); exactly one
    // migrates, the other finds the work done.
    let (first, second) = tokio::join!(storage::open(&backend), storage::open(&backend));
    let (first, second) = (first.unwrap(), second.unwrap());
    first
        .create_account("alice", &[4; 97], "alice", 1_800_000_000)
        .await
        .unwrap();
    assert!(second.account("alice").await.unwrap().is_some());
    let migrated = version(&stored).await;
    assert!(migrated >= 1);
    if stored.is_postgres() {
        assert_eq!(migrated, storage::postgres::SCHEMA_VERSION);
    }
}

on_both_backends!(
    a_second_open_of_a_migrated_store_changes_nothing,
    a_store_from_a_newer_server_is_refused,
    servers_starting_at_once_on_an_empty_store_both_come_up,
);
