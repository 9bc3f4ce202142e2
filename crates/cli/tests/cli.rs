//! The `sotto` binary end to end, against a real server on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

fn messages(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["type"] == "message").collect()
}

async fn two_users_talk(server: &Server) {
    let root = tempfile::tempdir().unwrap();
    let alice = User::new(root.path(), server, "alice");
    let bob = User::new(root.path(), server, "bob");
    alice.register().await;
    bob.register().await;

    let sent = alice
        .json(&["send", "bob", "hello bob", "--ttl", "10m"])
        .await;
    assert_eq!(sent.len(), 1);
    let got = bob.json(&["sync"]).await;
    assert_eq!(texts(&got), ["hello bob"]);
    assert!(got.iter().any(|r| r["type"] == "joined"), "{got:?}");
    let record = messages(&got)[0];
    for field in [
        "conversation",
        "id",
        "from",
        "text",
        "sent_at",
        "expires_at",
        "burn_on_read",
    ] {
        assert!(
            !record[field].is_null(),
            "message record lacks {field}: {record}"
        );
    }
    assert_eq!(record["from"], "alice");
    assert_eq!(record["id"], sent[0]["id"]);
    let life = record["expires_at"].as_u64().unwrap() - record["sent_at"].as_u64().unwrap();
    assert!(life <= 600_000 && life > 590_000, "{life}");

    bob.ok(&["send", "alice", "hi alice"]).await;
    assert_eq!(texts(&alice.json(&["sync"]).await), ["hi alice"]);
    let listed = alice.json(&["messages", "bob"]).await;
    assert_eq!(texts(&listed), ["hello bob", "hi alice"]);
    let text = alice.ok(&["messages", "bob"]).await;
    assert!(text.contains("alice") && text.contains("left"), "{text}");
    let conversations = bob.json(&["conversations"]).await;
    assert_eq!(conversations.len(), 1);
    assert_eq!(
        conversations[0]["members"],
        serde_json::json!(["alice", "bob"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_users_exchange_messages_both_ways() {
    let server = Server::start().await;
    two_users_talk(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_users_exchange_messages_on_postgresql() {
    let Some(schema) = PgSchema::create().await else {
        return;
    };
    let server = Server::start_on(Some(schema.url.clone())).await;
    two_users_talk(&server).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_manager_cannot_add_or_remove_group_members() {
    let server = Server::start().await;
    let root = tempfile::tempdir().unwrap();
    let [alice, bob, carol, dave] =
        ["alice", "bob", "carol", "dave"].map(|n| User::new(root.path(), &server, n));
    for user in [&alice, &bob, &carol, &dave] {
        user.register().await;
    }
    let created = alice
        .json(&[
            "group",
            "create",
            "ops",
            "--members",
            "bob,carol",
            "--max-ttl",
            "2h",
        ])
        .await;
    let id = created[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(created[0]["managers"], serde_json::json!(["alice"]));
    bob.ok(&["sync"]).await;
    carol.ok(&["sync"]).await;

    let (status, stderr) = bob.fails(&["group", "add", &id, "dave"]).await;
    assert_eq!(status, 5);
    assert!(stderr.contains("only a manager"), "{stderr}");
    let (status, stderr) = bob.fails(&["group", "remove", &id, "carol"]).await;
    assert_eq!(status, 5);
    assert!(stderr.contains("only a manager"), "{stderr}");

    let (status, stderr) = alice.fails(&["send", &id, "too long", "--ttl", "3h"]).await;
    assert_eq!(status, 5);
    assert!(stderr.contains("policy"), "{stderr}");
    alice.ok(&["send", &id, "welcome all"]).await;
    assert_eq!(texts(&carol.json(&["sync"]).await), ["welcome all"]);

    alice.ok(&["group", "add", &id, "dave"]).await;
    dave.ok(&["sync"]).await;
    let info = dave.json(&["group", "info", &id]).await;
    assert_eq!(info[0]["name"], "ops");
    assert_eq!(
        info[0]["members"],
        serde_json::json!(["alice", "bob", "carol", "dave"])
    );

    carol.ok(&["group", "leave", &id]).await;
    alice.ok(&["sync"]).await;
    bob.ok(&["sync"]).await;
    let info = alice.json(&["group", "info", &id]).await;
    assert_eq!(
        info[0]["members"],
        serde_json::json!(["alice", "bob", "dave"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sending_before_accepting_the_policy_is_refused() {
    let server = Server::start().await;
    let root = tempfile::tempdir().unwrap();
    let alice = User::new(root.path(), &server, "alice");
    let bob = User::new(root.path(), &server, "bob");
    bob.register().await;
    alice.ok(&["register", "alice"]).await;
    let (status, stderr) = alice.fails(&["send", "bob", "too early"]).await;
    assert_eq!(status, 5);
    assert!(stderr.contains("ephemerality policy"), "{stderr}");
    assert!(stderr.contains("sotto accept-policy"), "{stderr}");
    alice.ok(&["accept-policy"]).await;
    alice.ok(&["send", "bob", "now"]).await;
    assert_eq!(texts(&bob.json(&["sync"]).await), ["now"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_clear_and_have_distinct_exit_statuses() {
    let server = Server::start().await;
    let root = tempfile::tempdir().unwrap();
    let alice = User::new(root.path(), &server, "alice");
    alice.register().await;

    let mut wrong = alice.command();
    wrong.env("SOTTO_PASSPHRASE", "wrong").arg("whoami");
    let output = tokio::task::spawn_blocking(move || wrong.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&output.stderr).contains("wrong passphrase"));

    let (status, stderr) = alice.fails(&["send", "nobody", "hi"]).await;
    assert_eq!(status, 6);
    assert!(stderr.contains("no user called nobody"), "{stderr}");

    let mut offline = alice.command();
    offline
        .env("SOTTO_SERVER", "http://127.0.0.1:9")
        .args(["devices"]);
    let output = tokio::task::spawn_blocking(move || offline.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach the server"));

    let stranger = User::new(root.path(), &server, "mallory");
    let mut guess = stranger.command();
    guess
        .env("SOTTO_PASSWORD", "guess")
        .args(["login", "alice", "--accept-ephemerality-policy"]);
    let output = tokio::task::spawn_blocking(move || guess.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&output.stderr).contains("wrong username or password"));
    assert!(!stranger.profile.join("profile.key").exists());

    let (_, stderr) = User::new(root.path(), &server, "nobody")
        .fails(&["whoami"])
        .await;
    assert!(stderr.contains("no Sotto profile"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_attachments_receipts_and_shred() {
    let server = Server::start().await;
    let (root, alice, bob) = alice_and_bob(&server).await;

    let at_alice = alice.json(&["verify", "bob"]).await;
    let at_bob = bob.json(&["verify", "alice"]).await;
    let number = at_alice[0]["safety_number"].as_str().unwrap().to_owned();
    assert_eq!(number, at_bob[0]["safety_number"].as_str().unwrap());
    assert_eq!(at_alice[0]["verified"], false);
    let shown = alice.ok(&["verify", "bob"]).await;
    assert!(
        shown.contains(&number) && shown.contains('█'),
        "no QR code: {shown}"
    );
    let (_, stderr) = alice.fails(&["verify", "bob", "--confirm", "12345"]).await;
    assert!(stderr.contains("does not match"), "{stderr}");
    let confirmed = alice.json(&["verify", "bob", "--confirm", &number]).await;
    assert_eq!(confirmed[0]["verified"], true);

    let file = root.path().join("report.txt");
    std::fs::write(&file, b"quarterly numbers, attached").unwrap();
    alice
        .ok(&["send", "bob", "--file", file.to_str().unwrap()])
        .await;
    let got = bob.json(&["sync"]).await;
    assert_eq!(messages(&got)[0]["attachment"]["file_name"], "report.txt");
    let out = root.path().join("saved");
    std::fs::create_dir(&out).unwrap();
    bob.ok(&[
        "messages",
        "alice",
        "--save-attachments",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        std::fs::read(out.join("report.txt")).unwrap(),
        b"quarterly numbers, attached"
    );
    assert!(!dir_contains(server.data.path(), b"quarterly numbers"));

    alice.json(&["sync"]).await;
    let mine = alice.json(&["messages", "bob"]).await;
    assert_eq!(mine[0]["delivered_to"], serde_json::json!(["bob"]));
    bob.ok(&["read", "alice"]).await;
    alice.json(&["sync"]).await;
    let mine = alice.json(&["messages", "bob"]).await;
    assert_eq!(mine[0]["read_by"], serde_json::json!(["bob"]));

    let shred = bob.json(&["shred", "--limit", "2M"]).await;
    assert_eq!(shred[0]["bytes_written"], 2 << 20);
    let left: Vec<_> = std::fs::read_dir(&bob.profile)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".shred"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_wait_returns_as_soon_as_a_message_arrives() {
    let server = Server::start().await;
    let (_root, alice, bob) = alice_and_bob(&server).await;
    alice.ok(&["send", "bob", "first"]).await;
    bob.ok(&["sync"]).await;

    let started = std::time::Instant::now();
    let waiting = tokio::spawn({
        let mut command = bob.command();
        command.args(["--json", "sync", "--wait", "120"]);
        async move {
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    });
    alice.ok(&["send", "bob", "while you wait"]).await;
    let output = waiting.await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(texts(&records), ["while you wait"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(100));
}
