//! The harness shared by the `hostile_*` tests: honest members against members running a
//! *modified client*.
//!
//! A modified client is what a malicious member (or a compromised server posing as one)
//! could run instead of Sotto: the same `Device` and `Conversation` API over an mls-rs
//! `Client` whose configuration drops Sotto's protections. `rogue_client` builds it with
//! mls-rs's pass-through `DefaultMlsRules` in place of Sotto's membership rule
//! (`sotto_core::rules`); `rogue_rules` keeps those rules looking like Sotto on the wire
//! (encrypted handshakes, update paths) so that only the check under test can tell a rogue
//! commit apart. It comes with one of two identity providers:
//!
//! - `Rogue` (`rogue_device`, `rogue_device_with`): still `SottoIdentityProvider`, so it
//!   validates device certificates like Sotto, but enforces no membership rule;
//! - `Lax` (`lax_device`): `AcceptAnyCredential`, so it checks neither certificates nor
//!   the membership rule.
//!
//! Its device key is genuinely certified by its user's root key (`NewDevice::generate`)
//! and wrapped with `Device::from_client`, so to everybody else it is an ordinary member;
//! honest members are `common::device`s (`SottoConfig`). `key_package_with`, `tamper` and
//! `forgeries` make KeyPackages carrying forged certificates; `send_raw` encrypts content
//! straight through MLS, past Sotto's send-side checks.
//!
//! `Trio` is the usual cast: Alice (the only manager, honest), Bob (honest member) and
//! Mallory (member on a modified client). The `assert_*` and `expect_*` helpers check both
//! that an attack is refused with the specific error and that the honest members' state
//! survives it (same epoch, messages still flow).
//!
//! Each `hostile_*.rs` test file includes it with `mod common; mod hostile;` (this module
//! uses `super::common`, so `tests/common/mod.rs` is compiled once per test binary).
// Each test binary uses only part of the harness; the rest would be dead-code warnings.
#![allow(dead_code)]

use std::convert::Infallible;

use super::common::*;
use mls_rs::client_builder::{
    BaseConfig, MlsConfig, PaddingMode, WithCryptoProvider, WithIdentityProvider, WithMlsRules,
};
use mls_rs::error::MlsError;
use mls_rs::identity::{Credential, CredentialType, SigningIdentity};
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules, EncryptionOptions};
use mls_rs::{CipherSuite, Client, ExtensionList, IdentityProvider};
use mls_rs_codec::{MlsDecode, MlsEncode, MlsSize};
use mls_rs_core::crypto::SignatureSecretKey;
use mls_rs_core::identity::MemberValidationContext;
use mls_rs_core::time::MlsTime;
use mls_rs_crypto_awslc::AwsLcCryptoProvider;
use sotto_core::content::{Body, Content};
use sotto_core::conversation::{CommitSummary, Conversation, ConversationError, Event};
use sotto_core::device::{self, Device, NewDevice, SottoConfig, CIPHER_SUITE};
use sotto_core::identity::{
    DeviceCertificate, DeviceId, DeviceIdentity, IdentityError, RootFingerprint, UserRootKey,
};
use sotto_core::identity_provider::{credential, SottoIdentityProvider, SOTTO_CREDENTIAL};
use sotto_core::policy::{BurnOnRead, Policy, POLICY_EXTENSION};
use sotto_core::rules::RuleError;

// ---------------------------------------------------------------------------------------
// Modified clients
// ---------------------------------------------------------------------------------------

/// The configuration of a modified client: mls-rs's pass-through `DefaultMlsRules` (no
/// membership rule at all) with identity provider `I`.
pub type RogueConfig<I> = WithMlsRules<
    DefaultMlsRules,
    WithIdentityProvider<I, WithCryptoProvider<AwsLcCryptoProvider, BaseConfig>>,
>;
/// A modified client that still validates certificates like Sotto.
pub type Rogue = RogueConfig<SottoIdentityProvider>;
/// A modified client that accepts any credential at all.
pub type Lax = RogueConfig<AcceptAnyCredential>;

/// An identity provider that accepts every credential (a modified client's).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAnyCredential;

impl IdentityProvider for AcceptAnyCredential {
    type Error = Infallible;

    fn validate_member(
        &self,
        _: &SigningIdentity,
        _: Option<MlsTime>,
        _: MemberValidationContext<'_>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn validate_external_sender(
        &self,
        _: &SigningIdentity,
        _: Option<MlsTime>,
        _: Option<&ExtensionList>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn identity(&self, id: &SigningIdentity, _: &ExtensionList) -> Result<Vec<u8>, Self::Error> {
        let mut out = match &id.credential {
            Credential::Custom(c) => c.data.clone(),
            _ => Vec::new(),
        };
        out.extend_from_slice(id.signature_key.as_bytes());
        Ok(out)
    }

    fn valid_successor(
        &self,
        _: &SigningIdentity,
        _: &SigningIdentity,
        _: &ExtensionList,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }

    fn supported_types(&self) -> Vec<CredentialType> {
        vec![SOTTO_CREDENTIAL]
    }
}

/// Permissive rules that still look like Sotto on the wire (encrypted handshakes, update
/// paths), so that only the membership rule can tell a rogue commit apart.
pub fn rogue_rules() -> DefaultMlsRules {
    DefaultMlsRules::new()
        .with_commit_options(CommitOptions::new().with_path_required(true))
        .with_encryption_options(EncryptionOptions::new(true, PaddingMode::StepFunction))
}

pub fn rogue_client<I: IdentityProvider + Clone>(
    identity_provider: I,
    rules: DefaultMlsRules,
    crypto: AwsLcCryptoProvider,
    signing_identity: SigningIdentity,
    secret: SignatureSecretKey,
    suite: CipherSuite,
) -> Client<RogueConfig<I>> {
    Client::builder()
        .crypto_provider(crypto)
        .identity_provider(identity_provider)
        .mls_rules(rules)
        .extension_type(POLICY_EXTENSION)
        .signing_identity(signing_identity, secret, suite)
        .build()
}

/// The MLS signing identity pairing `cert` with the signature key `key`.
pub fn signing_identity(cert: &DeviceCertificate, key: &[u8]) -> SigningIdentity {
    SigningIdentity::new(credential(cert).unwrap(), key.to_vec().into())
}

/// A properly certified device of `root` running a modified client (no membership rule).
pub fn rogue_device(root: &UserRootKey) -> Device<Rogue> {
    rogue_device_with(root, rogue_rules())
}

/// Same, with the given pass-through rules.
pub fn rogue_device_with(root: &UserRootKey, rules: DefaultMlsRules) -> Device<Rogue> {
    let nd = NewDevice::generate(root, NOW_MS / 1000).unwrap();
    let id = signing_identity(&nd.certificate, nd.certificate.device_key());
    let client = rogue_client(
        SottoIdentityProvider,
        rules,
        device::crypto_provider(),
        id,
        nd.secret,
        CIPHER_SUITE,
    );
    Device::from_client(client).unwrap()
}

/// A properly certified device of `root` running a modified client that neither enforces
/// the membership rule nor checks certificates.
pub fn lax_device(root: &UserRootKey) -> Device<Lax> {
    let nd = NewDevice::generate(root, NOW_MS / 1000).unwrap();
    let id = signing_identity(&nd.certificate, nd.certificate.device_key());
    let client = rogue_client(
        AcceptAnyCredential,
        rogue_rules(),
        device::crypto_provider(),
        id,
        nd.secret,
        CIPHER_SUITE,
    );
    Device::from_client(client).unwrap()
}

/// A KeyPackage whose credential is `cert` and whose leaf signature key is `leaf_key`
/// (with secret `secret`), made by a client that checks nothing.
pub fn key_package_with(
    cert: &DeviceCertificate,
    leaf_key: &[u8],
    secret: SignatureSecretKey,
) -> Vec<u8> {
    let client = rogue_client(
        AcceptAnyCredential,
        rogue_rules(),
        device::crypto_provider(),
        signing_identity(cert, leaf_key),
        secret,
        CIPHER_SUITE,
    );
    client
        .generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap()
        .to_bytes()
        .unwrap()
}

/// Encrypts raw content bytes straight through MLS, skipping Sotto's send-side checks.
pub fn send_raw<C: MlsConfig>(conv: &mut Conversation<C>, content: &Content) -> Vec<u8> {
    let bytes = content.to_bytes().unwrap();
    conv.mls_group_mut()
        .encrypt_application_message(&bytes, Vec::new())
        .unwrap()
        .to_bytes()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Certificate surgery
// ---------------------------------------------------------------------------------------

/// Field-by-field mirror of the device-certificate encoding (`docs/protocol.md`): version
/// u8, user id (varint-length string), device id (16 bytes), device key (varint vector),
/// creation time u64, root key (varint vector), signature (varint vector).
#[derive(Debug, Clone, PartialEq, Eq, MlsSize, MlsEncode, MlsDecode)]
pub struct RawCertificate {
    pub version: u8,
    pub user_id: String,
    pub device_id: DeviceId,
    pub device_key: Vec<u8>,
    pub created_at: u64,
    pub root_key: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Decodes `cert`'s bytes, applies `edit` and re-encodes them, without re-signing.
pub fn tamper(
    cert: &DeviceCertificate,
    edit: impl FnOnce(&mut RawCertificate),
) -> DeviceCertificate {
    let bytes = cert.to_bytes().unwrap();
    let mut raw = RawCertificate::mls_decode(&mut bytes.as_slice()).unwrap();
    assert_eq!(
        raw.mls_encode_to_vec().unwrap(),
        bytes,
        "mirror encoding drifted"
    );
    edit(&mut raw);
    DeviceCertificate::from_bytes(&raw.mls_encode_to_vec().unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Members and assertions
// ---------------------------------------------------------------------------------------

/// A conversation of any configuration, seen as a peer in a test.
pub trait Peer {
    fn recv(&mut self, bytes: &[u8]) -> Result<Event, ConversationError>;
    fn current_epoch(&self) -> u64;
    fn say(&mut self, text: &str) -> Vec<u8>;
    fn name(&self) -> String;
}

impl<C: MlsConfig> Peer for Conversation<C> {
    fn recv(&mut self, bytes: &[u8]) -> Result<Event, ConversationError> {
        self.process(bytes, NOW_MS)
    }
    fn current_epoch(&self) -> u64 {
        self.epoch()
    }
    fn say(&mut self, text: &str) -> Vec<u8> {
        let burn = self.policy().burn_on_read() == BurnOnRead::Required;
        self.send_text(text, 60, burn, NOW_MS).unwrap().1
    }
    fn name(&self) -> String {
        let me = self.mls_group().current_member_index();
        let member = self.members().into_iter().find(|m| m.index == me).unwrap();
        member.identity.user.to_string()
    }
}

/// The leaf index of `user`'s (first) device in `conv`.
pub fn index_of<C: MlsConfig>(conv: &Conversation<C>, user: &str) -> u32 {
    conv.members()
        .into_iter()
        .find(|m| m.identity.user.as_str() == user)
        .unwrap_or_else(|| panic!("{user} is not a member"))
        .index
}

/// The identity of `user`'s (first) device in `conv`.
pub fn identity_of<C: MlsConfig>(conv: &Conversation<C>, user: &str) -> DeviceIdentity {
    let index = index_of(conv, user);
    conv.members()
        .into_iter()
        .find(|m| m.index == index)
        .unwrap()
        .identity
}

/// Asserts that `peer` decrypts `ct` as the text message `text`.
pub fn expect_text(peer: &mut dyn Peer, ct: &[u8], text: &str) {
    match peer.recv(ct) {
        Ok(Event::Message(m)) => assert_eq!(m.content.body, Body::Text(text.into())),
        other => panic!("{} expected message {text:?}, got {other:?}", peer.name()),
    }
}

/// Asserts that `peer` processes `commit` and returns its summary.
pub fn expect_commit(peer: &mut dyn Peer, commit: &[u8]) -> CommitSummary {
    match peer.recv(commit) {
        Ok(Event::Commit(s)) => s,
        other => panic!("{} expected a commit, got {other:?}", peer.name()),
    }
}

/// All peers share one epoch; `sender` sends a fresh message and every receiver reads it.
pub fn assert_healthy(sender: &mut dyn Peer, receivers: &mut [&mut dyn Peer]) {
    let epoch = sender.current_epoch();
    let text = format!("still fine at epoch {epoch}, from {}", sender.name());
    let ct = sender.say(&text);
    for r in receivers.iter_mut() {
        assert_eq!(r.current_epoch(), epoch, "{} is on another epoch", r.name());
        expect_text(&mut **r, &ct, &text);
    }
}

/// Every receiver refuses `message` with an error satisfying `check`, and stays in its epoch.
pub fn assert_rejected(
    message: &[u8],
    receivers: &mut [&mut dyn Peer],
    check: impl Fn(&ConversationError) -> bool,
) {
    for r in receivers.iter_mut() {
        let before = r.current_epoch();
        match r.recv(message) {
            Err(e) if check(&e) => {}
            other => panic!(
                "{} should have refused the message, got {other:?}",
                r.name()
            ),
        }
        assert_eq!(r.current_epoch(), before, "{} changed epoch", r.name());
    }
}

/// `e` is the membership rule's refusal `rule`.
pub fn is_rule(e: &ConversationError, rule: RuleError) -> bool {
    matches!(e, ConversationError::Rule(m) if *m == rule.to_string())
}

/// `e` is the MLS layer's refusal `mls`.
pub fn is_mls(e: &ConversationError, mls: MlsError) -> bool {
    matches!(e, ConversationError::Mls(m) if *m == mls.to_string())
}

pub fn fp(root: &UserRootKey) -> RootFingerprint {
    root.public_key().fingerprint()
}

/// Alice (the only manager, honest), Bob (honest member) and Mallory (member running a
/// modified client).
pub struct Trio<M: MlsConfig = Rogue> {
    pub alice: UserRootKey,
    pub bob: UserRootKey,
    pub mallory: UserRootKey,
    pub ca: Conversation<SottoConfig>,
    pub cb: Conversation<SottoConfig>,
    pub cm: Conversation<M>,
}

impl Trio<Rogue> {
    pub fn new() -> Self {
        Self::with_policy(|alice| policy(&[alice]))
    }

    pub fn with_policy(make: impl FnOnce(&UserRootKey) -> Policy) -> Self {
        Trio::build(make, rogue_device)
    }
}

impl<M: MlsConfig> Trio<M> {
    pub fn build(
        make: impl FnOnce(&UserRootKey) -> Policy,
        mallory_device: impl FnOnce(&UserRootKey) -> Device<M>,
    ) -> Self {
        let (alice, bob, mallory) = (user("alice"), user("bob"), user("mallory"));
        let (a, b, m) = (device(&alice), device(&bob), mallory_device(&mallory));
        let mut ca = a.create_conversation(&make(&alice)).unwrap();
        let out = ca
            .add_and_remove(&[b.key_package().unwrap(), m.key_package().unwrap()], &[])
            .unwrap();
        ca.merge_pending_commit().unwrap();
        let welcome = out.welcome.unwrap();
        let cb = b.join(&welcome).unwrap();
        let cm = m.join(&welcome).unwrap();
        let mut trio = Self {
            alice,
            bob,
            mallory,
            ca,
            cb,
            cm,
        };
        trio.healthy();
        trio
    }

    /// Alice sends and Bob and Mallory read; Bob sends and Alice reads.
    pub fn healthy(&mut self) {
        assert_healthy(&mut self.ca, &mut [&mut self.cb, &mut self.cm]);
        assert_healthy(&mut self.cb, &mut [&mut self.ca]);
    }

    pub fn epochs(&self) -> [u64; 3] {
        [self.ca.epoch(), self.cb.epoch(), self.cm.epoch()]
    }
}

/// `manager` creates a conversation (policy: only them) with honest devices of `others`.
pub fn honest_group(
    manager: &UserRootKey,
    others: &[&UserRootKey],
) -> (Conversation<SottoConfig>, Vec<Conversation<SottoConfig>>) {
    let mut c = device(manager)
        .create_conversation(&policy(&[manager]))
        .unwrap();
    let devices: Vec<Device> = others.iter().map(|r| device(r)).collect();
    let kps: Vec<Vec<u8>> = devices.iter().map(|d| d.key_package().unwrap()).collect();
    let out = c.add_and_remove(&kps, &[]).unwrap();
    c.merge_pending_commit().unwrap();
    let welcome = out.welcome.unwrap();
    let joined = devices.iter().map(|d| d.join(&welcome).unwrap()).collect();
    (c, joined)
}

// ---------------------------------------------------------------------------------------
// Forged certificates
// ---------------------------------------------------------------------------------------

/// Three forged identities presented in KeyPackages, each with what `verify_for_key` says.
pub fn forgeries(
    alice: &UserRootKey,
    mallory: &UserRootKey,
) -> Vec<(&'static str, Vec<u8>, IdentityError)> {
    let mut out = Vec::new();

    // (a) Signed by Mallory's root key, but embedding Alice's root key.
    let m = NewDevice::generate(mallory, NOW_MS / 1000).unwrap();
    let alice_root = alice.public_key().as_bytes().to_vec();
    let forged = tamper(&m.certificate, |raw| {
        raw.user_id = "alice".into();
        raw.root_key = alice_root;
    });
    let key = forged.device_key().to_vec();
    assert_eq!(
        forged.verify_for_key(&key),
        Err(IdentityError::BadSignature)
    );
    out.push((
        "root key swapped",
        key_package_with(&forged, &key, m.secret),
        IdentityError::BadSignature,
    ));

    // (b) Alice's genuine certificate for key K, presented with another key K2.
    let genuine = NewDevice::generate(alice, NOW_MS / 1000).unwrap();
    let (secret2, key2) = device::generate_device_key().unwrap();
    assert_eq!(
        genuine.certificate.verify_for_key(&key2),
        Err(IdentityError::DeviceKeyMismatch)
    );
    out.push((
        "certificate for another key",
        key_package_with(&genuine.certificate, &key2, secret2),
        IdentityError::DeviceKeyMismatch,
    ));

    // (c) Mallory's genuine certificate with its user id rewritten.
    let m = NewDevice::generate(mallory, NOW_MS / 1000).unwrap();
    let forged = tamper(&m.certificate, |raw| raw.user_id = "alice".into());
    let key = forged.device_key().to_vec();
    assert_eq!(
        forged.verify_for_key(&key),
        Err(IdentityError::BadSignature)
    );
    out.push((
        "user id rewritten",
        key_package_with(&forged, &key, m.secret),
        IdentityError::BadSignature,
    ));

    out
}
