//! The client's decoders of disk and network bytes, fed random bytes, JSON-ish text and
//! edits of valid values: the key file (`profile.key`, `Vault::open`), sealed records
//! (`Vault::open_record`, and through `Store` with rows altered in the database), the JSON
//! of the model records (`store::decode_record`), the stored KeyPackage secrets
//! (`KeyPackageData`), the typed answers of the HTTP API and its error bodies
//! (`api::decode_answer`, `api::answer_error`), the live WebSocket's text frames
//! (`live::decode_frame`), and attachment locators (`messaging::parse_locator`).
//!
//! None may panic; each gives a value or the error of its kind; an accepted value
//! round-trips; an altered, truncated or moved sealed record and an altered key file are
//! refused, never mis-decoded.
//!
//! These are the bodies of the `client_*` fuzz targets in `fuzz/` (see `fuzz/README.md`,
//! and `fuzz/fuzz_targets/common/client.rs` for the same checks), run as proptest
//! properties with modest case counts so that they fit in CI on stable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::LazyLock;

use mls_rs_codec::{MlsDecode, MlsEncode};
use mls_rs_core::crypto::HpkeSecretKey;
use mls_rs_core::key_package::KeyPackageData;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sotto_api::{
    Account, ApiError, AttachmentStored, Bytes, Challenge, ClaimedKeyPackages, DeviceInfo,
    ErrorCode, Inbox, InboxMessage, KeyPackagePool, MessageKind, PasswordLoginFinished,
    PasswordLoginStarted, PasswordRegistrationResponse, Sent, ServerFrame, Session,
};
use sotto_client::api::{answer_error, decode_answer};
use sotto_client::live::decode_frame;
use sotto_client::messaging::parse_locator;
use sotto_client::model::{Contact, ConversationInfo, Message, Notice, Profile, StoredAttachment};
use sotto_client::store::{decode_record, Slot, Store, KEY_FILE};
use sotto_client::vault::Vault;
use sotto_client::ClientError;
use sotto_core::backup::{ScryptParams, SealedBackup};

/// No regression files are written: the test tree is shared, and a failure prints its input.
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Cases of the properties whose decoders take microseconds.
const FAST: u32 = 256;
/// Cases of the properties on JSON-ish text (its generation costs more than its decoding).
const JSONISH: u32 = 128;
/// Cases of the properties that run scrypt (`N = 2^10`) or SQLite per case.
const SLOW: u32 = 24;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies edits `(position, value, op)`: op 0 XORs (a non-zero value), 1 truncates, 2
/// inserts, 3 sets.
fn mutate(template: &[u8], edits: &[(u16, u8, u8)]) -> Vec<u8> {
    let mut bytes = template.to_vec();
    for &(pos, value, op) in edits {
        let len = bytes.len();
        let at = usize::from(pos);
        match op % 4 {
            0 if len > 0 => bytes[at % len] ^= value.max(1),
            1 if len > 0 => bytes.truncate(at % len),
            2 => bytes.insert(at % (len + 1), value),
            3 if len > 0 => bytes[at % len] = value,
            _ => {}
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(u16, u8, u8)>> {
    vec((any::<u16>(), any::<u8>(), 0u8..4), 1..6)
}

// ---------------------------------------------------------------------------------------
// The checks (the same as fuzz/fuzz_targets/common/client.rs)
// ---------------------------------------------------------------------------------------

/// A value the client accepted re-encodes to JSON that `decode` accepts again, with the
/// same encoding (JSON equality stands for `PartialEq`, which `Profile` lacks).
fn assert_json_round_trip<T: Serialize, E: std::fmt::Debug>(
    value: &T,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) {
    let json = serde_json::to_vec(value).unwrap();
    let again = decode(&json).unwrap_or_else(|e| panic!("{} does not decode: {e:?}", hex(&json)));
    assert_eq!(json, serde_json::to_vec(&again).unwrap(), "no round trip");
}

/// [`decode_record`]: a value that round-trips, or a [`ClientError::Store`]. True if
/// accepted.
fn check_json_record<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> bool {
    match decode_record::<T>(bytes) {
        Ok(value) => {
            assert_json_round_trip(&value, decode_record::<T>);
            true
        }
        Err(ClientError::Store(_)) => false,
        Err(e) => panic!("record {}: unexpected error {e:?}", hex(bytes)),
    }
}

/// `bytes` as every record type; how many accepted it.
fn check_records(bytes: &[u8]) -> usize {
    check_key_package_data(bytes);
    [
        check_json_record::<Profile>(bytes),
        check_json_record::<Contact>(bytes),
        check_json_record::<ConversationInfo>(bytes),
        check_json_record::<Message>(bytes),
        check_json_record::<Notice>(bytes),
    ]
    .iter()
    .filter(|accepted| **accepted)
    .count()
}

/// A stored KeyPackage's secrets, read as `MlsStore` does: no panic; what decodes is
/// encoded canonically (re-encodes to the bytes consumed) and round-trips.
fn check_key_package_data(bytes: &[u8]) -> bool {
    let mut reader = bytes;
    let Ok(data) = KeyPackageData::mls_decode(&mut reader) else {
        return false;
    };
    let consumed = bytes.len() - reader.len();
    let again = data.mls_encode_to_vec().unwrap();
    assert_eq!(again, bytes[..consumed], "not canonical: {}", hex(bytes));
    assert!(KeyPackageData::mls_decode(&mut again.as_slice()).unwrap() == data);
    true
}

/// [`decode_answer`]: a value that round-trips, or a [`ClientError::Protocol`] naming the
/// request. True if accepted.
fn check_answer<T: Serialize + DeserializeOwned + PartialEq>(body: &[u8]) -> bool {
    let decode = |b: &[u8]| decode_answer::<T>("/v1/test", b);
    match decode(body) {
        Ok(value) => {
            assert_json_round_trip(&value, decode);
            let json = serde_json::to_vec(&value).unwrap();
            assert!(decode(&json).ok() == Some(value));
            true
        }
        Err(ClientError::Protocol(m)) => {
            assert!(m.starts_with("/v1/test: "), "{m}");
            false
        }
        Err(e) => panic!("answer {}: unexpected error {e:?}", hex(body)),
    }
}

/// `body` as every answer type; how many accepted it.
fn check_answers(body: &[u8]) -> usize {
    [
        check_answer::<Account>(body),
        check_answer::<DeviceInfo>(body),
        check_answer::<Challenge>(body),
        check_answer::<Session>(body),
        check_answer::<KeyPackagePool>(body),
        check_answer::<ClaimedKeyPackages>(body),
        check_answer::<Sent>(body),
        check_answer::<Inbox>(body),
        check_answer::<PasswordRegistrationResponse>(body),
        check_answer::<PasswordLoginStarted>(body),
        check_answer::<PasswordLoginFinished>(body),
        check_answer::<AttachmentStored>(body),
    ]
    .iter()
    .filter(|accepted| **accepted)
    .count()
}

const RATE_LIMIT_ADVICE: &str = " (too many requests; try again later)";

/// [`answer_error`]: always a [`ClientError::Server`] with the status (502 for one HTTP
/// cannot carry), the code of an [`ApiError`] body, and its message cut to 300 characters
/// (plus the advice of a rate limit). Returns the message.
fn check_error(status: u16, body: &[u8]) -> String {
    let expected_status = if (100..=999).contains(&status) {
        status
    } else {
        502
    };
    let parsed = serde_json::from_slice::<ApiError>(body).ok();
    let error = answer_error(status, body);
    let _ = error.to_string();
    let ClientError::Server {
        status: s,
        code,
        message,
    } = error
    else {
        panic!("error body {}: unexpected error {error:?}", hex(body));
    };
    assert_eq!(s, expected_status);
    assert_eq!(code, parsed.as_ref().map(|e| e.error));
    let limited = s == 429 || code == Some(ErrorCode::RateLimited);
    let core = if limited {
        message.strip_suffix(RATE_LIMIT_ADVICE).expect("advice")
    } else {
        &message
    };
    assert!(core.chars().count() <= 300);
    if let Some(e) = parsed {
        assert!(e.message.starts_with(core));
    }
    message
}

/// A live text frame: an entry that round-trips, the server's error (status 0, its code
/// and message), or a [`ClientError::Protocol`] exactly when the frame is no
/// [`ServerFrame`].
fn check_frame(text: &str) -> Option<InboxMessage> {
    let reference = serde_json::from_str::<ServerFrame>(text).ok();
    match decode_frame(text) {
        Ok(entry) => {
            assert!(matches!(&reference, Some(ServerFrame::Message(m)) if *m == entry));
            let json = serde_json::to_string(&ServerFrame::Message(entry.clone())).unwrap();
            assert!(decode_frame(&json).ok() == Some(entry.clone()));
            Some(entry)
        }
        Err(ClientError::Server {
            status: 0,
            code: Some(code),
            message,
        }) => {
            assert!(
                matches!(&reference, Some(ServerFrame::Error(e)) if e.error == code && e.message == message)
            );
            None
        }
        Err(ClientError::Protocol(_)) => {
            assert!(reference.is_none(), "{text:?}");
            None
        }
        Err(e) => panic!("frame {text:?}: unexpected error {e:?}"),
    }
}

/// An attachment locator: accepted exactly when it is `id:capability` with 1 to 64 hex
/// digits and 1 to 128 of `[A-Za-z0-9_-]`, then split at its colon.
fn check_locator(locator: &str) -> bool {
    let expected = locator.split_once(':').filter(|(id, cap)| {
        (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_hexdigit())
            && (1..=128).contains(&cap.len())
            && cap
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    match parse_locator(locator) {
        Ok((id, capability)) => {
            assert_eq!(Some((id, capability)), expected, "{locator:?}");
            assert_eq!(format!("{id}:{capability}"), locator);
            assert!(!locator.contains(['/', '?', '#', '%', '.', ' ', '\\']));
            true
        }
        Err(ClientError::Attachment(_)) => {
            assert_eq!(expected, None, "{locator:?}");
            false
        }
        Err(e) => panic!("locator {locator:?}: unexpected error {e:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Valid values
// ---------------------------------------------------------------------------------------

fn profile() -> Profile {
    Profile {
        server: "https://chat.example.org".into(),
        ca_file: Some("/etc/ca.pem".into()),
        username: "alice".into(),
        device_id: "0101".into(),
        certificate: vec![1, 2, 3],
        policy_accepted_at: Some(5),
        cursor: 7,
        session: Some(("token".into(), 9)),
        unreported: vec![("c0".into(), "1d".into())],
        unacked: vec![3, 4],
        in_doubt: vec![],
    }
}

fn message() -> Message {
    Message {
        conversation: "c0ffee".into(),
        id: "00112233445566778899aabbccddeeff".into(),
        from: "alice".into(),
        from_device: "0101".into(),
        text: "hello".into(),
        attachment: Some(StoredAttachment {
            locator: "0a1b2c:cap_ab-12".into(),
            key: [7; 32],
            nonce: [1; 12],
            ciphertext_sha256: [2; 32],
            size: 5,
            file_name: "a.txt".into(),
            media_type: "text/plain".into(),
        }),
        sent_at: 1_800_000_000_000,
        expires_at: 1_800_000_360_000,
        burn_on_read: true,
        outgoing: false,
        read: false,
        delivered_to: vec!["bob".into()],
        read_by: vec![],
    }
}

/// One valid encoding of each JSON record type.
fn records() -> Vec<Vec<u8>> {
    vec![
        serde_json::to_vec(&profile()).unwrap(),
        serde_json::to_vec(&Contact {
            username: "bob".into(),
            root_key: vec![4; 133],
            verified: true,
            changed_root_key: Some(vec![5; 133]),
        })
        .unwrap(),
        serde_json::to_vec(&ConversationInfo {
            id: "c0ffee".into(),
            name: Some("team".into()),
            direct: false,
            members: vec!["alice".into(), "bob".into()],
            managers: vec!["alice".into()],
            max_ttl_seconds: 3600,
            burn_on_read: "allowed".into(),
            active: true,
            joined_at: 1,
        })
        .unwrap(),
        serde_json::to_vec(&message()).unwrap(),
        serde_json::to_vec(&Notice {
            at: 1,
            text: "bob's key changed".into(),
        })
        .unwrap(),
    ]
}

fn key_package_data() -> Vec<u8> {
    KeyPackageData::new(
        vec![0, 1, 2, 3],
        HpkeSecretKey::from(vec![9; 32]),
        HpkeSecretKey::from(vec![8; 32]),
        1_900_000_000,
    )
    .mls_encode_to_vec()
    .unwrap()
}

fn entry() -> InboxMessage {
    InboxMessage {
        cursor: 3,
        conversation: "c0ffee".into(),
        seq: 1,
        kind: MessageKind::Welcome,
        payload: Bytes(vec![0, 1, 2]),
    }
}

/// Valid answers of several types.
fn answers() -> Vec<Vec<u8>> {
    vec![
        serde_json::to_vec(&Inbox {
            messages: vec![entry(), entry()],
        })
        .unwrap(),
        br#"{"id":"0a1b","token":"cap","expires_at":9}"#.to_vec(),
        br#"{"seq":1,"duplicate":false}"#.to_vec(),
        br#"{"available":3,"low_water":false,"has_last_resort":true,"last_resort_used":false}"#
            .to_vec(),
    ]
}

fn frames() -> Vec<String> {
    vec![
        serde_json::to_string(&ServerFrame::Message(entry())).unwrap(),
        serde_json::to_string(&ServerFrame::Error(ApiError {
            error: ErrorCode::Unauthorized,
            message: "session expired".into(),
        }))
        .unwrap(),
    ]
}

// ---------------------------------------------------------------------------------------
// JSON-ish text
// ---------------------------------------------------------------------------------------

/// Field names of the records, answers and frames, and a few others.
const FIELDS: &[&str] = &[
    "server",
    "ca_file",
    "username",
    "device_id",
    "certificate",
    "policy_accepted_at",
    "cursor",
    "session",
    "unreported",
    "unacked",
    "root_key",
    "verified",
    "changed_root_key",
    "id",
    "name",
    "direct",
    "members",
    "managers",
    "max_ttl_seconds",
    "burn_on_read",
    "active",
    "joined_at",
    "conversation",
    "from",
    "from_device",
    "text",
    "attachment",
    "locator",
    "key",
    "nonce",
    "ciphertext_sha256",
    "size",
    "file_name",
    "media_type",
    "sent_at",
    "expires_at",
    "outgoing",
    "read",
    "delivered_to",
    "read_by",
    "at",
    "messages",
    "seq",
    "kind",
    "payload",
    "type",
    "error",
    "message",
    "duplicate",
    "available",
    "low_water",
    "has_last_resort",
    "last_resort_used",
    "token",
    "devices",
    "root_public_key",
    "nonce",
    "key_packages",
    "",
];

const WORDS: &[&str] = &[
    "message",
    "error",
    "application",
    "commit",
    "welcome",
    "not_found",
    "rate_limited",
    "unauthorized",
    "bad_request",
    "allowed",
    "required",
    "c0ffee",
    "alice",
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
        // A byte array of the size of a key, nonce or hash.
        (prop::sample::select(&[12usize, 32][..]), any::<u8>())
            .prop_map(|(n, b)| Value::Array(vec![Value::from(b); n])),
        prop::sample::select(WORDS).prop_map(|w| Value::String(w.to_owned())),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((key(), inner), 0..7).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// JSON-ish text: mostly an object with the known field names, else any JSON value;
/// serialised, then perhaps cut short or with a character spliced in.
fn json_ish() -> impl Strategy<Value = String> {
    let top = prop_oneof![
        3 => vec((key(), json_value()), 0..10)
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

// ---------------------------------------------------------------------------------------
// Vaults and stores
// ---------------------------------------------------------------------------------------

const PASSPHRASE: &[u8] = b"correct horse battery";
const AAD: &[u8] = b"message\0row-index-of-32-bytes...";
const PLAINTEXT: &[u8] = br#"{"at":1,"text":"a notice"}"#;

fn quick() -> ScryptParams {
    ScryptParams::new(10, 8, 1).unwrap()
}

/// A vault, its key file and a record sealed for [`AAD`].
static VAULT: LazyLock<(Vault, Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
    let (vault, key_file) = Vault::create(PASSPHRASE, quick()).unwrap();
    let sealed = vault.seal(AAD, PLAINTEXT).unwrap();
    (vault, key_file, sealed)
});

/// Opens `candidate` for `aad`: only the real sealed record opens, only for its row, to
/// its plaintext; a refusal is a [`ClientError::Store`].
fn check_sealed(candidate: &[u8], aad: &[u8]) -> bool {
    let (vault, _, sealed) = &*VAULT;
    match vault.open_record(aad, candidate) {
        Ok(plaintext) => {
            assert!(
                aad == AAD && candidate == sealed.as_slice() && plaintext.as_slice() == PLAINTEXT,
                "a forged or moved record opened: {} for {}",
                hex(candidate),
                hex(aad)
            );
            true
        }
        Err(ClientError::Store(_)) => false,
        Err(e) => panic!("record {}: unexpected error {e:?}", hex(candidate)),
    }
}

/// Opens a key file: only the real one opens (to the same keys); a refusal is
/// [`ClientError::WrongPassphrase`] or [`ClientError::Store`].
fn check_key_file(candidate: &[u8]) -> bool {
    let (vault, key_file, sealed) = &*VAULT;
    match Vault::open(candidate, PASSPHRASE) {
        Ok(opened) => {
            assert_eq!(candidate, key_file.as_slice(), "an altered key file opened");
            assert_eq!(&*opened.open_record(AAD, sealed).unwrap(), PLAINTEXT);
            assert_eq!(opened.index(&[b"x"]), vault.index(&[b"x"]));
            true
        }
        Err(ClientError::WrongPassphrase | ClientError::Store(_)) => false,
        Err(e) => panic!("key file {}: unexpected error {e:?}", hex(candidate)),
    }
}

/// Replaces the sealed value of every record of `kind` in the store's database.
fn overwrite(store: &Store, kind: &str, value: &[u8]) {
    let conn = store.conn().unwrap();
    conn.execute(
        "UPDATE records SET value = ?1 WHERE kind = ?2",
        rusqlite::params![value, kind],
    )
    .unwrap();
}

fn sealed_value(store: &Store, kind: &str) -> Vec<u8> {
    let conn = store.conn().unwrap();
    conn.query_row(
        "SELECT value FROM records WHERE kind = ?1",
        rusqlite::params![kind],
        |row| row.get(0),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn valid_values_are_accepted_and_garbage_is_a_typed_error() {
    for record in records() {
        assert_eq!(
            check_records(&record),
            1,
            "{}",
            String::from_utf8_lossy(&record)
        );
    }
    assert!(check_key_package_data(&key_package_data()));
    // Trailing bytes after a KeyPackage are ignored, as `MlsStore` reads it (the record is
    // authenticated, so only this client wrote them).
    assert!(check_key_package_data(
        &[key_package_data(), vec![0]].concat()
    ));
    for answer in answers() {
        assert!(
            check_answers(&answer) >= 1,
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    for frame in frames() {
        let _ = check_frame(&frame);
    }
    assert_eq!(check_frame(&frames()[0]), Some(entry()));
    assert!(matches!(
        decode_frame(&frames()[1]),
        Err(ClientError::Server {
            status: 0,
            code: Some(ErrorCode::Unauthorized),
            ..
        })
    ));
    for garbage in [
        &b""[..],
        b"null",
        b"[]",
        b"{",
        b"\xff\xfe",
        b"{\"type\":\"message\"}",
    ] {
        assert_eq!(check_records(garbage), 0);
        assert_eq!(check_answers(garbage), 0);
        assert_eq!(check_frame(&String::from_utf8_lossy(garbage)), None);
    }
    // An error body: its code and message, cut to 300 characters; else the status's name.
    let long = ApiError {
        error: ErrorCode::NotFound,
        message: "é".repeat(1000),
    };
    assert_eq!(
        check_error(404, &serde_json::to_vec(&long).unwrap()),
        "é".repeat(300)
    );
    assert_eq!(check_error(502, b"<html>"), "502 Bad Gateway");
    assert!(check_error(429, b"").ends_with(RATE_LIMIT_ADVICE));
    assert_eq!(check_error(0, b""), "502 Bad Gateway");
    for ok in [
        "0a1b2c:cap_ab-12",
        "F:x",
        &format!("{}:{}", "a".repeat(64), "-".repeat(128)),
    ] {
        assert!(check_locator(ok), "{ok}");
    }
    for bad in [
        "",
        ":",
        "0a:",
        ":cap",
        "0a1b",
        "0g:cap",
        "0a:cap:x",
        "0a/../x:cap",
        "0a:cap?x=1",
        "0a:cap/x",
        "0a:c%2f",
        "0a:ca p",
        &format!("{}:x", "a".repeat(65)),
        &format!("a:{}", "x".repeat(129)),
    ] {
        assert!(!check_locator(bad), "{bad}");
    }
}

#[test]
fn a_sealed_record_opens_only_unaltered_and_in_its_own_row() {
    let (vault, key_file, sealed) = &*VAULT;
    assert!(check_sealed(sealed, AAD));
    assert!(!check_sealed(sealed, b"message\0another row............."));
    assert!(!check_sealed(&sealed[..sealed.len() - 1], AAD));
    assert!(!check_sealed(&sealed[..11], AAD));
    assert!(!check_sealed(&[], AAD));
    assert!(check_key_file(key_file));
    assert!(!check_key_file(b""));
    assert!(matches!(
        Vault::open(key_file, b"wrong"),
        Err(ClientError::WrongPassphrase)
    ));
    // Records are independent of the key file's bytes: a second vault cannot open them.
    let (other, _) = Vault::create(PASSPHRASE, quick()).unwrap();
    assert!(other.open_record(AAD, sealed).is_err());
    assert!(vault.open_record(AAD, sealed).is_ok());
}

/// Through the store: a row whose sealed value was altered, cut, or copied from another
/// row (of the same or another kind) is refused by `get` and `list` with a store error,
/// never decoded; the unaltered row reads back.
#[test]
fn the_store_refuses_altered_and_moved_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), PASSPHRASE, quick()).unwrap();
    let notice = Notice {
        at: 7,
        text: "a secret notice".into(),
    };
    let contact = Contact {
        username: "bob".into(),
        root_key: vec![4; 133],
        verified: false,
        changed_root_key: None,
    };
    {
        let conn = store.conn().unwrap();
        store
            .put(&conn, Slot::new("notice", &[b"n1"]), 0, None, &notice)
            .unwrap();
        store
            .put(&conn, Slot::new("notice", &[b"n2"]), 1, None, &notice)
            .unwrap();
        store
            .put(&conn, Slot::new("contact", &[b"bob"]), 0, None, &contact)
            .unwrap();
    }
    let get_notice = |store: &Store| {
        let conn = store.conn().unwrap();
        store.get::<Notice>(&conn, Slot::new("notice", &[b"n1"]))
    };
    let list_contacts = |store: &Store| {
        let conn = store.conn().unwrap();
        store.list::<Contact>(&conn, "contact", None)
    };
    assert_eq!(get_notice(&store).unwrap(), Some(notice.clone()));
    let real = sealed_value(&store, "contact");

    // A notice's sealed value in the contact's row: same key, another row and kind.
    let conn = store.conn().unwrap();
    let notice_value: Vec<u8> = conn
        .query_row(
            "SELECT value FROM records WHERE kind = 'notice' ORDER BY sort LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    // The second notice's row, given the first notice's value.
    conn.execute(
        "UPDATE records SET value = ?1 WHERE kind = 'notice' AND sort = 1",
        rusqlite::params![notice_value],
    )
    .unwrap();
    let list: Result<Vec<Notice>, _> = store.list(&conn, "notice", None);
    assert!(matches!(list, Err(ClientError::Store(_))), "{list:?}");
    drop(conn);
    overwrite(&store, "contact", &notice_value);
    assert!(matches!(list_contacts(&store), Err(ClientError::Store(_))));

    proptest!(config(SLOW), |(edits in edits())| {
        let altered = mutate(&real, &edits);
        overwrite(&store, "contact", &altered);
        let read = list_contacts(&store);
        if altered == real {
            prop_assert_eq!(read.unwrap(), vec![contact.clone()]);
        } else {
            prop_assert!(matches!(read, Err(ClientError::Store(_))), "{}", hex(&altered));
        }
    });
    overwrite(&store, "contact", &real);
    assert_eq!(list_contacts(&store).unwrap(), vec![contact]);
}

/// A profile whose key file was altered does not open (a wrong-passphrase error, before
/// anything is written), and one cut to nothing neither.
#[test]
fn an_altered_key_file_does_not_open_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::create(dir.path(), PASSPHRASE, quick()).unwrap());
    let path = dir.path().join(KEY_FILE);
    let real = std::fs::read(&path).unwrap();
    drop(Store::open(dir.path(), PASSPHRASE).unwrap());
    for altered in [
        mutate(&real, &[(40, 1, 0)]),
        mutate(&real, &[(u16::MAX, 1, 0)]),
        real[..real.len() - 1].to_vec(),
        Vec::new(),
        vec![0; 20_000],
    ] {
        std::fs::write(&path, &altered).unwrap();
        let opened = Store::open(dir.path(), PASSPHRASE);
        assert!(
            matches!(opened, Err(ClientError::WrongPassphrase)),
            "{}: {opened:?}",
            hex(&altered)
        );
    }
    std::fs::write(&path, &real).unwrap();
    drop(Store::open(dir.path(), PASSPHRASE).unwrap());
}

proptest! {
    #![proptest_config(config(FAST))]

    #[test]
    fn records_never_panic_and_round_trip(bytes in vec(any::<u8>(), 0..256)) {
        check_records(&bytes);
    }

    #[test]
    fn edited_records_never_panic_and_round_trip(
        which in 0usize..5,
        edits in edits(),
    ) {
        check_records(&mutate(&records()[which], &edits));
    }

    #[test]
    fn edited_key_package_secrets_never_panic(edits in edits()) {
        check_key_package_data(&mutate(&key_package_data(), &edits));
    }

    #[test]
    fn answers_never_panic_and_round_trip(bytes in vec(any::<u8>(), 0..256)) {
        check_answers(&bytes);
    }

    #[test]
    fn edited_answers_never_panic_and_round_trip(which in 0usize..4, edits in edits()) {
        check_answers(&mutate(&answers()[which], &edits));
    }

    #[test]
    fn edited_live_frames_never_panic(which in 0usize..2, edits in edits()) {
        let bytes = mutate(frames()[which].as_bytes(), &edits);
        check_frame(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn locators_are_accepted_exactly_when_well_formed(
        locator in prop_oneof![
            "[0-9a-fA-F]{0,66}:[A-Za-z0-9_-]{0,130}",
            "[0-9a-f:/?.%#_ -]{0,12}",
            ".{0,40}",
        ],
    ) {
        check_locator(&locator);
    }

    #[test]
    fn random_sealed_records_are_refused(
        bytes in vec(any::<u8>(), 0..96),
        aad in vec(any::<u8>(), 0..40),
    ) {
        check_sealed(&bytes, AAD);
        check_sealed(&bytes, &aad);
    }

    #[test]
    fn altered_sealed_records_are_refused(edits in edits(), aad in vec(any::<u8>(), 0..40)) {
        let (_, _, sealed) = &*VAULT;
        let altered = mutate(sealed, &edits);
        prop_assert_eq!(check_sealed(&altered, AAD), altered == *sealed);
        check_sealed(sealed, &aad);
    }
}

proptest! {
    #![proptest_config(config(JSONISH))]

    #[test]
    fn json_ish_records_never_panic_and_round_trip(text in json_ish()) {
        check_records(text.as_bytes());
    }

    #[test]
    fn json_ish_answers_never_panic_and_round_trip(text in json_ish()) {
        check_answers(text.as_bytes());
    }

    #[test]
    fn error_bodies_are_server_errors(status in any::<u16>(), text in json_ish(), raw in any::<bool>()) {
        let body = if raw { text.as_bytes().to_vec() } else {
            serde_json::to_vec(&ApiError { error: ErrorCode::RateLimited, message: text }).unwrap()
        };
        check_error(status, &body);
    }

    #[test]
    fn live_frames_never_panic(text in json_ish()) {
        check_frame(&text);
    }
}

proptest! {
    #![proptest_config(config(SLOW))]

    #[test]
    fn altered_key_files_are_refused(edits in edits()) {
        let (_, key_file, _) = &*VAULT;
        let altered = mutate(key_file, &edits);
        // An edit may raise the scrypt cost to what the parser allows (seconds per open);
        // that bound is tested in sotto-core.
        if let Ok(parsed) = SealedBackup::from_bytes(&altered) {
            let params = parsed.params();
            prop_assume!(params.log_n() <= 12 && params.r() * params.p() <= 8);
        }
        prop_assert_eq!(check_key_file(&altered), altered == *key_file);
    }

    #[test]
    fn random_key_files_are_refused(bytes in vec(any::<u8>(), 0..160)) {
        prop_assert!(!check_key_file(&bytes));
    }
}
