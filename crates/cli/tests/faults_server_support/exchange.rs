//! The scripted exchange between Alice and Bob: `sotto` runs (killed at a moment, if asked), the ledger of what was sent and
//! acknowledged, and the final checks that nothing acknowledged was lost or doubled.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::assert_clear;
pub use crate::common::seeded::Seeded;
use crate::common::{self, User};

/// How one `sotto` run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Exit status 0.
    Done,
    /// A failure: exit status and stderr (checked to be a clear error).
    Failed(i32, String),
    /// Killed by the test.
    Killed,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        matches!(self, Self::Done)
    }
}

/// Runs `sotto <args>` as `user`; with `kill_after`, kills it (SIGKILL) at that moment
/// if it is still running. A failure must be a clear error (see [`assert_clear`]).
pub async fn run(user: &User, args: &[&str], kill_after: Option<Duration>) -> Outcome {
    let mut command = user.command();
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(pause) = kill_after {
        // The pause places the fault; it synchronises nothing.
        tokio::time::sleep(pause).await;
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Killed;
        }
    }
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        return Outcome::Done;
    }
    let code = output.status.code().unwrap_or(-1);
    assert_clear(args, code, &stderr);
    Outcome::Failed(code, stderr)
}

/// The user's view of the 1:1 conversation with `peer`: (from, text) of each message.
async fn view(user: &User, peer: &str) -> Vec<(String, String)> {
    user.json(&["messages", peer])
        .await
        .iter()
        .filter(|r| r["type"] == "message")
        .map(|r| {
            (
                r["from"].as_str().unwrap().to_owned(),
                r["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What was sent in an exchange between two users, and what was acknowledged.
#[derive(Default)]
pub struct Ledger {
    /// (sender, text) of every send tried.
    pub attempted: Vec<(String, String)>,
    /// (sender, text) of every send that succeeded.
    pub acknowledged: Vec<(String, String)>,
    /// Failures seen (exit status, stderr), for the record.
    pub failures: Vec<(i32, String)>,
    /// `sotto` runs killed.
    killed: usize,
}

impl Ledger {
    /// Sends `text` from `from` to `to`, killed after `kill_after` if given; records it.
    pub async fn send(&mut self, from: &User, to: &User, text: &str, kill_after: Option<Duration>) {
        self.attempted.push((from.name.clone(), text.to_owned()));
        let outcome = run(from, &["send", &to.name, text], kill_after).await;
        self.note(&outcome);
        if outcome.succeeded() {
            self.acknowledged.push((from.name.clone(), text.to_owned()));
        }
    }

    /// Syncs `user`, killed after `kill_after` if given; a failure must be clear.
    pub async fn sync(&mut self, user: &User, kill_after: Option<Duration>) {
        let outcome = run(user, &["sync"], kill_after).await;
        self.note(&outcome);
    }

    fn note(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Done => {}
            Outcome::Failed(code, stderr) => self.failures.push((*code, stderr.clone())),
            Outcome::Killed => self.killed += 1,
        }
    }

    /// After the faults: both users sync, each sends once more and the other receives it
    /// at once (the conversation did not fork); then every acknowledged message is shown
    /// exactly once on both sides, none twice, none that was never sent, and each user
    /// has exactly one conversation.
    pub async fn check(&mut self, seed: u64, alice: &User, bob: &User) {
        eprintln!(
            "seed {seed}: {} sends tried, {} acknowledged, {} runs killed, failures: {:?}",
            self.attempted.len(),
            self.acknowledged.len(),
            self.killed,
            self.failures
        );
        alice.ok(&["sync"]).await;
        bob.ok(&["sync"]).await;
        alice.ok(&["sync"]).await;
        for (from, to) in [(alice, bob), (bob, alice)] {
            let text = format!("after the faults, from {}", from.name);
            from.ok(&["send", &to.name, &text]).await;
            let got = common::texts(&to.json(&["sync"]).await);
            assert_eq!(got, [text.as_str()], "seed {seed}: {} got {got:?}", to.name);
            self.attempted.push((from.name.clone(), text.clone()));
            self.acknowledged.push((from.name.clone(), text));
        }
        for (user, peer) in [(alice, bob), (bob, alice)] {
            let shown = view(user, &peer.name).await;
            let mut counts: BTreeMap<&(String, String), usize> = BTreeMap::new();
            for message in &shown {
                *counts.entry(message).or_default() += 1;
            }
            for message in &self.acknowledged {
                assert_eq!(
                    counts.get(message),
                    Some(&1),
                    "seed {seed}: {message:?} (acknowledged) as shown to {}: {counts:?}",
                    user.name
                );
            }
            for (message, n) in &counts {
                assert_eq!(
                    *n, 1,
                    "seed {seed}: {message:?} shown {n} times to {}",
                    user.name
                );
                assert!(
                    self.attempted.contains(message),
                    "seed {seed}: {message:?} shown to {} was never sent",
                    user.name
                );
            }
            let conversations = user.json(&["conversations"]).await;
            assert_eq!(
                conversations.len(),
                1,
                "seed {seed}: {} has {conversations:?}",
                user.name
            );
        }
    }
}

/// Alice and Bob registered with `url`, in profiles under `root`, having exchanged a first
/// message each way (the conversation exists before the faults).
pub async fn alice_and_bob_at(root: &Path, url: &str) -> (User, User, Ledger) {
    let user = |name: &str| User {
        name: name.to_owned(),
        profile: root.join(name),
        server: url.to_owned(),
    };
    let (alice, bob) = (user("alice"), user("bob"));
    alice.register().await;
    bob.register().await;
    let mut ledger = Ledger::default();
    for (from, to) in [(&alice, &bob), (&bob, &alice)] {
        let text = format!("hello from {}", from.name);
        from.ok(&["send", &to.name, &text]).await;
        to.ok(&["sync"]).await;
        ledger.attempted.push((from.name.clone(), text.clone()));
        ledger.acknowledged.push((from.name.clone(), text));
    }
    (alice, bob, ledger)
}
