//! Safety numbers, verification, and a verified contact whose key changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sotto_client::{ClientError, SendOptions};

#[tokio::test]
async fn a_changed_key_of_a_verified_contact_blocks_sending_until_verified_again() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let mut bob = person(&server, &profiles, "bob").await;
    let mallory = person(&server, &profiles, "mallory").await;

    let at_alice = alice.safety("bob").await.unwrap();
    let at_bob = bob.safety("alice").await.unwrap();
    assert_eq!(at_alice.number.digits(), at_bob.number.digits());
    let wrong = alice.verify("bob", &"1".repeat(60)).await.unwrap_err();
    assert!(
        matches!(wrong, ClientError::SafetyNumberMismatch(_)),
        "{wrong}"
    );
    alice
        .verify("bob", &at_alice.number.to_string())
        .await
        .unwrap();
    alice
        .send_text("bob", "verified hello", SendOptions::default())
        .await
        .unwrap();

    // The server now publishes another root key for bob (mallory's), as a compromised
    // server would.
    let db = rusqlite::Connection::open(server.data.path().join("sotto.sqlite3")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute(
        "UPDATE accounts SET root_public_key = ?1 WHERE username = 'bob'",
        [mallory.identity().root_key.as_bytes()],
    )
    .unwrap();

    let blocked = alice
        .send_text("bob", "are you there", SendOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(blocked, ClientError::VerifiedKeyChanged { .. }),
        "{blocked}"
    );
    assert!(blocked.to_string().contains("sotto verify bob"));
    let safety = alice.safety("bob").await.unwrap();
    assert!(safety.changed && !safety.verified);
    assert_ne!(safety.number.digits(), at_alice.number.digits());
    alice
        .verify("bob", &safety.number.to_string())
        .await
        .unwrap();
    assert!(alice.contact("bob").unwrap().unwrap().verified);
}

#[tokio::test]
async fn a_key_that_changes_back_to_the_verified_one_unblocks_without_pinning_the_impostor() {
    let server = Server::start().await;
    let profiles = Profiles::new();
    let mut alice = person(&server, &profiles, "alice").await;
    let bob = person(&server, &profiles, "bob").await;
    let mallory = person(&server, &profiles, "mallory").await;
    let real = alice.safety("bob").await.unwrap();
    alice.verify("bob", &real.number.to_string()).await.unwrap();
    alice
        .send_text("bob", "first", SendOptions::default())
        .await
        .unwrap();

    let db = rusqlite::Connection::open(server.data.path().join("sotto.sqlite3")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let set_key = |key: &[u8]| {
        db.execute(
            "UPDATE accounts SET root_public_key = ?1 WHERE username = 'bob'",
            [key],
        )
        .unwrap();
    };
    set_key(mallory.identity().root_key.as_bytes());
    let fake = alice.safety("bob").await.unwrap();
    assert!(fake.changed && !fake.verified);
    assert!(alice
        .send_text("bob", "blocked", SendOptions::default())
        .await
        .is_err());

    // The server serves bob's real key again: the real number is shown and verified, and
    // sending works; the impostor's number is refused.
    set_key(bob.identity().root_key.as_bytes());
    let again = alice.safety("bob").await.unwrap();
    assert_eq!(again.number.digits(), real.number.digits());
    assert!(again.verified && !again.changed);
    let wrong = alice
        .verify("bob", &fake.number.to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, ClientError::SafetyNumberMismatch(_)),
        "{wrong}"
    );
    alice
        .send_text("bob", "back", SendOptions::default())
        .await
        .unwrap();
}
