//! Conversations under attack: malicious members running a modified client, forged device
//! certificates, replays, policy violations, spoofed senders, external joins and
//! downgrades. Every test checks both that the attack is refused with the specific error
//! and that the honest members' state survives it (same epoch, messages still flow).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;

use common::*;
use mls_rs::client_builder::{
    BaseConfig, MlsConfig, PaddingMode, WithCryptoProvider, WithIdentityProvider, WithMlsRules,
};
use mls_rs::error::MlsError;
use mls_rs::identity::{Credential, CredentialType, SigningIdentity};
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules, EncryptionOptions};
use mls_rs::{
    CipherSuite, CipherSuiteProvider, Client, CryptoProvider, Extension, ExtensionList,
    IdentityProvider, MlsMessage,
};
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
use sotto_core::policy::{BurnOnRead, Policy, PolicyError, POLICY_EXTENSION};
use sotto_core::rules::RuleError;

// ---------------------------------------------------------------------------------------
// Modified clients
// ---------------------------------------------------------------------------------------

/// The configuration of a modified client: mls-rs's pass-through `DefaultMlsRules` (no
/// membership rule at all) with identity provider `I`.
type RogueConfig<I> = WithMlsRules<
    DefaultMlsRules,
    WithIdentityProvider<I, WithCryptoProvider<AwsLcCryptoProvider, BaseConfig>>,
>;
/// A modified client that still validates certificates like Sotto.
type Rogue = RogueConfig<SottoIdentityProvider>;
/// A modified client that accepts any credential at all.
type Lax = RogueConfig<AcceptAnyCredential>;

/// An identity provider that accepts every credential (a modified client's).
#[derive(Debug, Clone, Copy, Default)]
struct AcceptAnyCredential;

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
fn rogue_rules() -> DefaultMlsRules {
    DefaultMlsRules::new()
        .with_commit_options(CommitOptions::new().with_path_required(true))
        .with_encryption_options(EncryptionOptions::new(true, PaddingMode::StepFunction))
}

fn rogue_client<I: IdentityProvider + Clone>(
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
fn signing_identity(cert: &DeviceCertificate, key: &[u8]) -> SigningIdentity {
    SigningIdentity::new(credential(cert).unwrap(), key.to_vec().into())
}

/// A properly certified device of `root` running a modified client (no membership rule).
fn rogue_device(root: &UserRootKey) -> Device<Rogue> {
    rogue_device_with(root, rogue_rules())
}

/// Same, with the given pass-through rules.
fn rogue_device_with(root: &UserRootKey, rules: DefaultMlsRules) -> Device<Rogue> {
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
fn lax_device(root: &UserRootKey) -> Device<Lax> {
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
fn key_package_with(
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
fn send_raw<C: MlsConfig>(conv: &mut Conversation<C>, content: &Content) -> Vec<u8> {
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
struct RawCertificate {
    version: u8,
    user_id: String,
    device_id: DeviceId,
    device_key: Vec<u8>,
    created_at: u64,
    root_key: Vec<u8>,
    signature: Vec<u8>,
}

/// Decodes `cert`'s bytes, applies `edit` and re-encodes them, without re-signing.
fn tamper(cert: &DeviceCertificate, edit: impl FnOnce(&mut RawCertificate)) -> DeviceCertificate {
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
trait Peer {
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
fn index_of<C: MlsConfig>(conv: &Conversation<C>, user: &str) -> u32 {
    conv.members()
        .into_iter()
        .find(|m| m.identity.user.as_str() == user)
        .unwrap_or_else(|| panic!("{user} is not a member"))
        .index
}

/// The identity of `user`'s (first) device in `conv`.
fn identity_of<C: MlsConfig>(conv: &Conversation<C>, user: &str) -> DeviceIdentity {
    let index = index_of(conv, user);
    conv.members()
        .into_iter()
        .find(|m| m.index == index)
        .unwrap()
        .identity
}

/// Asserts that `peer` decrypts `ct` as the text message `text`.
fn expect_text(peer: &mut dyn Peer, ct: &[u8], text: &str) {
    match peer.recv(ct) {
        Ok(Event::Message(m)) => assert_eq!(m.content.body, Body::Text(text.into())),
        other => panic!("{} expected message {text:?}, got {other:?}", peer.name()),
    }
}

/// Asserts that `peer` processes `commit` and returns its summary.
fn expect_commit(peer: &mut dyn Peer, commit: &[u8]) -> CommitSummary {
    match peer.recv(commit) {
        Ok(Event::Commit(s)) => s,
        other => panic!("{} expected a commit, got {other:?}", peer.name()),
    }
}

/// All peers share one epoch; `sender` sends a fresh message and every receiver reads it.
fn assert_healthy(sender: &mut dyn Peer, receivers: &mut [&mut dyn Peer]) {
    let epoch = sender.current_epoch();
    let text = format!("still fine at epoch {epoch}, from {}", sender.name());
    let ct = sender.say(&text);
    for r in receivers.iter_mut() {
        assert_eq!(r.current_epoch(), epoch, "{} is on another epoch", r.name());
        expect_text(&mut **r, &ct, &text);
    }
}

/// Every receiver refuses `message` with an error satisfying `check`, and stays in its epoch.
fn assert_rejected(
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
fn is_rule(e: &ConversationError, rule: RuleError) -> bool {
    matches!(e, ConversationError::Rule(m) if *m == rule.to_string())
}

/// `e` is the MLS layer's refusal `mls`.
fn is_mls(e: &ConversationError, mls: MlsError) -> bool {
    matches!(e, ConversationError::Mls(m) if *m == mls.to_string())
}

fn fp(root: &UserRootKey) -> RootFingerprint {
    root.public_key().fingerprint()
}

/// Alice (the only manager, honest), Bob (honest member) and Mallory (member running a
/// modified client).
struct Trio<M: MlsConfig = Rogue> {
    alice: UserRootKey,
    bob: UserRootKey,
    mallory: UserRootKey,
    ca: Conversation<SottoConfig>,
    cb: Conversation<SottoConfig>,
    cm: Conversation<M>,
}

impl Trio<Rogue> {
    fn new() -> Self {
        Self::with_policy(|alice| policy(&[alice]))
    }

    fn with_policy(make: impl FnOnce(&UserRootKey) -> Policy) -> Self {
        Trio::build(make, rogue_device)
    }
}

impl<M: MlsConfig> Trio<M> {
    fn build(
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
    fn healthy(&mut self) {
        assert_healthy(&mut self.ca, &mut [&mut self.cb, &mut self.cm]);
        assert_healthy(&mut self.cb, &mut [&mut self.ca]);
    }

    fn epochs(&self) -> [u64; 3] {
        [self.ca.epoch(), self.cb.epoch(), self.cm.epoch()]
    }
}

/// `manager` creates a conversation (policy: only them) with honest devices of `others`.
fn honest_group(
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
// 1. The honest client's own rules
// ---------------------------------------------------------------------------------------

#[test]
fn honest_non_manager_client_refuses_to_add_remove_or_change_policy() {
    let mut t = Trio::new();
    let before = t.epochs();
    let dave = device(&user("dave"));

    let err =
        t.cb.add_and_remove(&[dave.key_package().unwrap()], &[])
            .unwrap_err();
    assert!(is_rule(&err, RuleError::AddNotAllowed), "{err:?}");

    for victim in ["alice", "mallory"] {
        let idx = index_of(&t.cb, victim);
        let err = t.cb.add_and_remove(&[], &[idx]).unwrap_err();
        assert!(is_rule(&err, RuleError::RemoveNotAllowed), "{err:?}");
    }

    let err = t.cb.set_policy(&policy(&[&t.alice, &t.bob])).unwrap_err();
    assert!(is_rule(&err, RuleError::PolicyChangeNotAllowed), "{err:?}");

    assert!(!t.cb.mls_group().has_pending_commit());
    assert_eq!(t.epochs(), before);
    assert!(!t.cb.policy().is_manager(&fp(&t.bob)));
    t.healthy();
}

// ---------------------------------------------------------------------------------------
// 2, 3. A modified non-manager client
// ---------------------------------------------------------------------------------------

#[test]
fn modified_non_manager_adding_another_users_device_is_rejected_by_honest_members() {
    let mut t = Trio::new();
    let before = t.epochs();
    let dave = device(&user("dave"));

    // Mallory's modified client happily builds the commit...
    let out =
        t.cm.add_and_remove(&[dave.key_package().unwrap()], &[])
            .unwrap();
    // ...which every honest member refuses.
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_rule(e, RuleError::AddNotAllowed)
    });
    assert_eq!(t.ca.members().len(), 3);

    // Dave can open the Welcome, but only into Mallory's fork: the honest members cannot
    // read anything he sends.
    let mut cd = dave.join(&out.welcome.unwrap()).unwrap();
    let (_, ct) = cd.send_text("hi from the fork", 60, false, NOW_MS).unwrap();
    assert_rejected(&ct, &mut [&mut t.ca, &mut t.cb], |e| {
        is_mls(e, MlsError::EpochNotFound)
    });

    t.cm.discard_pending_commit();
    assert_eq!(t.epochs(), before);
    t.healthy();
}

#[test]
fn modified_non_manager_removing_another_users_device_is_rejected_by_honest_members() {
    let mut t = Trio::new();
    let before = t.epochs();
    for victim in ["alice", "bob"] {
        let idx = index_of(&t.cm, victim);
        let out = t.cm.add_and_remove(&[], &[idx]).unwrap();
        assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
            is_rule(e, RuleError::RemoveNotAllowed)
        });
        t.cm.discard_pending_commit();
    }
    assert_eq!(t.epochs(), before);
    assert_eq!(t.ca.members().len(), 3);
    assert_eq!(t.cb.members().len(), 3);
    t.healthy();
}

#[test]
fn modified_non_manager_changing_the_policy_is_rejected_by_honest_members() {
    let mut t = Trio::new();
    let before = t.epochs();

    // Making herself a manager.
    let out = t.cm.set_policy(&policy(&[&t.alice, &t.mallory])).unwrap();
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_rule(e, RuleError::PolicyChangeNotAllowed)
    });
    t.cm.discard_pending_commit();

    // Stripping the policy altogether.
    let output =
        t.cm.mls_group_mut()
            .commit_builder()
            .set_group_context_ext(ExtensionList::new())
            .unwrap()
            .build()
            .unwrap();
    let commit = output.commit_message.to_bytes().unwrap();
    assert_rejected(&commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_rule(e, RuleError::PolicyChangeNotAllowed)
    });
    t.cm.discard_pending_commit();

    assert_eq!(t.epochs(), before);
    for c in [&t.ca, &t.cb] {
        assert_eq!(c.policy(), &policy(&[&t.alice]));
        assert!(!c.policy().is_manager(&fp(&t.mallory)));
    }
    t.healthy();
}

/// Raw policy encoding (version, managers, max TTL, burn-on-read), to build invalid ones.
#[derive(MlsSize, MlsEncode)]
struct RawPolicy {
    version: u8,
    managers: Vec<RootFingerprint>,
    max_ttl_seconds: u32,
    burn_on_read: u8,
}

#[test]
fn modified_manager_cannot_install_a_missing_or_invalid_policy() {
    let alice = user("alice");
    let bob = user("bob");
    let a = rogue_device(&alice);
    let b = device(&bob);
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca.add_and_remove(&[b.key_package().unwrap()], &[]).unwrap();
    ca.merge_pending_commit().unwrap();
    let mut cb = b.join(&out.welcome.unwrap()).unwrap();
    let epoch = cb.epoch();

    let raw = |version, managers, max_ttl_seconds, burn_on_read| {
        let bytes = RawPolicy {
            version,
            managers,
            max_ttl_seconds,
            burn_on_read,
        }
        .mls_encode_to_vec()
        .unwrap();
        let mut list = ExtensionList::new();
        list.set(Extension::new(POLICY_EXTENSION, bytes));
        list
    };
    let cases: Vec<(ExtensionList, PolicyError)> = vec![
        (ExtensionList::new(), PolicyError::Missing),
        (raw(1, vec![fp(&alice)], 0, 1), PolicyError::BadMaxTtl),
        (raw(1, vec![], 60, 1), PolicyError::BadManagers),
        (
            raw(1, vec![fp(&alice), fp(&alice)], 60, 1),
            PolicyError::BadManagers,
        ),
        (
            raw(2, vec![fp(&alice)], 60, 1),
            PolicyError::UnsupportedVersion(2),
        ),
        (raw(1, vec![fp(&alice)], 60, 9), PolicyError::Malformed),
    ];
    for (extensions, expected) in cases {
        let output = ca
            .mls_group_mut()
            .commit_builder()
            .set_group_context_ext(extensions)
            .unwrap()
            .build()
            .unwrap();
        let commit = output.commit_message.to_bytes().unwrap();
        assert_rejected(&commit, &mut [&mut cb], |e| {
            is_rule(e, RuleError::Policy(expected.clone()))
        });
        ca.discard_pending_commit();
    }
    assert_eq!(cb.epoch(), epoch);
    assert_eq!(cb.policy(), &policy(&[&alice]));
    assert_healthy(&mut ca, &mut [&mut cb]);
}

// ---------------------------------------------------------------------------------------
// By-reference proposals
// ---------------------------------------------------------------------------------------

#[test]
fn non_managers_invalid_by_reference_proposal_is_dropped_and_does_not_block_commits() {
    let mut t = Trio::new();
    let alice_idx = index_of(&t.cm, "alice");
    let proposal =
        t.cm.mls_group_mut()
            .propose_remove(alice_idx, Vec::new())
            .unwrap()
            .to_bytes()
            .unwrap();
    assert_eq!(t.ca.process(&proposal, NOW_MS).unwrap(), Event::Proposal);
    assert_eq!(t.cb.process(&proposal, NOW_MS).unwrap(), Event::Proposal);

    // Bob (honest, not a manager) may not commit it: his client drops it and commits anyway.
    let out = t.cb.update().unwrap();
    let summary = t.cb.merge_pending_commit().unwrap();
    assert!(summary.removed.is_empty());
    assert!(expect_commit(&mut t.ca, &out.commit).removed.is_empty());
    assert!(expect_commit(&mut t.cm, &out.commit).removed.is_empty());
    assert_eq!(t.ca.members().len(), 3);
    t.healthy();
}

/// Mallory's by-reference proposals to add Dave, remove Bob and make herself a manager,
/// delivered to Alice and Bob.
fn mallorys_proposals<A: MlsConfig, M: MlsConfig>(
    ca: &mut Conversation<A>,
    cb: &mut Conversation<SottoConfig>,
    cm: &mut Conversation<M>,
    alice: &UserRootKey,
    mallory: &UserRootKey,
    dave: &Device,
) {
    let kp = MlsMessage::from_bytes(&dave.key_package().unwrap()).unwrap();
    let bob_idx = index_of(cm, "bob");
    let ext = policy(&[alice, mallory]).to_extensions().unwrap();
    let group = cm.mls_group_mut();
    let proposals = [
        group.propose_add(kp, Vec::new()).unwrap(),
        group.propose_remove(bob_idx, Vec::new()).unwrap(),
        group
            .propose_group_context_extensions(ext, Vec::new())
            .unwrap(),
    ];
    for p in proposals {
        let p = p.to_bytes().unwrap();
        assert_eq!(ca.process(&p, NOW_MS).unwrap(), Event::Proposal);
        assert_eq!(cb.process(&p, NOW_MS).unwrap(), Event::Proposal);
    }
}

#[test]
fn managers_commit_drops_a_non_managers_by_reference_proposals() {
    let mut t = Trio::new();
    let dave = device(&user("dave"));
    mallorys_proposals(&mut t.ca, &mut t.cb, &mut t.cm, &t.alice, &t.mallory, &dave);

    // Alice (a manager) only means to refresh her keys: her authority must not be lent
    // to Mallory's proposals.
    let out = t.ca.update().unwrap();
    let summary = t.ca.merge_pending_commit().unwrap();
    assert!(
        summary.added.is_empty() && summary.removed.is_empty(),
        "{summary:?}"
    );
    assert!(!summary.policy_changed);
    assert!(out.welcome.is_none());

    let bob_view = expect_commit(&mut t.cb, &out.commit);
    assert!(bob_view.added.is_empty() && bob_view.removed.is_empty() && !bob_view.policy_changed);
    expect_commit(&mut t.cm, &out.commit);
    for c in [&t.ca, &t.cb] {
        assert!(!c.policy().is_manager(&fp(&t.mallory)));
        assert_eq!(c.members().len(), 3);
    }
    t.healthy();
}

#[test]
fn honest_members_reject_a_managers_commit_carrying_a_non_managers_proposals() {
    // Alice is a manager whose modified client commits whatever is pending.
    let (alice, bob, mallory) = (user("alice"), user("bob"), user("mallory"));
    let (a, b, m) = (rogue_device(&alice), device(&bob), rogue_device(&mallory));
    let mut ca = a.create_conversation(&policy(&[&alice])).unwrap();
    let out = ca
        .add_and_remove(&[b.key_package().unwrap(), m.key_package().unwrap()], &[])
        .unwrap();
    ca.merge_pending_commit().unwrap();
    let (mut cb, mut cm) = (
        b.join(out.welcome.as_ref().unwrap()).unwrap(),
        m.join(&out.welcome.unwrap()).unwrap(),
    );
    let epoch = cb.epoch();

    let dave = device(&user("dave"));
    mallorys_proposals(&mut ca, &mut cb, &mut cm, &alice, &mallory, &dave);
    let out = ca.update().unwrap();
    // The add is checked first: it alone sinks the commit.
    assert_rejected(&out.commit, &mut [&mut cb], |e| {
        is_rule(e, RuleError::AddNotAllowed)
    });
    assert_eq!(cb.epoch(), epoch);
    assert_eq!(cb.members().len(), 3);
    assert!(!cb.policy().is_manager(&fp(&mallory)));
}

// ---------------------------------------------------------------------------------------
// 4. Own devices
// ---------------------------------------------------------------------------------------

#[test]
fn non_manager_may_add_own_new_device_which_reads_later_messages() {
    let mut t = Trio::new();
    let bob2 = device(&t.bob);
    let out =
        t.cb.add_and_remove(&[bob2.key_package().unwrap()], &[])
            .unwrap();
    let summary = t.cb.merge_pending_commit().unwrap();
    assert_eq!(summary.added, vec![bob2.identity().clone()]);
    for peer in [&mut t.ca as &mut dyn Peer, &mut t.cm] {
        assert_eq!(
            expect_commit(peer, &out.commit).added,
            vec![bob2.identity().clone()]
        );
    }
    let mut cb2 = bob2.join(&out.welcome.unwrap()).unwrap();
    assert_eq!(t.ca.members().len(), 4);
    assert_healthy(&mut t.ca, &mut [&mut t.cb, &mut cb2, &mut t.cm]);
    assert_healthy(&mut cb2, &mut [&mut t.ca, &mut t.cb, &mut t.cm]);
}

#[test]
fn a_device_of_another_root_key_with_the_same_user_id_is_not_own_device() {
    let mut t = Trio::new();
    // A different root key that also calls itself "bob" (e.g. minted by a hostile server).
    let impostor = device(&user("bob"));
    let before = t.epochs();

    let err =
        t.cb.add_and_remove(&[impostor.key_package().unwrap()], &[])
            .unwrap_err();
    assert!(is_rule(&err, RuleError::AddNotAllowed), "{err:?}");

    // Mallory adding a device of Bob's real root key is just as forbidden.
    let bob2 = device(&t.bob);
    let out =
        t.cm.add_and_remove(&[bob2.key_package().unwrap()], &[])
            .unwrap();
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_rule(e, RuleError::AddNotAllowed)
    });
    t.cm.discard_pending_commit();
    assert_eq!(t.epochs(), before);
    t.healthy();
}

// ---------------------------------------------------------------------------------------
// 5. Leaving
// ---------------------------------------------------------------------------------------

#[test]
fn member_leaves_through_the_managers_commit() {
    let mut t = Trio::new();
    let bob_identity = identity_of(&t.cb, "bob");
    let proposal = t.cb.propose_leave().unwrap();
    assert_eq!(t.ca.process(&proposal, NOW_MS).unwrap(), Event::Proposal);
    assert_eq!(t.cm.process(&proposal, NOW_MS).unwrap(), Event::Proposal);

    let out = t.ca.update().unwrap();
    let summary = t.ca.merge_pending_commit().unwrap();
    assert_eq!(summary.removed, vec![bob_identity.clone()]);
    assert!(!summary.self_removed);

    let bob_view = expect_commit(&mut t.cb, &out.commit);
    assert!(bob_view.self_removed);
    assert_eq!(
        expect_commit(&mut t.cm, &out.commit).removed,
        vec![bob_identity]
    );

    assert_eq!(t.ca.members().len(), 2);
    let ct = t.ca.say("bob is gone");
    expect_text(&mut t.cm, &ct, "bob is gone");
    let err = t.cb.process(&ct, NOW_MS).unwrap_err();
    assert!(is_mls(&err, MlsError::EpochNotFound), "{err:?}");
}

#[test]
fn non_manager_may_commit_another_members_leave_proposal() {
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let (mut ca, mut others) = honest_group(&alice, &[&bob, &carol]);
    let mut cc = others.pop().unwrap();
    let mut cb = others.pop().unwrap();
    let epoch = ca.epoch();
    let bob_identity = identity_of(&ca, "bob");

    let proposal = cb.propose_leave().unwrap();
    assert_eq!(ca.process(&proposal, NOW_MS).unwrap(), Event::Proposal);
    assert_eq!(cc.process(&proposal, NOW_MS).unwrap(), Event::Proposal);

    // Carol is not a manager, yet her client commits Bob's own request to leave...
    let out = cc.update().unwrap();
    let summary = cc.merge_pending_commit().unwrap();
    assert_eq!(summary.removed, vec![bob_identity.clone()]);

    // ...and the other members accept it.
    let alice_view = expect_commit(&mut ca, &out.commit);
    assert_eq!(alice_view.removed, vec![bob_identity]);
    assert_eq!(alice_view.epoch, epoch + 1);
    assert!(expect_commit(&mut cb, &out.commit).self_removed);
    assert_eq!(ca.members().len(), 2);
    assert_healthy(&mut ca, &mut [&mut cc]);
    assert_healthy(&mut cc, &mut [&mut ca]);
}

// ---------------------------------------------------------------------------------------
// 6. Forged certificates
// ---------------------------------------------------------------------------------------

/// Three forged identities presented in KeyPackages, each with what `verify_for_key` says.
fn forgeries(
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
// 7. Replays
// ---------------------------------------------------------------------------------------

#[test]
fn replayed_application_message_is_rejected_and_never_delivered_twice() {
    let mut t = Trio::new();
    let ct = t.ca.say("once");
    expect_text(&mut t.cb, &ct, "once");
    assert!(matches!(
        t.cb.process(&ct, NOW_MS),
        Err(ConversationError::Replayed)
    ));

    // Even behind Sotto's ciphertext window, MLS deleted the message key after first use.
    let err =
        t.cb.mls_group_mut()
            .process_incoming_message(MlsMessage::from_bytes(&ct).unwrap())
            .unwrap_err();
    assert!(matches!(
        ConversationError::from_mls(err),
        ConversationError::Replayed
    ));

    // The replay is still refused after the conversation moved to a new epoch.
    let out = t.ca.update().unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    expect_commit(&mut t.cm, &out.commit);
    assert!(matches!(
        t.cb.process(&ct, NOW_MS),
        Err(ConversationError::Replayed)
    ));
    t.healthy();
}

#[test]
fn replayed_commit_is_rejected_and_leaves_state_unchanged() {
    let mut t = Trio::new();
    let dave = device(&user("dave"));
    let out =
        t.ca.add_and_remove(&[dave.key_package().unwrap()], &[])
            .unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    expect_commit(&mut t.cm, &out.commit);
    let mut cd = dave.join(&out.welcome.unwrap()).unwrap();
    let epoch = t.ca.epoch();

    assert_rejected(&out.commit, &mut [&mut t.cb, &mut t.cm], |e| {
        matches!(e, ConversationError::Replayed)
    });
    // The committer and the device the commit added never saw it as a message, so they
    // get past the ciphertext window; MLS refuses it as from an old epoch.
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut cd], |e| {
        is_mls(e, MlsError::InvalidEpoch)
    });
    // The same holds for Bob below Sotto's window.
    let err =
        t.cb.mls_group_mut()
            .process_incoming_message(MlsMessage::from_bytes(&out.commit).unwrap())
            .unwrap_err();
    assert!(matches!(err, MlsError::InvalidEpoch), "{err:?}");

    assert_eq!(t.epochs(), [epoch; 3]);
    assert_eq!(t.ca.members().len(), 4);
    assert_healthy(&mut t.ca, &mut [&mut t.cb, &mut t.cm, &mut cd]);
}

// ---------------------------------------------------------------------------------------
// 8. Policy on messages
// ---------------------------------------------------------------------------------------

fn mallory_content(t: &Trio, ttl: u32, burn: bool) -> Content {
    let me = identity_of(&t.cm, "mallory");
    Content::new(
        "mallory",
        me.device_id,
        NOW_MS,
        ttl,
        burn,
        Body::Text("x".into()),
    )
    .unwrap()
}

#[test]
fn ttl_above_the_policy_maximum_is_refused_by_sender_and_receivers() {
    let mut t = Trio::with_policy(|a| Policy::new(vec![fp(a)], 60, BurnOnRead::Allowed).unwrap());
    let before = t.epochs();
    for ttl in [61, 0, u32::MAX] {
        let err = t.ca.send_text("too long", ttl, false, NOW_MS).unwrap_err();
        assert!(
            matches!(err, ConversationError::Policy(PolicyError::TtlOutOfRange { ttl: x, max: 60 }) if x == ttl),
            "{err:?}"
        );
        let content = mallory_content(&t, ttl, false);
        let err = t.cm.send(&content).unwrap_err();
        assert!(matches!(err, ConversationError::Policy(_)), "{err:?}");

        let ct = send_raw(&mut t.cm, &content);
        assert_rejected(
            &ct,
            &mut [&mut t.ca, &mut t.cb],
            |e| matches!(e, ConversationError::Policy(PolicyError::TtlOutOfRange { ttl: x, max: 60 }) if *x == ttl),
        );
    }
    // At the limit, it is fine.
    let content = mallory_content(&t, 60, false);
    let ct = send_raw(&mut t.cm, &content);
    expect_text(&mut t.ca, &ct, "x");
    expect_text(&mut t.cb, &ct, "x");
    assert_eq!(t.epochs(), before);
    t.healthy();
}

#[test]
fn burn_on_read_required_is_enforced_by_sender_and_receivers() {
    let mut t =
        Trio::with_policy(|a| Policy::new(vec![fp(a)], 86_400, BurnOnRead::Required).unwrap());
    let before = t.epochs();
    let err = t.ca.send_text("keep me", 60, false, NOW_MS).unwrap_err();
    assert!(
        matches!(
            err,
            ConversationError::Policy(PolicyError::BurnOnReadRequired)
        ),
        "{err:?}"
    );

    let content = mallory_content(&t, 60, false);
    let ct = send_raw(&mut t.cm, &content);
    assert_rejected(&ct, &mut [&mut t.ca, &mut t.cb], |e| {
        matches!(
            e,
            ConversationError::Policy(PolicyError::BurnOnReadRequired)
        )
    });

    let content = mallory_content(&t, 60, true);
    let ct = send_raw(&mut t.cm, &content);
    for peer in [&mut t.ca as &mut dyn Peer, &mut t.cb] {
        match peer.recv(&ct) {
            Ok(Event::Message(m)) => assert!(m.content.burn_on_read),
            other => panic!("{other:?}"),
        }
    }
    let (_, ct) = t.ca.send_text("burn me", 60, true, NOW_MS).unwrap();
    expect_text(&mut t.cb, &ct, "burn me");
    assert_eq!(t.epochs(), before);
}

// ---------------------------------------------------------------------------------------
// 9, 10. Spoofed senders, duplicate ids
// ---------------------------------------------------------------------------------------

#[test]
fn content_claiming_another_sender_is_rejected() {
    let mut t = Trio::new();
    let before = t.epochs();
    let alice_dev = identity_of(&t.ca, "alice").device_id;
    let bob_dev = identity_of(&t.ca, "bob").device_id;
    let mallory_dev = identity_of(&t.ca, "mallory").device_id;

    let spoofs = [
        ("alice", alice_dev),   // wholly Alice
        ("alice", mallory_dev), // Alice's name on Mallory's device
        ("mallory", bob_dev),   // Mallory's name on Bob's device
    ];
    for (claimed_user, claimed_device) in spoofs {
        let content = Content::new(
            claimed_user,
            claimed_device,
            NOW_MS,
            60,
            false,
            Body::Text("hi".into()),
        )
        .unwrap();
        // Sotto's own send refuses...
        assert!(matches!(
            t.cm.send(&content),
            Err(ConversationError::SenderMismatch { .. })
        ));
        // ...and receivers refuse what a modified client sends.
        let ct = send_raw(&mut t.cm, &content);
        assert_rejected(&ct, &mut [&mut t.ca, &mut t.cb], |e| {
            matches!(e, ConversationError::SenderMismatch { claimed, actual }
                if claimed == claimed_user && actual == "mallory")
        });
    }
    assert_eq!(t.epochs(), before);
    t.healthy();
}

#[test]
fn second_message_with_the_same_id_is_rejected_as_duplicate() {
    let mut t = Trio::new();
    let bob_dev = identity_of(&t.cb, "bob").device_id;
    let content =
        Content::new("bob", bob_dev, NOW_MS, 60, false, Body::Text("once".into())).unwrap();
    let first = t.cb.send(&content).unwrap();
    // Bob's own client refuses to send the same id twice; a modified client does it anyway.
    assert!(matches!(
        t.cb.send(&content),
        Err(ConversationError::Duplicate)
    ));
    let second = send_raw(&mut t.cb, &content);
    assert_ne!(first, second, "each encryption is a distinct ciphertext");
    for peer in [&mut t.ca as &mut dyn Peer, &mut t.cm] {
        expect_text(peer, &first, "once");
    }
    assert_rejected(&second, &mut [&mut t.ca, &mut t.cm], |e| {
        matches!(e, ConversationError::Duplicate)
    });

    // Mallory re-using the id of Alice's message under her own name is refused by those
    // who received Alice's message.
    let ct = t.ca.say("original");
    let Event::Message(m) = t.cb.process(&ct, NOW_MS).unwrap() else {
        panic!()
    };
    expect_text(&mut t.cm, &ct, "original");
    let mut copy = mallory_content(&t, 60, false);
    copy.id = m.content.id;
    let ct = send_raw(&mut t.cm, &copy);
    assert_rejected(&ct, &mut [&mut t.cb], |e| {
        matches!(e, ConversationError::Duplicate)
    });
    t.healthy();
}

#[test]
fn sender_rejects_a_members_message_reusing_its_own_message_id() {
    let mut t = Trio::new();
    let (id, ct) = t.ca.send_text("mine", 60, false, NOW_MS).unwrap();
    expect_text(&mut t.cb, &ct, "mine");
    expect_text(&mut t.cm, &ct, "mine");
    let mut copy = mallory_content(&t, 60, false);
    copy.id = id;
    let ct = send_raw(&mut t.cm, &copy);
    // Bob refuses it; Alice, whose id it is, must not be the one member who accepts it.
    assert_rejected(&ct, &mut [&mut t.cb, &mut t.ca], |e| {
        matches!(e, ConversationError::Duplicate)
    });
}

// ---------------------------------------------------------------------------------------
// 11. External joins
// ---------------------------------------------------------------------------------------

#[test]
fn external_join_is_refused_by_honest_clients_and_members() {
    let mut t = Trio::new();
    let before = t.epochs();
    // Mallory's modified client publishes a GroupInfo that allows external commits.
    let group_info =
        t.cm.mls_group()
            .group_info_message_allowing_ext_commit(true)
            .unwrap();

    // An honest outsider's own rules refuse to produce the external commit.
    let honest = device(&user("eve"));
    let err = honest
        .mls_client()
        .external_commit_builder()
        .unwrap()
        .build(group_info.clone())
        .err()
        .expect("the honest client built an external commit");
    assert!(is_rule(
        &ConversationError::from_mls(err),
        RuleError::ExternalJoin
    ));

    // A modified outsider produces it; every member refuses it.
    let eve = rogue_device(&user("eve"));
    let (_eve_group, commit) = eve
        .mls_client()
        .external_commit_builder()
        .unwrap()
        .build(group_info)
        .unwrap();
    // An external commit is always an unencrypted PublicMessage: Sotto refuses it unread.
    let bytes = commit.to_bytes().unwrap();
    assert_rejected(&bytes, &mut [&mut t.ca, &mut t.cb], |e| {
        matches!(e, ConversationError::Unencrypted)
    });
    // Underneath, the membership rule refuses it too.
    for group in [t.ca.mls_group_mut(), t.cb.mls_group_mut()] {
        let err = group
            .process_incoming_message(commit.clone())
            .err()
            .unwrap();
        assert!(is_rule(
            &ConversationError::from_mls(err),
            RuleError::ExternalJoin
        ));
    }
    assert_eq!(t.epochs(), before);
    assert_eq!(t.ca.members().len(), 3);
    t.healthy();
}

#[test]
fn unencrypted_handshake_from_a_member_is_refused() {
    // Mallory's modified client sends its handshakes as PublicMessages, readable by the server.
    let plaintext =
        DefaultMlsRules::new().with_commit_options(CommitOptions::new().with_path_required(true));
    let mut t = Trio::build(|a| policy(&[a]), |root| rogue_device_with(root, plaintext));
    let before = t.epochs();

    let proposal = t.cm.mls_group_mut().propose_update(Vec::new()).unwrap();
    assert_eq!(proposal.wire_format(), mls_rs::WireFormat::PublicMessage);
    let proposal = proposal.to_bytes().unwrap();
    assert_rejected(&proposal, &mut [&mut t.ca, &mut t.cb], |e| {
        matches!(e, ConversationError::Unencrypted)
    });
    t.cm.mls_group_mut().clear_proposal_cache();

    // An otherwise legitimate commit (a key update) is refused as well.
    let out = t.cm.update().unwrap();
    assert_rejected(&out.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        matches!(e, ConversationError::Unencrypted)
    });
    t.cm.discard_pending_commit();
    assert_eq!(t.epochs(), before);
    t.healthy();
}

// ---------------------------------------------------------------------------------------
// 12. No reading the past
// ---------------------------------------------------------------------------------------

#[test]
fn device_added_later_cannot_read_earlier_messages() {
    let mut t = Trio::new();
    let old = t.ca.say("before dave");
    let dave = device(&user("dave"));
    let out =
        t.ca.add_and_remove(&[dave.key_package().unwrap()], &[])
            .unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    let mut cd = dave.join(&out.welcome.unwrap()).unwrap();

    let epoch = cd.epoch();
    let err = cd.process(&old, NOW_MS).unwrap_err();
    assert!(is_mls(&err, MlsError::EpochNotFound), "{err:?}");
    assert_eq!(cd.epoch(), epoch);

    // Bob, who was a member then, still reads it one epoch late.
    expect_text(&mut t.cb, &old, "before dave");
    let ct = t.ca.say("after dave");
    expect_text(&mut cd, &ct, "after dave");
}

#[test]
fn messages_two_epochs_old_are_no_longer_readable() {
    let mut t = Trio::new();
    let old = t.ca.say("two epochs ago");
    for _ in 0..2 {
        let out = t.ca.update().unwrap();
        t.ca.merge_pending_commit().unwrap();
        expect_commit(&mut t.cb, &out.commit);
    }
    assert!(
        t.cb.process(&old, NOW_MS).is_err(),
        "epoch secrets two epochs old were kept"
    );
}

#[test]
fn removed_member_can_neither_commit_nor_send() {
    let mut t = Trio::new();
    let idx = index_of(&t.ca, "mallory");
    let out = t.ca.add_and_remove(&[], &[idx]).unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    let epoch = t.ca.epoch();

    // Mallory ignores her removal. A commit from her old epoch goes nowhere.
    let rogue = t.cm.update().unwrap();
    assert_rejected(&rogue.commit, &mut [&mut t.ca, &mut t.cb], |e| {
        is_mls(e, MlsError::InvalidEpoch)
    });
    t.cm.discard_pending_commit();
    assert_eq!(t.ca.epoch(), epoch);

    // A message in her old epoch decrypts with the retained prior epoch, but its sender is
    // no longer in the conversation, so it is refused rather than misattributed.
    let ct = t.cm.say("sent before I noticed");
    assert_rejected(&ct, &mut [&mut t.ca, &mut t.cb], |e| {
        is_mls(e, MlsError::MemberNotFound)
    });
    assert_healthy(&mut t.ca, &mut [&mut t.cb]);
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
// 14. Exporter secrets
// ---------------------------------------------------------------------------------------

fn call_key<C: MlsConfig>(c: &Conversation<C>) -> Vec<u8> {
    c.export_secret(b"sotto call", b"call-1", 32)
        .unwrap()
        .to_vec()
}

#[test]
fn exporter_secret_is_shared_per_epoch_and_lost_by_a_removed_member() {
    let mut t = Trio::new();
    let (ea, eb, em) = (call_key(&t.ca), call_key(&t.cb), call_key(&t.cm));
    assert_eq!(ea, eb);
    assert_eq!(ea, em);
    assert_ne!(
        t.ca.export_secret(b"sotto call", b"call-2", 32)
            .unwrap()
            .to_vec(),
        ea
    );

    // Alice removes Mallory.
    let idx = index_of(&t.ca, "mallory");
    let out = t.ca.add_and_remove(&[], &[idx]).unwrap();
    t.ca.merge_pending_commit().unwrap();
    expect_commit(&mut t.cb, &out.commit);
    assert!(expect_commit(&mut t.cm, &out.commit).self_removed);

    let new_a = call_key(&t.ca);
    assert_eq!(new_a, call_key(&t.cb));
    assert_ne!(new_a, ea, "the exporter must change with the epoch");
    // Whatever Mallory's client can still export, it is not the new call key.
    if let Ok(m) = t.cm.export_secret(b"sotto call", b"call-1", 32) {
        assert_ne!(m.to_vec(), new_a);
    }
    assert_healthy(&mut t.ca, &mut [&mut t.cb]);
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
