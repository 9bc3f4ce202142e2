//! Crashes at random points: `sotto` processes of the sender and the receiver are killed
//! (SIGKILL) at seeded random moments during a scripted exchange. Afterwards every message
//! whose send succeeded is shown exactly once, none twice, and the conversation still
//! works. The seed comes from `SOTTO_FAULT_SEED` (default 1) and is printed, so a failure
//! can be repeated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::process::Child;
use std::time::Duration;

use common::seeded::Seeded;
use common::*;

/// Lets `child` run for `ms` milliseconds, then kills it; true if it finished first
/// with success. The pause places the fault; it synchronises nothing.
async fn kill_after(mut child: Child, ms: u64) -> bool {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    match child.try_wait().unwrap() {
        Some(status) => status.success(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_clients_lose_no_acknowledged_message_and_show_none_twice() {
    let (seed, mut random) = Seeded::from_env("killed clients");
    let server = Server::start().await;
    let (_root, alice, bob) = alice_and_bob(&server).await;
    alice.ok(&["send", "bob", "hello"]).await;
    bob.ok(&["sync"]).await;

    let mut acknowledged = vec!["hello".to_owned()];
    let mut attempted = vec!["hello".to_owned()];
    for round in 0..12 {
        let text = format!("message {round}");
        attempted.push(text.clone());
        let mut send = alice.command();
        send.args(["send", "bob", &text])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = send.spawn().unwrap();
        // Most sends are left alone; some are killed somewhere in their run.
        let sent = if random.below(3) == 0 {
            kill_after(child, 100 + random.below(600)).await
        } else {
            let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
                .await
                .unwrap();
            output.status.success()
        };
        if sent {
            acknowledged.push(text);
        }
        let mut sync = bob.command();
        sync.args(["sync"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = sync.spawn().unwrap();
        kill_after(child, 100 + random.below(700)).await;
    }
    // Both recover: a full sync on each side, then one more exchange.
    alice.ok(&["sync"]).await;
    bob.ok(&["sync"]).await;
    alice.ok(&["send", "bob", "after the crashes"]).await;
    assert_eq!(texts(&bob.json(&["sync"]).await), ["after the crashes"]);

    let shown = texts(&bob.json(&["messages", "alice"]).await);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for text in &shown {
        *counts.entry(text.as_str()).or_default() += 1;
    }
    for text in &acknowledged {
        assert_eq!(
            counts.get(text.as_str()),
            Some(&1),
            "seed {seed}: {text} shown {counts:?}"
        );
    }
    for (text, n) in &counts {
        assert_eq!(*n, 1, "seed {seed}: {text} shown {n} times");
        assert!(
            attempted.iter().any(|a| a == text) || *text == "after the crashes",
            "seed {seed}: {text} was never sent"
        );
    }
}
