//! The server's decoders of network input, fed random bytes and random JSON-ish text:
//! every JSON request body of `sotto-api` (as a handler's `Json<T>` extractor reads it, and
//! with `serde_json::from_slice`), the WebSocket client frame (`ClientFrame`, which the
//! server reads with `serde_json::from_str`), and the MLS header classification of a send
//! (`delivery::classify`, and the Welcome check of a send). None may panic; each gives a
//! value or an error; axum and serde_json agree; an accepted value round-trips; `classify`
//! accepts exactly the `PrivateMessage`s of the conversation named, with the kind and epoch
//! of their header.
//!
//! These are the bodies of the fuzz targets `server_json`, `server_ws_frame` and
//! `server_classify` in `fuzz/` (see `fuzz/README.md`), run as proptest properties with
//! modest case counts so that they fit in CI on stable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Debug;
use std::sync::LazyLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use mls_rs::group::ContentType;
use mls_rs::{MlsMessage, MlsMessageDescription};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sotto_api::{
    Ack, Bytes, ChallengeRequest, ClientFrame, DeviceAddress, LookupContacts, PublishContacts,
    RegisterAccount, RegisterDevice, RevokeDevice, SendMessage, SessionRequest, UploadKeyPackages,
    WelcomeDelivery,
};
use sotto_core::policy::{BurnOnRead, Policy};
use sotto_server::delivery::classify;
use sotto_server::storage::Kind;

/// Cases per property: every decoder here takes microseconds.
const CASES: u32 = 512;

/// No regression files are written: the test tree is shared, and a failure prints its input.
fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// The checks (the same as fuzz/fuzz_targets/common/server.rs)
// ---------------------------------------------------------------------------------------

/// Decodes `bytes` as a `T` as a handler's `Json<T>` does and with `serde_json::from_slice`:
/// neither panics, both accept the same inputs with the same value, and that value
/// re-encodes to JSON that decodes to it again.
fn check_json<T>(bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let decoded = serde_json::from_slice::<T>(bytes);
    let extracted = axum::Json::<T>::from_bytes(bytes);
    match (decoded, extracted) {
        (Ok(value), Ok(axum::Json(same))) => {
            assert_eq!(value, same, "axum decoded {} differently", hex(bytes));
            let json = serde_json::to_vec(&value).unwrap();
            let again: T = serde_json::from_slice(&json).unwrap();
            assert_eq!(again, value, "no round trip through {}", hex(&json));
            let _ = format!("{value:?}");
            Some(value)
        }
        (Err(_), Err(_)) => None,
        (a, b) => panic!(
            "serde_json and axum disagree on {}: {a:?} / {b:?}",
            hex(bytes)
        ),
    }
}

/// A WebSocket frame from a client: [`check_json`], and for text `from_str` agrees.
fn check_frame(bytes: &[u8]) -> Option<ClientFrame> {
    let frame = check_json::<ClientFrame>(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let from_str = serde_json::from_str::<ClientFrame>(text).ok();
        assert_eq!(from_str, frame, "from_str disagrees on {text:?}");
    }
    frame
}

/// `bytes` as every request body and as a client frame; how many types accepted it.
fn check_all(bytes: &[u8]) -> usize {
    [
        check_json::<RegisterAccount>(bytes).is_some(),
        check_json::<RegisterDevice>(bytes).is_some(),
        check_json::<RevokeDevice>(bytes).is_some(),
        check_json::<ChallengeRequest>(bytes).is_some(),
        check_json::<SessionRequest>(bytes).is_some(),
        check_json::<UploadKeyPackages>(bytes).is_some(),
        check_json::<SendMessage>(bytes).is_some(),
        check_json::<Ack>(bytes).is_some(),
        check_json::<PublishContacts>(bytes).is_some(),
        check_json::<LookupContacts>(bytes).is_some(),
        check_frame(bytes).is_some(),
    ]
    .iter()
    .filter(|accepted| **accepted)
    .count()
}

/// Not the id of any conversation an input names (Sotto's group ids are 32 bytes).
const OTHER_CONVERSATION: &[u8] = b"another conversation";

/// `classify` for a conversation the payload is not for and (if it names one) the one it
/// names: no panic, and it accepts exactly a `PrivateMessage` of the given conversation
/// whose epoch fits the store, with the kind and epoch of its header (as mls-rs reads
/// them). Also the Welcome check of a send. Returns what was accepted.
fn check_classify(payload: &[u8]) -> Option<(Kind, u64)> {
    let message = MlsMessage::from_bytes(payload).ok();
    let header = message.as_ref().and_then(|m| match m.description() {
        MlsMessageDescription::PrivateProtocolMessage {
            group_id,
            epoch_id,
            content_type,
        } => Some((group_id.to_vec(), epoch_id, content_type)),
        _ => None,
    });
    if header.as_ref().map(|h| h.0.as_slice()) != Some(OTHER_CONVERSATION) {
        assert!(
            classify(payload, OTHER_CONVERSATION).is_err(),
            "accepted for another conversation: {}",
            hex(payload)
        );
    }
    let _ = message.map(|m| matches!(m.description(), MlsMessageDescription::Welcome { .. }));
    let (group, epoch, content_type) = header?;
    let result = classify(payload, &group);
    if i64::try_from(epoch).is_err() {
        assert!(result.is_err(), "epoch {epoch} accepted");
        return None;
    }
    let (kind, read) = result.expect("a private message for its own conversation is accepted");
    assert_eq!(read, epoch);
    let expected = if content_type == ContentType::Commit {
        Kind::Commit
    } else {
        Kind::Application
    };
    assert_eq!(kind, expected);
    Some((kind, read))
}

// ---------------------------------------------------------------------------------------
// Real MLS messages
// ---------------------------------------------------------------------------------------

/// Real messages of one conversation between two devices.
struct Real {
    group: Vec<u8>,
    /// The commit adding bob (epoch 0).
    add: Vec<u8>,
    welcome: Vec<u8>,
    /// An application message (epoch 1).
    text: Vec<u8>,
    /// An empty commit (epoch 1).
    update: Vec<u8>,
    key_package: Vec<u8>,
}

static REAL: LazyLock<Real> = LazyLock::new(|| {
    let (alice, bob) = (common::root("alice"), common::root("bob"));
    let a = common::mls_device(&sotto_core::device::NewDevice::generate(&alice, 1).unwrap());
    let b = common::mls_device(&sotto_core::device::NewDevice::generate(&bob, 1).unwrap());
    let policy = Policy::new(
        vec![alice.public_key().fingerprint()],
        3600,
        BurnOnRead::Allowed,
    )
    .unwrap();
    let mut ca = a.create_conversation(&policy).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let (_, text) = ca.send_text("hello", 60, false, common::NOW_MS).unwrap();
    let update = ca.add_and_remove(&[], &[]).unwrap();
    Real {
        group: ca.id().to_vec(),
        add: out.commit,
        welcome: out.welcome.unwrap(),
        text,
        update: update.commit,
        key_package: b.key_package().unwrap(),
    }
});

/// Applies edits `(position, value, op)`: op 0 XORs, 1 truncates, 2 inserts.
fn mutate(template: &[u8], edits: &[(u16, u8, u8)]) -> Vec<u8> {
    let mut bytes = template.to_vec();
    for &(pos, value, op) in edits {
        let len = bytes.len();
        let at = usize::from(pos);
        match op {
            0 if len > 0 => bytes[at % len] ^= value.max(1),
            1 if len > 0 => bytes.truncate(at % len),
            2 => bytes.insert(at % (len + 1), value),
            _ => {}
        }
    }
    bytes
}

#[test]
fn real_messages_are_classified_by_their_header() {
    let real = &*REAL;
    assert_eq!(classify(&real.add, &real.group).unwrap(), (Kind::Commit, 0));
    assert_eq!(
        classify(&real.text, &real.group).unwrap(),
        (Kind::Application, 1)
    );
    assert_eq!(
        classify(&real.update, &real.group).unwrap(),
        (Kind::Commit, 1)
    );
    for message in [&real.add, &real.text, &real.update] {
        assert!(check_classify(message).is_some());
        assert!(classify(message, OTHER_CONVERSATION).is_err());
        assert!(classify(message, &real.group[1..]).is_err());
        // A byte more or less is not the same message.
        assert!(classify(&message[..message.len() - 1], &real.group).is_err());
        assert!(classify(&[message.as_slice(), &[0]].concat(), &real.group).is_err());
    }
    // A Welcome and a KeyPackage are MLS messages, but not conversation messages.
    for other in [&real.welcome, &real.key_package] {
        assert!(check_classify(other).is_none());
        assert!(classify(other, &real.group).is_err());
    }
    assert!(classify(&[], &real.group).is_err());
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

#[test]
fn valid_bodies_are_accepted_and_hostile_json_is_an_error() {
    let address = DeviceAddress {
        username: "bob".into(),
        device_id: "0f".repeat(16),
    };
    let send = SendMessage {
        message_id: "02".repeat(16),
        payload: Bytes(vec![1, 2, 3]),
        recipients: vec![address.clone()],
        welcome: Some(WelcomeDelivery {
            payload: Bytes(vec![4]),
            recipients: vec![address.clone()],
        }),
        removed: vec![address],
    };
    let json = serde_json::to_vec(&send).unwrap();
    assert_eq!(check_json::<SendMessage>(&json), Some(send));
    assert_eq!(
        check_frame(br#"{"type":"subscribe"}"#),
        Some(ClientFrame::Subscribe { after: 0 })
    );
    // `{}` is a valid revocation (the root signature is optional) and nothing else.
    assert_eq!(check_all(b"{}"), 1);
    // serde's derived decoders also take a struct's fields as an array, in declaration
    // order (`deny_unknown_fields` has nothing to refuse there). Harmless: the value is the
    // same as from the object, and the handlers validate values, not spellings.
    assert_eq!(
        check_json::<RegisterAccount>(br#"["alice","AAEC+g=="]"#),
        Some(RegisterAccount {
            username: "alice".into(),
            root_public_key: Bytes(vec![0, 1, 2, 250]),
        })
    );
    assert_eq!(check_all(b"[]"), 1, "an empty array is a revocation too");

    let deep = "[".repeat(100_000);
    let deep_object = r#"{"cursors":"#.repeat(10_000);
    let hostile: Vec<Vec<u8>> = [
        "",
        "null",
        "\u{feff}{}",
        "{} {}",
        "{}x",
        r#"{"cursors":[-1]}"#,
        r#"{"cursors":[1e3]}"#,
        r#"{"cursors":[18446744073709551616]}"#,
        r#"{"cursors":[1],"cursors":[2]}"#,
        r#"{"cursors":[1],"extra":0}"#,
        r#"{"hashes":["%%"]}"#,
        r#"{"hashes":["AAEC+g="]}"#,
        r#"{"hashes":["AAEC+h=="]}"#,
        r#"{"hashes":["AAEC-g=="]}"#,
        r#"{"username":"\ud800","root_public_key":""}"#,
        r#"{"type":"ack","cursors":null}"#,
        r#"{"type":"subscribe","after":1,"type":"ack"}"#,
        r#"{"type":"Subscribe"}"#,
        &deep,
        &deep_object,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([
        b"{\"username\":\"\xff\",\"root_public_key\":\"\"}".to_vec(),
        vec![0xff; 64],
    ])
    .collect();
    for input in &hostile {
        let text = String::from_utf8_lossy(&input[..input.len().min(60)]).into_owned();
        assert_eq!(check_all(input), 0, "{text:?} accepted");
    }
}

/// The field names of every request body and frame, and the frames' tags.
const FIELDS: &[&str] = &[
    "username",
    "root_public_key",
    "certificate",
    "root_signature",
    "device_id",
    "challenge",
    "signature",
    "key_packages",
    "last_resort",
    "message_id",
    "payload",
    "recipients",
    "welcome",
    "removed",
    "cursors",
    "hashes",
    "type",
    "after",
];
const WORDS: &[&str] = &[
    "subscribe",
    "ack",
    "message",
    "alice",
    "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
    "AAEC+g==",
    "AAEC+g=",
    "%%",
    "",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => "[a-z_]{0,10}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        vec(any::<u8>(), 0..40).prop_map(|b| Value::String(STANDARD.encode(b))),
        prop::sample::select(WORDS).prop_map(|w| Value::String(w.to_owned())),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((key(), inner), 0..7).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// JSON-ish text: mostly an object (as every body is) with the API's field names, else any
/// JSON value; serialised, then perhaps cut short or with a character spliced in.
fn json_ish() -> impl Strategy<Value = String> {
    let top = prop_oneof![
        3 => vec((key(), json_value()), 0..7)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => json_value(),
    ];
    let edit = prop_oneof![
        2 => Just(None),
        1 => Just(Some(None)),
        1 => any::<char>().prop_map(|c| Some(Some(c))),
    ];
    (top, any::<prop::sample::Index>(), edit).prop_map(|(value, at, edit)| {
        let mut text = value.to_string();
        let mut i = at.index(text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        match edit {
            None => {}
            Some(None) => text.truncate(i),
            Some(Some(c)) => text.insert(i, c),
        }
        text
    })
}

fn address() -> impl Strategy<Value = DeviceAddress> {
    (".{0,12}", "[0-9a-f]{0,34}").prop_map(|(username, device_id)| DeviceAddress {
        username,
        device_id,
    })
}

fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..64).prop_map(Bytes)
}

fn send_message() -> impl Strategy<Value = SendMessage> {
    (
        ".{0,40}",
        bytes(),
        vec(address(), 0..4),
        proptest::option::of((bytes(), vec(address(), 0..3))),
        vec(address(), 0..3),
    )
        .prop_map(
            |(message_id, payload, recipients, welcome, removed)| SendMessage {
                message_id,
                payload,
                recipients,
                welcome: welcome.map(|(payload, recipients)| WelcomeDelivery {
                    payload,
                    recipients,
                }),
                removed,
            },
        )
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        any::<u64>().prop_map(|after| ClientFrame::Subscribe { after }),
        vec(any::<u64>(), 0..8).prop_map(|cursors| ClientFrame::Ack { cursors }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_are_an_error_or_a_value(input in vec(any::<u8>(), 0..512)) {
        check_all(&input);
        check_classify(&input);
    }

    #[test]
    fn json_ish_text_is_an_error_or_a_value(text in json_ish()) {
        check_all(text.as_bytes());
    }

    #[test]
    fn every_valid_value_is_accepted(send in send_message(), frame in client_frame()) {
        let json = serde_json::to_vec(&send).unwrap();
        prop_assert_eq!(check_json::<SendMessage>(&json), Some(send));
        let json = serde_json::to_vec(&frame).unwrap();
        prop_assert_eq!(check_frame(&json), Some(frame));
    }

    #[test]
    fn edited_mls_messages_are_classified_by_their_header(
        which in 0..5usize,
        edits in vec((any::<u16>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let real = &*REAL;
        let template = [&real.add, &real.welcome, &real.text, &real.update, &real.key_package][which];
        check_classify(&mutate(template, &edits));
    }
}
