//! Checks `tests/vectors/backup.json` against `sotto_core::backup`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::Deserialize;
use sotto_core::backup::{seal, BackupError, ScryptParams, SealedBackup};
use sotto_core::crypto::scrypt;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/backup.json"
));

#[derive(Deserialize)]
struct File {
    description: String,
    password: String,
    password_hex: String,
    context_hex: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
    nonce: String,
    derived_key: String,
    plaintext: String,
    blob: String,
}

#[test]
fn backup_vector() {
    let v: File = serde_json::from_str(VECTORS).unwrap();
    assert!(!v.description.is_empty());
    let password = hex::decode(&v.password_hex).unwrap();
    assert_eq!(v.password.as_bytes(), password);
    let context = hex::decode(&v.context_hex).unwrap();
    let blob = hex::decode(&v.blob).unwrap();

    let sealed = SealedBackup::from_bytes(&blob).unwrap();
    assert_eq!(
        sealed.params(),
        ScryptParams::new(v.log_n, v.r, v.p).unwrap()
    );
    assert_eq!(sealed.to_bytes(), blob);
    assert_eq!(hex::encode(&blob[17..49]), v.salt);
    assert_eq!(hex::encode(&blob[49..61]), v.nonce);

    let mut key = [0u8; 32];
    scrypt(&password, &blob[17..49], v.log_n, v.r, v.p, &mut key).unwrap();
    assert_eq!(hex::encode(key), v.derived_key);

    let opened = sealed.open(&password, &context).unwrap();
    assert_eq!(hex::encode(&opened[..]), v.plaintext);
    let wrong = sealed.open(b"wrong password", &context);
    assert_eq!(wrong, Err(BackupError::WrongPasswordOrCorrupt));
    let other_context = sealed.open(&password, b"user:mallory");
    assert_eq!(other_context, Err(BackupError::WrongPasswordOrCorrupt));
}

/// Prints a fresh vector (new random salt and nonce). Run once with
/// `cargo test -p sotto-core --test vectors_backup -- --ignored --nocapture`.
#[test]
#[ignore = "generator"]
fn generate() {
    let password = "correct horse battery stäple";
    let context = b"user:alice";
    let plaintext: Vec<u8> = (0u8..32).collect();
    let params = ScryptParams::new(10, 8, 1).unwrap();
    let blob = seal(&plaintext, password.as_bytes(), params, context)
        .unwrap()
        .to_bytes();
    let mut key = [0u8; 32];
    scrypt(password.as_bytes(), &blob[17..49], 10, 8, 1, &mut key).unwrap();
    let file = serde_json::json!({
        "description": "A Sotto sealed backup (sotto_core::backup, format version 1) under \
            small scrypt parameters. Layout: 'SOTTOBK' || 0x01 || log_n || u32be r || u32be p \
            || salt(32) || nonce(12) || AES-256-GCM(ciphertext || tag). key = scrypt(password, \
            salt, 2^log_n, r, p, 32); AAD = blob[0..61] || context. Opening blob with \
            password and context must give plaintext; all byte strings are hex.",
        "password": password,
        "password_hex": hex::encode(password),
        "context_hex": hex::encode(context),
        "log_n": 10, "r": 8, "p": 1,
        "salt": hex::encode(&blob[17..49]),
        "nonce": hex::encode(&blob[49..61]),
        "derived_key": hex::encode(key),
        "plaintext": hex::encode(&plaintext),
        "blob": hex::encode(&blob),
    });
    println!("{}", serde_json::to_string_pretty(&file).unwrap());
}
