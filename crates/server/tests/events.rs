//! The account-event log: time, kind and the acting user — or, in the privacy profile, a
//! salted hash of the acting user that is stable across restarts and names no one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

async fn the_privacy_profile_logs_a_salted_hash_of_the_actor(db: Db) {
    let stored = Stored::new(&db).await;
    let mut config = stored.config();
    config.privacy_profile = true;
    let server = TestServer::start_with(stored, config.clone()).await;
    let (_, device) = registered(&server, "alice").await;
    login(&server, "alice", &device).await;
    let stored = server.stop().await;
    // Restarted on the same data, the same user gets the same hash.
    let server = TestServer::start_with(stored, config).await;
    login(&server, "alice", &device).await;

    let rows = server
        .stored
        .text_rows("SELECT kind, sender FROM events ORDER BY at")
        .await;
    let kinds: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(kinds, ["registration", "login", "login"]);
    let actor = &rows[0][1];
    assert!(
        rows.iter().all(|r| &r[1] == actor),
        "one stable hash: {rows:?}"
    );
    assert_eq!(actor.len(), 64);
    assert!(actor.bytes().all(|b| b.is_ascii_hexdigit()));
    // Not the bare hash of the name: without the server's secret salt it cannot be
    // recomputed from a list of user names.
    let unsalted = sotto_core::crypto::sha256(b"alice");
    let unsalted: String = unsalted.iter().map(|b| format!("{b:02x}")).collect();
    assert_ne!(actor, &unsalted);
}

async fn without_the_privacy_profile_events_name_the_actor(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, device) = registered(&server, "alice").await;
    login(&server, "alice", &device).await;
    let rows = server
        .stored
        .text_rows("SELECT kind, sender FROM events ORDER BY at")
        .await;
    assert!(rows.iter().all(|r| r[1] == "alice"), "{rows:?}");
}

on_both_backends!(
    the_privacy_profile_logs_a_salted_hash_of_the_actor,
    without_the_privacy_profile_events_name_the_actor,
);
