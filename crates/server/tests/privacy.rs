//! What the server keeps about a session — its log at TRACE level, its account-event log and
//! its stored data — holds no secret, no plaintext, no recipient and no client address.
//!
//! The real `sotto-server` binary runs in a child process with `--log trace` (every crate,
//! every level). A scripted session with real MLS devices goes through every route family:
//! two users register and add a device, log in by challenge, upload and claim KeyPackages,
//! alice creates a conversation and adds bob with a Welcome, sends messages with a
//! distinctive plaintext, bob reads them over a WebSocket and over the inbox and
//! acknowledges them both ways, an attachment is uploaded, fetched by capability and
//! deleted, and contact hashes are published and looked up. The server is then stopped
//! (SIGTERM), and everything it printed on stdout and stderr is searched:
//!
//! - no line holds a session token (as sent, and its bytes), a login challenge, the
//!   attachment capability token (as sent, and its bytes), the attachment's bytes, a
//!   published or looked-up contact hash, the plaintext, a message's ciphertext, the
//!   conversation id, either user's name (bob is the recipient of every message; alice's
//!   name has no business in the log either) or bob's device id — byte strings in hex,
//!   base64 (standard and URL-safe) and Rust `Debug` spellings, of a prefix so that a
//!   truncated value is caught too;
//! - the only `127.0.0.1:<port>` in any line is the server's own listening address and, on
//!   PostgreSQL, the database's; the WebSocket client's local port appears nowhere;
//! - the log really was at TRACE (axum's own TRACE rejection line of a bad path is there)
//!   and covers the session (three `message_sent` events).
//!
//! The account-event rows are exactly registration and login of each user and alice's three
//! sends, all naming alice: bob is never named for a message sent to him. The store holds no
//! plaintext, token, capability, looked-up hash or `127.0.0.1`.
//!
//! Before `sotto_server::logging` capped them, this test found the clients' addresses and
//! ports (axum's accept loop, TRACE), every WebSocket frame with its payload (tungstenite,
//! TRACE: ciphertext, conversation id), and on PostgreSQL every SQL parameter
//! (tokio-postgres, DEBUG: both users' names, the challenges, the contact hashes published
//! and looked up, the attachment's bytes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::StatusCode;
use sotto_api::{
    AttachmentStored, Bytes, Challenge, ClientFrame, ContactMatches, DeviceAddress, DiscoverySalt,
    InboxMessage, LookupContacts, PublishContacts, Session,
};
use sotto_core::content::Body;
use sotto_core::conversation::{Conversation, Event};
use sotto_core::device::SottoConfig;
use sotto_core::discovery::contact_hash;
use tokio::time::timeout;

/// A guard against hanging, never a wait: every step is awaited.
const GUARD: Duration = Duration::from_secs(60);
/// The text of every message sent: it must never be seen by the server.
const PLAINTEXT: &str = "zebra-crossing-42";
/// The sender: acts (registers, logs in, sends, uploads, publishes).
const ALICE: &str = "alice.sender";
/// The recipient: registers and logs in, otherwise only receives, fetches and looks up.
const BOB: &str = "bob.recipient";

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

/// The `sotto-server` binary in a child process, killed (and reaped) when dropped, so that
/// a failing test leaves no process behind. Its stdout and stderr are collected by line.
struct ServerProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects the lines of `pipe`; on the line saying where the server listens, sends its
/// base URL to `listening`.
fn collect(
    pipe: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    mut listening: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match reader.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
            let url = line
                .strip_prefix("sotto-server listening on ")
                .map(str::to_owned);
            lines.lock().unwrap().push(line);
            if let Some(url) = url {
                if let Some(tx) = listening.take() {
                    let _ = tx.send(url);
                }
            }
        }
    })
}

impl ServerProcess {
    /// Starts the binary on `stored` (its data directory, or its PostgreSQL schema through
    /// `SOTTO_DATABASE_URL`) listening on an ephemeral loopback port, logging at TRACE;
    /// returns it once it prints `listening on`, with the base URL it printed.
    async fn start(stored: &Stored) -> (Self, String) {
        let config = stored.config();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sotto-server"));
        command
            .args(["--listen", "127.0.0.1:0", "--log", "trace", "--data-dir"])
            .arg(&config.data_dir);
        // Only the settings given here: none of the test runner's own SOTTO_* variables.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SOTTO_") {
                command.env_remove(name);
            }
        }
        if let Some(url) = &config.database_url {
            command.env("SOTTO_DATABASE_URL", url);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let readers = vec![
            collect(child.stdout.take().unwrap(), Arc::clone(&lines), Some(tx)),
            collect(child.stderr.take().unwrap(), Arc::clone(&lines), None),
        ];
        let process = Self {
            child,
            lines,
            readers,
        };
        // Ends early with an error if the server exits (its stdout closes) before serving.
        match tokio::task::spawn_blocking(move || rx.recv_timeout(GUARD))
            .await
            .unwrap()
        {
            Ok(base) => (process, base),
            Err(e) => {
                let output = process.finish().await;
                panic!("the server did not start ({e}): {output:#?}");
            }
        }
    }

    /// Kills the server and returns all it printed.
    async fn finish(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let readers = std::mem::take(&mut self.readers);
        tokio::task::spawn_blocking(move || {
            let _ = self.child.wait();
            for reader in readers {
                reader.join().unwrap();
            }
            self.output()
        })
        .await
        .unwrap()
    }

    /// Everything printed so far, with terminal escape sequences removed.
    fn output(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| plain(l))
            .collect()
    }

    /// Stops the server as an operator would (SIGTERM), waits until it has exited and its
    /// output is read to the end, and returns that output.
    async fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let readers = std::mem::take(&mut self.readers);
        let waiting = tokio::task::spawn_blocking(move || {
            let exit = self.child.wait();
            for reader in readers {
                reader.join().unwrap();
            }
            (self, exit)
        });
        let (this, exit) = match timeout(GUARD, waiting).await {
            Ok(done) => done.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("the server did not stop on SIGTERM");
            }
        };
        let output = this.output();
        assert!(exit.unwrap().success(), "unclean exit: {output:#?}");
        output
    }
}

/// `line` without ANSI escape sequences (the log formatter colours fields).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
        } else if chars.next() == Some('[') {
            // A CSI sequence ends with a byte in 0x40..=0x7e.
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// The server under test and its process. The process is declared (and so dropped) first:
/// a failing test kills the server before its data directory or schema is removed.
struct Run {
    process: ServerProcess,
    server: TestServer,
}

// ---------------------------------------------------------------------------------------
// Secrets and how they could be spelled
// ---------------------------------------------------------------------------------------

/// The ways a byte string could be written into a log line: lower- and upper-case hex,
/// standard and URL-safe base64 and Rust's `Debug` of a byte slice. Each is of a prefix
/// (15 bytes for hex and base64, 8 for `Debug`), so that a truncated value is caught too;
/// 15 bytes keep the base64 of the prefix a prefix of the base64 of the whole.
fn spellings(bytes: &[u8]) -> Vec<String> {
    let head = &bytes[..bytes.len().min(15)];
    let short = &bytes[..bytes.len().min(8)];
    let debug = format!("{short:?}");
    vec![
        hex(head),
        hex(head).to_uppercase(),
        STANDARD_NO_PAD.encode(head),
        URL_SAFE_NO_PAD.encode(head),
        debug.trim_end_matches(']').to_owned(),
    ]
}

/// What must never appear in a log line, each with what it is.
#[derive(Default)]
struct Needles(Vec<(String, String)>);

impl Needles {
    fn bytes(&mut self, what: &str, bytes: &[u8]) {
        for s in spellings(bytes) {
            self.0.push((what.to_owned(), s));
        }
    }

    fn text(&mut self, what: &str, text: &str) {
        self.0.push((what.to_owned(), text.to_owned()));
        self.bytes(what, text.as_bytes());
    }
}

/// Every loopback address in `line` with its port, e.g. `127.0.0.1:8480` gives 8480
/// (`None` for an address written without a port).
fn loopback_ports(line: &str) -> Vec<Option<u16>> {
    line.match_indices("127.0.0.1")
        .map(|(i, m)| {
            let rest = &line[i + m.len()..];
            let digits: String = rest
                .strip_prefix(':')?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// Whether `line` holds `number` as a whole number right after `:` or `=` (how a port is
/// written: `addr:port`, `port=…`).
fn mentions_port(line: &str, number: u16) -> bool {
    let number = number.to_string();
    line.match_indices(&number).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + number.len()..].chars().next();
        matches!(before, Some(':' | '=')) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

// ---------------------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------------------

/// Registers `name` with a device, logs it in and uploads a KeyPackage; returns the person
/// and the challenge it answered.
async fn sign_up(server: &TestServer, name: &str) -> (Person, Vec<u8>) {
    let (root, new) = registered(server, name).await;
    let device_id = new.certificate.verify().unwrap().device_id.to_hex();
    let challenge: Challenge = ask(server, name, &device_id).await.json().await.unwrap();
    let challenge = challenge.challenge.0;
    let signature = sign(&new, &challenge);
    let response = answer(server, name, &device_id, &challenge, signature).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let session: Session = response.json().await.unwrap();
    let device = mls_device(&new);
    let kp = device.key_package().unwrap();
    let response = server
        .upload_key_packages(&session.token, vec![kp], None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let person = Person {
        name: name.into(),
        root,
        device,
        address: DeviceAddress {
            username: name.into(),
            device_id,
        },
        token: session.token,
    };
    (person, challenge)
}

type Conv = Conversation<SottoConfig>;

/// alice sends `PLAINTEXT` (numbered) to bob; returns the ciphertext.
async fn say(server: &TestServer, alice: &Person, bob: &Person, ca: &mut Conv, n: u32) -> Vec<u8> {
    let (_, ct) = ca
        .send_text(&format!("{PLAINTEXT} #{n}"), 600, false, NOW_MS)
        .unwrap();
    let response = post(server, alice, ca.id(), &to(ct.clone(), &[bob])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    ct
}

fn read(cb: &mut Conv, message: &InboxMessage) -> String {
    let Event::Message(m) = cb.process(&message.payload.0, NOW_MS).unwrap() else {
        panic!("not an application message")
    };
    match &m.content.body {
        Body::Text(text) => text.clone(),
        other => panic!("not text: {other:?}"),
    }
}

async fn nothing_secret_reaches_the_logs_events_or_store(db: Db) {
    let stored = Stored::new(&db).await;
    let database_url = stored.config().database_url;
    let (process, base) = ServerProcess::start(&stored).await;
    let run = Run {
        process,
        server: TestServer::external(base, stored),
    };
    let server = &run.server;
    let mut needles = Needles::default();
    // Bytes that must not be stored either.
    let mut unstored: Vec<(&str, Vec<u8>)> = vec![("the plaintext", PLAINTEXT.into())];

    // Accounts, devices, logins, KeyPackages.
    let (alice, alice_challenge) = sign_up(server, ALICE).await;
    let (bob, bob_challenge) = sign_up(server, BOB).await;
    for (who, person, challenge) in [
        ("alice", &alice, &alice_challenge),
        ("bob", &bob, &bob_challenge),
    ] {
        let raw = URL_SAFE_NO_PAD.decode(&person.token).unwrap();
        needles.text(&format!("{who}'s session token"), &person.token);
        needles.bytes(&format!("{who}'s session token (decoded)"), &raw);
        needles.bytes(&format!("{who}'s challenge"), challenge);
        unstored.push(("a session token", person.token.clone().into_bytes()));
        unstored.push(("a session token (decoded)", raw));
    }
    needles.text("the recipient's user name", BOB);
    needles.text("the recipient's device id", &bob.address.device_id);
    needles.text("the sender's user name", ALICE);
    needles.text("the plaintext", PLAINTEXT);
    assert_eq!(server.me(&bob.token).await.status(), StatusCode::OK);

    // A conversation: alice claims bob's KeyPackage and adds him with a Welcome.
    let (mut ca, mut cb) = conversation(server, &alice, &bob).await;

    // Live delivery: bob subscribes, reads a message as it arrives, acknowledges it.
    let mut socket = open(server, Some(&bob.token)).await.unwrap();
    let ws_port = local_port(&socket);
    send(&mut socket, &ClientFrame::Subscribe { after: 0 }).await;
    assert!(sync(&mut socket).await.is_empty());
    let ct1 = say(server, &alice, &bob, &mut ca, 1).await;
    let first = next_message(&mut socket).await;
    assert_eq!(read(&mut cb, &first), format!("{PLAINTEXT} #1"));
    send(
        &mut socket,
        &ClientFrame::Ack {
            cursors: vec![first.cursor],
        },
    )
    .await;
    assert!(sync(&mut socket).await.is_empty());

    // The inbox: the acknowledged message is gone; the next one is read and acknowledged.
    let ct2 = say(server, &alice, &bob, &mut ca, 2).await;
    let got = inbox(server, &bob).await;
    assert_eq!(got.messages.len(), 1, "only the unacknowledged message");
    assert_eq!(read(&mut cb, &got.messages[0]), format!("{PLAINTEXT} #2"));
    // The same message comes live too. It is awaited before the acknowledgment: once
    // acknowledged, a message not yet pushed (the wake-up is asynchronous, and on
    // PostgreSQL goes through LISTEN/NOTIFY) is no longer there to push.
    assert_eq!(
        next_message(&mut socket).await.cursor,
        got.messages[0].cursor
    );
    ack(server, &bob, vec![got.messages[0].cursor]).await;
    assert!(inbox(server, &bob).await.messages.is_empty());
    socket.close(None).await.unwrap();
    drop(socket);
    // The payloads: ciphertext, but the log is no place for them either (15 bytes from
    // inside the encrypted part, at an offset that keeps their base64 a substring).
    for ct in [&ct1, &ct2] {
        needles.bytes("a message's ciphertext", &ct[63..78]);
    }
    needles.bytes("the conversation id", ca.id());

    // An attachment: alice uploads, bob fetches and deletes it by capability alone.
    let blob: Vec<u8> = sotto_core::crypto::random_array::<64>().unwrap().to_vec();
    let response = server
        .http
        .post(server.url("/v1/attachments"))
        .bearer_auth(&alice.token)
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let attachment: AttachmentStored = response.json().await.unwrap();
    let capability = format!("Capability {}", attachment.token);
    let attachment_url = server.url(&format!("/v1/attachments/{}", attachment.id));
    let fetched = server
        .http
        .get(&attachment_url)
        .header("Authorization", &capability)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), blob);
    let deleted = server
        .http
        .delete(&attachment_url)
        .header("Authorization", &capability)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let raw = URL_SAFE_NO_PAD.decode(&attachment.token).unwrap();
    needles.text("the attachment capability token", &attachment.token);
    needles.bytes("the attachment capability token (decoded)", &raw);
    needles.bytes("the attachment's bytes", &blob);
    unstored.push(("the attachment capability", attachment.token.into_bytes()));
    unstored.push(("the attachment capability (decoded)", raw));

    // Contact discovery: alice publishes her hash, bob looks it up and one that is no one's.
    let salt: DiscoverySalt = server
        .http
        .get(server.url("/v1/discovery/salt"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let published = contact_hash("alice@example.org", &salt.salt.0)
        .unwrap()
        .to_vec();
    let unknown = contact_hash("+41 79 555 01 02", &salt.salt.0)
        .unwrap()
        .to_vec();
    let response = server
        .http
        .put(server.url("/v1/discovery"))
        .bearer_auth(&alice.token)
        .json(&PublishContacts {
            hashes: vec![Bytes(published.clone())],
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let found: ContactMatches = server
        .http
        .post(server.url("/v1/discovery/lookup"))
        .bearer_auth(&bob.token)
        .json(&LookupContacts {
            hashes: vec![Bytes(unknown.clone()), Bytes(published.clone())],
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(found.matches[0].username, ALICE);
    needles.bytes("a published contact hash", &published);
    needles.bytes("a looked-up contact hash", &unknown);
    unstored.push(("a looked-up contact hash", unknown));

    // A path axum itself refuses (not UTF-8): its rejection is logged at TRACE, which shows
    // below that the log really was at TRACE level.
    let response = server
        .http
        .get(server.url("/v1/accounts/%FF"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Stop the server: its whole output is now read.
    let Run { process, server } = run;
    let lines = process.stop().await;

    // The log really is at TRACE, and really covers the session.
    assert!(
        lines.iter().any(|l| l.contains(" TRACE axum::rejection")),
        "no TRACE line: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("event=\"ws_open\"")),
        "no DEBUG line: {lines:#?}"
    );
    let sends = lines
        .iter()
        .filter(|l| l.contains("event=\"message_sent\""))
        .count();
    assert_eq!(sends, 3, "the Welcome commit and two messages: {lines:#?}");

    // No secret, plaintext, user name or contact hash in any spelling in any line.
    for line in &lines {
        for (what, needle) in &needles.0 {
            assert!(!line.contains(needle.as_str()), "{what} logged: {line}");
        }
    }

    // No client address: the only loopback addresses are the server's own (its listening
    // line) and, on PostgreSQL, the database's.
    let server_port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut allowed = vec![Some(server_port)];
    if let Some(url) = &database_url {
        allowed.extend(loopback_ports(url));
    }
    for line in &lines {
        for port in loopback_ports(line) {
            assert!(allowed.contains(&port), "a client address logged: {line}");
        }
        assert!(
            !mentions_port(line, ws_port),
            "the WebSocket client's port {ws_port} logged: {line}"
        );
    }

    // The account-event log names only the acting user: bob appears for his own
    // registration and login, never as the recipient of alice's sends.
    let mut rows = server
        .stored
        .text_rows("SELECT kind, sender FROM events")
        .await;
    rows.sort();
    let mut expected: Vec<Vec<String>> = [
        ("login", ALICE),
        ("login", BOB),
        ("message_sent", ALICE),
        ("message_sent", ALICE),
        ("message_sent", ALICE),
        ("registration", ALICE),
        ("registration", BOB),
    ]
    .iter()
    .map(|(kind, who)| vec![kind.to_string(), who.to_string()])
    .collect();
    expected.sort();
    assert_eq!(rows, expected);

    // The store holds no plaintext, no token, no looked-up hash and no client address.
    for (what, bytes) in &unstored {
        assert!(!server.stored.contains(bytes).await, "{what} stored");
    }
    assert!(
        !server.stored.contains(b"127.0.0.1").await,
        "a client address stored"
    );
    assert!(
        !server
            .stored
            .contains(STANDARD.encode(PLAINTEXT).as_bytes())
            .await,
        "the plaintext stored in base64"
    );
}

on_both_backends!(nothing_secret_reaches_the_logs_events_or_store);

#[test]
fn the_log_checks_catch_what_they_look_for() {
    // An address with an ephemeral port, and ports after `:` or `=`.
    assert_eq!(
        loopback_ports("connection 127.0.0.1:50123 accepted, 127.0.0.1 too"),
        vec![Some(50123), None]
    );
    assert!(mentions_port("peer=50123 closed", 50123));
    assert!(mentions_port("addr [::1]:50123", 50123));
    assert!(!mentions_port("12:34:56.501234Z", 50123));
    assert!(!mentions_port("len=501234", 50123));
    // Every spelling of a secret.
    let secret = [
        0xfbu8, 0xff, 0x00, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    let logged = [
        format!("token={}", hex(&secret)),
        format!("token={}", hex(&secret).to_uppercase()),
        format!("token={}", STANDARD.encode(secret)),
        format!("token={}", URL_SAFE_NO_PAD.encode(secret)),
        format!("token={secret:?}"),
    ];
    let spelled = spellings(&secret);
    for line in &logged {
        assert!(spelled.iter().any(|s| line.contains(s.as_str())), "{line}");
    }
    assert_eq!(
        plain("\x1b[3mevent\x1b[0m\x1b[2m=\x1b[0mlogin"),
        "event=login"
    );
}
