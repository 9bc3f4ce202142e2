//! A device's MLS client: its certified signing identity, its KeyPackages, and the
//! conversations it creates or joins.
//!
//! Every device runs `mls-rs` with exactly one ciphersuite, 0x0005
//! (`MLS_256_DHKEMP521_AES256GCM_SHA512_P521`), the [`SottoIdentityProvider`] and the
//! [`SottoMlsRules`]. The crypto provider advertises no other suite, and a conversation
//! created or joined on another suite, or a KeyPackage of another suite, is refused
//! explicitly (no downgrade).

use mls_rs::{
    client_builder::{
        BaseConfig, ClientBuilder, MlsConfig, WithCryptoProvider, WithGroupStateStorage,
        WithIdentityProvider, WithMlsRules,
    },
    extension::recommended::LastResortKeyPackageExt,
    external_client::ExternalClient,
    storage_provider::in_memory::InMemoryGroupStateStorage,
    CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList, MlsMessage,
};
use mls_rs_core::{crypto::SignatureSecretKey, identity::SigningIdentity};
use mls_rs_crypto_awslc::AwsLcCryptoProvider;

use crate::conversation::{Conversation, ConversationError, MAX_MESSAGE_LEN};
use crate::identity::{
    DeviceCertificate, DeviceId, DeviceIdentity, IdentityError, RootFingerprint, UserId,
    UserRootKey,
};
use crate::identity_provider::{credential, device_identity, SottoIdentityProvider};
use crate::policy::{Policy, POLICY_EXTENSION};
use crate::rules::{RuleError, SottoMlsRules};

/// The one MLS ciphersuite Sotto uses: 0x0005, P-521 / AES-256-GCM / SHA-512.
pub const CIPHER_SUITE: CipherSuite = CipherSuite::P521_AES256;

/// How many past epochs a device keeps to decrypt late messages. One: a message sent
/// just before a commit can still be read, and the epoch before that is forgotten (its
/// secrets deleted) as soon as the next commit lands. See `docs/protocol.md`.
pub const PRIOR_EPOCH_RETENTION: usize = 1;

/// The `mls-rs` configuration of a Sotto device with in-memory state (tests, bots that
/// keep no state). The client crate swaps in encrypted on-disk storage.
pub type SottoConfig = WithMlsRules<
    SottoMlsRules,
    WithIdentityProvider<
        SottoIdentityProvider,
        WithCryptoProvider<
            AwsLcCryptoProvider,
            WithGroupStateStorage<InMemoryGroupStateStorage, BaseConfig>,
        >,
    >,
>;

/// The crypto provider, restricted to [`CIPHER_SUITE`].
pub fn crypto_provider() -> AwsLcCryptoProvider {
    AwsLcCryptoProvider::with_enabled_cipher_suites(vec![CIPHER_SUITE])
}

/// A client builder with Sotto's provider, rules, extension and in-memory storage; add a
/// signing identity (or other storage) and build.
pub fn client_builder() -> Result<ClientBuilder<SottoConfig>, ConversationError> {
    let storage = InMemoryGroupStateStorage::new()
        .with_max_epoch_retention(PRIOR_EPOCH_RETENTION)
        .map_err(ConversationError::from_mls)?;
    Ok(ClientBuilder::new()
        .group_state_storage(storage)
        .crypto_provider(crypto_provider())
        .identity_provider(SottoIdentityProvider)
        .mls_rules(SottoMlsRules)
        .extension_type(POLICY_EXTENSION))
}

/// Generates a device signature key pair (MLS signature keys for suite 0x0005).
pub fn generate_device_key() -> Result<(SignatureSecretKey, Vec<u8>), ConversationError> {
    let suite = crypto_provider()
        .cipher_suite_provider(CIPHER_SUITE)
        .ok_or(ConversationError::UnsupportedCipherSuite)?;
    let (secret, public) = suite
        .signature_key_generate()
        .map_err(|_| ConversationError::KeyGeneration)?;
    Ok((secret, public.as_bytes().to_vec()))
}

/// Largest KeyPackage accepted from the network (16 KiB).
pub const MAX_KEY_PACKAGE_LEN: usize = 16 * 1024;

/// Checks a KeyPackage fetched from the server (or, on the server, one uploaded) and
/// returns whose device it is.
///
/// The KeyPackage's signatures and lifetime are checked as on an add, and the certificate
/// inside is verified against the root key it carries; the caller must
/// then compare [`DeviceIdentity::root_fingerprint`] with the root key it expects for that
/// user (pinned on first use, or verified with a safety number). Without that comparison
/// a compromised server could hand out a KeyPackage for a user of its own making.
pub fn inspect_key_package(bytes: &[u8]) -> Result<DeviceIdentity, ConversationError> {
    if bytes.len() > MAX_KEY_PACKAGE_LEN {
        return Err(ConversationError::TooLarge(bytes.len()));
    }
    let message = MlsMessage::from_bytes(bytes).map_err(ConversationError::from_mls)?;
    if message.cipher_suite() != Some(CIPHER_SUITE) {
        return Err(ConversationError::UnsupportedCipherSuite);
    }
    if message.as_key_package().is_none() {
        return Err(ConversationError::Mls("not a KeyPackage".into()));
    }
    // The whole KeyPackage is validated as MLS would on an add: its signature, its leaf
    // node's signature and lifetime, and the certificate through the identity provider.
    let key_package = ExternalClient::builder()
        .crypto_provider(crypto_provider())
        .identity_provider(SottoIdentityProvider)
        .build()
        .validate_key_package(message, None)
        .map_err(ConversationError::from_mls)?;
    device_identity(key_package.signing_identity())
        .map_err(|e| ConversationError::Identity(e.to_string()))
}

/// Checks a KeyPackage fetched from the server for a device of `user`, whose root key the
/// caller trusts under fingerprint `root`: the KeyPackage must carry a valid certificate of
/// exactly that user and root key. This is the check a client makes before adding a device,
/// so that a server substituting keys is caught (`Identity`, "belongs to another user").
pub fn expect_key_package(
    bytes: &[u8],
    user: &UserId,
    root: &RootFingerprint,
) -> Result<DeviceIdentity, ConversationError> {
    let identity = inspect_key_package(bytes)?;
    if &identity.user != user || &identity.root_fingerprint != root {
        return Err(ConversationError::Identity(
            IdentityError::UserMismatch.to_string(),
        ));
    }
    Ok(identity)
}

/// One device of a user, able to publish KeyPackages and create or join conversations.
pub struct Device<C: MlsConfig = SottoConfig> {
    client: Client<C>,
    identity: DeviceIdentity,
}

impl<C: MlsConfig> core::fmt::Debug for Device<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Device")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A new device: its certificate and the secret signature key to keep (encrypted) on it.
pub struct NewDevice {
    /// The device's certificate, signed by the user's root key.
    pub certificate: DeviceCertificate,
    /// The device's MLS signature secret key (zeroized on drop).
    pub secret: SignatureSecretKey,
}

impl core::fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NewDevice")
            .field("certificate", &self.certificate)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl NewDevice {
    /// Generates a device key and certifies it with `root`.
    pub fn generate(root: &UserRootKey, created_at: u64) -> Result<Self, ConversationError> {
        let (secret, public) = generate_device_key()?;
        let certificate = root.certify_device(DeviceId::random()?, &public, created_at)?;
        Ok(Self {
            certificate,
            secret,
        })
    }
}

impl Device<SottoConfig> {
    /// A device with in-memory state.
    pub fn in_memory(device: NewDevice) -> Result<Self, ConversationError> {
        let signing_identity = SigningIdentity::new(
            credential(&device.certificate)?,
            device.certificate.device_key().to_vec().into(),
        );
        let client = client_builder()?
            .signing_identity(signing_identity, device.secret, CIPHER_SUITE)
            .build();
        Self::from_client(client)
    }
}

impl<C: MlsConfig> Device<C> {
    /// Wraps an `mls-rs` client configured with Sotto's providers; its signing identity
    /// must carry a valid Sotto certificate for its key.
    pub fn from_client(client: Client<C>) -> Result<Self, ConversationError> {
        let (signing_identity, suite) = client
            .signing_identity()
            .map_err(ConversationError::from_mls)?;
        if suite != CIPHER_SUITE {
            return Err(ConversationError::UnsupportedCipherSuite);
        }
        let identity = device_identity(signing_identity)?;
        Ok(Self { client, identity })
    }

    /// Who this device is.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// The underlying `mls-rs` client.
    pub fn mls_client(&self) -> &Client<C> {
        &self.client
    }

    /// A one-time KeyPackage (an MLS message) to publish; its private keys stay on the device.
    pub fn key_package(&self) -> Result<Vec<u8>, ConversationError> {
        self.make_key_package(ExtensionList::new())
    }

    /// A last-resort KeyPackage, served by the server only when the one-time pool is
    /// empty. It may be used by several adders; its use is visible to the owner.
    pub fn last_resort_key_package(&self) -> Result<Vec<u8>, ConversationError> {
        let mut extensions = ExtensionList::new();
        extensions
            .set_from(LastResortKeyPackageExt)
            .map_err(|_| ConversationError::KeyGeneration)?;
        self.make_key_package(extensions)
    }

    fn make_key_package(&self, extensions: ExtensionList) -> Result<Vec<u8>, ConversationError> {
        self.client
            .generate_key_package_message(extensions, ExtensionList::new(), None)
            .and_then(|m| m.to_bytes())
            .map_err(ConversationError::from_mls)
    }

    /// Creates a conversation with only this device in it, under `policy`.
    pub fn create_conversation(
        &self,
        policy: &Policy,
    ) -> Result<Conversation<C>, ConversationError> {
        if !policy.is_manager(&self.identity.root_fingerprint) {
            return Err(ConversationError::NotAManager);
        }
        let group = self
            .client
            .create_group(policy.to_extensions()?, ExtensionList::new(), None)
            .map_err(ConversationError::from_mls)?;
        Conversation::new(group, self.identity.clone())
    }

    /// Loads a conversation this device stored earlier (see
    /// [`Conversation::persist`]), checking its suite and policy again.
    pub fn load_conversation(&self, id: &[u8]) -> Result<Conversation<C>, ConversationError> {
        let group = self
            .client
            .load_group(id)
            .map_err(ConversationError::from_mls)?;
        Conversation::new(group, self.identity.clone())
    }

    /// Joins a conversation from a Welcome message addressed to one of this device's
    /// KeyPackages. The conversation must carry a valid Sotto policy, and the membership
    /// rule applies to the joiner too: the Welcome must come from a commit by a manager,
    /// or by another device of this device's own user. A Welcome for a conversation this
    /// device already has stored is refused, so it cannot overwrite that conversation.
    pub fn join(&self, welcome: &[u8]) -> Result<Conversation<C>, ConversationError> {
        if welcome.len() > MAX_MESSAGE_LEN {
            return Err(ConversationError::TooLarge(welcome.len()));
        }
        let message = MlsMessage::from_bytes(welcome).map_err(ConversationError::from_mls)?;
        let (group, info) = self
            .client
            .join_group(None, &message, None)
            .map_err(ConversationError::from_mls)?;
        if self.client.load_group(group.group_id()).is_ok() {
            return Err(ConversationError::AlreadyMember);
        }
        let policy = Policy::from_extensions(&group.context().extensions)?;
        let adder = group
            .member_at_index(info.sender)
            .ok_or(ConversationError::NotAManager)?;
        let adder = device_identity(&adder.signing_identity)
            .map_err(|e| ConversationError::Identity(e.to_string()))?;
        if !policy.is_manager(&adder.root_fingerprint) && !adder.same_user(&self.identity) {
            return Err(ConversationError::Rule(
                RuleError::AddNotAllowed.to_string(),
            ));
        }
        Conversation::new(group, self.identity.clone())
    }
}
