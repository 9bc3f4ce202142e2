//! Accounts and devices: registration, password login on a new device, device sessions,
//! the device list, revocation and the KeyPackage pool.

use std::path::Path;
use std::sync::Arc;

use mls_rs_core::crypto::SignatureSecretKey;
use mls_rs_core::key_package::KeyPackageStorage;
use sotto_api::{
    Bytes, ChallengeRequest, PasswordLoginFinish, PasswordLoginStart, PasswordRegistrationFinish,
    PasswordRegistrationStart, RegisterAccount, Session, SessionRequest, UploadKeyPackages,
};
use sotto_core::auth::{sign_challenge, CHALLENGE_LEN};
use sotto_core::backup::{ScryptParams, SealedBackup};
use sotto_core::device::NewDevice;
use sotto_core::identity::{DeviceCertificate, DeviceIdentity, RootPublicKey, UserId, UserRootKey};
use sotto_core::password::{ClientLogin, ClientRegistration, PasswordError};

use crate::api::Api;
use crate::client::{now_ms, Client};
use crate::error::{ClientError, Result};
use crate::mls_store::MlsStore;
use crate::model::{kind, DeviceEntry};
use crate::store::{Slot, Store, DB_FILE, KEY_FILE};

/// Where an unfinished registration keeps the root key (encrypted, like every record).
const PENDING_ROOT: &[&[u8]] = &[b"root key of an unfinished registration"];

/// KeyPackages uploaded at once (registration, and each refill at the low-water mark).
pub const KEY_PACKAGE_BATCH: usize = 20;

/// What a new profile needs: where it lives, how it is locked, which server.
#[derive(Clone, Copy)]
pub struct NewProfile<'a> {
    /// The profile directory.
    pub dir: &'a Path,
    /// The passphrase of the local store.
    pub passphrase: &'a [u8],
    /// The server's address.
    pub server: &'a str,
    /// A PEM file of extra certificate authorities to trust for the server.
    pub ca_file: Option<&'a Path>,
    /// Whether the user acknowledged the ephemerality policy.
    pub accept_policy: bool,
    /// scrypt cost of the profile key and the root-key backup.
    pub scrypt: ScryptParams,
}

impl core::fmt::Debug for NewProfile<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NewProfile")
            .field("dir", &self.dir)
            .field("passphrase", &"<redacted>")
            .field("server", &self.server)
            .field("ca_file", &self.ca_file)
            .field("accept_policy", &self.accept_policy)
            .finish_non_exhaustive()
    }
}

/// Removes a profile created by a registration or login that then failed.
struct Cleanup<'a> {
    dir: &'a Path,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.armed {
            for name in [
                KEY_FILE,
                DB_FILE,
                "profile.db-wal",
                "profile.db-shm",
                crate::store::LOCK_FILE,
            ] {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
    }
}

fn password_error(e: PasswordError) -> ClientError {
    match e {
        PasswordError::AuthenticationFailed => ClientError::WrongPassword,
        other => ClientError::Invalid(other.to_string()),
    }
}

impl Client {
    /// Registers `username` with `password`: creates the profile, the root key and the
    /// first device, publishes them, seals the root key under the password for the server
    /// to keep, and uploads KeyPackages.
    ///
    /// Once the server has the account, nothing is undone: if a later step fails, the root
    /// key stays in the (encrypted) profile and running `register` again with the same
    /// profile, passphrase and password finishes the registration, so the username is
    /// never left without a device or a backup.
    pub async fn register(new: NewProfile<'_>, username: &str, password: &[u8]) -> Result<Self> {
        let user = UserId::new(username)?;
        let api = Api::new(new.server, new.ca_file)?;
        if Store::exists(new.dir) {
            let store = Arc::new(Store::open(new.dir, new.passphrase)?);
            let pending = {
                let conn = store.conn()?;
                store.get_raw(&conn, Slot::new(kind::SECRET, PENDING_ROOT))?
            };
            let Some(pkcs8) = pending else {
                return Err(ClientError::ProfileExists(new.dir.display().to_string()));
            };
            let root = UserRootKey::from_pkcs8(user, &pkcs8)?;
            return Self::finish_registration(store, api, &new, &root, password).await;
        }
        let store = Arc::new(Store::create(new.dir, new.passphrase, new.scrypt)?);
        let mut cleanup = Cleanup {
            dir: new.dir,
            armed: true,
        };
        let root = UserRootKey::generate(user)?;
        {
            let conn = store.conn()?;
            let slot = Slot::new(kind::SECRET, PENDING_ROOT);
            store.put_raw(&conn, slot, 0, None, &root.to_pkcs8())?;
        }
        let account = RegisterAccount {
            username: username.to_owned(),
            root_public_key: Bytes(root.public_key().as_bytes().to_vec()),
        };
        api.register_account(&account).await.map_err(|e| match e {
            ClientError::Server { status: 409, .. } => ClientError::UsernameTaken(username.into()),
            other => other,
        })?;
        cleanup.armed = false;
        Self::finish_registration(store, api, &new, &root, password).await
    }

    /// The steps of a registration after the server created the account; each can be
    /// repeated.
    async fn finish_registration(
        store: Arc<Store>,
        api: Api,
        new: &NewProfile<'_>,
        root: &UserRootKey,
        password: &[u8],
    ) -> Result<Self> {
        let username = root.user().to_string();
        let unfinished = |e: ClientError| {
            ClientError::Invalid(format!(
                "the registration of {username} is not finished: {e}. Run the same `sotto \
                 register` again (same profile, passphrase and password) to finish it"
            ))
        };
        let installed = {
            let conn = store.conn()?;
            store
                .get_raw(&conn, Slot::new(kind::PROFILE, crate::client::SELF_KEY))?
                .is_some()
        };
        let mut client = if installed {
            // The open store holds the profile's lock: release it to reopen as a client.
            drop(store);
            Self::open(new.dir, new.passphrase, Some(new.server), new.ca_file)?
        } else {
            Self::certify_this_device(store, api, new, root)
                .await
                .map_err(unfinished)?
        };
        client
            .register_password(root, password, new.scrypt)
            .await
            .map_err(unfinished)?;
        {
            let conn = client.store.conn()?;
            client
                .store
                .delete(&conn, Slot::new(kind::SECRET, PENDING_ROOT))?;
        }
        if let Err(e) = client.upload_key_packages(true).await {
            // The next sync refills an empty pool.
            tracing::debug!("KeyPackages not uploaded yet: {e}");
        }
        Ok(client)
    }

    /// Registers `password` for login on new devices, with the root key sealed under it.
    async fn register_password(
        &mut self,
        root: &UserRootKey,
        password: &[u8],
        scrypt: ScryptParams,
    ) -> Result<()> {
        let username = root.user().to_string();
        let token = self.token().await?;
        let (registration, request) =
            ClientRegistration::start(username.as_bytes(), password).map_err(password_error)?;
        let start = PasswordRegistrationStart {
            username: username.clone(),
            request: Bytes(request),
        };
        let response = self.api.password_register_start(&token, &start).await?;
        let (upload, _export_key) = registration
            .finish(password, &response.response.0)
            .map_err(password_error)?;
        let sealed = root.seal_backup(password, scrypt)?;
        let finish = PasswordRegistrationFinish {
            username,
            upload: Bytes(upload),
            sealed_backup: Bytes(sealed.to_bytes()),
        };
        self.api.password_register_finish(&token, &finish).await
    }

    /// Logs in to `username` with `password` from a new profile, which becomes a new
    /// device of the account: the root key comes out of the sealed backup the server
    /// releases after the password check, and certifies this device. The user's other
    /// devices add it to their conversations at their next sync; it cannot read anything
    /// sent before.
    pub async fn login(new: NewProfile<'_>, username: &str, password: &[u8]) -> Result<Self> {
        let user = UserId::new(username)?;
        let api = Api::new(new.server, new.ca_file)?;
        if Store::exists(new.dir) {
            return Err(ClientError::ProfileExists(new.dir.display().to_string()));
        }
        let account = api.account(username).await?;
        let root_public = RootPublicKey::from_bytes(&account.root_public_key.0)?;
        let (login, request) =
            ClientLogin::start(username.as_bytes(), password).map_err(password_error)?;
        let started = api
            .password_login_start(&PasswordLoginStart {
                username: username.to_owned(),
                request: Bytes(request),
            })
            .await?;
        let (finalization, _session_key, _export_key) = login
            .finish(password, &started.response.0)
            .map_err(password_error)?;
        let finished = api
            .password_login_finish(&PasswordLoginFinish {
                login_id: started.login_id.clone(),
                finalization: Bytes(finalization),
            })
            .await
            .map_err(|e| match e {
                ClientError::Server { status: 401, .. } => ClientError::WrongPassword,
                other => other,
            })?;
        let sealed = SealedBackup::from_bytes(&finished.sealed_backup.0)
            .map_err(|e| ClientError::Protocol(format!("the key backup is unreadable: {e}")))?;
        // The backup must hold the root key the account publishes (a server cannot swap
        // in a key of its own: it cannot seal anything under the user's password).
        let root = UserRootKey::open_backup(user, &root_public.fingerprint(), &sealed, password)
            .map_err(|_| ClientError::WrongPassword)?;
        let store = Arc::new(Store::create(new.dir, new.passphrase, new.scrypt)?);
        let mut cleanup = Cleanup {
            dir: new.dir,
            armed: true,
        };
        let mut client = Self::certify_this_device(store, api, &new, &root).await?;
        // The device exists on the server now: keep the profile whatever follows. An
        // empty KeyPackage pool is refilled by the next sync.
        cleanup.armed = false;
        if let Err(e) = client.upload_key_packages(true).await {
            tracing::debug!("KeyPackages not uploaded yet: {e}");
        }
        Ok(client)
    }

    /// The account's devices, each certificate checked against the user's root key.
    pub async fn devices(&mut self) -> Result<Vec<DeviceEntry>> {
        let account = self.api.account(&self.profile.username).await?;
        let root = self.identity().root_fingerprint;
        let user = self.user_id()?;
        let mut out = Vec::new();
        for device in account.devices {
            let Ok(identity) = DeviceCertificate::from_bytes(&device.certificate.0)
                .and_then(|c| c.verify_for_user(&user, &root))
            else {
                continue;
            };
            out.push(DeviceEntry {
                this_device: identity.device_id.to_hex() == self.profile.device_id,
                device_id: identity.device_id.to_hex(),
                created_at: identity.created_at,
            });
        }
        Ok(out)
    }

    /// Verified identities of the account's current devices.
    pub(crate) async fn own_devices(&mut self) -> Result<Vec<DeviceIdentity>> {
        let account = self.api.account(&self.profile.username).await?;
        let root = self.identity().root_fingerprint;
        let user = self.user_id()?;
        Ok(account
            .devices
            .iter()
            .filter_map(|d| {
                DeviceCertificate::from_bytes(&d.certificate.0)
                    .and_then(|c| c.verify_for_user(&user, &root))
                    .ok()
            })
            .collect())
    }

    /// Revokes one of the account's devices. Its sessions and mail are deleted by the
    /// server, and this device removes it from every conversation at the next sync.
    pub async fn revoke_device(&mut self, device_id: &str) -> Result<()> {
        if device_id == self.profile.device_id {
            return Err(ClientError::Invalid(
                "this is the device you are using; revoke it from another device".into(),
            ));
        }
        let token = self.token().await?;
        let user = self.profile.username.clone();
        self.api
            .revoke(&token, &user, device_id)
            .await
            .map_err(|e| match e {
                ClientError::Server { status: 404, .. } => {
                    ClientError::Invalid(format!("your account has no device {device_id}"))
                }
                other => other,
            })?;
        self.catch_up().await?;
        Ok(())
    }

    /// Tops up the KeyPackage pool at the low-water mark (or always, with `force`), and
    /// replaces the last-resort KeyPackage once it was used: when the server says so
    /// (then the user is warned) or when this device saw it used by a Welcome (the join
    /// warned already). A last-resort KeyPackage seen used is deleted once replaced.
    pub async fn upload_key_packages(&mut self, force: bool) -> Result<()> {
        let token = self.token().await?;
        let pool = self.api.key_package_pool(&token).await?;
        let seen_used = !self.used_last_resort.is_empty();
        if pool.last_resort_used && !seen_used {
            self.notice(
                "your last-resort KeyPackage was used: someone added this device while its \
                 one-time KeyPackages were exhausted (a new one was uploaded)"
                    .into(),
            )?;
        }
        let replace = force || seen_used || pool.last_resort_used || !pool.has_last_resort;
        if !(replace || pool.low_water) {
            return Ok(());
        }
        let mut key_packages = Vec::with_capacity(KEY_PACKAGE_BATCH);
        for _ in 0..KEY_PACKAGE_BATCH {
            key_packages.push(Bytes(self.device.key_package()?));
        }
        let last_resort = replace
            .then(|| self.device.last_resort_key_package().map(Bytes))
            .transpose()?;
        let body = UploadKeyPackages {
            key_packages,
            last_resort,
        };
        self.api.upload_key_packages(&token, &body).await?;
        let mut store = MlsStore(Arc::clone(&self.store));
        for reference in std::mem::take(&mut self.used_last_resort) {
            store.delete(&reference)?;
        }
        Ok(())
    }
}

impl Client {
    /// Generates this device's key, has `root` certify it, publishes the certificate and
    /// stores the new profile.
    async fn certify_this_device(
        store: Arc<Store>,
        api: Api,
        new: &NewProfile<'_>,
        root: &UserRootKey,
    ) -> Result<Self> {
        let device = NewDevice::generate(root, now_ms() / 1000)?;
        api.add_device(root.user().as_str(), device.certificate.to_bytes()?)
            .await?;
        Self::install(store, api, new, &device.certificate, device.secret.clone())
    }
}

/// Opens a session for a device by signing the server's challenge.
pub(crate) async fn device_session(
    api: &Api,
    user: &UserId,
    identity: &DeviceIdentity,
    secret: &SignatureSecretKey,
) -> Result<Session> {
    let device_id = identity.device_id.to_hex();
    let challenge = api
        .challenge(&ChallengeRequest {
            username: user.to_string(),
            device_id: device_id.clone(),
        })
        .await
        .map_err(|e| match e {
            ClientError::Server { status: 404, .. } | ClientError::Server { status: 401, .. } => {
                ClientError::Invalid(
                    "the server no longer knows this device (was it revoked?)".into(),
                )
            }
            other => other,
        })?;
    let bytes: [u8; CHALLENGE_LEN] = challenge
        .challenge
        .0
        .as_slice()
        .try_into()
        .map_err(|_| ClientError::Protocol("the login challenge has the wrong size".into()))?;
    let signature = sign_challenge(secret, &bytes, user, &identity.device_id)?;
    api.session(&SessionRequest {
        username: user.to_string(),
        device_id,
        challenge: challenge.challenge,
        signature: Bytes(signature),
    })
    .await
}
