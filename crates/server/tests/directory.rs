//! Contact discovery and attachments over real HTTP, on both back-ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use reqwest::StatusCode;
use sotto_api::{
    AttachmentStored, Bytes, ContactMatches, DiscoverySalt, ErrorCode, LookupContacts,
    PublishContacts,
};
use sotto_core::discovery::contact_hash;
use sotto_server::attachments::MAX_ATTACHMENT;
use sotto_server::discovery::{MAX_LOOKUP, MAX_LOOKUPS_PER_DAY};
use sotto_server::storage::{self, AttachmentRow};

async fn salt(server: &TestServer) -> Vec<u8> {
    let salt: DiscoverySalt = server
        .http
        .get(server.url("/v1/discovery/salt"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    salt.salt.0
}

async fn publish(server: &TestServer, token: &str, hashes: Vec<Vec<u8>>) -> reqwest::Response {
    let body = PublishContacts {
        hashes: hashes.into_iter().map(Bytes).collect(),
    };
    server
        .http
        .put(server.url("/v1/discovery"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn lookup(server: &TestServer, token: &str, hashes: Vec<Vec<u8>>) -> reqwest::Response {
    let body = LookupContacts {
        hashes: hashes.into_iter().map(Bytes).collect(),
    };
    server
        .http
        .post(server.url("/v1/discovery/lookup"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn only_published_hashes_match_and_looked_up_ones_are_not_kept(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, alice) = registered(&server, "alice").await;
    let (_, bob) = registered(&server, "bob").await;
    let (alice, bob) = (
        login(&server, "alice", &alice).await,
        login(&server, "bob", &bob).await,
    );
    let salt = salt(&server).await;
    assert_eq!(salt.len(), 32);
    let alice_mail = contact_hash("Alice@Example.org ", &salt).unwrap().to_vec();
    let unknown = contact_hash("+41 79 555 01 02", &salt).unwrap().to_vec();

    let response = publish(&server, &alice, vec![alice_mail.clone()]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let looked_up = contact_hash("alice@example.org", &salt).unwrap().to_vec();
    let found: ContactMatches = lookup(&server, &bob, vec![unknown.clone(), looked_up])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found.matches.len(), 1, "only the match comes back");
    assert_eq!(found.matches[0].username, "alice");
    assert_eq!(found.matches[0].hash.0, alice_mail);
    assert_eq!(found.remaining_today, MAX_LOOKUPS_PER_DAY - 2);
    // The hash bob looked up (and did not match) is stored nowhere.
    assert!(!server.stored.contains(&unknown).await);

    // Withdrawing: alice publishes nothing, and no one finds her any more.
    publish(&server, &alice, vec![]).await;
    let found: ContactMatches = lookup(&server, &bob, vec![alice_mail])
        .await
        .json()
        .await
        .unwrap();
    assert!(found.matches.is_empty());

    // The salt is the deployment's: the same after a restart.
    let stored = server.stop().await;
    let server = TestServer::start_on(stored).await;
    assert_eq!(self::salt(&server).await, salt);
}

async fn lookups_are_validated_and_throttled_per_day(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, bob) = registered(&server, "bob").await;
    let bob = login(&server, "bob", &bob).await;
    let response = lookup(&server, "nope", vec![vec![0; 32]]).await;
    error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    let response = lookup(&server, &bob, vec![vec![0; 31]]).await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    let response = lookup(&server, &bob, vec![vec![0; 32]; MAX_LOOKUP + 1]).await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    let response = publish(&server, &bob, vec![vec![0; 32]; 17]).await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;

    let rounds = MAX_LOOKUPS_PER_DAY / MAX_LOOKUP as u64;
    for round in 1..=rounds {
        let batch: Vec<Vec<u8>> = (0..MAX_LOOKUP)
            .map(|i| {
                let mut h = vec![round as u8; 32];
                h[..8].copy_from_slice(&(i as u64).to_be_bytes());
                h
            })
            .collect();
        let found: ContactMatches = lookup(&server, &bob, batch).await.json().await.unwrap();
        assert_eq!(
            found.remaining_today,
            MAX_LOOKUPS_PER_DAY - round * MAX_LOOKUP as u64
        );
    }
    // The day's allowance is spent: even one more hash is refused.
    let response = lookup(&server, &bob, vec![vec![9; 32]]).await;
    error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
}

async fn upload(server: &TestServer, token: &str, blob: Vec<u8>) -> reqwest::Response {
    server
        .http
        .post(server.url("/v1/attachments"))
        .bearer_auth(token)
        .body(blob)
        .send()
        .await
        .unwrap()
}

async fn fetch(server: &TestServer, id: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = server
        .http
        .get(server.url(&format!("/v1/attachments/{id}")));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Capability {token}"));
    }
    request.send().await.unwrap()
}

async fn attachments_are_fetched_by_capability_and_deleted(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, alice) = registered(&server, "alice").await;
    let alice = login(&server, "alice", &alice).await;
    let blob: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let response = upload(&server, &alice, blob.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored: AttachmentStored = response.json().await.unwrap();
    assert!(!format!("{stored:?}").contains(&stored.token));

    let got = fetch(&server, &stored.id, Some(&stored.token)).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().to_vec(), blob);
    // Without the capability, or with another token, the blob is not there.
    let response = fetch(&server, &stored.id, None).await;
    error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    let wrong = URL_SAFE_NO_PAD.encode([0u8; 32]);
    let response = fetch(&server, &stored.id, Some(&wrong)).await;
    error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    // The token is stored only hashed.
    let token = URL_SAFE_NO_PAD.decode(&stored.token).unwrap();
    assert!(!server.stored.contains(&token).await);

    let url = server.url(&format!("/v1/attachments/{}", stored.id));
    let auth = format!("Capability {}", stored.token);
    let deleted = server.http.delete(&url).header("Authorization", &auth);
    assert_eq!(
        deleted.send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let response = fetch(&server, &stored.id, Some(&stored.token)).await;
    error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    assert_eq!(
        server
            .stored
            .count("SELECT COUNT(*) FROM attachments")
            .await,
        0
    );
}

async fn bad_attachments_are_refused(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, alice) = registered(&server, "alice").await;
    let alice = login(&server, "alice", &alice).await;
    let response = upload(&server, "nope", vec![1]).await;
    error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    let response = upload(&server, &alice, vec![]).await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    let response = upload(&server, &alice, vec![0; MAX_ATTACHMENT + 1]).await;
    error(response, StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge).await;
    let response = fetch(&server, "zz", Some("x")).await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    assert_eq!(
        server
            .stored
            .count("SELECT COUNT(*) FROM attachments")
            .await,
        0
    );
}

async fn attachments_expire_under_the_injected_clock(db: Db) {
    let stored = Stored::new(&db).await;
    std::fs::create_dir_all(&stored.dir).unwrap();
    let store = storage::open(&stored.config().backend()).await.unwrap();
    let t0 = 1_800_000_000;
    let row = AttachmentRow {
        token_hash: vec![1; 32],
        blob: vec![2; 10],
        expires_at: t0 + 100,
    };
    store
        .put_attachment(&[3; 16], "alice", &row, 1 << 20)
        .await
        .unwrap();
    assert!(store.attachment(&[3; 16], t0 + 99).await.unwrap().is_some());
    store.sweep(t0 + 99, 3600).await.unwrap();
    assert_eq!(stored.count("SELECT COUNT(*) FROM attachments").await, 1);
    // Past its expiry it is no longer served, and the sweeper deletes it.
    assert!(store
        .attachment(&[3; 16], t0 + 100)
        .await
        .unwrap()
        .is_none());
    store.sweep(t0 + 100, 3600).await.unwrap();
    assert_eq!(stored.count("SELECT COUNT(*) FROM attachments").await, 0);
    // A user's stored bytes are capped.
    let big = AttachmentRow {
        expires_at: t0 + 1000,
        ..row
    };
    store
        .put_attachment(&[4; 16], "alice", &big, 15)
        .await
        .unwrap();
    assert!(store
        .put_attachment(&[5; 16], "alice", &big, 15)
        .await
        .is_err());
}

on_both_backends!(
    only_published_hashes_match_and_looked_up_ones_are_not_kept,
    lookups_are_validated_and_throttled_per_day,
    attachments_are_fetched_by_capability_and_deleted,
    bad_attachments_are_refused,
    attachments_expire_under_the_injected_clock,
);
