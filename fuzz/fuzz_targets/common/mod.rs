//! Shared by the fuzz targets and `examples/gen_corpus.rs`: valid encodings, the
//! "decode, then re-encode to the same bytes" checks, and template mutation.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mls_rs_core::extension::{Extension, ExtensionList};
use sotto_core::backup::{self, BackupError, ScryptParams, SealedBackup};
use sotto_core::content::{
    Attachment, Body, CallSignal, Content, ContentError, Control, MessageId, Receipt, ReceiptKind,
};
use sotto_core::device::{Device, NewDevice};
use sotto_core::identity::{DeviceCertificate, DeviceId, IdentityError, UserId, UserRootKey};
use sotto_core::policy::{BurnOnRead, Policy, PolicyError, POLICY_EXTENSION};

pub mod client;
pub mod server;

/// A fixed "now", milliseconds since the Unix epoch.
pub const NOW_MS: u64 = 1_800_000_000_000;
/// Password and context of [`sealed_backup`].
pub const BACKUP_PASSWORD: &[u8] = b"correct horse";
pub const BACKUP_CONTEXT: &[u8] = b"sotto root key backup v1:alice";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Template mutation
// ---------------------------------------------------------------------------------------

/// Applies `edits` to `template`, four bytes per edit: `[op, pos_hi, pos_lo, value]`, with
/// `op % 4` = XOR, set, truncate, insert. Positions are reduced modulo the current length.
pub fn mutate(template: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut bytes = template.to_vec();
    for edit in edits.chunks_exact(4) {
        let pos = usize::from(u16::from_be_bytes([edit[1], edit[2]]));
        let value = edit[3];
        let len = bytes.len();
        match edit[0] % 4 {
            0 if len > 0 => bytes[pos % len] ^= value,
            1 if len > 0 => bytes[pos % len] = value,
            2 if len > 0 => bytes.truncate(pos % len),
            3 => bytes.insert(pos % (len + 1), value),
            _ => {}
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// Decode-then-re-encode checks
// ---------------------------------------------------------------------------------------

/// Decodes a certificate; if it decodes, it must re-encode to exactly `bytes`.
pub fn check_certificate(bytes: &[u8]) -> Option<DeviceCertificate> {
    match DeviceCertificate::from_bytes(bytes) {
        Ok(cert) => {
            let again = cert.to_bytes().expect("a decoded certificate re-encodes");
            assert!(
                again.as_slice() == bytes,
                "certificate not canonical: {} -> {}",
                hex(bytes),
                hex(&again)
            );
            Some(cert)
        }
        Err(IdentityError::Decode(_)) => None,
        Err(other) => panic!("unexpected error type {other:?}"),
    }
}

/// Decodes content; if it decodes, it must re-encode to exactly `bytes`.
pub fn check_content(bytes: &[u8]) -> Option<Content> {
    match Content::from_bytes(bytes) {
        Ok(content) => {
            assert_content_canonical(bytes, &content);
            Some(content)
        }
        Err(ContentError::Decode(_)) => None,
        Err(other) => panic!("unexpected error type {other:?}"),
    }
}

/// `bytes` decoded to `content`: the re-encoding must be exactly `bytes`.
pub fn assert_content_canonical(bytes: &[u8], content: &Content) {
    let again = content.to_bytes().expect("decoded content re-encodes");
    assert!(
        again.as_slice() == bytes,
        "content not canonical: {} -> {}",
        hex(bytes),
        hex(&again)
    );
}

/// Parses a sealed backup; if it parses, it must re-encode to exactly `bytes`.
pub fn check_backup(bytes: &[u8]) -> Option<SealedBackup> {
    match SealedBackup::from_bytes(bytes) {
        Ok(sealed) => {
            let again = sealed.to_bytes();
            assert!(
                again.as_slice() == bytes,
                "backup not canonical: {} -> {}",
                hex(bytes),
                hex(&again)
            );
            Some(sealed)
        }
        Err(
            BackupError::TooLong { .. }
            | BackupError::Truncated(_)
            | BackupError::BadMagic
            | BackupError::UnsupportedVersion(_)
            | BackupError::BadParams { .. },
        ) => None,
        Err(other) => panic!("unexpected error type {other:?}"),
    }
}

/// Reads a policy from an extension list holding `bytes` under [`POLICY_EXTENSION`].
pub fn policy_from(bytes: &[u8]) -> Result<Policy, PolicyError> {
    let list = ExtensionList::from(vec![Extension::new(POLICY_EXTENSION, bytes.to_vec())]);
    Policy::from_extensions(&list)
}

/// Decodes a policy; if it decodes, it must re-encode to exactly `bytes`.
pub fn check_policy(bytes: &[u8]) -> Option<Policy> {
    match policy_from(bytes) {
        Ok(policy) => {
            let list = policy.to_extensions().expect("a decoded policy re-encodes");
            let ext = list.get(POLICY_EXTENSION).expect("the policy extension");
            let again = ext.extension_data();
            assert!(
                again == bytes,
                "policy not canonical: {} -> {}",
                hex(bytes),
                hex(again)
            );
            assert_eq!(policy_from(again).as_ref(), Ok(&policy));
            assert!(policy.managers().windows(2).all(|w| w[0] < w[1]));
            Some(policy)
        }
        Err(
            PolicyError::Malformed
            | PolicyError::UnsupportedVersion(_)
            | PolicyError::BadManagers
            | PolicyError::BadMaxTtl,
        ) => None,
        Err(other) => panic!("unexpected error type {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Valid encodings
// ---------------------------------------------------------------------------------------

pub fn root(name: &str) -> UserRootKey {
    UserRootKey::generate(UserId::new(name).unwrap()).unwrap()
}

/// A certified device of `root` with in-memory state.
pub fn device(root: &UserRootKey) -> Device {
    Device::in_memory(NewDevice::generate(root, NOW_MS / 1000).unwrap()).unwrap()
}

/// A policy managed by `managers`: max TTL one day, burn-on-read allowed.
pub fn policy(managers: &[&UserRootKey]) -> Policy {
    let managers = managers
        .iter()
        .map(|m| m.public_key().fingerprint())
        .collect();
    Policy::new(managers, 86_400, BurnOnRead::Allowed).unwrap()
}

/// A valid certificate (random keys) of a device of "alice".
pub fn certificate() -> Vec<u8> {
    let (_, device_key) = sotto_core::device::generate_device_key().unwrap();
    root("alice")
        .certify_device(DeviceId([7; 16]), &device_key, NOW_MS / 1000)
        .unwrap()
        .to_bytes()
        .unwrap()
}

/// One valid content per body kind, from "alice"'s device `device`.
pub fn contents(device: DeviceId) -> Vec<Vec<u8>> {
    let bodies = [
        Body::Text("hello, wörld".into()),
        Body::Attachment(Attachment {
            blob_id: vec![1, 2, 3],
            key: [3; 32],
            nonce: [4; 12],
            ciphertext_sha256: [5; 32],
            size: 1234,
            media_type: "image/png".into(),
            file_name: "cat.png".into(),
        }),
        Body::Receipt(Receipt {
            kind: ReceiptKind::Read,
            messages: vec![MessageId([9; 16]), MessageId([8; 16])],
        }),
        Body::Call(CallSignal {
            call_id: [6; 16],
            payload: vec![1, 2, 3, 4],
        }),
        Body::Control(Control {
            kind: 3,
            payload: b"name".to_vec(),
        }),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            Content::new("alice", device, NOW_MS, 60, i % 2 == 0, body)
                .unwrap()
                .to_bytes()
                .unwrap()
                .to_vec()
        })
        .collect()
}

/// A backup sealed with the cheapest accepted scrypt parameters.
pub fn sealed_backup() -> Vec<u8> {
    let params = ScryptParams::new(10, 1, 1).unwrap();
    backup::seal(b"a root key", BACKUP_PASSWORD, params, BACKUP_CONTEXT)
        .unwrap()
        .to_bytes()
}

/// The extension data of valid policies with one and three managers.
pub fn policies() -> Vec<Vec<u8>> {
    let (a, b, c) = (root("alice"), root("bob"), root("carol"));
    let data = |p: Policy| {
        p.to_extensions()
            .unwrap()
            .get(POLICY_EXTENSION)
            .unwrap()
            .extension_data()
            .to_vec()
    };
    let required = Policy::new(
        [&a, &b, &c].map(|r| r.public_key().fingerprint()).to_vec(),
        3600,
        BurnOnRead::Required,
    )
    .unwrap();
    vec![data(policy(&[&a])), data(required)]
}
