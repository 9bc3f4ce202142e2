//! The server's OPAQUE key, and the encryption of login states kept between start and
//! finish.

use sotto_core::crypto::{self, CryptoError, AEAD_KEY_LEN, AEAD_NONCE_LEN};
use sotto_core::password::{PasswordError, ServerSetup};
use zeroize::Zeroizing;

use crate::storage::{Store, StoreError};

/// Name of the server's OPAQUE key among the store's settings.
pub const SETUP_SETTING: &str = "opaque_server_setup";

/// The HKDF salt of the login-state key.
const STATE_KEY_LABEL: &[u8] = b"sotto opaque login state v1";

/// Why the OPAQUE key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored value is not an OPAQUE server setup.
    #[error("the stored {SETUP_SETTING} is not a valid OPAQUE server setup")]
    Invalid,
    /// A fresh key could not be made (no randomness).
    #[error("cannot generate the OPAQUE key: {0}")]
    Generate(PasswordError),
}

/// The server's OPAQUE setup and the key that seals login states. Zeroized on drop (the
/// setup by its own types); `Debug` is redacted.
pub struct ServerKeys {
    setup: ServerSetup,
    state_key: Zeroizing<[u8; AEAD_KEY_LEN]>,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(<redacted>)")
    }
}

impl ServerKeys {
    /// The key stored in `store`; on first use a fresh one is generated and stored. Of
    /// servers starting at once on one database, all get the first one stored.
    pub async fn load(store: &Store) -> Result<Self, SetupError> {
        let fresh = ServerSetup::generate().map_err(SetupError::Generate)?;
        let stored = Zeroizing::new(
            store
                .setting_or_insert(SETUP_SETTING, &fresh.to_bytes())
                .await?,
        );
        drop(fresh);
        let setup = ServerSetup::from_bytes(&stored).map_err(|_| SetupError::Invalid)?;
        let mut state_key = Zeroizing::new([0u8; AEAD_KEY_LEN]);
        crypto::hkdf_sha512(STATE_KEY_LABEL, &stored, b"", &mut state_key[..])
            .map_err(|_| SetupError::Invalid)?;
        Ok(Self { setup, state_key })
    }

    /// The OPAQUE server setup.
    pub fn setup(&self) -> &ServerSetup {
        &self.setup
    }

    /// Encrypts a login state for the login `id_hash` of `username`: nonce, then
    /// AES-256-GCM ciphertext and tag, bound to both.
    pub fn seal_state(
        &self,
        id_hash: &[u8; 32],
        username: &str,
        state: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce: [u8; AEAD_NONCE_LEN] = crypto::random_array()?;
        let aad = [id_hash.as_slice(), username.as_bytes()].concat();
        let sealed = crypto::aes256gcm_seal(&self.state_key, &nonce, &aad, state)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Decrypts what [`ServerKeys::seal_state`] made for the same login; `None` if it
    /// does not open.
    pub fn open_state(
        &self,
        id_hash: &[u8],
        username: &str,
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let (nonce, ciphertext) = sealed.split_at_checked(AEAD_NONCE_LEN)?;
        let nonce: [u8; AEAD_NONCE_LEN] = nonce.try_into().ok()?;
        let aad = [id_hash, username.as_bytes()].concat();
        crypto::aes256gcm_open(&self.state_key, &nonce, &aad, ciphertext).ok()
    }
}
