//! `sotto chat` driven through tmux: the screen shows the messages with their countdown
//! and burn-on-read marker, typed text is sent, messages arrive live, Escape quits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

/// How long any awaited condition may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// Quotes `text` for a POSIX shell.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Retries `attempt` every 100 ms until it gives `Ok`, or fails after [`DEADLINE`] with
/// the last `Err` (a description of what was seen instead).
async fn poll<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() > deadline => {
                panic!("timed out after {DEADLINE:?} waiting for {what}; last seen:\n{seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Fails (rather than skips) without tmux: CI installs it.
fn require_tmux() {
    if let Err(e) = Command::new("tmux").arg("-V").output() {
        panic!(
            "this test drives `sotto chat` through tmux, which cannot be run ({e}): install tmux"
        );
    }
}

/// A tmux server of its own (its socket in the test's directory), running one session
/// `chat`; killed when dropped.
struct Tmux {
    socket: PathBuf,
    /// Where the chat's stderr and exit status go.
    dir: PathBuf,
}

impl Tmux {
    /// Starts `user`'s `sotto chat <args>` in a 140×40 tmux session.
    fn start(user: &User, args: &[&str], dir: &Path) -> Self {
        let tmux = Self {
            socket: dir.join("tmux.socket"),
            dir: dir.to_owned(),
        };
        let command = user.command();
        let mut script = String::from("env -i TERM=\"$TERM\"");
        for (key, value) in command.get_envs() {
            let value = value.unwrap().to_str().unwrap();
            script.push_str(&format!(" {}={}", key.to_str().unwrap(), quote(value)));
        }
        script.push_str(&format!(
            " {}",
            quote(command.get_program().to_str().unwrap())
        ));
        for arg in ["chat"].iter().chain(args) {
            script.push_str(&format!(" {}", quote(arg)));
        }
        let stderr = dir.join("chat.stderr");
        let status = dir.join("chat.status");
        script.push_str(&format!(
            " 2>{}; echo $? >{}",
            quote(stderr.to_str().unwrap()),
            quote(status.to_str().unwrap())
        ));
        let mut new_session: Vec<&str> = "new-session -d -x 140 -y 40 -s chat".split(' ').collect();
        new_session.push(&script);
        let output = tmux.run(&new_session);
        assert!(
            output.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-u", "-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .args(args)
            .env("SHELL", "/bin/sh")
            .output()
            .expect("tmux runs")
    }

    /// What the chat printed on stderr (empty while it runs well).
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("chat.stderr")).unwrap_or_default()
    }

    /// The screen, or what went wrong.
    fn screen(&self) -> Result<String, String> {
        let output = self.run(&["capture-pane", "-p", "-t", "chat"]);
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "no screen ({}); chat stderr: {}",
                String::from_utf8_lossy(&output.stderr).trim(),
                self.stderr()
            ))
        }
    }

    /// Waits until the screen satisfies `ok`; returns it.
    async fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        poll(what, || async {
            let screen = self.screen()?;
            if ok(&screen) {
                Ok(screen)
            } else {
                Err(screen)
            }
        })
        .await
    }

    fn send_keys(&self, keys: &[&str]) {
        let output = self.run(&[&["send-keys", "-t", "chat"][..], keys].concat());
        assert!(output.status.success(), "tmux send-keys failed");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The line of `screen` that contains `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_shows_sends_and_receives_live_in_tmux() {
    require_tmux();
    let server = Server::start().await;
    let (root, alice, bob) = alice_and_bob(&server).await;
    alice
        .ok(&[
            "send",
            "bob",
            "hello from the cli",
            "--ttl",
            "10m",
            "--burn-on-read",
        ])
        .await;
    alice
        .ok(&["send", "bob", "a lasting note", "--ttl", "2h"])
        .await;

    let tmux = Tmux::start(&bob, &["alice"], root.path());
    let screen = tmux
        .wait_for("both messages with countdown and burn marker", |s| {
            s.contains("hello from the cli")
                && s.contains("a lasting note")
                && line_with(s, "burn on read").is_some_and(|l| l.contains("s left"))
                && s.contains("● live")
        })
        .await;
    println!("{screen}");
    let header = line_with(&screen, "burn on read").unwrap().to_owned();
    assert!(
        header.contains("alice") && header.contains("9m "),
        "{header}"
    );
    assert!(
        !line_with(&screen, "a lasting note")
            .unwrap()
            .contains("burn on read")
            && line_with(&screen, "1h 59m left").is_some(),
        "{screen}"
    );
    // The countdown runs by itself.
    tmux.wait_for("the countdown to move", |s| {
        line_with(s, "burn on read").is_some_and(|l| l != header)
    })
    .await;

    tmux.send_keys(&["-l", "reply from tmux"]);
    tmux.send_keys(&["Enter"]);
    poll("alice to receive the reply", || async {
        let got = texts(&alice.json(&["sync"]).await);
        if got.iter().any(|t| t == "reply from tmux") {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    tmux.wait_for("the reply on bob's screen", |s| {
        s.contains("reply from tmux")
    })
    .await;

    // Arrives over the WebSocket while the chat is open, without a key pressed.
    alice.ok(&["send", "bob", "live while you watch"]).await;
    let screen = tmux
        .wait_for("the live message", |s| s.contains("live while you watch"))
        .await;
    println!("{screen}");

    tmux.send_keys(&["Escape"]);
    poll("the chat to quit", || async {
        if tmux.run(&["has-session", "-t", "chat"]).status.success() {
            Err(tmux.screen().unwrap_or_default())
        } else {
            Ok(())
        }
    })
    .await;
    let status = std::fs::read_to_string(root.path().join("chat.status")).unwrap_or_default();
    assert_eq!(status.trim(), "0", "chat failed: {}", tmux.stderr());
    assert_eq!(tmux.stderr(), "");

    // What the chat showed counts as read: the burn-on-read message is gone from the store.
    let stored = texts(&bob.json(&["messages", "alice"]).await);
    assert_eq!(
        stored,
        ["a lasting note", "reply from tmux", "live while you watch"]
    );
}
