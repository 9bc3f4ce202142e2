//! The KeyPackage pool over real HTTP: validated uploads, claims that never serve a
//! one-time KeyPackage twice, the last-resort fallback and notice, and claim rate limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use reqwest::StatusCode;
use sotto_api::{ClaimedKeyPackages, ErrorCode, KeyPackagePool};
use sotto_core::device::{expect_key_package, NewDevice};
use sotto_server::key_packages::{
    LOW_WATER, MAX_CLAIMS_PER_HOUR, MAX_ONE_TIME_CLAIMS_PER_TARGET_PER_HOUR, MAX_POOL,
};
use sotto_server::storage::{ClaimLimits, DeviceRef, Store, StoreError};

async fn claim(server: &TestServer, token: &str, user: &str) -> reqwest::Response {
    let url = server.url(&format!("/v1/accounts/{user}/key-packages/claim"));
    server
        .http
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn pool(server: &TestServer, token: &str) -> KeyPackagePool {
    let url = server.url("/v1/key-packages");
    server
        .http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn one_time_key_packages_are_served_once_then_the_last_resort(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (bob_root, bob) = registered(&server, "bob").await;
    let (_, alice) = registered(&server, "alice").await;
    let (bob_token, alice_token) = (
        login(&server, "bob", &bob).await,
        login(&server, "alice", &alice).await,
    );
    let dev = mls_device(&bob);
    let one_time: Vec<Vec<u8>> = (0..2).map(|_| dev.key_package().unwrap()).collect();
    let last = dev.last_resort_key_package().unwrap();
    let response = server
        .upload_key_packages(&bob_token, one_time.clone(), Some(last.clone()))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let status: KeyPackagePool = response.json().await.unwrap();
    assert_eq!(
        (status.available, status.has_last_resort, status.low_water),
        (2, true, 2 <= LOW_WATER)
    );

    let mut served = Vec::new();
    for _ in 0..3 {
        let got: ClaimedKeyPackages = claim(&server, &alice_token, "bob")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(got.key_packages.len(), 1, "one per device");
        let kp = &got.key_packages[0];
        // The claimer can check whose it is against the root key it pinned.
        let who = expect_key_package(
            &kp.key_package.0,
            bob_root.user(),
            &bob_root.public_key().fingerprint(),
        )
        .unwrap();
        assert_eq!(who.device_id.to_hex(), kp.device_id);
        served.push((kp.key_package.0.clone(), kp.last_resort));
    }
    // Both one-time KeyPackages, each once, then the last-resort one.
    assert!(!served[0].1 && !served[1].1 && served[2].1);
    assert_ne!(served[0].0, served[1].0);
    assert!(one_time.contains(&served[0].0) && one_time.contains(&served[1].0));
    assert_eq!(served[2].0, last);

    // Bob is told his last resort was used (once), and that his pool is low.
    let status = pool(&server, &bob_token).await;
    assert!(status.last_resort_used && status.low_water && status.available == 0);
    assert!(!pool(&server, &bob_token).await.last_resort_used);
}

async fn uploads_are_validated_and_bounded(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, bob) = registered(&server, "bob").await;
    let (_, mallory) = registered(&server, "mallory").await;
    let bob_token = login(&server, "bob", &bob).await;
    // Another device of bob's (not registered as the session's device).
    let other = mls_device(&NewDevice::generate(&root("bob"), 1).unwrap());
    let response = server
        .upload_key_packages(&bob_token, vec![other.key_package().unwrap()], None)
        .await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    // Mallory's KeyPackage uploaded as bob's.
    let response = server
        .upload_key_packages(
            &bob_token,
            vec![mls_device(&mallory).key_package().unwrap()],
            None,
        )
        .await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    // Garbage, and a KeyPackage with a broken signature.
    let mut broken = mls_device(&bob).key_package().unwrap();
    let last = broken.len() - 1;
    broken[last] ^= 1;
    for bad in [vec![1, 2, 3], broken] {
        let response = server
            .upload_key_packages(&bob_token, vec![bad], None)
            .await;
        error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    }
    // Too many in one upload.
    let kp = mls_device(&bob).key_package().unwrap();
    let response = server
        .upload_key_packages(&bob_token, vec![kp; 101], None)
        .await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    // Without a session nothing is accepted.
    let response = server.upload_key_packages("nope", vec![], None).await;
    error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    assert_eq!(pool(&server, &bob_token).await.available, 0);
}

async fn concurrent_claims_never_share_a_one_time_key_package(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, bob) = registered(&server, "bob").await;
    let bob_token = login(&server, "bob", &bob).await;
    let dev = mls_device(&bob);
    let kps: Vec<Vec<u8>> = (0..5).map(|_| dev.key_package().unwrap()).collect();
    let last = dev.last_resort_key_package().unwrap();
    server
        .upload_key_packages(&bob_token, kps, Some(last))
        .await;
    let mut tokens = Vec::new();
    for i in 0..10 {
        let name = format!("claimer{i}");
        let (_, device) = registered(&server, &name).await;
        tokens.push(login(&server, &name, &device).await);
    }
    // All ten claims race on separate tasks (the test runtime is multi-threaded).
    let url = server.url("/v1/accounts/bob/key-packages/claim");
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (http, url) = (server.http.clone(), url.clone());
            tokio::spawn(async move {
                let response = http.post(url).bearer_auth(token).send().await.unwrap();
                response.json::<ClaimedKeyPackages>().await.unwrap()
            })
        })
        .collect();
    let mut one_time = Vec::new();
    let mut last_resort = 0;
    for task in tasks {
        let got = task.await.unwrap();
        let kp = &got.key_packages[0];
        if kp.last_resort {
            last_resort += 1;
        } else {
            one_time.push(kp.key_package.0.clone());
        }
    }
    let distinct: std::collections::HashSet<_> = one_time.iter().collect();
    assert_eq!((one_time.len(), distinct.len(), last_resort), (5, 5, 5));
}

async fn claims_are_rate_limited_per_requester_and_target(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, bob) = registered(&server, "bob").await;
    let (_, alice) = registered(&server, "alice").await;
    let (_, carol) = registered(&server, "carol").await;
    let bob_token = login(&server, "bob", &bob).await;
    let alice_token = login(&server, "alice", &alice).await;
    let carol_token = login(&server, "carol", &carol).await;
    let dev = mls_device(&bob);
    let kps: Vec<Vec<u8>> = (0..40).map(|_| dev.key_package().unwrap()).collect();
    assert_eq!(
        server
            .upload_key_packages(&bob_token, kps, None)
            .await
            .status(),
        StatusCode::OK
    );

    for _ in 0..MAX_CLAIMS_PER_HOUR {
        assert_eq!(
            claim(&server, &alice_token, "bob").await.status(),
            StatusCode::OK
        );
    }
    let response = claim(&server, &alice_token, "bob").await;
    error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    // Another requester is not affected, and the refused claim took nothing.
    let got: ClaimedKeyPackages = claim(&server, &carol_token, "bob")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got.key_packages.len(), 1);
    assert_eq!(
        pool(&server, &bob_token).await.available,
        40 - MAX_CLAIMS_PER_HOUR - 1
    );
    error(
        claim(&server, &alice_token, "nobody").await,
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
    )
    .await;
}

async fn a_pool_is_capped_and_large_uploads_fit_their_own_body_limit(db: Db) {
    let server = TestServer::start(db.clone()).await;
    let (_, bob) = registered(&server, "bob").await;
    let bob_token = login(&server, "bob", &bob).await;
    let dev = mls_device(&bob);
    // 100 KeyPackages are about 160 kB of JSON: over the general 64 KiB body limit, within
    // the upload route's own.
    for _ in 0..2 {
        let kps: Vec<Vec<u8>> = (0..100).map(|_| dev.key_package().unwrap()).collect();
        assert_eq!(
            server
                .upload_key_packages(&bob_token, kps, None)
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        pool(&server, &bob_token).await.available,
        sotto_server::key_packages::MAX_POOL
    );
    let response = server
        .upload_key_packages(&bob_token, vec![dev.key_package().unwrap()], None)
        .await;
    error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
}

/// A store with user "bob" whose one device holds `one_time` one-time KeyPackages
/// (`[i; 32]` each) and a last-resort one (`[255; 32]`).
async fn bob_with_pool(db: &Db, one_time: u8) -> (Stored, Store, DeviceRef) {
    let (stored, store) = open_store(db).await;
    let bob = DeviceRef {
        username: "bob".into(),
        device_id: vec![1; 16],
    };
    store
        .create_account("bob", &[9; 97], "bob", NOW)
        .await
        .unwrap();
    store
        .put_device("bob", &bob.device_id, b"certificate", NOW)
        .await
        .unwrap();
    let kps: Vec<Vec<u8>> = (0..one_time).map(|i| vec![i; 32]).collect();
    store
        .add_key_packages(&bob, &kps, Some(&[255; 32]), MAX_POOL, NOW)
        .await
        .unwrap();
    (stored, store, bob)
}

const NOW: u64 = 1_800_000_000;

fn limits() -> ClaimLimits {
    ClaimLimits {
        per_requester: MAX_CLAIMS_PER_HOUR,
        one_time_per_target: MAX_ONE_TIME_CLAIMS_PER_TARGET_PER_HOUR,
        window_start: NOW - 3600,
    }
}

/// Past the per-target allowance, claims by a crowd of requesters get only the
/// last-resort KeyPackage: the pool is not drained, and the owner is still reachable.
async fn a_crowd_of_requesters_cannot_drain_a_pool(db: Db) {
    let (_stored, store, bob) = bob_with_pool(&db, 200).await;
    let allowance = MAX_ONE_TIME_CLAIMS_PER_TARGET_PER_HOUR;
    for i in 0..allowance + 5 {
        let claimed = store
            .claim_key_packages(&format!("sybil{i}"), "bob", limits(), NOW)
            .await
            .unwrap();
        assert_eq!(claimed[0].last_resort, i >= allowance, "claim {i}");
    }
    let status = store.pool_status(&bob).await.unwrap();
    assert_eq!(status.available, 200 - allowance);
    assert!(status.last_resort_used);
    // An hour later the allowance is fresh again.
    let later = ClaimLimits {
        window_start: NOW + 1,
        ..limits()
    };
    let claimed = store
        .claim_key_packages("friend", "bob", later, NOW + 3601)
        .await
        .unwrap();
    assert!(!claimed[0].last_resort);
}

/// Forty requesters claim from one device's pool of 25 at once: each one-time KeyPackage
/// goes to exactly one of them, the other 15 get the last-resort one.
async fn many_concurrent_claims_never_serve_a_key_package_twice(db: Db) {
    let (_stored, store, bob) = bob_with_pool(&db, 25).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let requester = format!("claimer{i}");
                store
                    .claim_key_packages(&requester, "bob", limits(), NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut one_time, mut last_resort) = (Vec::new(), 0);
    for task in tasks {
        let claimed = task.await.unwrap();
        assert_eq!(claimed.len(), 1);
        if claimed[0].last_resort {
            assert_eq!(claimed[0].key_package, [255; 32]);
            last_resort += 1;
        } else {
            one_time.push(claimed[0].key_package.clone());
        }
    }
    let distinct: std::collections::HashSet<_> = one_time.iter().collect();
    assert_eq!((one_time.len(), distinct.len(), last_resort), (25, 25, 15));
    let status = store.pool_status(&bob).await.unwrap();
    assert_eq!((status.available, status.last_resort_used), (0, true));
}

/// One requester fires twice its hourly allowance of claims at once: exactly the
/// allowance is served, and the refused claims took nothing.
async fn the_claim_rate_limit_holds_under_concurrent_claims(db: Db) {
    let (_stored, store, bob) = bob_with_pool(&db, 100).await;
    let tasks: Vec<_> = (0..2 * MAX_CLAIMS_PER_HOUR)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_key_packages("alice", "bob", limits(), NOW)
                    .await
            })
        })
        .collect();
    let (mut served, mut limited) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(claimed) => {
                assert!(!claimed[0].last_resort);
                served += 1;
            }
            Err(StoreError::RateLimited) => limited += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        (served, limited),
        (MAX_CLAIMS_PER_HOUR, MAX_CLAIMS_PER_HOUR)
    );
    let status = store.pool_status(&bob).await.unwrap();
    assert_eq!(status.available, 100 - MAX_CLAIMS_PER_HOUR);
}

on_both_backends!(
    a_crowd_of_requesters_cannot_drain_a_pool,
    many_concurrent_claims_never_serve_a_key_package_twice,
    the_claim_rate_limit_holds_under_concurrent_claims,
    concurrent_claims_never_share_a_one_time_key_package,
    one_time_key_packages_are_served_once_then_the_last_resort,
    uploads_are_validated_and_bounded,
    claims_are_rate_limited_per_requester_and_target,
    a_pool_is_capped_and_large_uploads_fit_their_own_body_limit,
);
