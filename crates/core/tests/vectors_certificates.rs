//! Committed device-certificate test vectors (`tests/vectors/certificates.json`): valid
//! certificates must decode to the listed fields and verify; each invalid one must fail
//! with the listed error. ECDSA signatures are randomized, so the vectors are fixed
//! certificates, regenerated only by the ignored `generate` test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::{Deserialize, Serialize};
use sotto_core::crypto::SigningKey;
use sotto_core::identity::{DeviceCertificate, DeviceId, IdentityError, UserId, UserRootKey};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/certificates.json"
);

#[derive(Serialize, Deserialize)]
struct Vectors {
    description: String,
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
}

#[derive(Serialize, Deserialize)]
struct Valid {
    certificate: String,
    user_id: String,
    device_id: String,
    device_key: String,
    created_at: u64,
    root_key: String,
    root_fingerprint: String,
}

#[derive(Serialize, Deserialize)]
struct Invalid {
    comment: String,
    certificate: String,
    error: String,
}

fn error_name(e: &IdentityError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn check(cert_hex: &str) -> Result<sotto_core::identity::DeviceIdentity, IdentityError> {
    DeviceCertificate::from_bytes(&hex::decode(cert_hex).unwrap())?.verify()
}

#[test]
fn certificate_vectors() {
    let v: Vectors = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert!(!v.valid.is_empty() && !v.invalid.is_empty());
    for case in &v.valid {
        let id = check(&case.certificate).unwrap();
        assert_eq!(id.user.as_str(), case.user_id);
        assert_eq!(id.device_id.to_hex(), case.device_id);
        assert_eq!(hex::encode(id.root_key.as_bytes()), case.root_key);
        assert_eq!(hex::encode(id.root_fingerprint.0), case.root_fingerprint);
        assert_eq!(id.created_at, case.created_at);
        let cert = DeviceCertificate::from_bytes(&hex::decode(&case.certificate).unwrap()).unwrap();
        assert_eq!(hex::encode(cert.device_key()), case.device_key);
        assert_eq!(hex::encode(cert.to_bytes().unwrap()), case.certificate);
    }
    for case in &v.invalid {
        let err = check(&case.certificate).expect_err(&case.comment);
        assert_eq!(error_name(&err), case.error, "{}", case.comment);
    }
}

/// Regenerates the vectors: `cargo test -p sotto-core --test vectors_certificates -- --ignored --nocapture`.
#[test]
#[ignore = "generator; run by hand to regenerate tests/vectors/certificates.json"]
fn generate() {
    let root = UserRootKey::generate(UserId::new("alice").unwrap()).unwrap();
    let device_key = SigningKey::generate().unwrap().public_key();
    let cert = root
        .certify_device(DeviceId([0x11; 16]), &device_key, 1_800_000_000)
        .unwrap();
    let bytes = cert.to_bytes().unwrap();
    let id = cert.verify().unwrap();
    let flip = |i: usize| {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        hex::encode(b)
    };
    let mut trailing = bytes.clone();
    trailing.push(0);
    let invalid = vec![
        Invalid {
            comment: "bit flip in the user id".into(),
            certificate: flip(3),
            error: "BadSignature".into(),
        },
        Invalid {
            comment: "bit flip in the device id".into(),
            certificate: flip(8),
            error: "BadSignature".into(),
        },
        Invalid {
            comment: "bit flip in the last signature byte".into(),
            certificate: flip(bytes.len() - 1),
            error: "BadSignature".into(),
        },
        Invalid {
            comment: "unknown version".into(),
            certificate: {
                let mut b = bytes.clone();
                b[0] = 2;
                hex::encode(b)
            },
            error: "Decode".into(),
        },
        Invalid {
            comment: "trailing byte".into(),
            certificate: hex::encode(trailing),
            error: "Decode".into(),
        },
        Invalid {
            comment: "truncated".into(),
            certificate: hex::encode(&bytes[..bytes.len() - 1]),
            error: "Decode".into(),
        },
    ];
    let v = Vectors {
        description: "Sotto device certificates v1 (docs/protocol.md, 'Device certificate'). valid: decode, verify under the embedded root key and re-encode identically. invalid: must be refused with the named IdentityError variant.".into(),
        valid: vec![Valid {
            certificate: hex::encode(&bytes),
            user_id: "alice".into(),
            device_id: id.device_id.to_hex(),
            device_key: hex::encode(&device_key),
            created_at: 1_800_000_000,
            root_key: hex::encode(id.root_key.as_bytes()),
            root_fingerprint: hex::encode(id.root_fingerprint.0),
        }],
        invalid,
    };
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}
