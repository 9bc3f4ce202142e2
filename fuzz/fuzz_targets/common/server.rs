//! The checks of the server's decoders, shared by the `server_*` targets and the seeds of
//! `examples/gen_corpus.rs`; the same properties run as proptest tests in
//! `crates/server/tests/decoders_no_panic.rs`.

use std::fmt::Debug;

use mls_rs::group::ContentType;
use mls_rs::{MlsMessage, MlsMessageDescription};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sotto_api::{
    Ack, ChallengeRequest, ClientFrame, LookupContacts, PublishContacts, RegisterAccount,
    RegisterDevice, RevokeDevice, SendMessage, SessionRequest, UploadKeyPackages,
};
use sotto_server::delivery::classify;
use sotto_server::storage::Kind;

use super::hex;

/// The JSON request bodies of the HTTP API, in the order the selector byte picks them.
pub const REQUEST_TYPES: [&str; 10] = [
    "RegisterAccount",
    "RegisterDevice",
    "RevokeDevice",
    "ChallengeRequest",
    "SessionRequest",
    "UploadKeyPackages",
    "SendMessage",
    "Ack",
    "PublishContacts",
    "LookupContacts",
];

/// Decodes `body` as the request type `selector` picks (modulo 10) with [`check_json`].
pub fn check_request(selector: u8, body: &[u8]) {
    match selector % 10 {
        0 => drop(check_json::<RegisterAccount>(body)),
        1 => drop(check_json::<RegisterDevice>(body)),
        2 => drop(check_json::<RevokeDevice>(body)),
        3 => drop(check_json::<ChallengeRequest>(body)),
        4 => drop(check_json::<SessionRequest>(body)),
        5 => drop(check_json::<UploadKeyPackages>(body)),
        6 => drop(check_json::<SendMessage>(body)),
        7 => drop(check_json::<Ack>(body)),
        8 => drop(check_json::<PublishContacts>(body)),
        _ => drop(check_json::<LookupContacts>(body)),
    }
}

/// Decodes `bytes` as a `T` the way a handler's `Json<T>` extractor does
/// (`axum::Json::from_bytes`) and with `serde_json::from_slice`: neither panics, both accept
/// the same inputs and give the same value, and that value re-encodes to JSON that decodes to
/// it again.
pub fn check_json<T>(bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let decoded = serde_json::from_slice::<T>(bytes);
    let extracted = axum::Json::<T>::from_bytes(bytes);
    match (decoded, extracted) {
        (Ok(value), Ok(axum::Json(same))) => {
            assert_eq!(value, same, "axum decoded {} differently", hex(bytes));
            let json = serde_json::to_vec(&value).expect("a decoded value encodes");
            let again: T = serde_json::from_slice(&json).expect("its encoding decodes");
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

/// A WebSocket frame from a client: [`check_json`], and for text (the only frames the
/// server reads) `serde_json::from_str`, as the server calls it, agrees.
pub fn check_frame(bytes: &[u8]) -> Option<ClientFrame> {
    let frame = check_json::<ClientFrame>(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let from_str = serde_json::from_str::<ClientFrame>(text).ok();
        assert_eq!(from_str, frame, "from_str disagrees on {text:?}");
    }
    frame
}

/// Not the id of any conversation an input names (MLS group ids of Sotto are 32 bytes).
pub const OTHER_CONVERSATION: &[u8] = b"another conversation";

/// `classify` of a send's payload, for a conversation it is not for and (if it names one)
/// for the one it names: no panic, and it accepts exactly the `PrivateMessage`s of the
/// given conversation whose epoch fits the store, reading kind and epoch from the header
/// as mls-rs does. Also the Welcome check of a send. Returns what it accepted.
pub fn check_classify(payload: &[u8]) -> Option<(Kind, u64)> {
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
    // The Welcome check of `delivery::send` (inline there): decode, look at the kind.
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
// Seeds
// ---------------------------------------------------------------------------------------

/// One valid body of each request type, prefixed with its selector byte.
pub fn request_seeds() -> Vec<Vec<u8>> {
    use sotto_api::{Bytes, DeviceAddress, WelcomeDelivery};
    let device = || DeviceAddress {
        username: "bob".into(),
        device_id: "0f".repeat(16),
    };
    let bytes = |n: usize| Bytes(vec![0xa5; n]);
    let json = |v: serde_json::Result<Vec<u8>>| v.expect("seeds encode");
    let bodies = [
        json(serde_json::to_vec(&RegisterAccount {
            username: "alice".into(),
            root_public_key: bytes(133),
        })),
        json(serde_json::to_vec(&RegisterDevice {
            certificate: bytes(300),
        })),
        json(serde_json::to_vec(&RevokeDevice {
            root_signature: Some(bytes(139)),
        })),
        json(serde_json::to_vec(&ChallengeRequest {
            username: "alice".into(),
            device_id: "01".repeat(16),
        })),
        json(serde_json::to_vec(&SessionRequest {
            username: "alice".into(),
            device_id: "01".repeat(16),
            challenge: bytes(32),
            signature: bytes(139),
        })),
        json(serde_json::to_vec(&UploadKeyPackages {
            key_packages: vec![bytes(400), bytes(400)],
            last_resort: Some(bytes(400)),
        })),
        json(serde_json::to_vec(&SendMessage {
            message_id: "02".repeat(16),
            payload: bytes(200),
            recipients: vec![device()],
            welcome: Some(WelcomeDelivery {
                payload: bytes(100),
                recipients: vec![device()],
            }),
            removed: vec![device()],
        })),
        json(serde_json::to_vec(&Ack {
            cursors: vec![1, 2, u64::MAX],
        })),
        json(serde_json::to_vec(&PublishContacts {
            hashes: vec![bytes(32)],
        })),
        json(serde_json::to_vec(&LookupContacts {
            hashes: vec![bytes(32), bytes(32)],
        })),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| [&[i as u8][..], &body].concat())
        .collect()
}

/// Valid client frames.
pub fn frame_seeds() -> Vec<Vec<u8>> {
    [
        br#"{"type":"subscribe","after":0}"#.to_vec(),
        br#"{"type":"subscribe"}"#.to_vec(),
        br#"{"type":"ack","cursors":[1,2,18446744073709551615]}"#.to_vec(),
    ]
    .to_vec()
}

/// Real MLS messages of a two-member conversation: the commit that adds bob, its Welcome,
/// an application message, a commit of the next epoch, and a KeyPackage.
pub fn mls_seeds() -> Vec<Vec<u8>> {
    let (alice, bob) = (super::root("alice"), super::root("bob"));
    let (a, b) = (super::device(&alice), super::device(&bob));
    let mut ca = a
        .create_conversation(&super::policy(&[&alice]))
        .expect("a conversation");
    let out = ca
        .add_and_remove(&[b.key_package().expect("a KeyPackage")], &[])
        .expect("bob is added");
    ca.merge_pending_commit().expect("the commit merges");
    let (_, text) = ca
        .send_text("hello", 60, false, super::NOW_MS)
        .expect("a message");
    let update = ca.add_and_remove(&[], &[]).expect("an empty commit");
    vec![
        out.commit,
        out.welcome.expect("a Welcome"),
        text,
        update.commit,
        b.key_package().expect("a KeyPackage"),
    ]
}
