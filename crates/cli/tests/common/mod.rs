//! The `sotto` binary against a real server on loopback (SQLite in a temporary directory,
//! or PostgreSQL when `SOTTO_TEST_POSTGRES_URL` is set and asked for).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod seeded;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PASSPHRASE: &str = "local passphrase for tests";

pub fn password(name: &str) -> String {
    format!("account password of {name}")
}

pub struct Server {
    pub url: String,
    pub data: tempfile::TempDir,
    _running: sotto_server::Embedded,
}

impl Server {
    /// A server on SQLite.
    pub async fn start() -> Self {
        Self::start_on(None).await
    }

    /// A server on `database_url` (PostgreSQL) or SQLite.
    pub async fn start_on(database_url: Option<String>) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config =
            sotto_server::Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_owned());
        config.database_url = database_url;
        let running = sotto_server::start_embedded(config).await.unwrap();
        Self {
            url: running.url.clone(),
            data,
            _running: running,
        }
    }

    /// Every byte the server keeps in its data directory.
    pub fn stored_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(self.data.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                all.extend(std::fs::read(path).unwrap());
            }
        }
        all
    }
}

/// A user's profile directory and how to run `sotto` with it.
pub struct User {
    pub name: String,
    pub profile: PathBuf,
    pub server: String,
}

impl User {
    pub fn new(root: &Path, server: &Server, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            profile: root.join(name),
            server: server.url.clone(),
        }
    }

    /// `sotto` with this user's profile, server and secrets in the environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sotto"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SOTTO_PROFILE", &self.profile)
            .env("SOTTO_SERVER", &self.server)
            .env("SOTTO_PASSPHRASE", PASSPHRASE)
            .env("SOTTO_PASSWORD", password(&self.name))
            .stdin(std::process::Stdio::null());
        command
    }

    /// Runs `sotto <args>` (off the async runtime) and returns its output.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command();
        command.args(args);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Runs `sotto <args>`, which must succeed; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "sotto {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `sotto --json <args>`, which must succeed; returns one value per line.
    pub async fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all)
            .await
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Runs `sotto <args>`, which must fail; returns (exit status, stderr).
    pub async fn fails(&self, args: &[&str]) -> (i32, String) {
        let output = self.run(args).await;
        assert!(!output.status.success(), "sotto {args:?} succeeded");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// Registers this user, acknowledging the policy.
    pub async fn register(&self) {
        self.ok(&["register", &self.name, "--accept-ephemerality-policy"])
            .await;
    }
}

/// Alice and Bob, registered with the ephemerality policy acknowledged, with profiles in
/// the returned temporary directory.
pub async fn alice_and_bob(server: &Server) -> (tempfile::TempDir, User, User) {
    let root = tempfile::tempdir().unwrap();
    let alice = User::new(root.path(), server, "alice");
    let bob = User::new(root.path(), server, "bob");
    alice.register().await;
    bob.register().await;
    (root, alice, bob)
}

/// The texts of the message records among `records`.
pub fn texts(records: &[serde_json::Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["type"] == "message")
        .map(|r| r["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether `needle` occurs in any file under `dir`.
pub fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        if path.is_dir() {
            return dir_contains(&path, needle);
        }
        std::fs::read(&path)
            .map(|b| b.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

/// A PostgreSQL schema of its own for one test, dropped at the end; `None` (saying so)
/// when `SOTTO_TEST_POSTGRES_URL` is not set.
pub struct PgSchema {
    pub url: String,
    base: String,
    schema: String,
}

impl PgSchema {
    pub async fn create() -> Option<Self> {
        let base = match std::env::var("SOTTO_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!("skipped: SOTTO_TEST_POSTGRES_URL is not set, so this test did not run against PostgreSQL");
                return None;
            }
        };
        let schema = format!("sotto_cli_{}", hex::encode(rand_bytes()));
        let client = pg_connect(&base).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Some(Self { url, base, schema })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        // A runtime of its own: this may run inside (or after) the test's runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = pg_connect(&base).await;
                let _ = client.batch_execute(&sql).await;
            });
        })
        .join();
    }
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn rand_bytes() -> [u8; 6] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let pid = std::process::id() as u128;
    let mixed = nanos ^ (pid << 64);
    let mut out = [0u8; 6];
    out.copy_from_slice(&mixed.to_be_bytes()[10..16]);
    out
}
