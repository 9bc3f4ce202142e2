//! What a compromised server holds after real clients used it: every byte of its data
//! directory (the SQLite database, its write-ahead log, attachment files) is read, as
//! an attacker who took the machine would, after a session of 1:1 and group messages, a
//! named group, a file, receipts and a password-protected key backup. None of the
//! plaintexts, file contents, group name, passwords or profile passphrase is there, in
//! any common spelling, and no client address either. (The server's logs and event
//! log are checked against the real binary at TRACE in `sotto-server`'s `privacy.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use base64::Engine;
use common::*;
use sotto_client::SendOptions;

/// Every file under `dir`, read whole.
fn everything_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(everything_under(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// `secret` as raw bytes, hex, and base64 (standard and URL-safe) at each of the three
/// alignments it could have inside a longer encoded value (the last, partial characters
/// dropped, since they depend on what follows).
fn spellings(secret: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![secret.to_vec(), hex.into_bytes()];
    for engine in [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for skip in 0..3 {
            let encoded = engine.encode(&secret[skip..]).into_bytes();
            out.push(encoded[..encoded.len() - 3].to_vec());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_servers_disk_holds_no_plaintext_password_or_address() {
    let server = Server::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let mut carol = person(&server, "carol").await;
    let secrets: Vec<(&str, &[u8])> = vec![
        ("1:1 text", b"the vault code is 7291"),
        ("group text", b"quarterly numbers look grim"),
        ("group name", b"merger-taskforce"),
        ("file", b"CONFIDENTIAL attachment body"),
        ("alice's password", b"password of alice"),
        ("bob's password", b"password of bob"),
        ("profile passphrase", PASSPHRASE),
    ];

    alice
        .client
        .send_text(
            "bob",
            "the vault code is 7291",
            SendOptions {
                burn_on_read: true,
                ..SendOptions::default()
            },
        )
        .await
        .unwrap();
    let group = alice
        .client
        .create_group(group("merger-taskforce", &["bob", "carol"]))
        .await
        .unwrap();
    alice
        .client
        .send_text(
            &group.id,
            "quarterly numbers look grim",
            SendOptions::default(),
        )
        .await
        .unwrap();
    let file = server.profiles.path().join("memo.txt");
    std::fs::write(&file, b"CONFIDENTIAL attachment body").unwrap();
    alice
        .client
        .send_file(&group.id, &file, SendOptions::default())
        .await
        .unwrap();
    for member in [&mut bob, &mut carol] {
        let report = member.client.sync().await.unwrap();
        assert!(!report.messages.is_empty());
        for conversation in member.client.conversations().unwrap() {
            member.client.mark_read(&conversation.id).await.unwrap();
        }
    }
    alice.client.sync().await.unwrap();
    // Everything read and acknowledged; the server's copy of the session is what is left
    // on its disk (deleted rows may linger in free pages and the log until overwritten).
    let files = everything_under(server.data.path());
    // A positive control: what the server must know (account names) is found.
    assert!(
        files.iter().any(|(_, bytes)| contains(bytes, b"carol")),
        "the scan did not read the store"
    );
    for (what, secret) in &secrets {
        for spelling in spellings(secret) {
            for (path, bytes) in &files {
                assert!(
                    !contains(bytes, &spelling),
                    "{what} found in {path} (as {:?})",
                    String::from_utf8_lossy(&spelling)
                );
            }
        }
    }
    for (path, bytes) in &files {
        assert!(!contains(bytes, b"127.0.0.1"), "a client address in {path}");
    }
}
