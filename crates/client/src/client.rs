//! The client: an unlocked profile, its MLS device and its server.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use mls_rs::client_builder::{
    BaseConfig, WithCryptoProvider, WithGroupStateStorage, WithIdentityProvider,
    WithKeyPackageRepo, WithMlsRules,
};
use mls_rs::{Client as MlsClient, MlsRules};
use mls_rs_core::crypto::SignatureSecretKey;
use mls_rs_core::identity::SigningIdentity;
use mls_rs_crypto_awslc::AwsLcCryptoProvider;
use sotto_core::conversation::Conversation;
use sotto_core::device::{crypto_provider, Device, CIPHER_SUITE};
use sotto_core::identity::{DeviceCertificate, DeviceIdentity, UserId};
use sotto_core::identity_provider::{credential, SottoIdentityProvider};
use sotto_core::policy::POLICY_EXTENSION;
use sotto_core::rules::SottoMlsRules;

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::mls_store::MlsStore;
use crate::model::{kind, Notice, Profile};
use crate::store::{Slot, Store};

/// The `mls-rs` configuration of a device whose state lives in its profile store.
pub type ProfileConfig = ConfigWithRules<SottoMlsRules>;

/// [`ProfileConfig`] with membership rules `R` in place of Sotto's: what
/// [`Client::modified_mls_client`] builds for the suites that play a malicious member.
pub type ConfigWithRules<R> = WithMlsRules<
    R,
    WithIdentityProvider<
        SottoIdentityProvider,
        WithCryptoProvider<
            AwsLcCryptoProvider,
            WithKeyPackageRepo<MlsStore, WithGroupStateStorage<MlsStore, BaseConfig>>,
        >,
    >,
>;

/// A conversation of this device, with its state in the profile store.
pub type ProfileConversation = Conversation<ProfileConfig>;

pub(crate) const SELF_KEY: &[&[u8]] = &[b"self"];
const DEVICE_KEY: &[&[u8]] = &[b"device signature key"];

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An unlocked profile with an account: the SDK's entry point.
pub struct Client {
    pub(crate) store: Arc<Store>,
    pub(crate) api: Api,
    pub(crate) profile: Profile,
    pub(crate) device: Device<ProfileConfig>,
    pub(crate) secret: SignatureSecretKey,
    pub(crate) conversations: HashMap<String, ProfileConversation>,
    pub(crate) clock_offset_ms: u64,
    pub(crate) new_notices: std::sync::Mutex<Vec<Notice>>,
    /// References of this device's last-resort KeyPackage that Welcomes used since the
    /// last upload: the upkeep replaces it and then deletes these private keys.
    pub(crate) used_last_resort: Vec<Vec<u8>>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("username", &self.profile.username)
            .field("device_id", &self.profile.device_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens the profile in `dir` with `passphrase`, deletes what expired meanwhile, and
    /// connects to its server (or to `server`, if given, which is then remembered, as is
    /// `ca_file`, a PEM file of extra certificate authorities to trust).
    pub fn open(
        dir: &Path,
        passphrase: &[u8],
        server: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Self> {
        let store = Arc::new(Store::open(dir, passphrase)?);
        store.purge_expired(now_ms())?;
        let (mut profile, secret) = {
            let conn = store.conn()?;
            let profile: Profile = store
                .get(&conn, Slot::new(kind::PROFILE, SELF_KEY))?
                .ok_or(ClientError::NotRegistered)?;
            let secret = store
                .get_raw(&conn, Slot::new(kind::SECRET, DEVICE_KEY))?
                .ok_or(ClientError::NotRegistered)?;
            (profile, SignatureSecretKey::new(secret.to_vec()))
        };
        if let Some(server) = server {
            if server != profile.server {
                profile.server = server.to_owned();
                profile.session = None;
            }
        }
        if let Some(ca_file) = ca_file {
            profile.ca_file = Some(ca_file.to_owned());
        }
        let api = Api::new(&profile.server, profile.ca_file.as_deref())?;
        let certificate = DeviceCertificate::from_bytes(&profile.certificate)?;
        // A changed server (or CA file) is stored with the next save, which follows a
        // successful exchange with it: a mistyped address is not remembered.
        Self::assemble(store, api, profile, &certificate, secret)
    }

    fn assemble(
        store: Arc<Store>,
        api: Api,
        profile: Profile,
        certificate: &DeviceCertificate,
        secret: SignatureSecretKey,
    ) -> Result<Self> {
        let device = build_device(&store, certificate, secret.clone())?;
        Ok(Self {
            store,
            api,
            profile,
            device,
            secret,
            conversations: HashMap::new(),
            clock_offset_ms: 0,
            new_notices: std::sync::Mutex::new(Vec::new()),
            used_last_resort: Vec::new(),
        })
    }

    /// Stores a new device's profile and keys (used by registration and login). The root
    /// key is not kept: it certified this device and is dropped (zeroized) by the caller;
    /// a later device obtains it from the sealed backup with the password.
    pub(crate) fn install(
        store: Arc<Store>,
        api: Api,
        new: &crate::account::NewProfile<'_>,
        certificate: &DeviceCertificate,
        secret: SignatureSecretKey,
    ) -> Result<Self> {
        let identity = certificate.verify()?;
        let profile = Profile {
            server: api.base().to_owned(),
            ca_file: new.ca_file.map(Path::to_owned),
            username: identity.user.to_string(),
            device_id: identity.device_id.to_hex(),
            certificate: certificate.to_bytes()?,
            policy_accepted_at: new.accept_policy.then(now_ms),
            cursor: 0,
            session: None,
            unreported: Vec::new(),
            unacked: Vec::new(),
            in_doubt: Vec::new(),
        };
        {
            let mut conn = store.conn()?;
            let tx = conn.transaction()?;
            store.put_raw(
                &tx,
                Slot::new(kind::SECRET, DEVICE_KEY),
                0,
                None,
                secret.as_bytes(),
            )?;
            store.put(&tx, Slot::new(kind::PROFILE, SELF_KEY), 0, None, &profile)?;
            tx.commit()?;
        }
        Self::assemble(store, api, profile, certificate, secret)
    }

    pub(crate) fn save_profile(&self) -> Result<()> {
        let conn = self.store.conn()?;
        self.store.put(
            &conn,
            Slot::new(kind::PROFILE, SELF_KEY),
            0,
            None,
            &self.profile,
        )
    }

    /// The client's idea of now (ms since the Unix epoch): the system clock, moved
    /// forward by [`advance_clock`](Self::advance_clock).
    pub fn now(&self) -> u64 {
        now_ms().saturating_add(self.clock_offset_ms)
    }

    /// Moves this client's clock forward by `ms`, as if that time had passed: for tests of
    /// expiry, which must not wait for real time. Never moves the clock back.
    #[doc(hidden)]
    pub fn advance_clock(&mut self, ms: u64) {
        self.clock_offset_ms = self.clock_offset_ms.saturating_add(ms);
    }

    /// The account name.
    pub fn username(&self) -> &str {
        &self.profile.username
    }

    pub(crate) fn user_id(&self) -> Result<UserId> {
        Ok(UserId::new(&self.profile.username)?)
    }

    /// This device's id, hex.
    pub fn device_id(&self) -> &str {
        &self.profile.device_id
    }

    /// This device's verified identity.
    pub fn identity(&self) -> &DeviceIdentity {
        self.device.identity()
    }

    /// The server's address.
    pub fn server(&self) -> &str {
        self.api.base()
    }

    /// The profile store (for front ends that show its location).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether the user acknowledged the ephemerality policy.
    pub fn policy_accepted(&self) -> bool {
        self.profile.policy_accepted_at.is_some()
    }

    /// Records that the user acknowledged the ephemerality policy.
    pub fn accept_policy(&mut self) -> Result<()> {
        if self.profile.policy_accepted_at.is_none() {
            self.profile.policy_accepted_at = Some(now_ms());
            self.save_profile()?;
        }
        Ok(())
    }

    /// Deletes every expired record now; returns how many went.
    pub fn purge_expired(&mut self) -> Result<usize> {
        let n = self.store.purge_expired(self.now())?;
        Ok(n)
    }

    /// Notices (warnings) kept for the user, oldest first.
    pub fn notices(&self) -> Result<Vec<Notice>> {
        let conn = self.store.conn()?;
        self.store.list(&conn, kind::NOTICE, None)
    }

    /// The notices raised since the last call (for a front end to show once).
    pub fn take_new_notices(&self) -> Result<Vec<Notice>> {
        let mut new = self
            .new_notices
            .lock()
            .map_err(|_| ClientError::Store("the notice list was poisoned".into()))?;
        Ok(std::mem::take(&mut *new))
    }

    /// Records a notice for the user; it is kept for a week.
    pub(crate) fn notice(&self, text: String) -> Result<Notice> {
        let at = self.now();
        let notice = Notice { at, text };
        let id = sotto_core::crypto::random_array::<16>()?;
        let conn = self.store.conn()?;
        let sort = i64::try_from(at).unwrap_or(i64::MAX);
        let expiry = at.saturating_add(7 * 24 * 3600 * 1000);
        self.store.put(
            &conn,
            Slot::new(kind::NOTICE, &[&id]),
            sort,
            Some(expiry),
            &notice,
        )?;
        if let Ok(mut new) = self.new_notices.lock() {
            new.push(notice.clone());
        }
        Ok(notice)
    }

    /// A valid session token, logging in with the device key if needed.
    pub(crate) async fn token(&mut self) -> Result<String> {
        let now = now_ms() / 1000;
        if let Some((token, expires)) = &self.profile.session {
            if *expires > now + 60 {
                return Ok(token.clone());
            }
        }
        let session = crate::account::device_session(
            &self.api,
            &self.user_id()?,
            self.identity(),
            &self.secret,
        )
        .await?;
        self.profile.session = Some((session.token.clone(), session.expires_at));
        self.save_profile()?;
        Ok(session.token)
    }

    /// Forgets the session after the server refused it.
    pub(crate) fn drop_session(&mut self) -> Result<()> {
        self.profile.session = None;
        self.save_profile()
    }

    /// The conversation `id` (hex), loaded from the store on first use.
    pub(crate) fn conversation(&mut self, id: &str) -> Result<&mut ProfileConversation> {
        if !self.conversations.contains_key(id) {
            let raw = hex::decode(id).map_err(|_| ClientError::UnknownConversation(id.into()))?;
            let conversation = self
                .device
                .load_conversation(&raw)
                .map_err(|_| ClientError::UnknownConversation(id.into()))?;
            self.conversations.insert(id.to_owned(), conversation);
        }
        self.conversations
            .get_mut(id)
            .ok_or_else(|| ClientError::UnknownConversation(id.into()))
    }
}

/// An MLS device on the profile store for `certificate` and its secret key.
pub(crate) fn build_device(
    store: &Arc<Store>,
    certificate: &DeviceCertificate,
    secret: SignatureSecretKey,
) -> Result<Device<ProfileConfig>> {
    let client = mls_client(store, certificate, secret, SottoMlsRules)?;
    Ok(Device::from_client(client)?)
}

/// An `mls-rs` client of this device's keys and stored state, with membership rules `rules`.
fn mls_client<R: MlsRules + Clone>(
    store: &Arc<Store>,
    certificate: &DeviceCertificate,
    secret: SignatureSecretKey,
    rules: R,
) -> Result<MlsClient<ConfigWithRules<R>>> {
    let signing_identity = SigningIdentity::new(
        credential(certificate)?,
        certificate.device_key().to_vec().into(),
    );
    let storage = MlsStore(Arc::clone(store));
    Ok(MlsClient::builder()
        .group_state_storage(storage.clone())
        .key_package_repo(storage)
        .crypto_provider(crypto_provider())
        .identity_provider(SottoIdentityProvider)
        .mls_rules(rules)
        .extension_type(POLICY_EXTENSION)
        .signing_identity(signing_identity, secret, CIPHER_SUITE)
        .build())
}

impl Client {
    /// A *modified* client: an `mls-rs` client with this device's keys and stored
    /// conversations but membership rules `rules` in place of Sotto's, so that it can
    /// build commits an honest client refuses to build. It exists for the test suites
    /// that play a malicious member; an honest front end never needs it. Conversations it
    /// changes are stale in this `Client` afterwards.
    #[doc(hidden)]
    pub fn modified_mls_client<R: MlsRules + Clone>(
        &self,
        rules: R,
    ) -> Result<MlsClient<ConfigWithRules<R>>> {
        let certificate = DeviceCertificate::from_bytes(&self.profile.certificate)?;
        mls_client(&self.store, &certificate, self.secret.clone(), rules)
    }
}
