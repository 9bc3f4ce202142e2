#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::backup::ScryptParams;
use crate::crypto::SigningKey;

fn root(name: &str) -> UserRootKey {
    UserRootKey::generate(UserId::new(name).unwrap()).unwrap()
}

fn device_key() -> Vec<u8> {
    SigningKey::generate().unwrap().public_key()
}

#[test]
fn user_ids_have_one_spelling() {
    for ok in ["alice", "bob.smith", "a", "x_1-2", "0day"] {
        assert!(UserId::new(ok).is_ok(), "{ok}");
    }
    let too_long = "a".repeat(MAX_USER_ID_LEN + 1);
    for bad in [
        "",
        "Alice",
        ".alice",
        "-a",
        "al ice",
        "al@ice",
        "ålice",
        too_long.as_str(),
    ] {
        assert_eq!(UserId::new(bad), Err(IdentityError::InvalidUserId), "{bad}");
    }
}

#[test]
fn certificate_roundtrips_and_verifies() {
    let alice = root("alice");
    let key = device_key();
    let id = DeviceId::random().unwrap();
    let cert = alice.certify_device(id, &key, 1_700_000_000).unwrap();
    let parsed = DeviceCertificate::from_bytes(&cert.to_bytes().unwrap()).unwrap();
    assert_eq!(parsed, cert);
    let who = parsed.verify_for_key(&key).unwrap();
    assert_eq!(who.user.as_str(), "alice");
    assert_eq!(who.device_id, id);
    assert_eq!(who.root_fingerprint, alice.public_key().fingerprint());
    assert_eq!(who.created_at, 1_700_000_000);
}

#[test]
fn certificate_for_another_key_is_refused() {
    let alice = root("alice");
    let cert = alice
        .certify_device(DeviceId([1; 16]), &device_key(), 1)
        .unwrap();
    assert_eq!(
        cert.verify_for_key(&device_key()),
        Err(IdentityError::DeviceKeyMismatch)
    );
}

#[test]
fn certificate_of_another_user_or_root_key_is_refused() {
    let alice = root("alice");
    let impostor = root("alice");
    let bob = root("bob");
    let alice_fp = alice.public_key().fingerprint();
    let id = UserId::new("alice").unwrap();
    let real = alice
        .certify_device(DeviceId([1; 16]), &device_key(), 1)
        .unwrap();
    assert!(real.verify_for_user(&id, &alice_fp).is_ok());
    let substituted = impostor
        .certify_device(DeviceId([1; 16]), &device_key(), 1)
        .unwrap();
    assert_eq!(
        substituted.verify_for_user(&id, &alice_fp),
        Err(IdentityError::UserMismatch)
    );
    let other = bob
        .certify_device(DeviceId([1; 16]), &device_key(), 1)
        .unwrap();
    assert_eq!(
        other.verify_for_user(&id, &alice_fp),
        Err(IdentityError::UserMismatch)
    );
}

#[test]
fn every_tampered_field_breaks_the_signature() {
    let alice = root("alice");
    let mallory = root("mallory");
    let good = alice
        .certify_device(DeviceId([1; 16]), &device_key(), 5)
        .unwrap();
    let mut variants = Vec::new();
    let mut c = good.clone();
    c.user_id = "alicf".into();
    variants.push(c);
    let mut c = good.clone();
    c.device_id = DeviceId([2; 16]);
    variants.push(c);
    let mut c = good.clone();
    c.device_key = device_key();
    variants.push(c);
    let mut c = good.clone();
    c.created_at = 6;
    variants.push(c);
    let mut c = good.clone();
    c.root_key = mallory.public_key().as_bytes().to_vec();
    variants.push(c);
    for forged in variants {
        assert_eq!(
            forged.verify(),
            Err(IdentityError::BadSignature),
            "{forged:?}"
        );
    }
    let mut c = good.clone();
    c.signature[10] ^= 1;
    assert_eq!(c.verify(), Err(IdentityError::BadSignature));
}

#[test]
fn a_root_key_cannot_certify_for_another_user() {
    // Mallory's root key signs a certificate claiming to be alice's device: it verifies
    // as a device of "alice" under *mallory's* root key, which is a different identity
    // (different fingerprint), so it is never the same user as alice's real devices.
    let alice = root("alice");
    let mallory = UserRootKey {
        user: UserId::new("alice").unwrap(),
        key: SigningKey::generate().unwrap(),
    };
    let real = alice
        .certify_device(DeviceId([1; 16]), &device_key(), 1)
        .unwrap()
        .verify()
        .unwrap();
    let fake = mallory
        .certify_device(DeviceId([1; 16]), &device_key(), 1)
        .unwrap()
        .verify()
        .unwrap();
    assert!(!real.same_user(&fake));
}

#[test]
fn malformed_certificates_are_typed_errors() {
    let cert = root("alice")
        .certify_device(DeviceId([1; 16]), &device_key(), 1)
        .unwrap();
    let bytes = cert.to_bytes().unwrap();
    let mut wrong_version = bytes.clone();
    wrong_version[0] = 2;
    assert_eq!(
        DeviceCertificate::from_bytes(&wrong_version),
        Err(IdentityError::Decode(DecodeError::UnsupportedVersion(2)))
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        DeviceCertificate::from_bytes(&trailing),
        Err(IdentityError::Decode(DecodeError::TrailingBytes(1)))
    );
    assert_eq!(
        DeviceCertificate::from_bytes(&bytes[..bytes.len() - 3]),
        Err(IdentityError::Decode(DecodeError::Malformed))
    );
    assert!(matches!(
        DeviceCertificate::from_bytes(&vec![1u8; MAX_CERTIFICATE_LEN + 1]),
        Err(IdentityError::Decode(DecodeError::TooLong { .. }))
    ));
    assert_eq!(
        root("bob").certify_device(DeviceId([1; 16]), &[4u8; 10], 1),
        Err(IdentityError::InvalidPublicKey)
    );
}

#[test]
fn root_key_backup_roundtrip_is_bound_to_the_user() {
    let alice = root("alice");
    let params = ScryptParams::new(10, 8, 1).unwrap();
    let sealed = alice.seal_backup(b"correct horse", params).unwrap();
    let fp = alice.public_key().fingerprint();
    let opened =
        UserRootKey::open_backup(alice.user().clone(), &fp, &sealed, b"correct horse").unwrap();
    assert_eq!(opened.public_key(), alice.public_key());
    // A blob holding another key (sealed by a server with the user's password) is refused.
    let other = UserRootKey {
        user: alice.user().clone(),
        key: SigningKey::generate().unwrap(),
    };
    let substituted = other.seal_backup(b"correct horse", params).unwrap();
    assert_eq!(
        UserRootKey::open_backup(alice.user().clone(), &fp, &substituted, b"correct horse")
            .unwrap_err(),
        IdentityError::UserMismatch
    );
    assert!(matches!(
        UserRootKey::open_backup(alice.user().clone(), &fp, &sealed, b"wrong"),
        Err(IdentityError::Backup(_))
    ));
    assert!(matches!(
        UserRootKey::open_backup(UserId::new("bob").unwrap(), &fp, &sealed, b"correct horse"),
        Err(IdentityError::Backup(_))
    ));
}

#[test]
fn debug_output_never_shows_secrets() {
    let alice = root("alice");
    assert_eq!(
        format!("{alice:?}"),
        r#"UserRootKey { user: UserId("alice"), key: SigningKey(<redacted>) }"#
    );
    let cert = alice
        .certify_device(DeviceId([0xab; 16]), &device_key(), 7)
        .unwrap();
    assert_eq!(
        format!("{cert:?}"),
        r#"DeviceCertificate { user_id: "alice", device_id: DeviceId(abababababababababababababababab), created_at: 7, .. }"#
    );
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]
    #[test]
    fn any_certificate_roundtrips_and_verifies(
        name in "[a-z0-9][a-z0-9._-]{0,63}",
        device in proptest::array::uniform16(proptest::num::u8::ANY),
        created_at in proptest::num::u64::ANY,
    ) {
        let root = root(&name);
        let key = device_key();
        let cert = root.certify_device(DeviceId(device), &key, created_at).unwrap();
        let parsed = DeviceCertificate::from_bytes(&cert.to_bytes().unwrap()).unwrap();
        proptest::prop_assert_eq!(&parsed, &cert);
        let who = parsed.verify_for_key(&key).unwrap();
        proptest::prop_assert_eq!(who.user.as_str(), name.as_str());
        proptest::prop_assert_eq!(who.device_id, DeviceId(device));
        proptest::prop_assert_eq!(who.created_at, created_at);
    }
}
