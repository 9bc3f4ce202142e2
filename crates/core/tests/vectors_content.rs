//! Committed vectors for the deterministic encodings: message content and the policy
//! extension (`tests/vectors/content.json`, `tests/vectors/policy.json`). Each case is
//! built here from its fields, must encode to the committed bytes, and the bytes must
//! decode back to it. Regenerate with the ignored `generate` test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::{Deserialize, Serialize};
use sotto_core::content::{
    Attachment, Body, CallSignal, Content, Control, MessageId, Receipt, ReceiptKind,
};
use sotto_core::identity::{DeviceId, RootFingerprint};
use sotto_core::policy::{BurnOnRead, Policy, POLICY_EXTENSION};

const CONTENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/content.json"
);
const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/policy.json"
);

#[derive(Serialize, Deserialize)]
struct Vectors {
    description: String,
    cases: Vec<Case>,
}

#[derive(Serialize, Deserialize)]
struct Case {
    name: String,
    encoding: String,
}

fn content(body: Body) -> Content {
    let mut c = Content::new(
        "alice",
        DeviceId([0x11; 16]),
        1_800_000_000_123,
        3600,
        true,
        body,
    )
    .unwrap();
    c.id = MessageId([0x22; 16]);
    c
}

fn content_cases() -> Vec<(&'static str, Content)> {
    vec![
        ("text", content(Body::Text("Hello, Bob! ☕".into()))),
        (
            "attachment",
            content(Body::Attachment(Attachment {
                blob_id: b"blob-1".to_vec(),
                key: [0x33; 32],
                nonce: [0x44; 12],
                ciphertext_sha256: [0x55; 32],
                size: 1024,
                media_type: "image/png".into(),
                file_name: "cat.png".into(),
            })),
        ),
        (
            "read receipt",
            content(Body::Receipt(Receipt {
                kind: ReceiptKind::Read,
                messages: vec![MessageId([0x66; 16])],
            })),
        ),
        (
            "call signal",
            content(Body::Call(CallSignal {
                call_id: [0x77; 16],
                payload: b"offer".to_vec(),
            })),
        ),
        (
            "control",
            content(Body::Control(Control {
                kind: 1,
                payload: b"Team".to_vec(),
            })),
        ),
    ]
}

fn policy_cases() -> Vec<(&'static str, Policy)> {
    vec![
        (
            "one manager, one day, burn-on-read allowed",
            Policy::new(
                vec![RootFingerprint([0xaa; 32])],
                86_400,
                BurnOnRead::Allowed,
            )
            .unwrap(),
        ),
        (
            "two managers (sorted), one minute, burn-on-read required",
            Policy::new(
                vec![RootFingerprint([0xcc; 32]), RootFingerprint([0xbb; 32])],
                60,
                BurnOnRead::Required,
            )
            .unwrap(),
        ),
    ]
}

fn policy_bytes(p: &Policy) -> Vec<u8> {
    p.to_extensions()
        .unwrap()
        .get(POLICY_EXTENSION)
        .unwrap()
        .extension_data
}

fn load(path: &str) -> Vectors {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn content_vectors() {
    let v = load(CONTENT);
    let expected = content_cases();
    assert_eq!(v.cases.len(), expected.len());
    for (case, (name, c)) in v.cases.iter().zip(expected) {
        assert_eq!(case.name, name);
        assert_eq!(hex::encode(c.to_bytes().unwrap()), case.encoding, "{name}");
        assert_eq!(
            Content::from_bytes(&hex::decode(&case.encoding).unwrap()).unwrap(),
            c,
            "{name}"
        );
    }
}

#[test]
fn policy_vectors() {
    let v = load(POLICY);
    let expected = policy_cases();
    assert_eq!(v.cases.len(), expected.len());
    for (case, (name, p)) in v.cases.iter().zip(expected) {
        assert_eq!(case.name, name);
        assert_eq!(hex::encode(policy_bytes(&p)), case.encoding, "{name}");
        let mut list = mls_rs::ExtensionList::new();
        list.set(mls_rs_core::extension::Extension::new(
            POLICY_EXTENSION,
            hex::decode(&case.encoding).unwrap(),
        ));
        assert_eq!(Policy::from_extensions(&list).unwrap(), p, "{name}");
    }
}

/// `cargo test -p sotto-core --test vectors_content -- --ignored --nocapture`
#[test]
#[ignore = "generator; run by hand to regenerate tests/vectors/{content,policy}.json"]
fn generate() {
    let content = Vectors {
        description: "Sotto message content v1 (docs/protocol.md, 'Content'). Every case: sender alice, device 11..11, id 22..22, sent_at_ms 1800000000123, ttl 3600 s, burn_on_read true; body as named (see crates/core/tests/vectors_content.rs for the exact field values).".into(),
        cases: content_cases().into_iter().map(|(n, c)| Case { name: n.into(), encoding: hex::encode(c.to_bytes().unwrap()) }).collect(),
    };
    let policy = Vectors {
        description: "Sotto policy extension v1 (extension type 0xF5D1; docs/protocol.md). extension_data bytes; managers are root-key fingerprints aa..aa / bb..bb / cc..cc.".into(),
        cases: policy_cases().into_iter().map(|(n, p)| Case { name: n.into(), encoding: hex::encode(policy_bytes(&p)) }).collect(),
    };
    println!("CONTENT {}", serde_json::to_string(&content).unwrap());
    println!("POLICY {}", serde_json::to_string(&policy).unwrap());
}
