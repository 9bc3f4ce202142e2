//! A real server, a proxy per client, and registered profiles behind them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sotto_api::{Inbox, MessageKind};
use sotto_client::{Client, NewProfile};
use sotto_core::backup::ScryptParams;
use sotto_hostile::{Exchange, Phase, Proxy};

pub const PASSPHRASE: &[u8] = b"local passphrase for tests";

pub struct Server {
    pub url: String,
    pub data: tempfile::TempDir,
    pub profiles: tempfile::TempDir,
    _running: sotto_server::Embedded,
}

impl Server {
    pub async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let config =
            sotto_server::Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_owned());
        let running = sotto_server::start_embedded(config).await.unwrap();
        Self {
            url: running.url.clone(),
            data,
            profiles: tempfile::tempdir().unwrap(),
            _running: running,
        }
    }

    pub fn profile(&self, name: &str) -> PathBuf {
        self.profiles.path().join(name)
    }
}

/// A registered user whose client reaches the server only through its own proxy.
pub struct Person {
    pub client: Client,
    pub proxy: Proxy,
}

pub async fn person(server: &Server, name: &str) -> Person {
    let proxy = Proxy::start(&server.url).await.unwrap();
    let dir = server.profile(name);
    let new = NewProfile {
        dir: &dir,
        passphrase: PASSPHRASE,
        server: &proxy.url,
        ca_file: None,
        accept_policy: true,
        scrypt: ScryptParams::new(10, 8, 1).unwrap(),
    };
    let password = format!("password of {name}");
    let client = Client::register(new, name, password.as_bytes())
        .await
        .unwrap();
    Person { client, proxy }
}

/// Rewrites the inbox entries the server hands out, after the server answered.
pub fn on_inbox(
    proxy: &Proxy,
    mut rewrite: impl FnMut(&mut Vec<sotto_api::InboxMessage>) + Send + 'static,
) {
    proxy.rule(move |exchange: &mut Exchange, phase| {
        if phase == Phase::Response && exchange.path == "/v1/inbox" && exchange.status == 200 {
            let mut inbox: Inbox = serde_json::from_slice(&exchange.response).unwrap();
            rewrite(&mut inbox.messages);
            exchange.response = serde_json::to_vec(&inbox).unwrap();
        }
    });
}

/// Flips one bit of the first `count` entries of `kind`, `at` bytes from the end.
pub fn flip_bits(proxy: &Proxy, kind: MessageKind, at: usize, count: usize) {
    let mut left = count;
    on_inbox(proxy, move |entries| {
        for entry in entries.iter_mut().filter(|e| e.kind == kind) {
            if left == 0 {
                return;
            }
            left -= 1;
            let len = entry.payload.0.len();
            entry.payload.0[len - at] ^= 0x01;
        }
    });
}

/// The texts of the notices raised since the last call.
pub fn notices(client: &Client) -> Vec<String> {
    client
        .take_new_notices()
        .unwrap()
        .into_iter()
        .map(|n| n.text)
        .collect()
}

/// Syncs `person` and returns the texts of the messages that arrived.
pub async fn received(person: &mut Person) -> Vec<String> {
    person
        .client
        .sync()
        .await
        .unwrap()
        .messages
        .iter()
        .map(|m| m.text.clone())
        .collect()
}

/// A group named `name` with `members`, messages living at most an hour.
pub fn group(name: &str, members: &[&str]) -> sotto_client::GroupSpec {
    sotto_client::GroupSpec {
        name: name.into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        max_ttl_seconds: 3600,
        burn_on_read_required: false,
    }
}

/// A group of alice (its only manager) with bob and carol, everyone joined.
pub async fn group_of_three(server: &Server) -> (Person, Person, Person, String) {
    let mut alice = person(server, "alice").await;
    let mut bob = person(server, "bob").await;
    let mut carol = person(server, "carol").await;
    let group = alice
        .client
        .create_group(group("ops", &["bob", "carol"]))
        .await
        .unwrap();
    bob.client.sync().await.unwrap();
    carol.client.sync().await.unwrap();
    (alice, bob, carol, group.id)
}
