//! The checks of the client's decoders, shared by the `client_*` targets and the seeds of
//! `examples/gen_corpus.rs`; the same properties run as proptest tests in
//! `crates/client/tests/decoders_no_panic.rs`.
//!
//! What the client decodes from disk: the key file (`profile.key`, [`Vault::open`]), each
//! sealed record ([`Vault::open_record`]), the JSON of the model records inside
//! ([`decode_record`]) and the MLS KeyPackage secrets (`KeyPackageData`). From the network:
//! the typed answers of the HTTP API ([`decode_answer`]) and its error bodies
//! ([`answer_error`]), the live WebSocket's text frames ([`decode_frame`]), and the
//! attachment locators other members send ([`parse_locator`]).

use std::sync::LazyLock;

use mls_rs_core::crypto::HpkeSecretKey;
use mls_rs_core::key_package::KeyPackageData;
use mls_rs_core::mls_rs_codec::{MlsDecode, MlsEncode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sotto_api::{
    Account, ApiError, AttachmentStored, Bytes, Challenge, ClaimedKeyPackages, DeviceInfo,
    ErrorCode, Inbox, InboxMessage, KeyPackagePool, MessageKind, PasswordLoginFinished,
    PasswordLoginStarted, PasswordRegistrationResponse, Sent, ServerFrame, Session,
};
use sotto_client::api::{answer_error, decode_answer};
use sotto_client::live::decode_frame;
use sotto_client::messaging::parse_locator;
use sotto_client::model::{Contact, ConversationInfo, Message, Notice, Profile, StoredAttachment};
use sotto_client::store::decode_record;
use sotto_client::vault::Vault;
use sotto_client::ClientError;
use sotto_core::backup::{ScryptParams, SealedBackup};

use super::{hex, mutate};

// ---------------------------------------------------------------------------------------
// Typed JSON: the shared round-trip check
// ---------------------------------------------------------------------------------------

/// A value the client accepted re-encodes to JSON that `decode` accepts again, with the same
/// encoding (so the same value; `Profile` has no `PartialEq`, JSON equality stands for it).
fn assert_json_round_trip<T, E>(value: &T, decode: impl Fn(&[u8]) -> Result<T, E>)
where
    T: Serialize,
    E: std::fmt::Debug,
{
    let json = serde_json::to_vec(value).expect("a decoded value encodes");
    let again = decode(&json).unwrap_or_else(|e| panic!("{} does not decode: {e:?}", hex(&json)));
    let json_again = serde_json::to_vec(&again).expect("a decoded value encodes");
    assert_eq!(json, json_again, "no round trip through {}", hex(&json));
}

// ---------------------------------------------------------------------------------------
// Records of the profile store
// ---------------------------------------------------------------------------------------

/// The record types of the profile store, in the order the selector byte picks them.
pub const RECORD_TYPES: [&str; 6] = [
    "Profile",
    "Contact",
    "ConversationInfo",
    "Message",
    "Notice",
    "KeyPackageData",
];

/// Decodes `bytes` as the opened record `selector` (mod 6) picks: no panic, a
/// [`ClientError::Store`] or a value that round-trips.
pub fn check_record(selector: u8, bytes: &[u8]) {
    match selector % 6 {
        0 => check_json_record::<Profile>(bytes),
        1 => check_json_record::<Contact>(bytes),
        2 => check_json_record::<ConversationInfo>(bytes),
        3 => check_json_record::<Message>(bytes),
        4 => check_json_record::<Notice>(bytes),
        _ => check_key_package_data(bytes),
    }
}

/// [`decode_record`]: a value that round-trips, or a [`ClientError::Store`].
pub fn check_json_record<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    match decode_record::<T>(bytes) {
        Ok(value) => assert_json_round_trip(&value, decode_record::<T>),
        Err(ClientError::Store(_)) => {}
        Err(e) => panic!("record {}: unexpected error {e:?}", hex(bytes)),
    }
}

/// A stored KeyPackage's secrets, as `MlsStore` reads them (`mls_decode`, trailing bytes
/// ignored): no panic, and what decodes re-encodes to bytes that decode to the same value,
/// and that are a prefix of the input (the encoding is canonical).
pub fn check_key_package_data(bytes: &[u8]) {
    let mut reader = bytes;
    if let Ok(data) = KeyPackageData::mls_decode(&mut reader) {
        let consumed = bytes.len() - reader.len();
        let again = data
            .mls_encode_to_vec()
            .expect("decoded KeyPackageData encodes");
        assert_eq!(
            again,
            bytes[..consumed],
            "KeyPackageData not canonical: {}",
            hex(bytes)
        );
        let round = KeyPackageData::mls_decode(&mut again.as_slice()).expect("re-decodes");
        assert!(round == data, "KeyPackageData round trip: {}", hex(bytes));
    }
}

// ---------------------------------------------------------------------------------------
// Sealed records and the key file
// ---------------------------------------------------------------------------------------

/// The passphrase of [`key_file`].
pub const PASSPHRASE: &[u8] = b"correct horse battery";
/// The row (associated data) and plaintext of [`sealed_record`].
pub const RECORD_AAD: &[u8] = b"message\0row-index-of-32-bytes...";
/// The plaintext of [`sealed_record`].
pub const RECORD_PLAINTEXT: &[u8] = br#"{"at":1,"text":"a notice"}"#;

/// Scrypt `N = 2^10`, so that each open takes about a millisecond.
pub fn quick() -> ScryptParams {
    ScryptParams::new(10, 8, 1).expect("valid parameters")
}

/// A vault, its key file (sealed under [`PASSPHRASE`]) and a record sealed with it for
/// [`RECORD_AAD`], made once per process.
pub static VAULT: LazyLock<(Vault, Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
    let (vault, key_file) = Vault::create(PASSPHRASE, quick()).expect("vault");
    let sealed = vault.seal(RECORD_AAD, RECORD_PLAINTEXT).expect("seal");
    (vault, key_file, sealed)
});

/// A sealed record as read from the database: first byte even, the rest are edits (see
/// [`mutate`]) of a real sealed record; odd, the rest is the sealed value itself. Either is
/// opened for its row and for another: only the unaltered record opens, only for its row,
/// to its plaintext. Every refusal is a [`ClientError::Store`].
pub fn check_sealed_record(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (vault, _, sealed) = &*VAULT;
    let candidate = if mode % 2 == 0 {
        mutate(sealed, rest)
    } else {
        rest.to_vec()
    };
    for (aad, own_row) in [(RECORD_AAD, true), (&rest[..rest.len().min(40)], false)] {
        let own_row = own_row || aad == RECORD_AAD;
        match vault.open_record(aad, &candidate) {
            Ok(plaintext) => {
                assert!(
                    own_row && candidate == *sealed && plaintext.as_slice() == RECORD_PLAINTEXT,
                    "a forged or moved record opened: {} (row {})",
                    hex(&candidate),
                    hex(aad)
                );
            }
            Err(ClientError::Store(_)) => {}
            Err(e) => panic!("record {}: unexpected error {e:?}", hex(&candidate)),
        }
    }
}

/// Largest scrypt `log2 N` tried: an edit may raise the cost to what the parser allows
/// (seconds per input); a refusal for a larger cost is tested in `sotto-core`.
const MAX_FUZZ_LOG_N: u8 = 12;

/// The key file (`profile.key`): first byte even, the rest are edits of a real key file;
/// odd, the rest is the file. Opened with [`PASSPHRASE`]: of the edits only the unaltered
/// file opens (to the same keys), and a refusal is [`ClientError::WrongPassphrase`] or
/// [`ClientError::Store`].
pub fn check_key_file(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (vault, key_file, sealed) = &*VAULT;
    let candidate = if mode % 2 == 0 {
        mutate(key_file, rest)
    } else {
        rest.to_vec()
    };
    if let Ok(parsed) = SealedBackup::from_bytes(&candidate) {
        let params = parsed.params();
        if params.log_n() > MAX_FUZZ_LOG_N || params.r() * params.p() > 8 {
            return;
        }
    }
    match Vault::open(&candidate, PASSPHRASE) {
        Ok(opened) if candidate == *key_file => {
            let plaintext = opened.open_record(RECORD_AAD, sealed).expect("same keys");
            assert_eq!(plaintext.as_slice(), RECORD_PLAINTEXT);
            assert_eq!(opened.index(&[b"x"]), vault.index(&[b"x"]));
        }
        // Raw bytes may be another genuine key file under the same passphrase (the seed
        // of another `gen_corpus` run, made with fresh keys); an edit of this one may not.
        Ok(_) => assert!(
            mode % 2 == 1,
            "an altered key file opened: {}",
            hex(&candidate)
        ),
        Err(ClientError::WrongPassphrase | ClientError::Store(_)) => {}
        Err(e) => panic!("key file {}: unexpected error {e:?}", hex(&candidate)),
    }
}

// ---------------------------------------------------------------------------------------
// Answers of the HTTP API
// ---------------------------------------------------------------------------------------

/// The answer types the client decodes, in the order the selector byte picks them; the
/// last is an error body (two more bytes: the status).
pub const ANSWER_TYPES: [&str; 13] = [
    "Account",
    "DeviceInfo",
    "Challenge",
    "Session",
    "KeyPackagePool",
    "ClaimedKeyPackages",
    "Sent",
    "Inbox",
    "PasswordRegistrationResponse",
    "PasswordLoginStarted",
    "PasswordLoginFinished",
    "AttachmentStored",
    "error body",
];

/// Decodes `body` as the answer `selector` (mod 13) picks.
pub fn check_answer(selector: u8, body: &[u8]) {
    match selector % 13 {
        0 => check_typed_answer::<Account>(body),
        1 => check_typed_answer::<DeviceInfo>(body),
        2 => check_typed_answer::<Challenge>(body),
        3 => check_typed_answer::<Session>(body),
        4 => check_typed_answer::<KeyPackagePool>(body),
        5 => check_typed_answer::<ClaimedKeyPackages>(body),
        6 => check_typed_answer::<Sent>(body),
        7 => check_typed_answer::<Inbox>(body),
        8 => check_typed_answer::<PasswordRegistrationResponse>(body),
        9 => check_typed_answer::<PasswordLoginStarted>(body),
        10 => check_typed_answer::<PasswordLoginFinished>(body),
        11 => check_typed_answer::<AttachmentStored>(body),
        _ => {
            let (status, rest) = match body {
                [hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), rest),
                _ => (500, body),
            };
            check_error_answer(status, rest);
        }
    }
}

/// [`decode_answer`]: a value that round-trips (and equals its re-decoding), or a
/// [`ClientError::Protocol`].
pub fn check_typed_answer<T>(body: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    let decode = |b: &[u8]| decode_answer::<T>("/fuzz", b);
    match decode(body) {
        Ok(value) => {
            assert_json_round_trip(&value, decode);
            let json = serde_json::to_vec(&value).expect("encodes");
            assert!(decode(&json).ok() == Some(value), "{}", hex(body));
        }
        Err(ClientError::Protocol(m)) => assert!(m.starts_with("/fuzz: "), "{m}"),
        Err(e) => panic!("answer {}: unexpected error {e:?}", hex(body)),
    }
}

/// [`answer_error`]: always a [`ClientError::Server`] with the status (502 for one HTTP
/// cannot carry), the code of an [`ApiError`] body, and a message of at most 300 characters
/// (plus the advice of a rate limit).
pub fn check_error_answer(status: u16, body: &[u8]) {
    let expected_status = if (100..=999).contains(&status) {
        status
    } else {
        502
    };
    let parsed = serde_json::from_slice::<ApiError>(body).ok();
    match answer_error(status, body) {
        ClientError::Server {
            status: s,
            code,
            message,
        } => {
            assert_eq!(s, expected_status);
            assert_eq!(code, parsed.as_ref().map(|e| e.error), "{}", hex(body));
            let limited = s == 429 || code == Some(ErrorCode::RateLimited);
            let suffix = " (too many requests; try again later)";
            let core = if limited {
                message.strip_suffix(suffix).expect("rate-limit advice")
            } else {
                &message
            };
            assert!(core.chars().count() <= 300, "message too long");
            if let Some(e) = parsed {
                assert!(e.message.starts_with(core), "message altered");
            }
            let _ = ClientError::Server {
                status: s,
                code,
                message,
            }
            .to_string();
        }
        e => panic!("error body {}: unexpected error {e:?}", hex(body)),
    }
}

// ---------------------------------------------------------------------------------------
// Live frames and attachment locators
// ---------------------------------------------------------------------------------------

/// A text frame of the live WebSocket (tungstenite hands over only valid UTF-8, so other
/// input is read lossily): a mailbox entry that round-trips, the server's error (status
/// 0, its code), or a [`ClientError::Protocol`].
pub fn check_live_frame(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let reference = serde_json::from_str::<ServerFrame>(&text).ok();
    match decode_frame(&text) {
        Ok(entry) => {
            assert!(
                matches!(&reference, Some(ServerFrame::Message(m)) if *m == entry),
                "{}",
                hex(bytes)
            );
            let json = serde_json::to_string(&ServerFrame::Message(entry.clone())).expect("json");
            assert!(decode_frame(&json).ok() == Some(entry), "{json}");
        }
        Err(ClientError::Server {
            status: 0,
            code: Some(code),
            message,
        }) => assert!(
            matches!(&reference, Some(ServerFrame::Error(e)) if e.error == code && e.message == message),
            "{}",
            hex(bytes)
        ),
        Err(ClientError::Protocol(_)) => assert!(reference.is_none(), "{}", hex(bytes)),
        Err(e) => panic!("frame {}: unexpected error {e:?}", hex(bytes)),
    }
}

/// An attachment locator from another member (the `blob_id` of its attachment, which the
/// client keeps only if it is UTF-8): accepted exactly when it is `id:capability` with 1 to
/// 64 hex digits and 1 to 128 of `[A-Za-z0-9_-]`, and then split at its colon; refused
/// with [`ClientError::Attachment`].
pub fn check_locator(bytes: &[u8]) {
    let Ok(locator) = std::str::from_utf8(bytes) else {
        return;
    };
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
            assert!(!locator.contains(['/', '?', '#', '%', '.', ' ']));
        }
        Err(ClientError::Attachment(_)) => assert_eq!(expected, None, "{locator:?}"),
        Err(e) => panic!("locator {locator:?}: unexpected error {e:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------------------

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("json")
}

/// A stored message with an attachment.
pub fn sample_message() -> Message {
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

/// A valid encoding of each record type, with its selector byte.
pub fn record_seeds() -> Vec<Vec<u8>> {
    let profile = Profile {
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
    };
    let contact = Contact {
        username: "bob".into(),
        root_key: vec![4; 133],
        verified: true,
        changed_root_key: Some(vec![5; 133]),
    };
    let info = ConversationInfo {
        id: "c0ffee".into(),
        name: Some("team".into()),
        direct: false,
        members: vec!["alice".into(), "bob".into()],
        managers: vec!["alice".into()],
        max_ttl_seconds: 3600,
        burn_on_read: "allowed".into(),
        active: true,
        joined_at: 1,
    };
    let notice = Notice {
        at: 1,
        text: "bob's key changed".into(),
    };
    let kp = KeyPackageData::new(
        vec![0, 1, 2, 3],
        HpkeSecretKey::from(vec![9; 32]),
        HpkeSecretKey::from(vec![8; 32]),
        1_900_000_000,
    )
    .mls_encode_to_vec()
    .expect("encodes");
    vec![
        [&[0u8][..], &json(&profile)].concat(),
        [&[1u8][..], &json(&contact)].concat(),
        [&[2u8][..], &json(&info)].concat(),
        [&[3u8][..], &json(&sample_message())].concat(),
        [&[4u8][..], &json(&notice)].concat(),
        [&[5u8][..], &kp].concat(),
    ]
}

/// Seeds of the sealed-record and key-file targets: edits of the real value, and the
/// value itself (which differs per run: fresh keys).
pub fn vault_seeds(real: &[u8]) -> Vec<Vec<u8>> {
    vec![
        vec![0],
        vec![0, 0, 0, 20, 0x01],
        vec![0, 2, 0, 40, 0],
        vec![0, 3, 0, 0, 0x42],
        [&[1u8][..], real].concat(),
    ]
}

/// A valid answer of several types (with its selector byte), and error bodies.
pub fn answer_seeds() -> Vec<Vec<u8>> {
    let entry = InboxMessage {
        cursor: 3,
        conversation: "c0ffee".into(),
        seq: 1,
        kind: MessageKind::Application,
        payload: Bytes(vec![0, 1, 2]),
    };
    let mut seeds = vec![
        [
            &[7u8][..],
            &json(&Inbox {
                messages: vec![entry],
            }),
        ]
        .concat(),
        [
            &[11u8][..],
            br#"{"id":"0a1b","token":"cap","expires_at":9}"#,
        ]
        .concat(),
        [&[6u8][..], br#"{"seq":1,"duplicate":false}"#].concat(),
        [
            &[4u8][..],
            br#"{"available":3,"low_water":false,"has_last_resort":true,"last_resort_used":false}"#,
        ]
        .concat(),
    ];
    for (status, body) in [
        (
            404u16,
            json(&ApiError {
                error: ErrorCode::NotFound,
                message: "no such user".into(),
            }),
        ),
        (
            429,
            json(&ApiError {
                error: ErrorCode::RateLimited,
                message: "slow down".into(),
            }),
        ),
        (502, b"<html>bad gateway</html>".to_vec()),
    ] {
        seeds.push([&[12u8][..], &status.to_be_bytes(), &body].concat());
    }
    seeds
}

/// Valid live frames: a message and an error.
pub fn frame_seeds() -> Vec<Vec<u8>> {
    let entry = InboxMessage {
        cursor: 3,
        conversation: "c0ffee".into(),
        seq: 1,
        kind: MessageKind::Commit,
        payload: Bytes(vec![0, 1, 2]),
    };
    vec![
        json(&ServerFrame::Message(entry)),
        json(&ServerFrame::Error(ApiError {
            error: ErrorCode::Unauthorized,
            message: "session expired".into(),
        })),
    ]
}

/// Valid and nearly valid locators.
pub fn locator_seeds() -> Vec<Vec<u8>> {
    [
        "0a1b2c:cap_ab-12",
        "ff:x",
        "0a1b2c/../x:cap",
        "0a:cap?x=1",
        ":cap",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}
