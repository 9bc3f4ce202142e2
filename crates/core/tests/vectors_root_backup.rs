//! Checks `tests/vectors/root_key_backup.json`: a user root key sealed the way a client
//! uploads it (`UserRootKey::seal_backup`), with the real context
//! `"sotto root key backup v1:" || user id`, must open to the listed root public key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::{Deserialize, Serialize};
use sotto_core::backup::{ScryptParams, SealedBackup};
use sotto_core::identity::{RootPublicKey, UserId, UserRootKey};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/root_key_backup.json"
);

#[derive(Serialize, Deserialize)]
struct Vector {
    description: String,
    user_id: String,
    password: String,
    context_hex: String,
    root_public_key: String,
    blob: String,
}

#[test]
fn root_key_backup_vector() {
    let v: Vector = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert_eq!(
        hex::decode(&v.context_hex).unwrap(),
        [b"sotto root key backup v1:", v.user_id.as_bytes()].concat()
    );
    let sealed = SealedBackup::from_bytes(&hex::decode(&v.blob).unwrap()).unwrap();
    let user = UserId::new(&v.user_id).unwrap();
    let expected = RootPublicKey::from_bytes(&hex::decode(&v.root_public_key).unwrap())
        .unwrap()
        .fingerprint();
    let root = UserRootKey::open_backup(user, &expected, &sealed, v.password.as_bytes()).unwrap();
    assert_eq!(hex::encode(root.public_key().as_bytes()), v.root_public_key);
    assert!(UserRootKey::open_backup(
        UserId::new("mallory").unwrap(),
        &expected,
        &sealed,
        v.password.as_bytes()
    )
    .is_err());
}

/// `cargo test -p sotto-core --test vectors_root_backup -- --ignored --nocapture`
#[test]
#[ignore = "generator; run by hand to regenerate tests/vectors/root_key_backup.json"]
fn generate() {
    let user = UserId::new("alice").unwrap();
    let root = UserRootKey::generate(user.clone()).unwrap();
    let password = "correct horse battery staple";
    let sealed = root
        .seal_backup(password.as_bytes(), ScryptParams::new(10, 8, 1).unwrap())
        .unwrap();
    let v = Vector {
        description: "A user root key sealed as a client uploads it (UserRootKey::seal_backup; backup format in docs/protocol.md), with small scrypt parameters (log_n 10, r 8, p 1; real backups use 17, 8, 1). The sealed secret is the root key's PKCS#8 document; the context is 'sotto root key backup v1:' || user id. Opening must give a key whose public half is root_public_key (uncompressed P-521).".into(),
        user_id: user.to_string(),
        password: password.into(),
        context_hex: hex::encode([b"sotto root key backup v1:".as_slice(), user.as_str().as_bytes()].concat()),
        root_public_key: hex::encode(root.public_key().as_bytes()),
        blob: hex::encode(sealed.to_bytes()),
    };
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}
