//! Checks `tests/vectors/safety_numbers.json` against `sotto_core::safety`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::Deserialize;
use sotto_core::crypto::SigningKey;
use sotto_core::safety::{safety_number, ITERATIONS};

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/safety_numbers.json"
));

#[derive(Deserialize)]
struct File {
    description: String,
    iterations: u32,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    a_user: String,
    a_root_pk: String,
    b_user: String,
    b_root_pk: String,
    digits: String,
    display: String,
    qr_payload: String,
}

#[test]
fn safety_number_vectors() {
    let file: File = serde_json::from_str(VECTORS).unwrap();
    assert!(!file.description.is_empty());
    assert_eq!(file.iterations, ITERATIONS);
    assert!(!file.vectors.is_empty());
    for v in &file.vectors {
        let (a_pk, b_pk) = (
            hex::decode(&v.a_root_pk).unwrap(),
            hex::decode(&v.b_root_pk).unwrap(),
        );
        let n = safety_number(&v.a_user, &a_pk, &v.b_user, &b_pk).unwrap();
        assert_eq!(n.digits(), v.digits, "{} / {}", v.a_user, v.b_user);
        assert_eq!(n.to_string(), v.display);
        assert_eq!(hex::encode(n.qr_payload()), v.qr_payload);
        assert!(n.matches(&v.display));
        let swapped = safety_number(&v.b_user, &b_pk, &v.a_user, &a_pk).unwrap();
        assert_eq!(swapped, n);
    }
}

/// Prints a fresh vectors file (with new random keys). Run once with
/// `cargo test -p sotto-core --test vectors_safety -- --ignored --nocapture`.
#[test]
#[ignore = "generator"]
fn generate() {
    let keys: Vec<Vec<u8>> = (0..3)
        .map(|_| SigningKey::generate().unwrap().public_key())
        .collect();
    let cases = [
        ("alice", 0, "bob", 1),
        ("bob", 1, "carol", 2),
        ("alice", 2, "bob", 1), // alice's key changed
        ("zoë@example.org", 0, "bob", 1),
        ("alice", 0, "alice", 0),
    ];
    let vectors: Vec<_> = cases
        .iter()
        .map(|&(a, ka, b, kb)| {
            let n = safety_number(a, &keys[ka], b, &keys[kb]).unwrap();
            serde_json::json!({
                "a_user": a, "a_root_pk": hex::encode(&keys[ka]),
                "b_user": b, "b_root_pk": hex::encode(&keys[kb]),
                "digits": n.digits(), "display": n.to_string(),
                "qr_payload": hex::encode(n.qr_payload()),
            })
        })
        .collect();
    let file = serde_json::json!({
        "description": "Sotto safety numbers (sotto_core::safety, version 1). Per user: \
            h0 = SHA-512(0x0001 || u32be(len(root_pk)) || root_pk || u32be(len(user)) || \
            utf8(user)), h(i+1) = SHA-512(h(i) || root_pk), 5200 SHA-512 calls in all; the \
            fingerprint is the first 30 bytes of the last hash; each 5-byte big-endian chunk \
            mod 100000 gives 5 digits. digits = the two 30-digit halves sorted and \
            concatenated; display = 12 groups of 5; qr_payload = 0x01 || both fingerprints \
            in digit order. root_pk is an uncompressed SEC1 P-521 key (hex).",
        "iterations": ITERATIONS,
        "vectors": vectors,
    });
    println!("{}", serde_json::to_string_pretty(&file).unwrap());
}
