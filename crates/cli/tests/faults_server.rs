//! Faults around the server, during scripted exchanges between `sotto` processes:
//!
//! - the server process (SQLite) and clients are killed (SIGKILL) at seeded moments and the
//!   server restarted;
//! - a private PostgreSQL cluster under the server is restarted (and stopped a while);
//! - the connection between the clients and the server is cut and restored (a proxy);
//! - the file system of the server's data directory fills up, then is freed.
//!
//! Each test checks afterwards that every message whose send succeeded is shown exactly
//! once to both users, none twice, nothing that was never sent, that there is still one
//! conversation which works both ways (no fork), and that every failure in between was a
//! clear error (`sotto: …`, exit status 1 or 3, no panic). The server runs as a process of
//! its own: this test binary again, with `SOTTO_FAULT_SERVER_CHILD` set, doing what
//! `sotto-server`'s `main` does (see [`server_process`]).
//!
//! The moments come from `SOTTO_FAULT_SEED` (default 1), printed so that a failure can be
//! repeated. The PostgreSQL test runs when `SOTTO_TEST_POSTGRES_URL` is set and the
//! PostgreSQL server programs are installed; the full-disk test needs to mount a tmpfs
//! (root). Each says why when it is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod faults_server_support;

use std::net::SocketAddr;
use std::time::Duration;

use faults_server_support::cut::{start_live, Proxy};
use faults_server_support::disk::{fill, Tmpfs};
use faults_server_support::exchange::{alice_and_bob_at, run, Outcome, Seeded};
use faults_server_support::postgres::Cluster;
use faults_server_support::server::{healthy, wait_until_healthy, ServerProcess, CHILD};
use faults_server_support::Timer;

/// The tests of this file run one at a time: each places faults in time, and two at once
/// on a small machine would blur them (and slow each other past the clients' retries).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Not a test: the server process of the tests below. They run this test binary again
/// with `SOTTO_FAULT_SERVER_CHILD` set and only this test selected; it then does what the
/// `sotto-server` binary's `main` does — settings from the `SOTTO_*` variables, the same
/// logging, `sotto_server::start` — and serves until it is killed. Without the variable it
/// returns at once.
#[test]
fn server_process() {
    use clap::Parser;
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    // The test holds this process's standard input open: when the test process ends,
    // however it ends, the input closes and this server goes too.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(1);
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let flags = sotto_server::config::Flags::try_parse_from(["sotto-server"]).unwrap();
        let settings = sotto_server::config::load(&flags, std::env::vars_os()).unwrap();
        sotto_server::logging::init(&settings.log);
        let running = match sotto_server::start(settings.server, std::future::pending::<()>()).await
        {
            Ok(running) => running,
            Err(e) => {
                eprintln!("sotto-server: {e}");
                std::process::exit(1);
            }
        };
        println!("sotto-server listening on {}", running.url());
        let result = running.task.await;
        eprintln!("sotto-server: stopped: {result:?}");
        std::process::exit(1);
    });
}

/// A failed `sotto` run must say what happened in one `sotto: …` line, with exit status 3
/// (server unreachable) or 1 (the server refused or failed), never a panic.
/// With `--json`, the line is `{"type":"error","error":"…"}` instead.
fn assert_clear(args: &[&str], code: i32, stderr: &str) {
    let message = match stderr.strip_prefix("sotto: ") {
        Some(message) => message.trim_end().to_owned(),
        None => serde_json::from_str::<serde_json::Value>(stderr.trim_end())
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default(),
    };
    let clear = [
        "cannot reach the server at ",
        "the server refused the request: ",
    ];
    assert!(
        (code == 1 || code == 3)
            && !stderr.contains("panicked")
            && stderr.lines().count() == 1
            && clear.iter().any(|c| message.starts_with(c)),
        "sotto {args:?} failed unclearly (exit status {code}): {stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// 1. The server killed.

#[tokio::test(flavor = "multi_thread")]
async fn killed_server_and_clients_lose_no_acknowledged_message() {
    let _serial = SERIAL.lock().await;
    let _timer = Timer::start("killed server");
    let (seed, mut random) = Seeded::from_env("killed server");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, None, dir.path().join("server.log")).await;
    let (alice, bob, mut ledger) = alice_and_bob_at(dir.path(), &server.url()).await;

    let mut server_kills = 0;
    for round in 0..8 {
        let (from, to) = if random.one_in(2) {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        let text = format!("round {round} from {}", from.name);
        let kill_send = random.one_in(4).then(|| random.millis(50, 700));
        let kill_sync = random.one_in(4).then(|| random.millis(50, 700));
        // The server is killed in most rounds, somewhere in the send or the sync, and is
        // down for up to 1.5 s (within the clients' retries, mostly).
        let server_fault =
            (!random.one_in(4)).then(|| (random.millis(0, 1500), random.millis(0, 1500)));
        let exchange = async {
            ledger.send(from, to, &text, kill_send).await;
            ledger.sync(to, kill_sync).await;
        };
        let fault = async {
            if let Some((after, down)) = server_fault {
                // The pauses place the fault; they synchronise nothing.
                tokio::time::sleep(after).await;
                server.kill();
                tokio::time::sleep(down).await;
                server.restart().await;
                server_kills += 1;
            }
        };
        tokio::join!(exchange, fault);
    }
    eprintln!("seed {seed}: server killed {server_kills} times");
    server.assert_alive();
    ledger.check(seed, &alice, &bob).await;
    server.assert_no_panic();
}

// ---------------------------------------------------------------------------------------
// 2. PostgreSQL restarted under load.

#[tokio::test(flavor = "multi_thread")]
async fn restarted_postgres_loses_no_acknowledged_message() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = Cluster::create() else {
        return;
    };
    let _timer = Timer::start("PostgreSQL restarted");
    let (seed, mut random) = Seeded::from_env("PostgreSQL restarted");
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(
        &dir.path().join("data"),
        Some(cluster.url()),
        dir.path().join("server.log"),
    )
    .await;
    let (alice, bob, mut ledger) = alice_and_bob_at(dir.path(), &server.url()).await;

    // Restarts under load: each round a few sends and syncs while PostgreSQL is stopped
    // at a seeded moment, cleanly or as in a crash, and started again.
    for round in 0..4 {
        let after = random.millis(0, 3000);
        let mode = if random.one_in(2) {
            "fast"
        } else {
            "immediate"
        };
        let down = random.millis(0, 1500);
        let senders: Vec<bool> = (0..2).map(|_| random.one_in(2)).collect();
        let exchange = async {
            for (i, alice_sends) in senders.iter().enumerate() {
                let (from, to) = if *alice_sends {
                    (&alice, &bob)
                } else {
                    (&bob, &alice)
                };
                let text = format!("round {round}.{i} from {}", from.name);
                ledger.send(from, to, &text, None).await;
                ledger.sync(to, None).await;
            }
        };
        let fault = async {
            // The pauses place the fault; they synchronise nothing.
            tokio::time::sleep(after).await;
            tokio::task::block_in_place(|| cluster.stop(mode));
            tokio::time::sleep(down).await;
            tokio::task::block_in_place(|| cluster.start());
        };
        tokio::join!(exchange, fault);
    }

    // While it is down, clients get a clear error, not a wrong answer.
    cluster.stop("fast");
    let sent = run(&alice, &["send", "bob", "while the database is down"], None).await;
    let synced = run(&bob, &["sync"], None).await;
    for outcome in [&sent, &synced] {
        match outcome {
            Outcome::Failed(1, stderr) => assert_eq!(
                stderr.trim_end(),
                "sotto: the server refused the request: storage failure: the database is unavailable; try again later"
            ),
            other => panic!("seed {seed}: with the database down: {other:?}"),
        }
    }
    ledger
        .attempted
        .push(("alice".into(), "while the database is down".into()));
    assert!(!healthy(server.addr).await);
    cluster.start();
    wait_until_healthy(server.addr).await;

    server.assert_alive();
    ledger.check(seed, &alice, &bob).await;
    server.assert_no_panic();
}

// ---------------------------------------------------------------------------------------
// 3. The connection cut and restored.

#[tokio::test(flavor = "multi_thread")]
async fn cut_connection_fails_clearly_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let _timer = Timer::start("connection cut");
    let (seed, mut random) = Seeded::from_env("connection cut");
    let server = common::Server::start().await;
    let upstream: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(upstream);
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, mut ledger) = alice_and_bob_at(root.path(), &proxy.url()).await;

    // A live wait (`sync --wait`) loses its connection: a clear error.
    let live = start_live(
        &bob,
        &proxy,
        "bob's live connection is open",
        Duration::from_secs(30),
    )
    .await;
    proxy.cut();
    let output = tokio::task::spawn_blocking(move || live.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "seed {seed}: {stderr}");
    assert_clear(&["--json", "sync", "--wait", "60"], 3, &stderr);

    // While cut: sends and syncs fail at once, saying the server cannot be reached.
    for (from, to) in [(&alice, &bob), (&bob, &alice)] {
        let text = format!("while cut, from {}", from.name);
        ledger.send(from, to, &text, None).await;
        assert!(
            !ledger.acknowledged.iter().any(|(_, t)| *t == text),
            "seed {seed}: a send succeeded through a cut connection"
        );
        match run(to, &["sync"], None).await {
            Outcome::Failed(3, _) => {}
            other => panic!("seed {seed}: sync through a cut connection: {other:?}"),
        }
    }
    proxy.restore();

    // Cuts at seeded moments during sends and syncs, restored after a while: the clients'
    // retries carry some sends over the gap; the others fail clearly.
    for round in 0..5 {
        let (from, to) = if random.one_in(2) {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        let text = format!("round {round} from {}", from.name);
        let after = random.millis(0, 2500);
        let down = random.millis(100, 3000);
        let exchange = async {
            ledger.send(from, to, &text, None).await;
            ledger.sync(to, None).await;
        };
        let fault = async {
            // The pauses place the fault; they synchronise nothing.
            tokio::time::sleep(after).await;
            proxy.cut();
            tokio::time::sleep(down).await;
            proxy.restore();
        };
        tokio::join!(exchange, fault);
    }

    // Live delivery resumes: a new live wait (after a sync, so that it has to wait) gets
    // what is sent now.
    bob.ok(&["sync"]).await;
    let live = start_live(
        &bob,
        &proxy,
        "bob's live connection is open again",
        Duration::from_secs(60),
    )
    .await;
    alice.ok(&["send", "bob", "live again"]).await;
    ledger.attempted.push(("alice".into(), "live again".into()));
    ledger
        .acknowledged
        .push(("alice".into(), "live again".into()));
    let output = tokio::task::spawn_blocking(move || live.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got = common::texts(&records);
    assert!(
        got.contains(&"live again".to_owned()),
        "seed {seed}: the live wait got {got:?}"
    );

    ledger.check(seed, &alice, &bob).await;
}

// ---------------------------------------------------------------------------------------
// 4. The server's disk full.

/// What `sotto` says when the server's disk is full.
const DISK_FULL: &str =
    "sotto: the server refused the request: storage failure: the server's disk is full; try again later";

#[tokio::test(flavor = "multi_thread")]
async fn full_disk_fails_clearly_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let Some(disk) = Tmpfs::mount("24m") else {
        return;
    };
    let _timer = Timer::start("full disk");
    let (seed, mut random) = Seeded::from_env("full disk");
    let dir = tempfile::tempdir().unwrap();
    let data = disk.path().join("data");
    let mut server = ServerProcess::start(&data, None, dir.path().join("server.log")).await;
    let (alice, bob, mut ledger) = alice_and_bob_at(dir.path(), &server.url()).await;
    let filler = disk.path().join("filler");

    // The disk fills up at a seeded moment during a send; more sends and syncs follow
    // while it is full. Each either succeeds or fails clearly; the server stays up.
    let after = random.millis(0, 800);
    let exchange = async {
        ledger
            .send(&alice, &bob, "as the disk fills up", None)
            .await;
    };
    let fault = async {
        // The pause places the fault; it synchronises nothing.
        tokio::time::sleep(after).await;
        tokio::task::block_in_place(|| fill(&filler))
    };
    let ((), filled) = tokio::join!(exchange, fault);
    eprintln!("seed {seed}: filled the disk with {filled} bytes");
    let (from, to) = if random.one_in(2) {
        (&alice, &bob)
    } else {
        (&bob, &alice)
    };
    let text = format!("while the disk is full, from {}", from.name);
    ledger.send(from, to, &text, None).await;
    ledger.sync(to, None).await;
    ledger.sync(from, None).await;
    server.assert_alive();
    // An attachment cannot fit at all: a clear error.
    let file = dir.path().join("big.bin");
    std::fs::write(&file, vec![7u8; 2 << 20]).unwrap();
    let file_arg = file.display().to_string();
    match run(&alice, &["send", "bob", "--file", &file_arg], None).await {
        Outcome::Failed(1, stderr) => assert_eq!(stderr.trim_end(), DISK_FULL),
        other => panic!("seed {seed}: an attachment on a full disk: {other:?}"),
    }
    for (_, stderr) in &ledger.failures {
        assert_eq!(stderr.trim_end(), DISK_FULL, "seed {seed}");
    }
    server.assert_alive();
    assert!(
        !ledger.failures.is_empty() || ledger.acknowledged.len() > 2,
        "seed {seed}: nothing was tried on the full disk"
    );

    // Space again: everything works, nothing acknowledged is lost.
    std::fs::remove_file(&filler).unwrap();
    wait_until_healthy(server.addr).await;
    ledger.check(seed, &alice, &bob).await;
    server.assert_alive();
    server.assert_no_panic();

    // The database is intact.
    server.kill();
    let db = rusqlite::Connection::open(data.join(sotto_server::DATABASE_FILE)).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok", "seed {seed}: the database is damaged");
}
