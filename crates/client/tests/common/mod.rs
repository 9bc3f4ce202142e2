//! A real server on loopback (SQLite in a temporary directory) and real profiles.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use sotto_client::{Client, NewProfile};
use sotto_core::backup::ScryptParams;

pub const PASSPHRASE: &[u8] = b"local passphrase for tests";

pub fn password(name: &str) -> Vec<u8> {
    format!("account password of {name}").into_bytes()
}

/// Cheap scrypt for tests (the cost is stored with each sealed key).
pub fn quick() -> ScryptParams {
    ScryptParams::new(10, 8, 1).unwrap()
}

pub struct Server {
    pub url: String,
    pub data: tempfile::TempDir,
    _running: sotto_server::Embedded,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// HTTPS with a fresh self-signed certificate for 127.0.0.1; returns the server and
    /// the certificate's PEM file (to trust as a CA).
    pub async fn start_tls() -> (Self, PathBuf) {
        let certs = tempfile::tempdir().unwrap();
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let cert_path = certs.path().join("cert.pem");
        let key_path = certs.path().join("key.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
        let files = sotto_server::TlsFiles {
            cert: cert_path.clone(),
            key: key_path,
        };
        let server = Self::start_with(move |c| c.tls = Some(files)).await;
        let kept = server.data.path().join("ca.pem");
        std::fs::copy(&cert_path, &kept).unwrap();
        (server, kept)
    }

    pub async fn start_with(adjust: impl FnOnce(&mut sotto_server::Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config =
            sotto_server::Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_owned());
        adjust(&mut config);
        let running = sotto_server::start_embedded(config).await.unwrap();
        Self {
            url: running.url.clone(),
            data,
            _running: running,
        }
    }

    /// Every byte the server keeps on disk.
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

pub struct Profiles {
    pub root: tempfile::TempDir,
}

impl Profiles {
    pub fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

pub fn new_profile<'a>(dir: &'a Path, server: &'a str, accept: bool) -> NewProfile<'a> {
    NewProfile {
        dir,
        passphrase: PASSPHRASE,
        server,
        ca_file: None,
        accept_policy: accept,
        scrypt: quick(),
    }
}

/// A registered user whose profile accepted the ephemerality policy.
pub async fn person(server: &Server, profiles: &Profiles, name: &str) -> Client {
    let dir = profiles.dir(name);
    Client::register(new_profile(&dir, &server.url, true), name, &password(name))
        .await
        .unwrap()
}

/// Counts the rows of `kind` in a profile's database, read directly from the file.
pub fn rows_of_kind(dir: &Path, kind: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("profile.db")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM records WHERE kind = ?1",
        [kind],
        |r| r.get(0),
    )
    .unwrap()
}

/// Whether `needle` occurs anywhere in the files of `dir`.
pub fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        path.is_file()
            && std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
    })
}

/// A new device of `name`'s account, logged in with the password, in profile `dir`.
pub async fn new_device(server: &Server, dir: &Path, name: &str) -> Client {
    Client::login(new_profile(dir, &server.url, true), name, &password(name))
        .await
        .unwrap()
}
