//! A server killed with SIGKILL in the middle of a load, then restarted on the same data,
//! loses no message it acknowledged and delivers no acknowledged message again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use sotto_api::{Ack, Bytes, DeviceAddress, Inbox, SendMessage};
use sotto_core::policy::{BurnOnRead, Policy};
use tokio::sync::Notify;

/// Messages sent in all, by four concurrent senders.
const MESSAGES: usize = 240;
/// The server is killed once the reader has acknowledged this many.
const KILL_AFTER_ACKED: usize = 60;

/// A server process, killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the `sotto-server` binary on `stored` and returns it with its base URL.
fn spawn(stored: &Stored) -> (Process, String) {
    let config = stored.config();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sotto-server"));
    command
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&stored.dir)
        .env_remove("SOTTO_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = &config.database_url {
        command.env("SOTTO_DATABASE_URL", url);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
    };
    // Keep draining stdout so the server never blocks writing to it.
    std::thread::spawn(move || for _ in lines {});
    (Process(child), base)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn a_killed_server_loses_no_acknowledged_message(db: Db) {
    // Accounts, devices and sessions, set up through an in-process server on the store.
    let server = TestServer::start(db.clone()).await;
    let (alice_root, alice) = registered(&server, "alice").await;
    let (_, bob) = registered(&server, "bob").await;
    let alice_token = login(&server, "alice", &alice).await;
    let bob_token = login(&server, "bob", &bob).await;
    let bob_address = DeviceAddress {
        username: "bob".into(),
        device_id: bob.certificate.verify().unwrap().device_id.to_hex(),
    };
    // Real MLS ciphertexts of one conversation (bob never needs to decrypt them here).
    let policy = Policy::new(
        vec![alice_root.public_key().fingerprint()],
        3600,
        BurnOnRead::Allowed,
    )
    .unwrap();
    let mut conversation = mls_device(&alice).create_conversation(&policy).unwrap();
    let messages: Vec<SendMessage> = (0..MESSAGES)
        .map(|i| {
            let (_, payload) = conversation
                .send_text(&format!("message {i}"), 600, false, 1_800_000_000_000)
                .unwrap();
            SendMessage {
                message_id: hex(&sotto_core::crypto::random_array::<16>().unwrap()),
                payload: Bytes(payload),
                recipients: vec![bob_address.clone()],
                welcome: None,
                removed: vec![],
            }
        })
        .collect();
    let path = format!("/v1/conversations/{}/messages", hex(conversation.id()));
    let stored = server.stop().await;

    let (mut child, base) = spawn(&stored);
    let http = http_client();
    let confirmed = Arc::new(Mutex::new(HashSet::<String>::new()));
    let acked = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    // Read, and acknowledged by a request whose answer never came (the server died): the
    // ack may or may not have been committed, so these may or may not come again.
    let unsure = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let enough = Arc::new(Notify::new());

    // Four senders, each posting its share in order until the server goes away; the
    // second half of each share goes out only once the kill is under way, so the server
    // dies with sends in flight.
    let (killing, kill_started) = tokio::sync::watch::channel(false);
    let mut senders = Vec::new();
    for share in messages.chunks(MESSAGES / 4) {
        let (share, http, base, path) = (share.to_vec(), http.clone(), base.clone(), path.clone());
        let (token, confirmed) = (alice_token.clone(), Arc::clone(&confirmed));
        let mut kill_started = kill_started.clone();
        senders.push(tokio::spawn(async move {
            for (i, message) in share.into_iter().enumerate() {
                if i == MESSAGES / 8 {
                    kill_started.wait_for(|started| *started).await.unwrap();
                }
                let sent = http
                    .post(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .json(&message)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        confirmed.lock().unwrap().insert(message.message_id);
                    }
                    Ok(r) => panic!("unexpected answer {}", r.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    // bob reads and acknowledges; a message counts as received once its ack is answered.
    let reader = {
        let (http, base, token) = (http.clone(), base.clone(), bob_token.clone());
        let (acked, enough) = (Arc::clone(&acked), Arc::clone(&enough));
        let unsure = Arc::clone(&unsure);
        tokio::spawn(async move {
            let mut after = 0;
            loop {
                let Ok(response) = http
                    .get(format!("{base}/v1/inbox?after={after}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(inbox) = response.json::<Inbox>().await else {
                    return;
                };
                let Some(last) = inbox.messages.last() else {
                    continue;
                };
                after = last.cursor;
                let cursors = inbox.messages.iter().map(|m| m.cursor).collect();
                let ok = http
                    .post(format!("{base}/v1/inbox/ack"))
                    .bearer_auth(&token)
                    .json(&Ack { cursors })
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::NO_CONTENT);
                if !ok {
                    let payloads = inbox.messages.into_iter().map(|m| m.payload.0);
                    unsure.lock().unwrap().extend(payloads);
                    return;
                }
                let mut acked = acked.lock().unwrap();
                acked.extend(inbox.messages.into_iter().map(|m| m.payload.0));
                if acked.len() >= KILL_AFTER_ACKED {
                    enough.notify_one();
                }
            }
        })
    };
    enough.notified().await;
    killing.send(true).unwrap();
    tokio::task::yield_now().await;
    child.kill(); // SIGKILL: no chance to flush or shut down
    for task in senders {
        task.await.unwrap();
    }
    reader.await.unwrap();
    let confirmed = confirmed.lock().unwrap().clone();
    let acked = acked.lock().unwrap().clone();
    let unsure = unsure.lock().unwrap().clone();
    assert!(confirmed.len() < MESSAGES, "killed before the load ended");

    // Restarted on the same data, the client resends what was not confirmed (sends are
    // idempotent by id) and bob fetches what is left.
    let (mut child, base) = spawn(&stored);
    for message in &messages {
        let response = http
            .post(format!("{base}{path}"))
            .bearer_auth(&alice_token)
            .json(message)
            .send()
            .await
            .unwrap();
        let duplicate = response.status() == StatusCode::OK;
        assert!(duplicate || response.status() == StatusCode::CREATED);
        if confirmed.contains(&message.message_id) {
            assert!(duplicate, "a confirmed message was lost");
        }
    }
    let mut after_restart = Vec::new();
    let mut after = 0;
    loop {
        let inbox: Inbox = http
            .get(format!("{base}/v1/inbox?after={after}"))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let Some(last) = inbox.messages.last() else {
            break;
        };
        after = last.cursor;
        after_restart.extend(inbox.messages.into_iter().map(|m| m.payload.0));
    }
    child.kill();

    // Every message reached bob exactly once: what he acknowledged before the crash is
    // not delivered again, and nothing is missing — but for the messages whose ack was in
    // flight when the server died, which may have been committed (then they are gone) or
    // not (then they come again, once).
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for payload in acked.iter().chain(&after_restart) {
        *seen.entry(payload.clone()).or_default() += 1;
    }
    let missing: Vec<&Vec<u8>> = unsure.iter().filter(|p| !seen.contains_key(*p)).collect();
    assert_eq!(seen.len() + missing.len(), MESSAGES, "a message was lost");
    assert!(
        seen.values().all(|&n| n == 1),
        "an acknowledged message was delivered again"
    );
    assert!(acked.len() >= KILL_AFTER_ACKED);
}

on_both_backends!(a_killed_server_loses_no_acknowledged_message);
