//! What the server keeps and logs while two people talk through the `sotto` binary: no
//! message text, no password, no passphrase — on disk, in its database, or in its log at
//! the most detailed level. The profiles on disk hold no message text either.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Mutex, Once};

use common::*;

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| sotto_server::logging::init_with_writer("trace", || Capture));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_never_stores_or_logs_texts_passwords_or_passphrases() {
    capture_logs();
    let server = Server::start().await;
    let (root, alice, bob) = alice_and_bob(&server).await;
    let laptop = User {
        name: "bob".into(),
        profile: root.path().join("bob-laptop"),
        server: server.url.clone(),
    };
    laptop
        .ok(&["login", "bob", "--accept-ephemerality-policy"])
        .await;

    let secret_texts = ["the launch code is 0000", "meet at the north gate"];
    alice
        .ok(&["send", "bob", secret_texts[0], "--burn-on-read"])
        .await;
    bob.ok(&["sync"]).await;
    bob.ok(&["send", "alice", secret_texts[1]]).await;
    alice.ok(&["sync"]).await;
    laptop.ok(&["sync"]).await;
    bob.ok(&["read", "alice"]).await;

    let stored = server.stored_bytes();
    let logs = LOGS.lock().unwrap().clone();
    assert!(!logs.is_empty(), "no log lines were captured");
    let needles: Vec<Vec<u8>> = secret_texts
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .chain([password("alice").into_bytes(), password("bob").into_bytes()])
        .chain([PASSPHRASE.as_bytes().to_vec()])
        .collect();
    for needle in &needles {
        let shown = String::from_utf8_lossy(needle);
        assert!(
            !stored.windows(needle.len()).any(|w| w == &needle[..]),
            "server stored {shown:?}"
        );
        assert!(
            !logs.windows(needle.len()).any(|w| w == &needle[..]),
            "server logged {shown:?}"
        );
        for profile in [&alice.profile, &bob.profile, &laptop.profile] {
            assert!(
                !dir_contains(profile, needle),
                "{} holds {shown:?}",
                profile.display()
            );
        }
    }
}
