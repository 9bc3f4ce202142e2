//! Attacks on identities and key material: KeyPackages, commits and Welcomes carrying
//! forged device certificates, a member swapping its leaf for another identity, a
//! KeyPackage of another ciphersuite (downgrade), and KeyPackage reuse (a last-resort one
//! serves several conversations, a one-time one only one). Every test checks both that the
//! attack is refused with the specific error and that the honest members' state survives
//! it. The harness is in `hostile/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod hostile;

use common::*;
use hostile::*;
use mls_rs::error::MlsError;
use mls_rs::{CipherSuite, CipherSuiteProvider, CryptoProvider, ExtensionList};
use mls_rs_crypto_awslc::AwsLcCryptoProvider;
use sotto_core::conversation::ConversationError;
use sotto_core::device::{self, Device, NewDevice, CIPHER_SUITE};
use sotto_core::identity::{DeviceId, IdentityError};

// ---------------------------------------------------------------------------------------
// 6. Forged certificates
// ---------------------------------------------------------------------------------------

#[test]
fn manager_refuses_key_packages_with_forged_certificates() {
    let mut t = Trio::new();
    let before = t.epochs();
    for (what, kp, cert_error) in forgeries(&t.alice, &t.mallory) {
        // Inspecting the KeyPackage, as a client does before adding it, already fails.
        let err = device::inspect_key_package(&kp).unwrap_err();
        assert!(
            matches!(&err, ConversationError::Identity(m) if *m == cert_error.to_string()),
            "{what}: {err:?}"
        );
        let err = t.ca.add_and_remove(&[kp], &[]).unwrap_err();
        // The membership rule reads the certificate first and refuses it as an identity error.
        assert!(
            matches!(&err, ConversationError::Identity(m) if *m == cert_error.to_string()),
            "{what}: {err:?}"
        );
        assert!(!t.ca.mls_group().has_pending_commit());
    }
    assert_eq!(t.epochs(), before);
    t.healthy();
}

#[test]
fn honest_members_reject_commit_and_welcome_carrying_a_forged_certificate() {
    // Alice is the manager but runs a modified client that checks no certificate and no rule.
    let (alice, bob, carol, mallory) = (user("alice"), user("bob"), user("carol"), user("mallory"));
    let a = lax_device(&alice);
    let b = device(&bob);
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let mut cb = b.join(&out.welcome.unwrap()).unwrap();
    let epoch = cb.epoch();

    for (what, forged_kp, cert_error) in forgeries(&alice, &mallory) {
        let c = device(&carol);
        let out = ca
            .add_and_remove(&[forged_kp, c.key_package().unwrap()], &[])
            .unwrap();

        // Bob, a current member, refuses the commit.
        assert_rejected(
            &out.commit,
            &mut [&mut cb],
            |e| matches!(e, ConversationError::Identity(m) if *m == cert_error.to_string()),
        );
        // Carol, honest and added alongside, refuses the Welcome: its tree holds the forgery.
        let err = c.join(&out.welcome.unwrap()).unwrap_err();
        assert!(
            matches!(&err, ConversationError::Identity(m) if *m == cert_error.to_string()),
            "{what}: {err:?}"
        );
        ca.discard_pending_commit();
    }
    assert_eq!(cb.epoch(), epoch);
    assert_eq!(cb.members().len(), 2);
    assert_healthy(&mut ca, &mut [&mut cb]);
}

#[test]
fn member_cannot_swap_its_leaf_for_another_identity() {
    // Mallory's client checks nothing, so it lets her re-key her leaf to any certificate.
    let mut t = Trio::build(|a| policy(&[a]), lax_device);
    let before = [t.ca.epoch(), t.cb.epoch()];
    let impostor_alice = user("alice"); // a root key Mallory controls, calling itself "alice"
    let takeovers = [
        NewDevice::generate(&impostor_alice, NOW_MS / 1000).unwrap(),
        NewDevice::generate(&t.mallory, NOW_MS / 1000).unwrap(), // another device of hers
    ];
    for nd in takeovers {
        let id = signing_identity(&nd.certificate, nd.certificate.device_key());
        let output =
            t.cm.mls_group_mut()
                .commit_builder()
                .set_new_signing_identity(nd.secret, id)
                .build()
                .unwrap();
        let commit = output.commit_message.to_bytes().unwrap();
        assert_rejected(&commit, &mut [&mut t.ca, &mut t.cb], |e| {
            is_mls(e, MlsError::InvalidSuccessor)
        });
        t.cm.discard_pending_commit();
    }
    assert_eq!([t.ca.epoch(), t.cb.epoch()], before);
    assert_eq!(
        identity_of(&t.ca, "mallory").root_fingerprint,
        fp(&t.mallory)
    );
    assert!(t
        .ca
        .members()
        .iter()
        .all(|m| m.identity.root_fingerprint != fp(&impostor_alice)));
    t.healthy();
}

// ---------------------------------------------------------------------------------------
// 13. Downgrade
// ---------------------------------------------------------------------------------------

#[test]
fn key_package_of_another_ciphersuite_is_refused() {
    let mut t = Trio::new();
    let before = t.epochs();
    let weak = CipherSuite::CURVE25519_AES128;
    assert_eq!(
        device::crypto_provider().supported_cipher_suites(),
        vec![CIPHER_SUITE]
    );

    let all = AwsLcCryptoProvider::new();
    let (secret, public) = all
        .cipher_suite_provider(weak)
        .unwrap()
        .signature_key_generate()
        .unwrap();
    let dave = user("dave");
    // A Sotto certificate cannot certify an Ed25519 key at all...
    assert_eq!(
        dave.certify_device(
            DeviceId::random().unwrap(),
            public.as_bytes(),
            NOW_MS / 1000
        )
        .unwrap_err(),
        IdentityError::InvalidPublicKey
    );
    // ...so pair a genuine certificate with the Ed25519 key on suite 0x0001.
    let cert = NewDevice::generate(&dave, NOW_MS / 1000)
        .unwrap()
        .certificate;
    let client = rogue_client(
        AcceptAnyCredential,
        rogue_rules(),
        all,
        signing_identity(&cert, public.as_bytes()),
        secret,
        weak,
    );
    assert!(matches!(
        Device::from_client(client.clone()),
        Err(ConversationError::UnsupportedCipherSuite)
    ));
    let kp = client
        .generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap()
        .to_bytes()
        .unwrap();

    assert!(matches!(
        device::inspect_key_package(&kp),
        Err(ConversationError::UnsupportedCipherSuite)
    ));
    // The honest manager refuses it: no Sotto certificate can vouch for the key.
    let err =
        t.ca.add_and_remove(std::slice::from_ref(&kp), &[])
            .unwrap_err();
    assert!(
        matches!(&err, ConversationError::Identity(m)
            if *m == IdentityError::DeviceKeyMismatch.to_string()),
        "{err:?}"
    );
    assert!(!t.ca.mls_group().has_pending_commit());

    // Even a client that checks neither certificates nor rules cannot put a suite-0x0001
    // KeyPackage into a suite-0x0005 conversation.
    let mut lax = lax_device(&t.alice)
        .create_conversation(&policy(&[&t.alice]))
        .unwrap();
    // (The leaf's Ed25519 signature fails under suite 0x0005 before its suite field is read.)
    let err = lax.add_and_remove(&[kp], &[]).unwrap_err();
    assert!(
        is_mls(&err, MlsError::InvalidSignature) || is_mls(&err, MlsError::CipherSuiteMismatch),
        "{err:?}"
    );
    assert_eq!(lax.epoch(), 0);

    assert_eq!(t.epochs(), before);
    t.healthy();
}

// ---------------------------------------------------------------------------------------
// 15. KeyPackage reuse
// ---------------------------------------------------------------------------------------

#[test]
fn last_resort_key_package_serves_two_conversations() {
    let (alice, bob, dave) = (user("alice"), user("bob"), user("dave"));
    let d = device(&dave);
    let kp = d.last_resort_key_package().unwrap();

    let mut joined = Vec::new();
    for manager in [&alice, &bob] {
        let mut c = device(manager)
            .create_conversation(&policy(&[manager]))
            .unwrap();
        let out = c.add_and_remove(std::slice::from_ref(&kp), &[]).unwrap();
        c.merge_pending_commit().unwrap();
        let cd = d.join(&out.welcome.unwrap()).unwrap();
        joined.push((c, cd));
    }
    assert_ne!(joined[0].0.id(), joined[1].0.id());
    for (c, cd) in joined.iter_mut() {
        assert_healthy(c, &mut [cd]);
        assert_healthy(cd, &mut [c]);
    }
}

#[test]
fn one_time_key_package_cannot_be_used_twice() {
    let (alice, bob, dave) = (user("alice"), user("bob"), user("dave"));
    let d = device(&dave);
    let kp = d.key_package().unwrap();

    let mut c1 = device(&alice)
        .create_conversation(&policy(&[&alice]))
        .unwrap();
    let out = c1.add_and_remove(std::slice::from_ref(&kp), &[]).unwrap();
    c1.merge_pending_commit().unwrap();
    d.join(&out.welcome.unwrap()).unwrap();

    let mut c2 = device(&bob).create_conversation(&policy(&[&bob])).unwrap();
    let out = c2.add_and_remove(&[kp], &[]).unwrap();
    c2.merge_pending_commit().unwrap();
    assert!(
        d.join(&out.welcome.unwrap()).is_err(),
        "one-time KeyPackage used twice"
    );
}
