//! Checks `tests/vectors/contact_hashes.json` against `sotto_core::discovery`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::Deserialize;
use sotto_core::discovery::{contact_hash, Identifier, CONTACT_HASH_ITERATIONS};

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/contact_hashes.json"
));

#[derive(Deserialize)]
struct File {
    description: String,
    iterations: u32,
    vectors: Vec<Vector>,
    invalid: Vec<Invalid>,
}

#[derive(Deserialize)]
struct Vector {
    identifier: String,
    kind: String,
    normalized: String,
    salt: String,
    hash: String,
}

#[derive(Deserialize)]
struct Invalid {
    identifier: String,
    salt: String,
    error: String,
}

#[test]
fn contact_hash_vectors() {
    let file: File = serde_json::from_str(VECTORS).unwrap();
    assert!(!file.description.is_empty());
    assert_eq!(file.iterations, CONTACT_HASH_ITERATIONS);
    assert!(!file.vectors.is_empty() && !file.invalid.is_empty());
    for v in &file.vectors {
        let id = Identifier::detect(&v.identifier);
        let kind = if matches!(id, Identifier::Phone(_)) {
            "phone"
        } else {
            "email"
        };
        assert_eq!(kind, v.kind, "{}", v.identifier);
        assert_eq!(id.normalized().unwrap(), v.normalized);
        let hash = contact_hash(&v.identifier, &hex::decode(&v.salt).unwrap()).unwrap();
        assert_eq!(hex::encode(hash), v.hash, "{}", v.identifier);
    }
    for v in &file.invalid {
        let err = contact_hash(&v.identifier, &hex::decode(&v.salt).unwrap()).unwrap_err();
        assert_eq!(format!("{err:?}"), v.error, "{:?}", v.identifier);
    }
}

/// Prints the vectors file. Run once with
/// `cargo test -p sotto-core --test vectors_discovery -- --ignored --nocapture`.
#[test]
#[ignore = "generator"]
fn generate() {
    let salt_a = hex::encode(b"sotto-test-salt-A");
    let salt_b = hex::encode([0x5a; 32]);
    let valid = [
        ("+44 20 7946 0958", &salt_a),
        ("0044-20-7946-0958", &salt_a),
        ("+44 20 7946 0958", &salt_b),
        ("+1 (555) 010.0199", &salt_a),
        ("Alice@Example.ORG ", &salt_a),
        ("alice@example.org", &salt_b),
        ("ÉLODIE@Exemple.fr", &salt_a),
    ];
    let vectors: Vec<_> = valid
        .iter()
        .map(|&(raw, salt)| {
            let id = Identifier::detect(raw);
            let kind = if matches!(id, Identifier::Phone(_)) {
                "phone"
            } else {
                "email"
            };
            let hash = contact_hash(raw, &hex::decode(salt).unwrap()).unwrap();
            serde_json::json!({
                "identifier": raw, "kind": kind, "normalized": id.normalized().unwrap(),
                "salt": salt, "hash": hex::encode(hash),
            })
        })
        .collect();
    let short_salt = hex::encode(b"fifteen bytes!!");
    let invalid = [
        ("020 7946 0958", &salt_a),
        ("+44 20 7946 095x", &salt_a),
        ("+1234567", &salt_a),
        ("+1234567890123456", &salt_a),
        ("+0442079460958", &salt_a),
        ("a@b@example.org", &salt_a),
        ("@example.org", &salt_a),
        ("alice@localhost", &salt_a),
        ("+442079460958", &short_salt),
    ];
    let invalid: Vec<_> = invalid
        .iter()
        .map(|&(raw, salt)| {
            let err = contact_hash(raw, &hex::decode(salt).unwrap()).unwrap_err();
            serde_json::json!({ "identifier": raw, "salt": salt, "error": format!("{err:?}") })
        })
        .collect();
    let file = serde_json::json!({
        "description": "Sotto contact-discovery hashes (sotto_core::discovery, version 1). \
            Identifiers containing '@' are emails (kind 2), others phone numbers (kind 1), \
            normalised as documented in discovery.rs. h0 = SHA-256(\"sotto-contact-v1\" || \
            u32be(len(salt)) || salt || kind || utf8(normalized)), h(i+1) = SHA-256(h(i) || \
            salt), 5000 SHA-256 calls in all; hash = the last one. Salts are hex. 'invalid' \
            lists inputs that must be rejected, with the Rust error (Debug form).",
        "iterations": CONTACT_HASH_ITERATIONS,
        "vectors": vectors,
        "invalid": invalid,
    });
    println!("{}", serde_json::to_string_pretty(&file).unwrap());
}
